/**
 * Which subjects the custody log already mentions (a recording's `recording-created`, a blob's
 * `segment-stored`, …), so that the server can tell in one lookup whether a stored item still
 * lacks its entry, and where each recording's `receipt-issued` entry is (so a receipt is issued
 * once: a `complete` retried after a failure returns the receipt that entry records). It is a
 * cache of the log, never a source of truth: it records how far into the log it has read (seq and
 * byte offset) in the same transaction as the subjects, and whatever a crash or power cut lost is
 * read again from the log at the next open (or the next append, after a write failed).
 */
import Database from 'better-sqlite3';
import type { CustodyEvent } from './custodyLog.js';

export interface Mention {
  event: CustodyEvent;
  subject: string;
}

/** A `receipt-issued` entry: whose recording, and where the line ends in the log. */
export interface ReceiptMention {
  dockId: string;
  recordingId: string;
  seq: number;
  /** Byte offset just past the entry's newline. */
  end: number;
}

/** Where an entry about a subject is in the log: 'rec:<dock>/<id>' for every entry, 'blob:<sha256>' too for segment-stored. */
export interface AboutRow {
  subject: string;
  seq: number;
  /** Byte offset of the line in the log, and its length without the newline. */
  start: number;
  length: number;
}

/** The subjects an entry is about (the console's custody timeline looks a recording up by them). */
export function aboutSubjects(entry: { event: string; dockId: string; recordingId: string; sha256: string }): string[] {
  const subjects = [`rec:${entry.dockId}/${entry.recordingId}`];
  if (entry.event === 'segment-stored') subjects.push(`blob:${entry.sha256}`);
  return subjects;
}

export interface IndexPosition {
  /** seq of the last entry indexed (0: none). */
  seq: number;
  /** Byte offset in the log just past that entry's newline. */
  offset: number;
}

/** Bumped when what the index holds changes: an older index is rebuilt from the log. */
const SCHEMA_VERSION = 4; // 4: a segment-stored mention is the recording and the blob (custodyLog.ts mentionOf)

export class CustodyIndex {
  private readonly hasStatement: Database.Statement<[string, string], unknown>;
  private readonly insertStatement: Database.Statement<[string, string]>;
  private readonly insertReceipt: Database.Statement<[string, string, number, number]>;
  private readonly receiptStatement: Database.Statement<[string, string], { seq: number; end: number }>;
  private readonly insertAbout: Database.Statement<[string, number, number, number]>;
  private readonly aboutStatement: Database.Statement<[string, number], { seq: number; start: number; length: number }>;
  private readonly positionStatement: Database.Statement<[], { seq: number; offset: number }>;
  private readonly movePosition: Database.Statement<[number, number]>;

  private constructor(private readonly db: Database.Database) {
    // A cache: losing the last transactions to a power cut only means reading a little more of the log.
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    if ((db.pragma('user_version', { simple: true }) as number) !== SCHEMA_VERSION) {
      db.exec(`DROP TABLE IF EXISTS mentions; DROP TABLE IF EXISTS receipts; DROP TABLE IF EXISTS position; DROP TABLE IF EXISTS about; PRAGMA user_version = ${SCHEMA_VERSION};`);
    }
    db.exec(`
      CREATE TABLE IF NOT EXISTS mentions (event TEXT NOT NULL, subject TEXT NOT NULL, PRIMARY KEY (event, subject)) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS receipts (dock_id TEXT NOT NULL, recording_id TEXT NOT NULL, seq INTEGER NOT NULL, byte_end INTEGER NOT NULL, PRIMARY KEY (dock_id, recording_id)) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS about (subject TEXT NOT NULL, seq INTEGER NOT NULL, byte_start INTEGER NOT NULL, byte_length INTEGER NOT NULL, PRIMARY KEY (subject, seq)) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS position (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL, byte_offset INTEGER NOT NULL);
      INSERT OR IGNORE INTO position (id, seq, byte_offset) VALUES (1, 0, 0);
    `);
    this.hasStatement = db.prepare('SELECT 1 FROM mentions WHERE event = ? AND subject = ?');
    this.insertStatement = db.prepare('INSERT OR IGNORE INTO mentions (event, subject) VALUES (?, ?)');
    // The first receipt-issued entry of a recording is its receipt (a log written before receipts were idempotent may hold two).
    this.insertReceipt = db.prepare('INSERT OR IGNORE INTO receipts (dock_id, recording_id, seq, byte_end) VALUES (?, ?, ?, ?)');
    this.receiptStatement = db.prepare('SELECT seq, byte_end AS end FROM receipts WHERE dock_id = ? AND recording_id = ?');
    this.insertAbout = db.prepare('INSERT OR IGNORE INTO about (subject, seq, byte_start, byte_length) VALUES (?, ?, ?, ?)');
    this.aboutStatement = db.prepare("SELECT DISTINCT seq, byte_start AS start, byte_length AS length FROM about WHERE subject IN (SELECT value FROM json_each(?)) ORDER BY seq LIMIT ?");
    this.positionStatement = db.prepare('SELECT seq, byte_offset AS offset FROM position WHERE id = 1');
    this.movePosition = db.prepare('UPDATE position SET seq = ?, byte_offset = ? WHERE id = 1');
  }

  static open(path: string): CustodyIndex {
    const db = new Database(path);
    try {
      return new CustodyIndex(db);
    } catch (error) {
      db.close();
      throw error;
    }
  }

  position(): IndexPosition {
    return this.positionStatement.get()!;
  }

  /** The subjects of the entries up to `position`, in one transaction with the new position. */
  record(mentions: readonly Mention[], receipts: readonly ReceiptMention[], position: IndexPosition, about: readonly AboutRow[] = []): void {
    this.db.transaction(() => {
      for (const m of mentions) this.insertStatement.run(m.event, m.subject);
      for (const a of about) this.insertAbout.run(a.subject, a.seq, a.start, a.length);
      for (const r of receipts) this.insertReceipt.run(r.dockId, r.recordingId, r.seq, r.end);
      this.movePosition.run(position.seq, position.offset);
    })();
  }

  has(event: CustodyEvent, subject: string): boolean {
    return this.hasStatement.get(event, subject) !== undefined;
  }

  /** Where the recording's `receipt-issued` entry is, if the log has one. */
  receipt(dockId: string, recordingId: string): { seq: number; end: number } | undefined {
    return this.receiptStatement.get(dockId, recordingId);
  }

  /** Where the entries about any of `subjects` are, in chain order, at most `limit`. */
  about(subjects: readonly string[], limit: number): Array<{ seq: number; start: number; length: number }> {
    return this.aboutStatement.all(JSON.stringify(subjects), limit);
  }

  /** Forget everything (the log no longer matches the index: it is rebuilt from the start). */
  clear(): void {
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM mentions').run();
      this.db.prepare('DELETE FROM receipts').run();
      this.db.prepare('DELETE FROM about').run();
      this.movePosition.run(0, 0);
    })();
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
