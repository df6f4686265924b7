import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { openSync, readSync, closeSync, readFileSync, statSync, writeFileSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { detectTsLayoutIn, planSegments, groupCuts, type PlannedSegment } from '../../src/dock/planner.js';
import { keyframeIndex } from '../../src/media/keyframes.js';
import { probe } from '../../src/media/probe.js';
import { mp4SampleTables } from '../../src/media/mp4Samples.js';
import { makeTempDir } from '../helpers/tmp.js';
import { makeFmp4, makePlainMp4, makeTs } from '../helpers/dock.js';
import { remux } from '../../src/media/generate.js';

function expectTiles(segments: PlannedSegment[], size: number): void {
  let offset = 0;
  segments.forEach((s, i) => {
    expect(s.index).toBe(i);
    expect(s.offset).toBe(offset);
    expect(s.length).toBeGreaterThan(0);
    offset += s.length;
  });
  expect(offset).toBe(size);
}

function boxTypeAt(path: string, offset: number): string {
  const fd = openSync(path, 'r');
  const buf = Buffer.alloc(8);
  readSync(fd, buf, 0, 8, offset);
  closeSync(fd);
  return buf.toString('latin1', 4, 8);
}

describe('segment planner', () => {
  const tmp = makeTempDir('bodycam-dock-plan-');
  const fmp4 = join(tmp.path, 'a.mp4');
  const ts = join(tmp.path, 'a.ts');
  const plain = join(tmp.path, 'plain.mp4');
  beforeAll(async () => {
    await Promise.all([makeFmp4(fmp4, 9), makeTs(ts, 9), makePlainMp4(plain, 3)]);
  });
  afterAll(() => tmp.cleanup());

  it('cuts fMP4 before moof boxes, header with the first segment, about segmentSeconds each', async () => {
    const size = statSync(fmp4).size;
    const info = await probe(fmp4);
    const plan = await planSegments(fmp4, size, { segmentSeconds: 3, maxBytes: 16 * 1024 * 1024, formatName: info.formatName, durationSeconds: info.durationSeconds, startTimeSeconds: info.startTimeSeconds });
    expect(plan.kind).toBe('fmp4');
    expect(plan.truncatedTail).toBe(false);
    expectTiles(plan.segments, size);
    expect(plan.segments.length).toBe(3);
    expect(boxTypeAt(fmp4, 0)).toBe('ftyp');
    for (const s of plan.segments.slice(1)) expect(boxTypeAt(fmp4, s.offset)).toBe('moof');
    expect(plan.segments.map((s) => s.startTime)).toEqual([0, 3, 6]);
    expect(plan.segments[2]!.endTime).toBeCloseTo(9, 0);
  });

  it('a moov after the first fragment: the same cuts and times, and the same sample runs, as with the moov first', async () => {
    // The walk reads each moof as it reaches it only when the moov came first; otherwise after the walk.
    const whole = readFileSync(fmp4);
    const boxes: Array<{ type: string; start: number; end: number }> = [];
    for (let at = 0; at < whole.length;) { const size = whole.readUInt32BE(at); boxes.push({ type: whole.toString('latin1', at + 4, at + 8), start: at, end: at + size }); at += size; }
    const moov = boxes.findIndex((b) => b.type === 'moov');
    const firstMdat = boxes.findIndex((b) => b.type === 'mdat');
    expect(boxes[moov + 1]!.type).toBe('moof');
    const order = [...boxes.slice(0, moov), ...boxes.slice(moov + 1, firstMdat + 1), boxes[moov]!, ...boxes.slice(firstMdat + 1)];
    const moved = join(tmp.path, 'moov-late.mp4');
    writeFileSync(moved, Buffer.concat(order.map((b) => whole.subarray(b.start, b.end))));
    const options = { segmentSeconds: 3, maxBytes: 16 * 1024 * 1024, formatName: 'mov,mp4,m4a,3gp,3g2,mj2' };
    const normal = await planSegments(fmp4, whole.length, options);
    const late = await planSegments(moved, whole.length, options);
    expect(late.kind).toBe('fmp4');
    expectTiles(late.segments, whole.length);
    expect(late.segments.map((s) => [s.startTime, s.endTime])).toEqual(normal.segments.map((s) => [s.startTime, s.endTime]));
    // The later moofs sit where they sat (the bytes before them are the same boxes, reordered).
    expect(late.segments.map((s) => s.offset)).toEqual(normal.segments.map((s) => s.offset));
    for (const s of late.segments.slice(1)) expect(boxTypeAt(moved, s.offset)).toBe('moof');
    const [a, b] = await Promise.all([mp4SampleTables(fmp4), mp4SampleTables(moved)]);
    if (!a.ok || !b.ok) throw new Error(`sample tables refused: ${JSON.stringify([a, b].map((t) => !t.ok && t.reason))}`);
    // Same samples in the same order: runs of the moved file are the original's shifted where the moov moved.
    expect(b.tracks.map((t) => t.samples)).toEqual(a.tracks.map((t) => t.samples));
    const bytesOf = (file: Buffer, runs: number[]): Buffer => Buffer.concat(Array.from({ length: runs.length / 2 }, (_, i) => file.subarray(runs[2 * i]!, runs[2 * i]! + runs[2 * i + 1]!)));
    const movedBytes = readFileSync(moved);
    for (const [i, t] of a.tracks.entries()) expect(bytesOf(movedBytes, b.tracks[i]!.runs).equals(bytesOf(whole, t.runs))).toBe(true);
  });

  it('caps fMP4 segments at maxBytes', async () => {
    const size = statSync(fmp4).size;
    const plan = await planSegments(fmp4, size, { segmentSeconds: 100, maxBytes: 8 * 1024, formatName: 'mov,mp4,m4a,3gp,3g2,mj2' });
    expectTiles(plan.segments, size);
    expect(Math.max(...plan.segments.map((s) => s.length))).toBeLessThanOrEqual(8 * 1024);
  });

  it('notices a power-loss cut in the last box', async () => {
    const cut = join(tmp.path, 'cut.mp4');
    writeFileSync(cut, Buffer.alloc(0));
    const whole = statSync(fmp4).size;
    const { readFileSync } = await import('node:fs');
    writeFileSync(cut, readFileSync(fmp4).subarray(0, whole - 1000));
    const plan = await planSegments(cut, whole - 1000, { segmentSeconds: 3, maxBytes: 1 << 24, formatName: 'mov,mp4,m4a,3gp,3g2,mj2' });
    expect(plan.truncatedTail).toBe(true);
    expectTiles(plan.segments, whole - 1000);
  });

  it('notices an fMP4 cut inside a box header or right after a moof', async () => {
    const whole = readFileSync(fmp4);
    const plan = await planSegments(fmp4, whole.length, { segmentSeconds: 3, maxBytes: 1 << 24, formatName: 'mov,mp4,m4a,3gp,3g2,mj2' });
    const lastCut = plan.segments[plan.segments.length - 1]!.offset;
    expect(boxTypeAt(fmp4, lastCut)).toBe('moof');
    const moofSize = whole.readUInt32BE(lastCut);
    const inHeader = join(tmp.path, 'cut-header.mp4');
    writeFileSync(inHeader, whole.subarray(0, lastCut + 5));
    const a = await planSegments(inHeader, lastCut + 5, { segmentSeconds: 3, maxBytes: 1 << 24, formatName: 'mov,mp4,m4a,3gp,3g2,mj2' });
    expect(a.truncatedWhy).toMatch(/ends 5 bytes into the header/);
    const afterMoof = join(tmp.path, 'cut-moof.mp4');
    writeFileSync(afterMoof, whole.subarray(0, lastCut + moofSize));
    const b = await planSegments(afterMoof, lastCut + moofSize, { segmentSeconds: 3, maxBytes: 1 << 24, formatName: 'mov,mp4,m4a,3gp,3g2,mj2' });
    expect(b.truncatedWhy).toMatch(/moof\) has no mdat/);
    expect(plan.truncatedTail).toBe(false);
  });

  it('cuts MPEG-TS at 188-aligned keyframe packet positions', async () => {
    const size = statSync(ts).size;
    const plan = await planSegments(ts, size, { segmentSeconds: 3, maxBytes: 1 << 24, formatName: 'mpegts' });
    expect(plan.kind).toBe('mpegts');
    expectTiles(plan.segments, size);
    expect(plan.segments.length).toBeGreaterThanOrEqual(3);
    const keyframeCuts = new Set((await keyframeIndex(ts)).map((k) => k.pos - (k.pos % 188)));
    for (const s of plan.segments.slice(1)) {
      expect(s.offset % 188).toBe(0);
      expect(keyframeCuts.has(s.offset)).toBe(true);
    }
  });

  it('M2TS (192-byte packets): keyframe cuts and size-cap cuts on packet starts (the timestamp prefix)', async () => {
    const m2ts = join(tmp.path, 'a.m2ts');
    await remux(ts, m2ts, 'm2ts');
    const size = statSync(m2ts).size;
    const plan = await planSegments(m2ts, size, { segmentSeconds: 3, maxBytes: 1 << 24, formatName: 'mpegts' });
    expect(plan).toMatchObject({ kind: 'mpegts', packetSize: 192, truncatedTail: false });
    expectTiles(plan.segments, size);
    expect(plan.segments.length).toBeGreaterThanOrEqual(3);
    const bytes = readFileSync(m2ts);
    for (const s of plan.segments) {
      expect(s.offset % 192).toBe(0);
      expect(bytes[s.offset + 4]).toBe(0x47);
    }
    expect(plan.segments.map((s) => s.startTime)).toEqual([0, 3, 6]);
    expect(plan.segments[2]!.endTime).toBeCloseTo(9, 2);
    const capped = await planSegments(m2ts, size, { segmentSeconds: 100, maxBytes: 5000, formatName: 'mpegts' });
    expectTiles(capped.segments, size);
    expect(capped.segments.length).toBeGreaterThan(10);
    for (const s of capped.segments) {
      expect(s.offset % 192).toBe(0);
      expect(s.length).toBeLessThanOrEqual(5000);
    }
  });

  it('TS size-cap cuts land on 188-byte packet starts, and a TS cut mid-packet is truncated', async () => {
    const size = statSync(ts).size;
    const capped = await planSegments(ts, size, { segmentSeconds: 100, maxBytes: 5000, formatName: 'mpegts' });
    expectTiles(capped.segments, size);
    for (const s of capped.segments) expect(s.offset % 188).toBe(0);
    const cut = join(tmp.path, 'cut.ts');
    writeFileSync(cut, readFileSync(ts).subarray(0, 188 * 100 + 17));
    const plan = await planSegments(cut, 188 * 100 + 17, { segmentSeconds: 3, maxBytes: 1 << 24, formatName: 'mpegts' });
    expect(plan.truncatedTail).toBe(true);
    expect(plan.truncatedWhy).toMatch(/17 bytes into a 188-byte packet/);
    expect((await planSegments(ts, size, { segmentSeconds: 3, maxBytes: 1 << 24, formatName: 'mpegts' })).truncatedTail).toBe(false);
  });

  it('a TS behind leading junk: cap cuts still land on its packet grid', async () => {
    const junkTs = join(tmp.path, 'junk-lead.ts');
    writeFileSync(junkTs, Buffer.concat([Buffer.alloc(33, 0xff), readFileSync(ts)]));
    const size = statSync(junkTs).size;
    const plan = await planSegments(junkTs, size, { segmentSeconds: 100, maxBytes: 5000, formatName: 'mpegts' });
    expectTiles(plan.segments, size);
    for (const s of plan.segments.slice(1)) expect((s.offset - 33) % 188).toBe(0);
  });

  it('finds the packet grid of 188, 192 and 204-byte streams, also behind leading junk', () => {
    const grid = (packetSize: number, syncOffset: number, lead: number): Buffer => {
      const b = Buffer.alloc(lead + packetSize * 20, 0x11);
      for (let i = 0; i < 20; i++) b[lead + i * packetSize + syncOffset] = 0x47;
      return b;
    };
    expect(detectTsLayoutIn(grid(188, 0, 0))).toEqual({ packetSize: 188, syncOffset: 0, firstPacket: 0 });
    expect(detectTsLayoutIn(grid(192, 4, 0))).toEqual({ packetSize: 192, syncOffset: 4, firstPacket: 0 });
    expect(detectTsLayoutIn(grid(204, 0, 0))).toEqual({ packetSize: 204, syncOffset: 0, firstPacket: 0 });
    expect(detectTsLayoutIn(grid(188, 0, 33))).toEqual({ packetSize: 188, syncOffset: 0, firstPacket: 33 });
    expect(detectTsLayoutIn(Buffer.alloc(4000, 0x47 ^ 1))).toBeUndefined();
  });

  it('uses fixed ranges for plain MP4 and unknown files', async () => {
    const size = statSync(plain).size;
    const plan = await planSegments(plain, size, { segmentSeconds: 3, maxBytes: 4096, formatName: 'mov,mp4,m4a,3gp,3g2,mj2' });
    expect(plan.kind).toBe('mp4');
    expectTiles(plan.segments, size);
    expect(plan.segments.slice(0, -1).every((s) => s.length === 4096)).toBe(true);
    const junk = join(tmp.path, 'junk.bin');
    writeFileSync(junk, Buffer.alloc(10_000, 7));
    const junkPlan = await planSegments(junk, 10_000, { segmentSeconds: 3, maxBytes: 4096 });
    expect(junkPlan.kind).toBe('fixed');
    expect(junkPlan.segments.map((s) => s.length)).toEqual([4096, 4096, 1808]);
    truncateSync(junk, 0);
    expect((await planSegments(junk, 0, { segmentSeconds: 3, maxBytes: 4096 })).segments).toEqual([]);
  });

  it('groups cuts without times only when the size cap forces it', () => {
    const segments = groupCuts([{ offset: 0 }, { offset: 100 }, { offset: 200 }, { offset: 300 }], 400, { segmentSeconds: 10, maxBytes: 250 });
    expectTiles(segments, 400);
    expect(segments.map((s) => s.offset)).toEqual([0, 200]);
  });
});
