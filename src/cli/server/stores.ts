/**
 * What `--store`, `--s3-endpoint`, `--retention` and `--db` (and their environment fallbacks)
 * mean, for `bodycam server` and for the operator's tools (`verify-log`, `scrub`, `report`),
 * so that every command reads a deployment the same way: a data dir, a shared blob folder, or
 * an S3 bucket under Object Lock with the state in PostgreSQL.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UsageError } from '../../errors.js';
import { FsStore, parseEndpoint, parseRetention, parseS3StoreUrl, S3BlobStore } from '../../server/index.js';
import type { BlobStore } from '../../server/store.js';
import { openPgTools } from '../../server/pg/pgState.js';

export interface StoreFlags {
  store?: string;
  s3Endpoint?: string;
  retention?: string;
}

/**
 * --store: a folder (several servers on one machine may share it) or s3://BUCKET (blobs in an
 * S3-compatible object store under Object Lock: store/s3BlobStore.ts). The S3 credentials come
 * from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (never a flag: a flag shows in `ps`), the endpoint
 * from --s3-endpoint or S3_ENDPOINT, the region from AWS_REGION. `createBucket: false` for the
 * tools: they read a bucket a server made, never make one.
 */
export function blobStoreOf(flags: StoreFlags, scratchDir: string, options: { createBucket?: boolean } = {}): BlobStore | undefined {
  const bucket = flags.store ? parseS3StoreUrl(flags.store) : undefined;
  if (!bucket) {
    if (flags.s3Endpoint) throw new UsageError('--s3-endpoint goes with --store s3://BUCKET');
    return flags.store ? new FsStore(flags.store, { shared: true }) : undefined;
  }
  const endpoint = flags.s3Endpoint ?? (process.env.S3_ENDPOINT || undefined);
  if (!endpoint) throw new UsageError(`--store ${flags.store} needs --s3-endpoint URL (or S3_ENDPOINT): the object store's base URL`);
  const accessKeyId = process.env.AWS_ACCESS_KEY_ID;
  const secretAccessKey = process.env.AWS_SECRET_ACCESS_KEY;
  if (!accessKeyId || !secretAccessKey) throw new UsageError(`--store ${flags.store} needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the environment`);
  return new S3BlobStore({
    bucket, retention: parseRetention(flags.retention ?? '7y'), scratchDir, ...(options.createBucket === false ? { createBucket: false } : {}),
    client: { endpoint: parseEndpoint(endpoint), region: process.env.AWS_REGION || 'us-east-1', credentials: { accessKeyId, secretAccessKey } },
  });
}

/** --db, else DATABASE_URL: a postgres:// URL (anything else is a usage error, said before anything starts). */
export function databaseUrl(flag: string | undefined): string | undefined {
  const url = flag ?? (process.env.DATABASE_URL || undefined);
  if (url === undefined) return undefined;
  if (!/^postgres(ql)?:\/\//.test(url)) throw new UsageError(`${flag ? '--db' : 'DATABASE_URL'} must be a postgres://user@host:port/database URL`);
  return url;
}

/**
 * The blob store of a tool run (`--store`), opened, with a scratch folder of its own that goes
 * with it: a tool never writes blobs, and a running server's spool is never touched.
 */
export async function openToolBlobStore(flags: StoreFlags): Promise<{ blobs: BlobStore; close(): Promise<void> } | undefined> {
  const scratch = mkdtempSync(join(tmpdir(), 'bodycam-tool-'));
  const blobs = blobStoreOf(flags, join(scratch, 'spool'), { createBucket: false });
  if (!blobs) { rmSync(scratch, { recursive: true, force: true }); return undefined; }
  try {
    // A shared folder is not opened (open() would clear temp files a running server writes).
    if (blobs instanceof S3BlobStore) await blobs.open();
  } catch (error) {
    await blobs.close().catch(() => {});
    rmSync(scratch, { recursive: true, force: true });
    throw error;
  }
  return { blobs, close: async () => { await blobs.close(); rmSync(scratch, { recursive: true, force: true }); } };
}

/** A tool's view of a --db deployment: its blob store (--store) and its PostgreSQL state, closed after `run`. */
export async function withToolState<T>(flags: { store?: string; s3Endpoint?: string; db?: string }, run: (blobs: BlobStore, state: Awaited<ReturnType<typeof openPgTools>>) => Promise<T>): Promise<T> {
  const database = databaseUrl(flags.db);
  if (!database) throw new UsageError('--store needs --db (or DATABASE_URL): the recordings of a shared store are in the database');
  const bucket = await openToolBlobStore(flags);
  if (!bucket) throw new UsageError('--store is required with --db');
  try {
    const state = await openPgTools(database);
    try {
      return await run(bucket.blobs, state);
    } finally {
      await state.close();
    }
  } finally {
    await bucket.close();
  }
}
