/**
 * The custody chain in PostgreSQL: the same entries, byte for byte, as the embedded JSON-lines
 * log (custodyLog.ts), so that an export of the table is a custody.log the same verifier checks.
 *
 * One truth for many servers: every append is one transaction that locks the chain head row
 * (SELECT … FOR UPDATE), reads seq and hash from it, inserts the entries with seq+1, seq+2, …,
 * their mentions (unique per subject: the "unless mentioned" test is made under the same lock)
 * and receipt rows, moves the head and, when the batch holds a receipt (or enough entries
 * passed), inserts a signed checkpoint, then commits. A transaction that fails leaves no trace,
 * so the chain has no gap and no duplicate whichever server appends. Within one process appends
 * that arrive during a transaction are committed together in the next one (group commit).
 */
import { EnvironmentError } from '../../errors.js';
import { checkpointProblem, lineHash, signCheckpoint, type CheckpointSigner, type CustodyCheckpoint } from '../custody/custodyAnchor.js';
import { aboutSubjects } from '../custody/custodyIndex.js';
import { GENESIS, mentionOf, type CustodyEntry, type CustodyFields } from '../custody/custodyLog.js';
import type { CustodyChain } from '../state.js';
import type pg from 'pg';
import { inTransaction } from './checkout.js';
import { SQL } from './sql.js';

interface Pending {
  fields: CustodyFields;
  build?: (seq: number, prevHash: string) => { extra?: Record<string, unknown>; value: unknown };
  unlessMentioned?: boolean;
  resolve: (result: { seq: number; value: unknown }) => void;
  reject: (error: unknown) => void;
}

export interface PgCustodyOptions {
  signer: CheckpointSigner;
  /** A checkpoint after this many entries at the latest (default 1000); also in every transaction with a receipt. */
  checkpointEvery?: number;
  /** A checkpoint this often when entries were appended since the last (default 60 s). */
  checkpointIntervalMs?: number;
  /** Told after each committed checkpoint (the bucket exporter: custodyExport.ts). */
  onCheckpoint?: (checkpoint: CustodyCheckpoint) => void;
}

interface Head { seq: number; hash: string; bytes: number }

/** A receipt was already issued for this recording (by this or another server): the caller asks findReceiptEntry. */
export class ReceiptExistsError extends Error {
  readonly code = 'E_RECEIPT_EXISTS';
}

export class PgCustodyChain implements CustodyChain {
  private pending: Pending[] = [];
  private writing: Promise<void> | undefined;
  private checkpoint: CustodyCheckpoint | undefined;
  private appendedSinceOpen = false;
  private timer: NodeJS.Timeout | undefined;
  private closing = false;

  constructor(private readonly pool: pg.Pool, private readonly options: PgCustodyOptions) {}

  /** The head must be the last entry, and the newest checkpoint must verify and lie on the chain. */
  async open(): Promise<void> {
    const head = await this.readHead(this.pool);
    if (head.seq > 0) {
      const last = (await this.pool.query<{ line: string; hash: string }>(SQL.entryAt, [head.seq])).rows[0];
      if (!last || lineHash(last.line) !== head.hash || last.hash !== head.hash) {
        throw new EnvironmentError('E_CUSTODY_LOG', `the custody chain head (seq ${head.seq}) does not match the entry stored at that seq; run \`bodycam server verify-log --db …\` and have the database examined`);
      }
      if ((await this.pool.query(SQL.entryAt, [head.seq + 1])).rowCount) {
        throw new EnvironmentError('E_CUSTODY_LOG', `the custody chain holds an entry after its head (seq ${head.seq}); have the database examined`);
      }
    }
    const row = (await this.pool.query<{ checkpoint: string }>(SQL.checkpointLast)).rows[0];
    if (row) {
      const cp = JSON.parse(row.checkpoint) as CustodyCheckpoint;
      const why = checkpointProblem(cp, this.options.signer.publicKeyPem, this.options.signer.keyId);
      if (why) throw new EnvironmentError('E_CUSTODY_ANCHOR', `the newest custody checkpoint in the database cannot be trusted: ${why}`);
      const at = (await this.pool.query<{ hash: string }>(SQL.entryAt, [cp.seq])).rows[0];
      if (cp.seq > head.seq || !at || at.hash !== cp.hash) {
        throw new EnvironmentError('E_CUSTODY_ANCHOR', `the custody chain does not reach its signed checkpoint at seq ${cp.seq} (head at ${head.seq}): entries were removed or replaced; run verify-log`);
      }
      this.checkpoint = cp;
    }
    this.timer = setInterval(() => { this.checkpointIfBehind().catch(() => { /* the database is away: the next tick tries again */ }); }, this.options.checkpointIntervalMs ?? 60_000);
    this.timer.unref();
  }

