/**
 * Running one job: the steps of the state table (src/dock/states.ts) one after
 * another for a recording until it leaves the job's phase, and what an error
 * means (src/dock/errors.ts): paused (the camera left: wait for a re-dock),
 * transient (back to the journal with backoff), permanent (quarantine with the
 * reason), or a file that grew again (detection starts over).
 */
import { setMaxListeners } from 'node:events';
import { lstat } from 'node:fs/promises';
import { UNKNOWN_BAY } from './metrics.js';
import type { AgentState } from './agentState.js';
import { dispositionOf, FileGrowingError, isDockLevelProblem, NotThisFileError, PausedError, reasonCodeOf, reasonOf } from './errors.js';
import { setAsideFrom } from './identity.js';
import type { RecordingRow } from './journal.js';
import type { Logger } from '../log.js';
import { stepHash, stepPlan, stepProbe, stepUpload, stepWipe, wipeAllowed, type Location, type StepContext } from './pipeline.js';
import { dockRefusalRetryPolicy, jobRetryPolicy, retryDelayMs } from './retry.js';
import { STATE_TABLE, type Phase, type StepName } from './states.js';

/** The job's file is at its path (as the last scan saw it), whatever made the job pause. */
function stillThere(absPath: string): Promise<boolean> {
  return lstat(absPath).then((stats) => stats.isFile(), () => false);
}

type Step = (ctx: StepContext, row: RecordingRow, location: Location, signal: AbortSignal) => Promise<RecordingRow>;

/** The function of each step the state table names. */
/** How long a job waits when the journal could not record its failure (the state dir full). */
const JOURNAL_FULL_RETRY_MS = 30_000;

const STEPS: Readonly<Record<StepName, Step>> = { probe: stepProbe, plan: stepPlan, hash: stepHash, upload: stepUpload, wipe: stepWipe };

export interface JobRunnerEvents {
  /** A job ended (whatever the outcome): slots are free, the agent may be idle. */
  ended(): void;
  /** The row went back to the journal with a retry due at `at` (epoch ms): wake up for it. */
  retryScheduled(at: number): void;
  /** Look at this bay again soon (the file is not where the job thought, or it grew). */
  rescan(bay: string, delayMs: number): void;
}

export class JobRunner {
  private readonly stopController = new AbortController();

  constructor(private readonly state: AgentState, private readonly ctx: StepContext, private readonly events: JobRunnerEvents) {}

  /** Start the job of this row in this phase; it stops when its bay undocks or the agent stops. */
  start(key: string, phase: Phase): void {
    const { state } = this;
    const location = state.located.get(key)!;
    const controller = new AbortController();
    const bayController = state.bays.get(location.bay)?.controller;
    const abort = (reason: unknown): void => { if (!controller.signal.aborted) controller.abort(reason); };
    const onBay = (): void => abort(bayController!.signal.reason);
    const onStop = (): void => abort(new PausedError('dock is stopping'));
    // One listener per job running now (each removed when its job ends): a card of many small files
    // runs more than Node's warning limit of 10 at once, which is no leak; the warning would be a
    // plain line in the JSON log.
    setMaxListeners(0, this.stopController.signal, ...(bayController ? [bayController.signal] : []));
    bayController?.signal.addEventListener('abort', onBay, { once: true });
    this.stopController.signal.addEventListener('abort', onStop, { once: true });
    const done = this.run(key, phase, location, controller.signal).finally(() => {
      bayController?.signal.removeEventListener('abort', onBay);
      this.stopController.signal.removeEventListener('abort', onStop);
      state.running.delete(key);
      this.events.ended();
    });
    state.running.set(key, { phase, controller, done });
  }

  /** Abandon every running job (the journal makes that safe: each resumes from its last state). */
  abandonAll(): void {
    this.stopController.abort(new PausedError('dock is stopping'));
  }

  /** The step of the row's state, when that state is in this phase (completed's wipe only when asked and allowed). */
  private stepFor(row: RecordingRow, phase: Phase): Step | undefined {
    const rule = STATE_TABLE[row.state];
    if (!rule.step || rule.phase !== phase) return undefined;
    if (rule.onlyWhenWiping && !(this.state.config.wipeAfterIngest && wipeAllowed(row))) return undefined;
    return STEPS[rule.step];
  }

