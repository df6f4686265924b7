#!/usr/bin/env node
/**
 * Refresh test/suite-seconds.json (read by test/sequencer.mjs: longest suites first) from a full
 * jest run's JSON report:
 *
 *   node --experimental-vm-modules node_modules/jest/bin/jest.js --json --outputFile=/tmp/jest.json
 *   node scripts/suite-seconds.mjs /tmp/jest.json "full run 2026-12-02, load 3"
 *
 * Seconds per suite as that run measured them (start to end of the file in its worker). Only the
 * order matters to the sequencer, so a loaded run's figures serve, as long as the note says so; a
 * suite that failed keeps its old figure (a failure cut short says nothing about its length).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const target = join(root, 'test', 'suite-seconds.json');
const [report, note] = process.argv.slice(2);
if (!report || !note) {
  process.stderr.write('usage: node scripts/suite-seconds.mjs <jest --json report> "<when, load average>"\n');
  process.exit(2);
}
const run = JSON.parse(readFileSync(report, 'utf8'));
const before = JSON.parse(readFileSync(target, 'utf8')).seconds ?? {};
const seconds = {};
let kept = 0;
for (const suite of run.testResults) {
  const name = relative(root, suite.name).split('\\').join('/');
  const measured = (suite.endTime - suite.startTime) / 1000;
  if (suite.status === 'passed' && Number.isFinite(measured) && measured > 0) seconds[name] = Math.round(measured * 10) / 10;
  else if (typeof before[name] === 'number') { seconds[name] = before[name]; kept++; }
}
const sorted = Object.fromEntries(Object.entries(seconds).sort(([a, x], [b, y]) => y - x || (a < b ? -1 : 1)));
writeFileSync(target, `${JSON.stringify({
  '//': `Seconds per suite in a full jest run (${note}), read by test/sequencer.mjs to start the longest first; only the order matters. Refresh: node scripts/suite-seconds.mjs <jest --json report> "<when, load>" (docs/benchmarks.md, Test suite time).`,
  seconds: sorted,
}, null, 2)}\n`);
process.stdout.write(`test/suite-seconds.json: ${Object.keys(sorted).length} suites${kept ? `, ${kept} kept from before (failed in this run)` : ''}\n`);
