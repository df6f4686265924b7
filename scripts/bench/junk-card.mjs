// A card of thousands of files the dock reads and sets aside (empty .mp4 files, quarantined
// zero_byte): what `bodycam dock --once` costs in CPU, wall time and peak RSS as the count grows.
// Each file is one journal row and one short job; the cost per file must stay flat (before the
// fix it grew with the count: the idle check after every job listed and sorted every queued row).
// `npm run bench junk-card` (after `npm run build`); BENCH_JUNK_FILES="2500,10000" sets the counts,
// BENCH_JUNK_BASELINE=<repo dir of another build> runs that build too, alternating, on the same card.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startIngestServer } from '../../dist/server/index.js';
import { quietLogger } from '../../dist/log.js';

const here = fileURLToPath(new URL('../..', import.meta.url));
const counts = (process.env.BENCH_JUNK_FILES ?? '2500,10000').split(',').map(Number);
const builds = [['this build', here], ...(process.env.BENCH_JUNK_BASELINE ? [['baseline', process.env.BENCH_JUNK_BASELINE]] : [])];
const load = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
const root = mkdtempSync(join(tmpdir(), 'bodycam-bench-junk-'));
const token = randomBytes(32).toString('base64url');
writeFileSync(join(root, 'token'), token + '\n', { mode: 0o600 });
const server = await startIngestServer({ dataDir: join(root, 'server'), tokens: { bench: token }, host: '127.0.0.1', port: 0, logger: quietLogger() });

try {
  for (const n of counts) {
    const bays = join(root, `bays-${n}`);
    const folder = join(bays, 'bay1', 'DCIM', '100MEDIA');
    mkdirSync(folder, { recursive: true });
    for (let i = 0; i < n; i++) closeSync(openSync(join(folder, `V${String(i).padStart(6, '0')}.mp4`), 'w'));
    for (const [name, repo] of builds) {
      const stateDir = join(root, `state-${n}-${name.replace(/\W/g, '')}`);
      const started = Date.now();
      const run = spawnSync('/usr/bin/time', ['-v', process.execPath, join(repo, 'bin/bodycam.js'), 'dock', '--once', '--bays', bays, '--endpoint', server.url,
        '--token-file', join(root, 'token'), '--state-dir', stateDir, '--dock-id', 'bench'], { encoding: 'utf8', maxBuffer: 1 << 30, env: { ...process.env, BODYCAM_LOG_LEVEL: 'error' } });
      const field = (label) => Number(new RegExp(`${label}: ([\\d.]+)`).exec(run.stderr)?.[1]);
      const cpu = field('User time \\(seconds\\)') + field('System time \\(seconds\\)');
      console.log(JSON.stringify({ files: n, build: name, exit: run.status, wallSeconds: (Date.now() - started) / 1000, cpuSeconds: Number(cpu.toFixed(2)),
        cpuMsPerFile: Number((cpu * 1000 / n).toFixed(2)), peakRssMiB: Math.round(field('Maximum resident set size \\(kbytes\\)') / 1024), load: load() }));
      rmSync(stateDir, { recursive: true, force: true });
    }
    rmSync(bays, { recursive: true, force: true });
  }
} finally {
  await server.close();
  rmSync(root, { recursive: true, force: true });
}
