/**
 * Files of the server data dir hold evidence and secrets: nobody but the server's own
 * user may read them. Folders are 0700 and files 0600, set explicitly after creation
 * (a umask only ever removes bits, and an odd one must not leave a file open to others).
 *
 * At startup `tightenDataDir` fixes a data dir written by an older version (or copied in
 * with looser modes): the data dir, every folder in it and its shard folders become 0700,
 * and its top-level files 0600. That is bounded work (a few hundred entries, however big
 * the store): files deeper down are unreachable to others once their folder is 0700.
 * `bodycam server scrub`, which walks everything anyway, tightens every file (`tightenTree`).
 */
import { randomBytes } from 'node:crypto';
import { chmod, link, lstat, mkdir, open, opendir, rename, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { errnoCode } from '../errors.js';
import { syncFolder, writeTempFile } from '../util/atomicFile.js';

export const PRIVATE_FILE_MODE = 0o600;
export const PRIVATE_DIR_MODE = 0o700;

/** mkdir -p, and 0700 on the folder if this call created it (an existing one is left to tighten*); true if it did. */
export async function makePrivateDir(path: string): Promise<boolean> {
  const first = await mkdir(path, { recursive: true, mode: PRIVATE_DIR_MODE });
  if (first !== undefined) await chmod(path, PRIVATE_DIR_MODE);
  return first !== undefined;
}

/** Create an empty file with mode 0600 unless it exists (e.g. before SQLite opens it: its -wal and -shm copy its mode). */
export async function ensurePrivateFile(path: string): Promise<void> {
  const handle = await open(path, 'a', PRIVATE_FILE_MODE);
  try {
    await handle.chmod(PRIVATE_FILE_MODE);
  } finally {
    await handle.close();
  }
}

async function chmodIfNeeded(path: string, mode: number): Promise<void> {
  try {
    const info = await lstat(path);
    if (info.isSymbolicLink()) return; // never follow a link out of the data dir
    if ((info.mode & 0o777) !== mode) await chmod(path, mode);
  } catch (error) {
    if (errnoCode(error) !== 'ENOENT') throw error; // gone meanwhile: nothing to protect
  }
}

/** Bounded: the data dir, its folders, their sub-folders (blob shards), and its top-level files. */
export async function tightenDataDir(root: string): Promise<void> {
  await chmodIfNeeded(root, PRIVATE_DIR_MODE);
  for await (const entry of await opendir(root)) {
    const path = join(root, entry.name);
    if (entry.isFile()) await chmodIfNeeded(path, PRIVATE_FILE_MODE);
    else if (entry.isDirectory()) {
      await chmodIfNeeded(path, PRIVATE_DIR_MODE);
      for await (const inner of await opendir(path)) {
        if (inner.isDirectory()) await chmodIfNeeded(join(path, inner.name), PRIVATE_DIR_MODE);
      }
    }
  }
}

/** Every folder 0700 and every file 0600 under root (symbolic links are not followed). Returns how many modes changed. */
export async function tightenTree(root: string): Promise<number> {
  let changed = 0;
  const walk = async (dir: string): Promise<void> => {
    for await (const entry of await opendir(dir)) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) {
        changed += await fix(path, PRIVATE_DIR_MODE);
        await walk(path);
      } else if (entry.isFile()) {
        changed += await fix(path, PRIVATE_FILE_MODE);
      }
    }
  };
  const fix = async (path: string, mode: number): Promise<number> => {
    const info = await lstat(path).catch(() => undefined);
    if (!info || info.isSymbolicLink() || (info.mode & 0o777) === mode) return 0;
    await chmod(path, mode);
    return 1;
  };
  changed += await fix(root, PRIVATE_DIR_MODE);
  await walk(root);
  return changed;
}

/** Write `data` to a fresh 0600 temp file beside `path`, fsynced; then `publish(temp)`; the temp name never outlives the call. */
async function viaTemp(path: string, data: string, publish: (temp: string) => Promise<boolean>): Promise<boolean> {
  const temp = `${path}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`;
  try {
    await writeTempFile(temp, (handle) => handle.writeFile(data), PRIVATE_FILE_MODE);
    const published = await publish(temp);
    if (published) await syncFolder(dirname(path));
    return published;
  } finally {
    await unlink(temp).catch(() => {});
  }
}

/**
 * Write-once: `path` gets `data` whole or not at all (temp, fsync, link(2), fsync the folder), so a
 * full disk or a crash never leaves a torn key or pin. False when `path` already exists (never overwritten).
 */
export async function publishOnce(path: string, data: string): Promise<boolean> {
  return viaTemp(path, data, async (temp) => {
    try {
      await link(temp, path);
      return true;
    } catch (error) {
      if (errnoCode(error) === 'EEXIST') return false;
      throw error;
    }
  });
}

/** Replace `path` atomically with `data` (temp, fsync, rename, fsync the folder). */
export async function replaceFile(path: string, data: string): Promise<void> {
  await viaTemp(path, data, async (temp) => { await rename(temp, path); return true; });
}
