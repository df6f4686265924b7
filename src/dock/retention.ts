/**
 * The retention rule for finished journal rows (docs/dock.md, "Retention"): a row that is wiped,
 * or completed with its camera not docked, and needs no person (not quarantined, not flagged),
 * leaves the journal `retainFinished` seconds after its last change (a completed row's file seen on a
 * docked camera counts as one: Journal.markSeen, at most daily). Its receipt goes first, to a
 * JSON-lines file in <stateDir>/receipts-archive/ (written atomically and fsynced before the row
 * is deleted), which `bodycam server verify-log --receipts <stateDir>` reads with the journal.
 *
 * Why it is safe for evidence: a wiped row never matches a file present now (identity.ts), so its
 * absence changes no decision; a completed row's file that is docked again after its row was
 * pruned is a new row, hashed again and sent as a new recording (the server forgot this dock's
 * possession at the first receipt, so the bytes travel again; it stores them once) with a new
 * receipt. No file is wiped without the receipt and proof of possession of its own row.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../util/atomicFile.js';
import type { Journal, PrunableRow } from './journal.js';

/** Folder of the archived receipts, inside the state folder. */
export const RECEIPTS_ARCHIVE = 'receipts-archive';
/** Rows per page: one archive file, one transaction, then the event loop gets a turn. */
export const PRUNE_PAGE = 2000;

export interface PruneOptions {
  journal: Journal;
  stateDir: string;
  /** Seconds a finished row is kept after its last change; 0 keeps every row. */
  retainSeconds: number;
  now: number;
  /** A row whose file is on a docked camera (or at work) now: never pruned, whatever its age. */
  inUse: (key: string) => boolean;
  /** Give the event loop a turn between pages (the agent); tests may leave it out. */
  yieldTurn?: () => Promise<void>;
  /** Checked after each turn: the agent is stopping (the rest waits for the next run). */
  stopping?: () => boolean;
}

export interface PruneResult { pruned: number; kept: number; archives: string[] }

/** One line of an archive file: the receipt, and what the row was (verify-log reads `receipt`). */
function archiveLine(row: PrunableRow, prunedAt: number): string {
  let receipt: unknown = null;
  try { receipt = row.receiptJson ? JSON.parse(row.receiptJson) as unknown : null; } catch { receipt = row.receiptJson; }
  return JSON.stringify({
    receipt, key: row.key, state: row.state, serial: row.serial, relPath: row.relPath, bay: row.bay, recordingId: row.recordingId,
    sha256: row.sha256, detectedAt: new Date(row.detectedAt).toISOString(), updatedAt: new Date(row.updatedAt).toISOString(), prunedAt: new Date(prunedAt).toISOString(),
  });
}

/**
 * Apply the rule once, a page at a time. The archive file of a page is named by its rows (first
 * and last rowid), so a crash between its write and the delete rewrites the same file the next
 * time instead of leaving a second copy of those receipts.
 */
export async function pruneFinished(options: PruneOptions): Promise<PruneResult> {
  const { journal, stateDir, retainSeconds, now, inUse } = options;
  const result: PruneResult = { pruned: 0, kept: 0, archives: [] };
  if (!(retainSeconds > 0)) return result;
  const before = now - retainSeconds * 1000;
  const folder = join(stateDir, RECEIPTS_ARCHIVE);
  let cursor = { updatedAt: -Infinity, rowid: 0 };
  for (;;) {
    const page = journal.listPrunable(before, cursor, PRUNE_PAGE);
    if (page.length === 0) break;
    const last = page[page.length - 1]!;
    cursor = { updatedAt: last.updatedAt, rowid: last.rowid };
    // Checked here, in the same turn as the delete: no scan can locate a row between the two.
    const rows = page.filter((r) => !inUse(r.key));
    result.kept += page.length - rows.length;
    if (rows.length) {
      mkdirSync(folder, { recursive: true, mode: 0o700 });
      const path = join(folder, `pruned-${rows[0]!.rowid}-${rows[rows.length - 1]!.rowid}.jsonl`);
      writeFileAtomic(path, rows.map((r) => archiveLine(r, now)).join('\n') + '\n', 0o600);
      result.archives.push(path);
      result.pruned += journal.deleteFinished(rows.map((r) => r.key), before).length;
    }
    if (page.length < PRUNE_PAGE) break;
    await options.yieldTurn?.();
    if (options.stopping?.()) break;
  }
  return result;
}
