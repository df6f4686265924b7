/**
 * A year of history on the dock (issue 15): the journal's statements use indexes (a regression in
 * a query plan fails here, not in a field office), its trigger-kept counters agree with its rows
 * through any sequence of changes, an older journal migrates, and the retention rule prunes only
 * what no decision needs: a pruned row's file is a new ingest, never a skip and never a wipe.
 */
import { describe, it, expect, afterAll } from '@jest/globals';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { runs } from '../helpers/fcRuns.js';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CandidateFile } from '../../src/protocol/cameraStorage/index.js';
import type { AgentState } from '../../src/dock/agentState.js';
import { matchRow } from '../../src/dock/identity.js';
import { isFlagged } from '../../src/dock/integrity.js';
import { Journal, type JobState, type RecordingBrief, type StatSnapshot } from '../../src/dock/journal.js';
import { unreadableOf } from '../../src/dock/pipeline.js';
import { pruneFinished, RECEIPTS_ARCHIVE } from '../../src/dock/retention.js';
import { ACTIVE_STATES, HASHED_STATES, STATE_TABLE } from '../../src/dock/states.js';
import { makeTempDir } from '../helpers/tmp.js';

const DAY = 86_400_000;
const statOf = (n: number): StatSnapshot => ({ size: 1000 + n, mtimeMs: 1_700_000_000_000 + n, ino: 10_000 + n, dev: 1, ctimeMs: 1_700_000_000_000 + n, sidecar: null });

/** Drive one row along the state table to `target` (the moves a real dock makes), with facts on the way. */
function walkTo(journal: Journal, key: string, target: JobState, info: Record<string, unknown> = {}): void {
  const path: JobState[] = ({
    detected: [], probed: ['probed'], planned: ['probed', 'planned'], hashed: ['probed', 'planned', 'hashed'],
    uploading: ['probed', 'planned', 'hashed', 'uploading'], completed: ['probed', 'planned', 'hashed', 'uploading', 'completed'],
    wiped: ['probed', 'planned', 'hashed', 'uploading', 'completed', 'wiped'], quarantined: ['quarantined'],
  } as Record<JobState, JobState[]>)[target];
  for (const state of path) {
    if (state === 'planned') { journal.setPlan(key, [{ index: 0, offset: 0, length: 10 }], {}); continue; }
    const receipt = state === 'completed' ? { receiptJson: JSON.stringify({ type: 'receipt', recordingId: `rec-${key}`, sha256: 'ab'.repeat(32) }) } : {};
    journal.transition(key, state, { ...(state === 'hashed' ? { recordingId: `rec-${key}`, sha256: 'ab'.repeat(32), manifestJson: '{}', info } : {}), ...receipt });
  }
}

function countsFromRows(rows: RecordingBrief[]): { byState: Record<string, number>; flagged: number; total: number } {
  const byState: Record<string, number> = { detected: 0, probed: 0, planned: 0, hashed: 0, uploading: 0, completed: 0, wiped: 0, quarantined: 0 };
  let flagged = 0;
  for (const r of rows) {
    byState[r.state]!++;
    if (HASHED_STATES.includes(r.state) && isFlagged(r.info.integrity as never, Boolean(r.info.truncated), unreadableOf(r))) flagged++;
  }
  return { byState, flagged, total: rows.length };
}

