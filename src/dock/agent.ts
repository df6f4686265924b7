/**
 * The dock agent: watches the bays, turns what it finds into journal rows, and
 * schedules each recording through the pipeline (pipeline.ts) within the
 * limits: a few prepare jobs (probe/plan/hash: CPU and disk), many upload
 * jobs sharing `concurrency` segment slots and one bandwidth bucket.
 */
import { createHash } from 'node:crypto';
import { lstatSync, readFileSync } from 'node:fs';
import { lstat, readdir, readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import { errnoCode, UsageError } from '../errors.js';
import { createLogger, type Logger } from '../log.js';
import { isEd25519PublicKeyPem, keyIdOf } from '../protocol/signing.js';
import type { IntegrityStatus } from '../protocol/types.js';
import { IngestClient } from './client.js';
import type { DockConfig } from './config.js';
import { dispositionOf, FileGrowingError, PausedError, QUARANTINE_CODES, reasonCodeOf, reasonOf, TransportError } from './errors.js';
import { isFlagged } from './integrity.js';
import { ACTIVE_STATES, Journal, sameSnapshot, type JobState, type RecordingRow, type StatSnapshot, type WorkableRow } from './journal.js';
import { hashFileOffThread } from './hasher.js';
import { acquireStateLock, type StateLock } from './lock.js';
import { loadOrCreateDockKey } from './keys.js';
import { CONFIRMED_SERVER_KEY_META, UNCONFIRMED_KEY_LINE } from './trust.js';
import { DockMetrics } from './metrics.js';
import { priorityOf, stepHash, stepPlan, stepProbe, stepUpload, stepWipe, unreadableOf, wipeAllowed, type Location, type StepContext } from './pipeline.js';
import { TokenBucket } from './rateLimit.js';
import { jobRetryPolicy, retryDelayMs } from './retry.js';
import { PrioritySlots } from './slots.js';
import { isIncidentPath, type CardLayout } from '../protocol/cardLayouts.js';
import { ATTENTION_SKIPS, clockOffsetMsOf, INCOMPLETE_SKIPS, listCameraFiles, readDevice, SKIP_CODES, type CandidateFile, type SkipCode, type SkippedPath } from '../protocol/cameraStorage/index.js';
import { readSidecar } from './storage.js';

export type BayState = 'empty' | 'docked' | 'offloading' | 'done' | 'attention';

export interface BayStatus {
  bay: string;
  serial: string | null;
  state: BayState;
  /** 0..100 while offloading (bytes acknowledged by the server over bytes found). */
  progress: number | null;
  reason: string | null;
  /** Code of the first quarantine this bay shows (only when it shows one; each recording's is in queue.recordings). */
  reasonCode?: string;
  /** Paths on the camera the dock left alone, with why (at most SKIPPED_SHOWN; skippedCount has them all). */
  skipped?: SkippedPath[];
  skippedCount?: number;
  /** Known makers' card layouts recognised on the camera, most files first (docs/dock.md, "Card layouts"). */
  layouts?: CardLayout[];
}

export interface RecordingSummary {
  key: string;
  recordingId?: string;
  file: string;
  serial: string;
  bay?: string;
  state: JobState;
  reason?: string;
  /** Stable code of a quarantine (docs/dock.md). */
  reasonCode?: string;
  /** Why a receipted recording was kept on the camera by the wipe (docs/dock.md), when it was. */
  wipeKept?: string;
  integrity?: IntegrityStatus;
  truncated?: boolean;
  /** ffprobe's words when the file was uploaded as opaque bytes (flagged, never wiped). */
  unreadable?: string;
  critical: boolean;
  size: number;
  attempts: number;
  lastError?: string;
}

export interface DockStatus {
  dockId: string;
  bays: BayStatus[];
  queue: {
    depth: number;
    preparing: number;
    uploading: number;
    waiting: number;
    backoff: number;
    paused: number;
    settling: number;
    completed: number;
    wiped: number;
    quarantined: number;
    flagged: number;
    oldestQueuedSeconds: number;
    bytesSent: number;
    recordings: RecordingSummary[];
  };
}

interface BayInfo {
  name: string;
  root: string;
  present: boolean;
  serial: string | null;
  controller: AbortController;
  keys: Set<string>;
  /** Every recording seen since this camera docked (wiped ones included): what the bay's progress counts. */
  sessionKeys: Set<string>;
  reportedSymlinks: Set<string>;
  /** What the last scan left alone, with why (docs/dock.md, "Skipped files"). */
  skipped: SkippedPath[];
  skippedCount: number;
  skippedByCode: Partial<Record<SkipCode, number>>;
  /** Card layouts the last scan recognised. */
  layouts: CardLayout[];
  problem?: string;
}

/** Skipped paths shown per bay in status (the count is always complete). */
const SKIPPED_SHOWN = 50;

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value).filter((k) => (value as Record<string, unknown>)[k] !== undefined).sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** What a scan decided for one file on the card. */
type Match = { kind: 'row'; row: RecordingRow } | { kind: 'new' } | { kind: 'verify'; rows: RecordingRow[] };

interface Candidate { size: number; mtimeMs: number; stableSince: number; firstSeen: number }

/** Probe/plan/hash jobs at once: hashing is CPU and disk bound (and each large one also runs ffmpeg). */
const PREPARE_SLOTS = 2;
const LARGE_FILE_BYTES = 64 * 1024 * 1024;
/** Large files hashed at once: each takes about two cores (hash thread + ffmpeg fingerprint). */
const LARGE_PREPARE_SLOTS = Math.max(1, Math.floor(availableParallelism() / 2));
const UPLOAD_JOBS = 16;
/** How long the scheduler reuses its list of rows waiting for a prepare slot. */
const PREPARE_CACHE_MS = 1000;
const STOP_GRACE_MS = 3000;

