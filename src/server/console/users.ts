/**
 * The console's people: <data dir>/console-users.json (0600), managed by `bodycam server user
 * add|remove|list`. Passwords are stored as scrypt hashes (node:crypto; N=2^15, r=8, p=1, 16-byte
 * salt, 32-byte key: about 60 ms per try on the build machine), never in clear. Written atomically
 * (temp, fsync, rename, fsync dir); a running server re-reads the file when it changed.
 */
import { randomBytes, scrypt as scryptCallback, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode, InputError, UsageError } from '../../errors.js';
import { makePrivateDir, replaceFile } from '../privateFiles.js';

export type Role = 'reviewer' | 'admin';
export const ROLES: readonly Role[] = ['reviewer', 'admin'];
export const USERS_FILE = 'console-users.json';
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
  private cached: { mtimeMs: number; size: number; users: Map<string, UserRecord> } | undefined;

  constructor(private readonly dataDir: string) {}

  get path(): string { return join(this.dataDir, USERS_FILE); }

  /** The users as the file holds them now (re-read when it changed). */
  async load(): Promise<Map<string, UserRecord>> {
    let info;
    try {
      info = await stat(this.path);
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return new Map();
      throw error;
    }
    if (this.cached && this.cached.mtimeMs === info.mtimeMs && this.cached.size === info.size) return this.cached.users;
    let parsed: UsersFile;
    try {
      parsed = JSON.parse(await readFile(this.path, 'utf8')) as UsersFile;
    } catch (error) {
      throw new InputError('E_USERS_FILE', `${this.path} is not a console users file (${error instanceof Error ? error.message : String(error)})`, { cause: error });
    }
    if (parsed?.format !== 'bodycam-console-users/1' || !Array.isArray(parsed.users)) throw new InputError('E_USERS_FILE', `${this.path} is not a console users file`);
    const users = new Map(parsed.users.filter((u) => typeof u?.name === 'string' && ROLES.includes(u.role)).map((u) => [u.name, u]));
    this.cached = { mtimeMs: info.mtimeMs, size: info.size, users };
    return users;
  }

  async add(name: string, role: Role, password: string): Promise<'added' | 'replaced'> {
    const users = new Map(await this.load());
    const existed = users.has(checkName(name));
    users.set(name, { name, role, password: await hashPassword(checkNewPassword(password)), createdAt: new Date().toISOString() });
    await this.save(users);
    return existed ? 'replaced' : 'added';
  }

  async remove(name: string): Promise<boolean> {
    const users = new Map(await this.load());
    if (!users.delete(name)) return false;
    await this.save(users);
    return true;
  }

  private async save(users: Map<string, UserRecord>): Promise<void> {
    await makePrivateDir(this.dataDir);
    const file: UsersFile = { format: 'bodycam-console-users/1', users: [...users.values()].sort((a, b) => (a.name < b.name ? -1 : 1)) };
    await replaceFile(this.path, JSON.stringify(file, null, 2) + '\n');
    this.cached = undefined;
  }
}
