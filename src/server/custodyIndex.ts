/**
 * Which subjects the custody log already mentions (a recording's `recording-created`, a blob's
 * `segment-stored`, …), so that the server can tell in one lookup whether a stored item still
 * lacks its entry. It is a cache of the log, never a source of truth: it records how far into the
 * log it has read (seq and byte offset) in the same transaction as the subjects, and whatever a
 * crash or power cut lost is read again from the log at the next open.
 */
import Database from 'better-sqlite3';
import type { CustodyEvent } from './custodyLog.js';

const SUBJECT_VERSION = 1;

export interface Mention {
  event: CustodyEvent;
  subject: string;
}

export interface IndexPosition {
  /** seq of the last entry indexed (0: none). */
  seq: number;
  /** Byte offset in the log just past that entry's newline. */
  offset: number;
}

export class CustodyIndex {
  private readonly hasStatement: Database.Statement<[string, string], unknown>;
  private readonly insertStatement: Database.Statement<[string, string]>;
  private readonly positionStatement: Database.Statement<[], { seq: number; offset: number }>;
  private readonly movePosition: Database.Statement<[number, number]>;

  private constructor(private readonly db: Database.Database) {
    // A cache: losing the last transactions to a power cut only means reading a little more of the log.
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.exec(`
      CREATE TABLE IF NOT EXISTS mentions (event TEXT NOT NULL, subject TEXT NOT NULL, PRIMARY KEY (event, subject)) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS position (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL, byte_offset INTEGER NOT NULL);
      INSERT OR IGNORE INTO position (id, seq, byte_offset) VALUES (1, 0, 0);
    `);
    this.hasStatement = db.prepare('SELECT 1 FROM mentions WHERE event = ? AND subject = ?');
    this.insertStatement = db.prepare('INSERT OR IGNORE INTO mentions (event, subject) VALUES (?, ?)');
    this.positionStatement = db.prepare('SELECT seq, byte_offset AS offset FROM position WHERE id = 1');
    this.movePosition = db.prepare('UPDATE position SET seq = ?, byte_offset = ? WHERE id = 1');
  }

  static open(path: string): CustodyIndex {
    const index = new CustodyIndex(new Database(path));
    // Version 1: recording subjects are `<dockId>/<recordingId>` (recordings are namespaced per
    // dock). An older index is rebuilt from the log, which it only caches.
    if ((index.db.pragma('user_version', { simple: true }) as number) < SUBJECT_VERSION) {
      index.clear();
      index.db.pragma(`user_version = ${SUBJECT_VERSION}`);
    }
    return index;
  }

  position(): IndexPosition {
    return this.positionStatement.get()!;
  }

  /** The subjects of the entries up to `position`, in one transaction with the new position. */
  record(mentions: readonly Mention[], position: IndexPosition): void {
    this.db.transaction(() => {
      for (const m of mentions) this.insertStatement.run(m.event, m.subject);
      this.movePosition.run(position.seq, position.offset);
    })();
  }

  has(event: CustodyEvent, subject: string): boolean {
    return this.hasStatement.get(event, subject) !== undefined;
  }

  /** Forget everything (the log no longer matches the index: it is rebuilt from the start). */
  clear(): void {
    this.db.transaction(() => {
      this.db.prepare('DELETE FROM mentions').run();
      this.movePosition.run(0, 0);
    })();
  }

  close(): void {
    this.db.close();
  }
}
