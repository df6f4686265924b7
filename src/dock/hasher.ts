/**
 * One sequential read of a recording gives its SHA-256, every segment's
 * SHA-256 and the Merkle root: evidence files are large and a dock's disk is
 * slow, so they are read once, in bounded chunks, however big they are.
 */
import { createHash, type Hash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import { InputError, IntegrityError } from '../errors.js';
import { merkleRoot } from '../protocol/merkle.js';
import type { SegmentPlanEntry } from '../protocol/types.js';
import { interleavedRuns } from '../media/mp4Samples.js';
import { readChunks, type ChunkSource } from '../util/chunkReader.js';
import { PausedError } from './errors.js';

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

/** What the wipe's (and `dock check`'s) re-read of a file found: its SHA-256 and size, and the possession answers. */
export interface DescriptorHash { sha256: string; size: number; answers: Map<number, string> }

/**
 * One pass over the file through `source` (the descriptor the wipe holds, so the bytes hashed are
 * the very file it may delete): its SHA-256 and size, and for each challenged segment
 * SHA-256(nonce ‖ segment bytes). The plan must tile the file (it did when it was receipted).
 */
export async function hashThroughDescriptor(source: ChunkSource, segments: ReadonlyArray<Pick<SegmentPlanEntry, 'index' | 'offset' | 'length'>>, nonce: Buffer, challenged: ReadonlySet<number>, signal?: AbortSignal): Promise<DescriptorHash> {
  let planned = 0;
  for (const segment of segments) {
    if (segment.offset !== planned) throw new IntegrityError('E_PLAN_GAP', `segment plan does not tile the file at byte ${planned}`);
    planned += segment.length;
  }
  const whole = createHash('sha256');
  const answers = new Map<number, string>();
  const challenges = segments.filter((s) => challenged.has(s.index));
  let next = 0;
  let pop: Hash | undefined;
  let position = 0;
  // Whatever follows the plan counts too (read to the end): a file that grew must not hash like the receipted one.
  for await (const chunk of readChunks(source)) {
    if (signal?.aborted) throw new PausedError('wipe abandoned', { cause: signal.reason });
    whole.update(chunk);
    const chunkEnd = position + chunk.length;
    while (next < challenges.length && challenges[next]!.offset < chunkEnd) {
      const segment = challenges[next]!;
      const end = segment.offset + segment.length;
      pop ??= createHash('sha256').update(nonce);
      const from = Math.max(segment.offset, position);
      const to = Math.min(end, chunkEnd);
      if (to > from) pop.update(chunk.subarray(from - position, to - position));
      if (end > chunkEnd) break;
      answers.set(segment.index, pop.digest('hex'));
      pop = undefined;
      next++;
    }
    position = chunkEnd;
  }
  // A file shorter than its plan: the segment it ends in is answered from what it holds (its size already says no).
  if (next < challenges.length && challenges[next]!.offset <= position) answers.set(challenges[next]!.index, (pop ?? createHash('sha256').update(nonce)).digest('hex'));
  return { sha256: whole.digest('hex'), size: position, answers };
}

/** The compiled worker beside this module; useHashWorkerAt points elsewhere (the TypeScript sources under jest have none beside them). */
let workerUrl = new URL('./hashWorker.js', import.meta.url);

/** Run hash jobs on the worker module at `url` (test set-up: the built dist/dock/hashWorker.js, so jest runs the path the dock runs). */
export function useHashWorkerAt(url: URL): void {
  workerUrl = url;
}

/** The jobs a hash worker takes (hashWorker.ts): a file by path, or an open descriptor of the main thread's. */
export type HashJob =
  | { kind: 'file'; path: string; ranges: Array<{ offset: number; length: number }>; size: number; streamRuns?: ReadonlyArray<ReadonlyArray<number>> }
  | { kind: 'descriptor'; fd: number; segments: Array<{ index: number; offset: number; length: number }>; nonce: Uint8Array; challenged: number[] };
/** A worker's reply; a DescriptorHash travels with its answers as entries. */
export type HashReply = { ok: true; result: HashResult | (Omit<DescriptorHash, 'answers'> & { answers: Array<[number, string]> }) } | { ok: false; error: { message: string; code?: string; name?: string } };

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
  const worker = new Worker(workerUrl, { resourceLimits: { maxOldGenerationSizeMb: 32, maxYoungGenerationSizeMb: 8 } });
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

/** The compiled worker is there (always in the built program; not when the sources run untranspiled, unless useHashWorkerAt named one). */
export async function hashWorkerAvailable(): Promise<boolean> {
  const { existsSync } = await import('node:fs');
  const { fileURLToPath } = await import('node:url');
  return existsSync(fileURLToPath(workerUrl));
}

/** An errno code (EIO, ENOENT, …) as fs reports it, as opposed to this project's E_* codes. */
const ERRNO_CODE = /^E[A-Z]+$/;

/**
 * Descriptors whose abandoned jobs' workers may still be reading (every such job of a handle: the
 * stops are chained): terminate() does not return while the
 * worker's read is in the kernel (a card reader stuck in a read never answers), so an abandoned job
 * settles at once and the descriptor is closed only once its worker is gone (closeWhenUnread): a
 * number closed under a read could be the next open's, a file of another camera.
 */
const stillRead = new WeakMap<FileHandle, Promise<void>>();

/**
 * Close a handle a descriptor job read: now, or, when an abandoned job's worker has not stopped yet,
 * as soon as it has (without waiting for that here: the wipe and the agent's stop go on).
 */
export function closeWhenUnread(handle: FileHandle): Promise<void> {
  const reading = stillRead.get(handle);
  if (!reading) return handle.close();
  void reading.then(() => handle.close()).catch(() => {});
  return Promise.resolve();
}

/**
 * One job on a kept worker. An abandoned or failed job's worker is stopped, never reused, and the
 * job settles at once (`stopping` learns when the worker is gone); `aborted` makes the rejection
 * the caller's own code would have thrown.
 */
function runOnWorker(job: HashJob, signal: AbortSignal | undefined, aborted: (reason: unknown) => unknown, failed: (error: { message: string; code?: string }) => unknown, stopping?: (stopped: Promise<void>) => void): Promise<HashReply & { ok: true }> {
  if (signal?.aborted) return Promise.reject(aborted(signal.reason));
  return takeWorker().then((worker) => new Promise((resolve, reject) => {
    const done = (): void => {
      signal?.removeEventListener('abort', onAbort);
      worker.off('message', onMessage);
      worker.off('error', onError);
      worker.off('exit', onExit);
    };
    const stop = (): void => { stopping?.(worker.terminate().then(() => {}, () => {})); };
    const onAbort = (): void => { done(); stop(); reject(aborted(signal!.reason)); };
    const onMessage = (message: HashReply): void => {
      done();
      giveBackWorker(worker);
      if (message.ok) resolve(message);
      else reject(failed(message.error));
    };
    const onError = (error: Error): void => { done(); stop(); reject(error); };
    const onExit = (code: number): void => { done(); reject(new Error(`hash worker exited with ${code}`)); };
    if (signal?.aborted) { onAbort(); return; }
    signal?.addEventListener('abort', onAbort, { once: true });
    worker.on('message', onMessage);
    worker.on('error', onError);
    worker.on('exit', onExit);
    worker.postMessage(job);
  }));
}

/** hashFile on a worker thread when the compiled worker is available, else on this thread. Same result, same errors (by code). */
export async function hashFileOffThread(path: string, ranges: ReadonlyArray<{ offset: number; length: number }>, expectedSize: number, options: HashOptions = {}): Promise<HashResult> {
  if (!(await hashWorkerAvailable())) return hashFile(path, ranges, expectedSize, options);
  const job: HashJob = { kind: 'file', path, ranges: ranges.map((r) => ({ offset: r.offset, length: r.length })), size: expectedSize, streamRuns: options.streamRuns };
  const reply = await runOnWorker(job, options.signal, (reason) => reason ?? new Error('aborted'), (failure) => {
    const error = new InputError(failure.code ?? 'E_HASH', failure.message ?? 'hashing failed');
    // Keep errno codes (ENOENT on undock) visible to the pause logic.
    if (failure.code && ERRNO_CODE.test(failure.code)) Object.assign(error, { cause: Object.assign(new Error(failure.message), { code: failure.code }) });
    return error;
  });
  return reply.result as HashResult;
}

/**
 * hashThroughDescriptor on a worker thread, reading through the descriptor of `handle` (workers
 * share the process's descriptors): the wipe's re-hash is a whole SHA-256 pass, and on the main
 * thread it held up every upload in flight for as long. The handle must stay open until this
 * settles, and be closed with closeWhenUnread. Same result and the same errors as on this thread:
 * an errno error keeps its code, a plan gap is the IntegrityError, an abandoned wipe the PausedError.
 */
export async function hashThroughDescriptorOffThread(handle: FileHandle, segments: ReadonlyArray<Pick<SegmentPlanEntry, 'index' | 'offset' | 'length'>>, nonce: Buffer, challenged: ReadonlySet<number>, signal?: AbortSignal): Promise<DescriptorHash> {
  if (!(await hashWorkerAvailable())) return hashThroughDescriptor(handle, segments, nonce, challenged, signal);
  const job: HashJob = { kind: 'descriptor', fd: handle.fd, segments: segments.map((s) => ({ index: s.index, offset: s.offset, length: s.length })), nonce: new Uint8Array(nonce), challenged: [...challenged] };
  const reply = await runOnWorker(job, signal, (reason) => new PausedError('wipe abandoned', { cause: reason }), (failure) => {
    if (failure.code === 'E_PLAN_GAP') return new IntegrityError('E_PLAN_GAP', failure.message);
    if (failure.code === 'E_DOCK_PAUSED') return new PausedError(failure.message);
    return Object.assign(new Error(failure.message), failure.code ? { code: failure.code } : {});
  }, (stopped) => { stillRead.set(handle, Promise.all([stillRead.get(handle), stopped]).then(() => {})); });
  const result = reply.result as Omit<DescriptorHash, 'answers'> & { answers: Array<[number, string]> };
  return { sha256: result.sha256, size: result.size, answers: new Map(result.answers) };
}
