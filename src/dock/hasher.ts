/**
 * One sequential read of a recording gives its SHA-256, every segment's
 * SHA-256 and the Merkle root: evidence files are large and a dock's disk is
 * slow, so they are read once, in bounded chunks, however big they are.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { InputError } from '../errors.js';
import { merkleRoot } from '../protocol/merkle.js';

export interface HashResult {
  sha256: string;
  size: number;
  segmentSha256: string[];
  merkleRoot: string;
}

export interface HashOptions {
  signal?: AbortSignal;
  onProgress?: (bytesRead: number) => void;
  chunkBytes?: number;
}

/** Hash `path` and each of the given ranges (which must tile [0, size) in order). */
export async function hashFile(path: string, ranges: ReadonlyArray<{ offset: number; length: number }>, expectedSize: number, options: HashOptions = {}): Promise<HashResult> {
  let position = 0;
  for (const range of ranges) {
    if (range.offset !== position) throw new InputError('E_PLAN_GAP', `segment plan does not tile the file at byte ${position}`);
    position += range.length;
  }
  if (position !== expectedSize) throw new InputError('E_PLAN_SIZE', `segment plan covers ${position} bytes, file has ${expectedSize}`);

  const whole = createHash('sha256');
  const segmentHashes: string[] = [];
  let segmentIndex = 0;
  let segmentRemaining = ranges[0]?.length ?? 0;
  let current: Hash | undefined = ranges.length ? createHash('sha256') : undefined;
  let read = 0;
  const stream = createReadStream(path, { highWaterMark: options.chunkBytes ?? 1024 * 1024, signal: options.signal });
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    whole.update(chunk);
    let pos = 0;
    while (pos < chunk.length) {
      if (!current) throw new InputError('E_FILE_GREW', `${path} is longer than the ${expectedSize} bytes planned`);
      const take = Math.min(segmentRemaining, chunk.length - pos);
      current.update(chunk.subarray(pos, pos + take));
      pos += take;
      segmentRemaining -= take;
      if (segmentRemaining === 0) {
        segmentHashes.push(current.digest('hex'));
        segmentIndex++;
        current = segmentIndex < ranges.length ? createHash('sha256') : undefined;
        segmentRemaining = ranges[segmentIndex]?.length ?? 0;
      }
    }
    read += chunk.length;
    options.onProgress?.(read);
  }
  if (read !== expectedSize) throw new InputError('E_FILE_CHANGED', `${path} has ${read} bytes, expected ${expectedSize}`);
  return { sha256: whole.digest('hex'), size: read, segmentSha256: segmentHashes, merkleRoot: merkleRoot(segmentHashes) };
}
