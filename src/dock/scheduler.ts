/**
 * Which job runs next, within the limits (docs/dock.md, "Fairness" and
 * "Throughput"): a few prepare jobs (probe/plan/hash: CPU and disk), given
 * round robin over the bays, and many upload jobs sharing the segment slots
 * and one bandwidth bucket; critical recordings first, then oldest first. It
 * also knows when the agent is idle (what --once and whenIdle wait for) and
 * raises the stale alarm.
 */
import { UNKNOWN_BAY } from './metrics.js';
import { availableParallelism } from 'node:os';
import type { AgentState } from './agentState.js';
import type { RecordingRow, WorkableRow } from './journal.js';
import { wipeAllowed } from './pipeline.js';
import { ACTIVE_STATES, STATE_TABLE, statesOfPhase, statesWithStep, type JobState, type Phase } from './states.js';

/** Probe/plan/hash jobs at once: hashing is CPU and disk bound (and each large one also runs ffmpeg). */
const PREPARE_SLOTS = 2;
const LARGE_FILE_BYTES = 64 * 1024 * 1024;
/** Large files hashed at once: each takes about two cores (hash thread + ffmpeg fingerprint). */
const LARGE_PREPARE_SLOTS = Math.max(1, Math.floor(availableParallelism() / 2));
const UPLOAD_JOBS = 16;
/** How long the scheduler reuses its list of rows waiting for a prepare slot, at least. */
const PREPARE_CACHE_MS = 1000;
/**
 * ... and at least this many times what reading it cost: a card of 100,000 queued files costs
 * ≈0.5 s to list and sort, and re-reading it every second would be half the dock's CPU.
 */
const PREPARE_CACHE_COST_FACTOR = 20;

const PREPARE_STATES = statesOfPhase('prepare', false);

const priority = (r: WorkableRow): [number, number] => [r.critical ? 0 : 1, typeof r.recordedAt === 'number' ? r.recordedAt : r.mtimeMs];
const byPriority = (a: WorkableRow, b: WorkableRow): number => { const pa = priority(a); const pb = priority(b); return pa[0] - pb[0] || pa[1] - pb[1]; };

export class Scheduler {
  private pumpScheduled = false;
  private retryTimer?: NodeJS.Timeout;
  /** Earliest retry time a job announced (retryScheduled) since the retry timer last fired. */
  private announcedRetryAt = Infinity;
  private readonly timers = new Set<NodeJS.Timeout>();
  private idleWaiters: Array<() => void> = [];
  private readonly staleReported = new Set<string>();
  /**
   * Rows waiting for a prepare slot, per bay in priority order, with a cursor each: read from the
   * journal when older than keepMs (PREPARE_CACHE_MS, or PREPARE_CACHE_COST_FACTOR times what the
   * read cost), after a retry timer or a reload; rows a scan finds are put in (rowFound). Never on
   * every job's end: thousands of junk rows cost one sort now and then, not one per job.
   */
  private prepareCache?: { at: number; keepMs: number; queues: Map<string, { rows: WorkableRow[]; next: number }> };
  /** Bay served last by a prepare slot: the next free slot goes to the next bay (round robin). */
  private lastPrepareBay = '';

  /** `scansOfSlowBays`: how many of `state.scanning` are scans of bays that do not answer (not waited for). */
  constructor(private readonly state: AgentState, private readonly startJob: (key: string, phase: Phase) => void, private readonly scansOfSlowBays: () => number = () => 0) {}

  /** Rows were retried or changed in bulk: the prepare queues are read afresh on the next round. */
  rowsChanged(): void {
    this.prepareCache = undefined;
  }

