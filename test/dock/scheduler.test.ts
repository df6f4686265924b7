/**
 * The scheduler's wake-ups as a model: the real Scheduler and Journal, a held clock, and jobs that
 * fail the way a broken FFPROBE_PATH makes the probe fail (a transient error, back to the journal
 * with a short jittered delay). The race of session 4's CI: on a loaded machine the delay was over
 * before the next round armed the retry timer, which looks only for retry times still ahead, and
 * the row had already left the cached prepare queue: nothing started it again and `dock --once`
 * waited for ever. Here the clock (real time plus a lag the model adds) jumps past the retry time
 * at exactly that moment, every time.
 */
import { describe, it, expect, afterEach } from '@jest/globals';
import { join } from 'node:path';
import { Scheduler } from '../../src/dock/scheduler.js';
import { BayWatcher } from '../../src/dock/watcher.js';
import { Journal } from '../../src/dock/journal.js';
import { DockMetrics } from '../../src/dock/metrics.js';
import { DockAttention } from '../../src/dock/attention.js';
import type { AgentState } from '../../src/dock/agentState.js';
import type { Phase } from '../../src/dock/states.js';
import { quietLogger } from '../../src/log.js';
import { makeTempDir } from '../helpers/tmp.js';
import { dockConfig, waitFor } from '../helpers/dock.js';

interface Model { state: AgentState; scheduler: Scheduler; starts: string[]; close(): void }

/**
 * `files` rows on one docked bay; each job fails at once, and the clock moves `lagMs` on before the
 * round that follows its end (the event loop was busy elsewhere): with lagMs beyond the retry
 * delay, the retry is due before the scheduler looks for it.
 */
function model(options: { once: boolean; files: number; delayMs: number; lagMs: number }): Model {
  const tmp = makeTempDir('bodycam-scheduler-');
  const config = dockConfig(tmp.path, 'http://127.0.0.1:9', { once: options.once, maxBackoff: '0.2s' });
  let lag = 0;
  const now = { now: () => Date.now() + lag };
  const journal = Journal.open(join(tmp.path, 'state'), now);
  const state: AgentState = {
    config, journal, logger: quietLogger(), metrics: new DockMetrics(), clock: now,
    bays: new Map(), located: new Map(), candidates: new Map(), running: new Map(), attemptsBeforeRun: new Map(), journalHeld: new Map(), vanishedThisRun: new Set(),
    attention: new DockAttention(now), scanning: 0, initialScanDone: true, stopping: false,
  };
  const starts: string[] = [];
  let scheduler: Scheduler;
  const startJob = (key: string, phase: Phase): void => {
    starts.push(key);
    const done = Promise.resolve().then(() => {
      const row = journal.scheduleRetry(key, options.delayMs, 'FFPROBE_PATH=/bin/false is not a working ffprobe');
      lag += options.lagMs;
      state.running.delete(key);
      scheduler.retryScheduled(row.nextAttemptAt);
      scheduler.pump();
    });
    state.running.set(key, { phase, controller: new AbortController(), done });
  };
  scheduler = new Scheduler(state, startJob);
  for (let i = 0; i < options.files; i++) {
    const absPath = join(tmp.path, 'bays', 'bay-01', `VX100_${i}.MP4`);
    const row = journal.insertDetected({
      serial: 'unknown', fileName: `VX100_${i}.MP4`, relPath: `VX100_${i}.MP4`, bay: 'bay-01', size: 1000 + i, mtimeMs: 1, critical: false,
      stat: { size: 1000 + i, mtimeMs: 1, ino: i + 1, dev: 1, ctimeMs: 1, sidecar: null },
    });
    state.located.set(row.key, { bay: 'bay-01', cameraRoot: join(tmp.path, 'bays', 'bay-01'), absPath });
    state.attemptsBeforeRun.set(row.key, 0);
  }
  return { state, scheduler, starts, close: () => { state.stopping = true; scheduler.close(); journal.close(); tmp.cleanup(); } };
}

describe('scheduler wake-ups (model, clock jumps at the race)', () => {
  let current: Model | undefined;
  afterEach(() => { current?.close(); current = undefined; });

  it.each([
    { delayMs: 0, lagMs: 1 },
    { delayMs: 5, lagMs: 50 },
    { delayMs: 49, lagMs: 150 },
    { delayMs: 150, lagMs: 10 },
  ])('a prepare job retried after $delayMs ms is started again when the next round comes $lagMs ms after its end', async ({ delayMs, lagMs }) => {
    const m = current = model({ once: false, files: 1, delayMs, lagMs });
    m.scheduler.pump();
    // Nothing but the retry timer pumps here (no scan, no whenIdle poll): it must fire for the row.
    await waitFor('the row started a fourth time', () => m.starts.length >= 4, 20_000, 10);
    expect(new Set(m.starts).size).toBe(1);
  });

  it('--once: rows whose retries come due before the round ends use up their attempts and the agent is idle', async () => {
    const m = current = model({ once: true, files: 3, delayMs: 5, lagMs: 100 });
    m.scheduler.pump();
    let idle = false;
    void m.scheduler.whenIdle().then(() => { idle = true; });
    await waitFor('whenIdle', () => idle, 20_000, 10);
    // onceAttempts (3) each, no more: the run ends because every row is out of attempts, not early.
    const perRow = new Map<string, number>();
    for (const key of m.starts) perRow.set(key, (perRow.get(key) ?? 0) + 1);
    expect([...perRow.values()]).toEqual([3, 3, 3]);
    for (const key of m.state.located.keys()) expect(m.state.journal.get(key)!.attempts).toBe(3);
  });

  it('--once: a scan asked for (a paused job looks for its file again) keeps the agent busy until it ran', async () => {
    // No rows: without the asked-for scan the agent is idle at once. Session 5's CI: a job paused
    // (its row no longer located), its rescan 200 ms away, and --once exited in that gap.
    const m = current = model({ once: true, files: 0, delayMs: 0, lagMs: 0 });
    let scans = 0;
    const watcher = new BayWatcher(m.state, { scanned: () => { scans++; m.scheduler.checkIdle(); }, rowFound: (row, bay) => m.scheduler.rowFound(row, bay) });
    watcher.scheduleScan('bay-01', 100);
    expect(m.state.scanning).toBe(1);
    await m.scheduler.whenIdle();
    expect(scans).toBe(1);
    expect(m.state.scanning).toBe(0);
    // One asked for and then dropped by a stop counts no more.
    watcher.scheduleScan('bay-01', 60_000);
    await watcher.close();
    expect(m.state.scanning).toBe(0);
  });
});
