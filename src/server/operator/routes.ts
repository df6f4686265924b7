/**
 * The operator's read-only API (admin token): every dock's state, and the recordings of any
 * dock in bounded pages (docs/protocol.md, "Operator API").
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ProblemError } from '../problem.js';
import type { AdminToken } from './adminToken.js';
import { CursorError, type Catalog, type RecordingFilter } from './catalog.js';

export const DEFAULT_PAGE = 100;
export const MAX_PAGE = 1000;

export interface OperatorQuery extends RecordingFilter { limit?: string; cursor?: string }

const FILTER_KEYS = ['dock', 'device', 'state', 'integrity', 'category', 'day'] as const;

/** The query parameters GET /v1/recordings takes; any other (a typo, `dock[]=`) is refused, never ignored. */
export const RECORDINGS_QUERY_KEYS: readonly string[] = [...FILTER_KEYS, 'limit', 'cursor'];

/**
 * 400 `bad_request` for a query parameter the route does not take: an ignored one (a misspelt
 * filter, a `limit` on a list that is not paged) would answer more than was asked, silently.
 */
export function refuseUnknownQuery(route: string, query: unknown, allowed: readonly string[]): void {
  const unknown = Object.keys((query ?? {}) as Record<string, unknown>).find((key) => !allowed.includes(key));
  if (unknown === undefined) return;
  const takes = allowed.length ? `it takes ${allowed.join(', ')}` : 'it takes none (the list is whole, not paged)';
  throw new ProblemError('bad_request', `${route} has no query parameter ${JSON.stringify(unknown.slice(0, 60))}: ${takes}`);
}

export function parseOperatorQuery(query: OperatorQuery): { filter: RecordingFilter; limit: number; cursor?: string } {
  refuseUnknownQuery('GET /v1/recordings', query, RECORDINGS_QUERY_KEYS);
  const filter: RecordingFilter = {};
  for (const key of FILTER_KEYS) {
    const value = query[key];
    if (value === undefined) continue;
    if (typeof value !== 'string' || value.length > 200) throw new ProblemError('bad_request', `${key} must be given once, at most 200 characters`);
    filter[key] = value;
  }
  if (filter.state !== undefined && !['receiving', 'complete', 'stale'].includes(filter.state)) throw new ProblemError('bad_request', 'state must be receiving, complete or stale');
  if (filter.day !== undefined && !/^\d{4}-\d{2}-\d{2}$/.test(filter.day)) throw new ProblemError('bad_request', 'day must be YYYY-MM-DD');
  let limit = DEFAULT_PAGE;
  if (query.limit !== undefined) {
    if (typeof query.limit !== 'string' || !/^[1-9][0-9]{0,6}$/.test(query.limit)) throw new ProblemError('bad_request', `limit must be a whole number from 1 to ${MAX_PAGE}`);
    limit = Math.min(Number(query.limit), MAX_PAGE);
  }
  if (query.cursor !== undefined && typeof query.cursor !== 'string') throw new ProblemError('bad_request', 'cursor must be given once');
  return { filter, limit, ...(query.cursor !== undefined ? { cursor: query.cursor } : {}) };
}

/** A page waits this long for a catalog still being built at start-up, then answers 503 with Retry-After. */
export const API_BUILD_WAIT_MS = 5000;

/** Refresh the catalog, or 503 `unavailable` (Retry-After 2) while it is first being built and not done within the wait. */
export async function catalogReady(catalog: Catalog, waitMs = API_BUILD_WAIT_MS): Promise<void> {
  if (await catalog.refreshWithin(waitMs)) return;
  const progress = catalog.building;
  throw new ProblemError('unavailable', `the server is reading its recordings after a start (${progress ? `${progress.read} of ${progress.total || '?'} records read` : 'almost done'}); retry shortly`, { retryAfter: 2 });
}

/** One page of the catalog as the API answers it. */
export async function recordingsPage(catalog: Catalog, query: OperatorQuery, forcedDock?: string) {
  const { filter, limit, cursor } = parseOperatorQuery(query);
  if (forcedDock !== undefined) {
    if (filter.dock !== undefined && filter.dock !== forcedDock) throw new ProblemError('admin_only', 'a dock token lists its own recordings only; other docks need the admin token');
    filter.dock = forcedDock;
  }
  await catalogReady(catalog);
  try {
    const page = catalog.page(filter, limit, cursor);
    return { recordings: page.items, total: page.total, ...(page.next ? { next: page.next } : {}) };
  } catch (error) {
    if (error instanceof CursorError) throw new ProblemError('bad_request', error.message, { cause: error });
    throw error;
  }
}

export function registerOperatorRoutes(app: FastifyInstance, deps: { catalog: Catalog; admin: AdminToken | undefined }): void {
  const { catalog } = deps;
  const requireAdmin = async (request: FastifyRequest) => {
    if (!deps.admin) throw new ProblemError('admin_only', 'this server has no admin token (start it with --admin-token-file)');
    if (!deps.admin.matches(request.headers.authorization)) {
      throw request.headers.authorization ? new ProblemError('admin_only', 'this needs the admin token, not a dock token') : new ProblemError('unauthorized', 'send Authorization: Bearer <admin token>');
    }
  };

  app.get('/v1/docks', { onRequest: requireAdmin }, async (request) => {
    refuseUnknownQuery('GET /v1/docks', request.query, []);
    await catalogReady(catalog);
    return { docks: await catalog.docks(), staleAfterSeconds: Math.round(catalog.staleAfterMs / 1000) };
  });

  app.get('/v1/cameras', { onRequest: requireAdmin }, async (request) => {
    refuseUnknownQuery('GET /v1/cameras', request.query, []);
    await catalogReady(catalog);
    return { cameras: catalog.cameras() };
  });
}