  append<T>(fields: CustodyFields, build?: (seq: number, prevHash: string) => { extra?: Record<string, unknown>; value: T }): Promise<{ seq: number; value: T | undefined }> {
    return new Promise((resolve, reject) => {
      this.pending.push({ fields, build: build as Pending['build'], resolve: resolve as Pending['resolve'], reject });
      this.kick();
    });
  }

  appendUnlessMentioned(fields: CustodyFields, extra?: Record<string, unknown>): Promise<number> {
    return new Promise((resolve, reject) => {
      this.pending.push({ fields, build: () => ({ extra, value: undefined }), unlessMentioned: true, resolve: (r) => resolve(r.seq), reject });
      this.kick();
    });
  }

  /** Committed entries only, and every receipt entry was committed with a checkpoint covering it. */
  async findReceiptEntry(dockId: string, recordingId: string): Promise<CustodyEntry | undefined> {
    const row = (await this.pool.query<{ seq: string; line: string }>(SQL.receiptEntry, [dockId, recordingId])).rows[0];
    if (!row) return undefined;
    const entry = JSON.parse(row.line) as CustodyEntry;
    if (entry.seq !== Number(row.seq) || entry.event !== 'receipt-issued' || entry.dockId !== dockId || entry.recordingId !== recordingId) {
      throw new EnvironmentError('E_CUSTODY_INDEX', `the receipt row of ${dockId}/${recordingId} points at entry ${row.seq}, which is not its receipt; have the database examined`);
    }
    return entry;
  }

  /** CustodyChain.entriesAbout: committed entries only, found by custody_about (no scan of the chain). */
  async entriesAbout(dockId: string, recordingId: string, segmentSha256s: readonly string[], limit: number): Promise<CustodyEntry[]> {
    const subjects = [...aboutSubjects({ event: 'recording-created', dockId, recordingId, sha256: '' }), ...new Set(segmentSha256s.map((sha) => `blob:${sha}`))];
    const rows = (await this.pool.query<{ seq: string; line: string }>(SQL.entriesAbout, [subjects, limit])).rows;
    return rows.map((row) => JSON.parse(row.line) as CustodyEntry);
  }

  lastCheckpoint(): CustodyCheckpoint | undefined {
    return this.checkpoint;
  }

  async close(): Promise<void> {
    while (this.writing) await this.writing;
    this.closing = true;
    if (this.timer) clearInterval(this.timer);
    if (this.appendedSinceOpen) await this.checkpointIfBehind().catch(() => {});
  }

  private kick(): void {
    if (!this.writing) this.writing = this.drain();
  }

  private async readHead(db: Pick<pg.Pool, 'query'>, lock = false): Promise<Head> {
    const row = (await db.query<{ seq: string; hash: string; bytes: string }>(lock ? SQL.headLock : SQL.headRead)).rows[0];
    if (!row) throw new EnvironmentError('E_CUSTODY_LOG', 'the custody_head row is missing; have the database examined');
    return { seq: Number(row.seq), hash: row.hash, bytes: Number(row.bytes) };
  }

  private async drain(): Promise<void> {
    try {
      while (this.pending.length) {
        const batch = this.pending.splice(0);
        try {
          await this.commitBatch(batch);
        } catch (error) {
          batch.forEach((item) => item.reject(error));
        }
      }
    } finally {
      this.writing = undefined;
    }
  }

