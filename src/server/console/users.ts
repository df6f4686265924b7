/**
 * The console's people: <data dir>/console-users.json (0600), managed by `bodycam server user
 * add|remove|list`. Passwords are stored as scrypt hashes (node:crypto; N=2^15, r=8, p=1, 16-byte
 * salt, 32-byte key: about 60 ms per try on the build machine), never in clear. Written atomically
 * (temp, fsync, rename, fsync dir) under an exclusive lock (console-users.lock beside it: two commands
 * at once each keep their change); a running server re-reads the file when it changed.
 * Names are case-insensitive (Alice and alice are one user): a name is ASCII by its pattern, so it is
 * folded with ASCII rules only. Unicode case folding would make the Kelvin sign (U+212A) a `k` and
 * 'İ' an `i` plus a combining dot: a name that needs it is simply no user's, and never shares a
 * user's lockout counter under another spelling.
 */
import { randomBytes, scrypt as scryptCallback, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { join } from 'node:path';
import { errnoCode, InputError, UsageError } from '../../errors.js';
import { withFileLock } from '../../util/fileLock.js';
import { PrivateFileError, readPrivateFile } from '../../util/privateFile.js';
import { makePrivateDir, replaceFile } from '../privateFiles.js';

export type Role = 'reviewer' | 'admin';
export const ROLES: readonly Role[] = ['reviewer', 'admin'];
export const USERS_FILE = 'console-users.json';
/** Held (src/util/fileLock.ts) around every add/remove: two commands at once never lose each other's change. */
export const USERS_LOCK_FILE = 'console-users.lock';
const NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;
export const MIN_PASSWORD = 10;
export const MAX_PASSWORD = 1024;

interface ScryptParams { N: number; r: number; p: number; keyLength: number }
const PARAMS: ScryptParams = { N: 2 ** 15, r: 8, p: 1, keyLength: 32 };

export interface UserRecord {
  name: string;
  role: Role;
  /** scrypt$N$r$p$<salt base64>$<key base64> */
  password: string;
  createdAt: string;
}

interface UsersFile { format: 'bodycam-console-users/1'; users: UserRecord[] }

function scrypt(password: string, salt: Buffer, params: ScryptParams): Promise<Buffer> {
  const options: ScryptOptions = { N: params.N, r: params.r, p: params.p, maxmem: 128 * params.N * params.r * 2 };
  return new Promise((resolve, reject) => scryptCallback(password.normalize('NFC'), salt, params.keyLength, options, (error, key) => (error ? reject(error) : resolve(key))));
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scrypt(password, salt, PARAMS);
  return `scrypt$${PARAMS.N}$${PARAMS.r}$${PARAMS.p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

export async function checkPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [N, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
  const salt = Buffer.from(parts[4]!, 'base64');
  const expected = Buffer.from(parts[5]!, 'base64');
  if (!(N >= 2 ** 10 && N <= 2 ** 20 && r >= 1 && r <= 32 && p >= 1 && p <= 16) || expected.length < 16) return false;
  const key = await scrypt(password, salt, { N, r, p, keyLength: expected.length });
  return timingSafeEqual(key, expected);
}

/** A hash to check against when the name is unknown, so an unknown name costs as long as a wrong password. */
let decoy: Promise<string> | undefined;
export function decoyHash(): Promise<string> {
  return decoy ??= hashPassword(randomBytes(16).toString('hex'));
}

/** The key a name is looked up, locked out and compared by: ASCII letters folded to lower case, nothing else changed. */
export function userKey(name: string): string {
  return name.replace(/[A-Z]+/g, (upper) => upper.toLowerCase());
}

export function checkName(name: string): string {
  if (!NAME.test(name)) throw new UsageError(`invalid --name ${JSON.stringify(name)}: 1-64 letters, digits, . _ @ -, starting with a letter or digit`);
  return name;
}

export function checkRole(role: string): Role {
  if (!(ROLES as readonly string[]).includes(role)) throw new UsageError(`invalid --role ${JSON.stringify(role)}: reviewer or admin`);
  return role as Role;
}

export function checkNewPassword(password: string): string {
  if (password.length < MIN_PASSWORD) throw new UsageError(`the password is too short: at least ${MIN_PASSWORD} characters`);
  if (password.length > MAX_PASSWORD) throw new UsageError(`the password is too long: at most ${MAX_PASSWORD} characters`);
  return password;
}

export class UserStore {
  private cached: { stamp: string; records: UserRecord[]; users: Map<string, UserRecord> } | undefined;

  constructor(private readonly dataDir: string) {}

  get path(): string { return join(this.dataDir, USERS_FILE); }

  /**
   * The users who may sign in, keyed by userKey(name) (re-read when the file changed). Records whose
   * name is not a valid name, and names that fold to one key more than once (a file edited by hand
   * or written before names were case-insensitive), sign nobody in: which of them was meant is not
   * the server's to guess. `bodycam server user list` shows them.
   */
  async load(): Promise<Map<string, UserRecord>> {
    return (await this.read()).users;
  }

  /** Every record in the file, and the keys more than one of them folds to. */
  async list(): Promise<{ records: UserRecord[]; conflicting: Set<string> }> {
    const { records, users } = await this.read();
    return { records, conflicting: new Set(records.map((r) => userKey(r.name)).filter((k) => !users.has(k))) };
  }

  private async read(): Promise<{ records: UserRecord[]; users: Map<string, UserRecord> }> {
    let read: { text: string; stats: { dev: number; ino: number; size: number; mtimeMs: number; ctimeMs: number } };
    try {
      // The file holds the admins' password hashes: writable by others, anyone on this host adds an admin;
      // readable, they take the hashes away to guess at. Refused as the tokens file is (nobody signs in).
      read = readPrivateFile(this.path, { kind: 'secret', label: 'console users file', why: 'it holds the console\'s password hashes' });
    } catch (error) {
      if (error instanceof PrivateFileError && error.problem === 'unreadable' && errnoCode(error.cause) === 'ENOENT') return { records: [], users: new Map() };
      if (error instanceof PrivateFileError && error.problem !== 'unreadable') throw new InputError('E_USERS_FILE', error.message, { cause: error });
      throw error instanceof PrivateFileError ? error.cause : error;
    }
    const info = read.stats;
    // Inode and ctime too: a replaced file (user add/remove write a new one and rename it in) of the
    // same size within one mtime tick must not keep an old password working.
    const stamp = `${info.dev}:${info.ino}:${info.size}:${info.mtimeMs}:${info.ctimeMs}`;
    if (this.cached?.stamp === stamp) return this.cached;
    let parsed: UsersFile;
    try {
      parsed = JSON.parse(read.text) as UsersFile;
    } catch (error) {
      throw new InputError('E_USERS_FILE', `${this.path} is not a console users file (${error instanceof Error ? error.message : String(error)})`, { cause: error });
    }
    if (parsed?.format !== 'bodycam-console-users/1' || !Array.isArray(parsed.users)) throw new InputError('E_USERS_FILE', `${this.path} is not a console users file`);
    const records = parsed.users.filter((u) => typeof u?.name === 'string' && NAME.test(u.name) && ROLES.includes(u.role) && typeof u.password === 'string');
    const users = new Map<string, UserRecord>();
    const twice = new Set<string>();
    for (const u of records) {
      const key = userKey(u.name);
      if (users.has(key)) twice.add(key); else users.set(key, u);
    }
    for (const key of twice) users.delete(key);
    this.cached = { stamp, records, users };
    return this.cached;
  }

  /**
   * Add a user; a name that is already one (in any case) is refused unless `replace`, which sets
   * a new password and role and keeps the name as first written (the name custody entries carry).
   */
  async add(name: string, role: Role, password: string, options: { replace?: boolean } = {}): Promise<'added' | 'replaced'> {
    const key = userKey(checkName(name));
    // Hashed before the lock is taken (about 60 ms of CPU): the lock is held only to read, change and write.
    const hash = await hashPassword(checkNewPassword(password));
    return this.change(async (records) => {
      const same = records.filter((u) => userKey(u.name) === key);
      if (same.length > 0 && !options.replace) {
        throw new UsageError(`there is already a user ${same.map((u) => u.name).join(', ')} (names are case-insensitive): choose another name, or add --replace to set a new password and role`);
      }
      const kept = records.filter((u) => userKey(u.name) !== key);
      kept.push({ name: same[0]?.name ?? name, role, password: hash, createdAt: same[0]?.createdAt ?? new Date().toISOString() });
      return { records: kept, result: same.length > 0 ? 'replaced' : 'added' };
    });
  }

  /** Remove the user of this name in any case (every record of it). */
  async remove(name: string): Promise<boolean> {
    const key = userKey(name);
    return this.change(async (records) => {
      const kept = records.filter((u) => userKey(u.name) !== key);
      return { records: kept.length === records.length ? undefined : kept, result: kept.length !== records.length };
    });
  }

  /**
   * Read, change and write the file under the users lock, the file read afresh inside it: another
   * command's change written meanwhile is the base of this one, never overwritten by a stale copy.
   * `records: undefined` = nothing to write.
   */
  private async change<T>(edit: (records: UserRecord[]) => Promise<{ records: UserRecord[] | undefined; result: T }>): Promise<T> {
    await makePrivateDir(this.dataDir);
    return withFileLock(join(this.dataDir, USERS_LOCK_FILE), `the users file ${this.path}`, async () => {
      this.cached = undefined;
      const { records } = await this.read();
      const { records: next, result } = await edit(records);
      if (next) await this.save(next);
      return result;
    });
  }

  private async save(records: UserRecord[]): Promise<void> {
    const file: UsersFile = { format: 'bodycam-console-users/1', users: [...records].sort((a, b) => (userKey(a.name) < userKey(b.name) ? -1 : 1)) };
    await replaceFile(this.path, JSON.stringify(file, null, 2) + '\n');
    this.cached = undefined;
  }
}