  private async run(key: string, phase: Phase, location: Location, signal: AbortSignal): Promise<void> {
    const { state } = this;
    const { journal } = state;
    let row = journal.get(key)!;
    const log = state.logger.child({ file: row.relPath, bay: location.bay, serial: row.serial, ...(row.recordingId ? { recordingId: row.recordingId } : {}) });
    try {
      for (;;) {
        if (signal.aborted) throw new PausedError('job abandoned', { cause: signal.reason });
        const before = row.state;
        const step = this.stepFor(row, phase);
        if (!step) break;
        row = await step(this.ctx, row, location, signal);
        if (row.state === before) break;
        log.debug('state', { state: row.state, recordingId: row.recordingId });
        if (row.state === 'quarantined') log.warn('quarantined', { reasonCode: row.reasonCode, reason: row.reason, recordingId: row.recordingId });
      }
      if (row.lastError || row.nextAttemptAt) journal.clearRetry(key);
      state.journalHeld.delete(key);
    } catch (error) {
      try {
        await this.settle(key, row, location, signal, log, error);
      } catch (journalError) {
        // The journal cannot record the failure (SQLITE_FULL: the state dir is full). The row keeps
        // its last durable state; the job waits in memory instead of crashing the agent, and runs
        // again once space may be back.
        const until = state.clock.now() + Math.min(JOURNAL_FULL_RETRY_MS, Math.max(1000, state.config.maxBackoff * 1000));
        state.journalHeld.set(key, { until, times: (state.journalHeld.get(key)?.times ?? 0) + 1 });
        this.events.retryScheduled(until);
        log.error('the journal could not record this job\'s failure (is the state dir full?): it waits and is tried again', { err: journalError, failure: reasonOf(error) });
      }
    }
  }

  /** What a job's failure leaves: forgotten (grew), set aside, paused, quarantined or a retry, in the journal. */
  private async settle(key: string, row: RecordingRow, location: Location, signal: AbortSignal, log: Logger, error: unknown): Promise<void> {
    const { state } = this;
    const { journal } = state;
    if (error instanceof FileGrowingError) {
      log.info('file grew again: detection starts over', { why: error.message });
      journal.forget(key);
      if (state.located.get(key)?.absPath === location.absPath) state.located.delete(key);
      state.bays.get(location.bay)?.keys.delete(key);
      this.events.rescan(location.bay, 50);
      return;
    }
    if (error instanceof NotThisFileError) {
      log.info('other bytes at the file\'s path: the scan compares them', { why: error.message });
      setAsideFrom(state, key, location.absPath, error.message);
      this.events.rescan(location.bay, 50);
      return;
    }
    let disposition = dispositionOf(error);
    // --once: a pause whose file is still where the job read it was no undock (a failing card's EIO
    // reads as "gone"). Its rescan would find it and start it again for ever, now that --once waits
    // for that rescan: it counts as an attempt instead, and the run ends and reports it (exit 1).
    if (disposition === 'paused' && state.config.once && !state.stopping && !signal.aborted && await stillThere(location.absPath)) disposition = 'transient';
    if (disposition === 'paused') {
      log.info('paused', { state: row.state, why: reasonOf(error) });
      // Not where we thought: forget the location until a scan finds the file again (no busy loop).
      if (!state.stopping && state.located.get(key)?.absPath === location.absPath) {
        state.located.delete(key);
        this.events.rescan(location.bay, 200);
      }
      return;
    }
    const current = journal.get(key)!;
    if (disposition === 'permanent') {
      const reasonCode = reasonCodeOf(error);
      journal.transition(key, 'quarantined', { reason: reasonOf(error), reasonCode });
      log.warn('quarantined', { reasonCode, reason: reasonOf(error), recordingId: current.recordingId, err: error });
      return;
    }
    const retryAfter = (error as { retryAfterMs?: number }).retryAfterMs;
    // --once keeps the short backoff for a refusal of the dock itself too, so that its run ends.
    const policy = isDockLevelProblem(error) && !state.config.once ? dockRefusalRetryPolicy(state.config.maxBackoff) : jobRetryPolicy(state.config.maxBackoff);
    const delay = retryDelayMs(policy, current.attempts + 1, retryAfter);
    const retried = journal.scheduleRetry(key, delay, reasonOf(error));
    this.events.retryScheduled(retried.nextAttemptAt);
    state.metrics.jobRetried(state.located.get(key)?.bay ?? current.bay ?? UNKNOWN_BAY);
    log.warn('transient failure: job back in the journal', { state: current.state, attempt: current.attempts + 1, delayMs: delay, err: error });
  }
}
