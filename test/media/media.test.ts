import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { chmodSync, copyFileSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { sha256Hex } from '../../src/protocol/digest.js';
import { join } from 'node:path';
import { MediaError, EnvironmentError } from '../../src/errors.js';
import { resetToolPathCache, toolPath } from '../../src/media/binaries.js';
import { mediaFingerprint, streamFingerprints } from '../../src/media/fingerprint.js';
import { fileURLToPath } from 'node:url';
import { keyframeIndex } from '../../src/media/keyframes.js';
import { probe } from '../../src/media/probe.js';
import { runTool } from '../../src/media/run.js';
import { makeTempDir } from '../helpers/tmp.js';

const dir = makeTempDir('bodycam-media-');
const ts = join(dir.path, 'clip.ts');
const mp4 = join(dir.path, 'clip.mp4');

beforeAll(async () => {
  // 4 s at 15 fps with a keyframe every second: 4 keyframes.
  const source = ['-f', 'lavfi', '-i', 'testsrc=size=160x120:rate=15', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=16000', '-t', '4',
    '-c:v', 'libx264', '-g', '15', '-keyint_min', '15', '-sc_threshold', '0', '-c:a', 'aac', '-ac', '1'];
  await runTool('ffmpeg', ['-nostdin', '-v', 'error', ...source, '-f', 'mpegts', ts]);
  await runTool('ffmpeg', ['-nostdin', '-v', 'error', '-i', ts, '-c', 'copy', mp4]);
});
afterAll(() => dir.cleanup());

describe('probe', () => {
  it('reports container, streams, duration', async () => {
    const result = await probe(mp4);
    expect(result.formatName).toMatch(/mp4/);
    expect(result.durationSeconds).toBeGreaterThan(3.8);
    expect(result.durationSeconds).toBeLessThan(4.3);
    expect(result.streams.map((s) => s.type).sort()).toEqual(['audio', 'video']);
    const video = result.streams.find((s) => s.type === 'video')!;
    expect([video.width, video.height, video.fps]).toEqual([160, 120, 15]);
  });

  it('rejects a file that is not media with the tail of ffprobe stderr', async () => {
    const junk = join(dir.path, 'notes.mp4');
    writeFileSync(junk, 'this is not a video\n'.repeat(50));
    const error = await probe(junk).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MediaError);
    expect((error as MediaError).code).toBe('E_MEDIA_FAILED');
    expect((error as MediaError).stderrTail).toMatch(/Invalid data|could not find|moov/i);
  });
});

describe('keyframe index', () => {
  it('gives the byte position and time of every video keyframe', async () => {
    const keyframes = await keyframeIndex(ts);
    expect(keyframes.map((k) => Math.round(k.time - keyframes[0]!.time))).toEqual([0, 1, 2, 3]);
    const size = statSync(ts).size;
    for (const k of keyframes) {
      expect(k.pos % 188).toBe(0);
      expect(k.pos).toBeLessThan(size);
    }
    expect(keyframes.map((k) => k.pos)).toEqual([...keyframes.map((k) => k.pos)].sort((a, b) => a - b));
  });
});

describe('media fingerprint', () => {
  it('survives a remux (plain MP4 to fragmented MP4) while the file hash does not', async () => {
    const fragmented = join(dir.path, 'clip-frag.mp4');
    await runTool('ffmpeg', ['-nostdin', '-v', 'error', '-i', mp4, '-c', 'copy', '-movflags', '+frag_keyframe+empty_moov', fragmented]);
    expect(sha256Hex(readFileSync(fragmented))).not.toBe(sha256Hex(readFileSync(mp4)));
    const [a, b] = await Promise.all([mediaFingerprint(mp4), mediaFingerprint(fragmented)]);
    expect(a).toMatch(/^sha256:v0=[0-9a-f]{64},a1=[0-9a-f]{64}$/);
    expect(b).toBe(a);
  });
});

