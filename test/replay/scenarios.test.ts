import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join, relative, resolve, dirname } from 'node:path';
import { runCli, type CliResult } from '../helpers/cli.js';
import { makeTempDir } from '../helpers/tmp.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
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

/**
 * Seconds each shipped scenario took alone (replay's JUnit times, 2026-12-01, load ~18): the lanes
 * below are filled longest first from these; a scenario not listed counts as UNLISTED_SECONDS.
 */
const SCENARIO_SECONDS: Record<string, number> = {
  'outage-mid-upload': 25, 'camera-faults': 22, 'dock-restart': 21, 'flaky-link': 20.5, 'layout-gopro': 14.4, 'clean-two-cameras': 14.1,
  'undock-redock': 11.8, 'layout-sony-xavc': 11.6, 'layout-avchd': 6.9, 'layout-dashcam': 6, 'layout-dated-m2ts': 5.3, 'foreign-camera': 4.2,
};
const UNLISTED_SECONDS = 15;
/**
 * Replay runs the scenarios of one command one after another, and they mostly wait (bandwidth caps,
 * outages, settle and rescan intervals: ~20 CPU s in 160 s). The test runs them in this many replay
 * processes at once, each with its own server, proxy and dock on port 0, so the suite takes about a
 * lane's time instead of the sum.
 */
const LANES = 4;

/** Scenario files split into lanes of about equal expected time (longest first, into the emptiest lane). */
function lanesOf(files: string[], lanes: number): string[][] {
  const seconds = (f: string) => SCENARIO_SECONDS[f.replace(/\.json$/, '')] ?? UNLISTED_SECONDS;
  const out = Array.from({ length: Math.min(lanes, files.length) }, () => ({ files: [] as string[], seconds: 0 }));
  for (const file of [...files].sort((a, b) => seconds(b) - seconds(a) || a.localeCompare(b))) {
    const lane = out.reduce((min, l) => (l.seconds < min.seconds ? l : min));
    lane.files.push(file);
    lane.seconds += seconds(file);
  }
  return out.map((l) => l.files.sort());
}

/**
 * The replays of the mistakes (below) run alongside the shipped lanes: started in the lanes'
 * beforeAll, awaited by their tests (or started there when only they run, -t).
 */
const mistakesTmp = makeTempDir('bodycam-replay-wrong-');
const once = <T>(start: () => Promise<T>): (() => Promise<T>) => {
  let running: Promise<T> | undefined;
  return () => (running ??= start());
};
const wrongExpectationRun = once(async () => {
  const source = join(scenariosDir, 'clean-two-cameras.json');
  const scenario = JSON.parse(readFileSync(source, 'utf8'));
  for (const camera of Object.values(scenario.cameras) as Array<{ fixture: string }>) camera.fixture = resolve(dirname(source), camera.fixture);
  scenario.name = 'wrong-expectation';
  // The first camera's recordings are clean: claiming they are quarantined must fail.
  const [first, ...rest] = scenario.expect;
  scenario.expect = [{ recording: first.recording, outcome: 'quarantined', camera: 'kept' }, ...rest];
  const file = join(mistakesTmp.path, 'wrong.json');
  writeFileSync(file, JSON.stringify(scenario, null, 2));
  const junit = join(mistakesTmp.path, 'junit.xml');
  const result = await runCli(['replay', file, '--junit', junit, '--quiet'], { timeoutMs: 170_000 });
  return { result, junit, recording: first.recording as string };
});
const invalidRun = once(() => {
  const file = join(mistakesTmp.path, 'invalid.json');
  writeFileSync(file, JSON.stringify({ format: 'bodycam-scenario/1', name: 'x', dock: { bays: [] }, cameras: {}, steps: [], expect: [] }));
  return runCli(['replay', file]);
});
const fixtureBase = { format: 'bodycam-scenario/1', dock: { bays: ['bay-1'] }, steps: [{ dock: 'alpha', bay: 'bay-1' }] };
const noExpectationRun = once(() => {
  const fixture = resolve(scenariosDir, '..', 'cameras', 'fmp4-h264');
  const unexpected = join(mistakesTmp.path, 'unexpected.json');
  writeFileSync(unexpected, JSON.stringify({ ...fixtureBase, name: 'unexpected', cameras: { alpha: { fixture } }, expect: [{ recording: 'alpha/NOPE*', outcome: 'ingested' }] }));
  return runCli(['replay', unexpected, '--quiet'], { timeoutMs: 90_000 });
});
const noFixtureRun = once(() => {
  const absent = join(mistakesTmp.path, 'absent.json');
  writeFileSync(absent, JSON.stringify({ ...fixtureBase, name: 'absent', cameras: { alpha: { fixture: './no-such-camera' } }, expect: [{ recording: 'alpha/*', outcome: 'ingested' }] }));
  return runCli(['replay', absent, '--quiet'], { timeoutMs: 90_000 });
});

