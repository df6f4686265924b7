/**
 * The dock agent's lifecycle: open (lock the state folder, open the journal,
 * load the dock key and the server key pin), start (watch and scan the bays,
 * start jobs), stop (let segments in flight finish for a moment, then abandon
 * them: the journal makes that safe). The work itself is in the parts it
 * wires together: watcher.ts (bays → journal rows), scheduler.ts (which job
 * next), jobRunner.ts (the steps of states.ts), status.ts (what is shown).
 */
import { lstat } from 'node:fs/promises';
import { UsageError } from '../errors.js';
import { createLogger, type Logger } from '../log.js';
import type { SkipCode, SkippedPath } from '../protocol/cameraStorage/index.js';
import { systemClock, type Clock } from '../util/clock.js';
import type { AgentState } from './agentState.js';
import { attentionCodeOf, DockAttention, requestKind, type DockProblem } from './attention.js';
import { IngestClient } from './client.js';
import type { DockConfig } from './config.js';
import { JobRunner } from './jobRunner.js';
import { Journal } from './journal.js';
import { loadOrCreateDockKey } from './keys.js';
import { acquireStateLock, type StateLock } from './lock.js';
import { DockMetrics } from './metrics.js';
import type { StepContext } from './pipeline.js';
import { bucketFor } from './rateLimit.js';
import { pruneFinished, type PruneResult } from './retention.js';
import { PrioritySlots } from './slots.js';
import { Scheduler } from './scheduler.js';
import { ServerKeyPin } from './serverKeyPin.js';
import { dockStatus, recordingSummary, type DockStatus, type RecordingSummary } from './status.js';
import { UNCONFIRMED_KEY_LINE } from './trust.js';
import { BayWatcher } from './watcher.js';

export type { BayState, BayStatus, DockStatus, RecordingSummary } from './status.js';

const STOP_GRACE_MS = 3000;
/** How often the retention rule runs (each run costs the rows it prunes, a page at a time). */
const PRUNE_INTERVAL_MS = 3600_000;

export interface AgentDeps { logger?: Logger; clock?: Clock }

export class DockAgentCore {
  readonly metrics: DockMetrics;
  readonly journal: Journal;
  private readonly state: AgentState;
  private readonly watcher: BayWatcher;
  private readonly scheduler: Scheduler;
  private readonly runner: JobRunner;
  private rescanTimer?: NodeJS.Timeout;
  private readonly client: IngestClient;
  private pin: ServerKeyPin;
  private pruneTimer?: NodeJS.Timeout;
  private pruning?: Promise<PruneResult | undefined>;

  /**
   * Everything that touches the disk happens here, before an agent exists: one agent per state
   * folder (src/dock/lock.ts) before anything in it is touched; whatever fails after the lock
   * was taken gives it back.
   */
  static async open(config: DockConfig, deps: AgentDeps = {}): Promise<DockAgentCore> {
    const logger = deps.logger ?? createLogger({ component: 'dock', dockId: config.dockId });
    const lock = acquireStateLock(config.stateDir);
    let journal: Journal | undefined;
    try {
      journal = Journal.open(config.stateDir, deps.clock ?? systemClock);
      const dockKey = loadOrCreateDockKey(config.stateDir);
      if (dockKey.created) logger.info('dock key pair created', { keyId: dockKey.keyId, stateDir: config.stateDir });
      const pin = await ServerKeyPin.load(config.serverKey, journal, logger);
      if (config.wipeAfterIngest && !pin.confirmed) throw new UsageError(UNCONFIRMED_KEY_LINE);
      return new DockAgentCore(config, logger, deps.clock ?? systemClock, lock, journal, dockKey, pin);
    } catch (error) {
      journal?.close();
      lock.release();
      throw error;
    }
  }

  private constructor(
    readonly config: DockConfig,
    private readonly logger: Logger,
    clock: Clock,
    private readonly lock: StateLock,
    journal: Journal,
    private readonly dockKey: ReturnType<typeof loadOrCreateDockKey>,
    pin: ServerKeyPin,
  ) {
    this.journal = journal;
    this.pin = pin;
    this.metrics = new DockMetrics();
    const attention = new DockAttention(clock);
    this.metrics.observe(() => this.status());
    this.state = {
      config, journal, logger, metrics: this.metrics, clock,
      bays: new Map(), located: new Map(), candidates: new Map(), running: new Map(), attemptsBeforeRun: new Map(), journalHeld: new Map(), vanishedThisRun: new Set(), attention,
      scanning: 0, initialScanDone: false, stopping: false,
    };
    const client = new IngestClient({
      endpoint: config.endpoint, token: config.token, dockId: config.dockId, requestTimeoutMs: config.requestTimeout * 1000,
      retries: config.requestRetries, bucket: bucketFor(config), logger,
      onRetry: (reason) => { this.metrics.requestRetried(reason); },
      onAnswer: (answer) => this.noteAnswer(answer),
    });
    this.client = client;
    const ctx: StepContext = {
      config, journal, client, slots: new PrioritySlots(config.concurrency), metrics: this.metrics, logger,
      dockKey, serverKey: (signal) => this.pin.get(client, signal), stopping: () => this.state.stopping,
      trustedServerKey: () => this.pin.trusted(), attention,
    };
    // Idle apart from the scans of bays that do not answer (past scanSlowAfter): `--once` reports those bays.
    this.scheduler = new Scheduler(this.state, (key, phase) => this.runner.start(key, phase), () => this.watcher.scansOfSlowBays());
    this.watcher = new BayWatcher(this.state, {
      scanned: () => { this.scheduler.pump(); this.scheduler.checkIdle(); },
      rowFound: (row, bay) => this.scheduler.rowFound(row, bay),
    }, Math.max(1, config.scanSlowAfter) * 1000);
    this.runner = new JobRunner(this.state, ctx, {
      ended: () => { this.scheduler.pump(); this.scheduler.checkIdle(); },
      retryScheduled: (at) => this.scheduler.retryScheduled(at),
      rescan: (bay, delayMs) => this.watcher.scheduleScan(bay, delayMs),
    });
  }

