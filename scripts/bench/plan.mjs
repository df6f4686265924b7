// Segment planning time for about 1 GB of MPEG-TS (188), M2TS (192) and fragmented MP4: what the
// dock's plan step costs (TS: ffprobe's video packet list + the packet grid + the tail check;
// fMP4: reading every moof). Inputs are made in a temp dir by looping a 10 s 1280x720 30 fps
// H.264 + AAC clip (≈4 Mbit/s, a body camera's rate) with stream copy, and deleted afterwards.
// `npm run bench plan` (after `npm run build`). BENCH_PLAN_MB sets the size (default 1024).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mediaEnv, toolPath } from '../../dist/media/binaries.js';
import { probe } from '../../dist/media/probe.js';
import { planSegments } from '../../dist/dock/planner.js';

/** CPU seconds of this process and its waited-for children (ffprobe) from /proc/self/stat. */
function cpuSeconds() {
  const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
  const tick = Number(spawnSync('getconf', ['CLK_TCK']).stdout.toString().trim()) || 100;
  return (Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) / tick;
}
const MB = Number(process.env.BENCH_PLAN_MB ?? 1024);
const root = mkdtempSync(join(tmpdir(), 'bodycam-bench-plan-'));
const ffmpeg = (args) => {
  const r = spawnSync(toolPath('ffmpeg'), ['-nostdin', '-v', 'error', '-y', ...args], { env: mediaEnv(), stdio: ['ignore', 'inherit', 'inherit'] });
  if (r.status !== 0) throw new Error('ffmpeg failed: ' + args.join(' '));
};
try {
  const clip = join(root, 'clip.ts');
  ffmpeg(['-f', 'lavfi', '-i', 'testsrc2=size=1280x720:rate=30:duration=10', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000:duration=10',
    '-c:v', 'libx264', '-preset', 'ultrafast', '-b:v', '4M', '-g', '30', '-c:a', 'aac', '-b:a', '64k', '-f', 'mpegts', clip]);
  const bytes = MB * 1024 * 1024;
  const files = [
    ['MPEG-TS (188)', join(root, 'big.ts'), ['-f', 'mpegts']],
    ['M2TS (192)', join(root, 'big.m2ts'), ['-f', 'mpegts', '-mpegts_m2ts_mode', '1']],
    ['fMP4 (1 s fragments)', join(root, 'big.mp4'), ['-movflags', '+frag_keyframe+empty_moov+default_base_moof', '-f', 'mp4']],
  ];
  console.log(`| input | size | segments | packet size | plan wall time (3 runs) | CPU s (dock + ffprobe, per run) |\n| --- | --- | --- | --- | --- | --- |`);
  for (const [label, path, format] of files) {
    const made = Date.now();
    ffmpeg(['-stream_loop', '-1', '-i', clip, '-map', '0', '-c', 'copy', '-fs', String(bytes), ...(format.includes('mp4') ? ['-bsf:a', 'aac_adtstoasc'] : []), ...format, path]);
    const size = statSync(path).size;
    const info = await probe(path);
    const times = [];
    const cpus = [];
    let plan;
    for (let i = 0; i < 3; i++) {
      const t = performance.now();
      const c = cpuSeconds();
      plan = await planSegments(path, size, { segmentSeconds: 10, maxBytes: 16 * 1024 * 1024, formatName: info.formatName });
      times.push(((performance.now() - t) / 1000).toFixed(2));
      cpus.push((cpuSeconds() - c).toFixed(2));
    }
    console.log(`| ${label} | ${(size / 1048576).toFixed(0)} MiB, ${plan.segments[plan.segments.length - 1].endTime?.toFixed(0)} s | ${plan.segments.length} | ${plan.packetSize ?? '-'} | ${times.join(' / ')} s | ${cpus.join(' / ')} |`);
    console.error(`  (made in ${((Date.now() - made) / 1000).toFixed(1)} s, truncated=${plan.truncatedTail})`);
    rmSync(path, { force: true });
  }
} finally {
  rmSync(root, { recursive: true, force: true });
}