describe('per-stream fingerprint', () => {
  it('hashes every readable audio/video stream and names the others (a data stream voids nothing)', async () => {
    const withData = join(dir.path, 'with-data.ts');
    const mov = join(dir.path, 'tc.mov');
    await runTool('ffmpeg', ['-nostdin', '-v', 'error', '-i', ts, '-c', 'copy', '-timecode', '00:00:00:00', mov]);
    await runTool('ffmpeg', ['-nostdin', '-v', 'error', '-i', mov, '-map', '0', '-c', 'copy', '-f', 'mpegts', withData]);
    const result = await streamFingerprints(withData);
    expect(result.streams.map((s) => [s.index, s.type, 'hash' in s])).toEqual([[0, 'video', true], [1, 'audio', true], [2, 'data', false]]);
    expect(result.summary).toMatch(/^sha256:v0=[0-9a-f]{64},a1=[0-9a-f]{64}$/);
    // The audio packets are the source's (the video's bitstream framing changed in the mov round trip).
    expect(result.summary!.split(',')[1]).toBe((await mediaFingerprint(ts)).split(',')[1]);
  });

  it('an audio stream ffmpeg cannot copy (AAC, sample rate 0: mux.js test vector) is named; the video keeps its hash', async () => {
    const path = fileURLToPath(new URL('../../fixtures/corpus/mux.js/test-no-audio-segment.ts', import.meta.url));
    const result = await streamFingerprints(path);
    expect(result.streams[0]).toMatchObject({ index: 0, type: 'video', codec: 'h264' });
    expect(result.streams[0]).toHaveProperty('hash');
    expect(result.streams[1]).toMatchObject({ index: 1, type: 'audio', codec: 'aac' });
    expect((result.streams[1] as { error: string }).error.length).toBeGreaterThan(5);
    expect(result.summary).toMatch(/^sha256:v0=[0-9a-f]{64}$/);
  });
});

describe('process control', () => {
  it('kills a process on timeout and says so', async () => {
    const started = Date.now();
    const error = await runTool('ffmpeg', ['-nostdin', '-v', 'error', '-re', '-f', 'lavfi', '-i', 'testsrc', '-f', 'null', '-'], { timeoutMs: 500 }).catch((e: unknown) => e);
    expect((error as MediaError).code).toBe('E_MEDIA_TIMEOUT');
    expect(Date.now() - started).toBeLessThan(30_000);
  });

  it('kills a process on abort', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 200);
    const error = await runTool('ffmpeg', ['-nostdin', '-v', 'error', '-re', '-f', 'lavfi', '-i', 'testsrc', '-f', 'null', '-'], { signal: controller.signal }).catch((e: unknown) => e);
    expect((error as MediaError).code).toBe('E_MEDIA_ABORTED');
  });
});

describe('binary lookup', () => {
  const saved = process.env.FFPROBE_PATH;
  afterAll(() => {
    if (saved === undefined) delete process.env.FFPROBE_PATH; else process.env.FFPROBE_PATH = saved;
    resetToolPathCache();
  });

  it('repairs a binary that lost its run bit', async () => {
    const copy = join(dir.path, 'ffprobe-copy');
    copyFileSync(toolPath('ffprobe'), copy);
    chmodSync(copy, 0o644);
    process.env.FFPROBE_PATH = copy;
    resetToolPathCache();
    expect(toolPath('ffprobe')).toBe(copy);
    expect(statSync(copy).mode & 0o111).not.toBe(0);
    expect((await probe(ts)).formatName).toBe('mpegts');
  });

  it('names the variable to fix when FFPROBE_PATH points nowhere', () => {
    process.env.FFPROBE_PATH = join(dir.path, 'nope');
    resetToolPathCache();
    expect(() => toolPath('ffprobe')).toThrow(EnvironmentError);
    expect(() => toolPath('ffprobe')).toThrow(/FFPROBE_PATH/);
  });
});