  get dockPublicKeyPem(): string { return this.dockKey.publicKeyPem; }

  /** Every final answer of the server: a dock-level refusal shows at once, a success clears what it disproves. */
  private noteAnswer(answer: { endpoint: string; method: string; path: string; status: number; problemCode?: string; detail?: string }): void {
    const { attention } = this.state;
    if (answer.status < 400) {
      attention.succeeded(requestKind(answer.method, answer.path), answer.endpoint);
      return;
    }
    attention.tally(answer.endpoint, answer.status, answer.problemCode ?? `http_${answer.status}`, answer.detail);
    const code = attentionCodeOf(answer.status, answer.problemCode ?? '', answer);
    if (!code) return;
    const first = attention.list().every((p) => p.code !== code || p.endpoint !== answer.endpoint);
    // The server's own words after its code, unless they only repeat it.
    const said = answer.detail && answer.detail !== answer.problemCode ? `: ${answer.detail}` : '';
    const problem = attention.raise(code, `${answer.problemCode ?? `http_${answer.status}`} (${answer.status})${said}`, answer.endpoint, answer.status, requestKind(answer.method, answer.path));
    // Once per problem, not once per request: the bay shows it for as long as it lasts.
    if (first) this.logger.error('attention: the server refuses this dock; retrying cannot fix it', { code, endpoint: answer.endpoint, status: answer.status, problemCode: answer.problemCode, reason: problem.reason });
  }

  /**
   * SIGHUP: take the token and the server key from their files again (the rest of the
   * configuration needs a restart), forget the dock-level problems and retry every job in
   * backoff now: the next answers say whether the fix worked.
   */
  async reload(next: Pick<DockConfig, 'token' | 'serverKey'>): Promise<void> {
    const pin = await ServerKeyPin.load(next.serverKey, this.journal, this.logger);
    if (this.config.wipeAfterIngest && !pin.confirmed) throw new UsageError(UNCONFIRMED_KEY_LINE);
    this.pin = pin;
    this.client.setToken(next.token);
    this.state.attention.reload();
    const due = this.journal.retryNow();
    this.logger.info('reloaded: token and server key read again, dock-level problems cleared', { jobsDueNow: due });
    this.scheduler.rowsChanged();
    this.scheduler.pump();
  }

  async start(): Promise<void> {
    const { config } = this;
    this.logger.info('dock agent starting', { bays: config.bays, endpoint: config.endpoint, once: config.once, wipeAfterIngest: config.wipeAfterIngest });
    const bayRoot = await lstat(config.bays).catch(() => undefined);
    if (!bayRoot?.isDirectory()) throw new UsageError(`bays folder ${config.bays} does not exist or is not a folder: create it (mkdir -p ${config.bays}) or pass the right --bays`);
    if (!config.once) {
      this.watcher.watch();
      this.rescanTimer = setInterval(() => { this.watcher.rescanIfDue(); this.scheduler.checkStale(); }, Math.max(200, config.rescanInterval * 1000));
      this.rescanTimer.unref?.();
    }
    await this.watcher.scanAll();
    this.state.initialScanDone = true;
    this.scheduler.pump();
    this.scheduler.checkIdle();
    // After the first scan, then hourly; never while a bay is being scanned (pruneOnce).
    void this.prune();
    if (!config.once) {
      this.pruneTimer = setInterval(() => { void this.prune(); }, PRUNE_INTERVAL_MS);
      this.pruneTimer.unref?.();
    }
  }

  /** The retention rule for finished rows, once (src/dock/retention.ts); a failure is logged, the rows stay. */
  prune(): Promise<PruneResult | undefined> {
    if (!this.pruning) this.pruning = this.pruneOnce().finally(() => { this.pruning = undefined; });
    return this.pruning;
  }

