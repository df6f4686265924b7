/**
 * The recordings a fixture camera holds, found by the dock's own walker
 * (src/protocol/cameraStorage): replay expects exactly the files the dock
 * takes up, with the SHA-256 that the server must return byte for byte
 * (test/replay/fixtures.test.ts holds a tricky card to both).
 */
import { sha256File } from '../util/sha256File.js';
import { existsSync } from 'node:fs';
import { relative, sep } from 'node:path';
import { UsageError } from '../errors.js';
import { listCameraFiles } from '../protocol/cameraStorage/index.js';

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

/** Recordings of one camera root, in path order. */
export async function recordingsOf(camera: string, root: string): Promise<FixtureRecording[]> {
  if (!existsSync(root)) throw new UsageError(`fixture camera "${camera}" not found at ${root}`, { code: 'E_SCENARIO_FIXTURE' });
  // Exactly the walker's candidates: each is a journal row of the dock (ingested, flagged or
  // quarantined, never silently left); companions, sidecars, makers' indexes and everything the
  // walk skips are not. No filter of replay's own, so it cannot expect what the dock ignores.
  const { files } = await listCameraFiles(root);
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
