/**
 * Issue 11 items 1, 3, 5, 6, 8: the committed corpus (fixtures/corpus, real files of other
 * projects and ffmpeg-made shapes, SOURCES.md) through the real dock (its `--once` run, the
 * library the CLI calls) into a real server on 127.0.0.1, read back, and every cut of every signed
 * manifest re-probed with ffprobe (src/dock/corpus.ts). Same code as `npm run corpus`.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkCuts, corpusFiles, formatRow, runCorpusThroughDock, type CorpusRow } from '../../src/dock/corpus.js';
import { planSegments } from '../../src/dock/planner.js';
import { probe } from '../../src/media/probe.js';
import { startTestServer, TEST_TOKENS, type TestServer } from '../helpers/server.js';

const corpus = fileURLToPath(new URL('../../fixtures/corpus/', import.meta.url));
let server: TestServer;
let rows: CorpusRow[] = [];
const row = (name: string): CorpusRow => {
  const found = rows.find((r) => r.file === name);
  if (!found) throw new Error(`${name} is not in the corpus run`);
  return found;
};

beforeAll(async () => {
  server = await startTestServer();
  const run = await runCorpusThroughDock(corpus, {
    segmentSeconds: 2, maxBytes: 256 * 1024,
    server: { url: server.url, token: TEST_TOKENS['dock-1']!, publicKeyPem: server.publicKeyPem, dockId: 'dock-1' },
    timeoutMs: 100_000,
  });
  rows = run.rows;
  // 3: the three cut files are flagged truncated (uploaded, never wiped); nothing else.
  if (run.exitCode !== 3) throw new Error(`the dock's --once run exited ${run.exitCode}: ${run.stderr.slice(-2000)}`);
});
afterAll(async () => { await server?.close(); });

describe('the corpus (fixtures/corpus)', () => {
  it('holds real files of several makers under 10 MiB in all', () => {
    const files = corpusFiles(corpus);
    expect(files.length).toBeGreaterThanOrEqual(15);
    const total = files.reduce((n, f) => n + statSync(join(corpus, f)).size, 0);
    expect(total).toBeLessThan(10 * 1024 * 1024);
    expect(rows.map((r) => r.file)).toEqual(files);
  });

  it('every file arrives byte-exact, and every cut is at a fragment / packet start with the keyframe time it claims', () => {
    const bad = rows.filter((r) => !r.arrived || !r.byteExact || r.cutProblems.length);
    expect(bad.map(formatRow)).toEqual([]);
    // The dock's signed plan is the planner's plan, and every file made it to the server.
    expect(rows.filter((r) => r.flags.some((f) => /differs|not on the server/.test(f))).map(formatRow)).toEqual([]);
    // The check really ran: the timed cuts were re-probed.
    expect(rows.reduce((n, r) => n + r.timedSegments, 0)).toBeGreaterThan(40);
  });

  it('item 1: reads the packet size from the bytes (188, 192 M2TS, 204)', () => {
    expect(row('generated/m2ts-192-avc-aac.m2ts')).toMatchObject({ kind: 'mpegts', packetSize: 192 });
    expect(row('generated/ts-204-avc-aac.ts')).toMatchObject({ kind: 'mpegts', packetSize: 204 });
    expect(row('mux.js/test-segment.ts')).toMatchObject({ kind: 'mpegts', packetSize: 188 });
    // The size cap cut (sintel: 321 KB with a 256 KiB cap) lands on a packet start too (checked above).
    expect(row('mux.js/sintel-captions.ts').segments).toBeGreaterThan(row('mux.js/sintel-captions.ts').timedSegments);
  });

  it('item 3: a TS cut mid-packet, an M2TS cut mid-PES and a cut fMP4 are truncated; whole files are not', () => {
    const truncated = rows.filter((r) => r.flags.some((f) => f.startsWith('truncated'))).map((r) => r.file).sort();
    expect(truncated).toEqual(['generated/fmp4-cut.mp4', 'generated/m2ts-cut-mid-pes.m2ts', 'generated/ts-cut-mid-packet.ts']);
    expect(row('generated/ts-cut-mid-packet.ts').flags.join()).toMatch(/101 bytes into a 188-byte packet/);
    expect(row('generated/m2ts-cut-mid-pes.m2ts').flags.join()).toMatch(/last PES of PID 257/);
  });

  it('item 5: an AAC stream with sample rate 0 is named, the video stream keeps its fingerprint', () => {
    const flags = row('mux.js/test-no-audio-segment.ts').flags;
    expect(flags).toEqual(['no fingerprint for audio 1']);
    // A data stream beside audio and video voids nothing.
    expect(row('generated/ts-data-stream.ts').flags).toEqual([]);
  });

  it('item 6: times come from the video stream, not the container duration', () => {
    // shaka's HEVC segment: its container claims 1685548365 s, its video lasts 2 s.
    const hevc = row('shaka-player/h265-cea.mp4');
    expect(hevc.containerDuration!).toBeGreaterThan(1e9);
    expect(hevc.lastEndTime).toBeCloseTo(2.002, 3);
    // Five streams: the end is the first video stream's end.
    expect(row('generated/ts-multistream.ts').lastEndTime).toBeCloseTo(4, 3);
    // A 33-bit PTS wrap inside the file: 5 s, not 95443 s.
    expect(row('generated/ts-pts-rollover.ts').lastEndTime).toBeCloseTo(5, 3);
    // fMP4 with B-frames and the audio track first: presentation times of the video track.
    expect(row('generated/fmp4-bframes-audio-first.mp4').lastEndTime).toBeCloseTo(6, 3);
  });

  it('the cut check catches a wrong cut: M2TS cut on the 188-byte grid (the old planner)', async () => {
    const path = join(corpus, 'generated/m2ts-192-avc-aac.m2ts');
    const size = statSync(path).size;
    const plan = await planSegments(path, size, { segmentSeconds: 2, maxBytes: 1 << 24, formatName: (await probe(path)).formatName });
    const old = plan.segments.map((s) => ({ ...s }));
    // Re-cut as the 188-byte rounding did: offsets rounded down to 188 inside the 192-byte packets.
    for (let i = 1; i < old.length; i++) {
      const moved = old[i]!.offset - (old[i]!.offset % 188) - 188;
      old[i - 1]!.length -= old[i]!.offset - moved;
      old[i]!.length += old[i]!.offset - moved;
      old[i]!.offset = moved;
    }
    const { problems } = await checkCuts(path, size, plan, old);
    expect(problems.length).toBeGreaterThanOrEqual(old.length - 1);
    expect(problems.join('\n')).toMatch(/not on the 192-byte packet grid/);
    expect((await checkCuts(path, size, plan, plan.segments)).problems).toEqual([]);
  });
});