  private async pruneOnce(): Promise<PruneResult | undefined> {
    const { state, config } = this;
    if (state.stopping || !(config.retainFinished > 0)) return undefined;
    // A completed row of a camera docked now is in use, never pruned; but a bay whose scan has not
    // reached its files yet (a slow card reader: start-up goes on without it after 5 minutes) has
    // not put them in `located`. So not while any bay's scan is waiting for a slot or running (a
    // scan that never ends holds pruning off: rows are kept, never lost). Scans still on a timer
    // (a settling file's) do not count: they would keep a busy dock from ever pruning.
    // (The wait keeps the process alive: stop() awaits this, and an unref'd timer let `--once`
    // exit with Node's "unsettled top-level await", code 13.)
    while (this.watcher.bayScansInFlight() > 0) {
      await new Promise<void>((resolve) => setTimeout(resolve, 200));
      if (state.stopping) return undefined;
    }
    try {
      const inUse = (key: string): boolean => state.located.has(key) || state.running.has(key) || [...state.bays.values()].some((b) => b.present && b.sessionKeys.has(key));
      const result = await pruneFinished({
        journal: this.journal, stateDir: config.stateDir, retainSeconds: config.retainFinished, now: state.clock.now(), inUse,
        yieldTurn: () => new Promise<void>((resolve) => setImmediate(resolve)), stopping: () => state.stopping,
      });
      if (result.pruned) this.logger.info('finished rows past their retention pruned, receipts archived', { pruned: result.pruned, keptInUse: result.kept, archives: result.archives.length });
      return result;
    } catch (error) {
      this.logger.warn('pruning finished rows failed: they stay in the journal', { err: error });
      return undefined;
    }
  }

  /** Scan every bay now (--once scans again after a wipe kept a changed file). */
  scanAll(): Promise<void> {
    return this.watcher.scanAll();
  }

  whenIdle(): Promise<void> {
    return this.scheduler.whenIdle();
  }

  /** What each docked bay's last scan left alone (for --once's report and exit code). */
  skippedByBay(): Array<{ bay: string; skipped: SkippedPath[]; skippedCount: number; skippedByCode: Partial<Record<SkipCode, number>> }> {
    return [...this.state.bays.values()].filter((b) => b.present).map((b) => ({ bay: b.name, skipped: b.skipped, skippedCount: b.skippedCount, skippedByCode: b.skippedByCode }));
  }

  /** Docked bays whose scan has run past scanSlowAfter and not ended (--once reports them: their files were not all looked at). */
  slowBays(): Array<{ bay: string; runningMs: number }> {
    const now = this.state.clock.now();
    return [...this.state.bays.values()].filter((b) => b.slowScanSince !== undefined).map((b) => ({ bay: b.name, runningMs: now - b.slowScanSince! }));
  }

  settlingFiles(): string[] {
    return [...this.state.candidates.keys()];
  }

  /** With --once: the rows this run closed file_vanished (their file left a docked card), for its report. */
  vanishedThisRun(): Array<{ file: string; state: string; reason?: string; reasonCode?: string; recordingId?: string; bay?: string }> {
    return this.state.journal.briefsOf(this.state.vanishedThisRun).map((r) => ({
      file: r.relPath, state: r.state, ...(r.reason ? { reason: r.reason } : {}), ...(r.reasonCode ? { reasonCode: r.reasonCode } : {}),
      ...(r.recordingId ? { recordingId: r.recordingId } : {}), ...(r.bay ? { bay: r.bay } : {}),
    }));
  }

  status(): DockStatus {
    return dockStatus(this.state);
  }

  /**
   * The recordings of the cameras docked now, as status shows them, in detection order, read a
   * page at a time: --once's report, which lists every file of the card (status() holds every
   * active and docked row at once, and a card of 100,000 set-aside files is 100,000 rows).
   */
  *dockedRecordings(): Generator<RecordingSummary> {
    for (const row of this.journal.iterateManyInOrder(this.state.located.keys())) yield recordingSummary(this.state, row);
  }

  /** The journal's newest rowid: grows with every row a scan inserts (a prune of old rows meanwhile does not move it back). */
  lastRowId(): number {
    return this.journal.lastRowId();
  }

  attention(): DockProblem[] {
    return this.state.attention.list();
  }

  metricsText(): Promise<string> {
    return this.metrics.render();
  }

  async stop(): Promise<void> {
    const { state } = this;
    if (state.stopping) return;
    state.stopping = true;
    if (this.rescanTimer) clearInterval(this.rescanTimer);
    if (this.pruneTimer) clearInterval(this.pruneTimer);
    this.scheduler.close();
    await this.watcher.close();
    const jobs = [...state.running.values()].map((j) => j.done);
    // Let the segments in flight finish for a moment, then abandon them: the journal makes it safe.
    const grace = new Promise<void>((resolve) => { const t = setTimeout(resolve, STOP_GRACE_MS); t.unref?.(); });
    await Promise.race([Promise.allSettled(jobs), grace]);
    this.runner.abandonAll();
    await Promise.allSettled(jobs);
    await this.pruning;
    this.journal.close();
    this.lock.release();
    this.logger.info('dock agent stopped');
  }
}
