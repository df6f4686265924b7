/**
 * Worker-thread entry for the one-read hasher: SHA-256 is synchronous CPU work,
 * and on the main thread it would stall every upload in flight while a large
 * recording is hashed.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { hashFile } from './hasher.js';

interface Job { path: string; ranges: Array<{ offset: number; length: number }>; size: number; streamRuns?: number[][] }

const job = workerData as Job;
hashFile(job.path, job.ranges, job.size, { streamRuns: job.streamRuns })
  .then((result) => parentPort!.postMessage({ ok: true, result }))
  .catch((error: unknown) => parentPort!.postMessage({ ok: false, error: { message: (error as Error).message, code: (error as { code?: string }).code, name: (error as Error).name } }));