export class DockAgentCore {
  readonly metrics = new DockMetrics();
  readonly journal: Journal;
  private readonly logger: Logger;
  private readonly client: IngestClient;
  private readonly slots: PrioritySlots;
  private readonly dockKey: ReturnType<typeof loadOrCreateDockKey>;
  private readonly bays = new Map<string, BayInfo>();
  private readonly located = new Map<string, Location>();
  private readonly candidates = new Map<string, Candidate>();
  private readonly running = new Map<string, { phase: 'prepare' | 'upload'; controller: AbortController; done: Promise<void> }>();
  private readonly staleReported = new Set<string>();
  /** Each row's journaled attempts when this run began: --once gives every run its own budget. */
  private readonly attemptsBeforeRun = new Map<string, number>();
  /** Oddities found directly in the bays folder (e.g. a bay that is a symlink), reported once. */
  private readonly reportedAtRoot = new Set<string>();
  private readonly stopController = new AbortController();
  private readonly scanQueue = new Map<string, NodeJS.Timeout>();
  private readonly bayScans = new Map<string, Promise<void>>();
  private readonly bayScansWaiting = new Map<string, Promise<void>>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private idleWaiters: Array<() => void> = [];
  private watcher?: FSWatcher;
  private rescanTimer?: NodeJS.Timeout;
  private retryTimer?: NodeJS.Timeout;
  private scanning = 0;
  private initialScanDone = false;
  private stopping = false;
  private serverKeyPem?: string;
  /** True only for a key pinned out of band: serverKey, or confirmed by trust-server. */
  private serverKeyConfirmed = false;
  private serverKeyFetch?: Promise<string>;
  private pumpScheduled = false;
  /**
   * Rows waiting for a prepare slot, per bay in priority order, with a cursor each: read from the
   * journal at most every PREPARE_CACHE_MS (or after a scan or a retry timer), not on every job's
   * end, so thousands of junk rows cost one sort a second, not one per job.
   */
  private prepareCache?: { at: number; queues: Map<string, { rows: WorkableRow[]; next: number }> };
  /** Bay served last by a prepare slot: the next free slot goes to the next bay (round robin). */
  private lastPrepareBay = '';
  private readonly ctx: StepContext;
  private readonly lock: StateLock;

  constructor(readonly config: DockConfig, logger?: Logger) {
    this.logger = logger ?? createLogger({ component: 'dock', dockId: config.dockId });
    // One agent per state folder, before anything in it is touched (src/dock/lock.ts).
    this.lock = acquireStateLock(config.stateDir);
    try {
      this.journal = Journal.open(config.stateDir);
    } catch (error) {
      this.lock.release();
      throw error;
    }
    for (const row of this.journal.list()) this.attemptsBeforeRun.set(row.key, row.attempts);
    this.dockKey = loadOrCreateDockKey(config.stateDir);
    if (this.dockKey.created) this.logger.info('dock key pair created', { keyId: this.dockKey.keyId, stateDir: config.stateDir });
    this.slots = new PrioritySlots(config.concurrency);
    this.client = new IngestClient({
      endpoint: config.endpoint, token: config.token, requestTimeoutMs: config.requestTimeout * 1000,
      retries: config.requestRetries, bucket: new TokenBucket(config.maxRate), logger: this.logger,
      onRetry: () => { this.metrics.requestRetries++; },
      onBytesSent: (bytes) => { this.metrics.bytesSent += bytes; },
    });
    if (config.serverKey) {
      let pem: string;
      try { pem = readFileSync(config.serverKey, 'utf8'); } catch (cause) {
        this.releaseEarly();
        throw new UsageError(`cannot read server key ${config.serverKey}: ${(cause as Error).message}`, { cause });
      }
      if (!isEd25519PublicKeyPem(pem)) { this.releaseEarly(); throw new UsageError(`server key ${config.serverKey} is not an Ed25519 public key (PEM)`); }
      this.serverKeyPem = pem;
      this.serverKeyConfirmed = true;
    } else {
      // A pin confirmed by `bodycam dock trust-server` beats the one learned on first contact.
      const confirmed = this.journal.getMeta(CONFIRMED_SERVER_KEY_META);
      this.serverKeyPem = confirmed ?? this.journal.getMeta('serverPublicKeyPem');
      this.serverKeyConfirmed = confirmed !== undefined && isEd25519PublicKeyPem(confirmed);
    }
    if (config.wipeAfterIngest && !this.serverKeyConfirmed) {
      this.journal.close();
      throw new UsageError(UNCONFIRMED_KEY_LINE);
    }
    this.ctx = {
      config, journal: this.journal, client: this.client, slots: this.slots, metrics: this.metrics, logger: this.logger,
      dockKey: this.dockKey, serverKey: (signal) => this.ensureServerKey(signal), stopping: () => this.stopping,
      trustedServerKey: () => (this.serverKeyConfirmed ? this.serverKeyPem : undefined),
    };
  }

  /** A constructor that fails after the lock was taken must give it back. */
  private releaseEarly(): void {
    this.journal.close();
    this.lock.release();
  }

  get dockPublicKeyPem(): string { return this.dockKey.publicKeyPem; }

  async start(): Promise<void> {
    this.logger.info('dock agent starting', { bays: this.config.bays, endpoint: this.config.endpoint, once: this.config.once, wipeAfterIngest: this.config.wipeAfterIngest });
    const bayRoot = await lstat(this.config.bays).catch(() => undefined);
    if (!bayRoot?.isDirectory()) throw new UsageError(`bays folder ${this.config.bays} does not exist or is not a folder: create it (mkdir -p ${this.config.bays}) or pass the right --bays`);
    if (!this.config.once) {
      // Watch the PARENT of the bays: chokidar loses events on a watched folder that is removed and recreated.
      this.watcher = watch(this.config.bays, { depth: 3, followSymlinks: false, ignoreInitial: true, ignorePermissionErrors: true });
      this.watcher.on('all', (_event, path) => this.onFsEvent(path));
      this.watcher.on('error', (error) => this.logger.warn('watcher error', { error }));
      this.rescanTimer = setInterval(() => { void this.scanAll(); this.checkStale(); }, Math.max(200, this.config.rescanInterval * 1000));
      this.rescanTimer.unref?.();
    }
    await this.scanAll();
    this.initialScanDone = true;
    this.pump();
    this.checkIdle();
  }

  private onFsEvent(path: string): void {
    const rel = path.slice(this.config.bays.length + 1);
    const bay = rel.split('/')[0];
    if (bay) this.scheduleScan(bay, 150);
    else this.scheduleScan('*', 150);
  }

  private scheduleScan(bay: string, delayMs: number): void {
    if (this.stopping || this.scanQueue.has(bay)) return;
    const timer = setTimeout(() => {
      this.scanQueue.delete(bay);
      void (bay === '*' ? this.scanAll() : this.scanBay(bay));
    }, delayMs);
    this.scanQueue.set(bay, timer);
  }

  private async ensureServerKey(signal: AbortSignal): Promise<string> {
    if (this.serverKeyPem) return this.serverKeyPem;
    // Many jobs may ask at once on first contact: one request serves them all.
    this.serverKeyFetch ??= this.fetchServerKey(signal).finally(() => { this.serverKeyFetch = undefined; });
    return this.serverKeyFetch;
  }

