/**
 * The bays folder, one level above the cameras: which of its entries is a bay, what is left alone
 * and why, and whether a camera is docked in a bay. The agent's watcher (watcher.ts) and the
 * read-only walk of `--dry-run` and `bodycam check` (inventory.ts) both read the bays here, so
 * they cannot disagree about one; what on a docked camera is a recording is the camera-storage
 * walker's job (src/protocol/cameraStorage/walk.ts), never this module's.
 *
 * Nothing is left alone silently: a symlinked bay is shown as the bay's attention, and every other
 * entry that is not a bay comes back with its reason (the agent logs it once).
 */
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { NO_SERIAL, readDevice, SKIP_CODES, type DeviceInfo, type DeviceReading, type SkippedPath } from '../protocol/cameraStorage/index.js';

export type BayEntry =
  /** A folder: a bay (a camera may or may not be docked in it: openBay says). */
  | { kind: 'bay'; name: string; root: string }
  /** A symlink where a bay should be: never followed (it could lead anywhere on the host), shown as the bay's attention. */
  | { kind: 'symlink'; name: string; root: string; skipped: SkippedPath }
  /** Not a bay, left alone: a hidden name or something that is not a folder. */
  | { kind: 'ignored'; name: string; reason: string };

/** What a symlinked bay shows (status, `--dry-run`): the one text for it. */
export const SYMLINKED_BAY: SkippedPath = {
  path: '.', code: SKIP_CODES.symlink, reason: 'the bay folder is a symbolic link: not followed; mount the camera at the bay path itself',
};

/**
 * The entries of the bays folder, by name. Throws when the folder cannot be read (the caller says
 * what that means: the agent keeps running and says so, a dry run refuses). An entry gone between
 * the listing and its lstat is not there: a bay undocked meanwhile.
 */
export async function listBaysFolder(bays: string): Promise<BayEntry[]> {
  const entries: BayEntry[] = [];
  for (const name of (await readdir(bays)).sort()) {
    // Hidden names are the host's, never a bay an operator made: a desktop's .Trash-1000, .DS_Store, an editor's swap file.
    if (name.startsWith('.')) { entries.push({ kind: 'ignored', name, reason: 'hidden name: not a bay' }); continue; }
    const root = join(bays, name);
    const stats = await lstat(root).catch(() => undefined);
    if (!stats) continue;
    if (stats.isSymbolicLink()) entries.push({ kind: 'symlink', name, root, skipped: SYMLINKED_BAY });
    else if (stats.isDirectory()) entries.push({ kind: 'bay', name, root });
    else entries.push({ kind: 'ignored', name, reason: 'not a folder: not a bay (a camera is mounted as a folder of the bays folder)' });
  }
  return entries;
}

export type BayContents =
  /** The bay path is a symlink now: not read (listBaysFolder shows it). */
  | { kind: 'symlink' }
  /** Gone, not a folder, or an empty folder: no camera docked. */
  | { kind: 'noCamera' }
  /** Something is docked: its DEVICE.json as read (a camera without one is serial `unknown`). */
  | { kind: 'camera'; serial: string; reading: DeviceReading; device?: DeviceInfo };

/** Whether a camera is docked in a bay, and which (its DEVICE.json, read tolerantly). */
export async function openBay(root: string): Promise<BayContents> {
  const stats = await lstat(root).catch(() => undefined);
  if (stats?.isSymbolicLink()) return { kind: 'symlink' };
  const entries = stats?.isDirectory() ? await readdir(root).catch(() => [] as string[]) : [];
  if (entries.length === 0) return { kind: 'noCamera' };
  const reading = await readDevice(root);
  const device = reading.kind === 'ok' ? reading.device : undefined;
  return { kind: 'camera', serial: device?.serial ?? NO_SERIAL, reading, ...(device ? { device } : {}) };
}
