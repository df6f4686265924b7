/**
 * The status projection (`bodycam status`, GET /status, the demo's progress):
 * what each bay shows (empty, docked, offloading with progress, done,
 * attention with the reason) and the queue, computed from the journal and the
 * agent's view of the bays. It reads, it never changes anything.
 */
import { VERSION } from '../util/version.js';
import type { SkipCode, SkippedPath } from '../protocol/cameraStorage/index.js';
import { ATTENTION_SKIPS, INCOMPLETE_SKIPS, mayHoldEvidence } from '../protocol/cameraStorage/index.js';
import type { IntegrityStatus } from '../protocol/types.js';
import type { AgentState, BayInfo } from './agentState.js';
import type { DockProblem, ServerProblemTally } from './attention.js';
import { isFlagged } from './integrity.js';
import { unreadableOf } from './pipeline.js';
import type { CardLayout } from '../protocol/cardLayouts.js';
import type { JobState, RecordingBrief } from './journal.js';
import { ACTIVE_STATES, FINAL_STATES } from './states.js';

export type BayState = 'empty' | 'docked' | 'offloading' | 'done' | 'attention';

export interface BayStatus {
  bay: string;
  serial: string | null;
  state: BayState;
  /** 0..100 while offloading (bytes acknowledged by the server over bytes found). */
  progress: number | null;
  /** Bytes of this docking's recordings acknowledged by the server (or finished otherwise), and found: the progress display's rate and ETA come from these. */
  bytesDone?: number;
  bytesTotal?: number;
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
  /** When this status was computed (ISO 8601, the dock's clock): a status page or progress line may show one a few seconds old (src/util/costBounded.ts). */
  generatedAt: string;
  /** bodycam-dock version of the running agent. */
  version: string;
  /** Dock-level problems no retry fixes (src/dock/attention.ts); empty when there are none. GET /healthz is not ok while any is. */
  attention: DockProblem[];
  /** Every kind of problem answer the servers gave since the agent started, with counts (src/dock/attention.ts). */
  serverProblems?: ServerProblemTally[];
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
    /** Rows in the journal (all states): `recordings` lists the active ones, those of the cameras docked now and the RECENT_SHOWN changed last. */
    recordingsTotal?: number;
    recordings: RecordingSummary[];
  };
}

/** Skipped paths shown per bay in status (the count is always complete). */
const SKIPPED_SHOWN = 50;
/**
 * Lines of a bay's `reason` that name one file each (quarantined, flagged, kept, stale): a card of
 * 100,000 set-aside files made one 10 MB reason per status call. The rest are counted; every one is
 * in queue.recordings and `bodycam quarantine list`.
 */
export const FILE_LINES_SHOWN = 20;

/** At most FILE_LINES_SHOWN of them, then how many more. */
function boundedLines(lines: readonly string[]): string[] {
  if (lines.length <= FILE_LINES_SHOWN) return [...lines];
  return [...lines.slice(0, FILE_LINES_SHOWN), `and ${lines.length - FILE_LINES_SHOWN} more (bodycam quarantine list, bodycam status --json)`];
}

/**
 * Finished rows of history listed besides the active ones and those of the cameras docked now
 * (the counts cover every row; `bodycam quarantine list` pages through the ones needing a person).
 */
export const RECENT_SHOWN = 200;

/**
 * What status reads costs what the work in hand costs, never what the history costs: the active
 * rows, the rows of the cameras docked now, a page of recent history, and the journal's
 * trigger-kept counters (a year of finished rows is neither read nor counted here).
 */
