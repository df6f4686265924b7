/**
 * The journal: the only truth the agent needs after a crash. SQLite in WAL
 * mode with synchronous=FULL, so a transition is on disk before the action it
 * allows (upload after hashed, wipe after completed). Rows are per recording and
 * per segment, never per attempt; the event log is pruned to a fixed size.
 */
import Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { EnvironmentError, UsageError } from '../errors.js';
import { systemClock, type Clock } from '../util/clock.js';
import { INTEGRITY_STATUSES, isIntegrityProblem } from '../protocol/types.js';

import { ACTIVE_STATES, canTransition, FINAL_STATES, HASHED_STATES, IllegalTransitionError, RECEIPTED_STATES, type JobState, type MoveKind } from './states.js';

export { ACTIVE_STATES, type JobState } from './states.js';

/**
 * What the file looked like when this row last vouched for it (lstat). A row in a
 * final state matches a file on the card only while this is unchanged; ino/dev/ctime
 * catch a replacement that kept size and mtime (cp -p, touch -r).
 */
export interface StatSnapshot {
  size: number;
  mtimeMs: number;
  ino: number;
  dev: number;
  ctimeMs: number;
  /** The sidecar's snapshot (a re-signed sidecar is a new version too); null when there is none. */
  sidecar: { size: number; mtimeMs: number; ino: number; dev: number; ctimeMs: number } | null;
  /** Its companions' snapshots, by name (a changed, added or removed attachment is a new version too); absent = none. */
  companions?: Array<{ name: string; size: number; mtimeMs: number; ino: number; dev: number; ctimeMs: number }>;
}

export function sameSnapshot(a: StatSnapshot | null, b: StatSnapshot): boolean {
  if (!a) return false;
  type Facts = { size: number; mtimeMs: number; ino: number; dev: number; ctimeMs: number };
  const same = (x: Facts, y: Facts): boolean =>
    x.size === y.size && x.mtimeMs === y.mtimeMs && x.ino === y.ino && x.dev === y.dev && x.ctimeMs === y.ctimeMs;
  if (!same(a, b)) return false;
  const ca = a.companions ?? [];
  const cb = b.companions ?? [];
  if (ca.length !== cb.length || !ca.every((c, i) => c.name === cb[i]!.name && same(c, cb[i]!))) return false;
  if (!a.sidecar || !b.sidecar) return !a.sidecar && !b.sidecar;
  return same(a.sidecar, b.sidecar);
}

/** A fresh opaque row key: one observation of one file on a card (docs/dock.md, "Identity"). */
export function newRowUid(): string {
  return randomBytes(8).toString('hex');
}

/** What a scan needs to know of an active row to judge whether its file left the card. */
export type ActiveRowRef = Pick<RecordingRow, 'key' | 'relPath' | 'state' | 'recordingId'>;

export interface RecordingRow {
  /**
   * Primary key of the row: an opaque random uid (16 hex) for rows made by this build;
   * rows of older journals keep their old `serial|relPath|…` key (found by serial + relPath now).
   */
  key: string;
  /** 16 hex, part of the recording id, so two files with the same bytes are two recordings. */
  uid: string;
  /** Stat snapshot the row vouches for (null: an old row, or never recorded). */
  stat: StatSnapshot | null;
  serial: string;
  fileName: string;
  /** Path of the file relative to the camera root (where it is looked for on re-dock). */
  relPath: string;
  bay: string | null;
  size: number;
  mtimeMs: number;
  state: JobState;
  reason: string | null;
  /** Stable machine code of a quarantine (docs/dock.md lists them); null otherwise. */
  reasonCode: string | null;
  recordingId: string | null;
  sha256: string | null;
  critical: boolean;
  detectedAt: number;
  updatedAt: number;
  attempts: number;
  nextAttemptAt: number;
  lastError: string | null;
  /** Probe, plan kind, integrity and sidecar facts gathered on the way (JSON). */
  info: Record<string, unknown>;
  manifestJson: string | null;
  receiptJson: string | null;
}

/**
 * A row without its signed documents and stat snapshot (status and reports: a completed row's
 * manifest and receipt are kilobytes each, and reading them for a docked card of 20,000 files was
 * most of a status call, docs/benchmarks.md).
 */
export type RecordingBrief = Omit<RecordingRow, 'manifestJson' | 'receiptJson' | 'stat'>;

export interface SegmentRow {
  index: number;
  offset: number;
  length: number;
  sha256: string | null;
  startTime: number | null;
  endTime: number | null;
  acked: boolean;
}