  private async fetchServerKey(signal: AbortSignal): Promise<string> {
    const keys = await this.client.getKeys(signal);
    if (!isEd25519PublicKeyPem(keys.publicKeyPem)) throw new TransportError('server key from GET /v1/keys is not an Ed25519 public key (PEM)');
    if (!this.serverKeyPem) {
      this.serverKeyPem = keys.publicKeyPem;
      this.journal.setMeta('serverPublicKeyPem', keys.publicKeyPem);
      this.logger.info('pinned the server receipt key from GET /v1/keys (trust on first use; pass --server-key to pin it yourself)', { keyId: keyIdOf(keys.publicKeyPem) });
    }
    return this.serverKeyPem;
  }

  async scanAll(): Promise<void> {
    if (this.stopping) return;
    this.scanning++;
    try {
      let names: string[] = [];
      try { names = await readdir(this.config.bays); } catch (error) { this.logger.warn('cannot read bays folder', { error }); }
      const present = new Set<string>();
      const scans: Array<Promise<void>> = [];
      for (const name of names.sort()) {
        if (name.startsWith('.')) continue;
        const stats = await lstat(join(this.config.bays, name)).catch(() => undefined);
        if (!stats) continue;
        if (stats.isSymbolicLink()) {
          // Not followed (it could lead anywhere), but never silent: the bay shows attention with the reason.
          this.reportOnce('*', name, 'bay is a symlink: not followed');
          const bay = this.bayInfo(name);
          if (bay.present && bay.keys.size > 0) this.undock(bay);
          bay.present = true;
          bay.serial = null;
          bay.skipped = [{ path: '.', code: 'symlink', reason: 'the bay folder is a symbolic link: not followed; mount the camera at the bay path itself' }];
          bay.skippedCount = 1;
          bay.skippedByCode = { symlink: 1 };
          present.add(name);
          continue;
        }
        if (!stats.isDirectory()) continue;
        present.add(name);
        // Bays are scanned side by side: a card with thousands of files must not hold up the next bay's scan.
        scans.push(this.scanBay(name));
      }
      await Promise.all(scans);
      for (const bay of this.bays.values()) if (bay.present && !present.has(bay.name)) this.undock(bay);
    } finally {
      this.scanning--;
    }
    this.pump();
    this.checkIdle();
  }

  private reportOnce(bay: string, path: string, message: string): void {
    const seen = this.bays.get(bay)?.reportedSymlinks ?? this.reportedAtRoot;
    if (seen.has(path)) return;
    seen.add(path);
    this.logger.warn(message, { bay, path });
  }

  private bayInfo(name: string): BayInfo {
    let bay = this.bays.get(name);
    if (!bay) {
      bay = { name, root: join(this.config.bays, name), present: false, serial: null, controller: new AbortController(), keys: new Set(), sessionKeys: new Set(), reportedSymlinks: new Set(), skipped: [], skippedCount: 0, skippedByCode: {}, layouts: [] };
      this.bays.set(name, bay);
    }
    return bay;
  }

  private undock(bay: BayInfo): void {
    if (!bay.present) return;
    bay.present = false;
    bay.controller.abort(new PausedError(`camera undocked from bay ${bay.name}`));
    for (const key of bay.keys) {
      if (this.located.get(key)?.bay === bay.name) this.located.delete(key);
    }
    bay.keys.clear();
    bay.sessionKeys.clear();
    bay.skipped = [];
    bay.skippedCount = 0;
    bay.skippedByCode = {};
    bay.layouts = [];
    for (const path of [...this.candidates.keys()]) if (path.startsWith(bay.root + '/')) this.candidates.delete(path);
    this.logger.info('camera undocked', { bay: bay.name, serial: bay.serial });
  }

  /** Scans of one bay never overlap (events, settle timers and the rescan can all ask at once). */
  async scanBay(name: string): Promise<void> {
    if (this.stopping) return;
    // A scan already waiting its turn will see everything this one would: join it (a card with
    // thousands of files scans longer than the rescan period; scans must not pile up behind it).
    const waiting = this.bayScansWaiting.get(name);
    if (waiting) return waiting;
    this.scanning++;
    const previous = this.bayScans.get(name) ?? Promise.resolve();
    const current = previous.then(() => {
      this.bayScansWaiting.delete(name);
      return this.stopping ? undefined : this.scanBayInner(name);
    }).catch((error: unknown) => {
      this.logger.warn('bay scan failed', { bay: name, error });
    });
    this.bayScansWaiting.set(name, current);
    this.bayScans.set(name, current);
    try {
      await current;
    } finally {
      this.scanning--;
      if (this.bayScans.get(name) === current) this.bayScans.delete(name);
    }
    this.pump();
    this.checkIdle();
  }

