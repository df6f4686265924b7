/**
 * Reading a docked camera's storage (docs/camera-storage.md) without trusting
 * it: symlinks are never followed (lstat; reported instead), every path read is
 * checked to be inside the camera's folder (realpath), the camera-internal
 * .system area is never read, and JSON is parsed defensively.
 */
import { constants } from 'node:fs';
import { lstat, open, readdir, readFile, realpath } from 'node:fs/promises';
import { basename, extname, join, relative, sep } from 'node:path';
import { DEVICE_FILE, SYSTEM_DIR, type DeviceInfo } from '../camera/types.js';
import { SIDECAR_MAX_BYTES } from '../protocol/types.js';
import { isFileGone, PausedError } from './errors.js';

export interface CandidateFile {
  /** Path relative to the camera root, with '/' separators. */
  relPath: string;
  absPath: string;
  fileName: string;
  size: number;
  mtimeMs: number;
  /** Sidecar next to the file (<name>.json), when present. */
  sidecarPath?: string;
}

export interface StorageListing {
  files: CandidateFile[];
  /** Symlinks found (relative paths): skipped, reported once. */
  symlinks: string[];
}

const MAX_DEPTH = 4;
const SKIPPED_SUFFIXES = ['.tmp', '.part', '.partial', '~', '.swp'];

function isHiddenOrTemp(name: string): boolean {
  return name.startsWith('.') || SKIPPED_SUFFIXES.some((s) => name.toLowerCase().endsWith(s));
}

/** True when `child` (already a realpath) is inside `root` (a realpath). */
export function isInside(root: string, child: string): boolean {
  const rel = relative(root, child);
  return rel !== '' && !rel.startsWith('..' + sep) && rel !== '..' && !rel.startsWith(sep);
}

/** Every file of a camera's storage that may be a recording, with its sidecar. */
export async function listCameraFiles(cameraRoot: string): Promise<StorageListing> {
  const rootReal = await realpath(cameraRoot);
  const files: CandidateFile[] = [];
  const symlinks: string[] = [];
  const jsonFiles = new Set<string>();
  const walk = async (dir: string, depth: number): Promise<void> => {
    let entries: string[];
    try {
      entries = await readdir(dir);
    } catch {
      return; // vanished or unreadable mid-scan: the next scan sees the truth
    }
    for (const name of entries.sort()) {
      if (isHiddenOrTemp(name)) continue;
      if (depth === 0 && (name === DEVICE_FILE || name === SYSTEM_DIR)) continue;
      const abs = join(dir, name);
      let stats;
      try {
        stats = await lstat(abs);
      } catch {
        continue;
      }
      const rel = relative(cameraRoot, abs).split(sep).join('/');
      if (stats.isSymbolicLink()) { symlinks.push(rel); continue; }
      if (stats.isDirectory()) {
        if (depth < MAX_DEPTH) await walk(abs, depth + 1);
        continue;
      }
      if (!stats.isFile()) continue;
      // Defence in depth against bind mounts and the like: the real path must stay in the camera.
      let real: string;
      try { real = await realpath(abs); } catch { continue; }
      if (!isInside(rootReal, real)) { symlinks.push(rel); continue; }
      if (extname(name).toLowerCase() === '.json') { jsonFiles.add(abs); continue; }
      files.push({ relPath: rel, absPath: abs, fileName: name, size: stats.size, mtimeMs: Math.floor(stats.mtimeMs) });
    }
  };
  await walk(cameraRoot, 0);
  for (const file of files) {
    const sidecar = join(file.absPath, '..', basename(file.fileName, extname(file.fileName)) + '.json');
    if (jsonFiles.has(sidecar)) file.sidecarPath = sidecar;
  }
  return { files, symlinks };
}

export type DeviceReading = { kind: 'none' } | { kind: 'invalid'; reason: string } | { kind: 'ok'; device: DeviceInfo };

/** DEVICE.json, read only if it is a regular file (not a symlink) inside the camera root. */
export async function readDevice(cameraRoot: string): Promise<DeviceReading> {
  const path = join(cameraRoot, DEVICE_FILE);
  let stats;
  try {
    stats = await lstat(path);
  } catch {
    return { kind: 'none' };
  }
  if (!stats.isFile()) return { kind: 'invalid', reason: `${DEVICE_FILE} is not a regular file` };
  if (stats.size > 1024 * 1024) return { kind: 'invalid', reason: `${DEVICE_FILE} is implausibly large` };
  try {
    const device = JSON.parse(await readFile(path, 'utf8')) as DeviceInfo;
    if (!device || typeof device !== 'object' || typeof device.serial !== 'string' || !device.serial) {
      return { kind: 'invalid', reason: `${DEVICE_FILE} has no serial` };
    }
    return { kind: 'ok', device };
  } catch (error) {
    return { kind: 'invalid', reason: `${DEVICE_FILE} is not valid JSON: ${(error as Error).message}` };
  }
}

export type SidecarReading =
  | { kind: 'ok'; sidecar: Record<string, unknown>; bytes: Buffer }
  | { kind: 'invalid'; reason: string; bytes?: Buffer };

/**
 * A sidecar that cannot be read because the camera left the bay is not an
 * integrity finding: flagging it would brand good evidence for good and forbid
 * its wipe. That case pauses the job (PausedError) until the camera is back.
 * The bytes are read once, through one descriptor that does not follow a symlink, and
 * parsed from that very buffer: the manifest carries them and their hash (the wipe's proof).
 */
export async function readSidecar(path: string): Promise<SidecarReading> {
  let handle;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (error) {
    if (isFileGone(error)) throw new PausedError('sidecar not on the camera right now (undocked?)', { cause: error });
    const code = (error as NodeJS.ErrnoException).code;
    return { kind: 'invalid', reason: code === 'ELOOP' ? 'sidecar is not a regular file' : `sidecar unreadable: ${(error as Error).message}` };
  }
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) return { kind: 'invalid', reason: 'sidecar is not a regular file' };
    if (stats.size > SIDECAR_MAX_BYTES) return { kind: 'invalid', reason: `sidecar is implausibly large (over ${SIDECAR_MAX_BYTES} bytes)` };
    const bytes = await handle.readFile();
    if (bytes.length > SIDECAR_MAX_BYTES) return { kind: 'invalid', reason: `sidecar is implausibly large (over ${SIDECAR_MAX_BYTES} bytes)` };
    let parsed: unknown;
    try {
      parsed = JSON.parse(bytes.toString('utf8')) as unknown;
    } catch (error) {
      return { kind: 'invalid', reason: `sidecar unreadable: ${(error as Error).message}`, bytes };
    }
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) return { kind: 'invalid', reason: 'sidecar is not a JSON object', bytes };
    return { kind: 'ok', sidecar: parsed as Record<string, unknown>, bytes };
  } catch (error) {
    if (isFileGone(error)) throw new PausedError('sidecar not on the camera right now (undocked?)', { cause: error });
    return { kind: 'invalid', reason: `sidecar unreadable: ${(error as Error).message}` };
  } finally {
    await handle.close().catch(() => {});
  }
}

/** Camera clock minus true time at docking, from DEVICE.json's clock block. */
export function clockOffsetMsOf(device: DeviceInfo | undefined): number | undefined {
  const clock = device?.clock;
  if (!clock) return undefined;
  if (typeof clock.offsetMs === 'number' && Number.isFinite(clock.offsetMs)) return Math.round(clock.offsetMs);
  const camera = Date.parse(clock.cameraTime);
  const truth = Date.parse(clock.trueTime);
  return Number.isNaN(camera) || Number.isNaN(truth) ? undefined : camera - truth;
}