  /**
   * A scan found a row (new, or moved from another bay). It joins its bay's cached prepare queue
   * in priority order, behind the cursor, instead of the whole queue being read again: a scan
   * inserting a 100,000-file card 200 rows at a time used to re-read and re-sort every row found
   * so far after each batch (quadratic; `npm run bench junk-card`).
   */
  rowFound(row: WorkableRow, bay: string): void {
    const cache = this.prepareCache;
    if (!cache || !PREPARE_STATES.includes(row.state)) return;
    let queue = cache.queues.get(bay);
    if (!queue) cache.queues.set(bay, queue = { rows: [], next: 0 });
    // First position after the cursor whose row comes later: binary search over rows[next..].
    let lo = queue.next;
    let hi = queue.rows.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (byPriority(queue.rows[mid]!, row) <= 0) lo = mid + 1;
      else hi = mid;
    }
    queue.rows.splice(lo, 0, row);
  }

  /**
   * A job went back to the journal, due at `at`. Its row was already taken off its prepare queue
   * (the cached queue's cursor is past it), and with a short jittered delay on a loaded machine
   * `at` is often past before the next round looks for the next retry time, which only sees times
   * still ahead: the wake-up must come from here, or nothing ever starts the row again (and
   * --once never becomes idle: test/dock/scheduler.test.ts).
   */
  retryScheduled(at: number): void {
    this.announcedRetryAt = Math.min(this.announcedRetryAt, at);
  }

  /** The phase a row can run in now (completed: only when a wipe may follow), or none. */
  phaseOf(row: RecordingRow): Phase | undefined {
    const rule = STATE_TABLE[row.state];
    if (rule.onlyWhenWiping && !(this.state.config.wipeAfterIngest && wipeAllowed(row))) return undefined;
    return rule.phase;
  }

  /**
   * Still in backoff at `now`? A job's delay is at most maxBackoff (retry.ts), so a retry time
   * further ahead than that was written before the clock was set back: due now, not in a day.
   */
  private waiting(row: { nextAttemptAt: number }, now: number): boolean {
    return row.nextAttemptAt > now && row.nextAttemptAt - now <= this.maxDelayMs();
  }

  private maxDelayMs(): number {
    return Math.max(1, this.state.config.maxBackoff * 1000) + 1000;
  }

  private exhausted(row: { key: string; attempts: number }): boolean {
    const { config, attemptsBeforeRun, journalHeld } = this.state;
    // Attempts of earlier runs (a server down yesterday) must not use up today's budget.
    return config.once && (row.attempts - (attemptsBeforeRun.get(row.key) ?? 0) >= config.onceAttempts || (journalHeld.get(row.key)?.times ?? 0) >= config.onceAttempts);
  }

  private prepareQueues(): Map<string, { rows: WorkableRow[]; next: number }> {
    const { journal, located, clock } = this.state;
    if (!this.prepareCache || clock.now() - this.prepareCache.at > this.prepareCache.keepMs) {
      const cost = performance.now();
      const queues = new Map<string, { rows: WorkableRow[]; next: number }>();
      for (const row of journal.listWorkableLight(PREPARE_STATES)) {
        const at = located.get(row.key);
        if (!at) continue;
        let queue = queues.get(at.bay);
        if (!queue) queues.set(at.bay, queue = { rows: [], next: 0 });
        queue.rows.push(row);
      }
      for (const queue of queues.values()) queue.rows.sort(byPriority);
      this.prepareCache = { at: clock.now(), keepMs: Math.max(PREPARE_CACHE_MS, PREPARE_CACHE_COST_FACTOR * (performance.now() - cost)), queues };
    }
    return this.prepareCache.queues;
  }

  /** Phase of a scheduler row; a completed one is read in full only when a wipe may follow. */
  private phaseOfLight(row: WorkableRow): Phase | undefined {
    const rule = STATE_TABLE[row.state];
    if (rule.onlyWhenWiping) {
      if (!this.state.config.wipeAfterIngest) return undefined;
      const full = this.state.journal.get(row.key);
      return full ? this.phaseOf(full) : undefined;
    }
    return rule.phase;
  }

  /**
   * Rows that can start now, in priority order, with their phase. `phases` limits the states read:
   * while the prepare slots are full, a card's thousands of detected rows are not even listed.
   */
  private runnable(now = this.state.clock.now(), phases: ReadonlySet<Phase> = new Set<Phase>(['prepare', 'upload'])): Array<WorkableRow & { phase: Phase }> {
    const { journal, located, running, config } = this.state;
    const rows: WorkableRow[] = [];
    for (const phase of phases) {
      const states = statesOfPhase(phase, config.wipeAfterIngest);
      // Active rows are the work in hand; completed ones (a wipe may follow) are history, except
      // those of the cameras docked now: only these are read (one lookup each), never a year's worth.
      // Rows in backoff are passed over in SQL (mayStart below would drop them): an outage's thousands cost little.
      rows.push(...journal.listDueWorkableLight(states.filter((s) => STATE_TABLE[s].active), now, now + this.maxDelayMs()));
      const finished = states.filter((s) => !STATE_TABLE[s].active);
      if (finished.length) rows.push(...journal.listWorkableLightOf(finished, located.keys()));
    }
    const out: Array<WorkableRow & { phase: Phase }> = [];
    for (const row of rows) {
      if (!this.mayStart(row, now)) continue;
      const phase = this.phaseOfLight(row);
      if (phase) out.push({ ...row, phase });
    }
    return out.sort(byPriority);
  }

  private mayStart(row: WorkableRow, now: number): boolean {
    const { located, running } = this.state;
    return located.has(row.key) && !running.has(row.key) && !this.waiting(row, now) && !this.exhausted(row) && !((this.state.journalHeld.get(row.key)?.until ?? 0) > now);
  }

  /**
   * Whether runnable(now) would return anything, stopping at the first row that can start: asked
   * after every job's end, it must not list and sort a card's thousands of queued rows each time
   * (a card of 10,000 empty files took 111 CPU s in --once, quadratic, before).
   */
  private anyRunnable(now: number): boolean {
    const { journal, located, config } = this.state;
    const states = [...statesOfPhase('prepare', config.wipeAfterIngest), ...statesOfPhase('upload', config.wipeAfterIngest)];
    // Rows whose phase needs no second read are iterated (nothing else may touch the journal
    // meanwhile); the others (completed: a wipe may follow) are read only for the docked cameras.
    const simple = (s: JobState): boolean => STATE_TABLE[s].active && !STATE_TABLE[s].onlyWhenWiping;
    for (const row of journal.iterateWorkableLight(states.filter(simple))) {
      if (this.mayStart(row, now)) return true;
    }
    const rest = states.filter((s) => !simple(s));
    if (!rest.length) return false;
    return journal.listWorkableLightOf(rest, located.keys()).some((row) => this.mayStart(row, now) && this.phaseOfLight(row) !== undefined);
  }

  /** Start what may start now (on the next turn of the event loop; many asks make one round). */
  pump(): void {
    if (this.pumpScheduled || this.state.stopping) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      const { state } = this;
      if (state.stopping) return;
      // One `now` for the whole round: a row passed over as still waiting at `now` is found by the
      // retry timer's query for times after the same `now` (a later reading could miss it).
      const now = state.clock.now();
      const counts = { prepare: 0, upload: 0, largePrepare: 0 };
      for (const [key, job] of state.running) {
        counts[job.phase]++;
        if (job.phase === 'prepare' && (state.journal.get(key)?.size ?? 0) > LARGE_FILE_BYTES) counts.largePrepare++;
      }
      const runnable = counts.upload < UPLOAD_JOBS ? this.runnable(now, new Set<Phase>(['upload'])) : [];
      for (const row of runnable) {
        if (row.phase !== 'upload' || counts.upload >= UPLOAD_JOBS) continue;
        counts.upload++;
        this.startJob(row.key, 'upload');
      }
      // Prepare slots (probe/plan/hash) go round robin over the bays: one card's thousands of
      // files never keep another bay waiting for more than one job (docs/dock.md, "Fairness").
      if (counts.prepare < PREPARE_SLOTS) {
        const queues = this.prepareQueues();
        const order = [...queues.keys()].sort();
        let turn = order.findIndex((b) => b > this.lastPrepareBay);
        if (turn < 0) turn = 0;
        // Large rows passed over while the large-file slots are full go back behind the cursor after
        // the round, for the next one (a job's end): not left for the cache's refresh to find.
        const deferred: Array<{ row: WorkableRow; bay: string }> = [];
        while (counts.prepare < PREPARE_SLOTS && order.length) {
          const bay = order[turn % order.length]!;
          const queue = queues.get(bay)!;
          let started = false;
          while (queue.next < queue.rows.length && !started) {
            const row = queue.rows[queue.next++]!;
            if (!state.located.has(row.key) || state.located.get(row.key)!.bay !== bay || state.running.has(row.key) || this.exhausted(row)) continue;
            // From the cache: still what it was? (a finished job may have moved it on)
            const current = state.journal.get(row.key);
            if (!current || this.phaseOf(current) !== 'prepare' || this.waiting(current, now)) continue;
            // Large files hashed at once are bounded (cores/2): each one's upload overlaps the next one's hashing.
            if (row.size > LARGE_FILE_BYTES && counts.largePrepare >= LARGE_PREPARE_SLOTS) { deferred.push({ row, bay }); continue; }
            if (row.size > LARGE_FILE_BYTES) counts.largePrepare++;
            counts.prepare++;
            this.lastPrepareBay = bay;
            this.startJob(row.key, 'prepare');
            started = true;
          }
          // An emptied queue leaves the rotation (the next bay moves into its place); otherwise move on.
          if (queue.next >= queue.rows.length) order.splice(turn % order.length, 1);
          else turn++;
        }
        for (const { row, bay } of deferred) this.rowFound(row, bay);
      }
      this.armRetryTimer(now);
      this.checkIdle();
    });
  }

  private armRetryTimer(now: number): void {
    const { journal, config, clock } = this.state;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    // A wake-up for a row that turns out not to be runnable (undocked, out of attempts) finds nothing: harmless.
    const queried = journal.nextRetryAfter(statesWithStep(config.wipeAfterIngest), now) ?? Infinity;
    // An announced retry already due fires at once (10 ms), once: the round it starts reads the queues afresh.
    const next = Math.min(queried, this.announcedRetryAt);
    if (Number.isFinite(next)) {
      this.retryTimer = setTimeout(() => { this.announcedRetryAt = Infinity; this.prepareCache = undefined; this.pump(); },
        Math.max(10, Math.min(next - clock.now(), this.maxDelayMs()) + 5));
    }
  }

  /** Recordings queued longer than staleAfter: one warning (and one alarm count) each. */
  checkStale(): void {
    const { journal, config, clock, metrics, logger } = this.state;
    const now = clock.now();
    for (const key of journal.keysDetectedBefore(ACTIVE_STATES, now - config.staleAfter * 1000)) {
      if (this.staleReported.has(key)) continue;
      const row = journal.get(key);
      if (!row) continue;
      this.staleReported.add(row.key);
      metrics.staleAlarm(this.state.located.get(row.key)?.bay ?? row.bay ?? UNKNOWN_BAY);
      logger.warn('recording queued too long', { file: row.relPath, serial: row.serial, queuedSeconds: Math.round((now - row.detectedAt) / 1000) });
    }
  }

  private isIdle(): boolean {
    const { state } = this;
    if (!state.initialScanDone || state.scanning > this.scansOfSlowBays() || state.running.size > 0) return false;
    if (state.candidates.size > 0 && this.settlingForever() === false) return false;
    return !this.anyRunnable(state.clock.now() + (state.config.once ? Number.MAX_SAFE_INTEGER / 2 : 0));
  }

  /** In --once mode, a file still growing long after it was first seen is given up (reported, exit 1). */
  private settlingForever(): boolean {
    const { config, clock, candidates } = this.state;
    if (!config.once) return false;
    const limit = Math.max(30_000, config.settle * 1000 * 10);
    const now = clock.now();
    return [...candidates.values()].every((c) => now - c.firstSeen > limit);
  }

  checkIdle(): void {
    if (this.idleWaiters.length === 0 || !this.isIdle()) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }

  whenIdle(): Promise<void> {
    return new Promise((resolve) => {
      // Settling files and backoff timers make idleness a matter of time, not of events alone. The
      // poll also pumps: should a wake-up ever be lost, a due row waits a poll (and the prepare
      // queues' refresh, PREPARE_CACHE_MS or more on a big card), never for ever.
      const timer = setInterval(() => { this.pump(); this.checkIdle(); }, 250);
      this.timers.add(timer);
      this.idleWaiters.push(() => { clearInterval(timer); this.timers.delete(timer); resolve(); });
      this.checkIdle();
    });
  }

  close(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    for (const timer of this.timers) clearInterval(timer);
  }
}
