import { describe, expect, it } from '@jest/globals';
import { appendFileSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { FsStore } from '../../../src/server/store/fsStore.js';
import { drainVerified, isBlobIntegrityError } from '../../../src/server/store/verifiedRead.js';
import { IntegrityError } from '../../../src/errors.js';
import { sha256Hex } from '../../../src/protocol/digest.js';
import { buildRecording, testBytes } from '../../helpers/manifest.js';
import { makeTempDir, withOpen, withTempDir } from '../../helpers/tmp.js';
import { runStoreConformance, type BlobDamage } from './storeConformance.js';

function blobFile(root: string, sha256: string): string {
  return join(root, 'blobs', sha256.slice(0, 2), sha256);
}

/** Damage a blob file in place, as a failing disk or a person with shell access would. */
export function damageFsBlob(root: string, sha256: string, how: BlobDamage): void {
  const path = blobFile(root, sha256);
  switch (how.kind) {
    case 'flip': {
      const bytes = readFileSync(path);
      bytes[how.offset] = bytes[how.offset]! ^ 0x01;
      writeFileSync(path, bytes);
      break;
    }
    case 'truncate': truncateSync(path, how.length); break;
    case 'append': appendFileSync(path, how.bytes); break;
    case 'replace': writeFileSync(path, how.bytes); break;
    case 'delete': rmSync(path); break;
  }
}

runStoreConformance('filesystem', async () => {
  const dir = makeTempDir('bodycam-fsstore-');
  return {
    store: new FsStore(dir.path), reopen: async () => new FsStore(dir.path), cleanup: dir.cleanup,
    damage: async (sha256, how) => damageFsBlob(dir.path, sha256, how),
  };
});

async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

describe('FsStore specifics', () => {
  it('removes temp files a crash left behind, at open', async () => {
    await withTempDir('bodycam-fsstore-', async (dir) => {
      mkdirSync(join(dir, 'tmp'), { recursive: true });
      writeFileSync(join(dir, 'tmp', '123-abc.part'), 'half a segment');
      const store = new FsStore(dir);
      await store.open();
      expect(readdirSync(join(dir, 'tmp'))).toEqual([]);
      expect(existsSync(join(dir, 'blobs'))).toBe(true);
      await store.close();
    });
  });

  it('moves recordings of the flat layout (before per-dock namespacing) under their dock at open', async () => {
    await withTempDir('bodycam-fsstore-', async (dir) => {
      const a = buildRecording(testBytes(500, 1), { dockId: 'dock-a', recordingId: 'old-a' }).manifest;
      const b = buildRecording(testBytes(500, 2), { dockId: 'dock-b', recordingId: 'old-b' }).manifest;
      mkdirSync(join(dir, 'recordings'), { recursive: true });
      writeFileSync(join(dir, 'recordings', 'old-a.json'), JSON.stringify({ manifest: a, createdAt: 'then', completedAt: 'done' }));
      writeFileSync(join(dir, 'recordings', 'old-b.json'), JSON.stringify({ manifest: b, createdAt: 'then' }));
      // A crash half-way through an earlier migration: the new name exists with the same bytes.
      mkdirSync(join(dir, 'recordings', 'dock-b'));
      writeFileSync(join(dir, 'recordings', 'dock-b', 'old-b.json'), JSON.stringify({ manifest: b, createdAt: 'then' }));
      const store = new FsStore(dir);
      await store.open();
      expect(readdirSync(join(dir, 'recordings')).sort()).toEqual(['dock-a', 'dock-b']);
      expect((await store.getRecording('dock-a', 'old-a'))?.completedAt).toBe('done');
      expect((await store.getRecording('dock-b', 'old-b'))?.createdAt).toBe('then');
      expect(await store.getRecording('dock-b', 'old-a')).toBeUndefined();
      expect(await store.listRecordings()).toEqual([{ dockId: 'dock-a', recordingId: 'old-a' }, { dockId: 'dock-b', recordingId: 'old-b' }]);
      // The batch read (the catalog's first build) answers as getRecording of each, in order, never another dock's.
      const keys = [{ dockId: 'dock-b', recordingId: 'old-b' }, { dockId: 'dock-b', recordingId: 'old-a' }, { dockId: 'dock-a', recordingId: 'old-a' }];
      expect(await store.getRecordings(keys)).toEqual(await Promise.all(keys.map((k) => store.getRecording(k.dockId, k.recordingId))));
      expect((await store.getRecordings(keys)).map((r) => r?.createdAt)).toEqual(['then', undefined, 'then']);
      await expect(store.getRecordings([{ dockId: 'dock-a', recordingId: '../../etc/passwd' }])).rejects.toMatchObject({ code: 'E_INVALID_ID' });
      // A FIFO in the place of a record is refused at once, never waited on (the batch read blocks the event loop).
      execFileSync('mkfifo', [join(dir, 'recordings', 'dock-a', 'fifo.json')]);
      await expect(store.getRecordings([{ dockId: 'dock-a', recordingId: 'fifo' }])).rejects.toMatchObject({ code: 'E_RECORD_NOT_A_FILE' });
      await store.close();
      // A clash with different bytes is not guessed at: open refuses.
      writeFileSync(join(dir, 'recordings', 'old-a.json'), JSON.stringify({ manifest: a, createdAt: 'other' }));
      await expect(new FsStore(dir).open()).rejects.toMatchObject({ code: 'E_STORE_MIGRATION' });
    });
  });

  it('a damaged blob is moved to damaged/ (kept for the operator), not deleted', async () => {
    await withTempDir('bodycam-fsstore-', (dir) => withOpen(new FsStore(dir), async (store) => {
      const data = testBytes(50_000, 2);
      const sha = sha256Hex(data);
      await store.putBlob(sha, Readable.from([data]), data.length);
      damageFsBlob(dir, sha, { kind: 'flip', offset: 3 });
      await expect(readAll(store.readBlob(sha))).rejects.toMatchObject({ code: 'E_BLOB_DAMAGED' });
      expect(existsSync(blobFile(dir, sha))).toBe(false);
      const kept = readdirSync(join(dir, 'damaged'));
      expect(kept).toHaveLength(1);
      expect(kept[0]!.startsWith(`${sha}-`)).toBe(true);
      expect(store.usedBytes()).toBe(0);
    }));
  });

  it('usage: a damaged blob stops counting; a store that was not opened (scrub) never rewrites the figure', async () => {
    await withTempDir('bodycam-fsstore-', async (dir) => {
      const store = new FsStore(dir);
      await store.open();
      const a = testBytes(30_000, 6);
      const b = testBytes(20_000, 7);
      await store.putBlob(sha256Hex(a), Readable.from([a]), a.length);
      await store.putBlob(sha256Hex(b), Readable.from([b]), b.length);
      expect(store.usedBytes()).toBe(50_000);
      expect(await drainVerified(store.readBlob(sha256Hex(b)))).toBe(b.length);
      damageFsBlob(dir, sha256Hex(a), { kind: 'flip', offset: 0 });
      await expect(readAll(store.readBlob(sha256Hex(a)))).rejects.toMatchObject({ code: 'E_BLOB_DAMAGED' });
      expect(store.usedBytes()).toBe(20_000);
      await store.close();
      const figure = readFileSync(join(dir, 'store-usage.json'), 'utf8');
      expect(JSON.parse(figure)).toEqual({ bytes: 20_000 });
      // A scrub's store is never opened: finding damage must not overwrite the running server's figure.
      const scrubber = new FsStore(dir);
      damageFsBlob(dir, sha256Hex(b), { kind: 'truncate', length: 5 });
      await expect(readAll(scrubber.readBlob(sha256Hex(b)))).rejects.toMatchObject({ code: 'E_BLOB_DAMAGED' });
      await scrubber.close();
      expect(readFileSync(join(dir, 'store-usage.json'), 'utf8')).toBe(figure);
    });
  });

  it('only a damaged or missing blob is a blob integrity error (an I/O error is not swallowed as damage)', () => {
    expect(isBlobIntegrityError(new IntegrityError('E_BLOB_DAMAGED', 'x'))).toBe(true);
    expect(isBlobIntegrityError(new IntegrityError('E_BLOB_MISSING', 'x'))).toBe(true);
    expect(isBlobIntegrityError(new IntegrityError('E_BODY_DIGEST', 'x'))).toBe(false);
    expect(isBlobIntegrityError(Object.assign(new Error('EIO'), { code: 'E_BLOB_DAMAGED' }))).toBe(false);
  });

  it('a read the consumer abandons early closes its file (no descriptor leak)', async () => {
    await withTempDir('bodycam-fsstore-', (dir) => withOpen(new FsStore(dir), async (store) => {
      const data = testBytes(3_000_000, 9);
      const sha = sha256Hex(data);
      await store.putBlob(sha, Readable.from([data]), data.length);
      const fds = () => readdirSync('/proc/self/fd').length;
      await readAll(store.readBlob(sha, 0, 9)); // warm up lazily opened descriptors
      const before = fds();
      for (let i = 0; i < 20; i++) {
        const stream = store.readBlob(sha);
        const iterator = stream[Symbol.asyncIterator]();
        await iterator.next(); // one chunk read, the file is open
        await iterator.return!(); // the consumer goes away
      }
      await new Promise((r) => setTimeout(r, 50));
      expect(fds()).toBeLessThanOrEqual(before + 1);
    }));
  });

  it('a folder in place of a blob is damaged, not served; a put replaces it', async () => {
    await withTempDir('bodycam-fsstore-', (dir) => withOpen(new FsStore(dir), async (store) => {
      const data = testBytes(10_000, 8);
      const sha = sha256Hex(data);
      mkdirSync(blobFile(dir, sha), { recursive: true });
      expect(await store.hasBlob(sha)).toBe(false);
      await expect(readAll(store.readBlob(sha))).rejects.toMatchObject({ code: 'E_BLOB_DAMAGED', details: { sha256: sha } });
      expect(existsSync(blobFile(dir, sha))).toBe(false); // moved to damaged/
      mkdirSync(blobFile(dir, sha));
      expect((await store.putBlob(sha, Readable.from([data]), data.length)).created).toBe(true); // the put's own check moves it
      expect((await readAll(store.readBlob(sha))).equals(data)).toBe(true);
    }));
  });

  it('a symbolic link in blobs/ is never followed: not held, its read fails, a put replaces it', async () => {
    await withTempDir('bodycam-fsstore-', (dir) => withOpen(new FsStore(dir), async (store) => {
      const data = testBytes(20_000, 4);
      const sha = sha256Hex(data);
      const outside = join(dir, 'outside.bin');
      writeFileSync(outside, data); // even the right bytes: a link is not a stored blob
      mkdirSync(join(dir, 'blobs', sha.slice(0, 2)), { recursive: true });
      symlinkSync(outside, blobFile(dir, sha));
      expect(await store.hasBlob(sha)).toBe(false);
      await expect(readAll(store.readBlob(sha))).rejects.toMatchObject({ code: 'E_BLOB_DAMAGED' });
      expect((await store.putBlob(sha, Readable.from([data]), data.length)).created).toBe(true);
      expect(lstatSync(blobFile(dir, sha)).isFile()).toBe(true);
      expect((await readAll(store.readBlob(sha))).equals(data)).toBe(true);
      expect(readFileSync(outside).equals(data)).toBe(true); // the link's target was not touched
    }));
  });

  it('scanBlobs: the verified read of many blobs in order, each chunk lent once; every kind of damage is found and moved aside as readBlob does', async () => {
    await withTempDir('bodycam-fsstore-', (dir) => withOpen(new FsStore(dir), async (store) => {
      // Larger than the scan's 1 MiB buffers, so chunks of one blob come from both of them in turn.
      const blobs = [testBytes(2_600_000, 11), testBytes(1, 12), testBytes(1_048_576, 13), testBytes(70_000, 14), testBytes(90_000, 15), testBytes(30_000, 16), testBytes(40_000, 17)];
      const shas = blobs.map((b) => sha256Hex(b));
      for (const [i, b] of blobs.entries()) await store.putBlob(shas[i]!, Readable.from([b]), b.length);
      damageFsBlob(dir, shas[3]!, { kind: 'flip', offset: 69_999 });
      damageFsBlob(dir, shas[4]!, { kind: 'truncate', length: 89_999 });
      damageFsBlob(dir, shas[5]!, { kind: 'delete' });
      rmSync(blobFile(dir, shas[6]!));
      symlinkSync(join(dir, 'nowhere'), blobFile(dir, shas[6]!));
      // wholeCheckedByCaller (complete's one-pass check): changed bytes are handed on as they are
      // and nothing is moved aside for them (the caller's whole-file hash finds them); what cannot
      // be read as a file fails as before.
      const unchecked = blobs.map(() => [] as Buffer[]);
      const quick = await store.scanBlobs(shas, (chunk, blob) => { unchecked[blob]!.push(Buffer.from(chunk)); }, { wholeCheckedByCaller: true });
      expect(quick.slice(0, 5)).toEqual([...blobs.slice(0, 3).map((b) => ({ size: b.length })), { size: 70_000 }, { size: 89_999 }]);
      expect(Buffer.concat(unchecked[3]!).equals(blobs[3]!)).toBe(false);
      expect(quick[5]!.error).toMatchObject({ code: 'E_BLOB_MISSING' });
      expect(quick[6]!.error).toMatchObject({ code: 'E_BLOB_DAMAGED' }); // a symbolic link: never followed, moved aside
      for (const i of [3, 4]) expect(await store.hasBlob(shas[i]!)).toBe(true);
      expect(readdirSync(join(dir, 'damaged'))).toHaveLength(1);
      // Copy each chunk while it is lent (as a hash consumes it), and check it is not handed out twice.
      const seen = blobs.map(() => [] as Buffer[]);
      const order: number[] = [];
      const results = await store.scanBlobs(shas, (chunk, blob) => { seen[blob]!.push(Buffer.from(chunk)); order.push(blob); });
      expect(order).toEqual([...order].sort((a, b) => a - b));
      for (const i of [0, 1, 2]) {
        expect(results[i]).toEqual({ size: blobs[i]!.length });
        expect(Buffer.concat(seen[i]!).equals(blobs[i]!)).toBe(true);
      }
      expect(seen[0]!.length).toBe(3);
      expect(results[3]!.error).toMatchObject({ code: 'E_BLOB_DAMAGED' });
      expect(results[4]!.error).toMatchObject({ code: 'E_BLOB_DAMAGED' });
      expect(results[5]!.error).toMatchObject({ code: 'E_BLOB_MISSING' });
      expect(results[6]!.error).toMatchObject({ code: 'E_BLOB_MISSING' }); // moved aside by the first scan
      for (const i of [3, 4, 6]) expect(await store.hasBlob(shas[i]!)).toBe(false);
      expect(readdirSync(join(dir, 'damaged'))).toHaveLength(3);
      // The intact ones are still held and read the same through readBlob.
      for (const i of [0, 1, 2]) expect((await readAll(store.readBlob(shas[i]!))).equals(blobs[i]!)).toBe(true);
    }));
  });

  it('folders are 0700 and files 0600, whatever the umask', async () => {
    const dir = makeTempDir('bodycam-fsstore-');
    const old = process.umask(0o000);
    try {
      const store = new FsStore(join(dir.path, 'data'));
      await store.open();
      const data = testBytes(1000, 5);
      await store.putBlob(sha256Hex(data), Readable.from([data]), data.length);
      await store.close();
      const walk = (path: string): void => {
        const info = statSync(path);
        expect({ path, mode: (info.mode & 0o777).toString(8) }).toEqual({ path, mode: info.isDirectory() ? '700' : '600' });
        if (info.isDirectory()) for (const name of readdirSync(path)) walk(join(path, name));
      };
      walk(join(dir.path, 'data'));
    } finally {
      process.umask(old);
      dir.cleanup();
    }
  });
});
