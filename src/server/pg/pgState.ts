/**
 * The PostgreSQL state backend: recordings, possession, dock pins, recording locks and the
 * custody chain in one database, shared by every server process started with the same
 * --db (and --server-key). The SQL is in sql.ts; the custody chain in pgCustody.ts.
 */
import { redactPassword } from '../../util/settings.js';
import { createRequire } from 'node:module';
import type pg from 'pg';
import { EnvironmentError, UsageError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { isValidId } from '../../protocol/types.js';
import { sameKey } from '../trust/dockKeys.js';
import { keyIdOf } from '../../protocol/signing.js';
import type { StateOptions } from '../embeddedState.js';
import { KeyedLock } from '../keyedLock.js';
import type { DockKeyStore, PinResult, PossessionStore, RecordingLocks, RecordingStore, ServerState } from '../state.js';
import type { RecordingKey, StoredRecording } from '../store/store.js';
import { IntegrityError } from '../../errors.js';
import { checkout } from './checkout.js';
import { CustodyExporter, type LockedObjects } from './custodyExport.js';
import { PgCustodyChain } from './pgCustody.js';
import { TokenFollower } from './pgTokens.js';
import { MIGRATIONS, SQL } from './sql.js';
import { SERVER_ERROR_CODES } from '../errorCodes.js';

export type Queryable = Pick<pg.Pool, 'query'>;

/** Error codes of a database that is down, restarting or out of connections: the request is retried later (503). */
const UNAVAILABLE_SQLSTATES = new Set(['57P01', '57P02', '57P03', '08000', '08001', '08003', '08004', '08006', '53300', '53100']);
const UNAVAILABLE_ERRNO = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH']);

/** The database cannot be reached (or dropped the connection): anywhere in the cause chain. */
export function isDatabaseUnavailable(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && (UNAVAILABLE_SQLSTATES.has(code) || UNAVAILABLE_ERRNO.has(code) || code === 'E_DB_UNAVAILABLE')) return true;
    const message = e instanceof Error ? e.message : '';
    if (/Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error|the database system is (starting up|shutting down)/i.test(message)) return true;
  }
  return false;
}

export interface PgStateOptions extends StateOptions {
  log: Logger;
  /** Export the custody chain into this bucket as locked objects, one per checkpoint (custodyExport.ts). */
  exportTo?: LockedObjects;
  exportIntervalMs?: number;
  /** How often a server looks for another server's token import (default 2000 ms). */
  tokenPollMs?: number;
  /** Connections for queries (default 10) and, separately, for recording locks (default 16). */
  poolSize?: number;
  lockPoolSize?: number;
}

/** pg (CommonJS) is required on first use: a server without --db never pays its load at start. */
const requireCjs = createRequire(import.meta.url);

export function createPool(url: string, max: number, log?: Logger): pg.Pool {
  const { Pool } = requireCjs('pg') as typeof pg;
  const pool = new Pool({ connectionString: url, max, connectionTimeoutMillis: 5000, idleTimeoutMillis: 30_000, application_name: 'bodycam-server' });
  // An idle connection the server dropped (a restart) must not crash the process: the next query reconnects.
  pool.on('error', (error) => { log?.warn('database connection lost (idle)', { error: error.message }); });
  return pool;
}

/** Apply the migrations this database lacks; refuse one that is newer than this build. */
export async function migrate(pool: pg.Pool): Promise<number> {
  const { client, release } = await checkout(pool);
  try {
    await client.query(SQL.migrationLock);
    try {
      await client.query(SQL.migrationsTable);
      const applied = new Set((await client.query<{ version: number }>(SQL.migrationsApplied)).rows.map((r) => r.version));
      const known = new Set(MIGRATIONS.map((m) => m.version));
      const unknown = [...applied].filter((v) => !known.has(v));
      if (unknown.length) throw new EnvironmentError('E_DB_SCHEMA', `the database has schema migration ${Math.max(...unknown)}, newer than this bodycam build knows (${Math.max(...known)}); run the newer build`);
      for (const migration of MIGRATIONS) {
        if (applied.has(migration.version)) continue;
        await client.query('BEGIN');
        try {
          await client.query(migration.sql);
          await client.query(SQL.migrationRecord, [migration.version, migration.description]);
          await client.query('COMMIT');
        } catch (error) {
          await client.query('ROLLBACK').catch(() => {});
          throw error;
        }
      }
      return Math.max(...known);
    } finally {
      await client.query(SQL.migrationUnlock).catch(() => {});
    }
  } finally {
    release();
  }
}

function checkId(kind: string, id: string): void {
  if (!isValidId(id)) throw new IntegrityError(SERVER_ERROR_CODES.invalidId, `invalid ${kind} id: ${JSON.stringify(id)}`);
}

export class PgRecordings implements RecordingStore {
  constructor(private readonly db: Queryable) {}