  private async commitBatch(batch: Pending[]): Promise<void> {
    // The waiting appends are settled only after the COMMIT (and not at all when it fails): a seq
    // handed out is one the database holds, and a receipt goes out with its signed checkpoint.
    const { checkpoint, appended, settle } = await inTransaction(this.pool, async (client) => {
      const head = await this.readHead(client, true);
      const mentionKeys = batch.filter((i) => i.unlessMentioned).map((i) => mentionOf(i.fields));
      const mentioned = new Set<string>();
      if (mentionKeys.length) {
        const rows = (await client.query<{ event: string; subject: string }>(SQL.mentionsAmong, [mentionKeys.map((m) => m.event), mentionKeys.map((m) => m.subject)])).rows;
        for (const r of rows) mentioned.add(`${r.event} ${r.subject}`);
      }
      const receiptItems = batch.filter((i) => i.fields.event === 'receipt-issued');
      const receipted = new Set<string>();
      if (receiptItems.length) {
        const rows = (await client.query<{ dock_id: string; recording_id: string }>(SQL.receiptsAmong, [receiptItems.map((i) => i.fields.dockId), receiptItems.map((i) => i.fields.recordingId)])).rows;
        for (const r of rows) receipted.add(`${r.dock_id}/${r.recording_id}`);
      }
      let { seq, hash: prev, bytes } = head;
      const seqs: number[] = []; const lines: string[] = []; const hashes: string[] = [];
      const mEvents: string[] = []; const mSubjects: string[] = []; const mSeqs: number[] = [];
      const rDocks: string[] = []; const rIds: string[] = []; const rSeqs: number[] = [];
      const aSubjects: string[] = []; const aSeqs: number[] = [];
      const settle: Array<() => void> = [];
      for (const item of batch) {
        const mention = mentionOf(item.fields);
        const key = `${mention.event} ${mention.subject}`;
        if (item.unlessMentioned && mentioned.has(key)) { settle.push(() => item.resolve({ seq: 0, value: undefined })); continue; }
        if (item.fields.event === 'receipt-issued' && receipted.has(`${item.fields.dockId}/${item.fields.recordingId}`)) {
          settle.push(() => item.reject(new ReceiptExistsError(`a receipt for ${item.fields.dockId}/${item.fields.recordingId} is in the custody chain already`)));
          continue;
        }
        let built: { extra?: Record<string, unknown>; value: unknown } | undefined;
        try {
          built = item.build ? item.build(seq + 1, prev) : undefined;
        } catch (error) {
          settle.push(() => item.reject(error));
          continue;
        }
        const entry: CustodyEntry = { seq: seq + 1, time: new Date().toISOString(), ...item.fields, ...(built?.extra ?? {}), prev };
        const line = JSON.stringify(entry);
        seq++;
        prev = lineHash(line);
        bytes += Buffer.byteLength(line, 'utf8') + 1;
        seqs.push(seq); lines.push(line); hashes.push(prev);
        if (!mentioned.has(key)) { mEvents.push(mention.event); mSubjects.push(mention.subject); mSeqs.push(seq); mentioned.add(key); }
        for (const subject of aboutSubjects(entry)) { aSubjects.push(subject); aSeqs.push(seq); }
        if (entry.event === 'receipt-issued') { rDocks.push(entry.dockId); rIds.push(entry.recordingId); rSeqs.push(seq); receipted.add(`${entry.dockId}/${entry.recordingId}`); }
        const result = { seq, value: built?.value };
        settle.push(() => item.resolve(result));
      }
      let checkpoint: CustodyCheckpoint | undefined;
      if (lines.length) {
        await client.query(SQL.entriesInsert, [seqs, lines, hashes]);
        if (mEvents.length) await client.query(SQL.mentionsInsert, [mEvents, mSubjects, mSeqs]);
        if (rDocks.length) await client.query(SQL.receiptsInsert, [rDocks, rIds, rSeqs]);
        await client.query(SQL.aboutInsert, [aSubjects, aSeqs]);
        await client.query(SQL.headMove, [seq, prev, bytes]);
        // A receipt is handed out only with a signed checkpoint covering it, committed together.
        const lastCp = this.checkpoint?.seq ?? 0;
        if (rDocks.length || seq - lastCp >= (this.options.checkpointEvery ?? 1000)) {
          checkpoint = signCheckpoint({ seq, hash: prev, offset: bytes }, this.options.signer);
          await client.query(SQL.checkpointInsert, [seq, JSON.stringify(checkpoint)]);
        }
      }
      return { checkpoint, appended: lines.length > 0, settle };
    });
    if (appended) this.appendedSinceOpen = true;
    if (checkpoint) { this.checkpoint = checkpoint; this.options.onCheckpoint?.(checkpoint); }
    settle.forEach((f) => f());
  }

  /** A checkpoint of the current head when none covers it yet (the interval tick and close). */
  private async checkpointIfBehind(): Promise<void> {
    if (this.closing && this.writing) return;
    const cp = await inTransaction(this.pool, async (client) => {
      const head = await this.readHead(client, true);
      const newest = (await client.query<{ checkpoint: string }>(SQL.checkpointLast)).rows[0];
      const newestSeq = newest ? (JSON.parse(newest.checkpoint) as CustodyCheckpoint).seq : 0;
      if (head.seq === 0 || newestSeq >= head.seq) return undefined;
      const signed = signCheckpoint({ seq: head.seq, hash: head.hash, offset: head.bytes }, this.options.signer);
      await client.query(SQL.checkpointInsert, [head.seq, JSON.stringify(signed)]);
      return signed;
    });
    if (cp) {
      this.checkpoint = cp;
      this.options.onCheckpoint?.(cp);
    }
  }
}

export { GENESIS };
