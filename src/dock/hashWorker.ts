/**
 * Worker-thread entry for the one-read hasher: SHA-256 is synchronous CPU work,
 * and on the main thread it would stall every upload in flight while a large
 * recording is hashed. One job at a time, one reply per job; the worker is kept
 * for the next job (hasher.ts), so its start is paid once, not per file.
 */
import { parentPort } from 'node:worker_threads';
import { hashFile, type HashJob } from './hasher.js';

parentPort!.on('message', (job: HashJob) => {
  hashFile(job.path, job.ranges, job.size, { streamRuns: job.streamRuns })
    .then((result) => parentPort!.postMessage({ ok: true, result }))
    .catch((error: unknown) => parentPort!.postMessage({ ok: false, error: { message: (error as Error).message, code: (error as { code?: string }).code, name: (error as Error).name } }));
});