interface RawRecording {
  key: string; serial: string; file_name: string; rel_path: string; bay: string | null; size: number; mtime_ms: number;
  state: JobState; reason: string | null; reason_code: string | null; recording_id: string | null; sha256: string | null; critical: number;
  detected_at: number; updated_at: number; attempts: number; next_attempt_at: number; last_error: string | null;
  info_json: string; manifest_json: string | null; receipt_json: string | null; uid: string | null; stat_json: string | null;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS recordings (
  key TEXT PRIMARY KEY, serial TEXT NOT NULL, file_name TEXT NOT NULL, rel_path TEXT NOT NULL, bay TEXT,
  size INTEGER NOT NULL, mtime_ms INTEGER NOT NULL, state TEXT NOT NULL, reason TEXT, reason_code TEXT, recording_id TEXT, sha256 TEXT,
  critical INTEGER NOT NULL DEFAULT 0, detected_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at INTEGER NOT NULL DEFAULT 0, last_error TEXT,
  info_json TEXT NOT NULL DEFAULT '{}', manifest_json TEXT, receipt_json TEXT, uid TEXT, stat_json TEXT
);
CREATE TABLE IF NOT EXISTS segments (
  rkey TEXT NOT NULL, idx INTEGER NOT NULL, offset INTEGER NOT NULL, length INTEGER NOT NULL, sha256 TEXT,
  start_time REAL, end_time REAL, acked INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (rkey, idx)
);
CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY AUTOINCREMENT, time INTEGER NOT NULL, rkey TEXT, kind TEXT NOT NULL, detail TEXT);
`;

/** SQL text of a list of fixed words ('a','b'), from the one list in the code (never from input). */
const sqlList = (words: readonly string[]): string => words.map((w) => `'${w}'`).join(',');
/** The integrity statuses that flag a recording (src/protocol/types.ts, one list). */
const FINAL_SQL = sqlList(FINAL_STATES);
const ACTIVE_SQL = sqlList(ACTIVE_STATES);
const RECEIPTED_SQL = sqlList(RECEIPTED_STATES);
const FLAGGED_INTEGRITY_SQL = sqlList(INTEGRITY_STATUSES.filter((s) => isIntegrityProblem(s)));

/**
 * A row that holds an integrity flag, a truncation or unreadable media (the same facts as
 * isFlagged(integrity, truncated, unreadableOf(row)), src/dock/integrity.ts), in SQL over `info`.
 */
const FLAGGED_SQL = (info: string): string => `(CASE WHEN json_valid(${info}) THEN CASE WHEN json_extract(${info}, '$.integrity') IN (${FLAGGED_INTEGRITY_SQL})
  OR json_extract(${info}, '$.truncated') = 1 OR json_type(${info}, '$.unreadable') = 'text' OR json_type(${info}, '$.probeError') = 'text' THEN 1 ELSE 0 END ELSE 0 END)`;

/** Rows a person should look at (`bodycam quarantine list`); the partial index recordings_attention holds exactly these. NULL (not 0) for most other rows: negate it as COALESCE(…, 0) = 0. */
const ATTENTION_SQL = `(state = 'quarantined' OR (state IN (${sqlList(HASHED_STATES)}) AND (json_extract(info_json, '$.integrity') IN (${FLAGGED_INTEGRITY_SQL})
  OR json_extract(info_json, '$.truncated') = 1 OR json_extract(info_json, '$.unreadable') IS NOT NULL OR json_extract(info_json, '$.probeError') IS NOT NULL)))`;

/**
 * Indexes of the hot path (every statement of this file is checked with EXPLAIN QUERY PLAN in
 * test/dock/journalPlans.test.ts): a journal with a year of finished rows costs a scheduling
 * round, a scan and a status what one with a day of them costs.
 */
const INDEXES = `
CREATE INDEX IF NOT EXISTS recordings_state_detected ON recordings(state, detected_at);
CREATE INDEX IF NOT EXISTS recordings_rel_path ON recordings(rel_path, serial);
CREATE INDEX IF NOT EXISTS recordings_retry ON recordings(next_attempt_at);
CREATE INDEX IF NOT EXISTS recordings_updated ON recordings(updated_at);
CREATE INDEX IF NOT EXISTS recordings_recording_id ON recordings(recording_id);
CREATE INDEX IF NOT EXISTS recordings_attention ON recordings(detected_at) WHERE ${ATTENTION_SQL};
`;

/**
 * Rows per state (and per flag), kept by triggers: status reads a handful of counters instead of
 * counting a year of history on every refresh.
 */
const COUNTS = `
CREATE TABLE recording_counts (state TEXT NOT NULL, flagged INTEGER NOT NULL, n INTEGER NOT NULL, PRIMARY KEY (state, flagged)) WITHOUT ROWID;
CREATE TRIGGER recordings_count_insert AFTER INSERT ON recordings BEGIN
  INSERT OR IGNORE INTO recording_counts (state, flagged, n) VALUES (NEW.state, ${FLAGGED_SQL('NEW.info_json')}, 0);
  UPDATE recording_counts SET n = n + 1 WHERE state = NEW.state AND flagged = ${FLAGGED_SQL('NEW.info_json')};
END;
CREATE TRIGGER recordings_count_delete AFTER DELETE ON recordings BEGIN
  UPDATE recording_counts SET n = n - 1 WHERE state = OLD.state AND flagged = ${FLAGGED_SQL('OLD.info_json')};
END;
CREATE TRIGGER recordings_count_update AFTER UPDATE OF state, info_json ON recordings BEGIN
  UPDATE recording_counts SET n = n - 1 WHERE state = OLD.state AND flagged = ${FLAGGED_SQL('OLD.info_json')};
  INSERT OR IGNORE INTO recording_counts (state, flagged, n) VALUES (NEW.state, ${FLAGGED_SQL('NEW.info_json')}, 0);
  UPDATE recording_counts SET n = n + 1 WHERE state = NEW.state AND flagged = ${FLAGGED_SQL('NEW.info_json')};