  async getRecording(dockId: string, id: string): Promise<StoredRecording | undefined> {
    checkId('dock', dockId); checkId('recording', id);
    const row = (await this.db.query<{ record: string }>(SQL.recordingGet, [dockId, id])).rows[0];
    return row ? JSON.parse(row.record) as StoredRecording : undefined;
  }

  async createRecording(dockId: string, id: string, record: StoredRecording): Promise<boolean> {
    checkId('dock', dockId); checkId('recording', id);
    return ((await this.db.query(SQL.recordingCreate, [dockId, id, JSON.stringify(record)])).rowCount ?? 0) === 1;
  }

  async updateRecording(dockId: string, id: string, record: StoredRecording): Promise<void> {
    checkId('dock', dockId); checkId('recording', id);
    const result = await this.db.query(SQL.recordingUpdate, [dockId, id, JSON.stringify(record)]);
    if (result.rowCount !== 1) throw new IntegrityError('E_RECORD_MISSING', `recording ${dockId}/${id} is not in the database; it cannot be updated`);
  }

  async listRecordingIds(dockId: string): Promise<string[]> {
    checkId('dock', dockId);
    return (await this.db.query<{ recording_id: string }>(SQL.recordingIds, [dockId])).rows.map((r) => r.recording_id);
  }

  async listRecordings(): Promise<RecordingKey[]> {
    return (await this.db.query<{ dock_id: string; recording_id: string }>(SQL.recordingKeys)).rows.map((r) => ({ dockId: r.dock_id, recordingId: r.recording_id }));
  }

  async listRecordingsChangedSince(since: Date): Promise<RecordingKey[]> {
    // Clocks of several servers and the database differ a little: a margin keeps it a superset.
    const from = new Date(since.getTime() - 5000);
    return (await this.db.query<{ dock_id: string; recording_id: string }>(SQL.recordingKeysSince, [from])).rows.map((r) => ({ dockId: r.dock_id, recordingId: r.recording_id }));
  }
}

export class PgPossession implements PossessionStore {
  constructor(private readonly db: Queryable) {}
  async has(dockId: string, sha256: string): Promise<boolean> {
    return (await this.db.query(SQL.possessionHas, [dockId, sha256])).rowCount === 1;
  }
  async add(dockId: string, sha256: string): Promise<void> {
    await this.db.query(SQL.possessionAdd, [dockId, sha256]);
  }
  async expect(dockId: string, recordingId: string, sha256s: readonly string[]): Promise<void> {
    if (sha256s.length) await this.db.query(SQL.possessionExpect, [dockId, recordingId, [...new Set(sha256s)]]);
  }
  async forget(dockId: string, recordingId: string, sha256s: readonly string[]): Promise<void> {
    await this.db.query(SQL.possessionForget, [dockId, recordingId, [...new Set(sha256s)]]);
  }
  async close(): Promise<void> {}
}

export class PgDockKeys implements DockKeyStore {
  constructor(private readonly db: Queryable) {}
  async check(dockId: string, publicKeyPem: string): Promise<PinResult> {
    checkId('dock', dockId);
    const inserted = await this.db.query(SQL.pinInsert, [dockId, publicKeyPem]);
    if (inserted.rowCount === 1) return 'pinned';
    // Whoever pinned first (this dock earlier, or a concurrent first use through another server) holds the pin.
    const row = (await this.db.query<{ public_key_pem: string }>(SQL.pinGet, [dockId])).rows[0];
    if (!row) throw new EnvironmentError(SERVER_ERROR_CODES.dockKeyPinRace, `the pin of dock ${dockId} was reset while it was being checked; retry`);
    return sameKey(row.public_key_pem, publicKeyPem) ? 'match' : 'mismatch';
  }
  async reset(dockId: string): Promise<boolean> {
    checkId('dock', dockId);
    return ((await this.db.query(SQL.pinDelete, [dockId])).rowCount ?? 0) > 0;
  }
  async keyId(dockId: string): Promise<string | undefined> {
    checkId('dock', dockId);
    const row = (await this.db.query<{ public_key_pem: string }>(SQL.pinGet, [dockId])).rows[0];
    return row ? keyIdOf(row.public_key_pem) : undefined;
  }
}

/**
 * Per-recording mutual exclusion across servers: a session advisory lock, taken on a connection
 * from a pool of its own (work under the lock queries through the main pool, so lock holders can
 * never starve it). A server that dies loses its connection and with it the lock. Within one
 * process a KeyedLock queues first, so one key never holds two connections.
 */
export class PgLocks implements RecordingLocks {
  private readonly local = new KeyedLock();
  constructor(private readonly pool: pg.Pool) {}

  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    return this.local.run(key, async () => {
      const { client, release } = await checkout(this.pool);
      let broken: Error | undefined;
      try {
        await client.query(SQL.lockTake, [key]);
        return await fn();
      } catch (error) {
        if (isDatabaseUnavailable(error)) broken = error as Error;
        throw error;
      } finally {
        if (!broken) await client.query(SQL.lockRelease, [key]).catch((error: Error) => { broken = error; });
        release(broken); // a connection in doubt is closed, which drops any lock it holds
      }
    });
  }
}

