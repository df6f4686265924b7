/**
 * The contract every Store backend must meet. A backend's test calls
 * `runStoreConformance(name, factory)`; fsStore.test.ts runs it on the FS store.
 */
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { Readable } from 'node:stream';
import { sha256Hex } from '../../../src/protocol/digest.js';
import { IntegrityError } from '../../../src/errors.js';
import type { Store, StoredRecording } from '../../../src/server/store/store.js';
import { buildRecording, testBytes } from '../../helpers/manifest.js';

/** Ways the bytes at rest can go wrong behind the store's back (a disk, an operator, an attacker). */
export type BlobDamage =
  | { kind: 'flip'; offset: number }
  | { kind: 'truncate'; length: number }
  | { kind: 'append'; bytes: Buffer }
  | { kind: 'replace'; bytes: Buffer }
  | { kind: 'delete' };

export interface StoreUnderTest {
  store: Store;
  /** Change a stored blob's bytes directly in the backing storage, bypassing the Store API. */
  damage(sha256: string, how: BlobDamage): Promise<void>;
  /** Make a fresh Store over the same backing storage (a restart). */
  reopen(): Promise<Store>;
  cleanup(): Promise<void> | void;
}

/** What a consumer of a read sees: the bytes, whether it ended cleanly, and the error otherwise. */
async function consume(stream: Readable): Promise<{ bytes: Buffer; ended: boolean; error?: unknown }> {
  const chunks: Buffer[] = [];
  let ended = false;
  stream.on('end', () => { ended = true; });
  try {
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    return { bytes: Buffer.concat(chunks), ended };
  } catch (error) {
    return { bytes: Buffer.concat(chunks), ended, error };
  }
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function chunked(data: Buffer, size = 7000): AsyncIterable<Buffer> {
  return (async function* () {
    for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
  })();
}

export function runStoreConformance(name: string, factory: () => Promise<StoreUnderTest>): void {
  describe(`Store conformance: ${name}`, () => {
    let subject: StoreUnderTest;
    beforeEach(async () => { subject = await factory(); await subject.store.open(); });
    afterEach(async () => { await subject.store.close(); await subject.cleanup(); });

    const data = testBytes(100_000, 7);
    const digest = sha256Hex(data);

    it('stores a blob only when length and digest match, and reads it back whole and by range', async () => {
      const { store } = subject;
      expect(await store.hasBlob(digest)).toBe(false);
      const result = await store.putBlob(digest, chunked(data), data.length);
      expect(result).toEqual({ created: true, size: data.length });
      expect(await store.hasBlob(digest)).toBe(true);
      expect((await readAll(store.readBlob(digest))).equals(data)).toBe(true);
      expect((await readAll(store.readBlob(digest, 10, 19))).equals(data.subarray(10, 20))).toBe(true);
      expect(store.usedBytes()).toBe(data.length);
      await store.syncBlobs([digest]);
      expect(await store.hasBlob(digest)).toBe(true);
    });

    it('rejects a wrong digest, a short body and a long body, keeping nothing', async () => {
      const { store } = subject;
      const wrong = sha256Hex(Buffer.from('something else'));
      await expect(store.putBlob(wrong, chunked(data), data.length)).rejects.toMatchObject({ code: 'E_BODY_DIGEST' });
      await expect(store.putBlob(digest, chunked(data.subarray(1)), data.length)).rejects.toMatchObject({ code: 'E_BODY_LENGTH' });
      await expect(store.putBlob(digest, chunked(Buffer.concat([data, Buffer.from('x')])), data.length)).rejects.toBeInstanceOf(IntegrityError);
      expect(await store.hasBlob(wrong)).toBe(false);
      expect(await store.hasBlob(digest)).toBe(false);
      expect(store.usedBytes()).toBe(0);
    });

    it('keeps nothing when the body fails mid-way', async () => {
      const { store } = subject;
      const failing = (async function* () {
        yield data.subarray(0, 5000);
        throw new Error('client went away');
      })();
      await expect(store.putBlob(digest, failing, data.length)).rejects.toThrow('client went away');
      expect(await store.hasBlob(digest)).toBe(false);
    });

    it('stores a duplicate once and two concurrent writers leave one blob with exactly one creator', async () => {
      const { store } = subject;
      const results = await Promise.all([store.putBlob(digest, chunked(data, 1000), data.length), store.putBlob(digest, chunked(data, 3000), data.length)]);
      expect(results.filter((r) => r.created)).toHaveLength(1);
      const again = await store.putBlob(digest, chunked(data), data.length);
      expect(again.created).toBe(false);
      expect(store.usedBytes()).toBe(data.length);
      expect((await readAll(store.readBlob(digest))).equals(data)).toBe(true);
    });

    it('creates a recording once, updates it atomically and lists it; survives a reopen', async () => {
      const { store } = subject;
      const { manifest } = buildRecording(testBytes(1000, 3), { segmentSize: 300 });
      const dock = manifest.dock.id;
      const record: StoredRecording = { manifest, createdAt: new Date().toISOString() };
      expect(await store.createRecording(dock, manifest.recordingId, record)).toBe(true);
      expect(await store.createRecording(dock, manifest.recordingId, { ...record, createdAt: 'other' })).toBe(false);
      expect((await store.getRecording(dock, manifest.recordingId))!.createdAt).toBe(record.createdAt);
      await store.updateRecording(dock, manifest.recordingId, { ...record, completedAt: '2026-01-01T00:00:00.000Z' });
      await store.putBlob(digest, chunked(data), data.length);
      expect(await store.listRecordingIds(dock)).toEqual([manifest.recordingId]);
      expect(await store.listRecordings()).toEqual([{ dockId: dock, recordingId: manifest.recordingId }]);
      expect(await store.getRecording(dock, 'no-such-recording')).toBeUndefined();
      await store.close();
      const reopened = await subject.reopen();
      await reopened.open();
      subject.store = reopened;
      expect((await reopened.getRecording(dock, manifest.recordingId))!.completedAt).toBe('2026-01-01T00:00:00.000Z');
      expect(await reopened.hasBlob(digest)).toBe(true);
      expect(reopened.usedBytes()).toBe(data.length);
    });

    it('keys recordings by (dock, id): the same id of two docks is two records, neither sees the other', async () => {
      const { store } = subject;
      const a = buildRecording(testBytes(1000, 4), { segmentSize: 300, recordingId: 'rec-shared', dockId: 'dock-a' }).manifest;
      const b = buildRecording(testBytes(1200, 5), { segmentSize: 400, recordingId: 'rec-shared', dockId: 'dock-b' }).manifest;
      expect(await store.getRecording('dock-b', 'rec-shared')).toBeUndefined();
      expect(await store.createRecording('dock-a', 'rec-shared', { manifest: a, createdAt: 'a' })).toBe(true);
      // dock-a's record does not exist for dock-b: its create succeeds and makes its own.
      expect(await store.getRecording('dock-b', 'rec-shared')).toBeUndefined();
      expect(await store.createRecording('dock-b', 'rec-shared', { manifest: b, createdAt: 'b' })).toBe(true);
      await store.updateRecording('dock-a', 'rec-shared', { manifest: a, createdAt: 'a', completedAt: 'done-a' });
      const readA = (await store.getRecording('dock-a', 'rec-shared'))!;
      const readB = (await store.getRecording('dock-b', 'rec-shared'))!;
      expect([readA.createdAt, readA.completedAt, readA.manifest.file.sha256]).toEqual(['a', 'done-a', a.file.sha256]);
      expect([readB.createdAt, readB.completedAt, readB.manifest.file.sha256]).toEqual(['b', undefined, b.file.sha256]);
      expect(await store.listRecordingIds('dock-a')).toEqual(['rec-shared']);
      expect(await store.listRecordingIds('dock-b')).toEqual(['rec-shared']);
      expect(await store.listRecordingIds('dock-c')).toEqual([]);
      expect(await store.listRecordings()).toEqual([{ dockId: 'dock-a', recordingId: 'rec-shared' }, { dockId: 'dock-b', recordingId: 'rec-shared' }]);
    });

    // ---- bytes at rest are verified (issue 9, item 7) ------------------------------------

    const big = testBytes(3_500_000, 11); // several read chunks: the damage is seen after bytes went out
    const bigDigest = sha256Hex(big);
    const damages: [string, (other: Buffer) => BlobDamage][] = [
      ['one flipped byte near the end', () => ({ kind: 'flip', offset: big.length - 10 })],
      ['one flipped byte at the start', () => ({ kind: 'flip', offset: 0 })],
      ['a truncation', () => ({ kind: 'truncate', length: big.length - 1 })],
      ['appended bytes', () => ({ kind: 'append', bytes: Buffer.from('x') })],
      ['another blob\'s bytes', (other) => ({ kind: 'replace', bytes: other })],
    ];

    for (const [label, how] of damages) {
      it(`a blob with ${label} is never read to its end, whole or by range; it becomes missing and a verified put repairs it`, async () => {
        const { store } = subject;
        await store.putBlob(bigDigest, chunked(big, 65536), big.length);
        await store.putBlob(digest, chunked(data), data.length);
        await subject.damage(bigDigest, how(data));

        const whole = await consume(store.readBlob(bigDigest));
        expect(whole.ended).toBe(false);
        expect(whole.error).toBeInstanceOf(IntegrityError);
        expect(whole.error).toMatchObject({ code: 'E_BLOB_DAMAGED', details: { sha256: bigDigest } });
        expect(whole.bytes.length).toBeLessThan(big.length);
        // Marked: no longer held, so the dock is told to send it again.
        expect(await store.hasBlob(bigDigest)).toBe(false);
        // The intact blob beside it still reads, whole and by range.
        expect((await readAll(store.readBlob(digest, 100, 199))).equals(data.subarray(100, 200))).toBe(true);

        // A verified put of the right bytes stores them again (created, read back exact).
        const again = await store.putBlob(bigDigest, chunked(big, 100_000), big.length);
        expect(again.created).toBe(true);
        expect(await store.hasBlob(bigDigest)).toBe(true);
        expect(sha256Hex(await readAll(store.readBlob(bigDigest)))).toBe(bigDigest);
        expect((await readAll(store.readBlob(bigDigest, 5, 9))).equals(big.subarray(5, 10))).toBe(true);
      });
    }

    it('a verified range read returns exactly the range, wherever it falls (first, middle, last byte; across read chunks)', async () => {
      const { store } = subject;
      await store.putBlob(bigDigest, chunked(big, 65536), big.length);
      const mib = 1 << 20;
      const ranges: [number, number][] = [[0, 0], [1, 1], [mib - 1, mib], [mib + 10, mib + 20], [mib + 5, 3 * mib + 7], [2 * mib, 2 * mib + 99],
        [big.length - 1, big.length - 1], [big.length - 100, big.length - 1], [0, big.length - 1], [12345, 12344]];
      for (const [from, to] of ranges) {
        const got = await consume(store.readBlob(bigDigest, from, to));
        expect({ from, to, ended: got.ended, error: got.error, same: got.bytes.equals(big.subarray(from, to + 1)) }).toEqual({ from, to, ended: true, error: undefined, same: true });
      }
      // (12345, 12344) is the empty range content uses for a 0-byte file: no bytes, a clean end.
    });

    it('a range read verifies the whole blob: a small range far from the damage fails and yields nothing', async () => {
      const { store } = subject;
      await store.putBlob(bigDigest, chunked(big, 65536), big.length);
      await subject.damage(bigDigest, { kind: 'flip', offset: big.length - 1 });
      const range = await consume(store.readBlob(bigDigest, 0, 99));
      expect(range.ended).toBe(false);
      expect(range.error).toMatchObject({ code: 'E_BLOB_DAMAGED' });
      expect(range.bytes.length).toBe(0); // the one chunk of the range was held back until the hash failed
      expect(await store.hasBlob(bigDigest)).toBe(false);
    });

    it('a put of a name that exists but is damaged (not yet found) replaces it with the verified bytes', async () => {
      const { store } = subject;
      await store.putBlob(bigDigest, chunked(big, 65536), big.length);
      await subject.damage(bigDigest, { kind: 'flip', offset: 1234 });
      expect(await store.hasBlob(bigDigest)).toBe(true); // no read has found it yet
      const put = await store.putBlob(bigDigest, chunked(big, 65536), big.length);
      expect(put.created).toBe(true);
      expect(sha256Hex(await readAll(store.readBlob(bigDigest)))).toBe(bigDigest);
      // And an intact existing blob is kept: a duplicate put creates nothing.
      expect((await store.putBlob(bigDigest, chunked(big, 65536), big.length)).created).toBe(false);
    });

    it('a read that finds damage after a repair replaced the blob never moves the repaired blob away', async () => {
      const { store } = subject;
      await store.putBlob(bigDigest, chunked(big, 65536), big.length);
      await subject.damage(bigDigest, { kind: 'flip', offset: big.length - 5 });
      // A slow reader has the damaged bytes open and has seen its first chunk...
      const slow = store.readBlob(bigDigest);
      const iterator = slow[Symbol.asyncIterator]();
      const first = await iterator.next();
      expect(first.done).toBe(false);
      // ...when a verified upload repairs the blob (its own check finds the damage first).
      expect((await store.putBlob(bigDigest, chunked(big, 65536), big.length)).created).toBe(true);
      // The slow reader still fails (it read the damaged bytes), and the repair stays in place.
      let failed: unknown;
      try { for (;;) { if ((await iterator.next()).done) break; } } catch (error) { failed = error; }
      expect(failed).toMatchObject({ code: 'E_BLOB_DAMAGED' });
      expect(await store.hasBlob(bigDigest)).toBe(true);
      expect(sha256Hex(await readAll(store.readBlob(bigDigest)))).toBe(bigDigest);
    });

    it('many concurrent reads of one damaged blob all fail, and one put repairs it', async () => {
      const { store } = subject;
      await store.putBlob(bigDigest, chunked(big, 65536), big.length);
      await subject.damage(bigDigest, { kind: 'flip', offset: 2_000_000 });
      const reads = await Promise.all(Array.from({ length: 8 }, (_, i) => consume(store.readBlob(bigDigest, i * 1000, i * 1000 + 99))));
      for (const read of reads) {
        expect(read.ended).toBe(false);
        expect(['E_BLOB_DAMAGED', 'E_BLOB_MISSING']).toContain((read.error as { code?: string }).code);
      }
      expect(await store.hasBlob(bigDigest)).toBe(false);
      expect((await store.putBlob(bigDigest, chunked(big, 65536), big.length)).created).toBe(true);
      expect((await readAll(store.readBlob(bigDigest, 10, 20))).equals(big.subarray(10, 21))).toBe(true);
    });

    it('a deleted blob fails its read with E_BLOB_MISSING and is not held', async () => {
      const { store } = subject;
      await store.putBlob(digest, chunked(data), data.length);
      await subject.damage(digest, { kind: 'delete' });
      const read = await consume(store.readBlob(digest, 0, 10));
      expect(read.ended).toBe(false);
      expect(read.error).toMatchObject({ code: 'E_BLOB_MISSING', details: { sha256: digest } });
      expect(await store.hasBlob(digest)).toBe(false);
      expect((await store.putBlob(digest, chunked(data), data.length)).created).toBe(true);
    });

    it('a blob\'s identity (when the store has one) is stable while its bytes stay, and another after damage or repair', async () => {
      const { store } = subject;
      if (!store.blobIdentity) return;
      expect(await store.blobIdentity(bigDigest)).toBeUndefined();
      await store.putBlob(bigDigest, chunked(big, 65536), big.length);
      const first = await store.blobIdentity(bigDigest);
      expect(first).toEqual(expect.any(String));
      await readAll(store.readBlob(bigDigest));
      expect(await store.blobIdentity(bigDigest)).toBe(first);
      await store.putBlob(bigDigest, chunked(big, 65536), big.length); // a duplicate changes nothing
      expect(await store.blobIdentity(bigDigest)).toBe(first);
      const reopened = await subject.reopen();
      await reopened.open();
      try { expect(await reopened.blobIdentity!(bigDigest)).toBe(first); } finally { await reopened.close(); }
      // Same length, one byte flipped: the content check kept for `first` must not be reused.
      await subject.damage(bigDigest, { kind: 'flip', offset: 1000 });
      const damaged = await store.blobIdentity(bigDigest);
      expect(damaged).not.toBe(first);
      await consume(store.readBlob(bigDigest));
      await store.putBlob(bigDigest, chunked(big, 65536), big.length);
      const repaired = await store.blobIdentity(bigDigest);
      expect([repaired === first, repaired === damaged, typeof repaired]).toEqual([false, false, 'string']);
    });

    it('lists the blobs it holds (not the damaged ones)', async () => {
      const { store } = subject;
      await store.putBlob(digest, chunked(data), data.length);
      await store.putBlob(bigDigest, chunked(big), big.length);
      const listed: string[] = [];
      for await (const name of store.listBlobs()) listed.push(name);
      expect(listed.sort()).toEqual([digest, bigDigest].sort());
      await subject.damage(bigDigest, { kind: 'flip', offset: 7 });
      await consume(store.readBlob(bigDigest));
      const after: string[] = [];
      for await (const name of store.listBlobs()) after.push(name);
      expect(after).toEqual([digest]);
    });

    it('refuses ids and digests that could address anything outside the store', async () => {
      const { store } = subject;
      await expect(store.getRecording('dock-1', '../../etc/passwd')).rejects.toThrow();
      await expect(store.getRecording('..', 'x')).rejects.toThrow();
      await expect(store.createRecording('../etc', 'x', { manifest: buildRecording(testBytes(10, 1)).manifest, createdAt: 'x' })).rejects.toThrow();
      await expect(store.hasBlob('../' + digest.slice(3))).rejects.toThrow();
      expect(() => store.readBlob('..%2F..%2Fetc')).toThrow();
    });
  });
}
