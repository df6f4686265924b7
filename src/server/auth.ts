/**
 * Per-dock bearer tokens. Every configured token is compared (in constant time,
 * over fixed-length digests) so that neither the match nor its position leaks
 * through timing.
 *
 * A token table is refused as a whole (nothing of it is used) when any token is weak,
 * contains whitespace or control characters, or is shared by two docks: a shared token
 * makes the second dock read and write as the first. Every message names the dock id and
 * never the token. The rules (docs/protocol.md#tokens):
 *  - printable ASCII only (0x21–0x7e): no spaces, tabs, newlines or control characters;
 *  - at least 128 bits by the estimate length × log2(alphabet), where the alphabet is the
 *    sum of the character classes used (a–z 26, A–Z 26, 0–9 10, punctuation 32), or 16 for a
 *    token of hex digits only: so 32 hex digits or 22 base64url characters (with upper, lower
 *    and digits) are the shortest that pass;
 *  - enough variety that the estimate means something: at least 8 distinct characters, no
 *    character more than 40% of the token, not a shorter string repeated, and no run of 8 or
 *    more consecutive characters (abcdefgh, 98765432).
 * A random token never trips the variety rules in practice (32 random hex digits have at least
 * 9 distinct characters in 200 000 draws). `bodycam server token new` prints 32 random bytes
 * as base64url (43 characters, 256 bits).
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { readPrivateFile } from '../util/privateFile.js';
import { errnoCode, UsageError } from '../errors.js';
import { isValidId } from '../protocol/types.js';

export const MIN_TOKEN_BITS = 128;
const MIN_DISTINCT = 8;
const MAX_SHARE = 0.4;
const MAX_RUN = 7;

/** A fresh token: 32 random bytes, base64url (43 characters, 256 bits). */
export function generateToken(): string {
  return randomBytes(32).toString('base64url');
}

/** The estimate of a token's entropy in bits (length × log2 of the alphabet of the classes it uses). */
export function estimateTokenBits(token: string): number {
  let alphabet: number;
  if (/^[0-9]+$/.test(token)) alphabet = 10;
  else if (/^[0-9a-f]+$/.test(token) || /^[0-9A-F]+$/.test(token)) alphabet = 16;
  else {
    alphabet = (/[a-z]/.test(token) ? 26 : 0) + (/[A-Z]/.test(token) ? 26 : 0) + (/[0-9]/.test(token) ? 10 : 0) + (/[^A-Za-z0-9]/.test(token) ? 32 : 0);
  }
  return token.length === 0 ? 0 : token.length * Math.log2(alphabet);
}

/** Why a token is refused, in words that never include the token itself; undefined when it is good. */
export function tokenWeakness(token: unknown): string | undefined {
  if (typeof token !== 'string') return 'is not a string';
  if (token.length === 0) return 'is empty';
  // eslint-disable-next-line no-control-regex
  if (/[\s\x00-\x1f\x7f]/u.test(token)) return 'contains whitespace or control characters (a token is printable ASCII without spaces)';
  if (/[^\x21-\x7e]/.test(token)) return 'contains characters outside printable ASCII (a token is printable ASCII without spaces)';
  const bits = estimateTokenBits(token);
  if (bits < MIN_TOKEN_BITS) return `is too weak: about ${Math.floor(bits)} bits by its length (${token.length}) and character classes, at least ${MIN_TOKEN_BITS} are needed (32 hex digits, 22+ base64url characters)`;
  const counts = new Map<string, number>();
  for (const c of token) counts.set(c, (counts.get(c) ?? 0) + 1);
  if (counts.size < MIN_DISTINCT) return `has too little variety: ${counts.size} distinct characters, at least ${MIN_DISTINCT} are needed`;
  if (Math.max(...counts.values()) > MAX_SHARE * token.length) return `has too little variety: one character makes up more than ${MAX_SHARE * 100}% of it`;
  for (let period = 1; period <= token.length / 2; period++) {
    if (token.length % period === 0 && token.slice(0, period).repeat(token.length / period) === token) return 'has too little variety: it is a shorter string repeated';
  }
  let run = 1;
  let step = 0;
  for (let i = 1; i < token.length; i++) {
    const d = token.charCodeAt(i) - token.charCodeAt(i - 1);
    run = d === 1 || d === -1 ? (d === step ? run + 1 : 2) : 1;
    step = d;
    if (run > MAX_RUN) return `has too little variety: it contains a run of ${MAX_RUN + 1} or more consecutive characters`;
  }
  return undefined;
}

