/**
 * Issue 15: the MP4 / fMP4 media fingerprint from the sample tables, hashed in the dock's one
 * file read, equals ffmpeg's hash muxer (src/media/fingerprint.ts, kept as the reference) on
 * every MP4 of fixtures/corpus, on the simulator's recordings (MP4 and fMP4, H.264 and HEVC,
 * encoded whole and tiled), and on ffmpeg-made shapes (B-frames + faststart, a stream-copy
 * trim, fragmented copies, a timed-text track). Files whose samples ffmpeg would not hand over
 * as they are (edit lists that drop samples, PCM, encrypted) must be left to ffmpeg.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hashFile } from '../../src/dock/hasher.js';
import { fingerprintFromSamples, streamFingerprints } from '../../src/media/fingerprint.js';
import { generateClip, generateForeignClip, type ClipSpec } from '../../src/media/generate.js';
import { mp4StreamPlan } from '../../src/media/mp4Samples.js';
import { probe } from '../../src/media/probe.js';
import { runTool } from '../../src/media/run.js';
import { makeTempDir } from '../helpers/tmp.js';

const corpus = fileURLToPath(new URL('../../fixtures/corpus/', import.meta.url));
const corpusMp4s = readdirSync(corpus, { recursive: true, encoding: 'utf8' })
  .filter((f) => /\.(mp4|mov|m4v|m4a|3gp)$/i.test(f)).sort().map((f) => join(corpus, f));

const spec = (over: Partial<ClipSpec>): ClipSpec => ({
  container: 'mp4', codec: 'h264', width: 320, height: 240, fps: 15, videoKbps: 300, audioKbps: 48, audioSampleRate: 48000,
  keyframeIntervalSeconds: 1, durationSeconds: 3, label: 'IPERF', clockEpochSeconds: 1_700_000_000, toneHz: 440, realtime: false, ...over,
});

interface Outcome { file: string; native: boolean; reason?: string; equal?: boolean }
const outcomes = new Map<string, Outcome>();
let dir: string;
let cleanup: () => void = () => {};

/** ffmpeg's reference against the one-read hash; an odd chunk size splits samples across reads. */
async function compare(file: string): Promise<Outcome> {
  const { streams } = await probe(file);
  const reference = await streamFingerprints(file, { streams });
  const plan = await mp4StreamPlan(file, streams);
  if (!plan.ok) return { file, native: false, reason: plan.reason };
  const size = statSync(file).size;
  const hash = await hashFile(file, [{ offset: 0, length: size }], size, { streamRuns: plan.streams.map((s) => s.runs), chunkBytes: 4093 });
  const mine = fingerprintFromSamples(plan, hash.streamSha256!);
  expect(mine).toEqual(reference);
  return { file, native: true, equal: JSON.stringify(mine) === JSON.stringify(reference) };
}

const ffmpeg = (args: string[]): Promise<unknown> => runTool('ffmpeg', ['-nostdin', '-v', 'error', '-y', ...args], { timeoutMs: 120_000 });

/** The same file with one edit list field overwritten (track `nth`, 0-based): shapes no muxer here writes. */
function patchEdit(src: string, out: string, nth: number, field: 'duration' | 'mediaTime', value: (old: number) => number): void {
  const bytes = Buffer.from(readFileSync(src));
  let at = -1;
  for (let i = 0; i <= nth; i++) at = bytes.indexOf('elst', at + 1, 'latin1');
  if (at < 0 || bytes[at + 4] !== 0) throw new Error(`no version-0 elst #${nth} in ${src}`);
  const pos = at + 12 + (field === 'duration' ? 0 : 4);
  if (field === 'duration') bytes.writeUInt32BE(value(bytes.readUInt32BE(pos)), pos);
  else bytes.writeInt32BE(value(bytes.readInt32BE(pos)), pos);
  writeFileSync(out, bytes);
}

