/**
 * A real card reader that does not answer: test/helpers/stuckReadFs.py, a FUSE file system whose
 * reads past an offset (and, with `hangReaddir`, the listing of its root) are never answered. Needs
 * root and /dev/fuse, as on the CI machine; suites fail without them unless BODYCAM_TEST_NO_FUSE=1.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { fileURLToPath } from 'node:url';

const fsScript = fileURLToPath(new URL('./stuckReadFs.py', import.meta.url));

/** Why FUSE cannot be mounted here, or undefined. */
export const fuseMissing = ((): string | undefined => {
  try { accessSync('/dev/fuse', constants.R_OK | constants.W_OK); } catch { return '/dev/fuse is not usable'; }
  return process.getuid?.() === 0 ? undefined : 'mounting FUSE here needs root';
})();

/** BODYCAM_TEST_NO_FUSE=1 leaves the FUSE suites out on purpose (a developer's machine without root). */
export const fuseSuitesWanted = process.env.BODYCAM_TEST_NO_FUSE !== '1';

/** Mount the stuck file system on `dir` (created); kill the process it returns, then unmountStuck. */
export async function mountStuck(dir: string, options: { hangReaddir?: boolean } = {}): Promise<ChildProcess> {
  if (fuseMissing) throw new Error(`${fuseMissing}: this test mounts a FUSE file system (set BODYCAM_TEST_NO_FUSE=1 to leave it out)`);
  spawnSync('mkdir', ['-p', dir]);
  const child = spawn('python3', [fsScript, dir, String(1 << 20), ...(options.hangReaddir ? ['hang-readdir'] : [])], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => { out += chunk.toString(); if (out.includes('mounted')) resolve(); if (out.includes('mount failed')) reject(new Error(out)); });
    child.on('exit', (code) => reject(new Error(`stuckReadFs exited with ${code}: ${out}`)));
  });
  return child;
}

/** End the file system (its stuck requests fail with ENOTCONN) and unmount it. */
export function unmountStuck(child: ChildProcess | undefined, dir: string): void {
  child?.kill('SIGKILL');
  spawnSync('umount', ['-l', dir]);
}
