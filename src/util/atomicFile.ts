/**
 * Writing a state or key file so that a reader sees either the old file or
 * the whole new one, never a part: a temp file in the same folder, fsync,
 * rename over the target, fsync of the folder. The one synchronous version
 * (the camera's files, the dock's key); the server's async ones are in
 * src/server/privateFiles.ts.
 */
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
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

