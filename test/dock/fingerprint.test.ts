import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { join } from 'node:path';
import { mediaFingerprint } from '../../src/media/fingerprint.js';
import { probe } from '../../src/media/probe.js';
import { runTool } from '../../src/media/run.js';
import { makeTempDir } from '../helpers/tmp.js';

// The dock's fingerprint must stay what ffmpeg's hash muxer prints, stream by stream: that is how
// anyone re-derives it without this project's code (docs/protocol.md).
const dir = makeTempDir('bodycam-fingerprint-');
const ts = join(dir.path, 'clip.ts');
const fmp4 = join(dir.path, 'clip.mp4');

beforeAll(async () => {
  const source = ['-f', 'lavfi', '-i', 'testsrc=size=160x120:rate=15', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=16000', '-t', '3',
    '-c:v', 'libx264', '-g', '15', '-c:a', 'aac', '-ac', '1'];
  await runTool('ffmpeg', ['-nostdin', '-v', 'error', ...source, '-f', 'mpegts', ts]);
  await runTool('ffmpeg', ['-nostdin', '-v', 'error', '-i', ts, '-c', 'copy', '-bsf:a', 'aac_adtstoasc', '-movflags', '+frag_keyframe+empty_moov+default_base_moof', fmp4]);
});
afterAll(() => dir.cleanup());

async function hashMuxer(path: string): Promise<string> {
  const streams = (await probe(path)).streams.filter((s) => s.type === 'video' || s.type === 'audio');
  const parts: string[] = [];
  for (const s of streams) {
    const { stdout } = await runTool('ffmpeg', ['-nostdin', '-v', 'error', '-i', path, '-map', `0:${s.index}`, '-c', 'copy', '-f', 'hash', '-hash', 'sha256', '-']);
    parts.push(`${s.type[0]}${s.index}=${/SHA256=([0-9a-f]{64})/i.exec(stdout.toString())![1]!.toLowerCase()}`);
  }
  return 'sha256:' + parts.join(',');
}

describe('media fingerprint', () => {
  it.each([['fragmented MP4', fmp4], ['MPEG-TS', ts]])('equals ffmpeg\'s hash muxer per stream for %s', async (_kind, path) => {
    const reference = await hashMuxer(path);
    const ours = await mediaFingerprint(path);
    expect(ours).toMatch(/^sha256:v0=[0-9a-f]{64},a1=[0-9a-f]{64}$/);
    expect(ours).toBe(reference);
  });
});
