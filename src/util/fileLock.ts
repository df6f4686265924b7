/**
 * An exclusive lock for a read-modify-write of a small file by separate processes (two operators
 * running `bodycam server user add` at once): the lock is an empty SQLite database beside the file,
 * held with BEGIN EXCLUSIVE, i.e. an fcntl lock the kernel drops when the holder dies (SIGKILL
 * included), so a killed command never leaves a stale lock to clean by hand (the dock's state lock,
 * src/dock/lock.ts, rests on the same). A second taker waits (SQLite's busy timeout) up to `waitMs`,
 * then fails with one line; it never proceeds unlocked.
 */
import Database from 'better-sqlite3';
import { closeSync, fchmodSync, openSync } from 'node:fs';
import { EnvironmentError } from '../errors.js';

export class FileLockBusyError extends EnvironmentError {
  constructor(what: string, lockPath: string, waitMs: number, options: { cause?: unknown } = {}) {
    super('E_LOCK_BUSY', `${what} is being changed by another command (lock ${lockPath} held for over ${Math.round(waitMs / 1000)} s): try again when it is done`, options);
  }
}

/** Run `change` holding the lock `lockPath` (created 0600 if missing); released after, whatever `change` does. */
export async function withFileLock<T>(lockPath: string, what: string, change: () => Promise<T>, options: { waitMs?: number } = {}): Promise<T> {
  const waitMs = options.waitMs ?? 30_000;
  let db: Database.Database;
  try {
    // Created 0600 before SQLite opens it (a umask only removes bits; the lock names no secret, but lives among them).
    const fd = openSync(lockPath, 'a', 0o600);
    try { fchmodSync(fd, 0o600); } finally { closeSync(fd); }
    db = new Database(lockPath, { timeout: waitMs });
  } catch (cause) {
    throw new EnvironmentError('E_LOCK', `cannot open the lock ${lockPath}: ${(cause as Error).message}`, { cause });
  }
  try {
    db.exec('BEGIN EXCLUSIVE');
  } catch (cause) {
    db.close();
    const code = (cause as { code?: string }).code;
    if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED') throw new FileLockBusyError(what, lockPath, waitMs, { cause });
    throw new EnvironmentError('E_LOCK', `cannot take the lock ${lockPath}: ${(cause as Error).message}`, { cause });
  }
  try {
    return await change();
  } finally {
    try { db.exec('ROLLBACK'); } catch { /* closing releases it too */ }
    db.close();
  }
}
