import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join, relative, resolve, dirname } from 'node:path';
import { runCli, type CliResult } from '../helpers/cli.js';
import { makeTempDir } from '../helpers/tmp.js';
import { descendants, parseXml } from '../helpers/xml.js';

// Runs the BUILT CLI: `npx tsc -p tsconfig.json` first (npm test does).
const root = fileURLToPath(new URL('../../', import.meta.url));
const scenariosDir = join(root, 'fixtures', 'scenarios');
const fixturesDir = join(root, 'fixtures');

/** One digest over every fixture file's path and bytes: replay must never change them. */
function treeDigest(dir: string): string {
  const hash = createHash('sha256');
  const walk = (d: string): void => {
    for (const name of readdirSync(d).sort()) {
      const path = join(d, name);
      if (statSync(path).isDirectory()) walk(path);
      else hash.update(relative(dir, path)).update(readFileSync(path));
    }
  };
  walk(dir);
  return hash.digest('hex');
}

describe('the shipped replay scenarios', () => {
  const tmp = makeTempDir('bodycam-replay-test-');
  const junit = join(tmp.path, 'junit.xml');
  const scenarioNames = readdirSync(scenariosDir).filter((f) => f.endsWith('.json')).sort();
  let before: string;
  let run: CliResult;

  beforeAll(async () => {
    before = treeDigest(fixturesDir);
    // 12 scenarios, about 2.5 min on a busy 2-core machine (the five layout-* ones record their cameras first).
    run = await runCli(['replay', scenariosDir, '--junit', junit, '--quiet'], { timeoutMs: 420_000 });
  }, 430_000);
  afterAll(() => tmp.cleanup());

  it('cover the issue\'s list: clean offload, every camera fault, an outage, undock/re-dock, a foreign camera', () => {
    const text = scenarioNames.map((f) => readFileSync(join(scenariosDir, f), 'utf8')).join('\n');
    for (const fault of ['power-loss', 'bitflip', 'zero-byte', 'missing-sidecar', 'bad-signature', 'clock-skew', 'storage-full']) expect(text).toContain(fault);
    expect(text).toMatch(/"kind": "down"/);
    expect(text).toMatch(/"undock"/);
    expect(text).toContain('foreign');
  });

  it('cover every card layout the simulator writes, and M2TS, with one scenario each', () => {
    const layouts = scenarioNames.map((f) => JSON.parse(readFileSync(join(scenariosDir, f), 'utf8')) as { cameras: Record<string, { record?: { layout?: string; container?: string } }> })
      .flatMap((s) => Object.values(s.cameras).map((c) => c.record)).filter((r) => r !== undefined);
    for (const layout of ['gopro', 'avchd', 'sony-xavc', 'dashcam', 'dated']) expect(layouts.map((r) => r!.layout)).toContain(layout);
    expect(layouts.some((r) => r!.container === 'm2ts' || r!.layout === 'avchd')).toBe(true);
  });

  it('all pass', () => {
    if (run.code !== 0) console.log(run.stdout, run.stderr);
    expect(run.stdout).toMatch(new RegExp(`^replay: (\\d+)/\\1 expectations held in ${scenarioNames.length} scenario\\(s\\);`, "m"));
    expect(run.code).toBe(0);
  });

  it('write JUnit XML that parses, one suite per scenario and one case per recording', () => {
    const xml = parseXml(readFileSync(junit, 'utf8'));
    const suites = descendants(xml, 'testsuite');
    expect(suites).toHaveLength(scenarioNames.length);
    const cases = descendants(xml, 'testcase');
    const tableRows = run.stdout.split('\n').filter((l) => / ok$| FAIL$/.test(l));
    expect(cases.length).toBe(tableRows.length);
    expect(Number(xml.attributes.tests)).toBe(cases.length);
    expect(xml.attributes.failures).toBe('0');
    expect(descendants(xml, 'failure')).toHaveLength(0);
  });

  it('really injected the network faults they name (proxy counters in the JUnit properties)', () => {
    const xml = parseXml(readFileSync(junit, 'utf8'));
    const counters = (scenario: string): Record<string, number> => {
      const suite = descendants(xml, 'testsuite').find((s) => s.attributes.name === scenario)!;
      return Object.fromEntries(descendants(suite, 'property').map((p) => [p.attributes.name!.replace('proxy.', ''), Number(p.attributes.value)]));
    };
    const outage = counters('outage-mid-upload');
    expect(outage).toMatchObject({ statusAnswers: 4, resets: 2 });
    expect(outage.severed).toBeGreaterThan(0);
    const flaky = counters('flaky-link');
    expect(flaky.statusAnswers).toBe(3);
    expect(flaky.halfClosed).toBeGreaterThan(0);
    expect(flaky.blackholed).toBeGreaterThan(0);
  });

  it('leave the committed fixtures as they were', () => {
    expect(treeDigest(fixturesDir)).toBe(before);
  });
});

