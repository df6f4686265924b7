/**
 * Public API of the dock ingest agent. The CLI (`bodycam dock`), the replay
 * runner and the demo all go through these.
 */
import { reusedWhileCheap } from '../util/costBounded.js';
import type { Logger } from '../log.js';
import { createLogger } from '../log.js';
import { buildInfo } from '../util/version.js';
import { DockAgentCore } from './agent.js';
import type { DockStatus as CoreDockStatus, RecordingSummary } from './status.js';
import { bandwidthAt, parseTimetable, type BandwidthNow } from './bwTimetable.js';
import { parseEndpoints, type DockConfig } from './config.js';
import { isFlagged } from './integrity.js';
import { INCOMPLETE_SKIPS, MAY_HOLD_EVIDENCE, mayHoldEvidence, type SkipCode } from '../protocol/cameraStorage/index.js';
import { startStatusServer, type StatusServer } from './statusServer.js';
import { FINAL_STATES } from './states.js';
import type { DockProblem } from './attention.js';
import type { IntegrityStatus } from '../protocol/types.js';

export { loadDockConfig, DOCK_CONFIG_SCHEMA, configReferenceMarkdown, envNameOf, flagNameOf, readTokenFile, type DockConfig } from './config.js';
export { readServerKeyFile } from './serverKeyPin.js';
export type { BayState, BayStatus, RecordingSummary } from './status.js';
export { installDockKey } from './keys.js';
export { fetchServerKey, normalizeFingerprint, trustServer } from './trust.js';
export type { BandwidthNow } from './bwTimetable.js';
export type { DockProblem, ServerProblemTally } from './attention.js';

/** The agent's status, with the bandwidth limit in force now (maxRate, or the bwLimit timetable's entry). */
export type DockStatus = CoreDockStatus & { bandwidth?: BandwidthNow };

function withBandwidth(config: DockConfig, clock: () => Date = () => new Date()): (status: CoreDockStatus) => DockStatus {
  const table = config.bwLimit === undefined ? undefined : parseTimetable(config.bwLimit);
  return (status) => ({ ...status, bandwidth: bandwidthAt(table, config.maxRate, clock()) });
}

export interface DockAgent {
  /** Stop taking work, let segments in flight finish (or abandon them within a few seconds), close everything. */
  stop(): Promise<void>;
  /** SIGHUP: the token and server key again from their files, dock-level problems cleared, backoff ended. */
  reload(next: Pick<DockConfig, 'token' | 'serverKey'>): Promise<void>;
  status(): DockStatus;
  /** Resolves when nothing is ready or in progress (files still settling count as in progress). */
  whenIdle(): Promise<void>;
  metricsText(): Promise<string>;
  /** Port of the status/metrics server on 127.0.0.1 (undefined when not started). */
  statusPort?: number;
  dockPublicKeyPem: string;
}

export interface DockDeps { logger?: Logger }

/** The agent's logger, whose first line says which build this is and what it serves. */
function startingLogger(config: DockConfig, deps?: DockDeps): Logger {
  const logger = deps?.logger ?? createLogger({ component: 'dock', dockId: config.dockId }, config.logLevel);
  logger.info('bodycam-dock starting', { ...buildInfo(), dockId: config.dockId, bays: config.bays, endpoint: config.endpoint, stateDir: config.stateDir, once: config.once });
  return logger;
}

export async function startDockAgent(config: DockConfig, deps: DockDeps = {}): Promise<DockAgent> {
  const core = await DockAgentCore.open(config, { logger: startingLogger(config, deps) });
  const shown = withBandwidth(config);
  const status = (): DockStatus => shown(core.status());
  let server: StatusServer | undefined;
  try {
    // GET /status and the page answer from a status at most 20x its own cost old (a card of
    // 20,000 files makes one 0.3 s): a browser left open on the page must not keep a core busy.
    server = await startStatusServer({ status: reusedWhileCheap(status), metricsText: () => core.metricsText(), attention: () => core.attention() }, config.statusPort, config.stateDir);
    await core.start();
  } catch (error) {
    await server?.close();
    await core.stop();
    throw error;
  }
  return {
    stop: async () => { await core.stop(); await server?.close(); },
    reload: (next) => core.reload(next),
    status,
    whenIdle: () => core.whenIdle(),
    metricsText: () => core.metricsText(),
    statusPort: server?.port,
    dockPublicKeyPem: core.dockPublicKeyPem,
  };
}