/**
 * replay --endpoint against a server whose store is full: the failure names the server's code, not only a timeout.
 * The deadline must leave the dock time to start, hash and meet the 507 on a loaded machine (6 s did not at load 19:
 * "last seen dock: planned"); it runs alongside the lanes, so it costs no wall time of its own.
 */
const STORE_FULL_TIMEOUT_S = 30;
let fullServer: TestServer | undefined;
const storeFullRun = once(async () => {
  fullServer = await startTestServer({ limits: { maxStoreBytes: 1000 } });
  const fixture = resolve(scenariosDir, '..', 'cameras', 'fmp4-h264');
  const file = join(mistakesTmp.path, 'store-full.json');
  writeFileSync(file, JSON.stringify({ ...fixtureBase, name: 'store-full', timeout: STORE_FULL_TIMEOUT_S, dock: { bays: ['bay-1'], wipeAfterIngest: false }, cameras: { alpha: { fixture } }, expect: [{ recording: 'alpha/*', outcome: 'ingested' }] }));
  const tokenFile = join(mistakesTmp.path, 'dock.token');
  writeFileSync(tokenFile, fullServer.tokens['dock-1'] + '\n', { mode: 0o600 });
  const junit = join(mistakesTmp.path, 'store-full-junit.xml');
  const result = await runCli(['replay', file, '--endpoint', fullServer.url, '--token-file', tokenFile, '--dock-id', 'dock-1', '--dock-key-dir', join(mistakesTmp.path, 'store-full-key'), '--junit', junit, '--quiet'], { timeoutMs: 90_000 });
  return { result, junit };
});

/**
 * replay --endpoint with the token of another dock id: the server refuses the dock itself at the first create
 * (403 forbidden, token_other_dock). The scenario's own timeout is long: the run must end at the refusal, with
 * the code as the actual result, not wait the timeout out.
 */
let refusingServer: TestServer | undefined;
const refusedRun = once(async () => {
  refusingServer = await startTestServer();
  const fixture = resolve(scenariosDir, '..', 'cameras', 'fmp4-h264');
  const file = join(mistakesTmp.path, 'refused.json');
  writeFileSync(file, JSON.stringify({ ...fixtureBase, name: 'refused', timeout: 600, dock: { bays: ['bay-1'], wipeAfterIngest: false }, cameras: { alpha: { fixture } }, expect: [{ recording: 'alpha/*', outcome: 'ingested' }] }));
  const tokenFile = join(mistakesTmp.path, 'dock-2.token');
  writeFileSync(tokenFile, refusingServer.tokens['dock-2'] + '\n', { mode: 0o600 });
  const junit = join(mistakesTmp.path, 'refused-junit.xml');
  const result = await runCli(['replay', file, '--endpoint', refusingServer.url, '--token-file', tokenFile, '--dock-id', 'dock-1', '--dock-key-dir', join(mistakesTmp.path, 'refused-key'), '--junit', junit, '--quiet'], { timeoutMs: 170_000 });
  return { result, junit };
});

