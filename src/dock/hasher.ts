/**
 * One sequential read of a recording gives its SHA-256, every segment's
 * SHA-256 and the Merkle root: evidence files are large and a dock's disk is
 * slow, so they are read once, in bounded chunks, however big they are.
 */
import { createHash, type Hash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { InputError } from '../errors.js';
import { merkleRoot } from '../protocol/merkle.js';
import { interleavedRuns } from '../media/mp4Samples.js';
import { readChunks } from '../util/chunkReader.js';

export interface HashResult {
  sha256: string;
  size: number;
  segmentSha256: string[];
  merkleRoot: string;
  /** SHA-256 of each stream's bytes (HashOptions.streamRuns), in the order given. */
  streamSha256?: string[];
}

export interface HashOptions {
  signal?: AbortSignal;
  onProgress?: (bytesRead: number) => void;
  chunkBytes?: number;
  /**
   * Byte runs [offset, length, …] per stream (src/media/mp4Samples.ts): each stream's SHA-256 is
   * computed in the same read, so the media fingerprint of an MP4 costs one more SHA-256 pass over
   * the samples instead of an ffmpeg run that reads and hashes the file again.
   */
  streamRuns?: ReadonlyArray<ReadonlyArray<number>>;
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
  const runs = options.streamRuns ? interleavedRuns(options.streamRuns) : undefined;
  if (options.streamRuns && !runs) throw new InputError('E_STREAM_RUNS', 'stream byte runs overlap');
  const streamHashes = (options.streamRuns ?? []).map(() => createHash('sha256'));
  let run = 0;
  const handle = await open(path, 'r');
  try {
    // To the end of the file, whatever the plan says: a file that grew must not hash like the planned one.
    for await (const chunk of readChunks(handle, { chunkBytes: options.chunkBytes, signal: options.signal })) {
      whole.update(chunk);
      if (runs) {
        const chunkStart = read;
        const chunkEnd = read + chunk.length;
        while (run < runs.length && runs[run]! < chunkEnd) {
          const start = runs[run]!;
          const end = start + runs[run + 1]!;
          const from = Math.max(start, chunkStart);
          const to = Math.min(end, chunkEnd);
          if (to > from) streamHashes[runs[run + 2]!]!.update(chunk.subarray(from - chunkStart, to - chunkStart));
          if (end > chunkEnd) break;
          run += 3;
        }
      }
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
  } finally {
    await handle.close();
  }
  if (read !== expectedSize) throw new InputError('E_FILE_CHANGED', `${path} has ${read} bytes, expected ${expectedSize}`);
  if (runs && run < runs.length) throw new InputError('E_FILE_CHANGED', `${path} ends before its samples do`);
  const result: HashResult = { sha256: whole.digest('hex'), size: read, segmentSha256: segmentHashes, merkleRoot: merkleRoot(segmentHashes) };
  if (runs) result.streamSha256 = streamHashes.map((h) => h.digest('hex'));
  return result;
}

const WORKER_URL = new URL('./hashWorker.js', import.meta.url);

/** A job as the worker takes it (hashWorker.ts). */
export interface HashJob { path: string; ranges: Array<{ offset: number; length: number }>; size: number; streamRuns?: ReadonlyArray<ReadonlyArray<number>> }
type HashReply = { ok: boolean; result?: HashResult; error?: { message: string; code?: string } };

/**
 * Hash workers between jobs, kept for the next one: starting a worker (its own V8 isolate) costs
 * about 80 ms of CPU, a tenth of hashing a 250 MB recording (docs/benchmarks.md). Idle workers
 * are unref'd, so they never keep the process alive; one that dies while idle leaves the list.
 */
const idleWorkers: import('node:worker_threads').Worker[] = [];
const IDLE_WORKERS_MAX = 2;

async function takeWorker(): Promise<import('node:worker_threads').Worker> {
  const reused = idleWorkers.pop();
  if (reused) { reused.ref(); return reused; }
  const { Worker } = await import('node:worker_threads');
  const worker = new Worker(WORKER_URL, { resourceLimits: { maxOldGenerationSizeMb: 32, maxYoungGenerationSizeMb: 8 } });
  worker.on('exit', () => { const at = idleWorkers.indexOf(worker); if (at >= 0) idleWorkers.splice(at, 1); });
  // An idle worker's failure is reported to the job that uses it next (or to nobody).
  worker.on('error', () => {});
  return worker;
}

function giveBackWorker(worker: import('node:worker_threads').Worker): void {
  if (idleWorkers.length >= IDLE_WORKERS_MAX) { void worker.terminate(); return; }
  worker.unref();
  idleWorkers.push(worker);
}

/**
 * hashFile on a worker thread when the compiled worker is available (always in
 * the built program; not when the sources run untranspiled, e.g. under jest),
 * else on this thread. Same result, same errors (by code).
 */
export async function hashFileOffThread(path: string, ranges: ReadonlyArray<{ offset: number; length: number }>, expectedSize: number, options: HashOptions = {}): Promise<HashResult> {
  const { existsSync } = await import('node:fs');
  const { fileURLToPath } = await import('node:url');
  if (!existsSync(fileURLToPath(WORKER_URL))) return hashFile(path, ranges, expectedSize, options);
  options.signal?.throwIfAborted();
  const worker = await takeWorker();
  const job: HashJob = { path, ranges: ranges.map((r) => ({ offset: r.offset, length: r.length })), size: expectedSize, streamRuns: options.streamRuns };
  return new Promise<HashResult>((resolve, reject) => {
    const done = (): void => {
      options.signal?.removeEventListener('abort', onAbort);
      worker.off('message', onMessage);
      worker.off('error', onError);
      worker.off('exit', onExit);
    };
    // An abandoned job's worker is stopped, never reused: its read may still be running.
    const onAbort = (): void => { done(); void worker.terminate(); reject(options.signal!.reason ?? new Error('aborted')); };
    const onMessage = (message: HashReply): void => {
      done();
      giveBackWorker(worker);
      if (message.ok) resolve(message.result!);
      else {
        const error = new InputError(message.error?.code ?? 'E_HASH', message.error?.message ?? 'hashing failed');
        // Keep errno codes (ENOENT on undock) visible to the pause logic.
        if (message.error?.code && /^E[A-Z]+$/.test(message.error.code)) Object.assign(error, { cause: Object.assign(new Error(message.error.message), { code: message.error.code }) });
        reject(error);
      }
    };
    const onError = (error: Error): void => { done(); void worker.terminate(); reject(error); };
    const onExit = (code: number): void => { done(); reject(new Error(`hash worker exited with ${code}`)); };
    options.signal?.addEventListener('abort', onAbort, { once: true });
    worker.on('message', onMessage);
    worker.on('error', onError);
    worker.on('exit', onExit);
    worker.postMessage(job);
  });
}