export interface OnceRecording {
  recordingId?: string;
  file: string;
  bay?: string;
  state: string;
  reason?: string;
  /** Stable code of a quarantine (docs/dock.md). */
  reasonCode?: string;
  integrity?: IntegrityStatus;
  truncated?: boolean;
  /** ffprobe's words: uploaded as opaque bytes, flagged, never wiped. */
  unreadable?: string;
  /** Receipted but kept on the camera by the wipe, with the keep code (docs/dock.md). */
  wipeKept?: string;
  /** The last attempt's error, when the row is waiting for another (a receipted file: its wipe's). */
  lastError?: string;
}

/** Keep codes that mean the card now holds bytes the server may not have: a new version to ingest. */
const CHANGED_KEEPS: ReadonlySet<string> = new Set(['file_changed', 'file_replaced', 'sidecar_changed', 'sidecar_replaced', 'sidecar_not_held', 'attachment_changed', 'attachment_replaced']);

export interface OnceSkipped { bay: string; path: string; code: SkipCode; reason: string }

export interface OnceResult {
  exitCode: 0 | 1 | 3;
  recordings: OnceRecording[];
  /** Docked bays whose scan did not end within scanSlowAfter: not all their files were looked at (exit 1). */
  unscanned: Array<{ bay: string; reason: string }>;
  /** Paths the dock left alone that may hide evidence (symlinks, unreadable folders, bounds hit…). */
  skipped: OnceSkipped[];
  /** Every path left alone, benign ones (hidden, temporary, stray .json, the camera's .system) included. */
  skippedCount: number;
  /** The same, per code. */
  skippedByCode: Partial<Record<SkipCode, number>>;
  /**
   * Dock-level refusals (token rejected, dock key, protocol, endpoint path) that ended the run at the
   * first answer: every server refused this dock, so no retry of this run could succeed (exit 1).
   */
  refused: DockProblem[];
}

/** A receipted recording whose wipe ended in an error, not in a decision to keep it. */
export function wipeUnfinished(r: OnceRecording): boolean {
  return r.state === 'completed' && r.wipeKept === undefined && r.lastError !== undefined;
}

function onceEntry(r: RecordingSummary): OnceRecording {
  const entry: OnceRecording = { file: r.file, state: r.state };
  if (r.recordingId) entry.recordingId = r.recordingId;
  if (r.bay) entry.bay = r.bay;
  if (r.reason ?? r.lastError) entry.reason = r.reason ?? r.lastError;
  if (r.reasonCode) entry.reasonCode = r.reasonCode;
  if (r.integrity) entry.integrity = r.integrity;
  if (r.truncated) entry.truncated = true;
  if (r.unreadable) entry.unreadable = r.unreadable;
  if (r.wipeKept) entry.wipeKept = r.wipeKept;
  if (r.lastError) entry.lastError = r.lastError;
  return entry;
}

/** How often --once looks whether every server refused the dock (a look is a walk over a handful of problems). */
const REFUSAL_POLL_MS = 100;

/**
 * Resolves with the problems once every configured server has refused the dock for a reason no
 * retry fixes (src/dock/attention.ts; a problem of the dock's own pin, without an endpoint, is a
 * quarantine and ends the run by itself). One server refusing while another works is no reason to stop.
 */
function whenEveryServerRefuses(core: DockAgentCore, config: DockConfig): { refused: Promise<DockProblem[]>; cancel: () => void } {
  const endpoints = parseEndpoints(config.endpoint);
  let timer: NodeJS.Timeout | undefined;
  const refused = new Promise<DockProblem[]>((resolve) => {
    timer = setInterval(() => {
      const problems = core.attention().filter((p) => p.endpoint !== undefined);
      if (problems.length && endpoints.every((e) => problems.some((p) => p.endpoint === e))) {
        clearInterval(timer);
        resolve(problems);
      }
    }, REFUSAL_POLL_MS);
    timer.unref?.();
  });
  return { refused, cancel: () => clearInterval(timer) };
}

/**
 * Offload what is docked now and return: exit code 0 when every recording has a
 * verified receipt, 3 when some are quarantined or flagged (integrity, truncation),
 * 1 when some could not be offloaded for another reason (server unreachable, still growing).
 */
