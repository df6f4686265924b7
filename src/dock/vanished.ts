/**
 * Rows whose file left a docked card by the camera's hand (docs/dock.md, "Vanished files"): a
 * file renamed, deleted or moved on the card while its row was still at work (detected … uploading,
 * a retry waiting after a full server disk or a dead server included). No scan finds such a row
 * again (rows follow serial + path), so left active it would count as queued work for ever. The
 * scan that listed the whole card closes it `quarantined` with the code `file_vanished` and what the
 * listing said: the row is kept (never deleted, never pruned), shown by `bodycam quarantine list`,
 * and a file now at another path (the renamed one) is a row of its own, ingested like any other.
 */
import type { SkippedPath } from '../protocol/cameraStorage/index.js';
import type { AgentState, BayInfo } from './agentState.js';
import { NO_SERIAL } from '../protocol/cameraStorage/index.js';
import { QUARANTINE_CODES } from './errors.js';
import type { ActiveRowRef, RecordingRow } from './journal.js';

/** A row closed because its file vanished stands for no file: a file at its path later is a new observation. */
export function isVanishedRow(row: Pick<RecordingRow, 'state' | 'reasonCode'>): boolean {
  return row.state === 'quarantined' && row.reasonCode === QUARANTINE_CODES.fileVanished;
}

/** What one complete scan of a bay saw: every path on the card it listed, read or left alone. */
export interface CardListing {
  readonly serial: string;
  /** Camera-relative paths of the files listed. */
  readonly files: ReadonlySet<string>;
  /** Paths left alone, with the reason (a row's file that became, say, a symlink is not "gone"). */
  readonly skipped: readonly SkippedPath[];
  /** False when the listing may have missed paths (an unreadable folder, a bound, a truncated skip list): nothing is closed then. */
  readonly complete: boolean;
}

/**
 * Which active rows of this card's camera the listing proves gone. A row is the card's to judge
 * when this bay's docking saw it, or, for a camera with its own serial, when no other bay holds
 * that camera now (a redock after the rename, a dock restarted since). Never a row another bay
 * located, nor one a job is running (the job pauses first; its rescan closes it).
 */
function vanishedRows(state: AgentState, bay: BayInfo, listing: CardListing): ActiveRowRef[] {
  if (!listing.complete) return [];
  const elsewhere = [...state.bays.values()].some((b) => b !== bay && b.present && b.serial === listing.serial);
  const judgeAll = listing.serial !== NO_SERIAL && !elsewhere;
  return state.journal.listActiveOfSerial(listing.serial).filter((row) => {
    if (!judgeAll && !bay.sessionKeys.has(row.key)) return false;
    if (listing.files.has(row.relPath) || state.running.has(row.key)) return false;
    const at = state.located.get(row.key);
    return !at || at.bay === bay.name;
  });
}

/** Whether this complete listing would close any row (the scan confirms the card is still there first). */
export function hasVanishedRows(state: AgentState, bay: BayInfo, listing: CardListing): boolean {
  return vanishedRows(state, bay, listing).length > 0;
}

/** Close the rows whose file this complete listing of the card no longer holds; returns how many. Synchronous: judged and closed in one step. */
export function closeVanishedRows(state: AgentState, bay: BayInfo, listing: CardListing): number {
  const rows = vanishedRows(state, bay, listing);
  for (const row of rows) {
    const skip = listing.skipped.find((s) => s.path === row.relPath);
    const reason = skip
      ? `${row.relPath} is no longer a file the dock reads on camera ${listing.serial} in ${bay.name} (${skip.code}: ${skip.reason}); the row was ${row.state}, not receipted`
      : `${row.relPath} is no longer on camera ${listing.serial} in ${bay.name} (renamed, moved or deleted on the card) while it was ${row.state}, not receipted: a file under another name is ingested as a recording of its own`;
    state.journal.transition(row.key, 'quarantined', { reason, reasonCode: QUARANTINE_CODES.fileVanished });
    if (state.located.get(row.key)?.bay === bay.name) state.located.delete(row.key);
    bay.keys.delete(row.key);
    if (state.config.once) state.vanishedThisRun.add(row.key);
    state.logger.warn('file vanished from the docked camera: row closed', { bay: bay.name, serial: listing.serial, file: row.relPath, was: row.state, recordingId: row.recordingId, reasonCode: QUARANTINE_CODES.fileVanished });
  }
  return rows.length;
}