describe('dock history: query plans, counters, migration, retention', () => {
  const tmp = makeTempDir('bodycam-dock-history-');
  afterAll(() => tmp.cleanup());

  it('prepares every statement once, and none of them scans a table that grows with history', () => {
    const journal = Journal.open(join(tmp.path, 'plans'));
    journal.beginBatch();
    for (let i = 0; i < 300; i++) {
      const row = journal.insertDetected({ serial: 'CAM', fileName: `F${i}.MP4`, relPath: `DCIM/F${i}.MP4`, bay: 'bay1', size: 10, mtimeMs: i, critical: false, stat: statOf(i) });
      walkTo(journal, row.key, i % 3 === 0 ? 'wiped' : i % 3 === 1 ? 'completed' : 'quarantined');
    }
    journal.commitBatch();
    // Every method, so every statement is prepared (and run) at least once.
    const r = journal.insertDetected({ serial: 'CAM', fileName: 'a.MP4', relPath: 'DCIM/a.MP4', bay: 'bay1', size: 1, mtimeMs: 1, critical: false, stat: statOf(9999) });
    journal.get(r.key); journal.briefsInStates(['detected', 'probed']); journal.briefsOf([r.key]); [...journal.iterateManyInOrder([r.key])]; journal.recentBriefs(10); journal.counts(); journal.lastRowId();
    journal.oldestDetected(['detected']); journal.listWorkableLight(['detected']); [...journal.iterateWorkableLight(['detected', 'probed'])]; journal.listDueWorkableLight(['hashed', 'uploading'], 5, 10);
    journal.listWorkableLightOf(['completed'], [r.key]); journal.keysDetectedBefore(['detected', 'probed'], 5); journal.nextRetryAfter(['detected'], 5);
    journal.listByPath('CAM', 'DCIM/a.MP4'); journal.listNeedingAttention(); journal.listReceipted(); journal.findByRef('bay1/DCIM/a.MP4');
    journal.listPrunable(5, { updatedAt: -Infinity, rowid: 0 }, 10); journal.deleteFinished([r.key], 5);
    journal.relocate(r.key, 'bay2', statOf(9998)); journal.transition(r.key, 'probed'); journal.setPlan(r.key, [{ index: 0, offset: 0, length: 1 }], {});
    journal.setSegmentHashes(r.key, ['x']); journal.segments(r.key); journal.ackSegment(r.key, 0); journal.reconcileMissing(r.key, []);
    journal.scheduleRetry(r.key, 5, 'e'); journal.clearRetry(r.key); journal.transitionLazy(r.key, 'quarantined'); journal.requeueQuarantined(r.key, 'w');
    journal.getMeta('x'); journal.setMeta('x', 'y'); journal.recentEvents(); journal.eventCount(); journal.forget(r.key);

    const plans = journal.queryPlans();
    expect(plans.length).toBeGreaterThan(30);
    const offending = plans.filter(({ sql, plan }) => plan.some((line) => {
      // A full walk of recordings or segments is O(history); a walk of an index is fine only to return a page in its order.
      if (/^SCAN (recordings|segments)\b(?! USING)/.test(line)) return true;
      if (/^SCAN recordings USING (COVERING )?INDEX recordings_attention\b/.test(line)) return false; // partial: only rows needing a person
      if (/^SCAN (recordings|segments) USING/.test(line)) return !/\bLIMIT\b/.test(sql) || plan.some((l) => l.includes('TEMP B-TREE'));
      // Sorting every match to return one page is a full read in disguise.
      return /\bLIMIT\b/.test(sql) && line.includes('TEMP B-TREE') && !sql.includes('recordings_attention');
    }));
    expect(offending).toEqual([]);
    // The events table is pruned to a fixed size; the counters table has one row per state and flag.
    for (const { plan } of plans) for (const line of plan) if (/^SCAN /.test(line)) expect(line).toMatch(/^SCAN (events|recording_counts|json_each|recordings USING (COVERING )?INDEX (recordings_attention|recordings_updated))\b/);
    journal.close();
  });

  it('keeps its per-state counters equal to its rows through any sequence of changes', () => {
    const journal = Journal.open(join(tmp.path, 'counts'));
    let n = 0;
    const op = fc.oneof(
      fc.record({ kind: fc.constant('insert' as const), target: fc.constantFrom<JobState>('detected', 'probed', 'hashed', 'uploading', 'completed', 'wiped', 'quarantined'),
        info: fc.record({ integrity: fc.constantFrom('verified', 'unsigned', 'hash-mismatch', 'signature-invalid'), truncated: fc.boolean() }, { requiredKeys: [] }),
        unreadable: fc.boolean() }),
      fc.record({ kind: fc.constantFrom('forget' as const, 'requeue' as const, 'quarantine' as const, 'prune' as const), pick: fc.nat() }),
    );
    fc.assert(fc.property(fc.array(op, { maxLength: 25 }), (ops) => {
      for (const o of ops) {
        const all = journal.recentBriefs(1e6);
        if (o.kind === 'insert') {
          const row = journal.insertDetected({ serial: 'CAM', fileName: `n${n}.MP4`, relPath: `DCIM/n${n}.MP4`, bay: 'bay1', size: 1, mtimeMs: n, critical: false, stat: statOf(n++) });
          walkTo(journal, row.key, o.target, { ...o.info, ...(o.unreadable ? { unreadable: 'moov atom not found' } : {}) });
        } else if (all.length) {
          const row = all[o.pick % all.length]!;
          if (o.kind === 'forget') journal.forget(row.key);
          else if (o.kind === 'requeue') journal.requeueQuarantined(row.key, 'test');
          else if (o.kind === 'quarantine' && STATE_TABLE[row.state].next.includes('quarantined')) journal.transition(row.key, 'quarantined', { reason: 'x', reasonCode: 'x' });
          else if (o.kind === 'prune') journal.deleteFinished([row.key], Date.now() + DAY);
        }
      }
      expect(journal.counts()).toEqual(countsFromRows(journal.recentBriefs(1e6)));
    }), { numRuns: runs(40) });
    journal.close();
  });

  it('migrates a journal of an older build with many rows: counters counted once, superseded indexes replaced', () => {
    const dir = join(tmp.path, 'old');
    Journal.open(dir).close();
    const db = new Database(join(dir, 'journal.sqlite'));
    // As an earlier build left it: its two indexes, no counters, no triggers.
    db.exec(`DROP TABLE recordings; DROP TABLE IF EXISTS recording_counts;
      CREATE TABLE recordings (key TEXT PRIMARY KEY, serial TEXT NOT NULL, file_name TEXT NOT NULL, rel_path TEXT NOT NULL, bay TEXT,
        size INTEGER NOT NULL, mtime_ms INTEGER NOT NULL, state TEXT NOT NULL, reason TEXT, reason_code TEXT, recording_id TEXT, sha256 TEXT,
        critical INTEGER NOT NULL DEFAULT 0, detected_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER NOT NULL DEFAULT 0, last_error TEXT, info_json TEXT NOT NULL DEFAULT '{}', manifest_json TEXT, receipt_json TEXT, uid TEXT, stat_json TEXT);
      CREATE INDEX recordings_state ON recordings(state); CREATE INDEX recordings_path ON recordings(serial, rel_path);
      WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000)
      INSERT INTO recordings (key, uid, serial, file_name, rel_path, bay, size, mtime_ms, state, detected_at, updated_at, info_json, receipt_json)
        SELECT printf('%016x', i), printf('%016x', i), 'CAM', 'F.MP4', printf('DCIM/%d.MP4', i % 500), 'bay1', 1, i,
          CASE WHEN i % 10 = 0 THEN 'quarantined' WHEN i % 2 = 0 THEN 'wiped' ELSE 'completed' END, i, i,
          CASE WHEN i % 7 = 0 THEN '{"integrity":"hash-mismatch"}' ELSE '{}' END, '{"type":"receipt"}' FROM n;`);
    db.close();
    const journal = Journal.open(dir);
    const counts = journal.counts();
    expect(counts.total).toBe(20000);
    expect(counts.byState).toMatchObject({ quarantined: 2000, wiped: 8000, completed: 10000 });
    // Flagged: integrity on completed/wiped rows (i % 7 == 0 and not i % 10 == 0).
    let flagged = 0;
    for (let i = 1; i <= 20000; i++) if (i % 7 === 0 && i % 10 !== 0) flagged++;
    expect(counts.flagged).toBe(flagged);
    journal.close();
    const check = new Database(join(dir, 'journal.sqlite'), { readonly: true });
    const indexes = (check.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'recordings' AND name NOT LIKE 'sqlite_%'").all() as Array<{ name: string }>).map((r) => r.name).sort();
    check.close();
    expect(indexes).toEqual(['recordings_attention', 'recordings_recording_id', 'recordings_rel_path', 'recordings_retry', 'recordings_state_detected', 'recordings_updated']);
    // Opened again: nothing is counted twice.
    const again = Journal.open(dir);
    expect(again.counts().total).toBe(20000);
    again.close();
  });

  it('prunes only finished rows nobody needs, receipts archived first, and turns only their matches into new ingests', async () => {
    const now = 1_800_000_000_000;
    type Spec = { target: JobState; ageDays: number; inUse: boolean; flagged: boolean; onCard: boolean; samePath: boolean };
    const spec = fc.record({
      target: fc.constantFrom<JobState>('detected', 'hashed', 'uploading', 'completed', 'completed', 'wiped', 'wiped', 'quarantined'),
      ageDays: fc.integer({ min: 0, max: 60 }), inUse: fc.boolean(), flagged: fc.boolean(), onCard: fc.boolean(), samePath: fc.boolean(),
    });
    let run = 0;
    await fc.assert(fc.asyncProperty(fc.array(spec, { minLength: 1, maxLength: 12 }), async (specs: Spec[]) => {
      const stateDir = join(tmp.path, `retention-${run++}`);
      const journal = Journal.open(stateDir);
      const rows: Array<{ key: string; spec: Spec; file: CandidateFile; stat: StatSnapshot }> = [];
      journal.beginBatch(); // one commit for the setup (each transition would fsync on its own)
      specs.forEach((s, i) => {
        // Paths reused by cameras that start numbering again after a wipe.
        const relPath = s.samePath ? 'DCIM/FILE0001.MP4' : `DCIM/FILE${i + 2}.MP4`;
        const stat = statOf(run * 100 + i);
        const row = journal.insertDetected({ serial: 'CAM', fileName: relPath.slice(5), relPath, bay: 'bay1', size: stat.size, mtimeMs: stat.mtimeMs, critical: false, stat }, now - s.ageDays * DAY);
        walkTo(journal, row.key, s.target, s.flagged ? { integrity: 'hash-mismatch' } : { integrity: 'verified' });
        const file = { relPath, absPath: `/bays/bay1/${relPath}`, fileName: relPath.slice(5), size: stat.size, mtimeMs: stat.mtimeMs, companions: [], stat } as unknown as CandidateFile;
        rows.push({ key: row.key, spec: s, file, stat });
      });
      journal.commitBatch();
      // Rows are as old as their spec says (transitions stamp the wall clock).
      journal.close();
      const db = new Database(join(stateDir, 'journal.sqlite'));
      db.transaction(() => { for (const r of rows) db.prepare('UPDATE recordings SET updated_at = ?, detected_at = ? WHERE key = ?').run(now - r.spec.ageDays * DAY, now - r.spec.ageDays * DAY, r.key); })();
      db.close();
      const reopened = Journal.open(stateDir);
      const state = { journal: reopened, located: new Map(), bays: new Map(), running: new Map(), logger: { warn: () => {}, info: () => {} } } as unknown as AgentState;
      // A scan may close a hashed upload whose file was rewritten (file_changed): one scan first, so
      // that the comparison below is of pruning alone.
      for (const r of rows.filter((x) => x.spec.onCard)) matchRow(state, 'CAM', r.file, r.stat);
      const before = rows.filter((r) => r.spec.onCard).map((r) => matchRow(state, 'CAM', r.file, r.stat));
      const beforeRows = new Map(rows.map((r) => [r.key, reopened.get(r.key)!]));
      const inUse = new Set(rows.filter((r) => r.spec.inUse).map((r) => r.key));
      const result = await pruneFinished({ journal: reopened, stateDir, retainSeconds: 30 * 86_400, now, inUse: (k) => inUse.has(k) });
      const archived = new Map<string, { receipt: unknown; key: string }>();
      let files: string[] = [];
      try { files = readdirSync(join(stateDir, RECEIPTS_ARCHIVE)); } catch { /* none written */ }
      for (const name of files) for (const line of readFileSync(join(stateDir, RECEIPTS_ARCHIVE, name), 'utf8').split('\n').filter(Boolean)) {
        const entry = JSON.parse(line) as { receipt: unknown; key: string };
        archived.set(entry.key, entry);
      }
      for (const r of rows) {
        const was = beforeRows.get(r.key)!;
        const gone = reopened.get(r.key) === undefined;
        const prunable = (was.state === 'wiped' || was.state === 'completed') && r.spec.ageDays > 30 && !r.spec.inUse && !r.spec.flagged;
        expect({ key: r.key, gone }).toEqual({ key: r.key, gone: prunable });
        // Its receipt was archived before the row went (verify-log reads `receipt`).
        if (gone) expect(archived.get(r.key)?.receipt).toEqual(JSON.parse(was.receiptJson!));
      }
      expect(result.pruned).toBe(rows.filter((r) => reopened.get(r.key) === undefined).length);
      // Each file on the card matches what it matched, unless its row was pruned: then it is a new ingest.
      rows.filter((r) => r.spec.onCard).forEach((r, i) => {
        const after = matchRow(state, 'CAM', r.file, r.stat);
        const was = before[i]!;
        if (was.kind === 'row' && reopened.get(was.row.key) === undefined) {
          // A new ingest (or a re-hash against a kept row), or the row still at work at that path follows it.
          if (after.kind === 'row') expect(ACTIVE_STATES).toContain(after.row.state);
          else expect(['new', 'verify']).toContain(after.kind);
          if (after.kind === 'verify') expect(after.rows.every((x) => reopened.get(x.key) !== undefined)).toBe(true);
        } else if (was.kind === 'verify' && was.rows.some((x) => reopened.get(x.key) === undefined)) {
          // It was to be re-hashed against rows of which some are gone: against the rest, a new ingest,
          // or an older row still at work at that path follows it (the pruned one had been newer).
          if (after.kind === 'row') expect(ACTIVE_STATES).toContain(after.row.state);
          else expect(['new', 'verify']).toContain(after.kind);
          if (after.kind === 'verify') expect(after.rows.map((x) => x.key)).toEqual(was.rows.map((x) => x.key).filter((k) => reopened.get(k) !== undefined));
        } else {
          expect(after.kind).toBe(was.kind);
          if (after.kind === 'row' && was.kind === 'row') expect(after.row.key).toBe(was.row.key);
        }
        // Never a wiped row, never a row other than one that stood for these bytes.
        if (after.kind === 'row') expect(after.row.state).not.toBe('wiped');
      });
      reopened.close();
    }), { numRuns: runs(40) });
  });
  it('a completed row seen on a docked camera starts its retention period again (once a day, not per scan)', async () => {
    let now = Date.now();
    const clock = { now: () => now };
    const stateDir = join(tmp.path, 'seen');
    const journal = Journal.open(stateDir, clock);
    const stat = statOf(1);
    const row = journal.insertDetected({ serial: 'CAM', fileName: 'FILE0001.MP4', relPath: 'DCIM/FILE0001.MP4', bay: 'bay1', size: stat.size, mtimeMs: stat.mtimeMs, critical: false, stat });
    walkTo(journal, row.key, 'completed');
    const completedAt = journal.get(row.key)!.updatedAt;
    // Seen again within the day: no write.
    now += 3_600_000;
    journal.markSeen(journal.get(row.key)!);
    expect(journal.get(row.key)!.updatedAt).toBe(completedAt);
    // Docked every shift for 40 days: the row is refreshed, and the rule (30 days) keeps it once the camera leaves.
    for (let day = 1; day <= 40; day++) { now = completedAt + day * DAY; journal.markSeen(journal.get(row.key)!); }
    expect(journal.get(row.key)!.updatedAt).toBe(completedAt + 40 * DAY);
    now = completedAt + 45 * DAY;
    const kept = await pruneFinished({ journal, stateDir, retainSeconds: 30 * 86_400, now, inUse: () => false });
    expect(kept.pruned).toBe(0);
    expect(journal.get(row.key)?.state).toBe('completed');
    // Not seen for longer than the period: pruned, receipt archived.
    now = completedAt + 71 * DAY;
    const gone = await pruneFinished({ journal, stateDir, retainSeconds: 30 * 86_400, now, inUse: () => false });
    expect(gone.pruned).toBe(1);
    expect(journal.get(row.key)).toBeUndefined();
    journal.close();
  });
});
