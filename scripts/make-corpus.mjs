#!/usr/bin/env node
// Writes the generated part of the corpus (fixtures/corpus/generated/, see SOURCES.md) with the
// bundled ffmpeg: the shapes other makers write that the third-party test vectors do not cover.
// `npm run build && node scripts/make-corpus.mjs`. Deterministic inputs (lavfi testsrc2/sine,
// +bitexact); the committed files are the ones the corpus test runs on.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mediaEnv, toolPath } from '../dist/media/binaries.js';

const out = fileURLToPath(new URL('../fixtures/corpus/generated/', import.meta.url));
mkdirSync(out, { recursive: true });
const ffmpeg = toolPath('ffmpeg');
const env = mediaEnv();
const at = (name) => join(out, name);
const tmp = (name) => join(out, `.tmp-${name}`);

function run(args) {
  const r = spawnSync(ffmpeg, ['-nostdin', '-v', 'error', '-y', ...args], { env, stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) throw new Error(`ffmpeg ${args.join(' ')} failed`);
}
const video = (rate = 15, size = '320x240', seconds = 6) => ['-f', 'lavfi', '-i', `testsrc2=size=${size}:rate=${rate}:duration=${seconds}`];
const tone = (hz, seconds = 6, sampleRate = 16000) => ['-f', 'lavfi', '-i', `sine=frequency=${hz}:sample_rate=${sampleRate}:duration=${seconds}`];
const x264 = ['-c:v', 'libx264', '-preset', 'veryfast', '-crf', '32', '-g', '15', '-keyint_min', '15', '-sc_threshold', '0', '-pix_fmt', 'yuv420p'];
const exact = ['-fflags', '+bitexact', '-flags:v', '+bitexact', '-flags:a', '+bitexact', '-map_metadata', '-1'];

// M2TS: 192-byte packets (4-byte timestamp prefix), as AVCHD camcorders and some body cameras write.
run([...video(), ...tone(440), ...x264, '-bf', '2', '-c:a', 'aac', '-b:a', '48k', ...exact, '-f', 'mpegts', '-mpegts_m2ts_mode', '1', at('m2ts-192-avc-aac.m2ts')]);

// M2TS cut at a packet boundary inside the last audio PES (power loss): truncated by its PES.
{
  const whole = readFileSync(at('m2ts-192-avc-aac.m2ts'));
  // Find the last audio PES start (PID 0x101) and cut two packets after it.
  let lastAudio = -1;
  for (let p = 0; p + 192 <= whole.length; p += 192) {
    const q = p + 4;
    const pid = ((whole[q + 1] & 0x1f) << 8) | whole[q + 2];
    if (pid === 0x101 && (whole[q + 1] & 0x40) && p < whole.length * 0.8) lastAudio = p;
  }
  writeFileSync(at('m2ts-cut-mid-pes.m2ts'), whole.subarray(0, lastAudio + 192));
}

// 204-byte packets (188 + 16 bytes of Reed-Solomon room, as DVB/ISDB captures keep them): zeros here.
run([...video(15, '320x240', 4), ...tone(660, 4), ...x264, '-c:a', 'aac', '-b:a', '48k', ...exact, '-f', 'mpegts', tmp('188.ts')]);
{
  const ts = readFileSync(tmp('188.ts'));
  const packets = [];
  for (let p = 0; p + 188 <= ts.length; p += 188) packets.push(ts.subarray(p, p + 188), Buffer.alloc(16));
  writeFileSync(at('ts-204-avc-aac.ts'), Buffer.concat(packets));
  // A broadcast TS cut mid-packet (`head -c`): truncated by its length.
  writeFileSync(at('ts-cut-mid-packet.ts'), ts.subarray(0, Math.floor(ts.length * 0.7 / 188) * 188 + 101));
}

// Several video and audio streams in one TS (the video clock is the first video stream's).
run([...video(15, '320x240', 4), ...video(10, '160x120', 4), ...tone(300, 4), ...tone(500, 4), ...tone(700, 4),
  '-map', '0:v', '-map', '1:v', '-map', '2:a', '-map', '3:a', '-map', '4:a', ...x264, '-c:a', 'mp2', '-b:a', '64k', ...exact, '-f', 'mpegts', at('ts-multistream.ts')]);

// A TS with a data stream beside video and audio (the mov timecode track muxed as bin_data).
run([...video(15, '320x240', 4), ...tone(440, 4), ...x264, '-c:a', 'aac', '-b:a', '48k', '-timecode', '00:00:00:00', ...exact, tmp('tc.mov')]);
run(['-i', tmp('tc.mov'), '-map', '0', '-c', 'copy', ...exact, '-f', 'mpegts', at('ts-data-stream.ts')]);
rmSync(tmp('tc.mov'), { force: true });

// HEVC in TS, and a 33-bit PTS rollover inside the file (timestamps start 2 s before the wrap).
run([...video(15, '320x240', 4), '-c:v', 'libx265', '-preset', 'ultrafast', '-x265-params', 'keyint=15:min-keyint=15:scenecut=0:log-level=error', '-pix_fmt', 'yuv420p', ...exact, '-f', 'mpegts', at('ts-hevc.ts')]);
run([...video(15, '320x240', 5), ...x264, ...exact, '-f', 'mpegts', '-output_ts_offset', String(2 ** 33 / 90000 - 2), at('ts-pts-rollover.ts')]);

// fMP4 with B-frames, the audio track first (the clock must come from the video track), 1 s fragments.
run([...video(), ...tone(440), '-map', '1:a', '-map', '0:v', ...x264, '-bf', '2', '-c:a', 'aac', '-b:a', '48k', ...exact,
  '-movflags', '+frag_keyframe+empty_moov+default_base_moof', at('fmp4-bframes-audio-first.mp4')]);

// A cut fMP4 (power loss: the last fragment short).
{
  const whole = readFileSync(at('fmp4-bframes-audio-first.mp4'));
  writeFileSync(at('fmp4-cut.mp4'), whole.subarray(0, whole.length - 3000));
}

rmSync(tmp('188.ts'), { force: true });
console.log(`wrote ${out}`);
