/**
 * Worker-thread entry for the one-read hasher and the wipe's re-read: SHA-256
 * is synchronous CPU work, and on the main thread it would stall every upload
 * in flight while a large recording is hashed. One job at a time, one reply per
 * job; the worker is kept for the next job (hasher.ts), so its start is paid
 * once, not per file.
 */
import { parentPort } from 'node:worker_threads';
import { fdSource } from '../util/chunkReader.js';
import { hashFile, hashThroughDescriptor, type HashJob, type HashReply } from './hasher.js';

function run(job: HashJob): Promise<HashReply & { ok: true }> {
  if (job.kind === 'file') return hashFile(job.path, job.ranges, job.size, { streamRuns: job.streamRuns }).then((result) => ({ ok: true, result }));
  // The main thread's descriptor, read here and never closed here: it stays the main thread's.
  return hashThroughDescriptor(fdSource(job.fd), job.segments, Buffer.from(job.nonce), new Set(job.challenged))
    .then((hashed) => ({ ok: true, result: { sha256: hashed.sha256, size: hashed.size, answers: [...hashed.answers] } }));
}

parentPort!.on('message', (job: HashJob) => {
  run(job)
    .then((reply) => parentPort!.postMessage(reply))
    .catch((error: unknown) => parentPort!.postMessage({ ok: false, error: { message: (error as Error).message, code: (error as { code?: string }).code, name: (error as Error).name } } satisfies HashReply));
});
