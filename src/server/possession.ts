/**
 * Which dock has proved it holds which segment bytes. Blobs are shared by hash
 * across docks (a duplicate is stored once), but "held" must not be: a dock that
 * merely knew a hash (from a sidecar or a receipt) could otherwise plan a
 * recording around another dock's blobs, be told nothing is missing, earn a
 * receipt and read the footage back. A dock possesses a hash only after one of
 * its own PUTs of those bytes passed the digest check.
 *
 * Losing a row (a crash before it is durable) only makes a segment "missing"
 * for that dock again, and the dock re-sends it: the safe direction.
 */
import Database from 'better-sqlite3';
import type { PossessionStore } from './state.js';

/** The embedded backend: possession.sqlite in the data dir (the PostgreSQL one is in pg/). */
export class Possession implements PossessionStore {
  private constructor(
    private readonly db: Database.Database,
    private readonly hasStmt: Database.Statement<[string, string]>,
    private readonly addStmt: Database.Statement<[string, string]>,
    private readonly expectStmt: Database.Statement<[string, string, string]>,
    private readonly doneStmt: Database.Statement<[string, string]>,
    private readonly forgetStmt: Database.Statement<[string, string, string, string]>,
  ) {}

  static open(path: string): Possession {
    const db = new Database(path);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.exec('CREATE TABLE IF NOT EXISTS held (dock_id TEXT NOT NULL, sha256 TEXT NOT NULL, PRIMARY KEY (dock_id, sha256)) WITHOUT ROWID');
    // What each receiving recording's plan needs: a row of `held` stays while one expects it.
    db.exec('CREATE TABLE IF NOT EXISTS expected (dock_id TEXT NOT NULL, sha256 TEXT NOT NULL, recording_id TEXT NOT NULL, PRIMARY KEY (dock_id, sha256, recording_id)) WITHOUT ROWID');
    db.exec('CREATE INDEX IF NOT EXISTS expected_by_recording ON expected (dock_id, recording_id)');
    return new Possession(db,
      db.prepare('SELECT 1 FROM held WHERE dock_id = ? AND sha256 = ?'),
      db.prepare('INSERT OR IGNORE INTO held (dock_id, sha256) VALUES (?, ?)'),
      db.prepare('INSERT OR IGNORE INTO expected (dock_id, sha256, recording_id) VALUES (?, ?, ?)'),
      db.prepare('DELETE FROM expected WHERE dock_id = ? AND recording_id = ?'),
      db.prepare('DELETE FROM held WHERE dock_id = ? AND sha256 = ? AND NOT EXISTS (SELECT 1 FROM expected WHERE dock_id = ? AND sha256 = ?)'));
  }

  async has(dockId: string, sha256: string): Promise<boolean> {
    return this.hasStmt.get(dockId, sha256) !== undefined;
  }

  async add(dockId: string, sha256: string): Promise<void> {
    this.addStmt.run(dockId, sha256);
  }

  async expect(dockId: string, recordingId: string, sha256s: readonly string[]): Promise<void> {
    this.db.transaction(() => { for (const sha of sha256s) this.expectStmt.run(dockId, sha, recordingId); })();
  }

  async forget(dockId: string, recordingId: string, sha256s: readonly string[]): Promise<void> {
    this.db.transaction(() => {
      this.doneStmt.run(dockId, recordingId);
      for (const sha of sha256s) this.forgetStmt.run(dockId, sha, dockId, sha);
    })();
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}