/**
 * Check a whole table: valid dock ids, good tokens, no token shared by two docks.
 * `label` starts every message (e.g. `--tokens: tokens.json`).
 */
export function checkTokenTable(tokens: unknown, label = 'tokens'): Record<string, string> {
  if (typeof tokens !== 'object' || tokens === null || Array.isArray(tokens) || Object.keys(tokens).length === 0) {
    throw new UsageError(`${label}: must be a non-empty JSON object {"<dock id>": "<token>"}`, { code: 'E_TOKENS' });
  }
  const byDigest = new Map<string, string>();
  for (const [dockId, token] of Object.entries(tokens as Record<string, unknown>)) {
    if (!isValidId(dockId)) throw new UsageError(`${label}: ${JSON.stringify(String(dockId).slice(0, 140))} is not a valid dock id`, { code: 'E_TOKENS' });
    const weakness = tokenWeakness(token);
    if (weakness) throw new UsageError(`${label}: the token of dock ${dockId} ${weakness}; make one with \`bodycam server token new\``, { code: 'E_TOKEN_WEAK' });
    const digest = digestOf(token as string).toString('hex');
    const other = byDigest.get(digest);
    if (other !== undefined) throw new UsageError(`${label}: docks ${other} and ${dockId} share one token, so each could act as the other; give each dock its own (\`bodycam server token new\`)`, { code: 'E_TOKEN_SHARED' });
    byDigest.set(digest, dockId);
  }
  return tokens as Record<string, string>;
}

/**
 * Read and check a tokens file. It holds every dock's secret, so it must not be readable or
 * writable by group or others (mode & 0o077 = 0): the server refuses to start otherwise.
 */
export function loadTokensFile(path: string, label = '--tokens'): Record<string, string> {
  const text = readPrivateFile(path, {
    kind: 'secret', label: `${label}:`, why: 'it holds every dock\'s secret', code: 'E_TOKENS_MODE',
    unreadable: { message: (cause) => `${label}: cannot read ${path} (${errnoCode(cause) ?? String(cause)})`, code: 'E_TOKENS' },
  }).text;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new UsageError(`${label}: ${path} is not valid JSON`, { cause: error, code: 'E_TOKENS' });
  }
  return checkTokenTable(parsed, `${label}: ${path}`);
}

/** A dock's token as the server keeps it: its SHA-256 only (what PostgreSQL holds with --db). */
export interface TokenDigest { dockId: string; digest: Buffer }

export class TokenTable {
  private entries: TokenDigest[];

  /** From a checked tokens file, or (with --db) from the digests the database holds (checked when imported). */
  constructor(tokens: Record<string, string> | TokenDigest[]) {
    this.entries = Array.isArray(tokens) ? [...tokens] : TokenTable.digests(tokens);
  }

  /** The digests of a table that passes the checks (throws, naming the dock, otherwise). */
  static digests(tokens: Record<string, string>): TokenDigest[] {
    checkTokenTable(tokens);
    return Object.entries(tokens).map(([dockId, token]) => ({ dockId, digest: digestOf(token) }));
  }

  /** Replace every token at once (SIGHUP); a table that fails the checks throws and changes nothing. */
  replace(tokens: Record<string, string> | TokenDigest[]): { added: string[]; removed: string[]; docks: number } {
    const next = Array.isArray(tokens) ? [...tokens] : TokenTable.digests(tokens);
    const before = new Set(this.entries.map((e) => e.dockId));
    const after = new Set(next.map((e) => e.dockId));
    this.entries = next;
    return { added: [...after].filter((d) => !before.has(d)).sort(), removed: [...before].filter((d) => !after.has(d)).sort(), docks: after.size };
  }

  /** The dock ids that have a token, sorted. */
  dockIds(): string[] {
    return this.entries.map((e) => e.dockId).sort();
  }

  /** The dock id an Authorization header authenticates, or undefined. */
  authenticate(header: string | undefined): string | undefined {
    const match = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    if (!match) return undefined;
    const presented = digestOf(match[1]!);
    let found: string | undefined;
    for (const entry of this.entries) {
      if (timingSafeEqual(entry.digest, presented) && found === undefined) found = entry.dockId;
    }
    return found;
  }
}

function digestOf(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}
