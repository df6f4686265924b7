/**
 * mkdir -p without Node's retry loop: `mkdir(p, {recursive: true})` spins forever (system CPU, never
 * returning) under a folder that answers ENOENT to mkdir while it exists, such as /proc ("/proc/x":
 * ENOENT, so Node makes the parent, which EEXISTs, so it tries the child again...). Here each missing
 * level is made once, from the nearest existing folder down; any refusal is thrown as it is.
 */
import { mkdir, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { errnoCode } from '../errors.js';

export async function makeDirs(path: string, mode: number): Promise<void> {
  const missing: string[] = [];
  let at = path;
  for (;;) {
    try {
      const info = await stat(at);
      if (!info.isDirectory()) throw Object.assign(new Error(`${at} is not a folder`), { code: 'ENOTDIR' });
      break;
    } catch (error) {
      if (errnoCode(error) !== 'ENOENT' || dirname(at) === at) throw error;
      missing.push(at);
      at = dirname(at);
    }
  }
  for (const dir of missing.reverse()) {
    try {
      await mkdir(dir, { mode });
    } catch (error) {
      if (errnoCode(error) !== 'EEXIST') throw error; // made meanwhile by another process: fine
    }
  }
}