beforeAll(async () => {
  ({ path: dir, cleanup } = makeTempDir('mp4fp-'));
  const f = (name: string): string => join(dir, name);
  await Promise.all([
    generateClip(f('sim-mp4-h264.mp4'), spec({})),
    generateClip(f('sim-fmp4-h264.mp4'), spec({ container: 'fmp4' })),
    generateClip(f('sim-mp4-hevc.mp4'), spec({ codec: 'hevc', durationSeconds: 2 })),
    generateClip(f('sim-fmp4-hevc.mp4'), spec({ codec: 'hevc', container: 'fmp4', durationSeconds: 2 })),
  ]);
  // Long recordings are a head plus stream-copied tiles (concat demuxer, AAC priming at every join).
  await generateClip(f('sim-mp4-tiled.mp4'), spec({ durationSeconds: 22, keyframeIntervalSeconds: 2 }));
  await generateClip(f('sim-fmp4-tiled.mp4'), spec({ container: 'fmp4', durationSeconds: 22, keyframeIntervalSeconds: 2 }));
  await generateForeignClip(f('foreign-timed-text.mp4'), { durationSeconds: 3, width: 320, height: 240, fps: 15 });
  await ffmpeg(['-f', 'lavfi', '-i', 'testsrc2=size=320x240:rate=30', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000', '-t', '5',
    '-c:v', 'libx264', '-threads', '1', '-preset', 'ultrafast', '-bf', '2', '-g', '30', '-c:a', 'aac', '-movflags', '+faststart', f('bframes-faststart.mp4')]);
  await Promise.all([
    ffmpeg(['-ss', '1.5', '-i', f('bframes-faststart.mp4'), '-c', 'copy', f('trimmed-copy.mp4')]),
    ffmpeg(['-i', f('bframes-faststart.mp4'), '-t', '3.2', '-c', 'copy', f('cut-end-copy.mp4')]),
    ffmpeg(['-i', f('bframes-faststart.mp4'), '-c', 'copy', '-movflags', '+frag_keyframe+empty_moov', f('fragmented-copy.mp4')]),
    ffmpeg(['-i', f('bframes-faststart.mp4'), '-c', 'copy', '-movflags', '+frag_keyframe+empty_moov+default_base_moof', '-frag_duration', '500000', f('fragmented-500ms.mp4')]),
    ffmpeg(['-ss', '1.5', '-i', f('bframes-faststart.mp4'), '-c', 'copy', '-movflags', '+frag_keyframe+empty_moov', f('trimmed-fragmented.mp4')]),
    ffmpeg(['-f', 'lavfi', '-i', 'testsrc2=size=160x120:rate=15', '-f', 'lavfi', '-i', 'sine=sample_rate=8000', '-t', '2',
      '-c:v', 'libx264', '-threads', '1', '-preset', 'ultrafast', '-c:a', 'pcm_s16le', f('pcm-audio.mov')]),
  ]);
  // Edit lists that make ffmpeg drop samples: video starting 2 s late (past a keyframe), audio 2 s late
  // (ffmpeg keeps audio from 1 s before the edit), video ending half-way.
  patchEdit(f('bframes-faststart.mp4'), f('edit-video-late.mp4'), 0, 'mediaTime', (t) => t + 2 * 15360);
  patchEdit(f('bframes-faststart.mp4'), f('edit-audio-late.mp4'), 1, 'mediaTime', () => 2 * 48000);
  patchEdit(f('bframes-faststart.mp4'), f('edit-audio-1s.mp4'), 1, 'mediaTime', () => 48000);
  patchEdit(f('bframes-faststart.mp4'), f('edit-video-short.mp4'), 0, 'duration', (d) => Math.floor(d / 2));
  for (const file of [...corpusMp4s, ...readdirSync(dir).sort().map((n) => join(dir, n))]) outcomes.set(file.startsWith(corpus) ? file.slice(corpus.length) : file.slice(dir.length + 1), await compare(file));
}, 120_000);

afterAll(() => cleanup());