describe('the shipped replay scenarios', () => {
  const tmp = makeTempDir('bodycam-replay-test-');
  const scenarioNames = readdirSync(scenariosDir).filter((f) => f.endsWith('.json')).sort();
  const lanes = lanesOf(scenarioNames, LANES);
  const junits = lanes.map((_, i) => join(tmp.path, `junit-${i}.xml`));
  let before: string;
  let runs: CliResult[];
  const stdout = () => runs.map((r) => r.stdout).join('\n');
  const junitRoots = () => junits.map((f) => parseXml(readFileSync(f, 'utf8')));

  beforeAll(async () => {
    before = treeDigest(fixturesDir);
    for (const start of [wrongExpectationRun, invalidRun, noExpectationRun, noFixtureRun, storeFullRun, refusedRun]) void start();
    // 12 scenarios in 4 lanes, the mistakes' replays beside them: about as long as the longest lane (~40 s alone;
    // the five layout-* scenarios record their cameras first).
    runs = await Promise.all(lanes.map((files, i) => runCli(['replay', ...files.map((f) => join(scenariosDir, f)), '--junit', junits[i]!, '--quiet'], { timeoutMs: 420_000 })));
  }, 430_000);
  afterAll(() => tmp.cleanup());

  it('are split into lanes that hold every scenario once', () => {
    expect(lanes.flat().sort()).toEqual(scenarioNames);
    expect(lanes.length).toBe(Math.min(LANES, scenarioNames.length));
  });

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
    for (const [i, run] of runs.entries()) {
      if (run.code !== 0) console.log(run.stdout, run.stderr);
      expect(run.stdout).toMatch(new RegExp(`^replay: (\\d+)/\\1 expectations held in ${lanes[i]!.length} scenario\\(s\\);`, 'm'));
      expect(run.code).toBe(0);
    }
  });

  it('write JUnit XML that parses, one suite per scenario and one case per recording', () => {
    const roots = junitRoots();
    const suites = roots.flatMap((xml) => descendants(xml, 'testsuite'));
    expect(suites).toHaveLength(scenarioNames.length);
    expect(suites.map((s) => s.attributes.name).sort()).toEqual(scenarioNames.map((f) => f.replace(/\.json$/, '')).sort());
    const cases = roots.flatMap((xml) => descendants(xml, 'testcase'));
    const tableRows = stdout().split('\n').filter((l) => / ok$| FAIL$/.test(l));
    expect(cases.length).toBe(tableRows.length);
    for (const xml of roots) {
      expect(Number(xml.attributes.tests)).toBe(descendants(xml, 'testcase').length);
      expect(xml.attributes.failures).toBe('0');
      expect(descendants(xml, 'failure')).toHaveLength(0);
    }
  });

  it('really injected the network faults they name (proxy counters in the JUnit properties)', () => {
    const suites = junitRoots().flatMap((xml) => descendants(xml, 'testsuite'));
    const counters = (scenario: string): Record<string, number> => {
      const suite = suites.find((s) => s.attributes.name === scenario)!;
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

  it('leave the committed fixtures as they were (the mistakes\' replays, started alongside, ended too)', async () => {
    await Promise.all([wrongExpectationRun(), invalidRun(), noExpectationRun(), noFixtureRun()]);
    expect(treeDigest(fixturesDir)).toBe(before);
  });
});

describe('a scenario whose expectation is wrong', () => {
  afterAll(async () => {
    await fullServer?.close();
    await refusingServer?.close();
    mistakesTmp.cleanup();
  });

  it('replay --endpoint: a recording that never got anywhere says what the server answered (its problem code, count and server), in the table and the JUnit XML', async () => {
    const { result, junit } = await storeFullRun();
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/^store-full: the server answered 507 insufficient_storage ×\d+ \(http:\/\/127\.0\.0\.1:\d+: /m);
    const message = descendants(parseXml(readFileSync(junit, 'utf8')), 'failure')[0]!.attributes.message!;
    expect(message).toMatch(new RegExp(`not decided within ${STORE_FULL_TIMEOUT_S}s: .*; the server answered 507 insufficient_storage ×\\d+`));
  });

  it('replay --endpoint: a server that refuses the dock itself ends the scenario at that answer, with the code as the actual result', async () => {
    const { result, junit } = await refusedRun();
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/^refused +alpha\/\S+ +ingested +token_other_dock: the server refuses the dock +FAIL$/m);
    expect(result.stdout).toMatch(/^FAIL refused: alpha\/\S+: expected ingested, but the server refuses the dock \(no retry can fix it\): token_other_dock from /m);
    expect(result.stdout).not.toMatch(/after 600s/);
    const message = descendants(parseXml(readFileSync(junit, 'utf8')), 'failure')[0]!.attributes.message!;
    expect(message).toMatch(/the server answered 403 forbidden ×\d+/);
  });

  it('replay --endpoint: a wrong flag value is a usage error (exit 2, one line naming the flag), before anything runs', async () => {
    const scenario = join(scenariosDir, 'clean-two-cameras.json');
    const tokenFile = join(mistakesTmp.path, 'any.token');
    writeFileSync(tokenFile, 'a-token\n', { mode: 0o600 });
    const base = ['replay', scenario, '--token-file', tokenFile, '--dock-id', 'dock-1'];
    const cases: Array<[string[], RegExp]> = [
      [['--endpoint', 'ftp://x'], /--endpoint must be an http:\/\/ URL .*got "ftp:\/\/x"/],
      [['--endpoint', 'not a url'], /--endpoint must be an http:\/\/ URL/],
      [['--endpoint', 'http://127.0.0.1:9', '--server-key', '/etc/passwd'], /--server-key \/etc\/passwd is not an Ed25519 public key/],
      [['--endpoint', 'http://127.0.0.1:9', '--server-key', join(mistakesTmp.path, 'absent.pem')], /cannot read --server-key /],
      [['--endpoint', 'http://127.0.0.1:9', '--server-fingerprint', 'zz'], /--server-fingerprint must be the server's keyId: 64 hex digits/],
      [['--endpoint', 'http://127.0.0.1:9', '--dock-id', '../x'], /--dock-id "\.\.\/x" is not a dock id/],
    ];
    const results = await Promise.all(cases.map(([flags]) => runCli([...base, ...flags])));
    for (const [i, [flags, said]] of cases.entries()) {
      const result = results[i]!;
      expect({ flags, code: result.code }).toEqual({ flags, code: 2 });
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
      expect(result.stderr).toMatch(said);
      expect(result.stdout).toBe('');
    }
  });

  it('makes replay exit 1 and names the recording', async () => {
    const { result, junit, recording } = await wrongExpectationRun();
    expect(result.code).toBe(1);
    const camera = recording.split('/')[0];
    expect(result.stdout).toMatch(new RegExp(`^FAIL wrong-expectation: ${camera}/\\S+: expected quarantined`, 'm'));
    const xml = parseXml(readFileSync(junit, 'utf8'));
    expect(Number(xml.attributes.failures)).toBeGreaterThan(0);
    expect(descendants(xml, 'failure')[0]!.attributes.message).toContain(`${camera}/`);
  });

  it('an invalid scenario stops replay before anything runs, with the place of the mistake', async () => {
    const result = await invalidRun();
    expect(result.code).toBe(2);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toContain('dock.bays: needs at least 1 item(s)');
  });

  it('a recording without an expectation, or a fixture that is not there, makes the scenario invalid: exit 2, not a failed replay', async () => {
    const noExpectation = await noExpectationRun();
    expect(noExpectation.code).toBe(2);
    expect(noExpectation.stdout).toMatch(/has no expectation: every recording needs one/);
    const noFixture = await noFixtureRun();
    expect(noFixture.code).toBe(2);
    expect(noFixture.stderr).toMatch(/cameras\.alpha\.fixture: no fixture at .*no-such-camera/);
  });
});