  private async scanBayInner(name: string): Promise<void> {
    const bay = this.bayInfo(name);
    const stats = await lstat(bay.root).catch(() => undefined);
    if (stats?.isSymbolicLink()) return; // a symlinked bay is shown by scanAll (attention), never read
    const entries = stats?.isDirectory() ? await readdir(bay.root).catch(() => [] as string[]) : [];
    if (entries.length === 0) { this.undock(bay); return; }
    const reading = await readDevice(bay.root);
    const device = reading.kind === 'ok' ? reading.device : undefined;
    const serial = device?.serial ?? 'unknown';
    if (!bay.present || bay.serial !== serial) {
      if (bay.present) this.undock(bay);
      bay.present = true;
      bay.serial = serial;
      bay.controller = new AbortController();
      bay.reportedSymlinks.clear();
      bay.problem = reading.kind === 'invalid' ? reading.reason : undefined;
      this.logger.info('camera docked', { bay: name, serial, model: device?.model, clockOffsetMs: clockOffsetMsOf(device), deviceJson: reading.kind });
    }
    const listing = await listCameraFiles(bay.root);
    for (const entry of listing.skipped) {
      if (!ATTENTION_SKIPS.has(entry.code)) continue;
      this.reportOnce(name, entry.path, entry.code === 'symlink' || entry.code === 'outside_camera'
        ? 'symlink on camera storage: not followed, not ingested' : `skipped on camera storage: ${entry.code}: ${entry.reason}`);
    }
    const skipped: SkippedPath[] = [...listing.skipped];
    let skippedCount = listing.skippedCount;
    const skippedByCode = { ...listing.skippedByCode };
    const now = Date.now();
    const seen = new Set<string>();
    const seenPaths = new Set<string>();
    let nextSettleCheck = Infinity;
    let sinceYield = 0;
    // Detection writes of one scan are committed together (Journal.beginBatch), never across an await.
    try {
    for (const file of listing.files) {
      if (++sinceYield >= 200) {
        sinceYield = 0;
        this.journal.commitBatch();
        await new Promise<void>((resolve) => setImmediate(resolve)); // other bays' jobs get the event loop
      }
      if (this.stopping || !bay.present || bay.serial !== serial) return;
      seenPaths.add(file.absPath);
      // A dashcam's Event folder holds incidents: offloaded first, as a critical recording (a sidecar overrides).
      let critical = isIncidentPath(file.relPath);
      let recordedAt = file.mtimeMs;
      if (file.sidecarPath) {
        let sidecar;
        try {
          this.journal.commitBatch();
          sidecar = await readSidecar(file.sidecarPath);
        } catch (error) {
          // One unreadable sidecar must not stop the rest of the bay. Gone since the listing (a wipe
          // or an undock mid-scan) is no news: the next scan sees the truth. Anything else is shown.
          const code = errnoCode((error as { cause?: unknown }).cause);
          if (code !== 'ENOENT' && code !== 'ENOTDIR') {
            this.reportOnce(name, file.relPath, `sidecar unreadable right now: ${reasonOf(error)}`);
            skippedCount++;
            skippedByCode.sidecar_unreadable = (skippedByCode.sidecar_unreadable ?? 0) + 1;
            skipped.push({ path: file.relPath, code: SKIP_CODES.sidecarUnreadable, reason: `sidecar unreadable right now: ${reasonOf(error)}` });
          }
          continue;
        }
        if (sidecar.kind === 'ok') {
          critical = sidecar.sidecar.critical === true;
          const started = Date.parse(String(sidecar.sidecar.startedAt ?? ''));
          if (!Number.isNaN(started)) recordedAt = started;
        }
      }
      const stat: StatSnapshot = { ...file.stat, sidecar: file.sidecarStat ?? null };
      let match = this.matchRow(serial, file, stat);
      if (match.kind !== 'row' && !file.sidecarPath) {
        // A file with no sidecar is done only when it stops changing: it settles before anything reads it.
        const known = this.candidates.get(file.absPath);
        if (!known || known.size !== file.size || known.mtimeMs !== file.mtimeMs) {
          this.candidates.set(file.absPath, { size: file.size, mtimeMs: file.mtimeMs, stableSince: now, firstSeen: known?.firstSeen ?? now });
          nextSettleCheck = Math.min(nextSettleCheck, now + this.config.settle * 1000);
          continue;
        }
        const readyAt = known.stableSince + this.config.settle * 1000;
        if (now < readyAt) { nextSettleCheck = Math.min(nextSettleCheck, readyAt); continue; }
      }
      this.candidates.delete(file.absPath);
      if (match.kind === 'verify') {
        this.journal.commitBatch();
        const verified = await this.verifyAgainst(match.rows, file, stat, name);
        if (verified === 'retry') {
          // Changed while it was re-hashed: it waits like a settling file (and --once does not claim it).
          this.candidates.set(file.absPath, { size: file.size, mtimeMs: file.mtimeMs, stableSince: Date.now(), firstSeen: this.candidates.get(file.absPath)?.firstSeen ?? now });
          nextSettleCheck = Math.min(nextSettleCheck, Date.now() + Math.max(1000, this.config.settle * 1000));
          continue;
        }
        match = verified;
        // The scan awaited: another bay may have claimed the row meanwhile.
        if (match.kind === 'row' && !this.claimable(match.row, file.absPath)) match = { kind: 'new' };
      }
      let row: RecordingRow;
      this.journal.beginBatch();
      if (match.kind === 'row') {
        // Before the hash, the row follows the file (the hash reads what is there then); after it, the
        // snapshot stays what the manifest vouches for, so a later change is seen as one.
        const refresh = ['detected', 'probed', 'planned'].includes(match.row.state) || sameSnapshot(match.row.stat, stat) ? stat : undefined;
        row = this.journal.relocate(match.row, name, refresh);
      } else {
        row = this.journal.insertDetected({ serial, fileName: file.fileName, relPath: file.relPath, bay: name, size: file.size, mtimeMs: file.mtimeMs, critical, stat, recordedAt });
        this.attemptsBeforeRun.set(row.key, 0);
      }
      const key = row.key;
      if (row.info.recordedAt === undefined && row.state === 'detected') this.journal.transition(key, 'detected', { info: { recordedAt } });
      const previous = this.located.get(key);
      if (previous && previous.bay !== name) this.bays.get(previous.bay)?.keys.delete(key);
      // A row newly found (or found elsewhere) may want a prepare slot: the scheduler reads afresh.
      if (!previous || previous.bay !== name) this.prepareCache = undefined;
      this.located.set(key, { bay: name, cameraRoot: bay.root, absPath: file.absPath, sidecarPath: file.sidecarPath, device, deviceProblem: bay.problem });
      bay.keys.add(key);
      bay.sessionKeys.add(key);
      seen.add(key);
    }
    } finally {
      this.journal.commitBatch();
    }
    bay.skipped = skipped;
    bay.skippedCount = skippedCount;
    bay.skippedByCode = skippedByCode;
    // What the card was stays known after its recordings are wiped (until it is undocked).
    bay.layouts = [...new Set([...bay.layouts, ...listing.layouts])];
    for (const path of [...this.candidates.keys()]) if (path.startsWith(bay.root + '/') && !seenPaths.has(path)) this.candidates.delete(path);
    for (const key of [...bay.keys]) {
      if (!seen.has(key)) {
        bay.keys.delete(key);
        if (this.located.get(key)?.bay === name) this.located.delete(key);
        this.running.get(key)?.controller.abort(new PausedError('file vanished from the camera'));
      }
    }
    if (Number.isFinite(nextSettleCheck)) this.scheduleScan(name, Math.max(50, nextSettleCheck - Date.now() + 20));
  }

  /**
   * May this row stand for the file at absPath? Not while it stands for another file that is
   * still there (the same card, or a copy of it, in two bays at once: two files, two rows).
   */
  private claimable(row: RecordingRow, absPath: string): boolean {
    const at = this.located.get(row.key);
    if (!at || at.absPath === absPath) return true;
    try {
      lstatSync(at.absPath);
      return !this.bays.get(at.bay)?.present;
    } catch {
      return true; // moved away from there (re-docked elsewhere)
    }
  }

