/**
 * One agent per state folder. Two agents on one journal would race each other's
 * wipes, so the state folder is locked by the OS: a small SQLite database held in
 * EXCLUSIVE locking mode (an fcntl lock SQLite takes and the kernel drops when the
 * process dies, SIGKILL included: a crashed agent never leaves a lock behind).
 * `agent.pid` next to it names the holder (pid + its start time from /proc), so a
 * second agent refuses with one line naming that pid; a pid file left by a dead
 * agent, or naming a pid since reused by another process, is ignored (the OS lock
 * is the authority, the pid file only tells who holds it).
 */
import Database from 'better-sqlite3';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { EnvironmentError } from '../errors.js';
import { restrictFile, restrictStateDir } from './journal.js';

export const LOCK_FILE = 'agent.lock';
export const PID_FILE = 'agent.pid';

/** Start time of a process (field 22 of /proc/<pid>/stat, clock ticks since boot); undefined if it is not running. */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[19];
  } catch {
    return undefined;
  }
}

export interface PidFileHolder { pid: number; startTime?: string; alive: boolean }

/** Who the pid file names, and whether that very process (same start time) is still running. */
export function readPidFile(stateDir: string): PidFileHolder | undefined {
  let text: string;
  try { text = readFileSync(join(stateDir, PID_FILE), 'utf8'); } catch { return undefined; }
  const [pidText, startTime] = text.trim().split(/\s+/);
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  let alive: boolean;
  try {
    process.kill(pid, 0);
    alive = true;
  } catch (error) {
    alive = (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  // A pid reused by another process since: its start time differs.
  if (alive && startTime && process.platform === 'linux') alive = processStartTime(pid) === startTime;
  return { pid, ...(startTime ? { startTime } : {}), alive };
}

export class StateDirLockedError extends EnvironmentError {
  constructor(stateDir: string, holder: PidFileHolder | undefined, options: { cause?: unknown } = {}) {
    super('E_STATE_DIR_LOCKED', holder?.alive
      ? `another dock agent (pid ${holder.pid}) is using the state folder ${stateDir}: stop it first, or give this one its own --state-dir`
      : `another dock agent holds the lock on the state folder ${stateDir} (pid unknown): stop it first, or give this one its own --state-dir`, options);
  }
}

export interface StateLock { release(): void }

export function acquireStateLock(stateDir: string): StateLock {
  try {
    restrictStateDir(stateDir);
  } catch (cause) {
    throw new EnvironmentError('E_STATE_DIR', `cannot create the state folder ${stateDir}: ${(cause as Error).message}`, { cause });
  }
  const lockPath = join(stateDir, LOCK_FILE);
  let db: Database.Database;
  try {
    db = new Database(lockPath, { timeout: 0 });
    restrictFile(lockPath);
    db.pragma('locking_mode = EXCLUSIVE');
  } catch (cause) {
    throw new EnvironmentError('E_STATE_LOCK', `cannot open the lock ${lockPath}: ${(cause as Error).message}`, { cause });
  }
  try {
    // A write transaction takes SQLite's EXCLUSIVE lock; in EXCLUSIVE locking mode it is kept until close.
    db.exec('BEGIN EXCLUSIVE');
    db.exec('CREATE TABLE IF NOT EXISTS holder (pid INTEGER NOT NULL, start_time TEXT)');
    db.exec('DELETE FROM holder');
    db.prepare('INSERT INTO holder (pid, start_time) VALUES (?, ?)').run(process.pid, processStartTime(process.pid) ?? null);
    db.exec('COMMIT');
  } catch (cause) {
    db.close();
    if ((cause as { code?: string }).code === 'SQLITE_BUSY' || (cause as { code?: string }).code === 'SQLITE_LOCKED') {
      throw new StateDirLockedError(stateDir, readPidFile(stateDir), { cause });
    }
    throw new EnvironmentError('E_STATE_LOCK', `cannot lock the state folder ${stateDir}: ${(cause as Error).message}`, { cause });
  }
  const pidPath = join(stateDir, PID_FILE);
  const mine = `${process.pid} ${processStartTime(process.pid) ?? ''}`.trim() + '\n';
  try {
    writeFileSync(pidPath, mine, { mode: 0o600 });
    restrictFile(pidPath);
  } catch { /* the pid file only names the holder in the refusal; the OS lock is what excludes */ }
  let released = false;
  return {
    release: () => {
      if (released) return;
      released = true;
      try {
        if (readFileSync(pidPath, 'utf8') === mine) rmSync(pidPath, { force: true });
      } catch { /* already gone */ }
      db.close();
    },
  };
}

/**
 * Is the state folder's lock free right now? Tried without creating or changing anything
 * (`bodycam doctor`): the lock database is opened only if it exists, and a write lock is taken
 * and rolled back at once. 'held' = an agent holds it (SQLITE_BUSY).
 */
export function probeStateLock(stateDir: string): 'free' | 'held' | 'absent' {
  const lockPath = join(stateDir, LOCK_FILE);
  let db: Database.Database;
  try {
    db = new Database(lockPath, { timeout: 0, fileMustExist: true });
  } catch (cause) {
    if ((cause as { code?: string }).code === 'SQLITE_CANTOPEN' && !existsSync(lockPath)) return 'absent';
    throw new EnvironmentError('E_STATE_LOCK', `cannot open the lock ${lockPath}: ${(cause as Error).message}`, { cause });
  }
  try {
    db.exec('BEGIN EXCLUSIVE');
    db.exec('ROLLBACK');
    return 'free';
  } catch (cause) {
    const code = (cause as { code?: string }).code;
    if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED') return 'held';
    throw new EnvironmentError('E_STATE_LOCK', `cannot lock the state folder ${stateDir}: ${(cause as Error).message}`, { cause });
  } finally {
    db.close();
  }
}
