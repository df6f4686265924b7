/**
 * The console's "SHA-256 of the content" check: every byte of a complete recording read back
 * through the store's verified read and hashed, compared with the manifest's file hash.
 *
 * Hashing a 2 GB recording takes seconds, so a view never waits for it: the check runs in the
 * background (one at a time, a bounded queue, the bytes streamed in chunks so every other request
 * keeps being answered), the page waits at most `waitMs` for it and otherwise shows it as running.
 * The result, pass or fail, is kept per content (file hash + Merkle root) together with the
 * identity of each blob it read (the store's `blobIdentity`: inode, size and times on the
 * filesystem, version id and ETag on S3); a view re-uses it while every blob has the same identity and checks again when one
 * changed (a damaged blob moved aside, a repair stored anew), or when a pass is older than a day.
 * A pass is kept only if no blob's identity changed while it was read. So a failed check is not re-hashed on
 * every view, and a reviewer clicking on it cannot make the server read the recording again and
 * again. This is only the page's report: playback and downloads still verify every byte they read
 * (BlobStore.readBlob).
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { RecordingManifest } from '../../protocol/types.js';
import type { BlobStore, StoredRecording } from '../store/store.js';
import type { Check } from './checks.js';

export interface ContentChecksDeps {
  store: BlobStore;
  /** The recording's bytes [start, end], verified (IngestService.content). */
  open: (record: StoredRecording) => Promise<(start: number, end: number) => Readable>;
  /** How long a view waits for a check it started (default 1000 ms). */
  waitMs?: number;
  /** Checks waiting to run at most (default 32); beyond, a view says the server is busy. */
  maxQueued?: number;
}

interface Result { identities: string; check: Check; checkedAt: number }
interface Job { done: Promise<Check>; bytesRead: number; size: number; started: boolean }

const NAME = 'SHA-256 of the content';
const MAX_RESULTS = 50_000;
/**
 * A kept pass is read back again after this long even with every identity unchanged: damage below
 * the filesystem (bit rot) leaves inode, size and times as they were (and an object rotting inside
 * the engine keeps its version id).
 */
const PASS_KEPT_MS = 24 * 3_600_000;

export class ContentChecks {
  private readonly results = new Map<string, Result>();
  private readonly jobs = new Map<string, Job>();
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly deps: ContentChecksDeps) {}

  /** The check as it stands for this view: a kept result, the result of a check finished within waitMs, or `pending`. */
  async view(record: StoredRecording): Promise<Check> {
    const { manifest } = record;
    if (!record.receipt) return { name: NAME, result: 'pending', detail: 'computed once every segment is held' };
    const key = `${manifest.file.sha256}/${manifest.merkleRoot}/${manifest.segments.length}`;
    const identities = await this.identities(manifest);
    const kept = this.results.get(key);
    if (kept && kept.identities === identities && (kept.check.result !== 'pass' || Date.now() - kept.checkedAt < PASS_KEPT_MS)) return kept.check;
    let job = this.jobs.get(key);
    if (!job) {
      if (this.jobs.size >= (this.deps.maxQueued ?? 32)) {
        return { name: NAME, result: 'pending', detail: `the server is checking ${this.jobs.size} other recordings; reload the page later` };
      }
      job = this.start(key, record);
    }
    let timer: NodeJS.Timeout | undefined;
    const waited = await Promise.race([job.done, new Promise<undefined>((resolve) => { timer = setTimeout(() => resolve(undefined), this.deps.waitMs ?? 1000); })]);
    clearTimeout(timer);
    if (waited) return waited;
    const share = job.size > 0 ? Math.floor((job.bytesRead / job.size) * 100) : 0;
    return { name: NAME, result: 'pending', detail: job.started ? `being checked now (${share}% of ${job.size} bytes read back); reload the page for the result` : 'waiting for other checks to finish; reload the page for the result' };
  }

  private start(key: string, record: StoredRecording): Job {
    const { manifest } = record;
    const job: Job = { bytesRead: 0, size: manifest.file.size, started: false, done: undefined as unknown as Promise<Check> };
    const run = async (): Promise<Check> => {
      job.started = true;
      let check: Check;
      // Before the read as well as after it: a blob rewritten in place while later ones are read
      // would give a pass of the old bytes kept under the new identity.
      const before = await this.identities(manifest).catch(() => undefined);
      try {
        const open = await this.deps.open(record);
        const hash = createHash('sha256');
        for await (const chunk of manifest.file.size === 0 ? open(1, 0) : open(0, manifest.file.size - 1)) {
          hash.update(chunk as Buffer);
          job.bytesRead += (chunk as Buffer).length;
        }
        const actual = hash.digest('hex');
        check = { name: NAME, result: actual === manifest.file.sha256 ? 'pass' : 'fail', detail: `read back from the store: ${actual}; the manifest says ${manifest.file.sha256}` };
      } catch (error) {
        check = { name: NAME, result: 'fail', detail: `reading the content back failed: ${error instanceof Error ? error.message : String(error)}` };
      }
      // The identities after the read: a damaged blob the read found has been moved aside by now.
      // A pass is kept only when no blob changed during the read; a fail is kept as it stands after it.
      const identities = await this.identities(manifest).catch(() => undefined);
      if (identities !== undefined && (check.result !== 'pass' || identities === before)) {
        if (this.results.size >= MAX_RESULTS) this.results.delete(this.results.keys().next().value!);
        this.results.delete(key);
        this.results.set(key, { identities, check, checkedAt: Date.now() });
      }
      return check;
    };
    job.done = this.queue.then(run).finally(() => this.jobs.delete(key));
    this.queue = job.done.catch(() => undefined);
    this.jobs.set(key, job);
    return job;
  }

  /** One string naming the stored version of every blob of the recording (a blob missing is a version too). */
  private async identities(manifest: RecordingManifest): Promise<string> {
    const { store } = this.deps;
    const out: string[] = [];
    const width = 32;
    for (let i = 0; i < manifest.segments.length; i += width) {
      out.push(...await Promise.all(manifest.segments.slice(i, i + width).map(async (s) => (store.blobIdentity
        ? (await store.blobIdentity(s.sha256)) ?? 'missing'
        : (await store.hasBlob(s.sha256)) ? 'held' : 'missing'))));
    }
    // Kept as a digest: a recording of 1000 segments would otherwise hold 40 KB per result.
    return createHash('sha256').update(out.join(',')).digest('base64url');
  }
}
