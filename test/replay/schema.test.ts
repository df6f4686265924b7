import { describe, it, expect } from '@jest/globals';
import fc from 'fast-check';
import { runs } from '../helpers/fcRuns.js';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadScenario, scenarioProblems } from '../../src/replay/schema.js';
import { formatTable, junitXml, type ScenarioResult } from '../../src/replay/report.js';
import { globToRegExp } from '../../src/replay/fixtures.js';
import { makeTempDir } from '../helpers/tmp.js';
import { parseXml, descendants } from '../helpers/xml.js';

const valid = {
  format: 'bodycam-scenario/1',
  name: 'sample',
  dock: { bays: ['bay-1', 'bay-2'], settings: { settle: 1 } },
  cameras: { alpha: { fixture: '../cameras/alpha' }, bravo: { fixture: '../cameras/bravo' } },
  steps: [
    { dock: 'alpha', bay: 'bay-1' },
    { after: { segmentsUploaded: 1, recording: 'alpha/*' }, network: { kind: 'down' }, for: 2 },
    { after: { uploading: 'alpha/x.mp4' }, undock: 'alpha' },
    { at: 5, dock: 'alpha', bay: 'bay-2' },
    { dock: 'bravo', bay: 'bay-1' },
  ],
  expect: [
    { recording: 'alpha/*', outcome: 'ingested', integrity: 'verified', camera: 'wiped' },
    { recording: 'bravo/*.mp4', outcome: 'quarantined', reasonCode: 'zero_byte', reason: 'zero-byte', camera: 'kept' },
  ],
};

const withChange = (change: (s: any) => void): unknown => {
  const copy = JSON.parse(JSON.stringify(valid));
  change(copy);
  return copy;
};