  /**
   * Which journal row, if any, is the file on the card now (docs/dock.md, "Identity").
   * A wiped row never is (whatever is at that path now is not what was wiped). A completed or
   * quarantined row is only while the stat snapshot it vouches for is unchanged; a completed row
   * whose file changed is re-hashed first (verify). A row still at work follows its path.
   */
  private matchRow(serial: string, file: CandidateFile, stat: StatSnapshot): Match {
    const rows = this.journal.listByPath(serial, file.relPath).filter((r) => r.state !== 'wiped' && this.claimable(r, file.absPath));
    const same = rows.find((r) => sameSnapshot(r.stat, stat));
    if (same) return { kind: 'row', row: same };
    const newest = rows[0];
    if (newest && ACTIVE_STATES.includes(newest.state)) {
      // Hashed, and the file was rewritten since (size, mtime, inode or ctime; a remount's new
      // device number alone is not a rewrite): the manifest vouches for bytes the card no longer
      // has. That upload can never complete: it is closed as file_changed, and the file now on the
      // card is a new version.
      const was = newest.stat;
      if ((newest.state === 'hashed' || newest.state === 'uploading') && was
        && (was.size !== stat.size || was.mtimeMs !== stat.mtimeMs || was.ino !== stat.ino || was.ctimeMs !== stat.ctimeMs)) {
        this.running.get(newest.key)?.controller.abort(new PausedError('file rewritten on the camera after it was hashed'));
        this.journal.transition(newest.key, 'quarantined', { reason: 'the file was rewritten on the camera after it was hashed: the bytes now on the card are ingested as a new version', reasonCode: QUARANTINE_CODES.fileChanged });
        this.logger.warn('file rewritten after its hash: upload closed, new version follows', { file: file.relPath, recordingId: newest.recordingId });
        return { kind: 'new' };
      }
      return { kind: 'row', row: newest };
    }
    // A quarantined row of an older journal (no snapshot) still matches by size and mtime.
    const oldQuarantined = rows.find((r) => r.state === 'quarantined' && r.stat === null && r.size === file.size && r.mtimeMs === file.mtimeMs);
    if (oldQuarantined) return { kind: 'row', row: oldQuarantined };
    const completed = rows.filter((r) => r.state === 'completed' && r.manifestJson);
    return completed.length ? { kind: 'verify', rows: completed } : { kind: 'new' };
  }

  /**
   * The file at a completed row's path changed its stat snapshot (touched, copied back, rewritten,
   * sidecar re-signed): hash it and its sidecar. Same bytes as a row's manifest: that row, with the
   * new snapshot. Different: a new version, a new row. Changed while hashed: try again later.
   */
  private async verifyAgainst(rows: RecordingRow[], file: CandidateFile, stat: StatSnapshot, bay: string): Promise<Match | 'retry'> {
    let fileSha: string;
    let sidecarBytes: Buffer | undefined;
    try {
      const hashed = await hashFileOffThread(file.absPath, [{ offset: 0, length: file.size }], file.size);
      fileSha = hashed.sha256;
      if (file.sidecarPath) sidecarBytes = await readFile(file.sidecarPath);
      const after = lstatSync(file.absPath);
      const sidecarAfter = file.sidecarPath ? lstatSync(file.sidecarPath) : undefined;
      const now: StatSnapshot = {
        size: after.size, mtimeMs: after.mtimeMs, ino: after.ino, dev: after.dev, ctimeMs: after.ctimeMs,
        sidecar: sidecarAfter ? { size: sidecarAfter.size, mtimeMs: sidecarAfter.mtimeMs, ino: sidecarAfter.ino, dev: sidecarAfter.dev, ctimeMs: sidecarAfter.ctimeMs } : null,
      };
      if (!sameSnapshot(stat, now)) return 'retry';
    } catch (error) {
      this.logger.info('re-check of a changed file deferred', { bay, file: file.relPath, error });
      return 'retry';
    }
    const sidecarSha = sidecarBytes ? createHash('sha256').update(sidecarBytes).digest('hex') : null;
    for (const row of rows) {
      let manifest: { file?: { sha256?: string; size?: number }; device?: { sidecar?: unknown; sidecarSha256?: string } };
      try { manifest = JSON.parse(row.manifestJson!) as typeof manifest; } catch { continue; }
      if (manifest.file?.sha256 !== fileSha || manifest.file?.size !== file.size) continue;
      const device = manifest.device ?? {};
      let sidecarSame: boolean;
      if (typeof device.sidecarSha256 === 'string') sidecarSame = device.sidecarSha256 === sidecarSha;
      else if (device.sidecar === undefined) sidecarSame = sidecarBytes === undefined;
      else {
        // A manifest of an older build holds only the parsed sidecar: compare what it says.
        let parsed: unknown;
        try { parsed = sidecarBytes ? JSON.parse(sidecarBytes.toString('utf8')) : undefined; } catch { parsed = undefined; }
        sidecarSame = parsed !== undefined && canonicalJson(parsed) === canonicalJson(device.sidecar);
      }
      if (!sidecarSame) continue;
      this.logger.info('file changed its stat but not its bytes: same recording', { bay, file: file.relPath, recordingId: row.recordingId });
      return { kind: 'row', row: this.journal.relocate(row.key, bay, stat) };
    }
    this.logger.warn('file at a receipted path holds new bytes: ingested as a new version', { bay, file: file.relPath, sha256: fileSha, previous: rows[0]?.recordingId });
    return { kind: 'new' };
  }

  /** A row that can run now, with the phase it needs. */
  private phaseOf(row: RecordingRow): 'prepare' | 'upload' | undefined {
    if (row.state === 'detected' || row.state === 'probed' || row.state === 'planned') return 'prepare';
    if (row.state === 'hashed' || row.state === 'uploading') return 'upload';
    if (row.state === 'completed' && this.config.wipeAfterIngest && wipeAllowed(row)) return 'upload';
    return undefined;
  }

  private exhausted(row: { key: string; attempts: number }): boolean {
    // Attempts of earlier runs (a server down yesterday) must not use up today's budget.
    return this.config.once && row.attempts - (this.attemptsBeforeRun.get(row.key) ?? 0) >= this.config.onceAttempts;
  }

