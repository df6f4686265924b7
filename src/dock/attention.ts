/**
 * Problems of the DOCK, not of a recording, that no retry can fix: the server rejects the token,
 * the token belongs to another dock id, the server pinned another dock key, the server refuses the
 * protocol version, the server signs receipts with a key other than the pinned one, the endpoint's
 * path is not the protocol's (a 404 for the route itself, or for the create that every upload starts with). Jobs keep
 * their backoff (the evidence waits, nothing is quarantined for a typo in a token file), but the
 * dock shows `attention` with the stable code and one line saying what to fix at the first such
 * answer, not after the backoff has grown: `bodycam status`, GET /status and GET /healthz.
 *
 * One problem per endpoint (several servers may disagree: one with a stale tokens file while the
 * others work). A problem clears when a request of the kind it blocked succeeds at that endpoint
 * again, or on `reload()` (SIGHUP: the operator fixed the token file or the key).
 */
import { isProblemCode } from '../protocol/problems.js';
import type { Clock } from '../util/clock.js';

export const ATTENTION_CODES = {
  tokenRejected: 'token_rejected',
  tokenOtherDock: 'token_other_dock',
  dockKeyMismatch: 'dock_key_mismatch',
  protocolRefused: 'protocol_refused',
  serverKeyMismatch: 'server_key_mismatch',
  serverNotFound: 'server_not_found',
} as const;

export type AttentionCode = typeof ATTENTION_CODES[keyof typeof ATTENTION_CODES];

export interface DockProblem {
  code: AttentionCode;
  /** One line: what the server said and what to fix. */
  reason: string;
  /** The server that answered (absent for a problem of the dock's own pin). */
  endpoint?: string;
  /** HTTP status of the answer, when one. */
  status?: number;
  /** Unix ms of the first answer of this kind since it last cleared. */
  since: number;
  /** Answers of this kind since then. */
  count: number;
}

/**
 * Which requests prove the problem gone: `auth` any authenticated request (everything but
 * GET /v1/keys, which needs no token), `create` POST /v1/recordings (where the dock key and the
 * protocol version are checked), `receipt` a receipt verified with the pinned key, `keys` GET /v1/keys.
 */
type ClearedBy = 'auth' | 'create' | 'receipt' | 'keys';

/** The kind that clears each code; server_not_found is cleared by the kind of request that got the 404. */
const CLEARED_BY: Record<Exclude<AttentionCode, 'server_not_found'>, ClearedBy> = {
  token_rejected: 'auth',
  token_other_dock: 'create',
  dock_key_mismatch: 'create',
  protocol_refused: 'create',
  server_key_mismatch: 'receipt',
};

const FIX: Record<AttentionCode, string> = {
  token_rejected: 'the server rejected this dock\'s token: check --token-file and --dock-id (and the server\'s tokens file), then reload the dock (SIGHUP)',
  token_other_dock: 'the token belongs to another dock id: check --dock-id and --token-file',
  dock_key_mismatch: 'the server pinned another key for this dock id: keep the dock\'s --state-dir, or ask the operator for `bodycam server reset-dock-key`',
  protocol_refused: 'the server does not speak this dock\'s protocol version: upgrade the dock or the server',
  server_key_mismatch: 'the server signs receipts with a key other than the pinned one: check --server-key (or `bodycam dock trust-server`), then reload the dock (SIGHUP); the recordings wait in quarantine for `bodycam quarantine retry`',
  server_not_found: 'the endpoint does not answer the protocol\'s paths (404): check --endpoint (the ingest server\'s base URL, and any path a proxy puts in front of it; `bodycam doctor` checks it); the recordings wait, nothing is quarantined',
};

/**
 * A 404 for the route itself, not for a recording: the server's `no_such_route` (src/server/index.ts
 * setNotFoundHandler), a server's from before that code (`not_found` with "<METHOD> <url> is not part
 * of protocol v1"), or a 404 without one of the protocol's problem codes (`http_404`: no problem body;
 * a code the protocol does not have: a proxy's or another web server's JSON behind the URL).
 */
export function isMissingRoute(status: number, problemCode: string, detail = ''): boolean {
  return status === 404 && (problemCode === 'no_such_route' || !isProblemCode(problemCode) || / is not part of protocol v\d+/.test(detail));
}

/**
 * The dock-level code of a server answer, or undefined when the answer is about one recording (or
 * transient). With the request it answered: a 404 for the route, or for the create (POST
 * /v1/recordings, which no recording's state can 404), is server_not_found; a 404 about a recording
 * the dock created (a token moved between docks not yet followed) stays a recording's retry.
 */
export function attentionCodeOf(status: number, problemCode: string, request?: { method: string; path: string; detail?: string }): AttentionCode | undefined {
  if (status === 404) {
    const atCreate = request !== undefined && requestKind(request.method, request.path) === 'create';
    return atCreate || isMissingRoute(status, problemCode, request?.detail) ? ATTENTION_CODES.serverNotFound : undefined;
  }
  if (status === 401 || problemCode === 'unauthorized') return ATTENTION_CODES.tokenRejected;
  if (problemCode === 'forbidden') return ATTENTION_CODES.tokenOtherDock;
  if (problemCode === 'dock_key_mismatch') return ATTENTION_CODES.dockKeyMismatch;
  if (problemCode === 'unsupported_protocol') return ATTENTION_CODES.protocolRefused;
  // A 403 without the protocol's code (a proxy in front of the server) is a refusal of this dock too.
  if (status === 403) return ATTENTION_CODES.tokenRejected;
  return undefined;
}