describe('scenario schema', () => {
  it('accepts a sound scenario', () => {
    expect(scenarioProblems(valid)).toEqual([]);
  });

  it.each([
    ['a typo in a key', (s: any) => { s.steps[1].after.segmentUploaded = 1; delete s.steps[1].after.segmentsUploaded; }, 'steps[1].after.segmentUploaded: unknown key'],
    ['a count below 1', (s: any) => { s.steps[1].after.segmentsUploaded = 0; }, 'steps[1].after.segmentsUploaded: must be >= 1'],
    ['a step with two actions', (s: any) => { s.steps[0].undock = 'alpha'; }, 'steps[0]: must have exactly one of dock, undock, network, restartDock (has dock, undock)'],
    ['an unknown camera', (s: any) => { s.steps[0].dock = 'charlie'; }, 'steps[0].dock: camera "charlie" is not in cameras'],
    ['an unknown bay', (s: any) => { s.steps[0].bay = 'bay-9'; }, 'steps[0].bay: bay "bay-9" is not in dock.bays'],
    ['docking into an occupied bay', (s: any) => { s.steps[3].bay = 'bay-1'; s.steps[4].bay = 'bay-1'; }, 'steps[4]: bay bay-1 is occupied by alpha'],
    ['undocking a camera that is not docked', (s: any) => { s.steps.splice(0, 1); s.steps[0].after = { seconds: 1 }; }, 'steps[1]: alpha is not docked at this point'],
    ['a bad fault mode', (s: any) => { s.steps[1].network = { kind: 'latency', ms: -5 }; }, 'steps[1].network: fault mode latency: ms must be a positive number'],
    ['an unknown outcome', (s: any) => { s.expect[0].outcome = 'arrived'; }, 'expect[0].outcome: must be one of "ingested", "quarantined"'],
    ['a reason code with an ingest', (s: any) => { s.expect[0].reasonCode = 'zero_byte'; }, 'expect[0].reasonCode: only goes with outcome "quarantined"'],
    ['a reason code that is not snake_case', (s: any) => { s.expect[1].reasonCode = 'Zero-Byte'; }, 'expect[1].reasonCode: "Zero-Byte" does not match'],
    ['a wiped quarantine', (s: any) => { s.expect[1].camera = 'wiped'; }, 'expect[1].camera: a quarantined recording is never wiped'],
    ['a reserved dock setting', (s: any) => { s.dock.settings.endpoint = 'http://x'; }, 'dock.settings.endpoint: set by replay itself'],
    ['a setting the dock does not have', (s: any) => { s.dock.settings.colour = 'red'; }, 'dock.settings.colour: not a dock configuration key'],
    ['a wrong format', (s: any) => { s.format = 'bodycam-scenario/2'; }, 'format: must be "bodycam-scenario/1"'],
    ['a camera with both a fixture and a recording', (s: any) => { s.cameras.alpha.record = { layout: 'gopro' }; }, 'cameras.alpha: must have exactly one of fixture, record (has fixture, record)'],
    ['an unknown layout', (s: any) => { s.cameras.alpha = { record: { layout: 'nokia' } }; }, 'cameras.alpha.record.layout: must be one of "bodycam", "gopro", "avchd", "sony-xavc", "dashcam", "dated"'],
    ['a container the layout does not write', (s: any) => { s.cameras.alpha = { record: { layout: 'avchd', container: 'mp4' } }; }, 'cameras.alpha.record: layout avchd does not write mp4: use m2ts'],
    ['a sidecar fault on a foreign layout', (s: any) => { s.cameras.alpha = { record: { layout: 'gopro', faults: ['bad-signature'] } }; }, 'cameras.alpha.record: fault bad-signature needs a camera that signs'],
    ['an unknown camera fault', (s: any) => { s.cameras.alpha = { record: { faults: ['lightning'] } }; }, 'cameras.alpha.record: unknown fault "lightning"'],
    ['a typo in a record option', (s: any) => { s.cameras.alpha = { record: { layuot: 'gopro' } }; }, 'cameras.alpha.record.layuot: unknown key'],
  ])('names the place of %s', (_what, change, message) => {
    expect(scenarioProblems(withChange(change)).join('\n')).toContain(message);
  });

  it('never throws on any JSON and answers each problem in one line that names its place', () => {
    const place = /^(\(top level\)|unknown key "([^"\\]|\\.)*"|[A-Za-z_$][\w$-]*(\[\d+\]|\.[A-Za-z_$][\w$-]*|\["([^"\\]|\\.)*"\])*)[: ]/;
    // Arbitrary documents, and the sound one with one member replaced by arbitrary JSON.
    const mutated = fc.tuple(fc.constantFrom('name', 'dock', 'cameras', 'steps', 'expect', 'timeout', 'format'), fc.jsonValue()).map(([key, value]) => ({ ...valid, [key]: value }));
    fc.assert(fc.property(fc.oneof(fc.jsonValue(), mutated), (doc) => {
      const problems = scenarioProblems(doc);
      for (const problem of problems) {
        expect(problem).not.toContain('\n');
        expect(problem).toMatch(place);
      }
      if (doc !== null && typeof doc === 'object' && !Array.isArray(doc) && JSON.stringify(doc) !== JSON.stringify(valid) && problems.length === 0) {
        // A changed document that still passes must still be a well-formed scenario.
        expect(typeof (doc as { name: unknown }).name).toBe('string');
      }
    }), { numRuns: runs(400) });
  });

  it('loads a file, resolves fixtures against its folder and reports every problem at once', () => {
    const root = makeTempDir();
    const dir = { path: join(root.path, 'scenarios'), cleanup: () => root.cleanup() };
    mkdirSync(dir.path);
    try {
      const good = join(dir.path, 'good.json');
      writeFileSync(good, JSON.stringify(valid));
      // A fixture that is not there: an invalid scenario (exit 2), before anything runs.
      let missing: (Error & { exitCode?: number }) | undefined;
      try { loadScenario(good); } catch (e) { missing = e as typeof missing; }
      expect(missing?.message).toMatch(/cameras\.alpha\.fixture: no fixture at .*cameras\/alpha/);
      expect(missing?.exitCode).toBe(2);
      for (const camera of Object.keys(valid.cameras)) mkdirSync(join(root.path, 'cameras', camera), { recursive: true });
      const loaded = loadScenario(good);
      expect(loaded.fixtures.alpha).toBe(join(dir.path, '..', 'cameras', 'alpha'));
      const recorded = join(dir.path, 'recorded.json');
      writeFileSync(recorded, JSON.stringify(withChange((s) => { s.cameras.bravo = { record: { layout: 'dashcam', trigger: 'impact' } }; })));
      expect(loadScenario(recorded)).toMatchObject({ fixtures: { alpha: join(dir.path, '..', 'cameras', 'alpha') }, recorded: { bravo: { layout: 'dashcam', trigger: 'impact' } } });
      const bad = join(dir.path, 'bad.json');
      writeFileSync(bad, JSON.stringify(withChange((s) => { s.steps[0].bay = 5; s.expect[0].outcome = 'x'; })));
      expect(() => loadScenario(bad)).toThrow(/steps\[0\]\.bay: .*; expect\[0\]\.outcome/);
      // One line, exit 2, with the problems for a program to read (replay's report and exit code).
      let error: (Error & { exitCode?: number; code?: string; details?: { problems?: string[] } }) | undefined;
      try { loadScenario(bad); } catch (e) { error = e as typeof error; }
      expect(error!.message).not.toContain('\n');
      expect(error!.exitCode).toBe(2);
      expect(error!.code).toBe('E_SCENARIO');
      expect(error!.details!.problems).toEqual(['steps[0].bay: must be a string, got integer', 'expect[0].outcome: must be one of "ingested", "quarantined", got "x"']);
      writeFileSync(bad, '{ not json');
      expect(() => loadScenario(bad)).toThrow(/is not valid JSON/);
    } finally {
      dir.cleanup();
    }
  });

  it('matches recording references with * wildcards within one folder level', () => {
    expect(globToRegExp('*.mp4').test('a_b.mp4')).toBe(true);
    expect(globToRegExp('*.mp4').test('a.mp4.json')).toBe(false);
    expect(globToRegExp('*').test('DCIM/x.mp4')).toBe(false);
  });
});

