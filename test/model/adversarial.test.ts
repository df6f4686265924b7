/**
 * Model-based adversarial test of issue 9 ("the wipe never destroys what the
 * server does not provably hold"), against the real built CLI: `bodycam server`
 * (data dir on a small tmpfs), the replay fault proxy, `bodycam dock
 * --wipe-after-ingest --server-key …`, two simulated cameras made by the real
 * ffmpeg. fast-check draws a sequence of camera edits (overwrite in place with
 * the mtime restored, append, truncate, re-sign the sidecar with a new
 * category, rename, duplicate into the same or the other camera, delete),
 * docking moves between three bays, dock and server SIGKILLs, network faults
 * and disk-full; then the system settles and THE invariant is checked
 * (test/model/harness.ts):
 *   every byte and every sidecar that left a card is on the server under a
 *   receipt whose proof of possession the dock checked, and every file still
 *   on a card is on the server byte-exact or listed on its bay with a reason.
 *
 * Seeded and shrinking. `npm test`: MODEL_RUNS (default 3) short sequences plus
 * every case in regressions.json, and MODEL_PG_RUNS (default 1) with the server's state in
 * PostgreSQL (`--db`). `npm run soak`: MODEL_RUNS=40, longer
 * sequences. Reproduce a failure: FC_SEED=<seed> [FC_PATH=<path>] with the
 * same MODEL_RUNS/MODEL_MAX_OPS; keep it by adding {seed, path, note} to
 * test/model/regressions.json.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import fc from 'fast-check';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { startTestPostgres } from '../helpers/postgres.js';
import { makeTempDir } from '../helpers/tmp.js';
import { writeReport } from '../helpers/reliability.js';
import { BAYS, cachedCameras, canMountTmpfs, CAMERAS, describeOp, World, type Op } from '../helpers/model.js';

const envNumber = (name: string, fallback: number): number => {
  const value = Number(process.env[name]);
  return Number.isFinite(value) && value > 0 ? value : fallback;
};
const soak = process.env.RELIABILITY_SIZE === 'soak';
const RUNS = envNumber('MODEL_RUNS', soak ? 40 : 3);
const MAX_OPS = envNumber('MODEL_MAX_OPS', soak ? 16 : 7);
const SETTLE_MS = envNumber('MODEL_SETTLE_MS', soak ? 120_000 : 60_000);
/** Stop generating and shrinking after this long (the failure found so far is still reported). */
const TIME_LIMIT_MS = envNumber('MODEL_TIME_LIMIT_MS', soak ? 3 * 3600_000 : 150_000);
/** The shorter run on PostgreSQL state. */
const PG_RUNS = envNumber('MODEL_PG_RUNS', soak ? 10 : 1);
const PG_MAX_OPS = envNumber('MODEL_PG_MAX_OPS', soak ? 12 : 5);
const PG_TIME_LIMIT_MS = envNumber('MODEL_PG_TIME_LIMIT_MS', soak ? 3600_000 : 90_000);
const SEED = process.env.FC_SEED !== undefined ? Number(process.env.FC_SEED) : Math.floor(Math.random() * 0x7fffffff);
const PATH = process.env.FC_PATH;
/** Diagnosis only, never in npm test or soak: e.g. possession, to see the other failures while item 2 is not merged. */
const DIAGNOSE_WITHOUT = new Set((process.env.MODEL_DIAGNOSE_WITHOUT ?? '').split(',').filter(Boolean));

const file = fc.nat({ max: 7 });
const cam = fc.nat({ max: CAMERAS - 1 });
export const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ t: fc.constant('overwrite' as const), cam, file, at: fc.double({ min: 0, max: 0.99, noNaN: true }) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('append' as const), cam, file, bytes: fc.integer({ min: 1, max: 4096 }) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('truncate' as const), cam, file, keep: fc.double({ min: 0, max: 0.95, noNaN: true }) }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('resign' as const), cam, file, category: fc.constantFrom('use-of-force', 'pursuit', 'traffic-stop', 'arrest') }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('rename' as const), cam, file }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('duplicate' as const), cam, file, toCam: cam, withSidecar: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('delete' as const), cam, file }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('move' as const), cam, bay: fc.nat({ max: BAYS }) }) },
  { weight: 2, arbitrary: fc.constant({ t: 'killDock' as const }) },
  { weight: 1, arbitrary: fc.constant({ t: 'killServer' as const }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('net' as const), fault: fc.constantFrom('down' as const, 'reset' as const, 'http-503' as const), ms: fc.integer({ min: 200, max: 2000 }) }) },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('diskFull' as const), ms: fc.integer({ min: 300, max: 2500 }) }) },
  { weight: 4, arbitrary: fc.record({ t: fc.constant('wait' as const), ms: fc.integer({ min: 100, max: 2500 }) }) },
);
const sequenceArb = fc.array(opArb, { minLength: 1, maxLength: MAX_OPS });

interface Regression { seed: number; path?: string; numRuns?: number; maxOps?: number; ops?: Op[]; note?: string }
const regressions = JSON.parse(readFileSync(new URL('./regressions.json', import.meta.url), 'utf8')) as Regression[];

