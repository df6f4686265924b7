/**
 * Dock tokens shared by every server of one database (`--db`): the SHA-256 of each token, never
 * the token, in `dock_tokens`, and a generation that moves with every import. The tokens file
 * stays what the operator edits; it reaches the database when
 *  - the first server starts with it (the table is empty),
 *  - any server gets SIGHUP (it imports its file: the old semantics, now for every server), or
 *  - `bodycam server token import --db … --tokens FILE` runs.
 * A server started later with another (an older) file does not import it: the database's
 * tokens apply and the server says so in one warning line, so a stale copy on one host never
 * takes a dock's token back from the others.
 *
 * Every server follows the database: it reads the generation every `pollMs` (2 s) and reloads
 * the table when it moved (a removed dock gets 401 everywhere within that time), and an unknown
 * token makes it look at once (at most once a second), so a newly added dock is accepted by every
 * server from its first request.
 */
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import type pg from 'pg';
import { UsageError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { TokenTable, type TokenDigest } from '../auth.js';
import { inTransaction } from './checkout.js';
import { SQL } from './sql.js';

export interface SharedTokenState { generation: number; tableSha256: string | undefined; importedAt?: string; importedBy?: string }

/** SHA-256 over the sorted (dock id, digest) pairs: equal for two files with the same tokens. */
export function tableDigest(entries: readonly TokenDigest[]): string {
  const hash = createHash('sha256');
  for (const e of [...entries].sort((a, b) => (a.dockId < b.dockId ? -1 : a.dockId > b.dockId ? 1 : 0))) hash.update(`${e.dockId}\n${e.digest.toString('hex')}\n`);
  return hash.digest('hex');
}

export async function readTokenState(db: Pick<pg.Pool, 'query'>): Promise<SharedTokenState> {
  const row = (await db.query<{ generation: string; table_sha256: string | null; imported_at: Date | null; imported_by: string | null }>(SQL.tokensState)).rows[0];
  return {
    generation: Number(row?.generation ?? 0), tableSha256: row?.table_sha256 ?? undefined,
    ...(row?.imported_at ? { importedAt: row.imported_at.toISOString() } : {}), ...(row?.imported_by ? { importedBy: row.imported_by } : {}),
  };
}

export async function readTokens(db: Pick<pg.Pool, 'query'>): Promise<TokenDigest[]> {
  return (await db.query<{ dock_id: string; token_sha256: string }>(SQL.tokensAll)).rows.map((r) => ({ dockId: r.dock_id, digest: Buffer.from(r.token_sha256, 'hex') }));
}

/** Replace every token in the database at once (one transaction); the caller checked the table (TokenTable.digests). */
export async function importTokens(pool: pg.Pool, entries: readonly TokenDigest[], by = `${hostname()} pid ${process.pid}`): Promise<number> {
  return inTransaction(pool, async (client) => {
    await client.query(SQL.tokensStateLock);
    await client.query(SQL.tokensClear);
    await client.query(SQL.tokensInsert, [entries.map((e) => e.dockId), entries.map((e) => e.digest.toString('hex'))]);
    return Number((await client.query<{ generation: string }>(SQL.tokensStateMove, [tableDigest(entries), by])).rows[0]!.generation);
  });
}

/** Keeps one server's TokenTable equal to the database's (see the top of this file). */
export class TokenFollower {
  private generation = -1;
  private timer: NodeJS.Timeout | undefined;
  private lastLook = 0;
  private looking: Promise<boolean> | undefined;

  constructor(private readonly pool: pg.Pool, readonly table: TokenTable, private readonly options: { log?: Logger; pollMs?: number; now?: () => number } = {}) {}

  /**
   * At start: import `fileEntries` when the database has no tokens yet, else take the database's
   * (warning when the file differs). Returns what applies.
   */
  async start(fileEntries: readonly TokenDigest[] | undefined, file?: string): Promise<{ imported: boolean; docks: number }> {
    let state = await readTokenState(this.pool);
    let imported = false;
    if (fileEntries?.length && state.generation === 0) {
      await importTokens(this.pool, fileEntries);
      imported = true;
      state = await readTokenState(this.pool);
    } else if (fileEntries?.length && state.tableSha256 !== tableDigest(fileEntries)) {
      this.options.log?.warn(`--tokens ${file ?? ''} differs from the dock tokens in the database (imported ${state.importedAt ?? '?'} by ${state.importedBy ?? '?'}): the database's apply to every server; SIGHUP this server or run \`bodycam server token import\` to make this file the truth`, { file });
    }
    const entries = await readTokens(this.pool);
    this.table.replace(entries);
    this.generation = state.generation;
    this.timer = setInterval(() => { this.follow().catch(() => { /* the database is away: the next tick looks again */ }); }, this.options.pollMs ?? 2000);
    this.timer.unref();
    return { imported, docks: entries.length };
  }

  /** SIGHUP: this server's file becomes every server's tokens. */
  async importFile(entries: readonly TokenDigest[]): Promise<{ added: string[]; removed: string[]; docks: number }> {
    const generation = await importTokens(this.pool, entries);
    const change = this.table.replace([...entries]);
    this.generation = generation;
    return change;
  }

  /** An unknown token was presented: look at the database now, at most once a second. True when the table changed. */
  lookNow(): Promise<boolean> {
    const now = (this.options.now ?? Date.now)();
    if (this.looking) return this.looking;
    if (now - this.lastLook < 1000) return Promise.resolve(false);
    this.lastLook = now;
    this.looking = this.follow().catch(() => false).finally(() => { this.looking = undefined; });
    return this.looking;
  }

  private async follow(): Promise<boolean> {
    const state = await readTokenState(this.pool);
    if (state.generation === this.generation) return false;
    const entries = await readTokens(this.pool);
    // The generation was read before the entries: an import in between is picked up on the next look.
    const change = this.table.replace(entries);
    this.generation = state.generation;
    if (change.added.length || change.removed.length) this.options.log?.info('tokens reloaded from the database', { generation: state.generation, docks: change.docks, added: change.added, removed: change.removed });
    return true;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }
}

/** `bodycam server token import`: the file's digests into the database (migrated first: a fresh database is fine). */
export async function importTokenFile(url: string, entries: readonly TokenDigest[]): Promise<{ generation: number; docks: number }> {
  const { createPool, migrate, redactUrl, isDatabaseUnavailable } = await import('./pgState.js');
  const pool = createPool(url, 1);
  try {
    await migrate(pool);
    return { generation: await importTokens(pool, entries), docks: entries.length };
  } catch (error) {
    if (isDatabaseUnavailable(error)) throw new UsageError(`--db: cannot reach ${redactUrl(url)} (${(error as Error).message})`, { cause: error, code: 'E_DB_UNAVAILABLE' });
    throw error;
  } finally {
    await pool.end();
  }
}