export async function runOnce(config: DockConfig, deps: DockDeps = {}): Promise<OnceResult> {
  const core = await DockAgentCore.open({ ...config, once: true }, { logger: startingLogger({ ...config, once: true }, deps) });
  const watch = whenEveryServerRefuses(core, config);
  let refused: DockProblem[] | undefined;
  // Idle, or refused by every server: the refusal is known at the first answer, and waiting out the
  // job retries (minutes of backoff) cannot change it. The rows stay in the journal for the next run.
  const idleOrRefused = async (): Promise<void> => {
    refused ??= await Promise.race([core.whenIdle().then(() => undefined), watch.refused]);
  };
  try {
    await core.start();
    await idleOrRefused();
    // A wipe that kept a file because it changed at the last moment leaves new bytes the server
    // does not hold yet: scan again so this run ingests them as a new version (bounded rounds).
    // So does an upload closed because a companion changed or vanished after its hash (file_changed).
    const newVersionWaits = (): boolean => {
      for (const r of core.dockedRecordings()) if ((config.wipeAfterIngest && r.wipeKept !== undefined && CHANGED_KEEPS.has(r.wipeKept)) || (r.state === 'quarantined' && r.reasonCode === 'file_changed')) return true;
      return false;
    };
    for (let round = 0; round < 3 && !refused && newVersionWaits(); round++) {
      const before = core.lastRowId();
      await core.scanAll();
      await idleOrRefused();
      if (core.lastRowId() === before) break;
    }
    // Read a page at a time: the report lists every file of the docked cards, never all their rows in full at once.
    const recordings: OnceRecording[] = [];
    for (const r of core.dockedRecordings()) recordings.push(onceEntry(r));
    // A row this run closed because its file left the card is said (quarantined: …: file_vanished: …), never dropped from the report.
    recordings.push(...core.vanishedThisRun());
    // A recording the refusal stopped says why it waits, in the refusal's words (its own last error is older news).
    if (refused) for (const r of recordings) if (!(FINAL_STATES as readonly string[]).includes(r.state)) r.reason = refused[0]!.reason;
    for (const path of core.settlingFiles()) recordings.push({ file: path, state: 'settling', reason: 'file still growing: not offloaded' });
    // A bay whose scan did not end within scanSlowAfter (a card reader that does not answer): its files were not all looked at.
    const unscanned = core.slowBays().map((b) => ({ bay: b.bay, reason: `the scan of this bay did not finish in ${Math.round(b.runningMs / 1000)} s (scanSlowAfter): a slow or stuck card reader? Its files were not all looked at` }));
    const bays = core.skippedByBay();
    // What `bodycam dock check` calls "left" (it may be evidence: a hidden or temporary media file too) is never a success.
    const skipped: OnceSkipped[] = bays.flatMap((b) => b.skipped.filter(mayHoldEvidence).map((s) => ({ bay: b.bay, ...s })));
    const unlistedEvidence = bays.some((b) => Object.entries(b.skippedByCode).some(([code, k]) => MAY_HOLD_EVIDENCE.has(code as SkipCode) && (k ?? 0) > b.skipped.filter((s) => s.code === code).length));
    const count = (codes: ReadonlySet<SkipCode>): number => bays.reduce((n, b) => n + Object.entries(b.skippedByCode).reduce((m, [code, k]) => m + (codes.has(code as SkipCode) ? k ?? 0 : 0), 0), 0);
    // A listing cut short (unreadable folder, depth or count bound) may hide evidence: never a success.
    // With wiping asked for, a receipted file whose wipe failed and was not retried to an end (a
    // write-protected card, an undock) is not freed: the run did not do its job (exit 1, `not wiped:`).
    const failed = refused !== undefined || unscanned.length > 0 || count(INCOMPLETE_SKIPS) > 0
      || recordings.some((r) => !(FINAL_STATES as readonly string[]).includes(r.state) || (config.wipeAfterIngest && wipeUnfinished(r)));
    // Kept by the wipe with wiping asked for: the card holds something the run did not free (a changed
    // file or sidecar, a server that did not prove possession): a person should look, never a plain success.
    const attention = skipped.length > 0 || unlistedEvidence || recordings.some((r) => r.state === 'quarantined' || isFlagged(r.integrity, Boolean(r.truncated), r.unreadable) || (config.wipeAfterIngest && r.wipeKept !== undefined));
    const skippedByCode: Partial<Record<SkipCode, number>> = {};
    for (const b of bays) for (const [code, k] of Object.entries(b.skippedByCode)) skippedByCode[code as SkipCode] = (skippedByCode[code as SkipCode] ?? 0) + (k ?? 0);
    return { exitCode: failed ? 1 : attention ? 3 : 0, recordings, unscanned, skipped, skippedCount: bays.reduce((n, b) => n + b.skippedCount, 0), skippedByCode, refused: refused ?? [] };
  } finally {
    watch.cancel();
    await core.stop();
  }
}
