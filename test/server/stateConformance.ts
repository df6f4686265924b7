/**
 * The contract every state backend meets (src/server/state.ts): recordings, possession, dock
 * pins, recording locks and the custody chain. state.test.ts runs it on the embedded backend
 * and on PostgreSQL. A backend shared by several servers also passes the `peer` cases: two
 * ServerState objects over the same backing storage (two server processes) agree.
 */
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { runs } from '../helpers/fcRuns.js';
import { generateSigningKeyPair } from '../../src/protocol/signing.js';
import type { CustodyFields } from '../../src/server/custody/custodyLog.js';
import type { ServerState } from '../../src/server/state.js';
import type { StoredRecording } from '../../src/server/store/store.js';
import { buildRecording, testBytes } from '../helpers/manifest.js';

export interface StateUnderTest {
  state: ServerState;
  /** A fresh ServerState over the same backing storage (a restart; for a shared backend: another server). */
  reopen(): Promise<ServerState>;
  /** The whole chain checked from outside (the verifier verify-log runs). */
  verify(): Promise<{ ok: boolean; entries: number }>;
  /** True when two states may be open at once over the backing storage (several servers). */
  shared: boolean;
  cleanup(): Promise<void>;
}

const fields = (i: number, event: CustodyFields['event'] = 'segment-stored'): CustodyFields =>
  ({ event, recordingId: `REC-${i}`, dockId: 'dock-1', sha256: i.toString(16).padStart(64, '0') });

function record(dockId: string, id: string, seed = 1): StoredRecording {
  const { manifest } = buildRecording(testBytes(3000, seed), { dockId, recordingId: id, segmentSize: 1000 });
  return { manifest, createdAt: new Date().toISOString() };
}

