/**
 * The custody chain of a PostgreSQL state, written out as the embedded layout (custody.log,
 * custody-checkpoints.jsonl, custody-head.json, server-key.pub.pem): the lines are the very
 * bytes the chain hashes, so `verify-log --db` runs the one verifier (custodyVerify.ts) on it,
 * and an auditor can keep or hand over the files. Streamed in pages: memory stays flat.
 */
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import { UsageError } from '../../errors.js';
import { verifyCustody, type CustodyReport } from '../custody/custodyVerify.js';
import { createPool, migrate, PgRecordings, redactUrl } from './pgState.js';
import { compareExports, type LockedObjects } from './custodyExport.js';
import { SQL } from './sql.js';

const PAGE = 5000;

export async function exportCustody(pool: pg.Pool, dir: string): Promise<{ entries: number; checkpoints: number }> {
  const log = await open(join(dir, 'custody.log'), 'wx', 0o600);
  let entries = 0;
  try {
    let after = 0;
    for (;;) {
      const rows = (await pool.query<{ seq: string; line: string }>(SQL.entriesFrom, [after, PAGE])).rows;
      if (!rows.length) break;
      await log.write(rows.map((r) => `${r.line}\n`).join(''));
      after = Number(rows[rows.length - 1]!.seq);
      entries += rows.length;
    }
    await log.sync();
  } finally {
    await log.close();
  }
  const checkpoints = (await pool.query<{ checkpoint: string }>(SQL.checkpointsAll)).rows.map((r) => r.checkpoint);
  if (checkpoints.length) {
    await writeFile(join(dir, 'custody-checkpoints.jsonl'), checkpoints.map((c) => `${c}\n`).join(''), { mode: 0o600 });
    await writeFile(join(dir, 'custody-head.json'), checkpoints[checkpoints.length - 1]!, { mode: 0o600 });
  }
  const pem = (await pool.query<{ value: string }>(SQL.metaGet, ['server_public_key_pem'])).rows[0]?.value;
  if (pem) await writeFile(join(dir, 'server-key.pub.pem'), pem, { mode: 0o600 });
  return { entries, checkpoints: checkpoints.length };
}

/**
 * `verify-log --db URL`: the chain, its checkpoints and every stored receipt (and dock receipts
 * given); with the bucket (`--store s3://…`) also its locked exports against the database.
 */
export async function verifyPgCustody(url: string, receipts: readonly string[] = [], objects?: LockedObjects): Promise<CustodyReport & { exportsCompared?: number }> {
  const pool = createPool(url, 2);
  const dir = await mkdtemp(join(tmpdir(), 'bodycam-verify-'));
  try {
    try {
      await pool.query('SELECT 1');
    } catch (error) {
      throw new UsageError(`--db: cannot reach ${redactUrl(url)} (${(error as Error).message})`, { cause: error, code: 'E_DB_UNAVAILABLE' });
    }
    await migrate(pool);
    await exportCustody(pool, dir);
    const report = await verifyCustody({ dataDir: dir, receipts, store: new PgRecordings(pool) });
    if (!objects) return report;
    const { compared, problems } = await compareExports(pool, objects);
    for (const reason of problems) report.problems.push({ reason });
    return { ...report, ok: report.ok && problems.length === 0, exportsCompared: compared };
  } finally {
    await rm(dir, { recursive: true, force: true });
    await pool.end();
  }
}
