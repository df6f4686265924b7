import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { openSync, readSync, closeSync, statSync, writeFileSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { planSegments, groupCuts, type PlannedSegment } from '../../src/dock/planner.js';
import { keyframeIndex } from '../../src/media/keyframes.js';
import { probe } from '../../src/media/probe.js';
import { makeTempDir } from '../helpers/tmp.js';
import { makeFmp4, makePlainMp4, makeTs } from './helpers.js';

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
