/**
 * What is on the docked cameras and what the journal says of each file, read without changing
 * anything: the walk `bodycam dock --dry-run` and `bodycam check` share. The bays are read as the
 * agent reads them (storage.ts: the same walker, DEVICE.json, sidecars); the journal, if there is
 * one, only read-only (Journal.openReadOnly). No lock is taken: both may run beside a dock.
 */
import { listBaysFolder, openBay } from './bays.js';
import { listCameraFiles, type CandidateFile, type DeviceInfo, type SkipCode, type SkippedPath } from '../protocol/cameraStorage/index.js';
import { rowFor, standsForAFile, type RowDecision } from './identity.js';
import type { Journal, StatSnapshot } from './journal.js';

export interface CardFile {
  bay: string;
  serial: string;
  cameraRoot: string;
  file: CandidateFile;
  stat: StatSnapshot;
  device?: DeviceInfo;
  deviceProblem?: string;
}

export interface BayListing {
  bay: string;
  /** null: empty bay, or a bay folder that is a symlink (never followed). */
  serial: string | null;
  skipped: SkippedPath[];
  skippedCount: number;
  /** How many were left alone per reason (skipped lists at most the walker's first 200). */
  skippedByCode: Partial<Record<SkipCode, number>>;
}

export interface Inventory { files: CardFile[]; bays: BayListing[] }

/** Every recording file on every docked camera, with what the walker left alone per bay. */
export async function walkBays(bays: string): Promise<Inventory> {
  const files: CardFile[] = [];
  const listings: BayListing[] = [];
  for (const entry of await listBaysFolder(bays)) {
    if (entry.kind === 'ignored') continue; // not a bay: nothing of it is read or reported per bay (the agent logs it once)
    const { name } = entry;
    if (entry.kind === 'symlink') { listings.push({ bay: name, serial: null, skipped: [entry.skipped], skippedCount: 1, skippedByCode: { [entry.skipped.code]: 1 } }); continue; }
    const contents = await openBay(entry.root);
    if (contents.kind === 'symlink') continue; // became a symlink since the listing: the next walk shows it
    if (contents.kind === 'noCamera') { listings.push({ bay: name, serial: null, skipped: [], skippedCount: 0, skippedByCode: {} }); continue; }
    const { reading, device, serial } = contents;
    const root = entry.root;
    const listing = await listCameraFiles(root);
    listings.push({ bay: name, serial, skipped: listing.skipped, skippedCount: listing.skippedCount, skippedByCode: listing.skippedByCode });
    for (const file of listing.files) {
      files.push({
        bay: name, serial, cameraRoot: root, file, stat: { ...file.stat, sidecar: file.sidecarStat ?? null },
        ...(device ? { device } : {}), ...(reading.kind === 'invalid' ? { deviceProblem: reading.reason } : {}),
      });
    }
  }
  return { files, bays: listings };
}

/**
 * Which journal row the agent would take the file for (docs/dock.md "Identity"), read-only: the
 * agent's own rule (identity.ts rowFor) over the rows at that path; `changedAfterHash` is a hashed
 * upload whose file was rewritten since (the agent closes it as file_changed and the file is a new
 * version), `verify` the receipted rows whose bytes the file may still be (re-hash to know).
 */
export type JournalMatch = RowDecision;

export function matchJournal(journal: Journal | undefined, card: CardFile): JournalMatch {
  if (!journal) return { kind: 'new' };
  return rowFor(journal.listByPath(card.serial, card.file.relPath).filter(standsForAFile), card.file, card.stat);
}