describe('MP4 fingerprint from the sample tables', () => {
  it('covers every MP4 of the corpus', () => {
    expect(corpusMp4s.length).toBeGreaterThanOrEqual(6);
    for (const f of corpusMp4s) expect(outcomes.has(f.slice(corpus.length))).toBe(true);
  });

  it('equals ffmpeg\'s hash muxer wherever it is used (checked per file in compare), and is used for the simulator\'s recordings and the common shapes', () => {
    const native = [...outcomes.values()].filter((o) => o.native);
    expect(native.every((o) => o.equal)).toBe(true);
    const expectNative = ['sim-mp4-h264.mp4', 'sim-fmp4-h264.mp4', 'sim-mp4-hevc.mp4', 'sim-fmp4-hevc.mp4', 'sim-mp4-tiled.mp4', 'sim-fmp4-tiled.mp4',
      'foreign-timed-text.mp4', 'bframes-faststart.mp4', 'trimmed-copy.mp4', 'cut-end-copy.mp4', 'fragmented-copy.mp4', 'fragmented-500ms.mp4',
      'trimmed-fragmented.mp4', 'edit-audio-1s.mp4',
      'generated/fmp4-bframes-audio-first.mp4', 'mux.js/dash-608-captions.mp4', 'shaka-player/hls-muxed-aac-h264.mp4'];
    expect(expectNative.filter((name) => !outcomes.get(name)?.native).map((name) => [name, outcomes.get(name)?.reason])).toEqual([]);
  });

  it('leaves to ffmpeg the files whose packets are not every sample as stored', () => {
    expect(outcomes.get('edit-video-late.mp4')).toMatchObject({ native: false, reason: expect.stringMatching(/edit list starts at media time/) });
    expect(outcomes.get('edit-audio-late.mp4')).toMatchObject({ native: false, reason: expect.stringMatching(/edit list starts at media time 96000/) });
    expect(outcomes.get('edit-video-short.mp4')).toMatchObject({ native: false, reason: expect.stringMatching(/edit list ends before the media does/) });
    expect(outcomes.get('pcm-audio.mov')).toMatchObject({ native: false });
    expect(outcomes.get('shaka-player/h265-cea.mp4')).toMatchObject({ native: false, reason: expect.stringMatching(/encv/) });
    expect(outcomes.get('generated/fmp4-cut.mp4')).toMatchObject({ native: false, reason: expect.stringMatching(/cut short/) });
  });

  it('a damaged file (random bytes overwritten in moov / moof) gives a plan or a reason, never a hang or a throw', async () => {
    const source = readFileSync(join(dir, 'fragmented-500ms.mp4'));
    const plainMoov = readFileSync(join(dir, 'bframes-faststart.mp4'));
    let seed = 15;
    const rand = (n: number): number => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed % n; };
    const { streams } = await probe(join(dir, 'bframes-faststart.mp4'));
    for (let i = 0; i < 60; i++) {
      const bytes = Buffer.from(i % 2 ? source : plainMoov);
      // The box tables sit in the first and last few KB (moov, moofs); hit there.
      const moov = bytes.indexOf('moov', 0, 'latin1');
      for (let k = 0; k < 4; k++) bytes[moov + rand(4000)] = rand(256);
      const file = join(dir, `damaged-${i}.bin`);
      writeFileSync(file, bytes);
      const plan = await mp4StreamPlan(file, streams).catch((error: unknown) => ({ ok: false as const, reason: `threw ${(error as Error).message}` }));
      if (plan.ok) expect(plan.streams.every((s) => s.runs.every((n) => Number.isInteger(n) && n >= 0))).toBe(true);
      else expect(plan.reason).toEqual(expect.any(String));
    }
  });

  it('the refused edit lists really change ffmpeg\'s digest (the rules are not idle)', async () => {
    const plain = await streamFingerprints(join(dir, 'bframes-faststart.mp4'));
    for (const name of ['edit-video-late.mp4', 'edit-audio-late.mp4', 'edit-video-short.mp4']) {
      const patched = await streamFingerprints(join(dir, name));
      expect(patched.summary).not.toBe(plain.summary);
    }
    expect((await streamFingerprints(join(dir, 'edit-audio-1s.mp4'))).summary).toBe(plain.summary);
  });
});
