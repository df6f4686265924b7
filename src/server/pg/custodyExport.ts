/**
 * The custody chain exported into the bucket as write-once objects, one per signed checkpoint
 * (issue 13): `custody/log/<seq, 16 digits>.jsonl` holds the entry lines after the previous
 * checkpoint up to this one, byte for byte as the chain hashed them, then the signed checkpoint
 * as its last line. Each is PUT with COMPLIANCE retention (S3BlobStore.putLockedObject), so no
 * credentials of the S3 API, nor the database administrator, can take back or rewrite the chain
 * once a checkpoint is exported: the objects concatenated are a custody.log and its checkpoints
 * file that `verify-log` checks, and `verify-log --db … --store s3://…` compares them with the
 * database.
 *
 * Every server of a database runs an exporter; they may export the same checkpoint at once: the
 * bytes are a function of the chain alone, so the second write finds the same bytes (not an
 * error) and the first version is the export. `custody_checkpoints.exported_at` records what is
 * done; a failure (the object store away) is retried on the next tick, nothing is skipped.
 */
import type pg from 'pg';
import type { Logger } from '../../log.js';
import { SQL } from './sql.js';

/** What the exporter needs of the object store (S3BlobStore has it). */
export interface LockedObjects {
  putLockedObject(key: string, bytes: Buffer, options?: { contentType?: string }): Promise<{ created: boolean }>;
  getObject(key: string): Promise<Buffer | undefined>;
  listObjectKeys(prefix: string): AsyncIterable<string>;
}

export const EXPORT_PREFIX = 'custody/log/';

export function exportKey(seq: number): string {
  return `${EXPORT_PREFIX}${String(seq).padStart(16, '0')}.jsonl`;
}

/** The seq an export key is named after, or undefined for a key that is not one. */
export function exportSeqOf(key: string): number | undefined {
  const match = /^custody\/log\/([0-9]{16})\.jsonl$/.exec(key);
  return match ? Number(match[1]) : undefined;
}

export function hasLockedObjects(store: object): store is LockedObjects {
  const s = store as Partial<LockedObjects>;
  return typeof s.putLockedObject === 'function' && typeof s.getObject === 'function' && typeof s.listObjectKeys === 'function';
}

/** The export object of the checkpoint at `seq` (its text as stored), built from the database. */
export async function exportBytes(db: Pick<pg.Pool, 'query'>, seq: number, checkpoint: string): Promise<Buffer> {
  const before = (await db.query<{ seq: string | null }>(SQL.checkpointBefore, [seq])).rows[0]?.seq;
  const from = before === null || before === undefined ? 0 : Number(before);
  const lines = (await db.query<{ seq: string; line: string }>(SQL.entriesBetween, [from, seq])).rows;
  if (lines.length !== seq - from || (lines.length && Number(lines[0]!.seq) !== from + 1)) {
    throw new Error(`the custody chain between seq ${from} and ${seq} has ${lines.length} entries, not ${seq - from}`);
  }
  return Buffer.from(lines.map((r) => `${r.line}\n`).join('') + `${checkpoint}\n`, 'utf8');
}

export class CustodyExporter {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private failing = false;
  private stopped = false;

  constructor(private readonly pool: pg.Pool, private readonly objects: LockedObjects, private readonly options: { log?: Logger; intervalMs?: number; batch?: number } = {}) {}

  start(): void {
    this.timer = setInterval(() => this.kick(), this.options.intervalMs ?? 5000);
    this.timer.unref();
    this.kick();
  }

  /** Export what is pending now (a checkpoint was just committed); coalesced with a run in progress. */
  kick(): void {
    if (this.stopped) return;
    if (this.running) { this.again = true; return; }
    this.running = this.run().finally(() => {
      this.running = undefined;
      if (this.again) { this.again = false; this.kick(); }
    });
  }

  /** Every pending checkpoint exported (tests, close). Throws what the last attempt met. */
  async flush(): Promise<number> {
    while (this.running) await this.running;
    return this.exportPending();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    while (this.running) await this.running;
    // One last pass: the checkpoint signed at close is exported too (if the engines are there).
    await this.exportPending().catch(() => {});
  }

  private async run(): Promise<void> {
    try {
      await this.exportPending();
      if (this.failing) this.options.log?.info('custody export resumed');
      this.failing = false;
    } catch (error) {
      if (!this.failing) this.options.log?.warn('custody export failed; retried on the next tick', { error: error instanceof Error ? error.message : String(error) });
      this.failing = true;
    }
  }

  private async exportPending(): Promise<number> {
    let done = 0;
    for (;;) {
      const rows = (await this.pool.query<{ seq: string; checkpoint: string }>(SQL.checkpointsUnexported, [this.options.batch ?? 100])).rows;
      if (!rows.length) return done;
      for (const row of rows) {
        const seq = Number(row.seq);
        await this.objects.putLockedObject(exportKey(seq), await exportBytes(this.pool, seq, row.checkpoint), { contentType: 'application/x-ndjson' });
        await this.pool.query(SQL.checkpointExported, [seq]);
        done++;
      }
    }
  }
}

/**
 * The bucket's exports against the database: each exported checkpoint's object holds the bytes
 * the chain gives (so neither was rewritten), and every export object in the bucket belongs to a
 * checkpoint the database still has. Problems in words; memory holds one export at a time and
 * the seqs of the objects listed.
 */
export async function compareExports(pool: pg.Pool, objects: LockedObjects): Promise<{ compared: number; problems: string[] }> {
  const problems: string[] = [];
  const listed = new Set<number>();
  for await (const key of objects.listObjectKeys(EXPORT_PREFIX)) {
    const seq = exportSeqOf(key);
    if (seq === undefined) problems.push(`the bucket holds ${key} under ${EXPORT_PREFIX}, which is not a custody export`);
    else listed.add(seq);
  }
  let compared = 0;
  let after = 0;
  for (;;) {
    const rows = (await pool.query<{ seq: string; checkpoint: string }>(SQL.checkpointsExported, [after, 500])).rows;
    if (!rows.length) break;
    for (const row of rows) {
      const seq = Number(row.seq);
      after = seq;
      listed.delete(seq);
      const held = await objects.getObject(exportKey(seq));
      if (!held) { problems.push(`checkpoint ${seq} is marked exported but ${exportKey(seq)} is not in the bucket`); continue; }
      const expected = await exportBytes(pool, seq, row.checkpoint);
      if (!held.equals(expected)) problems.push(`${exportKey(seq)} (locked in the bucket) differs from the database's chain up to checkpoint ${seq}: the database was changed after the export`);
      compared++;
    }
  }
  for (const seq of [...listed].sort((a, b) => a - b)) {
    // Written but not yet marked (an exporter between its PUT and its UPDATE): compared all the same.
    const row = (await pool.query<{ checkpoint: string }>(SQL.checkpointAt, [seq])).rows[0];
    if (!row) {
      const known = (await pool.query(SQL.entryAt, [seq])).rowCount;
      problems.push(known
        ? `${exportKey(seq)} is locked in the bucket but the database has no checkpoint at seq ${seq}: a checkpoint was removed from the database`
        : `${exportKey(seq)} is locked in the bucket but the database's chain does not reach seq ${seq}: entries were removed from the database`);
      continue;
    }
    const held = await objects.getObject(exportKey(seq));
    if (!held || !held.equals(await exportBytes(pool, seq, row.checkpoint))) problems.push(`${exportKey(seq)} (locked in the bucket) differs from the database's chain up to checkpoint ${seq}: the database was changed after the export`);
    compared++;
  }
  return { compared, problems };
}
