/**
 * The recordings a fixture camera holds, found the way the dock finds them
 * (every regular file that is not hidden, not JSON, not DEVICE.json and not in
 * the camera-internal .system area), with the SHA-256 that the server must
 * return byte for byte.
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, lstatSync, readdirSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { UsageError } from '../errors.js';
import { DEVICE_FILE, SYSTEM_DIR } from '../camera/types.js';

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

export async function sha256OfFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

function listFiles(root: string): string[] {
  const found: string[] = [];
  const walk = (dir: string, depth: number): void => {
    for (const name of readdirSync(dir).sort()) {
      if (name.startsWith('.') || (depth === 0 && (name === DEVICE_FILE || name === SYSTEM_DIR))) continue;
      const abs = join(dir, name);
      const stats = lstatSync(abs);
      if (stats.isDirectory() && depth < 4) walk(abs, depth + 1);
      else if (stats.isFile() && !name.toLowerCase().endsWith('.json')) found.push(relative(root, abs).split(sep).join('/'));
    }
  };
  walk(root, 0);
  return found;
}

/** Recordings of one camera root, in path order. */
export async function recordingsOf(camera: string, root: string): Promise<FixtureRecording[]> {
  if (!existsSync(root)) throw new UsageError(`fixture camera "${camera}" not found at ${root}`, { code: 'E_SCENARIO_FIXTURE' });
  const relPaths = listFiles(root);
  const names = relPaths.map((p) => p.split('/').pop()!);
  const recordings: FixtureRecording[] = [];
  for (const [i, relPath] of relPaths.entries()) {
    const fileName = names[i]!;
    const unique = names.filter((n) => n === fileName).length === 1;
    const abs = join(root, relPath);
    const sidecarRelPath = relPath.replace(/\.[^./]*$/, '') + '.json';
    recordings.push({
      camera, fileName, relPath,
      ...(existsSync(join(root, sidecarRelPath)) ? { sidecarRelPath } : {}),
      ref: `${camera}/${unique ? fileName : relPath}`,
      size: lstatSync(abs).size,
      sha256: await sha256OfFile(abs),
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
