/**
 * The one walker of a camera's storage (docs/camera-storage.md): what the dock
 * ingests and what replay expects to arrive are the same list by construction.
 * It does not trust the card: symlinks are never followed (lstat; reported
 * instead), every path kept is checked to be inside the camera's folder
 * (realpath), the camera-internal .system area is never read, and every path
 * left alone is listed with its reason.
 */
import { lstat, readdir, realpath } from 'node:fs/promises';
import { basename, extname, join, relative, sep } from 'node:path';
import { isFileGone } from '../../errors.js';
import { cardLayoutsOf, cardPathRole, type CardLayout } from '../cardLayouts.js';
import { isSparse } from '../fileKinds.js';
import { DEVICE_FILE, SYSTEM_DIR } from './types.js';

export interface FileSnapshot { size: number; mtimeMs: number; ino: number; dev: number; ctimeMs: number }

export interface CandidateFile {
  /** Path relative to the camera root, with '/' separators. */
  relPath: string;
  absPath: string;
  fileName: string;
  size: number;
  mtimeMs: number;
  /** lstat of the file at listing time (the journal's stat snapshot). */
  stat: FileSnapshot;
  /** Sidecar next to the file (<name>.json), when present. */
  sidecarPath?: string;
  sidecarStat?: FileSnapshot;
}

/**
 * Why the dock left a path alone. Every one is listed on the bay (docs/dock.md,
 * "Skipped files"); the `attention` ones may hide evidence and keep the bay from `done`.
 */
export const SKIP_CODES = {
  symlink: 'symlink',
  hidden: 'hidden',
  temporary: 'temporary',
  notSidecar: 'json_not_sidecar',
  deviceInternal: 'device_internal',
  notRegular: 'not_regular_file',
  outsideCamera: 'outside_camera',
  unreadable: 'unreadable_folder',
  depthLimit: 'depth_limit',
  countLimit: 'count_limit',
  sidecarUnreadable: 'sidecar_unreadable',
  undecodableName: 'undecodable_name',
  sparse: 'sparse',
  vendorMetadata: 'vendor_metadata',
} as const;
export type SkipCode = typeof SKIP_CODES[keyof typeof SKIP_CODES];

/** Skips that may leave evidence on the card unread: the bay shows `attention`, `--once` does not claim success. */
export const ATTENTION_SKIPS: ReadonlySet<SkipCode> = new Set<SkipCode>(['symlink', 'not_regular_file', 'outside_camera', 'unreadable_folder', 'depth_limit', 'count_limit', 'sidecar_unreadable', 'undecodable_name', 'sparse']);
/** Skips after which the listing is incomplete: media may be on the card that the dock never saw. */
export const INCOMPLETE_SKIPS: ReadonlySet<SkipCode> = new Set<SkipCode>(['unreadable_folder', 'depth_limit', 'count_limit', 'sidecar_unreadable', 'undecodable_name']);

export interface SkippedPath { path: string; code: SkipCode; reason: string }

export interface StorageListing {
  files: CandidateFile[];
  /** Everything left alone, with the reason (bounded: see skippedCount). */
  skipped: SkippedPath[];
  /** How many paths were left alone in all (skipped may list fewer). */
  skippedCount: number;
  /** How many paths were left alone, per reason. */
  skippedByCode: Partial<Record<SkipCode, number>>;
  /** Symlinks found (relative paths): skipped, reported once. */
  symlinks: string[];
  /** Known makers' card layouts the paths show, most files first (docs/dock.md, "Card layouts"). */
  layouts: CardLayout[];
}

export interface WalkLimits {
  /** Folder levels below the camera root that are read (Record/2025/05/10/EVT0001/x.mp4 is 5). */
  maxDepth: number;
  /** Directory entries examined per listing, files and folders together. */
  maxEntries: number;
  /** Skipped paths kept in the listing (the count goes on). */
  maxSkippedListed: number;
}

/** Largest file taken for a maker's index of the card (real ones are kilobytes; MEDIAPRO.XML of 9999 clips is ~3 MiB). */
export const VENDOR_METADATA_MAX_BYTES = 8 * 1024 * 1024;

export const WALK_LIMITS: WalkLimits = { maxDepth: 32, maxEntries: 100_000, maxSkippedListed: 200 };

const SKIPPED_SUFFIXES = ['.tmp', '.part', '.partial', '~', '.swp'];

function snapshotOf(stats: { size: number; mtimeMs: number; ino: number; dev: number; ctimeMs: number }): FileSnapshot {
  return { size: stats.size, mtimeMs: stats.mtimeMs, ino: stats.ino, dev: stats.dev, ctimeMs: stats.ctimeMs };
}

/** True when `child` (already a realpath) is inside `root` (a realpath). */
export function isInside(root: string, child: string): boolean {
  const rel = relative(root, child);
  return rel !== '' && !rel.startsWith('..' + sep) && rel !== '..' && !rel.startsWith(sep);
}

