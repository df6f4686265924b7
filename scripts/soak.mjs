#!/usr/bin/env node
/**
 * `npm run soak`: the reliability suite (test/reliability) at its long size —
 * 200 dock kills in the crash loop, a 5-minute outage "night", a bigger flood —
 * then one merged JSON summary, reliability-report.json, whose figures go into
 * docs/reliability.md. Sizes can be changed with flags:
 *
 *   npm run soak -- [--kills 200] [--night 300] [--cameras 16] [--waves 8] [--per-camera 3] [--rate 24KB/s] [--flood 2000] [--out DIR]
 *                   [--model-runs 40] [--model-max-ops 16]
 *
 * It then runs the model-based adversarial test (test/model) with MODEL_RUNS
 * random sequences of up to MODEL_MAX_OPS operations (FC_SEED reproduces one), and the
 * agency-scale run (scripts/demo-scale.mjs: 3 servers on Ceph + PostgreSQL, 2 docks, 8 cameras),
 * and last every pure fast-check property (the judge, schemas, state table, journal history, ...)
 * with FC_RUNS_FACTOR=50 (--fc-factor): each CI run draws fresh seeds, so a property that fails one
 * run in a hundred fails there, not on a landing.
 *
 * The same tests at their small size are part of `npm test`.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const args = process.argv.slice(2);
const flag = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : fallback;
};
for (const a of args) {
  if (a.startsWith('--') && !['--kills', '--night', '--cameras', '--per-camera', '--rate', '--out', '--flood', '--waves', '--model-runs', '--model-max-ops', '--fc-factor'].includes(a)) {
    process.stderr.write(`soak: unknown option ${a}\n`);
    process.exit(2);
  }
}

const out = resolve(flag('out', join(tmpdir(), 'bodycam-soak')));
const sections = join(out, 'sections');
rmSync(sections, { recursive: true, force: true });
mkdirSync(sections, { recursive: true });

const env = {
  ...process.env,
  RELIABILITY_SIZE: 'soak',
  RELIABILITY_REPORT_DIR: sections,
  RELIABILITY_KILLS: flag('kills', '200'),
  RELIABILITY_NIGHT_SECONDS: flag('night', '300'),
  RELIABILITY_CAMERAS: flag('cameras', '16'),
  RELIABILITY_WAVES: flag('waves', '8'),
  RELIABILITY_RECORDINGS_PER_CAMERA: flag('per-camera', '3'),
  RELIABILITY_RATE: flag('rate', '24KB/s'),
  RELIABILITY_FLOOD_REQUESTS: flag('flood', '2000'),
  RELIABILITY_SLOW_LORIS: '100',
  MODEL_RUNS: flag('model-runs', process.env.MODEL_RUNS ?? '40'),
  MODEL_MAX_OPS: flag('model-max-ops', process.env.MODEL_MAX_OPS ?? '16'),
};

const started = Date.now();
process.stdout.write(`soak: building, then test/reliability with ${env.RELIABILITY_KILLS} kills and a ${env.RELIABILITY_NIGHT_SECONDS} s night; summary in ${out}\n`);
const build = spawnSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', join(root, 'tsconfig.json')], { cwd: root, stdio: 'inherit' });
if (build.status !== 0) process.exit(build.status ?? 1);
const jestRun = (dir) => spawnSync(process.execPath, ['--experimental-vm-modules', join(root, 'node_modules/jest/bin/jest.js'), dir, '--testTimeout', '14400000'],
  { cwd: root, env, stdio: 'inherit' });
const reliability = jestRun('test/reliability');
process.stdout.write(`\nsoak: model-based adversarial test, ${env.MODEL_RUNS} runs of up to ${env.MODEL_MAX_OPS} operations\n`);
const model = jestRun('test/model');
// Agency scale at its full size (issue 13): 3 servers on Ceph RGW + PostgreSQL, 2 docks, 8 cameras,
// a server SIGKILLed mid-upload, another during completes, PostgreSQL restarted (scripts/demo-scale.mjs).
process.stdout.write('\nsoak: agency scale, 3 servers on Ceph RGW + PostgreSQL, 2 docks, 8 cameras (npm run demo:scale)\n');
const scale = spawnSync(process.execPath, [join(root, 'scripts/demo-scale.mjs'), '--docks', '2', '--cameras', '8', '--servers', '3', '--duration', '3'], { cwd: root, env, stdio: 'inherit' });
const fcFactor = flag('fc-factor', '50');
process.stdout.write(`\nsoak: every fast-check property at ${fcFactor} times its cases (FC_RUNS_FACTOR)\n`);
const propertyFiles = readdirSync(join(root, 'test'), { recursive: true })
  .filter((f) => f.endsWith('.test.ts') && !f.startsWith('model') && /from 'fast-check'|stateConformance/.test(readFileSync(join(root, 'test', f), 'utf8')))
  .map((f) => join('test', f));
const properties = spawnSync(process.execPath, ['--experimental-vm-modules', join(root, 'node_modules/jest/bin/jest.js'), '--testTimeout', '14400000', ...propertyFiles],
  { cwd: root, env: { ...env, FC_RUNS_FACTOR: fcFactor }, stdio: 'inherit' });
const jest = { status: [reliability, model, scale, properties].map((r) => r.status).find((s) => s !== 0) ?? 0 };

const report = { command: `npm run soak -- ${args.join(' ')}`.trim(), startedAt: new Date(started).toISOString(), durationSeconds: Math.round((Date.now() - started) / 1000), jestExit: jest.status, reliabilityExit: reliability.status, modelExit: model.status, scaleExit: scale.status, propertiesExit: properties.status, modelRuns: Number(env.MODEL_RUNS), sections: {} };
for (const name of readdirSync(sections).filter((n) => n.endsWith('.json')).sort()) {
  report.sections[name.replace(/\.json$/, '')] = JSON.parse(readFileSync(join(sections, name), 'utf8'));
}
const path = join(out, 'reliability-report.json');
writeFileSync(path, JSON.stringify(report, null, 2) + '\n');

const crash = report.sections['crash-loop'];
const outage = report.sections.outage;
process.stdout.write(`\nsoak: ${jest.status === 0 ? 'PASSED' : 'FAILED'} in ${report.durationSeconds} s; report ${path}\n`);
if (crash) process.stdout.write(`  crash loop: ${crash.dockKills} dock kills, ${crash.serverKills} server kills, ${crash.recordings} recordings, ${crash.bytes} bytes; lost ${crash.lost}, altered ${crash.altered}, duplicated ${crash.duplicated}, wiped early ${crash.wipedEarly}, re-sent after ack ${crash.resentAfterAck}\n`);
if (outage) process.stdout.write(`  outage: ${outage.nightSeconds} s night, peak RSS ${Math.round(outage.peakRssKiB / 1024)} MiB, journal ${outage.journalEndBytes} bytes, CPU ${(outage.cpuShare * 100).toFixed(1)} % of a core; drained in ${outage.drainSeconds} s\n`);
process.exit(jest.status ?? 1);