  private prepareQueues(): Map<string, { rows: WorkableRow[]; next: number }> {
    if (!this.prepareCache || Date.now() - this.prepareCache.at > PREPARE_CACHE_MS) {
      const queues = new Map<string, { rows: WorkableRow[]; next: number }>();
      const priority = (r: WorkableRow): [number, number] => [r.critical ? 0 : 1, typeof r.recordedAt === 'number' ? r.recordedAt : r.mtimeMs];
      for (const row of this.journal.listWorkableLight(['detected', 'probed', 'planned'])) {
        const at = this.located.get(row.key);
        if (!at) continue;
        let queue = queues.get(at.bay);
        if (!queue) queues.set(at.bay, queue = { rows: [], next: 0 });
        queue.rows.push(row);
      }
      for (const queue of queues.values()) {
        queue.rows.sort((a, b) => { const pa = priority(a); const pb = priority(b); return pa[0] - pb[0] || pa[1] - pb[1]; });
      }
      this.prepareCache = { at: Date.now(), queues };
    }
    return this.prepareCache.queues;
  }

  /** Phase of a scheduler row; a completed one is read in full only when a wipe may follow. */
  private phaseOfLight(row: WorkableRow): 'prepare' | 'upload' | undefined {
    if (row.state === 'completed') {
      if (!this.config.wipeAfterIngest) return undefined;
      const full = this.journal.get(row.key);
      return full ? this.phaseOf(full) : undefined;
    }
    return row.state === 'detected' || row.state === 'probed' || row.state === 'planned' ? 'prepare'
      : row.state === 'hashed' || row.state === 'uploading' ? 'upload' : undefined;
  }

  /**
   * Rows that can start now, in priority order, with their phase. `phases` limits the states read:
   * while the prepare slots are full, a card's thousands of detected rows are not even listed.
   */
  private runnable(now = Date.now(), phases: ReadonlySet<'prepare' | 'upload'> = new Set(['prepare', 'upload'])): Array<WorkableRow & { phase: 'prepare' | 'upload' }> {
    const rows: WorkableRow[] = [];
    if (phases.has('prepare')) rows.push(...this.journal.listWorkableLight(['detected', 'probed', 'planned']));
    if (phases.has('upload')) rows.push(...this.journal.listWorkableLight(['hashed', 'uploading', ...(this.config.wipeAfterIngest ? ['completed' as const] : [])]));
    const out: Array<WorkableRow & { phase: 'prepare' | 'upload' }> = [];
    for (const row of rows) {
      if (!this.located.has(row.key) || this.running.has(row.key) || row.nextAttemptAt > now || this.exhausted(row)) continue;
      const phase = this.phaseOfLight(row);
      if (phase) out.push({ ...row, phase });
    }
    const priority = (r: WorkableRow): [number, number] => [r.critical ? 0 : 1, typeof r.recordedAt === 'number' ? r.recordedAt : r.mtimeMs];
    return out.sort((a, b) => {
      const pa = priority(a);
      const pb = priority(b);
      return pa[0] - pb[0] || pa[1] - pb[1];
    });
  }