/** Every file of a camera's storage that may be a recording, with its sidecar; and every path left alone, with why. */
export async function listCameraFiles(cameraRoot: string, limits: WalkLimits = WALK_LIMITS): Promise<StorageListing> {
  const rootReal = await realpath(cameraRoot);
  const files: CandidateFile[] = [];
  const symlinks: string[] = [];
  const skipped: SkippedPath[] = [];
  let skippedCount = 0;
  const skippedByCode: Partial<Record<SkipCode, number>> = {};
  const jsonFiles = new Map<string, { abs: string; rel: string; stat: FileSnapshot }>();
  let entriesSeen = 0;
  let countHit = false;
  const skip = (path: string, code: SkipCode, reason: string): void => {
    skippedCount++;
    skippedByCode[code] = (skippedByCode[code] ?? 0) + 1;
    if (skipped.length < limits.maxSkippedListed) skipped.push({ path, code, reason });
  };
  const relOf = (abs: string): string => relative(cameraRoot, abs).split(sep).join('/');
  const walk = async (dir: string, depth: number): Promise<void> => {
    let entries: string[];
    try {
      // Raw names: a name that is not UTF-8 (a FAT card written with a legacy code page) would be
      // decoded to U+FFFD and then not be found by lstat, i.e. vanish from the listing unseen.
      const raw = await readdir(dir, { encoding: 'buffer' });
      entries = [];
      for (const bytes of raw) {
        const name = bytes.toString('utf8');
        if (Buffer.from(name, 'utf8').equals(bytes)) { entries.push(name); continue; }
        skip(relOf(join(dir, name)), SKIP_CODES.undecodableName, `name is not UTF-8 (bytes ${bytes.toString('hex')}): not read; copy it off the card under a UTF-8 name`);
      }
    } catch (error) {
      if (isFileGone(error)) return; // vanished mid-scan (undocked): the next scan sees the truth
      skip(relOf(dir) || '.', SKIP_CODES.unreadable, `folder unreadable: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
      return;
    }
    for (const name of entries.sort()) {
      const abs = join(dir, name);
      const rel = relOf(abs);
      if (countHit) return;
      if (++entriesSeen > limits.maxEntries) {
        countHit = true;
        skip(rel, SKIP_CODES.countLimit, `listing stopped after ${limits.maxEntries} entries: this and later paths were not examined`);
        return;
      }
      if (depth === 0 && name === DEVICE_FILE) continue; // read as the camera's identity, not a recording
      if (depth === 0 && name === SYSTEM_DIR) { skip(rel, SKIP_CODES.deviceInternal, 'camera-internal folder: never read'); continue; }
      let stats;
      try {
        stats = await lstat(abs);
      } catch {
        continue; // vanished since readdir
      }
      if (stats.isSymbolicLink()) { symlinks.push(rel); skip(rel, SKIP_CODES.symlink, 'symbolic link: not followed, not ingested'); continue; }
      if (name.startsWith('.')) { skip(rel, SKIP_CODES.hidden, stats.isDirectory() ? 'hidden folder: not read' : 'hidden file: not ingested'); continue; }
      if (stats.isDirectory()) {
        if (depth + 1 > limits.maxDepth) { skip(rel, SKIP_CODES.depthLimit, `folder deeper than ${limits.maxDepth} levels: not read`); continue; }
        await walk(abs, depth + 1);
        continue;
      }
      if (!stats.isFile()) { skip(rel, SKIP_CODES.notRegular, 'not a regular file (device, fifo or socket): not read'); continue; }
      if (SKIPPED_SUFFIXES.some((s) => name.toLowerCase().endsWith(s))) { skip(rel, SKIP_CODES.temporary, 'temporary file (still being written, or left by an interrupted write): not ingested'); continue; }
      // Defence in depth against bind mounts and the like: the real path must stay in the camera.
      let real: string;
      try { real = await realpath(abs); } catch { continue; }
      if (!isInside(rootReal, real)) { symlinks.push(rel); skip(rel, SKIP_CODES.outsideCamera, 'resolves outside the camera folder: not followed'); continue; }
      // Keyed by the name with a lower-case extension: CLIP.MP4 has CLIP.JSON as its sidecar too.
      if (extname(name).toLowerCase() === '.json') {
        const key = abs.slice(0, -'.json'.length) + '.json';
        if (jsonFiles.has(key)) skip(rel, SKIP_CODES.notSidecar, 'another .json of the same name (differing in case) is taken as the sidecar: not ingested');
        else jsonFiles.set(key, { abs, rel, stat: snapshotOf(stats) });
        continue;
      }
      if (isSparse(stats)) { skip(rel, SKIP_CODES.sparse, `sparse file: ${stats.size} bytes with ${stats.blocks * 512} allocated (a camera's FAT/exFAT card has no holes): not written by a camera, not ingested`); continue; }
      files.push({ relPath: rel, absPath: abs, fileName: name, size: stats.size, mtimeMs: Math.floor(stats.mtimeMs), stat: snapshotOf(stats) });
    }
  };
  await walk(cameraRoot, 0);
  const layouts = cardLayoutsOf(files.map((f) => f.relPath));
  // A maker's index of its card (AVCHD playlists, Sony MEDIAPRO.XML, GoPro MISC/version.txt) is no
  // recording: listed with why, not uploaded, never deleted.
  // Only a small file under such a name counts: a large one may be a recording renamed to hide it, and is read as any file.
  for (let i = files.length - 1; i >= 0; i--) {
    const role = cardPathRole(files[i]!.relPath);
    if (role?.role === 'card-metadata' && files[i]!.size <= VENDOR_METADATA_MAX_BYTES) {
      skip(files[i]!.relPath, SKIP_CODES.vendorMetadata, `${role.reason}: not uploaded, left on the card`);
      files.splice(i, 1);
    }
  }
  const sidecars = new Set<string>();
  for (const file of files) {
    const sidecar = join(file.absPath, '..', basename(file.fileName, extname(file.fileName)) + '.json');
    const json = jsonFiles.get(sidecar);
    if (json) { file.sidecarPath = json.abs; file.sidecarStat = json.stat; sidecars.add(sidecar); }
  }
  for (const [key, json] of jsonFiles) if (!sidecars.has(key)) skip(json.rel, SKIP_CODES.notSidecar, '.json with no recording of the same name next to it: not a sidecar, not ingested');
  return { files, skipped, skippedCount, skippedByCode, symlinks, layouts };
}
