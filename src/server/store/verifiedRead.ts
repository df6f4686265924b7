/**
 * A read of a stored blob that cannot complete with wrong bytes. The whole blob is
 * hashed on every read, a byte range too (bytes before `start` are hashed and dropped,
 * bytes after `end` are hashed and not sent), and the last chunk handed to the consumer
 * is held back until the SHA-256 of the whole blob is confirmed. On a mismatch the
 * stream is destroyed with IntegrityError `E_BLOB_DAMAGED`: a consumer may have seen
 * some of the bytes, never all of them and never an `end`. An HTTP response streaming
 * it is therefore cut short (the client sees a truncated body), never completed.
 *
 * Cost: a range read costs a read and a hash of its whole segment blob (the blob is one
 * segment, 64 MiB at most, usually a few MiB). docs/reliability.md gives figures.
 *
 * Any Store backend can build its readBlob on this: it supplies the raw byte source.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { IntegrityError } from '../../errors.js';
import { SERVER_ERROR_CODES } from '../errorCodes.js';

export const BLOB_DAMAGED = 'E_BLOB_DAMAGED';
export const BLOB_MISSING = 'E_BLOB_MISSING';

export function isBlobIntegrityError(error: unknown): error is IntegrityError {
  return error instanceof IntegrityError && (error.code === BLOB_DAMAGED || error.code === BLOB_MISSING);
}

export interface RawBlob {
  /** The blob's bytes from its first one, as stored. */
  source: AsyncIterable<Buffer | Uint8Array> & { destroy?: () => void };
  /** Called once, before the consumer sees the error, when the bytes do not hash to the name. */
  onDamage(error: IntegrityError): Promise<void>;
}

/**
 * `open` gives the raw blob; it may throw IntegrityError itself (missing, not a regular file).
 * Bytes [start, end] (inclusive; the whole blob by default) reach the consumer only if the
 * whole blob hashes to `sha256`, and, when `length` is given (the plan a caller slices by), only
 * if the blob has that many bytes: an intact blob of another length fails with IntegrityError
 * `E_STORED_LENGTH` (not marked damaged: its bytes are what its name says; the plan is wrong).
 */
export function verifiedBlobRead(sha256: string, open: () => Promise<RawBlob>, start = 0, end = Number.POSITIVE_INFINITY, length?: number): Readable {
  return Readable.from((async function* () {
    const raw = await open();
    const hash = createHash('sha256');
    let position = 0;
    let pending: Buffer | undefined;
    try {
      for await (const data of raw.source) {
        const chunk = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
        hash.update(chunk);
        const chunkStart = position;
        position += chunk.length;
        const from = Math.max(start, chunkStart);
        const to = Math.min(end + 1, position);
        if (to > from) {
          if (pending) yield pending;
          pending = chunk.subarray(from - chunkStart, to - chunkStart);
        }
      }
    } finally {
      raw.source.destroy?.();
    }
    const actual = hash.digest('hex');
    if (actual !== sha256) {
      const error = new IntegrityError(BLOB_DAMAGED, `stored blob ${sha256} is damaged: its ${position} bytes hash to ${actual}`, { details: { sha256, actual, size: position } });
      await raw.onDamage(error);
      throw error;
    }
    if (length !== undefined && position !== length) {
      throw new IntegrityError(SERVER_ERROR_CODES.storedLength, `stored blob ${sha256} has ${position} bytes, the plan read from it says ${length}`, { details: { sha256, size: position, length } });
    }
    if (pending) yield pending;
  })(), { objectMode: false, highWaterMark: 1 });
}

/** Read a blob to its end through the verified read; resolves with its size, rejects as the read does. */
export async function drainVerified(stream: Readable): Promise<number> {
  let size = 0;
  for await (const chunk of stream) size += (chunk as Buffer).length;
  return size;
}

/**
 * Whether a blob reads back intact through its verified read (drained, nothing kept): false when
 * the read found it damaged or missing (a damaged one is marked on the way); other errors (the
 * store unreachable) are thrown.
 */
export async function readsBackIntact(stream: Readable): Promise<boolean> {
  try {
    await drainVerified(stream);
    return true;
  } catch (error) {
    if (isBlobIntegrityError(error)) return false;
    throw error;
  }
}
