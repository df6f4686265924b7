/**
 * The blob store and state of a deployment (src/server/config.ts DeploymentConfig: a data dir, a
 * shared blob folder, or an S3 bucket under Object Lock with the state in PostgreSQL), opened for
 * `bodycam server` and for the operator's tools (`verify-log`, `scrub`, `report`) the same way.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UsageError } from '../../errors.js';
import { FsStore } from '../../server/index.js';
import type { DeploymentConfig } from '../../server/config.js';
import type { BlobStore } from '../../server/store/store.js';
import { openPgTools } from '../../server/pg/pgState.js';

/**
 * The store of `storeDir` (several servers on one machine may share a folder) or of `s3` (the
 * credentials never come from a flag: a flag shows in `ps`); undefined for neither (the data dir's
 * own). `createBucket: false` for the tools: they read a bucket a server made, never make one.
 */
export async function blobStoreOf(config: DeploymentConfig, scratchDir: string, options: { createBucket?: boolean } = {}): Promise<BlobStore | undefined> {
  if (config.storeDir) return new FsStore(config.storeDir, { shared: true });
  if (!config.s3) return undefined;
  const { bucket, retention, endpoint, region, accessKeyId, secretAccessKey } = config.s3;
  // Loaded here, not at start: the AWS SDK costs ~0.3 s of CPU that a server without a bucket never uses.
  const { S3BlobStore } = await import('../../server/store/s3BlobStore.js');
  return new S3BlobStore({
    bucket, retention, scratchDir, ...(options.createBucket === false ? { createBucket: false } : {}),
    client: { endpoint, region, credentials: { accessKeyId, secretAccessKey } },
  });
}

/**
 * The blob store of a tool run, opened, with a scratch folder of its own that goes with it: a
 * tool never writes blobs, and a running server's spool is never touched. `dataDir`: the blobs
 * a db deployment without a store keeps in a server's data dir.
 */
export async function openToolBlobStore(config: DeploymentConfig & { dataDir?: string }): Promise<{ blobs: BlobStore; close(): Promise<void> } | undefined> {
  const scratch = mkdtempSync(join(tmpdir(), 'bodycam-tool-'));
  const blobs = await blobStoreOf(config, join(scratch, 'spool'), { createBucket: false }) ?? (config.dataDir ? new FsStore(config.dataDir, { shared: true }) : undefined);
  if (!blobs) { rmSync(scratch, { recursive: true, force: true }); return undefined; }
  try {
    // A shared folder is not opened (open() would clear temp files a running server writes); a bucket is.
    if (!(blobs instanceof FsStore)) await blobs.open();
  } catch (error) {
    await blobs.close().catch(() => {});
    rmSync(scratch, { recursive: true, force: true });
    throw error;
  }
  return { blobs, close: async () => { await blobs.close(); rmSync(scratch, { recursive: true, force: true }); } };
}

/** A tool's view of a db deployment: its blob store (store, else the data dir's) and its PostgreSQL state, closed after `run`. */
export async function withToolState<T>(config: DeploymentConfig & { dataDir?: string }, run: (blobs: BlobStore, state: Awaited<ReturnType<typeof openPgTools>>) => Promise<T>): Promise<T> {
  if (!config.database) throw new UsageError('--store needs --db (or DATABASE_URL): the recordings of a shared store are in the database');
  const bucket = await openToolBlobStore(config);
  if (!bucket) throw new UsageError('--db needs --store (or --data-dir): where the deployment\'s blobs are');
  try {
    const state = await openPgTools(config.database);
    try {
      return await run(bucket.blobs, state);
    } finally {
      await state.close();
    }
  } finally {
    await bucket.close();
  }
}