  pump(): void {
    if (this.pumpScheduled || this.stopping) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      if (this.stopping) return;
      const counts = { prepare: 0, upload: 0, largePrepare: 0 };
      for (const [key, job] of this.running) {
        counts[job.phase]++;
        if (job.phase === 'prepare' && (this.journal.get(key)?.size ?? 0) > LARGE_FILE_BYTES) counts.largePrepare++;
      }
      const runnable = counts.upload < UPLOAD_JOBS ? this.runnable(Date.now(), new Set(['upload'])) : [];
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
        while (counts.prepare < PREPARE_SLOTS && order.length) {
          const bay = order[turn % order.length]!;
          const queue = queues.get(bay)!;
          let started = false;
          while (queue.next < queue.rows.length && !started) {
            const row = queue.rows[queue.next++]!;
            if (!this.located.has(row.key) || this.located.get(row.key)!.bay !== bay || this.running.has(row.key) || this.exhausted(row)) continue;
            // From the cache: still what it was? (a finished job may have moved it on)
            const current = this.journal.get(row.key);
            if (!current || this.phaseOf(current) !== 'prepare' || current.nextAttemptAt > Date.now()) continue;
            // One large file hashed at a time: its upload then overlaps the next one's hashing.
            if (row.size > LARGE_FILE_BYTES && counts.largePrepare >= LARGE_PREPARE_SLOTS) continue;
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
      }
      this.armRetryTimer();
      this.checkIdle();
    });
  }

  private armRetryTimer(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    const now = Date.now();
    // A wake-up for a row that turns out not to be runnable (undocked, out of attempts) finds nothing: harmless.
    const next = this.journal.nextRetryAfter([...ACTIVE_STATES, ...(this.config.wipeAfterIngest ? ['completed' as const] : [])], now) ?? Infinity;
    if (Number.isFinite(next)) this.retryTimer = setTimeout(() => { this.prepareCache = undefined; this.pump(); }, Math.max(10, next - now + 5));
  }

  private startJob(key: string, phase: 'prepare' | 'upload'): void {
    const location = this.located.get(key)!;
    const controller = new AbortController();
    const bayController = this.bays.get(location.bay)?.controller;
    const abort = (reason: unknown): void => { if (!controller.signal.aborted) controller.abort(reason); };
    const onBay = (): void => abort(bayController!.signal.reason);
    const onStop = (): void => abort(new PausedError('dock is stopping'));
    bayController?.signal.addEventListener('abort', onBay, { once: true });
    this.stopController.signal.addEventListener('abort', onStop, { once: true });
    const done = this.runJob(key, phase, location, controller.signal).finally(() => {
      bayController?.signal.removeEventListener('abort', onBay);
      this.stopController.signal.removeEventListener('abort', onStop);
      this.running.delete(key);
      this.pump();
      this.checkIdle();
    });
    this.running.set(key, { phase, controller, done });
  }

  private async runJob(key: string, phase: 'prepare' | 'upload', location: Location, signal: AbortSignal): Promise<void> {
    let row = this.journal.get(key)!;
    const log = this.logger.child({ file: row.relPath, bay: location.bay, serial: row.serial, ...(row.recordingId ? { recordingId: row.recordingId } : {}) });
    try {
      for (;;) {
        if (signal.aborted) throw new PausedError('job abandoned', { cause: signal.reason });
        const before = row.state;
        if (phase === 'prepare') {
          if (row.state === 'detected') row = await stepProbe(this.ctx, row, location, signal);
          else if (row.state === 'probed') row = await stepPlan(this.ctx, row, location, signal);
          else if (row.state === 'planned') row = await stepHash(this.ctx, row, location, signal);
          else break;
        } else {
          if (row.state === 'hashed' || row.state === 'uploading') row = await stepUpload(this.ctx, row, location, signal);
          else if (row.state === 'completed' && this.config.wipeAfterIngest && wipeAllowed(row)) row = await stepWipe(this.ctx, row, location, signal);
          else break;
        }
        if (row.state === before) break;
        log.debug('state', { state: row.state, recordingId: row.recordingId });
        if (row.state === 'quarantined') log.warn('quarantined', { reasonCode: row.reasonCode, reason: row.reason, recordingId: row.recordingId });
      }
      if (row.lastError || row.nextAttemptAt) this.journal.clearRetry(key);
    } catch (error) {
      if (error instanceof FileGrowingError) {
        log.info('file grew again: detection starts over', { why: error.message });
        this.journal.forget(key);
        if (this.located.get(key)?.absPath === location.absPath) this.located.delete(key);
        this.bays.get(location.bay)?.keys.delete(key);
        this.scheduleScan(location.bay, 50);
        return;
      }
      const disposition = dispositionOf(error);
      if (disposition === 'paused') {
        log.info('paused', { state: row.state, why: reasonOf(error) });
        // Not where we thought: forget the location until a scan finds the file again (no busy loop).
        if (!this.stopping && this.located.get(key)?.absPath === location.absPath) {
          this.located.delete(key);
          this.scheduleScan(location.bay, 200);
        }
        return;
      }
      const current = this.journal.get(key)!;
      if (disposition === 'permanent') {
        const reasonCode = reasonCodeOf(error);
        this.journal.transition(key, 'quarantined', { reason: reasonOf(error), reasonCode });
        log.warn('quarantined', { reasonCode, reason: reasonOf(error), recordingId: current.recordingId, error });
        return;
      }
      const retryAfter = (error as { retryAfterMs?: number }).retryAfterMs;
      const delay = retryDelayMs(jobRetryPolicy(this.config.maxBackoff), current.attempts + 1, retryAfter);
      this.journal.scheduleRetry(key, delay, reasonOf(error));
      this.metrics.jobRetries++;
      log.warn('transient failure: job back in the journal', { state: current.state, attempt: current.attempts + 1, delayMs: delay, error });
    }
  }

  private checkStale(): void {
    const now = Date.now();
    for (const key of this.journal.keysDetectedBefore(ACTIVE_STATES, now - this.config.staleAfter * 1000)) {
      if (this.staleReported.has(key)) continue;
      const row = this.journal.get(key);
      if (!row) continue;
      this.staleReported.add(row.key);
      this.metrics.staleAlarms++;
      this.logger.warn('recording queued too long', { file: row.relPath, serial: row.serial, queuedSeconds: Math.round((now - row.detectedAt) / 1000) });
    }
  }

  private isIdle(): boolean {
    if (!this.initialScanDone || this.scanning > 0 || this.running.size > 0) return false;
    if (this.candidates.size > 0 && this.settlingForever() === false) return false;
    return this.runnable(Date.now() + (this.config.once ? Number.MAX_SAFE_INTEGER / 2 : 0)).length === 0;
  }

  /** In --once mode, a file still growing long after it was first seen is given up (reported, exit 1). */
  private settlingForever(): boolean {
    if (!this.config.once) return false;
    const limit = Math.max(30_000, this.config.settle * 1000 * 10);
    const now = Date.now();
    return [...this.candidates.values()].every((c) => now - c.firstSeen > limit);
  }

  private checkIdle(): void {
    if (this.idleWaiters.length === 0 || !this.isIdle()) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }

  whenIdle(): Promise<void> {
    return new Promise((resolve) => {
      // Settling files and backoff timers make idleness a matter of time, not of events alone.
      const timer = setInterval(() => this.checkIdle(), 250);
      this.timers.add(timer);
      this.idleWaiters.push(() => { clearInterval(timer); this.timers.delete(timer); resolve(); });
      this.checkIdle();
    });
  }

  /** What each docked bay's last scan left alone (for --once's report and exit code). */
  skippedByBay(): Array<{ bay: string; skipped: SkippedPath[]; skippedCount: number; skippedByCode: Partial<Record<SkipCode, number>> }> {
    return [...this.bays.values()].filter((b) => b.present).map((b) => ({ bay: b.name, skipped: b.skipped, skippedCount: b.skippedCount, skippedByCode: b.skippedByCode }));
  }

  settlingFiles(): string[] {
    return [...this.candidates.keys()];
  }

  /** Journal keys of the recordings on the cameras docked right now. */
  dockedKeys(): string[] {
    return [...this.located.keys()];
  }

  metricsText(): string {
    const s = this.status();
    return this.metrics.prometheus({
      queueDepth: s.queue.depth, oldestQueuedSeconds: s.queue.oldestQueuedSeconds, quarantined: s.queue.quarantined,
      flagged: s.queue.flagged, baysDocked: s.bays.filter((b) => b.state !== 'empty').length,
    });
  }

  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    if (this.rescanTimer) clearInterval(this.rescanTimer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    for (const timer of this.scanQueue.values()) clearTimeout(timer);
    for (const timer of this.timers) clearInterval(timer);
    await this.watcher?.close().catch(() => {});
    const jobs = [...this.running.values()].map((j) => j.done);
    // Let the segments in flight finish for a moment, then abandon them: the journal makes it safe.
    const grace = new Promise<void>((resolve) => { const t = setTimeout(resolve, STOP_GRACE_MS); t.unref?.(); });
    await Promise.race([Promise.allSettled(jobs), grace]);
    this.stopController.abort(new PausedError('dock is stopping'));
    await Promise.allSettled(jobs);
    this.journal.close();
    this.lock.release();
    this.logger.info('dock agent stopped');
  }

  status(): DockStatus {
    const rows = this.journal.list();
    const now = Date.now();
    const recordings: RecordingSummary[] = rows.map((row) => ({
      key: row.key,
      ...(row.recordingId ? { recordingId: row.recordingId } : {}),
      file: row.relPath,
      serial: row.serial,
      ...(this.located.get(row.key) ? { bay: this.located.get(row.key)!.bay } : row.bay ? { bay: row.bay } : {}),
      state: row.state,
      ...(row.reason ? { reason: row.reason } : {}),
      ...(row.state === 'quarantined' && row.reasonCode ? { reasonCode: row.reasonCode } : {}),
      ...(row.state === 'completed' && row.info.wipeSkipped ? { wipeKept: String(row.info.wipeKeptCode ?? 'kept') } : {}),
      ...(row.info.integrity ? { integrity: row.info.integrity as IntegrityStatus } : {}),
      ...(row.info.truncated ? { truncated: true } : {}),
      ...(unreadableOf(row) ? { unreadable: unreadableOf(row) } : {}),
      critical: row.critical,
      size: row.size,
      attempts: row.attempts,
      ...(row.lastError ? { lastError: row.lastError } : {}),
    }));
    const active = rows.filter((r) => ACTIVE_STATES.includes(r.state));
    const flaggedOf = (r: RecordingRow): boolean => isFlagged(r.info.integrity as IntegrityStatus | undefined, Boolean(r.info.truncated), unreadableOf(r));
    const oldest = active.reduce((min, r) => Math.min(min, r.detectedAt), Infinity);
    const running = [...this.running.entries()];
    const bays: BayStatus[] = [...this.bays.values()].sort((a, b) => a.name.localeCompare(b.name)).map((bay) => this.bayStatus(bay, rows, now));
    return {
      dockId: this.config.dockId,
      bays,
      queue: {
        depth: active.length,
        preparing: running.filter(([, j]) => j.phase === 'prepare').length,
        uploading: running.filter(([, j]) => j.phase === 'upload').length,
        waiting: active.filter((r) => !this.running.has(r.key) && this.located.has(r.key) && r.nextAttemptAt <= now).length,
        backoff: active.filter((r) => r.nextAttemptAt > now).length,
        paused: active.filter((r) => !this.located.has(r.key)).length,
        settling: this.candidates.size,
        completed: rows.filter((r) => r.state === 'completed').length,
        wiped: rows.filter((r) => r.state === 'wiped').length,
        quarantined: rows.filter((r) => r.state === 'quarantined').length,
        flagged: rows.filter((r) => (r.state === 'completed' || r.state === 'wiped' || r.state === 'hashed' || r.state === 'uploading') && flaggedOf(r)).length,
        oldestQueuedSeconds: Number.isFinite(oldest) ? Math.round((now - oldest) / 1000) : 0,
        bytesSent: this.metrics.bytesSent,
        recordings,
      },
    };
  }

  private bayStatus(bay: BayInfo, rows: RecordingRow[], now: number): BayStatus {
    if (!bay.present) return { bay: bay.name, serial: null, state: 'empty', progress: null, reason: null };
    const inner = this.bayStatusInner(bay, rows, now);
    const base = bay.layouts.length ? { ...inner, layouts: bay.layouts } : inner;
    return bay.skippedCount ? { ...base, skipped: bay.skipped.slice(0, SKIPPED_SHOWN), skippedCount: bay.skippedCount } : base;
  }

  /** Paths this bay's last scan left alone that may hide evidence (a person must look). */
  private skipAttention(bay: BayInfo): string[] {
    const out: string[] = [];
    for (const [code, count] of Object.entries(bay.skippedByCode) as Array<[SkipCode, number]>) {
      if (!ATTENTION_SKIPS.has(code) || !count) continue;
      out.push(code === 'symlink' ? `${count} symlink(s) skipped` : `${count} path(s) skipped: ${code}${INCOMPLETE_SKIPS.has(code) ? ' (listing incomplete)' : ''}`);
    }
    return out;
  }

  private bayStatusInner(bay: BayInfo, rows: RecordingRow[], now: number): BayStatus {
    const mine = rows.filter((r) => bay.sessionKeys.has(r.key) && (bay.keys.has(r.key) || r.state === 'wiped'));
    const attention: string[] = [];
    const stale: string[] = [];
    const quarantineCode = mine.find((r) => r.state === 'quarantined' && r.reasonCode)?.reasonCode;
    const withCode = <T extends BayStatus>(s: T): T => (quarantineCode && s.reason !== null ? { ...s, reasonCode: quarantineCode } : s);
    if (bay.problem) attention.push(bay.problem);
    attention.push(...this.skipAttention(bay));
    for (const r of mine) {
      if (r.state === 'quarantined') attention.push(`${r.fileName}: ${r.reasonCode ? `${r.reasonCode}: ` : ''}${r.reason ?? 'quarantined'}`);
      else if (unreadableOf(r)) attention.push(`${r.fileName}: unreadable: ${unreadableOf(r)!}`);
      else if (isFlagged(r.info.integrity as IntegrityStatus | undefined, Boolean(r.info.truncated))) attention.push(`${r.fileName}: ${r.info.truncated && r.info.integrity === 'unsigned' ? 'truncated' : String(r.info.integrity)}`);
      // Kept by the wipe's checks (changed, replaced, sidecar re-signed, no proof of possession): a person should know.
      else if (r.state === 'completed' && r.info.wipeSkipped && this.config.wipeAfterIngest) attention.push(`${r.fileName}: ${String(r.info.wipeKeptCode ?? 'kept')}: ${r.reason ?? 'not wiped'}`);
      if (ACTIVE_STATES.includes(r.state) && now - r.detectedAt > this.config.staleAfter * 1000) stale.push(`${r.fileName}: queued for more than ${this.config.staleAfter}s`);
    }
    // A recording waiting too long needs a person even while work goes on.
    if (stale.length) return withCode({ bay: bay.name, serial: bay.serial, state: 'attention', progress: null, reason: [...stale, ...attention].join('; ') });
    const settling = [...this.candidates.keys()].some((p) => p.startsWith(bay.root + '/'));
    const activeRows = mine.filter((r) => ACTIVE_STATES.includes(r.state));
    const total = mine.reduce((sum, r) => sum + r.size, 0);
    let doneBytes = 0;
    for (const r of mine) {
      if (r.state === 'completed' || r.state === 'wiped' || r.state === 'quarantined') doneBytes += r.size;
      else if (r.state === 'uploading') doneBytes += this.journal.segments(r.key).filter((s) => s.acked).reduce((s, x) => s + x.length, 0);
    }
    const progress = total > 0 ? Math.min(100, Math.floor((doneBytes / total) * 100)) : null;
    if (activeRows.length > 0 || settling) {
      return withCode({ bay: bay.name, serial: bay.serial, state: attention.length && activeRows.length === 0 ? 'attention' : 'offloading', progress, reason: attention.length ? attention.join('; ') : null });
    }
    if (attention.length) return withCode({ bay: bay.name, serial: bay.serial, state: 'attention', progress, reason: attention.join('; ') });
    if (mine.length === 0) return { bay: bay.name, serial: bay.serial, state: 'docked', progress: null, reason: null };
    return { bay: bay.name, serial: bay.serial, state: 'done', progress: 100, reason: null };
  }
}
