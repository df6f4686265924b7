/**
 * The S3 blob store on a real Ceph RGW (scripts/engines.sh, started for the run by
 * test/helpers/engines.ts): the same conformance suite as the filesystem store (with recordings
 * kept by an FsStore beside it, as `bodycam server --store s3://…` without --db does), then what
 * only the object store has: write-once across servers, Object Lock, the engine going away.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  DeleteObjectCommand, GetObjectCommand, ListObjectVersionsCommand, PutObjectCommand, PutObjectRetentionCommand, S3Client,
} from '@aws-sdk/client-s3';
import { FsStore } from '../../../src/server/store/fsStore.js';
import type { BlobStore, Store } from '../../../src/server/store/store.js';
import { makeS3Client, S3BlobStore } from '../../../src/server/store/s3BlobStore.js';
import { parseRetention } from '../../../src/server/store/s3Config.js';
import { sha256Hex } from '../../../src/protocol/digest.js';
import { testBytes } from '../../helpers/manifest.js';
import { makeTempDir, withOpen, withTempDir } from '../../helpers/tmp.js';
import { engines, freshBucket, type Engines } from '../../helpers/engines.js';
import { runStoreConformance, type BlobDamage } from './storeConformance.js';

let env: Engines;
let raw: S3Client;
beforeAll(async () => {
  env = await engines();
  raw = makeS3Client({ endpoint: env.s3Endpoint, region: env.region, credentials: { accessKeyId: env.accessKeyId, secretAccessKey: env.secretAccessKey } });
});
afterAll(() => raw?.destroy());

function clientConfig(endpoint = env.s3Endpoint) {
  return { endpoint, region: env.region, credentials: { accessKeyId: env.accessKeyId, secretAccessKey: env.secretAccessKey } };
}

function s3Store(bucket: string, scratchDir: string, endpoint?: string): S3BlobStore {
  return new S3BlobStore({ bucket, retention: parseRetention('1d'), scratchDir, client: clientConfig(endpoint) });
}

const blobKey = (sha256: string) => `blobs/${sha256.slice(0, 2)}/${sha256}`;

async function currentBytes(bucket: string, key: string): Promise<Buffer> {
  const answer = await raw.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await answer.Body!.transformToByteArray());
}

/** Damage as the S3 API allows it to anyone with PutObject/DeleteObject rights: a new version, a delete marker. */
async function damageS3Blob(bucket: string, sha256: string, how: BlobDamage): Promise<void> {
  const key = blobKey(sha256);
  if (how.kind === 'delete') { await raw.send(new DeleteObjectCommand({ Bucket: bucket, Key: key })); return; }
  const bytes = await currentBytes(bucket, key);
  let next: Buffer;
  switch (how.kind) {
    case 'flip': next = Buffer.from(bytes); next[how.offset] = next[how.offset]! ^ 0x01; break;
    case 'truncate': next = bytes.subarray(0, how.length); break;
    case 'append': next = Buffer.concat([bytes, how.bytes]); break;
    case 'replace': next = how.bytes; break;
  }
  await raw.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: next, ContentLength: next.length }));
}

/** The suite covers a whole Store: S3 blobs with the records an FsStore keeps (the server does the same without --db). */
function withFsRecordings(blobs: BlobStore, records: FsStore): Store {
  return {
    open: async () => { await blobs.open(); await records.open(); },
    close: async () => { await Promise.all([blobs.close(), records.close()]); },
    putBlob: (sha256, body, length) => blobs.putBlob(sha256, body, length),
    syncBlobs: (sha256s) => blobs.syncBlobs(sha256s),
    hasBlob: (sha256) => blobs.hasBlob(sha256),
    ...(blobs.blobIdentity ? { blobIdentity: (sha256: string) => blobs.blobIdentity!(sha256) } : {}),
    readBlob: (sha256, start, end) => blobs.readBlob(sha256, start, end),
    listBlobs: () => blobs.listBlobs(),
    usedBytes: () => blobs.usedBytes(),
    getRecording: (dockId, id) => records.getRecording(dockId, id),
    createRecording: (dockId, id, record) => records.createRecording(dockId, id, record),
    updateRecording: (dockId, id, record) => records.updateRecording(dockId, id, record),
    listRecordingIds: (dockId) => records.listRecordingIds(dockId),
    listRecordings: () => records.listRecordings(),
  };
}