export function runStateConformance(name: string, factory: () => Promise<StateUnderTest>): void {
  describe(`State conformance: ${name}`, () => {
    let subject: StateUnderTest;
    const open: ServerState[] = [];
    const reopen = async () => { const s = await subject.reopen(); open.push(s); return s; };
    beforeEach(async () => { subject = await factory(); open.length = 0; });
    afterEach(async () => {
      for (const s of open) await s.close().catch(() => {});
      await subject.state.close().catch(() => {});
      await subject.cleanup();
    });

    // ---- recordings
    it('creates a record once per (dock, id), keeps it exactly, and namespaces ids per dock', async () => {
      const { recordings } = subject.state;
      const a = record('dock-1', 'REC-1');
      expect(await recordings.createRecording('dock-1', 'REC-1', a)).toBe(true);
      expect(await recordings.createRecording('dock-1', 'REC-1', record('dock-1', 'REC-1', 2))).toBe(false);
      expect(await recordings.getRecording('dock-1', 'REC-1')).toEqual(a);
      expect(await recordings.getRecording('dock-2', 'REC-1')).toBeUndefined();
      const b = record('dock-2', 'REC-1', 3);
      expect(await recordings.createRecording('dock-2', 'REC-1', b)).toBe(true);
      expect((await recordings.getRecording('dock-2', 'REC-1'))!.manifest.file.sha256).toBe(b.manifest.file.sha256);
      const done = { ...a, completedAt: new Date().toISOString() };
      await recordings.updateRecording('dock-1', 'REC-1', done);
      expect(await recordings.getRecording('dock-1', 'REC-1')).toEqual(done);
      // Visible to a restarted (or another) server.
      const again = await reopen();
      expect(await again.recordings.getRecording('dock-1', 'REC-1')).toEqual(done);
    });

    it('lists ids sorted per dock and keys sorted by dock then id; refuses ids outside the id syntax', async () => {
      const { recordings } = subject.state;
      for (const [dock, id] of [['dock-2', 'b'], ['dock-1', 'c'], ['dock-1', 'A'], ['dock-1', 'a'], ['dock-2', 'a']] as const) {
        expect(await recordings.createRecording(dock, id, record(dock, id))).toBe(true);
      }
      expect(await recordings.listRecordingIds('dock-1')).toEqual(['A', 'a', 'c']);
      expect(await recordings.listRecordingIds('dock-3')).toEqual([]);
      expect(await recordings.listRecordings()).toEqual([
        { dockId: 'dock-1', recordingId: 'A' }, { dockId: 'dock-1', recordingId: 'a' }, { dockId: 'dock-1', recordingId: 'c' },
        { dockId: 'dock-2', recordingId: 'a' }, { dockId: 'dock-2', recordingId: 'b' },
      ]);
      if (recordings.listRecordingsChangedSince) {
        const changed = await recordings.listRecordingsChangedSince(new Date(Date.now() - 60_000));
        expect(changed).toHaveLength(5);
      }
      for (const bad of ['../x', '', 'a/b', '..']) {
        await expect(recordings.getRecording('dock-1', bad)).rejects.toMatchObject({ code: 'E_INVALID_ID' });
        await expect(recordings.createRecording(bad, 'x', record('dock-1', 'x'))).rejects.toMatchObject({ code: 'E_INVALID_ID' });
      }
    });

    it('concurrent creates of one id: exactly one wins', async () => {
      const peers = subject.shared ? [subject.state, await reopen(), await reopen()] : [subject.state];
      const results = await Promise.all(Array.from({ length: 12 }, (_, i) => peers[i % peers.length]!.recordings.createRecording('dock-1', 'RACE', record('dock-1', 'RACE', i))));
      expect(results.filter(Boolean)).toHaveLength(1);
    });

    // ---- possession
    it('possession rows of a completed recording are forgotten for that dock only, idempotently', async () => {
      const { possession } = subject.state;
      const [a, b, c] = ['0a', '0b', '0c'].map((x) => x.repeat(32));
      for (const sha of [a!, b!, c!]) { await possession.add('dock-1', sha); await possession.add('dock-2', sha); }
      await possession.forget('dock-1', 'R1', [a!, b!, a!]);
      await possession.forget('dock-1', 'R1', [a!]);
      await possession.forget('dock-1', 'R1', []);
      expect([await possession.has('dock-1', a!), await possession.has('dock-1', b!), await possession.has('dock-1', c!)]).toEqual([false, false, true]);
      expect([await possession.has('dock-2', a!), await possession.has('dock-2', b!)]).toEqual([true, true]);
    });

    it('a completion keeps the rows another receiving recording of the dock expects, until that one completes', async () => {
      const { possession } = subject.state;
      const [shared, onlyA, onlyB] = ['1a', '1b', '1c'].map((x) => x.repeat(32)) as [string, string, string];
      for (const sha of [shared, onlyA, onlyB]) await possession.add('dock-1', sha);
      await possession.add('dock-2', shared);
      await possession.expect('dock-1', 'A', [shared, onlyA]);
      await possession.expect('dock-1', 'B', [shared, onlyB, shared]);
      await possession.expect('dock-1', 'B', [shared]);
      // Another dock's expectation keeps nothing of dock-1's.
      await possession.expect('dock-2', 'A', [onlyA]);
      await possession.forget('dock-1', 'A', [shared, onlyA]);
      expect([await possession.has('dock-1', shared), await possession.has('dock-1', onlyA), await possession.has('dock-1', onlyB)]).toEqual([true, false, true]);
      await possession.forget('dock-1', 'B', [shared, onlyB]);
      expect([await possession.has('dock-1', shared), await possession.has('dock-1', onlyB)]).toEqual([false, false]);
      expect(await possession.has('dock-2', shared)).toBe(true);
    });

    it('possession is per dock, idempotent and durable', async () => {
      const { possession } = subject.state;
      const sha = 'ab'.repeat(32);
      expect(await possession.has('dock-1', sha)).toBe(false);
      await possession.add('dock-1', sha);
      await possession.add('dock-1', sha);
      expect(await possession.has('dock-1', sha)).toBe(true);
      expect(await possession.has('dock-2', sha)).toBe(false);
      await subject.state.close();
      subject.state = await subject.reopen();
      expect(await subject.state.possession.has('dock-1', sha)).toBe(true);
    });

    // ---- dock pins
    it('pins a dock key on first use, matches it after, refuses another, and forgets it on reset', async () => {
      const { dockKeys } = subject.state;
      const k1 = generateSigningKeyPair().publicKeyPem;
      const k2 = generateSigningKeyPair().publicKeyPem;
      expect(await dockKeys.check('dock-1', k1)).toBe('pinned');
      expect(await dockKeys.check('dock-1', k1)).toBe('match');
      expect(await dockKeys.check('dock-1', k2)).toBe('mismatch');
      expect(await dockKeys.check('dock-2', k2)).toBe('pinned');
      expect(await dockKeys.reset('dock-1')).toBe(true);
      expect(await dockKeys.reset('dock-1')).toBe(false);
      expect(await dockKeys.check('dock-1', k2)).toBe('pinned');
    });

    it('concurrent first uses with two keys pin exactly one of them', async () => {
      const peers = subject.shared ? [subject.state, await reopen()] : [subject.state];
      const keys = [generateSigningKeyPair().publicKeyPem, generateSigningKeyPair().publicKeyPem];
      const results = await Promise.all(Array.from({ length: 8 }, (_, i) => peers[i % peers.length]!.dockKeys.check('dock-9', keys[i % 2]!)));
      expect(results.filter((r) => r === 'pinned')).toHaveLength(1);
      const winner = keys[results.indexOf('pinned') % 2]!;
      results.forEach((r, i) => expect(r).toBe(keys[i % 2] === winner ? (r === 'pinned' ? 'pinned' : 'match') : 'mismatch'));
    });

    // ---- locks
    it('a lock excludes every other holder of the key (on every peer), lets other keys run, and is released on error', async () => {
      const peers = subject.shared ? [subject.state, await reopen()] : [subject.state];
      let inside = 0;
      let most = 0;
      const work = (i: number) => peers[i % peers.length]!.locks.run('dock-1/REC-1', async () => {
        inside++; most = Math.max(most, inside);
        await new Promise((r) => setTimeout(r, 5));
        inside--;
        if (i === 3) throw new Error('boom');
        return i;
      });
      const results = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => work(i)));
      expect(most).toBe(1);
      expect(results.filter((r) => r.status === 'rejected')).toHaveLength(1);
      // Another key is not held up by a holder of this one.
      let release!: () => void;
      const held = peers[0]!.locks.run('dock-1/A', () => new Promise<void>((r) => { release = r; }));
      await expect(peers[peers.length - 1]!.locks.run('dock-1/B', async () => 'free')).resolves.toBe('free');
      release();
      await held;
    });

    // ---- custody chain
    it('appends form one gap-free chain, also under concurrency and across peers, and verify from outside', async () => {
      const peers = subject.shared ? [subject.state, await reopen(), await reopen()] : [subject.state];
      const seqs = await Promise.all(Array.from({ length: 60 }, (_, i) => peers[i % peers.length]!.custody.append(fields(i)).then((r) => r.seq)));
      expect([...seqs].sort((a, b) => a - b)).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
      for (const p of peers.slice(1)) await p.close();
      open.length = 0;
      await subject.state.close();
      subject.state = await subject.reopen();
      expect((await subject.state.custody.append(fields(99))).seq).toBe(61);
      await subject.state.close();
      const report = await subject.verify();
      expect(report).toMatchObject({ ok: true, entries: 61 });
      subject.state = await subject.reopen();
    });

    it('appendUnlessMentioned appends one entry per subject whoever asks, concurrently (property)', async () => {
      const peers = subject.shared ? [subject.state, await reopen()] : [subject.state];
      await fc.assert(fc.asyncProperty(fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 1, maxLength: 20 }), async (subjects) => {
        const round = Math.random().toString(36).slice(2, 8);
        const results = await Promise.all(subjects.map((s, i) => peers[i % peers.length]!.custody.appendUnlessMentioned({ ...fields(s), recordingId: `R-${round}`, sha256: `${round}${s}`.padEnd(64, '0') })));
        expect(results.filter((seq) => seq > 0)).toHaveLength(new Set(subjects).size);
      }), { numRuns: runs(15) });
    });

    it('entriesAbout lists a recording\'s own entries and its blobs\' segment-stored entries, in chain order, bounded', async () => {
      const { custody } = subject.state;
      if (!custody.entriesAbout) throw new Error('every backend lists a recording\'s entries (the console\'s custody timeline)');
      const blob = (n: number) => n.toString(16).padStart(64, 'b');
      const mine = { recordingId: 'REC-7', dockId: 'dock-1' };
      await custody.append({ ...mine, event: 'recording-created', sha256: blob(0) });
      await custody.append({ ...mine, dockId: 'dock-2', event: 'recording-created', sha256: blob(0) }); // another dock's REC-7
      await custody.append({ recordingId: 'REC-8', dockId: 'dock-1', event: 'segment-stored', sha256: blob(1) }); // my blob, stored for another recording
      await custody.append({ ...mine, event: 'segment-stored', sha256: blob(2) });
      await custody.append({ recordingId: 'REC-8', dockId: 'dock-1', event: 'segment-stored', sha256: blob(3) }); // not mine
      await custody.append({ ...mine, event: 'viewed', sha256: blob(0) }, () => ({ extra: { by: 'rita' }, value: undefined }));
      const about = await custody.entriesAbout('dock-1', 'REC-7', [blob(1), blob(2), blob(1)], 100);
      expect(about.map((e) => [e.seq, e.event, e.dockId, e.recordingId])).toEqual([
        [1, 'recording-created', 'dock-1', 'REC-7'], [3, 'segment-stored', 'dock-1', 'REC-8'], [4, 'segment-stored', 'dock-1', 'REC-7'], [6, 'viewed', 'dock-1', 'REC-7'],
      ]);
      expect(about[3]).toMatchObject({ by: 'rita' });
      expect((await custody.entriesAbout('dock-1', 'REC-7', [blob(1), blob(2)], 2)).map((e) => e.seq)).toEqual([1, 3]);
      expect(await custody.entriesAbout('dock-1', 'REC-9', [], 10)).toEqual([]);
      if (subject.shared) expect((await (await reopen()).custody.entriesAbout!('dock-2', 'REC-7', [], 10)).map((e) => e.seq)).toEqual([2]);
    });

    it('a receipt entry is covered by a signed checkpoint when its append resolves and is found again', async () => {
      const { custody } = subject.state;
      await custody.append(fields(1, 'recording-created'));
      const { seq, value } = await custody.append({ ...fields(1, 'receipt-issued') }, (s, prev) => ({ extra: { receiptSignature: 'sig', receivedAt: 'now', serverKeyId: 'k' }, value: { s, prev } }));
      expect(seq).toBe(2);
      expect(value).toEqual({ s: 2, prev: expect.stringMatching(/^[0-9a-f]{64}$/) });
      expect(custody.lastCheckpoint()!.seq).toBeGreaterThanOrEqual(2);
      const found = await custody.findReceiptEntry('dock-1', 'REC-1');
      expect(found).toMatchObject({ seq: 2, event: 'receipt-issued', receiptSignature: 'sig' });
      expect(await custody.findReceiptEntry('dock-1', 'REC-2')).toBeUndefined();
      if (subject.shared) {
        const other = await reopen();
        expect(await other.custody.findReceiptEntry('dock-1', 'REC-1')).toMatchObject({ seq: 2 });
      }
    });
  });
}