export function dockStatus(state: AgentState): DockStatus {
  const { journal, located, config } = state;
  const now = state.clock.now();
  const active = journal.briefsInStates(ACTIVE_STATES);
  const byKey = new Map<string, RecordingBrief>();
  for (const row of active) byKey.set(row.key, row);
  const dockedKeys = new Set<string>();
  for (const bay of state.bays.values()) if (bay.present) for (const key of bay.sessionKeys) if (!byKey.has(key)) dockedKeys.add(key);
  for (const row of journal.briefsOf(dockedKeys)) byKey.set(row.key, row);
  for (const row of journal.recentBriefs(RECENT_SHOWN)) if (!byKey.has(row.key)) byKey.set(row.key, row);
  const rows = [...byKey.values()].sort((a, b) => a.detectedAt - b.detectedAt || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const counts = journal.counts();
  const recordings: RecordingSummary[] = rows.map((row) => recordingSummary(state, row));
  const oldest = journal.oldestDetected(ACTIVE_STATES);
  const running = [...state.running.entries()];
  const bays: BayStatus[] = [...state.bays.values()].sort((a, b) => a.name.localeCompare(b.name)).map((bay) => bayStatus(state, bay, byKey, now));
  return {
    dockId: config.dockId,
    generatedAt: new Date(now).toISOString(),
    version: VERSION,
    attention: state.attention.list(),
    serverProblems: state.attention.serverProblems(),
    bays,
    queue: {
      depth: active.length,
      preparing: running.filter(([, j]) => j.phase === 'prepare').length,
      uploading: running.filter(([, j]) => j.phase === 'upload').length,
      waiting: active.filter((r) => !state.running.has(r.key) && located.has(r.key) && r.nextAttemptAt <= now).length,
      backoff: active.filter((r) => r.nextAttemptAt > now).length,
      paused: active.filter((r) => !located.has(r.key)).length,
      settling: state.candidates.size,
      completed: counts.byState.completed,
      wiped: counts.byState.wiped,
      quarantined: counts.byState.quarantined,
      flagged: counts.flagged,
      oldestQueuedSeconds: oldest !== undefined ? Math.max(0, Math.round((now - oldest) / 1000)) : 0,
      bytesSent: state.metrics.bytesSent,
      recordingsTotal: counts.total,
      recordings,
    },
  };
}

/** One journal row as status and --once's report show it. */
export function recordingSummary(state: Pick<AgentState, 'located'>, row: RecordingBrief): RecordingSummary {
  const { located } = state;
  return {
    key: row.key,
    ...(row.recordingId ? { recordingId: row.recordingId } : {}),
    file: row.relPath,
    serial: row.serial,
    ...(located.get(row.key) ? { bay: located.get(row.key)!.bay } : row.bay ? { bay: row.bay } : {}),
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
  };
}

function bayStatus(state: AgentState, bay: BayInfo, rows: ReadonlyMap<string, RecordingBrief>, now: number): BayStatus {
  const shown = bayStatusShown(state, bay, rows, now);
  if (bay.slowScanSince === undefined) return shown;
  // Its scan has not finished (a slow or stuck card reader): what the card holds is not known yet,
  // and a bay shown empty or done then would be a silence.
  const slow = `the scan of this bay has not finished after ${Math.round((now - bay.slowScanSince) / 1000)} s: a slow or stuck card reader? Its files are not all looked at yet`;
  return { ...shown, state: 'attention', reason: shown.reason ? `${slow}; ${shown.reason}` : slow, reasonCode: 'scan_slow' };
}

function bayStatusShown(state: AgentState, bay: BayInfo, rows: ReadonlyMap<string, RecordingBrief>, now: number): BayStatus {
  if (!bay.present) return { bay: bay.name, serial: null, state: 'empty', progress: null, reason: null };
  const inner = bayStatusInner(state, bay, rows, now);
  const withBytes = inner.bytesTotal === undefined ? (({ bytesDone: _d, bytesTotal: _t, ...rest }) => rest)(inner) : inner;
  const base = bay.layouts.length ? { ...withBytes, layouts: bay.layouts } : withBytes;
  return bay.skippedCount ? { ...base, skipped: bay.skipped.slice(0, SKIPPED_SHOWN), skippedCount: bay.skippedCount } : base;
}

/** Paths this bay's last scan left alone that may hide evidence (a person must look). */
function skipAttention(bay: BayInfo): string[] {
  const out: string[] = [];
  for (const [code, count] of Object.entries(bay.skippedByCode) as Array<[SkipCode, number]>) {
    if (!ATTENTION_SKIPS.has(code) || !count) continue;
    out.push(code === 'symlink' ? `${count} symlink(s) skipped` : `${count} path(s) skipped: ${code}${INCOMPLETE_SKIPS.has(code) ? ' (listing incomplete)' : ''}`);
  }
  // A hidden or temporary media file (a file hidden on a PC, a write cut by power loss) is not
  // ingested, and may be evidence: as `bodycam dock check` and `--once` say (unlisted ones count too).
  const listed = bay.skipped.filter((s) => (s.code === 'hidden' || s.code === 'temporary'));
  const unlisted = (bay.skippedByCode.hidden ?? 0) + (bay.skippedByCode.temporary ?? 0) - listed.length;
  const evidence = listed.filter(mayHoldEvidence).length + Math.max(0, unlisted);
  if (evidence) out.push(`${evidence} hidden or temporary media file(s) not ingested: the card may hold evidence the server does not have`);
  return out;
}

function bayStatusInner(state: AgentState, bay: BayInfo, rows: ReadonlyMap<string, RecordingBrief>, now: number): BayStatus {
  const { config, journal } = state;
  const mine: RecordingBrief[] = [];
  for (const key of bay.sessionKeys) {
    const r = rows.get(key);
    if (r && (bay.keys.has(r.key) || r.state === 'wiped')) mine.push(r);
  }
  mine.sort((a, b) => a.detectedAt - b.detectedAt || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const fileLines: string[] = [];
  const staleLines: string[] = [];
  const quarantineCode = mine.find((r) => r.state === 'quarantined' && r.reasonCode)?.reasonCode;
  const withCode = <T extends BayStatus>(s: T): T => (quarantineCode && s.reason !== null ? { ...s, reasonCode: quarantineCode } : s);
  for (const r of mine) {
    if (r.state === 'quarantined') fileLines.push(`${r.fileName}: ${r.reasonCode ? `${r.reasonCode}: ` : ''}${r.reason ?? 'quarantined'}`);
    else if (unreadableOf(r)) fileLines.push(`${r.fileName}: unreadable: ${unreadableOf(r)!}`);
    else if (isFlagged(r.info.integrity as IntegrityStatus | undefined, Boolean(r.info.truncated))) fileLines.push(`${r.fileName}: ${r.info.truncated && r.info.integrity === 'unsigned' ? 'truncated' : String(r.info.integrity)}`);
    // Kept by the wipe's checks (changed, replaced, sidecar re-signed, no proof of possession): a person should know.
    else if (r.state === 'completed' && r.info.wipeSkipped && config.wipeAfterIngest) fileLines.push(`${r.fileName}: ${String(r.info.wipeKeptCode ?? 'kept')}: ${r.reason ?? 'not wiped'}`);
    if (ACTIVE_STATES.includes(r.state) && now - r.detectedAt > config.staleAfter * 1000) staleLines.push(`${r.fileName}: queued for more than ${config.staleAfter}s`);
  }
  const attention = [...(bay.problem ? [bay.problem] : []), ...skipAttention(bay), ...boundedLines(fileLines)];
  const stale = boundedLines(staleLines);
  const settling = [...state.candidates.keys()].some((p) => p.startsWith(bay.root + '/'));
  const activeRows = mine.filter((r) => ACTIVE_STATES.includes(r.state));
  const total = mine.reduce((sum, r) => sum + r.size, 0);
  let doneBytes = 0;
  for (const r of mine) {
    if (FINAL_STATES.includes(r.state)) doneBytes += r.size;
    else if (r.state === 'uploading') doneBytes += journal.segments(r.key).filter((s) => s.acked).reduce((s, x) => s + x.length, 0);
  }
  const progress = total > 0 ? Math.min(100, Math.floor((doneBytes / total) * 100)) : null;
  const bytes = total > 0 ? { bytesDone: doneBytes, bytesTotal: total } : {};
  // The dock itself is refused (token, dock id, keys, protocol): every bay with work left waits on it.
  // (A receipt signed by another key quarantines: those bays wait on the fix too.)
  const blocked = activeRows.length > 0 || settling || mine.some((r) => r.state === 'quarantined') ? state.attention.list() : [];
  if (blocked.length) {
    return { bay: bay.name, serial: bay.serial, state: 'attention', progress, ...bytes, reason: [...blocked.map((p) => p.reason), ...stale, ...attention].join('; '), reasonCode: blocked[0]!.code };
  }
  // A recording waiting too long needs a person even while work goes on.
  if (stale.length) return withCode({ bay: bay.name, serial: bay.serial, state: 'attention', progress: null, reason: [...stale, ...attention].join('; ') });
  if (activeRows.length > 0 || settling) {
    return withCode({ bay: bay.name, serial: bay.serial, state: attention.length && activeRows.length === 0 ? 'attention' : 'offloading', progress, ...bytes, reason: attention.length ? attention.join('; ') : null });
  }
  if (attention.length) return withCode({ bay: bay.name, serial: bay.serial, state: 'attention', progress, ...bytes, reason: attention.join('; ') });
  if (mine.length === 0) return { bay: bay.name, serial: bay.serial, state: 'docked', progress: null, reason: null };
  return { bay: bay.name, serial: bay.serial, state: 'done', progress: 100, ...bytes, reason: null };
}