describe('model-based adversarial run: the wipe never destroys what the server does not provably hold', () => {
  const tmp = makeTempDir('bodycam-model-');
  let sources: string[];
  let tmpfs = false;
  let run = 0;
  const summary: string[] = [];

  beforeAll(async () => {
    sources = await cachedCameras();
    tmpfs = canMountTmpfs(tmp.path);
    // Without mount (not root, no CAP_SYS_ADMIN) disk-full is a no-op op, said once here.
    if (!tmpfs) process.stdout.write('model test: cannot mount a tmpfs here, disk-full operations are skipped\n');
  }, 300_000);

  afterAll(async () => {
    // A run cut off by interruptAfterTimeLimit goes on in the background: let it close its world first.
    await inFlight;
    tmp.cleanup();
    if (summary.length) process.stdout.write(`model test runs:\n${summary.join('\n')}\n`);
    writeReport('model', { seed: SEED, runs: RUNS, maxOps: MAX_OPS, regressions: regressions.length, tmpfs, sequencesRun: run, runs_: summary.map((l) => l.trim()) });
  });

  /** One run: fresh cards, server and dock; the ops; settle; the invariant. */
  let inFlight: Promise<unknown> = Promise.resolve();
  const runSequence = (ops: Op[], database?: () => Promise<string>): Promise<void> => {
    const running = runOne(ops, database);
    inFlight = running.catch(() => {});
    return running;
  };
  const runOne = async (ops: Op[], database?: () => Promise<string>): Promise<void> => {
    const root = join(tmp.path, `run-${++run}`);
    mkdirSync(root, { recursive: true });
    const world = new World({ root, cameraSources: sources, tmpfs, log: () => {}, ...(database ? { database: await database() } : {}) });
    const started = Date.now();
    try {
      await world.start();
      for (const [i, op] of ops.entries()) await world.apply(op, i);
      const settled = await world.settle(SETTLE_MS);
      const problems = await world.checkInvariant(settled.status, DIAGNOSE_WITHOUT);
      if (!settled.quiescent) problems.push(`NOT QUIESCENT: the dock was still busy ${SETTLE_MS} ms after the faults ended (last status: ${JSON.stringify(settled.status?.bays)})`);
      summary.push(`  run ${run}: ${ops.length} ops, ${world.left.length} files left the cards, ${problems.length} problems, ${Math.round((Date.now() - started) / 1000)} s`);
      if (problems.length) {
        throw new Error(`invariant broken after ${ops.map(describeOp).join(', ')}\n${problems.map((p) => `  - ${p}`).join('\n')}\n`
          + `trace:\n${world.trace.map((l) => `    ${l}`).join('\n')}\n  dock log: ${world.dock.logPath}`);
      }
    } finally {
      await world.close();
      if (!process.env.MODEL_KEEP) rmSync(root, { recursive: true, force: true });
    }
  };
  const property = fc.asyncProperty(sequenceArb, (ops) => runSequence(ops));

  const params = (seed: number, path: string | undefined, numRuns: number): fc.Parameters<[Op[]]> => ({
    seed, numRuns, interruptAfterTimeLimit: TIME_LIMIT_MS, markInterruptAsFailure: false,
    ...(path ? { path } : {}),
    reporter: (details) => {
      if (!details.failed) return;
      const keep = { seed: details.seed, path: details.counterexamplePath, numRuns, maxOps: MAX_OPS, ops: details.counterexample?.[0], note: 'found by the model test' };
      throw new Error(`model test failed: seed ${details.seed}, path ${details.counterexamplePath} after ${details.numRuns} runs and ${details.numShrinks} shrinks\n`
        + `reproduce: FC_SEED=${details.seed} FC_PATH=${details.counterexamplePath} MODEL_RUNS=${numRuns} MODEL_MAX_OPS=${MAX_OPS}\n`
        + `keep as a regression (test/model/regressions.json): ${JSON.stringify(keep)}\n`
        + `counterexample: ${details.counterexample?.[0]?.map(describeOp).join(', ')}\n\n${String((details.errorInstance as Error | undefined)?.message ?? details.errorInstance)}`);
    },
  });

  for (const [i, regression] of regressions.entries()) {
    it(`regression ${i + 1}: ${regression.note ?? `seed ${regression.seed}`}`, async () => {
      if (regression.ops) {
        // Replay the exact shrunk sequence: independent of the generator's evolution.
        await runSequence(regression.ops);
        return;
      }
      await fc.assert(property, params(regression.seed, regression.path, regression.numRuns ?? 1));
    }, 900_000);
  }

  // The same invariant with the server's state in PostgreSQL (--db): a shorter run (a fresh database per sequence).
  it(`PostgreSQL state: ${PG_RUNS} random sequence(s) of up to ${PG_MAX_OPS} operations (seed ${SEED}; FC_SEED to reproduce)`, async () => {
    const postgres = await startTestPostgres();
    try {
      const onPg = fc.asyncProperty(fc.array(opArb, { minLength: 1, maxLength: PG_MAX_OPS }), (ops) => runSequence(ops, () => postgres.createDatabase()));
      const before = run;
      await fc.assert(onPg, { ...params(SEED, undefined, PG_RUNS), interruptAfterTimeLimit: PG_TIME_LIMIT_MS });
      expect(run).toBeGreaterThan(before);
    } finally {
      await postgres.stop();
    }
  }, Math.max(600_000, PG_TIME_LIMIT_MS + 300_000));

  it(`${RUNS} random sequences of up to ${MAX_OPS} operations (seed ${SEED}${PATH ? `, path ${PATH}` : ''}; FC_SEED to reproduce)`, async () => {
    if (DIAGNOSE_WITHOUT.size) process.stdout.write(`model test: DIAGNOSIS RUN, the invariant is checked WITHOUT ${[...DIAGNOSE_WITHOUT].join(', ')}\n`);
    process.stdout.write(`model test: seed ${SEED}${PATH ? ` path ${PATH}` : ''}, ${RUNS} runs of up to ${MAX_OPS} ops\n`);
    await fc.assert(property, params(SEED, PATH, RUNS));
    expect(run).toBeGreaterThan(0);
  }, Math.max(900_000, TIME_LIMIT_MS + 600_000));
});
