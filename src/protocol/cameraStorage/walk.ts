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
import { cardLayoutsOfRoles, cardPathRole, type CardLayout, type CardPathRole } from '../cardLayouts.js';
import { companionKeysOf, isMediaExtension, isSparse, recordingKeysOf } from '../fileKinds.js';
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
  /**
   * `<name>.json` next to the file, when present: the sidecar only if it says so (its `format`),
   * else one more companion (the dock decides: isOurSidecar in src/dock/storage.ts).
   */
  sidecarPath?: string;
  sidecarStat?: FileSnapshot;
  /** Other files that belong to it (same base name, or a maker's pairing): its attachments. */
  companions: CompanionFile[];
}

/** A file that travels with a recording as an attachment (docs/camera-storage.md, "Other makers' cards"). */
export interface CompanionFile {
  relPath: string;
  absPath: string;
  fileName: string;
  stat: FileSnapshot;
}

/** A regular file the walk kept, before it is sorted into recordings, companions and sidecars. */
interface Found { dir: string; abs: string; rel: string; name: string; stat: FileSnapshot; size: number; mtimeMs: number; role?: CardPathRole | null }

/** The file's role in a maker's layout, worked out once per listing (every scan asks two or three times per file). */
function roleOf(f: Found): CardPathRole | undefined {
  if (f.role === undefined) f.role = cardPathRole(f.rel) ?? null;
  return f.role ?? undefined;
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

/**
 * Skip reasons after which a card may hold evidence the server never got: the attention ones, a
 * temporary file (a camera's file cut by power loss) and a hidden one (a file hidden on a PC).
 */
export const MAY_HOLD_EVIDENCE: ReadonlySet<SkipCode> = new Set<SkipCode>([...ATTENTION_SKIPS, 'temporary', 'hidden']);

/**
 * Whether a listed path the walker left alone may hold evidence (`bodycam dock check` calls it
 * "left", `--once` does not claim success over it): a hidden file is judged by its name, since a
 * host's AppleDouble `._X.mp4` is a resource fork of X, not video.
 */
export function mayHoldEvidence(skip: SkippedPath): boolean {
  if (skip.code !== 'hidden') return MAY_HOLD_EVIDENCE.has(skip.code);
  const name = skip.path.split('/').pop() ?? skip.path;
  return isMediaExtension(name) && !name.startsWith('._');
}

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
  /**
   * A path listed by its folder was gone when read (a file or folder deleted or renamed during the
   * walk, or the card pulled): the listing is not a picture of one moment of the card, so nothing
   * may be concluded from what it lacks (src/dock/vanished.ts).
   */
  changedDuringListing: boolean;
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

/**
 * Who belongs to whom (docs/camera-storage.md, "Other makers' cards"). A file with a media
 * extension is a recording, unless a maker's layout makes it the companion of a recording that is
 * on the card (Sony's SUB/C0001S03.MP4 proxy of CLIP/C0001.MP4). Any other file belongs to every
 * recording that names it: same folder and base name, case-insensitive (`clip.mp4.srt` names
 * `clip.mp4` too), or a layout's pairing (GoPro GL010001.LRV, AVCHD CLIPINF/00000.CPI); it travels
 * with each as an attachment, and `<name>.json` is set aside as the candidate sidecar. A file
 * nobody names is a candidate of its own (ffprobe decides) with `<name>.json` as its candidate
 * sidecar; a `.json` nobody names stays on the card, listed.
 */
function pairCompanions(files: CandidateFile[], found: Found[], skip: (path: string, code: SkipCode, reason: string) => void): void {
  const isJson = (f: Found): boolean => extname(f.name).toLowerCase() === '.json';
  const present = new Map(found.map((f) => [f.rel.toLowerCase(), f]));
  const layoutOwners = (f: Found): Found[] => (roleOf(f)?.owners ?? []).map((o) => present.get(o.toLowerCase())).filter((o): o is Found => o !== undefined && o !== f);
  const recordings = found.filter((f) => isMediaExtension(f.name) && !layoutOwners(f).some((o) => isMediaExtension(o.name)));
  const byFound = new Map<Found, CandidateFile>();
  const byKey = new Map<string, CandidateFile[]>();
  const candidate = (f: Found): CandidateFile => ({ relPath: f.rel, absPath: f.abs, fileName: f.name, size: f.size, mtimeMs: f.mtimeMs, stat: f.stat, companions: [] });
  for (const f of recordings) {
    const file = candidate(f);
    byFound.set(f, file);
    files.push(file);
    for (const key of recordingKeysOf(f.name)) {
      const k = `${f.dir}\0${key}`;
      const list = byKey.get(k);
      if (list) list.push(file); else byKey.set(k, [file]);
    }
  }
  const attach = (file: CandidateFile, f: Found): void => {
    const sidecarName = isJson(f) && f.name.slice(0, -'.json'.length).toLowerCase() === basename(file.fileName, extname(file.fileName)).toLowerCase();
    if (sidecarName && file.sidecarPath === undefined) { file.sidecarPath = f.abs; file.sidecarStat = f.stat; return; }
    file.companions.push({ relPath: f.rel, absPath: f.abs, fileName: f.name, stat: f.stat });
  };
  const unclaimed: Found[] = [];
  for (const f of found) {
    if (byFound.has(f)) continue;
    const owners = new Set<CandidateFile>();
    for (const key of companionKeysOf(f.name)) for (const file of byKey.get(`${f.dir}\0${key}`) ?? []) owners.add(file);
    for (const o of layoutOwners(f)) { const file = byFound.get(o); if (file) owners.add(file); }
    if (owners.size === 0) { unclaimed.push(f); continue; }
    for (const file of owners) attach(file, f);
  }
  // Files no recording names: candidates of their own, each with its candidate sidecar.
  const ownByStem = new Map<string, CandidateFile>();
  for (const f of unclaimed) {
    if (isJson(f)) continue;
    const file = candidate(f);
    files.push(file);
    ownByStem.set(`${f.dir}\0${basename(f.name, extname(f.name)).toLowerCase()}`, file);
  }
  for (const f of unclaimed) {
    if (!isJson(f)) continue;
    const file = ownByStem.get(`${f.dir}\0${f.name.slice(0, -'.json'.length).toLowerCase()}`);
    if (file) { attach(file, f); continue; }
    skip(f.rel, SKIP_CODES.notSidecar, '.json with no recording of the same name next to it: not a sidecar, not ingested');
  }
  // Walk order (sorted names, depth first), whatever the sorting above did.
  const order = new Map(found.map((f, i) => [f.abs, i]));
  files.sort((a, b) => order.get(a.absPath)! - order.get(b.absPath)!);
}

/** Every file of a camera's storage that may be a recording, with its sidecar; and every path left alone, with why. */
export async function listCameraFiles(cameraRoot: string, limits: WalkLimits = WALK_LIMITS): Promise<StorageListing> {
  const rootReal = await realpath(cameraRoot);
  const files: CandidateFile[] = [];
  const symlinks: string[] = [];
  const skipped: SkippedPath[] = [];
  let skippedCount = 0;
  let changedDuringListing = false;
  const skippedByCode: Partial<Record<SkipCode, number>> = {};
  const found: Found[] = [];
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
      if (isFileGone(error)) { changedDuringListing = true; return; } // vanished mid-scan (undocked): the next scan sees the truth
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
      } catch (error) {
        if (isFileGone(error)) { changedDuringListing = true; continue; } // vanished since readdir
        // Not gone but unreadable (EIO on a failing card, EACCES): listed, and the listing is incomplete.
        skip(rel, SKIP_CODES.unreadable, `unreadable: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
        continue;
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
      // Defence in depth: the real path must stay in the camera, checked per file (a folder swapped
      // for a symlink while the walk is inside it would otherwise list files from outside).
      let real: string;
      try {
        real = await realpath(abs);
      } catch (error) {
        if (isFileGone(error)) { changedDuringListing = true; continue; }
        skip(rel, SKIP_CODES.unreadable, `unreadable: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
        continue;
      }
      if (!isInside(rootReal, real)) { symlinks.push(rel); skip(rel, SKIP_CODES.outsideCamera, 'resolves outside the camera folder: not followed'); continue; }
      if (isSparse(stats)) { skip(rel, SKIP_CODES.sparse, `sparse file: ${stats.size} bytes with ${stats.blocks * 512} allocated (a camera's FAT/exFAT card has no holes): not written by a camera, not ingested`); continue; }
      found.push({ dir, abs, rel, name, stat: snapshotOf(stats), size: stats.size, mtimeMs: Math.floor(stats.mtimeMs) });
    }
  };
  await walk(cameraRoot, 0);
  const layouts = cardLayoutsOfRoles(found.filter((f) => extname(f.name).toLowerCase() !== '.json').map(roleOf));
  // A maker's index of its card (AVCHD playlists, Sony MEDIAPRO.XML, GoPro MISC/version.txt) is no
  // recording: listed with why, not uploaded, never deleted.
  const kept = found.filter((f) => {
    const role = roleOf(f);
    // Only a small file under such a name counts: a large one may be a recording renamed to hide it, and is read as any file.
    if (role?.role !== 'card-metadata' || f.size > VENDOR_METADATA_MAX_BYTES) return true;
    skip(f.rel, SKIP_CODES.vendorMetadata, `${role.reason}: not uploaded, left on the card`);
    return false;
  });
  pairCompanions(files, kept, skip);
  return { files, skipped, skippedCount, skippedByCode, symlinks, layouts, changedDuringListing };
}
