/**
 * What is on the docked cameras and what the journal says of each file, read without changing
 * anything: the walk `bodycam dock --dry-run` and `bodycam check` share. The bays are read as the
 * agent reads them (storage.ts: the same walker, DEVICE.json, sidecars); the journal, if there is
 * one, only read-only (Journal.openReadOnly). No lock is taken: both may run beside a dock.
 */
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { listCameraFiles, readDevice, type CandidateFile, type DeviceInfo, type SkippedPath } from '../protocol/cameraStorage/index.js';
import { ACTIVE_STATES, sameSnapshot, type Journal, type RecordingRow, type StatSnapshot } from './journal.js';

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
}

export interface Inventory { files: CardFile[]; bays: BayListing[] }

/** Every recording file on every docked camera, with what the walker left alone per bay. */
export async function walkBays(bays: string): Promise<Inventory> {
  const names = (await readdir(bays)).filter((n) => !n.startsWith('.')).sort();
  const files: CardFile[] = [];
  const listings: BayListing[] = [];
  for (const name of names) {
    const root = join(bays, name);
    const stats = await lstat(root).catch(() => undefined);
    if (!stats) continue;
    if (stats.isSymbolicLink()) {
      listings.push({ bay: name, serial: null, skipped: [{ path: '.', code: 'symlink', reason: 'the bay folder is a symbolic link: not followed' }], skippedCount: 1 });
      continue;
    }
    if (!stats.isDirectory()) continue;
    if ((await readdir(root).catch(() => [] as string[])).length === 0) { listings.push({ bay: name, serial: null, skipped: [], skippedCount: 0 }); continue; }
    const reading = await readDevice(root);
    const device = reading.kind === 'ok' ? reading.device : undefined;
    const serial = device?.serial ?? 'unknown';
    const listing = await listCameraFiles(root);
    listings.push({ bay: name, serial, skipped: listing.skipped, skippedCount: listing.skippedCount });
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
 * Which journal row the agent would take the file for (the read-only half of the agent's matchRow,
 * docs/dock.md "Identity"): the row vouching for this very stat snapshot; else the newest row still
 * at work on that path (`changedAfterHash` when it was hashed and the file rewritten since: the
 * agent closes it as file_changed and the file is a new version); else an old-journal quarantine by
 * size and mtime; else the receipted rows whose bytes the file may still be (`verify`: re-hash to
 * know); else none (`new`). A wiped row never matches.
 */
export type JournalMatch =
  | { kind: 'row'; row: RecordingRow; changedAfterHash?: false }
  | { kind: 'changedAfterHash'; row: RecordingRow }
  | { kind: 'verify'; rows: RecordingRow[] }
  | { kind: 'new' };

export function matchJournal(journal: Journal | undefined, card: CardFile): JournalMatch {
  if (!journal) return { kind: 'new' };
  const rows = journal.listByPath(card.serial, card.file.relPath).filter((r) => r.state !== 'wiped');
  const same = rows.find((r) => sameSnapshot(r.stat, card.stat));
  if (same) return { kind: 'row', row: same };
  const newest = rows[0];
  if (newest && ACTIVE_STATES.includes(newest.state)) {
    const was = newest.stat;
    const stat = card.stat;
    if ((newest.state === 'hashed' || newest.state === 'uploading') && was
      && (was.size !== stat.size || was.mtimeMs !== stat.mtimeMs || was.ino !== stat.ino || was.ctimeMs !== stat.ctimeMs)) return { kind: 'changedAfterHash', row: newest };
    return { kind: 'row', row: newest };
  }
  const oldQuarantined = rows.find((r) => r.state === 'quarantined' && r.stat === null && r.size === card.file.size && r.mtimeMs === card.file.mtimeMs);
  if (oldQuarantined) return { kind: 'row', row: oldQuarantined };
  const completed = rows.filter((r) => r.state === 'completed' && r.manifestJson);
  return completed.length ? { kind: 'verify', rows: completed } : { kind: 'new' };
}
