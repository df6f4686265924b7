/**
 * Writing a state or key file so that a reader sees either the old file or
 * the whole new one, never a part: a temp file in the same folder, fsync,
 * rename over the target, fsync of the folder. The synchronous version serves
 * the camera's files and the dock's key; the async parts (`writeTempFile`,
 * `renameIntoPlace`) serve the server's files, whose publishing step differs
 * (rename, or link(2) for a write-once file: src/server/privateFiles.ts).
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, linkSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
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

/** A temp file beside `path` holding `data`, fsynced and closed; removed again if writing fails. */
function writeTempSync(path: string, data: string | Buffer, mode: number): string {
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const fd = openSync(temp, 'wx', mode);
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
  return temp;
}

/** Write bytes so that a reader sees either the old file or the whole new one, never a part. */
export function writeFileAtomic(path: string, data: string | Buffer, mode = 0o644): void {
  const temp = writeTempSync(path, data, mode);
  try {
    renameSync(temp, path);
  } catch (error) {
    rmSync(temp, { force: true });
    throw error;
  }
  fsyncDir(dirname(path));
}

/**
 * Create `path` with `data`, whole, only if it does not exist yet (temp, fsync, link(2), fsync the
 * folder): of two processes creating the same file at once exactly one wins, and the other reads
 * the winner's bytes. False when `path` already existed (it is never overwritten).
 */
export function writeFileOnce(path: string, data: string | Buffer, mode = 0o600): boolean {
  const temp = writeTempSync(path, data, mode);
  try {
    linkSync(temp, path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  } finally {
    rmSync(temp, { force: true });
  }
  fsyncDir(dirname(path));
  return true;
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