/** The one line a person reads for a dock-level problem. */
export function attentionReason(code: AttentionCode, detail: string, endpoint?: string): string {
  const what = detail ? `: ${detail.slice(0, 300)}` : '';
  return `${code}${endpoint ? ` from ${endpoint}` : ''}${what}: ${FIX[code]}`;
}

/** Problem answers of one kind from one server since the agent started (`serverProblems` in the status). */
export interface ServerProblemTally {
  endpoint: string;
  status: number;
  /** The protocol's problem code, or `http_<status>` for an answer without one (a proxy). */
  code: string;
  count: number;
  /** The server's words in the last such answer (at most 300 characters). */
  detail?: string;
  /** Unix ms of the first and the last such answer. */
  first: number;
  last: number;
}

/** Distinct (server, status, code) kept; the one answered longest ago goes first. */
const MAX_TALLIES = 32;

export class DockAttention {
  private readonly problems = new Map<string, DockProblem>();
  private readonly tallies = new Map<string, ServerProblemTally>();
  /** Bumped on every change: callers that cache a projection can tell it is stale. */
  generation = 0;

  constructor(private readonly clock: Clock) {}

  /** What clears each problem held (by its key). */
  private readonly clearedBy = new Map<string, ClearedBy>();

  private keyOf(by: ClearedBy, code: AttentionCode, endpoint: string | undefined): string {
    return `${endpoint ?? ''}\u0000${by}\u0000${code}`;
  }

  /**
   * A dock-level answer arrived: shown at once. `kind` is the request it answered
   * (requestKind): a server_not_found clears with a success of that kind at that endpoint.
   */
  raise(code: AttentionCode, detail: string, endpoint?: string, status?: number, kind: ClearedBy = 'auth'): DockProblem {
    const by = code === ATTENTION_CODES.serverNotFound ? kind : CLEARED_BY[code];
    const key = this.keyOf(by, code, endpoint);
    const known = this.problems.get(key);
    const problem: DockProblem = {
      code, reason: attentionReason(code, detail, endpoint), ...(endpoint ? { endpoint } : {}), ...(status ? { status } : {}),
      since: known?.since ?? this.clock.now(), count: (known?.count ?? 0) + 1,
    };
    this.problems.set(key, problem);
    this.clearedBy.set(key, by);
    this.generation++;
    return problem;
  }

  /** A request of this kind succeeded at this endpoint: the problems it disproves clear. */
  succeeded(kind: ClearedBy, endpoint?: string): void {
    if (this.problems.size === 0) return;
    for (const [key, problem] of this.problems) {
      if (problem.endpoint !== endpoint && kind !== 'receipt') continue;
      const by = this.clearedBy.get(key)!;
      // A successful create proves the token too; any authenticated success proves only the token. A
      // create proves the path to GET /v1/keys as well: a pinned key is not asked again, and a 404 there
      // must not stay shown after the endpoint was fixed.
      if (by === kind || (kind === 'create' && (by === 'auth' || by === 'keys'))) {
        this.problems.delete(key);
        this.clearedBy.delete(key);
        this.generation++;
      }
    }
  }

  /** SIGHUP: the operator changed something; the next answers say whether it is fixed. */
  reload(): void {
    if (this.problems.size) this.generation++;
    this.problems.clear();
    this.clearedBy.clear();
  }

  /**
   * Every problem answer the server gave (after the per-request retries, and each refusal that sent
   * a request on to another server), dock-level or about one recording: what `replay --endpoint`
   * and `bodycam status` show of the server's side when work does not progress. Never cleared.
   */
  tally(endpoint: string, status: number, code: string, detail?: string): void {
    const key = `${endpoint}\u0000${status}\u0000${code}`;
    const now = this.clock.now();
    const known = this.tallies.get(key);
    const said = detail && detail !== code ? { detail: detail.slice(0, 300) } : {};
    if (known) {
      this.tallies.delete(key); // re-inserted last: the map stays in order of the last answer
      this.tallies.set(key, { ...known, ...said, count: known.count + 1, last: now });
      return;
    }
    if (this.tallies.size >= MAX_TALLIES) this.tallies.delete(this.tallies.keys().next().value!);
    this.tallies.set(key, { endpoint, status, code, count: 1, ...said, first: now, last: now });
  }

  /** The tallies, most answers first. */
  serverProblems(): ServerProblemTally[] {
    return [...this.tallies.values()].sort((a, b) => b.count - a.count || a.first - b.first);
  }

  list(): DockProblem[] {
    return [...this.problems.values()].sort((a, b) => a.since - b.since || a.code.localeCompare(b.code));
  }

  get size(): number { return this.problems.size; }
}

/** The kind of request (for clearing) a method and path are. */
export function requestKind(method: string, path: string): ClearedBy {
  if (path === '/v1/keys') return 'keys';
  if (method === 'POST' && path === '/v1/recordings') return 'create';
  return 'auth';
}
