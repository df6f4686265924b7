/**
 * The recordings a fixture camera holds, found by the dock's own walker
 * (src/protocol/cameraStorage): replay expects exactly the files the dock
 * ingests, with the SHA-256 that the server must return byte for byte.
 */
import { sha256File } from '../util/sha256File.js';
import { existsSync } from 'node:fs';
import { relative, sep } from 'node:path';
import { UsageError } from '../errors.js';
import { listCameraFiles } from '../protocol/cameraStorage/index.js';
import { cardPathRole } from '../protocol/cardLayouts.js';
import { isMediaExtension } from '../protocol/fileKinds.js';

export interface FixtureRecording {
  camera: string;
  /** "<camera>/<file name>" (or "<camera>/<relative path>" when a name repeats). */
  ref: string;
  fileName: string;
  /** Relative to the camera root, '/'-separated. */
  relPath: string;
  size: number;
  sha256: string;
  /** The sidecar next to it (<name>.json), when the camera wrote one; wiped and kept with the media. */
  sidecarRelPath?: string;
}

/** Kept under its old name for callers of this module. */
export const sha256OfFile = sha256File;

/**
 * The recordings among a card's files, as the dock counts them (docs/dock.md, "Card layouts"): a
 * maker's index of the card is none, nor is a companion whose recording is on the card.
 */
function recordingPaths(relPaths: string[]): string[] {
  const present = new Set(relPaths.map((p) => p.toLowerCase()));
  const stem = (p: string): string => p.toLowerCase().replace(/\.[^./]*$/, '');
  const mediaStems = new Set(relPaths.filter((p) => isMediaExtension(p)).map(stem));
  return relPaths.filter((relPath) => {
    const role = cardPathRole(relPath);
    if (role?.role === 'card-metadata') return false;
    if (role?.role === 'companion' && role.owners?.some((owner) => present.has(owner.toLowerCase()))) return false;
    // Beside a recording of the same name (a dashcam's .NMEA, a .THM, an .SRT): it travels with it.
    if (!isMediaExtension(relPath) && mediaStems.has(stem(relPath))) return false;
    return true;
  });
}

/** Recordings of one camera root, in path order. */
export async function recordingsOf(camera: string, root: string): Promise<FixtureRecording[]> {
  if (!existsSync(root)) throw new UsageError(`fixture camera "${camera}" not found at ${root}`, { code: 'E_SCENARIO_FIXTURE' });
  const listing = await listCameraFiles(root);
  const keep = new Set(recordingPaths(listing.files.map((f) => f.relPath)));
  const files = listing.files.filter((f) => keep.has(f.relPath));
  const names = files.map((f) => f.fileName);
  const recordings: FixtureRecording[] = [];
  for (const file of files) {
    const unique = names.filter((n) => n === file.fileName).length === 1;
    const sidecarRelPath = file.sidecarPath === undefined ? undefined : relative(root, file.sidecarPath).split(sep).join('/');
    recordings.push({
      camera, fileName: file.fileName, relPath: file.relPath,
      ...(sidecarRelPath ? { sidecarRelPath } : {}),
      ref: `${camera}/${unique ? file.fileName : file.relPath}`,
      size: file.size,
      sha256: await sha256OfFile(file.absPath),
    });
  }
  return recordings;
}

/** "*" matches any run of characters except "/"; "**" is not needed for camera roots. */
export function globToRegExp(glob: string): RegExp {
  const escaped = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]');
  return new RegExp(`^${escaped}$`);
}

/** Whether a recording reference (possibly with wildcards) names this recording. */
export function refMatches(ref: string, recording: FixtureRecording): boolean {
  const slash = ref.indexOf('/');
  if (ref.slice(0, slash) !== recording.camera) return false;
  const pattern = globToRegExp(ref.slice(slash + 1));
  return pattern.test(recording.fileName) || pattern.test(recording.relPath);
}
