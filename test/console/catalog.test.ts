/**
 * The recording catalog behind the console's and the operator API's pages (operator/catalog.ts):
 * its kept orders and per-dock / per-camera tallies answer exactly what a pass over every summary
 * would (fast-check against a plain re-computation), its saved summaries are read only for the
 * backend and chain they were saved from, and a first build that takes long is reported, not
 * waited for. Real FsStore in a temp folder; summaries enter through a real snapshot file.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { runs } from '../helpers/fcRuns.js';
import { existsSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Catalog, type RecordingFilter, type RecordingSummary } from '../../src/server/operator/catalog.js';
import { loadSnapshot, saveSnapshot, type SnapshotHeader } from '../../src/server/operator/catalogSnapshot.js';
import { sequenceGaps, SequenceTally } from '../../src/server/operator/sequence.js';
import { FsStore } from '../../src/server/store/fsStore.js';
import type { RecordingKey, StoredRecording } from '../../src/server/store/store.js';
import { makeTempDir } from '../helpers/tmp.js';

const NOW = Date.parse('2026-03-10T12:00:00.000Z');
const STALE_MS = 24 * 3600_000;
let tmp: ReturnType<typeof makeTempDir>;
let empty: FsStore;

beforeAll(async () => {
  tmp = makeTempDir('bodycam-catalog-');
  empty = new FsStore(join(tmp.path, 'empty'));
  await empty.open();
});
afterAll(async () => { await empty?.close(); tmp?.cleanup(); });

const summaryArb = (i: number) => fc.record({
  dockId: fc.constantFrom('d1', 'd2', 'd3'),
  deviceSerial: fc.constantFrom('C1', 'C2', 'C3', 'C4'),
  size: fc.integer({ min: 0, max: 10_000 }),
  complete: fc.integer({ min: 0, max: 3 }).map((n) => n > 0),
  integrity: fc.constantFrom('verified', 'unsigned', 'signature_invalid'),
  category: fc.option(fc.constantFrom('traffic', 'arrest'), { nil: undefined }),
  // Four days up to now, to the second: some today, some stale when receiving, some sharing a time.
  age: fc.integer({ min: 0, max: 4 * 86400 }),
  seq: fc.option(fc.integer({ min: 0, max: 40 }), { nil: undefined }),
}).map((r): RecordingSummary => {
  const createdAt = new Date(NOW - r.age * 1000).toISOString();
  return {
    dockId: r.dockId, id: `rec-${String(i).padStart(4, '0')}`, deviceSerial: r.deviceSerial, fileName: `clip-${i}.MP4`, size: r.size, sha256: 'a'.repeat(64),
    state: r.complete ? 'complete' : 'receiving', segmentCount: 3, segmentsReceived: 3, integrity: r.integrity as RecordingSummary['integrity'], createdAt, stale: false,
    ...(r.complete ? { completedAt: new Date(NOW - r.age * 500).toISOString() } : {}),
    ...(r.category !== undefined ? { category: r.category } : {}), ...(r.seq !== undefined ? { seq: r.seq } : {}),
  };
});
const summariesArb = fc.integer({ min: 0, max: 100 }).chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => summaryArb(i))));
const filterArb: fc.Arbitrary<RecordingFilter> = fc.record({
  dock: fc.constantFrom('d1', 'd2', 'nope'), device: fc.constantFrom('C1', 'C3', 'nope'), state: fc.constantFrom('receiving', 'complete', 'stale'),
  integrity: fc.constantFrom('verified', 'unsigned'), category: fc.constantFrom('traffic', 'arrest'),
  day: fc.integer({ min: 0, max: 4 }).map((d) => new Date(NOW - d * 86400_000).toISOString().slice(0, 10)),
}, { requiredKeys: [] });

/** The plain answer: a pass over every summary. */
const isStale = (s: RecordingSummary) => s.state === 'receiving' && NOW - Date.parse(s.createdAt) > STALE_MS;
function matching(all: RecordingSummary[], f: RecordingFilter): RecordingSummary[] {
  return all.filter((s) => (f.dock === undefined || s.dockId === f.dock) && (f.device === undefined || s.deviceSerial === f.device)
    && (f.state === undefined || s.state === f.state || (f.state === 'stale' && isStale(s))) && (f.integrity === undefined || s.integrity === f.integrity)
    && (f.category === undefined || s.category === f.category) && (f.day === undefined || s.createdAt.startsWith(f.day)));
}
const key = (s: RecordingSummary) => `${s.dockId}/${s.id}`;
const cmpKey = (a: RecordingSummary, b: RecordingSummary) => (a.dockId !== b.dockId ? (a.dockId < b.dockId ? -1 : 1) : a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
const newestFirst = (list: RecordingSummary[]) => [...list].sort((a, b) => (a.createdAt !== b.createdAt ? (a.createdAt < b.createdAt ? 1 : -1) : cmpKey(a, b)));

async function catalogFrom(summaries: RecordingSummary[], header: Partial<SnapshotHeader> = {}, extra: Partial<ConstructorParameters<typeof Catalog>[0]> = {}, store: FsStore = empty): Promise<Catalog> {
  const path = join(tmp.path, 'snapshot.jsonl');
  await saveSnapshot(path, { savedAt: NOW, backend: 'test-backend', ...header }, summaries);
  const catalog = new Catalog({ recordings: store, snapshotPath: path, backendId: 'test-backend', now: () => NOW, snapshotClockMarginMs: 0, ...extra });
  await catalog.refresh();
  return catalog;
}

function recordOf(s: RecordingSummary): StoredRecording {
  const manifest = {
    protocol: 1, recordingId: s.id, device: { serial: s.deviceSerial, sidecar: { ...(s.seq !== undefined ? { seq: s.seq } : {}), ...(s.category ? { category: s.category } : {}) } },
    dock: { id: s.dockId, publicKeyPem: 'x' }, file: { name: s.fileName, size: s.size, sha256: s.sha256 }, integrity: { status: s.integrity, notes: [] },
    segments: [0, 1, 2].map((index) => ({ index, offset: index, length: 1, sha256: 'b'.repeat(64) })), merkleRoot: 'c'.repeat(64), createdAt: s.createdAt,
  };
  return { manifest, createdAt: s.createdAt, ...(s.completedAt ? { completedAt: s.completedAt, receipt: { custodySeq: 1 } } : {}) } as unknown as StoredRecording;
}

/** Every page the catalog answers equals the plain answer over `all`. */
async function expectSameAsAPass(catalog: Catalog, all: RecordingSummary[], filters: RecordingFilter[]): Promise<void> {
  expect(catalog.size).toBe(all.length);
  for (const filter of [{}, ...filters]) {
    const want = newestFirst(matching(all, filter)).map(key);
    for (const [offset, limit] of [[0, 1000], [0, 7], [5, 3]] as const) {
      const got = catalog.newest(filter, offset, limit);
      expect([filter, got.total, got.items.map(key)]).toEqual([filter, want.length, want.slice(offset, offset + limit)]);
    }
    const walked: string[] = [];
    let cursor: string | undefined;
    let total = -1;
    do {
      const page = catalog.page(filter, 7, cursor);
      walked.push(...page.items.map(key));
      total = page.total;
      cursor = page.next;
    } while (cursor);
    expect([filter, total, walked]).toEqual([filter, want.length, matching(all, filter).sort(cmpKey).map(key)]);
  }
  const today = new Date(NOW).toISOString().slice(0, 10);
  const docks = [...new Set(all.map((s) => s.dockId))].sort().map((dockId) => {
    const of = all.filter((s) => s.dockId === dockId);
    const arrivals = of.map((s) => (s.completedAt && s.completedAt > s.createdAt ? s.completedAt : s.createdAt)).sort();
    return { dockId, recordings: of.length, bytes: of.reduce((n, s) => n + s.size, 0), bytesToday: of.filter((s) => s.createdAt.startsWith(today)).reduce((n, s) => n + s.size, 0),
      inProgress: of.filter((s) => s.state === 'receiving').length, stale: of.filter(isStale).length, lastSeen: arrivals[arrivals.length - 1] };
  });
  expect(await catalog.docks()).toEqual(docks);
  const cameras = [...new Set(all.map((s) => s.deviceSerial))].sort().map((serial) => {
    const of = all.filter((s) => s.deviceSerial === serial);
    const gaps = sequenceGaps(of.flatMap((s) => (s.seq !== undefined ? [s.seq] : [])));
    return { serial, recordings: of.length, bytes: of.reduce((n, s) => n + s.size, 0), docks: [...new Set(of.map((s) => s.dockId))].sort(),
      lastArrival: of.map((s) => s.createdAt).sort().pop(), unnumbered: of.filter((s) => s.seq === undefined).length, ...(gaps ? { sequence: gaps } : {}),
      keys: [...new Set(of.flatMap((s) => (s.cameraKeyId !== undefined ? [s.cameraKeyId] : [])))].map((keyId) => {
        const withKey = of.filter((s) => s.cameraKeyId === keyId);
        return { keyId, firstSeen: withKey.map((s) => s.createdAt).sort()[0]!, recordings: withKey.length };
      }).sort((x, y) => (x.firstSeen < y.firstSeen ? -1 : x.firstSeen > y.firstSeen ? 1 : 0)) };
  });
  expect(catalog.cameras()).toEqual(cameras);
  expect(catalog.staleRecordings().map(key)).toEqual(all.filter(isStale).sort(cmpKey).map(key));
}

describe('recording catalog', () => {
  it('sequence gaps kept as numbers arrive equal the gaps of the whole set, in any order, with duplicates', () => {
    fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: 60 }), { maxLength: 80 }), (numbers) => {
      const tally = new SequenceTally();
      for (const n of numbers) tally.add(n);
      expect(tally.gaps()).toEqual(sequenceGaps(numbers));
    }), { numRuns: runs(300) });
    // A camera numbering 1, 3, 5…: the page lists 100 ranges and says how many more.
    const odd = new SequenceTally();
    for (let n = 1; n <= 401; n += 2) odd.add(n);
    expect(odd.gaps(100)).toMatchObject({ lowest: 1, highest: 401, missingCount: 200, moreRanges: 100, missing: expect.arrayContaining([[2, 2]]) });
    expect(odd.gaps(100)!.missing).toHaveLength(100);
  });

  it('its kept orders and tallies answer every page as a pass over every summary would', async () => {
    let run = 0;
    await fc.assert(fc.asyncProperty(summariesArb, fc.array(filterArb, { maxLength: 6 }), async (summaries, filters) => {
      // The receiving ones are re-read at every refresh: their records are real, in a store of this run.
      const store = new FsStore(join(tmp.path, `run-${run++}`));
      await store.open();
      try {
        for (const s of summaries) if (s.state === 'receiving') await store.createRecording(s.dockId, s.id, recordOf(s));
        await expectSameAsAPass(await catalogFrom(summaries, {}, {}, store), summaries, filters);
      } finally {
        await store.close();
      }
    }), { numRuns: runs(15) });
  });

  it('recordings arriving after the build are inserted into the orders and tallies (read from real records)', async () => {
    const all = fc.sample(summariesArb.filter((s) => s.length >= 60), 1)[0]!;
    const store = new FsStore(join(tmp.path, 'live'));
    await store.open();
    try {
      // The first 40 from the saved summaries; the rest are records written after it was saved.
      const later = all.slice(40);
      for (const s of [...later, ...all.slice(0, 40).filter((x) => x.state === 'receiving')]) await store.createRecording(s.dockId, s.id, recordOf(s));
      const catalog = await catalogFrom(all.slice(0, 40), { savedAt: NOW - 60_000 }, {}, store);
      await expectSameAsAPass(catalog, all, [{ dock: 'd2' }, { device: 'C1', state: 'complete' }, { day: all[50]!.createdAt.slice(0, 10) }]);
    } finally {
      await store.close();
    }
  });

  it('a saved file is read only for the backend and chain it was saved from, and never from the future', async () => {
    const saved = fc.sample(summaryArb(1), 1);
    const used = async (header: Partial<SnapshotHeader>, here?: { seq: number; hash: string }) =>
      (await catalogFrom(saved, header, here ? { chainPosition: () => here } : {})).size === 1;
    expect(await used({})).toBe(true);
    expect(await used({ backend: 'another-backend' })).toBe(false);
    expect(await used({ savedAt: NOW + 3600_000 })).toBe(false);
    const at = { seq: 50, hash: 'h50' };
    expect(await used({ chain: at }, at)).toBe(true);
    expect(await used({ chain: at }, { seq: 51, hash: 'h51' })).toBe(true);
    expect(await used({ chain: at }, { seq: 49, hash: 'h49' })).toBe(false); // the backend is behind it: restored from an older backup
    expect(await used({ chain: at }, { seq: 50, hash: 'other' })).toBe(false); // another chain
    expect(await used({ chain: at }, undefined)).toBe(true); // no position to compare (the report)
    const path = join(tmp.path, 'snapshot.jsonl');
    writeFileSync(path, `{"format":"bodycam-catalog-summaries/1","savedAt":${NOW}}\n${JSON.stringify(saved[0])}\n{"end":true}\n`);
    expect(await loadSnapshot(path)).toBeUndefined(); // the format before backends were named
    writeFileSync(path, `{"format":"bodycam-catalog-summaries/2","savedAt":${NOW}}\n${JSON.stringify({ ...saved[0], size: 'huge' })}\n{"end":true}\n`);
    expect(await loadSnapshot(path)).toBeUndefined();
  });

  it('a first build stopped midway is resumed from its saved progress: only the records it had not reached and those changed since are read', async () => {
    class CountingStore extends FsStore {
      reads: string[] = [];
      failAfter = Infinity;
      override async getRecording(dockId: string, id: string) { this.reads.push(id); return super.getRecording(dockId, id); }
      override async getRecordings(keys: readonly RecordingKey[]) {
        if (this.reads.length + keys.length > this.failAfter) throw new Error('the server was killed');
        this.reads.push(...keys.map((k) => k.recordingId));
        return super.getRecordings(keys);
      }
    }
    const dir = join(tmp.path, 'resume');
    const snapshotPath = join(tmp.path, 'resume.jsonl');
    const first = new CountingStore(dir);
    await first.open();
    const all = fc.sample(summaryArb(3), 100).map((s, i): RecordingSummary => ({ ...s, id: `res-${String(i).padStart(3, '0')}`, state: 'complete', completedAt: s.createdAt }));
    for (const s of all) await first.createRecording(s.dockId, s.id, recordOf(s));
    // Written an hour ago (the record and dock folders' times), so that only what changes below is newer than the build.
    const old = new Date(Date.now() - 3600_000);
    for (const s of all) utimesSync(join(dir, 'recordings', s.dockId, `${s.id}.json`), old, old);
    for (const d of new Set(all.map((s) => s.dockId))) utimesSync(join(dir, 'recordings', d), old, old);
    first.failAfter = 64; // killed after two batches of 32, each followed by a checkpoint
    const options = { snapshotPath, backendId: 'resume', snapshotClockMarginMs: 0, buildCheckpointMs: 0, saveEveryMs: 0 };
    await expect(new Catalog({ recordings: first, ...options }).refresh()).rejects.toThrow('killed');
    await first.close();
    const partial = await loadSnapshot(snapshotPath);
    expect([partial?.partial, partial?.summaries.length]).toEqual([true, 64]);
    // Another format than a whole snapshot's: a build that does not know it reads every record instead.
    expect(JSON.parse(readFileSync(snapshotPath, 'utf8').split('\n')[0]!).format).toBe('bodycam-catalog-summaries/2-partial');
    // Changed after that build began (it had read it): read again.
    const reached = partial!.summaries[5]!;
    const changed = { ...all.find((s) => s.id === reached.id)!, category: 'changed-later' };
    const second = new CountingStore(dir);
    await second.open();
    try {
      await second.updateRecording(changed.dockId, changed.id, recordOf(changed));
      // A clock ahead of the files' times from here on: a record written within the second before a build began is read
      // again by the next start (filesystem times lag), which would count the change below twice.
      const later = () => Date.now() + 5000;
      const resumed = new Catalog({ recordings: second, ...options, now: later });
      await resumed.refresh();
      const notReached = all.filter((s) => !partial!.summaries.some((p) => p.id === s.id)).map((s) => s.id);
      expect(second.reads.sort()).toEqual([...notReached, changed.id].sort());
      expect(resumed.size).toBe(100);
      expect(resumed.newest({ category: 'changed-later' }, 0, 10).items.map((s) => s.id)).toEqual([changed.id]);
      // Once done, saved whole: the next start reads no record.
      for (const deadline = Date.now() + 20_000; (await loadSnapshot(snapshotPath))?.partial;) {
        if (Date.now() > deadline) throw new Error('the resumed build was never saved whole');
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const third = new CountingStore(dir);
      await third.open();
      try {
        const again = new Catalog({ recordings: third, ...options, now: later });
        await again.refresh();
        expect([again.size, third.reads]).toEqual([100, []]);
      } finally {
        await third.close();
      }
    } finally {
      await second.close();
    }
  });

  it('a first build that takes long is reported, not waited for; the summaries are saved once built', async () => {
    class SlowStore extends FsStore {
      reads = 0;
      gate: Promise<void> | undefined;
      override async getRecording(dockId: string, id: string) { this.reads++; await this.gate; return super.getRecording(dockId, id); }
      override async getRecordings(keys: readonly RecordingKey[]) { this.reads += keys.length; await this.gate; return super.getRecordings(keys); }
    }
    const dir = join(tmp.path, 'slow');
    const store = new SlowStore(dir);
    await store.open();
    const snapshotPath = join(tmp.path, 'built.jsonl');
    try {
      // Complete (receiving ones are read at every refresh), and a clock ahead of the files' times (a record written within the
      // second before a save is read again: filesystem times lag).
      const three = fc.sample(summaryArb(7), 3).map((s, i): RecordingSummary => ({ ...s, id: `slow-${i}`, state: 'complete', completedAt: s.createdAt }));
      const clock = () => Date.now() + 5000;
      for (const s of three) await store.createRecording(s.dockId, s.id, recordOf(s));
      let release!: () => void;
      store.gate = new Promise((resolve) => { release = resolve; });
      const catalog = new Catalog({ recordings: store, snapshotPath, backendId: 'slow', now: clock, saveEveryMs: 0 });
      expect(await catalog.refreshWithin(20)).toBe(false);
      // The listing itself may take longer than 20 ms on a loaded machine: wait for it (the gate holds every record's read).
      for (const deadline = Date.now() + 20_000; catalog.building?.total !== 3;) {
        if (Date.now() > deadline) throw new Error(`building ${JSON.stringify(catalog.building)} after 20 s`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(catalog.building).toEqual({ read: 0, total: 3 });
      release();
      expect(await catalog.refreshWithin(60_000)).toBe(true);
      expect([catalog.size, catalog.building]).toEqual([3, undefined]);
      // Saved in the background once built (no clean stop needed): the next start reads no record.
      for (const deadline = Date.now() + 20_000; !existsSync(snapshotPath);) {
        if (Date.now() > deadline) throw new Error('the built catalog was never saved');
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const next = new SlowStore(dir);
      await next.open();
      try {
        const again = new Catalog({ recordings: next, snapshotPath, backendId: 'slow', now: clock, snapshotClockMarginMs: 0 });
        await again.refresh();
        expect([again.size, next.reads]).toEqual([3, 0]);
      } finally {
        await next.close();
      }
    } finally {
      await store.close();
    }
  });
});
