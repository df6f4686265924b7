#!/usr/bin/env node
// Regenerates fixtures/cameras/* and fixtures/foreign/* from the built code (run `npm run build` first).
// Every camera is seeded, so a rerun with the same ffmpeg build gives the same bytes.
// The cameras' private keys (.system/) are left out: they are derivable from the seeds
// below, which makes them test keys that must never be trusted for anything else.
import { mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { recordCamera } from '../dist/camera/index.js';
import { generateForeignClip } from '../dist/media/generate.js';

const fixtures = fileURLToPath(new URL('../fixtures/', import.meta.url));
const cameras = join(fixtures, 'cameras');
const foreign = join(fixtures, 'foreign');
const small = { width: 320, height: 240, fps: 15, videoKbps: 100, audioKbps: 32, durationSeconds: 4 };

/** name → record options; the seed makes serial, key, clock and bytes reproducible. */
const plan = {
  'fmp4-h264': { seed: 101 },
  'mpegts-h264': { seed: 102, container: 'mpegts' },
  'mp4-h264': { seed: 103, container: 'mp4' },
  'fmp4-hevc': { seed: 104, codec: 'hevc' },
  'mpegts-hevc': { seed: 105, container: 'mpegts', codec: 'hevc' },
  'rollover': { seed: 106, durationSeconds: 7, maxFileDurationSeconds: 3, trigger: 'holster', category: 'arrest' },
  'critical-multi': { seed: 107, count: 3, durationSeconds: 2, critical: true, category: 'use-of-force', trigger: 'taser', preEventSeconds: 1 },
  'power-loss': { seed: 108, durationSeconds: 6, faults: ['power-loss'] },
  'bitflip': { seed: 109, faults: ['bitflip'] },
  'zero-byte': { seed: 110, faults: ['zero-byte'] },
  'missing-sidecar': { seed: 111, faults: ['missing-sidecar'] },
  'bad-signature': { seed: 112, faults: ['bad-signature'] },
  'clock-skew': { seed: 113, faults: ['clock-skew=3600'] },
  'storage-full': { seed: 114, durationSeconds: 6, faults: ['storage-full'] },
  'power-loss-mpegts': { seed: 115, container: 'mpegts', durationSeconds: 6, faults: ['power-loss'] },
};

rmSync(cameras, { recursive: true, force: true });
rmSync(foreign, { recursive: true, force: true });
mkdirSync(cameras, { recursive: true });
mkdirSync(foreign, { recursive: true });

for (const [name, options] of Object.entries(plan)) {
  const storage = join(cameras, name);
  const result = await recordCamera({ ...small, ...options, storage });
  rmSync(join(storage, '.system'), { recursive: true, force: true });
  console.log(`${name.padEnd(18)} ${result.serial}  ${result.files.map((f) => `${f.mediaPath.split('/').pop()}${f.faults.length ? ` [${f.faults.join(',')}]` : ''}`).join('  ')}`);
}
await generateForeignClip(join(foreign, 'VX100_0001.MP4'), { durationSeconds: 3, width: 320, height: 240, fps: 15 });
console.log('foreign            VX100_0001.MP4 (video + audio + mov_text track, no sidecar, no DEVICE.json)');

let total = 0;
const walk = (dir) => { for (const entry of readdirSync(dir)) { const p = join(dir, entry); const s = statSync(p); if (s.isDirectory()) walk(p); else total += s.size; } };
walk(cameras);
walk(foreign);
console.log(`total ${(total / 1024).toFixed(0)} KiB`);
if (total > 5 * 1024 * 1024) { console.error('fixtures exceed 5 MiB'); process.exit(1); }