runStoreConformance('S3 (Ceph RGW) blobs + filesystem recordings', async () => {
  const dir = makeTempDir('bodycam-s3store-');
  const bucket = freshBucket('conformance');
  const make = () => withFsRecordings(s3Store(bucket, join(dir.path, 'scratch')), new FsStore(join(dir.path, 'data')));
  return { store: make(), reopen: async () => make(), cleanup: dir.cleanup, damage: (sha256, how) => damageS3Blob(bucket, sha256, how) };
});

describe('S3BlobStore specifics', () => {
  const data = testBytes(300_000, 21);
  const digest = sha256Hex(data);
  const chunked = (bytes: Buffer, size = 50_000) => (async function* () { for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size); })();

  it('creates its bucket with Object Lock and locks every blob under COMPLIANCE retention; refuses a bucket without lock', async () => {
    const dir = makeTempDir('bodycam-s3store-');
    const store = s3Store(freshBucket('lock'), join(dir.path, 'scratch'));
    try {
      await store.open();
      await store.putBlob(digest, chunked(data), data.length);
      const head = await raw.send(new GetObjectCommand({ Bucket: store.bucket, Key: blobKey(digest) }));
      await head.Body!.transformToByteArray();
      expect(head.ObjectLockMode).toBe('COMPLIANCE');
      const until = head.ObjectLockRetainUntilDate!.getTime();
      expect(until).toBeGreaterThan(Date.now() + 23 * 3600_000);
      expect(until).toBeLessThan(Date.now() + 25 * 3600_000);
      // Nothing of the body stayed on the server's disk.
      expect(readdirSync(join(dir.path, 'scratch'))).toEqual([]);
    } finally {
      await store.close();
    }
    const plain = freshBucket('nolock');
    const { CreateBucketCommand } = await import('@aws-sdk/client-s3');
    await raw.send(new CreateBucketCommand({ Bucket: plain }));
    const unlocked = s3Store(plain, join(dir.path, 'scratch2'));
    await expect(unlocked.open()).rejects.toMatchObject({ code: 'E_STORE_NOT_LOCKED' });
    await unlocked.close();
    dir.cleanup();
  });

  it('with the server\'s own credentials a blob\'s bytes can be neither deleted nor overwritten nor unlocked (403); a plain DELETE or PUT only adds a version', async () => {
    await withTempDir('bodycam-s3store-', (dir) => withOpen(s3Store(freshBucket('worm'), join(dir, 'scratch')), async (store) => {
      await store.putBlob(digest, chunked(data), data.length);
      const key = blobKey(digest);
      const versions = await raw.send(new ListObjectVersionsCommand({ Bucket: store.bucket, Prefix: key }));
      const original = versions.Versions![0]!.VersionId!;
      // Delete the evidence version itself: AccessDenied.
      await expect(raw.send(new DeleteObjectCommand({ Bucket: store.bucket, Key: key, VersionId: original }))).rejects.toMatchObject({ name: 'AccessDenied', $metadata: { httpStatusCode: 403 } });
      // Shorten or weaken its lock: AccessDenied.
      await expect(raw.send(new PutObjectRetentionCommand({ Bucket: store.bucket, Key: key, VersionId: original, Retention: { Mode: 'COMPLIANCE', RetainUntilDate: new Date(Date.now() + 60_000) } })))
        .rejects.toMatchObject({ $metadata: { httpStatusCode: 403 } });
      await expect(raw.send(new PutObjectRetentionCommand({ Bucket: store.bucket, Key: key, VersionId: original, Retention: { Mode: 'GOVERNANCE', RetainUntilDate: new Date(Date.now() + 2 * 86_400_000) } })))
        .rejects.toMatchObject({ $metadata: { httpStatusCode: 403 } });
      // A PUT and a plain DELETE only stack a version / a delete marker on top (RGW ignores If-None-Match
      // on a versioned bucket, so even the server's write-once PUT would) ...
      await raw.send(new PutObjectCommand({ Bucket: store.bucket, Key: key, Body: Buffer.from('forged') }));
      await raw.send(new DeleteObjectCommand({ Bucket: store.bucket, Key: key }));
      // ... the evidence version is still there, byte for byte, and still locked.
      const kept = await raw.send(new GetObjectCommand({ Bucket: store.bucket, Key: key, VersionId: original }));
      expect(Buffer.from(await kept.Body!.transformToByteArray()).equals(data)).toBe(true);
      expect(kept.ObjectLockMode).toBe('COMPLIANCE');
      // The store sees the blob as missing (the dock re-sends it), never the forged bytes.
      expect(await store.hasBlob(digest)).toBe(false);
      expect((await store.putBlob(digest, chunked(data), data.length)).created).toBe(true);
      expect(sha256Hex(await currentBytes(store.bucket, key))).toBe(digest);
    }));
  });

  it('locked custody exports: written once, read back, the same bytes again is not an error, other bytes are refused, deletion is 403', async () => {
    await withTempDir('bodycam-s3store-', (dir) => withOpen(s3Store(freshBucket('export'), join(dir, 'scratch')), async (store) => {
      const checkpoint = Buffer.from(JSON.stringify({ seq: 1000, head: 'ab'.repeat(32) }));
      expect(await store.putLockedObject('custody/checkpoints/0000001000.json', checkpoint, { contentType: 'application/json' })).toEqual({ created: true });
      expect(await store.putLockedObject('custody/checkpoints/0000001000.json', checkpoint)).toEqual({ created: false });
      await expect(store.putLockedObject('custody/checkpoints/0000001000.json', Buffer.from('{}'))).rejects.toMatchObject({ code: 'E_LOCKED_OBJECT_EXISTS' });
      expect((await store.getObject('custody/checkpoints/0000001000.json'))!.equals(checkpoint)).toBe(true);
      expect(await store.getObject('custody/checkpoints/none.json')).toBeUndefined();
      // A version stacked on top by anyone with PutObject rights is not the export.
      await raw.send(new PutObjectCommand({ Bucket: store.bucket, Key: 'custody/checkpoints/0000001000.json', Body: Buffer.from('forged') }));
      expect((await store.getObject('custody/checkpoints/0000001000.json'))!.equals(checkpoint)).toBe(true);
      await expect(store.putLockedObject('custody/checkpoints/0000001000.json', Buffer.from('forged'))).rejects.toMatchObject({ code: 'E_LOCKED_OBJECT_EXISTS' });
      for (const bad of ['blobs/aa/x', 'custody/../blobs/x', 'custody/', '/custody/x', 'custody/a b']) {
        await expect(store.putLockedObject(bad, checkpoint)).rejects.toMatchObject({ code: 'E_INVALID_ID' });
      }
      const versions = await raw.send(new ListObjectVersionsCommand({ Bucket: store.bucket, Prefix: 'custody/' }));
      const version = versions.Versions!.at(-1)!;
      await expect(raw.send(new DeleteObjectCommand({ Bucket: store.bucket, Key: version.Key!, VersionId: version.VersionId! }))).rejects.toMatchObject({ $metadata: { httpStatusCode: 403 } });
    }));
  });

  it('two servers writing the same blob at once: one creates it, both end with the same verified bytes; a bit changed on the way is refused by Content-MD5', async () => {
    const dir = makeTempDir('bodycam-s3store-');
    const bucket = freshBucket('race');
    const a = s3Store(bucket, join(dir.path, 'a'));
    const b = s3Store(bucket, join(dir.path, 'b'));
    try {
      await a.open();
      await b.open();
      const results = await Promise.all([a.putBlob(digest, chunked(data, 10_000), data.length), b.putBlob(digest, chunked(data, 70_000), data.length)]);
      expect(results.filter((r) => r.created)).toHaveLength(1);
      // The loser may have left a second locked version (RGW ignores If-None-Match when versioned): the same bytes.
      const versions = await raw.send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: blobKey(digest) }));
      expect(versions.Versions!.length).toBeGreaterThanOrEqual(1);
      for (const version of versions.Versions!) {
        const got = await raw.send(new GetObjectCommand({ Bucket: bucket, Key: blobKey(digest), VersionId: version.VersionId! }));
        expect(sha256Hex(Buffer.from(await got.Body!.transformToByteArray()))).toBe(digest);
      }
      // The engine checks Content-MD5 (the server sends it on every PUT): a body changed in flight is BadDigest.
      const md5 = createHash('md5').update(data).digest('base64');
      const changed = Buffer.from(data); changed[5] ^= 1;
      await expect(raw.send(new PutObjectCommand({ Bucket: bucket, Key: 'blobs/zz/in-flight', Body: changed, ContentMD5: md5 }))).rejects.toMatchObject({ name: 'BadDigest' });
    } finally {
      await a.close();
      await b.close();
      dir.cleanup();
    }
  });

  it('clears a crash\'s spool files at open', async () => {
    await withTempDir('bodycam-s3store-', async (dir) => {
      const scratch = join(dir, 'scratch');
      mkdirSync(scratch, { recursive: true });
      writeFileSync(join(scratch, '1-abc.part'), 'half a segment');
      await withOpen(s3Store(freshBucket('spool'), scratch), () => {
        expect(existsSync(join(scratch, '1-abc.part'))).toBe(false);
      });
    });
  });
});
