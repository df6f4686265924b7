/**
 * Console sign-in: sessions and lockout, in memory (a restart signs everyone out, which is the
 * safe direction). A session id is 32 random bytes; the cookie holds it, the server keeps only its
 * SHA-256. Each session has its own CSRF token, required in every form POST besides SameSite=Strict
 * and the Origin check (routes.ts). Lockout: after `maxFailures` failed sign-ins for one name, or
 * from one address, within `windowMs`, sign-in for it is refused (even with the right password)
 * until the window since the last failure passes.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Role } from './users.js';

export interface Session {
  name: string;
  role: Role;
  csrf: string;
  createdAt: number;
  lastUsed: number;
}

export interface SessionOptions {
  /** Idle sessions end after this long (default 30 min). */
  idleMs?: number;
  /** A session ends this long after sign-in, however busy (default 12 h). */
  absoluteMs?: number;
  maxFailures?: number;
  windowMs?: number;
  now?: () => number;
  /** Most sessions kept; the oldest go first (default 10 000). */
  maxSessions?: number;
}

const hashId = (id: string) => createHash('sha256').update(id).digest('hex');

export class Sessions {
  private readonly sessions = new Map<string, Session>();
  private readonly failures = new Map<string, { count: number; last: number }>();
  private readonly now: () => number;
  readonly idleMs: number;
  private readonly absoluteMs: number;
  private readonly maxFailures: number;
  private readonly windowMs: number;
  private readonly maxSessions: number;

  constructor(options: SessionOptions = {}) {
    this.now = options.now ?? Date.now;
    this.idleMs = options.idleMs ?? 30 * 60_000;
    this.absoluteMs = options.absoluteMs ?? 12 * 3600_000;
    this.maxFailures = options.maxFailures ?? 5;
    this.windowMs = options.windowMs ?? 15 * 60_000;
    this.maxSessions = options.maxSessions ?? 10_000;
  }

  /** New session; returns the id for the cookie (never stored). */
  create(name: string, role: Role): { id: string; session: Session } {
    const id = randomBytes(32).toString('base64url');
    const now = this.now();
    const session: Session = { name, role, csrf: randomBytes(24).toString('base64url'), createdAt: now, lastUsed: now };
    if (this.sessions.size >= this.maxSessions) this.sessions.delete(this.sessions.keys().next().value!);
    this.sessions.set(hashId(id), session);
    return { id, session };
  }

  /** The live session of a cookie value, touched; undefined when unknown or expired. */
  get(id: string | undefined): Session | undefined {
    if (!id || id.length > 100) return undefined;
    const key = hashId(id);
    const session = this.sessions.get(key);
    if (!session) return undefined;
    const now = this.now();
    if (now - session.lastUsed > this.idleMs || now - session.createdAt > this.absoluteMs) {
      this.sessions.delete(key);
      return undefined;
    }
    session.lastUsed = now;
    return session;
  }

  destroy(id: string | undefined): void {
    if (id) this.sessions.delete(hashId(id));
  }

  /** Sessions of a user end when the user is removed or changed. */
  destroyUser(name: string): void {
    for (const [key, s] of this.sessions) if (s.name === name) this.sessions.delete(key);
  }

  names(): Set<string> {
    return new Set([...this.sessions.values()].map((s) => s.name));
  }

  /** Seconds until sign-in is allowed again for this name or address, or 0. An address (`ip:` key) gets ten times the failures of a name: many people share one NAT or proxy. */
  lockedFor(...keys: string[]): number {
    const now = this.now();
    let wait = 0;
    for (const key of keys) {
      const f = this.failures.get(key);
      if (!f) continue;
      if (now - f.last > this.windowMs) { this.failures.delete(key); continue; }
      if (f.count >= (key.startsWith('ip:') ? this.maxFailures * 10 : this.maxFailures)) wait = Math.max(wait, Math.ceil((this.windowMs - (now - f.last)) / 1000));
    }
    return wait;
  }

  fail(...keys: string[]): void {
    const now = this.now();
    for (const key of keys) {
      const f = this.failures.get(key);
      const count = f && now - f.last <= this.windowMs ? f.count + 1 : 1;
      this.failures.set(key, { count, last: now });
    }
    if (this.failures.size > 100_000) this.prune(now);
  }

  /**
   * A flood of names must not grow memory without bound, nor lift a lockout: drop the expired
   * entries, then those below the lockout threshold; the locked ones stay (each cost its sender
   * `maxFailures` tries, and an address is itself locked after ten times that).
   */
  private prune(now: number): void {
    for (const [key, f] of this.failures) if (now - f.last > this.windowMs) this.failures.delete(key);
    if (this.failures.size <= 100_000) return;
    for (const [key, f] of this.failures) if (f.count < this.maxFailures) this.failures.delete(key);
  }

  /**
   * A sign-in that worked clears its name's failures, never an address's (`ip:`): otherwise one
   * valid account signed in between guesses resets the address limit and sprays every other name.
   */
  succeed(...keys: string[]): void {
    for (const key of keys) if (!key.startsWith('ip:')) this.failures.delete(key);
  }
}