describe('a scenario whose expectation is wrong', () => {
  const tmp = makeTempDir('bodycam-replay-wrong-');
  afterAll(() => tmp.cleanup());

  it('makes replay exit 1 and names the recording', async () => {
    const source = join(scenariosDir, 'clean-two-cameras.json');
    const scenario = JSON.parse(readFileSync(source, 'utf8'));
    for (const camera of Object.values(scenario.cameras) as Array<{ fixture: string }>) camera.fixture = resolve(dirname(source), camera.fixture);
    scenario.name = 'wrong-expectation';
    // The first camera's recordings are clean: claiming they are quarantined must fail.
    const [first, ...rest] = scenario.expect;
    scenario.expect = [{ recording: first.recording, outcome: 'quarantined', camera: 'kept' }, ...rest];
    const file = join(tmp.path, 'wrong.json');
    writeFileSync(file, JSON.stringify(scenario, null, 2));
    const junit = join(tmp.path, 'junit.xml');
    const result = await runCli(['replay', file, '--junit', junit, '--quiet'], { timeoutMs: 110_000 });
    expect(result.code).toBe(1);
    const camera = first.recording.split('/')[0];
    expect(result.stdout).toMatch(new RegExp(`^FAIL wrong-expectation: ${camera}/\\S+: expected quarantined`, 'm'));
    const xml = parseXml(readFileSync(junit, 'utf8'));
    expect(Number(xml.attributes.failures)).toBeGreaterThan(0);
    expect(descendants(xml, 'failure')[0]!.attributes.message).toContain(`${camera}/`);
  });

  it('an invalid scenario stops replay before anything runs, with the place of the mistake', async () => {
    const file = join(tmp.path, 'invalid.json');
    writeFileSync(file, JSON.stringify({ format: 'bodycam-scenario/1', name: 'x', dock: { bays: [] }, cameras: {}, steps: [], expect: [] }));
    const result = await runCli(['replay', file]);
    expect(result.code).toBe(2);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toContain('dock.bays: needs at least 1 item(s)');
  });

  it('a recording without an expectation, or a fixture that is not there, makes the scenario invalid: exit 2, not a failed replay', async () => {
    const fixture = resolve(scenariosDir, '..', 'cameras', 'fmp4-h264');
    const base = { format: 'bodycam-scenario/1', dock: { bays: ['bay-1'] }, steps: [{ dock: 'alpha', bay: 'bay-1' }] };
    const unexpected = join(tmp.path, 'unexpected.json');
    writeFileSync(unexpected, JSON.stringify({ ...base, name: 'unexpected', cameras: { alpha: { fixture } }, expect: [{ recording: 'alpha/NOPE*', outcome: 'ingested' }] }));
    const noExpectation = await runCli(['replay', unexpected, '--quiet'], { timeoutMs: 60_000 });
    expect(noExpectation.code).toBe(2);
    expect(noExpectation.stdout).toMatch(/has no expectation: every recording needs one/);
    const absent = join(tmp.path, 'absent.json');
    writeFileSync(absent, JSON.stringify({ ...base, name: 'absent', cameras: { alpha: { fixture: './no-such-camera' } }, expect: [{ recording: 'alpha/*', outcome: 'ingested' }] }));
    const noFixture = await runCli(['replay', absent, '--quiet'], { timeoutMs: 60_000 });
    expect(noFixture.code).toBe(2);
    expect(noFixture.stderr).toMatch(/cameras\.alpha\.fixture: no fixture at .*no-such-camera/);
  });
});
