/**
 * Writing a state or key file so that a reader sees either the old file or
 * the whole new one, never a part: a temp file in the same folder, fsync,
 * rename over the target, fsync of the folder. The synchronous version serves
 * the camera's files and the dock's key; the async parts (`writeTempFile`,
 * `renameIntoPlace`) serve the server's files, whose publishing step differs
 * (rename, or link(2) for a write-once file: src/server/privateFiles.ts).
 */
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { open, rename, rm, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

function fsyncDir(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    try { fsyncSync(fd); } finally { closeSync(fd); }
  } catch {
    // Some filesystems refuse to fsync a directory; the rename is still atomic.
  }
}

/** Write bytes so that a reader sees either the old file or the whole new one, never a part. */
export function writeFileAtomic(path: string, data: string | Buffer, mode = 0o644): void {
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  const fd = openSync(temp, 'w', mode);
  try {
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    let written = 0;
    while (written < bytes.length) written += writeSync(fd, bytes, written, bytes.length - written);
    fsyncSync(fd);
  } catch (error) {
    closeSync(fd);
    rmSync(temp, { force: true });
    throw error;
  }
  closeSync(fd);
  renameSync(temp, path);
  fsyncDir(dirname(path));
}


/**
 * Create `temp` (it must not exist) with exactly `mode` (a umask cannot loosen it: it is set
 * again after the open), let `fill` write it, fsync and close it. On any failure the temp file
 * is removed before the error is rethrown: a full disk must not leave a half-written file
 * holding space until the next restart.
 */
export async function writeTempFile(temp: string, fill: (handle: FileHandle) => Promise<unknown>, mode: number): Promise<void> {
  const handle = await open(temp, 'wx', mode);
  try {
    await handle.chmod(mode);
    await fill(handle);
    await handle.sync();
  } catch (error) {
    await handle.close().catch(() => {});
    await rm(temp, { force: true });
    throw error;
  }
  await handle.close();
}

/** fsync a folder, so that a rename or link in it survives a crash. */
export async function syncFolder(path: string): Promise<void> {
  const folder = await open(path, 'r');
  try { await folder.sync(); } finally { await folder.close(); }
}

/** Rename a written (fsynced) temp file over `path`, then fsync the folder. */
export async function renameIntoPlace(temp: string, path: string): Promise<void> {
  await rename(temp, path);
  await syncFolder(dirname(path));
}