END;
INSERT INTO recording_counts (state, flagged, n) SELECT state, ${FLAGGED_SQL('info_json')}, COUNT(*) FROM recordings GROUP BY 1, 2;
`;

/** How stale a completed row's last change may be before a scan that sees its file refreshes it (markSeen). */
export const SEEN_REFRESH_MS = 86_400_000;
/** Events kept; older ones are pruned so the journal stays bounded however long the dock runs. */
export const EVENTS_KEPT = 2000;

/** The columns of a RecordingBrief (SQL in one place: every brief statement selects these). */
const BRIEF_COLUMNS = 'key, serial, file_name, rel_path, bay, size, mtime_ms, state, reason, reason_code, recording_id, sha256, critical, detected_at, updated_at, attempts, next_attempt_at, last_error, info_json, uid';
type RawBrief = Omit<RawRecording, 'manifest_json' | 'receipt_json' | 'stat_json'>;

function toBrief(raw: RawBrief): RecordingBrief {
  let info: Record<string, unknown> = {};
  try { info = JSON.parse(raw.info_json) as Record<string, unknown>; } catch { /* keep empty */ }
  return {
    key: raw.key, uid: raw.uid ?? raw.key.slice(0, 16), serial: raw.serial, fileName: raw.file_name, relPath: raw.rel_path, bay: raw.bay, size: raw.size,
    mtimeMs: raw.mtime_ms, state: raw.state, reason: raw.reason, reasonCode: raw.reason_code ?? null, recordingId: raw.recording_id, sha256: raw.sha256,
    critical: raw.critical === 1, detectedAt: raw.detected_at, updatedAt: raw.updated_at, attempts: raw.attempts,
    nextAttemptAt: raw.next_attempt_at, lastError: raw.last_error, info,
  };
}

function toRow(raw: RawRecording): RecordingRow {
  let stat: StatSnapshot | null = null;
  try { stat = raw.stat_json ? JSON.parse(raw.stat_json) as StatSnapshot : null; } catch { /* unknown: re-checked */ }
  return { ...toBrief(raw), stat, manifestJson: raw.manifest_json, receiptJson: raw.receipt_json };
}

/** A journal written by an earlier build lacks later columns; CREATE TABLE IF NOT EXISTS does not add them. */
function addMissingColumns(db: Database.Database): void {
  const columns = new Set((db.pragma('table_info(recordings)') as Array<{ name: string }>).map((c) => c.name));
  if (!columns.has('reason_code')) db.exec('ALTER TABLE recordings ADD COLUMN reason_code TEXT');
  if (!columns.has('stat_json')) db.exec('ALTER TABLE recordings ADD COLUMN stat_json TEXT');
  if (!columns.has('uid')) {
    db.exec('ALTER TABLE recordings ADD COLUMN uid TEXT');
    // Rows of an older journal get their own uid (their key stays; they are found by serial + relPath).
    // Only here, in the transaction that added the column: every row written since has one, and a
    // scan of the whole table on every open would make start-up grow with history.
    db.exec('UPDATE recordings SET uid = lower(hex(randomblob(8))) WHERE uid IS NULL');
  }
}

/**
 * The indexes and counters of this build, added to a journal of any earlier one in one
 * transaction (a second process opening it meanwhile waits, then finds them made). The counters
 * of an old journal are counted once, here: one pass over its rows, then never again.
 */
function migrate(db: Database.Database): void {
  db.transaction(() => {
    addMissingColumns(db);
    // Superseded by recordings_state_detected and recordings_rel_path (their prefixes served less).
    db.exec('DROP INDEX IF EXISTS recordings_state; DROP INDEX IF EXISTS recordings_path;');
    db.exec(INDEXES);
    // Counted afresh when the counters or any of their triggers are missing (a table rebuilt by hand drops its triggers).
    const made = db.prepare("SELECT COUNT(*) AS n FROM sqlite_master WHERE (type = 'table' AND name = 'recording_counts') OR (type = 'trigger' AND name LIKE 'recordings_count_%')").get() as { n: number };
    if (made.n !== 4) {
      db.exec('DROP TABLE IF EXISTS recording_counts; DROP TRIGGER IF EXISTS recordings_count_insert; DROP TRIGGER IF EXISTS recordings_count_delete; DROP TRIGGER IF EXISTS recordings_count_update;');
      db.exec(COUNTS);
    }
  }).immediate();
}

/** What the scheduler needs of a row (Journal.listWorkableLight). */
export interface WorkableRow {
  key: string;
  state: JobState;
  size: number;
  critical: boolean;
  mtimeMs: number;
  nextAttemptAt: number;
  attempts: number;
  detectedAt: number;
  recordedAt: number | null;
}

/** The columns of a WorkableRow, one statement head for the scheduler's four reads. */
const WORKABLE_SELECT = `SELECT key, state, size, critical, mtime_ms AS mtimeMs, next_attempt_at AS nextAttemptAt, attempts, detected_at AS detectedAt,
  json_extract(info_json, '$.recordedAt') AS recordedAt FROM recordings`;
type RawWorkable = Omit<WorkableRow, 'critical'> & { critical: number };
const workableOf = (r: RawWorkable): WorkableRow => ({ ...r, critical: r.critical === 1 });

/** A row in hand as the scheduler's reads would give it (WORKABLE_SELECT): what a scan hands it, unread. */
export function workableRowOf(row: RecordingRow): WorkableRow {
  const recordedAt = row.info.recordedAt;
  return { key: row.key, state: row.state, size: row.size, critical: row.critical, mtimeMs: row.mtimeMs, nextAttemptAt: row.nextAttemptAt,
    attempts: row.attempts, detectedAt: row.detectedAt, recordedAt: typeof recordedAt === 'number' ? recordedAt : null };
}

/** What the retention rule reads of a finished row: enough to archive its receipt and say what it was. */
export interface PrunableRow {
  rowid: number;
  key: string;
  state: JobState;
  serial: string;
  relPath: string;
  bay: string | null;
  recordingId: string | null;
  sha256: string | null;
  detectedAt: number;
  updatedAt: number;
  receiptJson: string | null;
}

export interface NewRecording {
  serial: string;
  fileName: string;
  relPath: string;
  bay: string;
  size: number;
  mtimeMs: number;
  critical: boolean;
  stat: StatSnapshot;
  /** When the recording began (sidecar startedAt, else mtime): its place in the queue. */
  recordedAt?: number;
}

/** Journal and key files hold evidence facts and secrets: owner only (0600 in a 0700 folder). */
export function restrictStateDir(stateDir: string): void {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  chmodSync(stateDir, 0o700);
}

export function restrictFile(path: string): void {
  if (existsSync(path)) chmodSync(path, 0o600);
}

export class Journal {
  private readonly db: Database.Database;
  private eventsSincePrune = 0;
  /** Prepared statements, made once (preparing costs more than running a small one). */
  private readonly statements = new Map<string, Database.Statement>();

  private stmt(sql: string): Database.Statement {
    let statement = this.statements.get(sql);
    if (!statement) this.statements.set(sql, statement = this.db.prepare(sql));
    return statement;
  }

  /** `clock` stamps rows and events and sets retry times (the agent's clock, so a test moves time, not sleeps). */
  static open(stateDir: string, clock: Clock = systemClock): Journal {
    try {
      restrictStateDir(stateDir);
      const path = join(stateDir, 'journal.sqlite');
      const journal = new Journal(new Database(path), clock);
      // SQLite gives the -wal/-shm files the main file's mode, so 0600 here covers them too.
      for (const file of [path, path + '-wal', path + '-shm']) restrictFile(file);
      return journal;
    } catch (cause) {
      throw new EnvironmentError('E_JOURNAL_OPEN', `cannot open the dock journal in ${stateDir}: ${(cause as Error).message}`, { cause });
    }
  }

  /** The journal of an existing state folder, for the operator's commands: never creates one. */
  static openExisting(stateDir: string): Journal {
    if (!existsSync(join(stateDir, 'journal.sqlite'))) {
      throw new UsageError(`no dock journal in ${stateDir}: give the --state-dir the dock runs with`, { code: 'E_NO_JOURNAL' });
    }
    return Journal.open(stateDir);
  }

  /**
   * The journal opened read-only (`dock --dry-run`, `doctor`, `check`): nothing in the state
   * folder is created, migrated or chmod-ed, and no write can happen through it (SQLITE_READONLY).
   */
  static openReadOnly(stateDir: string): Journal {
    const path = join(stateDir, 'journal.sqlite');
    if (!existsSync(path)) throw new UsageError(`no dock journal in ${stateDir}: give the --state-dir the dock runs with`, { code: 'E_NO_JOURNAL' });
    try {
      return new Journal(new Database(path, { readonly: true, fileMustExist: true }), systemClock, true);
    } catch (cause) {
      throw new EnvironmentError('E_JOURNAL_OPEN', `cannot read the dock journal in ${stateDir}: ${(cause as Error).message}`, { cause });
    }
  }

  private constructor(db: Database.Database, private readonly clock: Clock, readOnly = false) {
    this.db = db;
    if (readOnly) { db.pragma('busy_timeout = 5000'); return; }
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('busy_timeout = 5000');
    db.exec(SCHEMA);
    migrate(db);
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  getMeta(key: string): string | undefined {
    const row = this.stmt('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined;
    return row?.value;
  }

  setMeta(key: string, value: string): void {
    this.stmt('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(key, value);
  }

  get(key: string): RecordingRow | undefined {
    const raw = this.stmt('SELECT * FROM recordings WHERE key = ?').get(key) as RawRecording | undefined;
    return raw ? toRow(raw) : undefined;
  }

  /**
   * Rows in these states, brief (status: the active ones; a year of finished rows is never read
   * here). Bounded by the work in hand, not by history.
   */
  briefsInStates(states: readonly JobState[]): RecordingBrief[] {
    if (states.length === 0) return [];
    return (this.stmt(`SELECT ${BRIEF_COLUMNS} FROM recordings WHERE state IN (${states.map(() => '?').join(',')}) ORDER BY detected_at, key`).all(...states) as RawBrief[]).map(toBrief);
  }

  /**
   * The active rows of one camera, key, path, state and recording id only (each scan's check for
   * files gone from its card, src/dock/vanished.ts): the work in hand, through the state index.
   */
  listActiveOfSerial(serial: string): ActiveRowRef[] {
    return this.stmt(`SELECT key, rel_path AS relPath, state, recording_id AS recordingId FROM recordings WHERE state IN (${ACTIVE_SQL}) AND serial = ? ORDER BY detected_at, key`).all(serial) as never;
  }

  /** Rows by key, brief (the recordings of the cameras docked now), in one statement; unknown keys are left out. */
  briefsOf(keys: Iterable<string>): RecordingBrief[] {
    const list = [...keys];
    if (list.length === 0) return [];
    return (this.stmt(`SELECT ${BRIEF_COLUMNS} FROM recordings WHERE key IN (SELECT value FROM json_each(?)) ORDER BY detected_at, key`).all(JSON.stringify(list)) as RawBrief[]).map(toBrief);
  }

  /**
   * Rows by key in full, in detection order, a page of keys at a time (--once's report of a card of
   * 100,000 files: one sort of keys, then PAGE rows at a time, never every row in memory at once).
   */
  *iterateManyInOrder(keys: Iterable<string>, page = 500): Generator<RecordingRow> {
    const ordered = this.stmt('SELECT key FROM recordings WHERE key IN (SELECT value FROM json_each(?)) ORDER BY detected_at, key').pluck().all(JSON.stringify([...keys])) as string[];
    for (let at = 0; at < ordered.length; at += page) {
      const keysOfPage = ordered.slice(at, at + page);
      const byKey = new Map<string, RawRecording>();
      for (const raw of this.stmt('SELECT * FROM recordings WHERE key IN (SELECT value FROM json_each(?))').all(JSON.stringify(keysOfPage)) as RawRecording[]) byKey.set(raw.key, raw);
      for (const key of keysOfPage) {
        const raw = byKey.get(key);
        if (raw) yield toRow(raw);
      }
    }
  }

  /** The `limit` rows changed last, brief, newest first (status shows recent history, a page, never all of it). */
  recentBriefs(limit: number): RecordingBrief[] {
    return (this.stmt(`SELECT ${BRIEF_COLUMNS} FROM recordings ORDER BY updated_at DESC, rowid DESC LIMIT ?`).all(limit) as RawBrief[]).map(toBrief);
  }

  /** Rows per state, and how many of the hashed states' rows are flagged (trigger-kept counters: no rows read). */
  counts(): { byState: Record<JobState, number>; flagged: number; total: number } {
    const byState: Record<JobState, number> = { detected: 0, probed: 0, planned: 0, hashed: 0, uploading: 0, completed: 0, wiped: 0, quarantined: 0 };
    let flagged = 0;
    let total = 0;
    for (const { state, flagged: f, n } of this.stmt('SELECT state, flagged, n FROM recording_counts').all() as Array<{ state: JobState; flagged: number; n: number }>) {
      if (state in byState) byState[state] += n;
      if (f && HASHED_STATES.includes(state)) flagged += n;
      total += n;
    }
    return { byState, flagged, total };
  }

  /**
   * The newest row's rowid (0 for none): it only grows while rows are inserted, whatever a prune
   * deletes meanwhile (its rows are old ones), so --once tells from it whether a rescan found rows.
   */
  lastRowId(): number {
    return (this.stmt('SELECT MAX(rowid) AS id FROM recordings').get() as { id: number | null }).id ?? 0;
  }

  /** When the oldest row in these states was detected (the queue's age), or undefined. */
  oldestDetected(states: readonly JobState[]): number | undefined {
    if (states.length === 0) return undefined;
    const row = this.stmt(`SELECT MIN(detected_at) AS t FROM recordings WHERE state IN (${states.map(() => '?').join(',')})`).get(...states) as { t: number | null };
    return row.t ?? undefined;
  }

  /**
   * The scheduler's view of the rows that may work: a few columns, no JSON parsed, so a card with
   * thousands of files costs the event loop little on every scheduling round.
   */
  listWorkableLight(states: readonly JobState[]): WorkableRow[] {
    if (states.length === 0) return [];
    return (this.stmt(`${WORKABLE_SELECT} WHERE state IN (${states.map(() => '?').join(',')}) ORDER BY detected_at, key`)
      .all(...states) as RawWorkable[]).map(workableOf);
  }

  /**
   * listWorkableLight without the rows still in backoff at `now` (a retry time after `now` and not
   * after `notAfter`; one further ahead was written before the clock was set back, and is due).
   * The scheduler lists the upload rows on every round: hours offline leave thousands of them
   * waiting, and SQLite passes over a waiting row for a fraction of what building it in JavaScript costs.
   */
  listDueWorkableLight(states: readonly JobState[], now: number, notAfter: number): WorkableRow[] {
    if (states.length === 0) return [];
    return (this.stmt(`${WORKABLE_SELECT} WHERE state IN (${states.map(() => '?').join(',')})
      AND (next_attempt_at <= ? OR next_attempt_at > ?) ORDER BY detected_at, key`)
      .all(...states, now, notAfter) as RawWorkable[]).map(workableOf);
  }

  /**
   * The same rows as listWorkableLight, unordered and read one at a time, for a question that
   * stops at the first match (the scheduler's "is anything runnable?", asked after every job):
   * a card of 100,000 queued files costs one row per question, not 100,000. The caller must not
   * use the journal until it stops iterating (better-sqlite3 holds the connection meanwhile).
   */
  *iterateWorkableLight(states: readonly JobState[]): Generator<WorkableRow> {
    if (states.length === 0) return;
    const rows = this.stmt(`${WORKABLE_SELECT} WHERE state IN (${states.map(() => '?').join(',')})`)
      .iterate(...states) as IterableIterator<RawWorkable>;
    for (const r of rows) yield workableOf(r);
  }

  /**
   * listWorkableLight for the given keys only (completed rows a wipe may follow: only those of the
   * cameras docked now, never a year of completed history). One statement, one lookup per key.
   */
  listWorkableLightOf(states: readonly JobState[], keys: Iterable<string>): WorkableRow[] {
    const list = [...keys];
    if (states.length === 0 || list.length === 0) return [];
    return (this.stmt(`${WORKABLE_SELECT} WHERE key IN (SELECT value FROM json_each(?)) AND +state IN (${states.map(() => '?').join(',')})`)
      .all(JSON.stringify(list), ...states) as RawWorkable[]).map(workableOf);
  }

  /** Keys of rows in these states detected before `before` (the stale alarm's candidates). */
  keysDetectedBefore(states: readonly JobState[], before: number): string[] {
    return (this.stmt(`SELECT key FROM recordings WHERE detected_at < ? AND state IN (${states.map(() => '?').join(',')})`).all(before, ...states) as Array<{ key: string }>).map((r) => r.key);
  }

  /** The earliest retry time after `now` among rows in these states (one aggregate, no rows read). */
  nextRetryAfter(states: readonly JobState[], now: number): number | undefined {
    // `+state`: the next_attempt_at index answers this (almost every row has 0), not the state one.
    const row = this.stmt(`SELECT MIN(next_attempt_at) AS t FROM recordings WHERE next_attempt_at > ? AND +state IN (${states.map(() => '?').join(',')})`)
      .get(now, ...states) as { t: number | null };
    return row.t ?? undefined;
  }

  /**
   * Group the writes of a scan into one commit (a card with thousands of files would otherwise
   * cost thousands of fsyncs on the event loop). Only for writes that allow no irreversible act
   * (detection): commitBatch() must be called before any await, so no other job's transition can
   * land in it. Nested writes (transition) become savepoints inside it.
   */
  beginBatch(): void {
    if (!this.db.inTransaction) this.db.exec('BEGIN IMMEDIATE');
  }

  commitBatch(): void {
    if (this.db.inTransaction) this.db.exec('COMMIT');
  }

  listBySerial(serial: string): RecordingRow[] {
    return (this.stmt('SELECT * FROM recordings WHERE serial = ?').all(serial) as RawRecording[]).map(toRow);
  }

  /**
   * Rows not wiped for one file path on one camera, newest first (versions of whatever lived at
   * that path). Wiped rows never match a file present now (src/dock/identity.ts), so they are not
   * even read: a camera that reuses FILE0001.MP4 after every wipe costs one row per scan, not a year's.
   */
  listByPath(serial: string, relPath: string): RecordingRow[] {
    return (this.stmt("SELECT * FROM recordings WHERE rel_path = ? AND serial = ? AND state <> 'wiped' ORDER BY detected_at DESC, rowid DESC").all(relPath, serial) as RawRecording[]).map(toRow);
  }

  /** A newly seen file (or a new version of one): a new row with a fresh random key. */
  insertDetected(rec: NewRecording, now = this.clock.now()): RecordingRow {
    const key = newRowUid();
    this.stmt(`INSERT INTO recordings (key, uid, serial, file_name, rel_path, bay, size, mtime_ms, state, critical, detected_at, updated_at, stat_json, info_json)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'detected', ?, ?, ?, ?, ?)`)
      .run(key, key, rec.serial, rec.fileName, rec.relPath, rec.bay, rec.size, Math.floor(rec.mtimeMs), rec.critical ? 1 : 0, now, now, JSON.stringify(rec.stat),
        JSON.stringify(rec.recordedAt === undefined ? {} : { recordedAt: rec.recordedAt }));
    this.event(key, 'detected', `${rec.bay}/${rec.relPath}`);
    return this.get(key)!;
  }

  /** Where a known row's file is now (another bay), and the stat snapshot it vouches for. */
  relocate(keyOrRow: string | RecordingRow, bay: string, stat: StatSnapshot | undefined, now = this.clock.now()): RecordingRow {
    const current = typeof keyOrRow === 'string' ? this.get(keyOrRow) : keyOrRow;
    if (!current) throw new Error(`journal has no recording ${String(keyOrRow)}`);
    const key = current.key;
    if (current.bay !== bay || (stat && !sameSnapshot(current.stat, stat))) {
      const statJson = stat ? JSON.stringify(stat) : current.stat ? JSON.stringify(current.stat) : null;
      // mtime follows the snapshot (the wipe compares it); size never does: a plan is for one size.
      this.stmt('UPDATE recordings SET bay = ?, stat_json = ?, mtime_ms = ?, updated_at = ? WHERE key = ?')
        .run(bay, statJson, stat ? Math.floor(stat.mtimeMs) : current.mtimeMs, now, key);
      return this.get(key)!;
    }
    return current;
  }

  /**
   * A completed row whose file is on a docked camera now: its age for the retention rule starts
   * again, so a camera that keeps its recordings and comes back every shift never loses their rows
   * (a pruned row's file docked again would be hashed and sent again). At most one write per row
   * per SEEN_REFRESH_MS, not one per scan.
   */
  markSeen(row: RecordingRow, now = this.clock.now()): void {
    if (row.state !== 'completed' || now - row.updatedAt < SEEN_REFRESH_MS) return;
    this.stmt('UPDATE recordings SET updated_at = ? WHERE key = ?').run(now, row.key);
  }

  /**
   * A transition that allows no irreversible act and is cheap to redo (a junk file's `not_media`
   * quarantine): committed without its own fsync (WAL, synchronous=NORMAL for this one commit);
   * the next durable commit makes it durable too. Lost on power loss = probed again.
   */
  transitionLazy(key: string, state: JobState, fields: Parameters<Journal['transition']>[2] = {}): RecordingRow {
    if (this.db.inTransaction) return this.transition(key, state, fields);
    this.db.pragma('synchronous = NORMAL');
    try {
      return this.transition(key, state, fields);
    } finally {
      this.db.pragma('synchronous = FULL');
    }
  }

  /**
   * Move to a new state, merging facts into info; committed (fsync) before returning. Only the
   * moves of the state table (src/dock/states.ts) are accepted: anything else is a bug, refused.
   */
  transition(key: string, state: JobState, fields: { reason?: string | null; reasonCode?: string | null; info?: Record<string, unknown>; recordingId?: string; sha256?: string; manifestJson?: string; receiptJson?: string; stat?: StatSnapshot } = {}): RecordingRow {
    const tx = this.db.transaction(() => {
      const current = this.get(key);
      if (!current) throw new Error(`journal has no recording ${key}`);
      const info = fields.info ? { ...current.info, ...fields.info } : current.info;
      this.move(current, state, 'step', fields.reasonCode ? `${fields.reasonCode}: ${fields.reason ?? ''}` : fields.reason ?? null, () => {
        this.stmt(`UPDATE recordings SET state = ?, reason = ?, reason_code = ?, info_json = ?, recording_id = COALESCE(?, recording_id),
          sha256 = COALESCE(?, sha256), manifest_json = COALESCE(?, manifest_json), receipt_json = COALESCE(?, receipt_json), stat_json = COALESCE(?, stat_json),
          updated_at = ?, next_attempt_at = CASE WHEN ? IN (${FINAL_SQL}) THEN 0 ELSE next_attempt_at END WHERE key = ?`)
          .run(state, fields.reason === undefined ? current.reason : fields.reason,
            fields.reasonCode === undefined ? (state === 'quarantined' ? current.reasonCode : null) : fields.reasonCode, JSON.stringify(info), fields.recordingId ?? null,
            fields.sha256 ?? null, fields.manifestJson ?? null, fields.receiptJson ?? null, fields.stat ? JSON.stringify(fields.stat) : null, this.clock.now(), state, key);
      });
    });
    tx();
    return this.get(key)!;
  }

  /**
   * The one place a row's state changes (a step's transition, an operator's retry): the move is
   * checked against the state table, then written and logged. Called inside the caller's
   * transaction, so a refused move writes nothing.
   */
  private move(current: RecordingRow, to: JobState, kind: MoveKind, detail: string | null, write: () => void, eventKind: string = to): void {
    if (!canTransition(current.state, to, kind)) throw new IllegalTransitionError(current.state, to, current.key, kind);
    write();
    this.event(current.key, eventKind, detail);
  }

  /** The plan replaces any earlier one (a job re-planned from scratch loses its acks by design). */
  setPlan(key: string, segments: Array<{ index: number; offset: number; length: number; startTime?: number; endTime?: number }>, info: Record<string, unknown>): RecordingRow {
    const tx = this.db.transaction(() => {
      this.stmt('DELETE FROM segments WHERE rkey = ?').run(key);
      const insert = this.stmt('INSERT INTO segments (rkey, idx, offset, length, start_time, end_time) VALUES (?, ?, ?, ?, ?, ?)');
      for (const s of segments) insert.run(key, s.index, s.offset, s.length, s.startTime ?? null, s.endTime ?? null);
      this.transition(key, 'planned', { info });
    });
    tx();
    return this.get(key)!;
  }

  setSegmentHashes(key: string, hashes: string[]): void {
    const update = this.stmt('UPDATE segments SET sha256 = ? WHERE rkey = ? AND idx = ?');
    this.db.transaction(() => { hashes.forEach((h, i) => update.run(h, key, i)); })();
  }

  segments(key: string): SegmentRow[] {
    const rows = this.stmt('SELECT idx, offset, length, sha256, start_time, end_time, acked FROM segments WHERE rkey = ? ORDER BY idx').all(key) as
      Array<{ idx: number; offset: number; length: number; sha256: string | null; start_time: number | null; end_time: number | null; acked: number }>;
    return rows.map((r) => ({ index: r.idx, offset: r.offset, length: r.length, sha256: r.sha256, startTime: r.start_time, endTime: r.end_time, acked: r.acked === 1 }));
  }

  /**
   * The server acknowledged this segment: it is not sent again. Committed without an fsync of its
   * own (as transitionLazy): an ack lost to a power cut only means the segment is sent again (the
   * server's list of what it misses is adopted before any PUT), while an fsync per segment held
   * the event loop every upload shares for 0.4-2.9 s per GB (docs/benchmarks.md).
   */
  ackSegment(key: string, index: number): void {
    if (this.db.inTransaction) { this.stmt('UPDATE segments SET acked = 1 WHERE rkey = ? AND idx = ?').run(key, index); return; }
    this.db.pragma('synchronous = NORMAL');
    try {
      this.stmt('UPDATE segments SET acked = 1 WHERE rkey = ? AND idx = ?').run(key, index);
    } finally {
      this.db.pragma('synchronous = FULL');
    }
  }

  /** Server's view wins: segments it reports missing are un-acked (e.g. its store lost them). */
  reconcileMissing(key: string, missing: readonly number[]): void {
    const missingSet = new Set(missing);
    const update = this.stmt('UPDATE segments SET acked = ? WHERE rkey = ? AND idx = ?');
    this.db.transaction(() => {
      for (const s of this.segments(key)) update.run(missingSet.has(s.index) ? 0 : 1, key, s.index);
    })();
  }

  /** Drop a recording that turned out not to be finished (it grew again): it is detected afresh when it settles. */
  forget(key: string): void {
    this.db.transaction(() => {
      this.stmt('DELETE FROM segments WHERE rkey = ?').run(key);
      this.stmt('DELETE FROM recordings WHERE key = ?').run(key);
    })();
    this.event(key, 'forgotten', 'file grew after it had settled');
  }

  scheduleRetry(key: string, delayMs: number, error: string): RecordingRow {
    this.stmt('UPDATE recordings SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?, updated_at = ? WHERE key = ?')
      .run(this.clock.now() + Math.max(0, Math.floor(delayMs)), error, this.clock.now(), key);
    this.event(key, 'retry', error);
    return this.get(key)!;
  }

  /** An open upload set aside (its file's path holds another camera's file): why, on the row until its job next succeeds (clearRetry). */
  noteSetAside(key: string, why: string): void {
    this.stmt('UPDATE recordings SET last_error = ?, updated_at = ? WHERE key = ?').run(why, this.clock.now(), key);
    this.event(key, 'set_aside', why);
  }

  /** Every row in backoff becomes due now (a reload: the operator fixed what the retries waited on); how many. */
  retryNow(): number {
    return this.stmt('UPDATE recordings SET next_attempt_at = 0 WHERE next_attempt_at > 0').run().changes;
  }

  clearRetry(key: string): void {
    this.stmt('UPDATE recordings SET next_attempt_at = 0, last_error = NULL WHERE key = ? AND (next_attempt_at <> 0 OR last_error IS NOT NULL)').run(key);
  }

  /**
   * Rows a person should look at (`bodycam quarantine list`): quarantined ones, and ingested ones
   * with an integrity flag, a truncation or unreadable media (never wiped). Read in pages so history length costs no memory.
   */
  listNeedingAttention(afterRowid = 0, limit = 500): Array<RecordingRow & { rowid: number }> {
    // `+state` in the pages below: the walk follows its own index (updated_at, rowid), never the
    // state index, which would gather and sort every finished row to return one page.
    // INDEXED BY: the partial index holds only these rows (a year of clean history is not walked);
    // a change that made it unusable fails here, loudly, instead of turning into a table scan.
    return (this.stmt(`SELECT rowid, * FROM recordings INDEXED BY recordings_attention WHERE ${ATTENTION_SQL} AND rowid > ? ORDER BY rowid LIMIT ?`).all(afterRowid, limit) as Array<RawRecording & { rowid: number }>)
      .map((raw) => ({ ...toRow(raw), rowid: raw.rowid }));
  }

  /** Receipted rows (completed or wiped), a page at a time (`bodycam check`). */
  listReceipted(afterRowid = 0, limit = 500): Array<RecordingRow & { rowid: number }> {
    return (this.stmt(`SELECT rowid, * FROM recordings WHERE rowid > ? AND +state IN (${RECEIPTED_SQL}) AND recording_id IS NOT NULL ORDER BY rowid LIMIT ?`)
      .all(afterRowid, limit) as Array<RawRecording & { rowid: number }>).map((raw) => ({ ...toRow(raw), rowid: raw.rowid }));
  }

  /** Rows whose key, recording id or path on the card (relPath, or bay/relPath) is `ref`. */
  findByRef(ref: string): RecordingRow[] {
    // A bay is one folder name: "bay/rel/path" splits at the first slash. Each arm is one index lookup.
    const slash = ref.indexOf('/');
    const [bay, bayPath] = slash > 0 ? [ref.slice(0, slash), ref.slice(slash + 1)] : [null, null];
    return (this.stmt(`SELECT * FROM recordings WHERE rowid IN (SELECT rowid FROM recordings WHERE key = ? UNION SELECT rowid FROM recordings WHERE recording_id = ?
      UNION SELECT rowid FROM recordings WHERE rel_path = ? UNION SELECT rowid FROM recordings WHERE rel_path = ? AND bay = ?) ORDER BY detected_at, key`)
      .all(ref, ref, ref, bayPath, bay) as RawRecording[]).map(toRow);
  }

  /**
   * Put a quarantined row back to the start (`bodycam quarantine retry`), in one transaction that
   * only succeeds while the row is still quarantined: safe beside a running agent, which never
   * works a quarantined row and reads its rows afresh from here on every scheduling round. The
   * row gets a fresh uid, so the retry is a new recording id on the server (the old attempt's
   * partial upload or rejected manifest cannot collide with it); the stat snapshot is kept, so
   * the next scan finds the file for it.
   */
  requeueQuarantined(key: string, why: string): boolean {
    return this.db.transaction(() => {
      const current = this.get(key);
      // Nothing to retry: the row is gone, or in a state the table allows no retry from (a second retry won).
      if (!current || !canTransition(current.state, 'detected', 'retry')) return false;
      this.move(current, 'detected', 'retry', why, () => {
        this.stmt(`UPDATE recordings SET state = ?, reason = NULL, reason_code = NULL, recording_id = NULL, sha256 = NULL,
          manifest_json = NULL, receipt_json = NULL, attempts = 0, next_attempt_at = 0, last_error = NULL, uid = lower(hex(randomblob(8))), updated_at = ?,
          info_json = json_object('recordedAt', json_extract(info_json, '$.recordedAt'), 'retriedFrom', reason_code)
          WHERE key = ?`).run('detected', this.clock.now(), key);
        this.stmt('DELETE FROM segments WHERE rkey = ?').run(key);
      }, 'retry-requested');
      return true;
    // IMMEDIATE: the write lock is taken before the row is read (busy_timeout waits for it), so a
    // running agent's commit cannot land between the check and the write (nor fail it as a stale read).
    }).immediate();
  }

  /**
   * Finished rows (wiped, or completed) last changed before `before`, that need no person (not
   * quarantined, not flagged), oldest first, after the cursor: the retention rule's candidates
   * (src/dock/retention.ts). Walks the updated_at index from its old end, so a page costs its rows.
   */
  listPrunable(before: number, after: { updatedAt: number; rowid: number }, limit: number): PrunableRow[] {
    return (this.stmt(`SELECT rowid, key, state, serial, rel_path AS relPath, bay, recording_id AS recordingId, sha256, detected_at AS detectedAt, updated_at AS updatedAt,
      receipt_json AS receiptJson FROM recordings WHERE updated_at < ? AND (updated_at, rowid) > (?, ?) AND +state IN (${RECEIPTED_SQL}) AND COALESCE(${ATTENTION_SQL}, 0) = 0
      ORDER BY updated_at, rowid LIMIT ?`).all(before, after.updatedAt, after.rowid, limit) as PrunableRow[]);
  }

  /**
   * Delete these rows and their segments, in one transaction, each only while it is still finished
   * and unchanged since `before` (a row that moved on since it was listed stays). Returns the keys deleted.
   */
  deleteFinished(keys: readonly string[], before: number): string[] {
    const select = this.stmt(`SELECT key FROM recordings WHERE key = ? AND updated_at < ? AND state IN (${RECEIPTED_SQL}) AND COALESCE(${ATTENTION_SQL}, 0) = 0`);
    const deleted: string[] = [];
    this.db.transaction(() => {
      for (const key of keys) {
        if (!select.get(key, before)) continue;
        this.stmt('DELETE FROM segments WHERE rkey = ?').run(key);
        this.stmt('DELETE FROM recordings WHERE key = ?').run(key);
        deleted.push(key);
      }
      if (deleted.length) this.event(null, 'pruned', `${deleted.length} finished row(s) past the retention period`);
    })();
    return deleted;
  }

  /**
   * EXPLAIN QUERY PLAN of every statement this journal has prepared so far (parameters bound to
   * null): test/dock/journalPlans.test.ts asserts none of them scans a table that grows with history.
   */
  queryPlans(): Array<{ sql: string; plan: string[] }> {
    return [...this.statements.keys()].map((sql) => {
      const params = (sql.match(/\?/g) ?? []).map(() => null);
      const plan = (this.db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as Array<{ detail: string }>).map((r) => r.detail);
      return { sql: sql.replace(/\s+/g, ' '), plan };
    });
  }

  event(key: string | null, kind: string, detail: string | null): void {
    this.stmt('INSERT INTO events (time, rkey, kind, detail) VALUES (?, ?, ?, ?)').run(this.clock.now(), key, kind, detail);
    if (++this.eventsSincePrune >= 100) {
      this.eventsSincePrune = 0;
      this.stmt('DELETE FROM events WHERE id <= (SELECT MAX(id) FROM events) - ?').run(EVENTS_KEPT);
    }
  }

  eventCount(): number {
    return (this.stmt('SELECT COUNT(*) AS n FROM events').get() as { n: number }).n;
  }

  recentEvents(limit = 50): Array<{ time: number; key: string | null; kind: string; detail: string | null }> {
    return (this.stmt('SELECT time, rkey AS key, kind, detail FROM events ORDER BY id DESC LIMIT ?').all(limit) as
      Array<{ time: number; key: string | null; kind: string; detail: string | null }>);
  }
}