export async function openPgState(url: string, options: PgStateOptions): Promise<ServerState> {
  const pool = createPool(url, options.poolSize ?? 10, options.log);
  const lockPool = createPool(url, options.lockPoolSize ?? 16, options.log);
  try {
    await migrate(pool);
    // One key signs for every server of this database: a server started with another is refused.
    await pool.query(SQL.metaInsert, ['server_key_id', options.serverKey.keyId]);
    await pool.query(SQL.metaInsert, ['server_public_key_pem', options.serverKey.publicKeyPem]);
    const keyId = (await pool.query<{ value: string }>(SQL.metaGet, ['server_key_id'])).rows[0]?.value;
    if (keyId !== options.serverKey.keyId) {
      throw new EnvironmentError('E_SERVER_KEY_MISMATCH', `this database's receipts are signed by key ${String(keyId).slice(0, 16)}…, this server was started with key ${options.serverKey.keyId.slice(0, 16)}…: start every server with the same --server-key file`);
    }
    const recordings = new PgRecordings(pool);
    const followers: TokenFollower[] = [];
    // With an object store that locks: every checkpoint's stretch of the chain becomes a locked object.
    const exporter = options.exportTo ? new CustodyExporter(pool, options.exportTo, { log: options.log, ...(options.exportIntervalMs !== undefined ? { intervalMs: options.exportIntervalMs } : {}) }) : undefined;
    const custody = new PgCustodyChain(pool, {
      signer: options.serverKey,
      ...(exporter ? { onCheckpoint: () => exporter.kick() } : {}),
      ...(options.checkpointEvery !== undefined ? { checkpointEvery: options.checkpointEvery } : {}),
      ...(options.checkpointIntervalMs !== undefined ? { checkpointIntervalMs: options.checkpointIntervalMs } : {}),
    });
    await custody.open();
    exporter?.start();
    return {
      kind: 'postgres', recordings, custody,
      possession: new PgPossession(pool), dockKeys: new PgDockKeys(pool), locks: new PgLocks(lockPool),
      followTokens: (table, log) => { const follower = new TokenFollower(pool, table, { ...(log ? { log } : {}), ...(options.tokenPollMs !== undefined ? { pollMs: options.tokenPollMs } : {}) }); followers.push(follower); return follower; },
      close: async () => {
        followers.forEach((f) => f.stop());
        await custody.close().catch(() => {});
        await exporter?.stop();
        await Promise.all([pool.end(), lockPool.end()]);
      },
    };
  } catch (error) {
    await Promise.all([pool.end(), lockPool.end()]).catch(() => {});
    if (isDatabaseUnavailable(error)) throw new EnvironmentError('E_DB_UNAVAILABLE', `cannot reach the database ${redactUrl(url)}: ${(error as Error).message}`, { cause: error });
    throw error;
  }
}

/** A connection string without its password, for messages. */
export function redactUrl(url: string): string {
  return redactPassword(url, '(an unparsable database URL)');
}

/** `reset-dock-key --db`: forget a dock's pin for every server of this database. */
export async function resetPgDockKey(url: string, dockId: string): Promise<boolean> {
  const pool = createPool(url, 1);
  try {
    await migrate(pool);
    return await new PgDockKeys(pool).reset(dockId);
  } catch (error) {
    if (isDatabaseUnavailable(error)) throw new EnvironmentError('E_DB_UNAVAILABLE', `cannot reach the database ${redactUrl(url)}: ${(error as Error).message}`, { cause: error });
    throw error;
  } finally {
    await pool.end();
  }
}

/**
 * The shared state for the operator's tools (`scrub`, `report`, `verify-log` with --db): the
 * recordings, possession and pins every server of the database answers from. Nothing is
 * migrated or written here: a database no server ever started is a usage error.
 */
export async function openPgTools(url: string): Promise<{ pool: pg.Pool; recordings: PgRecordings; possession: PgPossession; dockKeys: PgDockKeys; close(): Promise<void> }> {
  const pool = createPool(url, 4);
  try {
    const row = (await pool.query<{ t: string | null }>(SQL.migrationsPresent)).rows[0];
    if (!row?.t) throw new UsageError(`--db ${redactUrl(url)} holds no bodycam state (no schema_migrations table): start a server on it first`, { code: 'E_DB_EMPTY' });
  } catch (error) {
    await pool.end().catch(() => {});
    if (isDatabaseUnavailable(error)) throw new UsageError(`--db: cannot reach ${redactUrl(url)} (${(error as Error).message})`, { cause: error, code: 'E_DB_UNAVAILABLE' });
    throw error;
  }
  return { pool, recordings: new PgRecordings(pool), possession: new PgPossession(pool), dockKeys: new PgDockKeys(pool), close: () => pool.end() };
}