describe('replay report', () => {
  const results: ScenarioResult[] = [
    {
      scenario: 'one', file: '/x/one.json', seconds: 3.5, cases: [
        { scenario: 'one', recording: 'alpha/a&b.mp4', expected: 'ingested, verified', actual: 'ingested, verified', passed: true, seconds: 1 },
        { scenario: 'one', recording: 'alpha/<c>.mp4', expected: 'quarantined', actual: 'ingested, "unsigned"', passed: false, message: 'alpha/<c>.mp4: expected quarantined', seconds: 2 },
      ],
    },
    { scenario: 'two', file: '/x/two.json', seconds: 0.1, cases: [], error: 'fixture for camera "z" not found' },
  ];

  it('writes JUnit XML that parses, with one testcase per expectation and the failures counted', () => {
    const root = parseXml(junitXml(results));
    expect(root.name).toBe('testsuites');
    expect(root.attributes).toMatchObject({ tests: '3', failures: '1', errors: '1' });
    const cases = descendants(root, 'testcase');
    expect(cases.map((c) => c.attributes.name)).toEqual(['alpha/a&b.mp4', 'alpha/<c>.mp4', '(scenario)']);
    expect(descendants(root, 'failure')).toHaveLength(1);
    expect(descendants(root, 'failure')[0]!.attributes.message).toBe('alpha/<c>.mp4: expected quarantined');
    expect(descendants(root, 'error')[0]!.attributes.message).toContain('not found');
  });

  it('prints a table with one row per case', () => {
    const table = formatTable(results).split('\n');
    expect(table[0]).toMatch(/^scenario\s+recording\s+expected\s+actual\s+result$/);
    expect(table.filter((l) => / ok$| FAIL$| ERROR$/.test(l))).toHaveLength(3);
  });
});
