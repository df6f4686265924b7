/**
 * The custody log: append-only JSON lines in <data dir>/custody.log. Each entry
 * carries `prev`, the SHA-256 (hex) of the previous entry's line (without its
 * newline; 64 zeros for the first), so editing, removing or reordering any line
 * breaks the chain at that line. Appends are serialised in-process and fsynced.
 *
 * The store is written before its entry is appended (an entry never claims what was not
 * stored), so a crash in between leaves a stored item without its entry. The custody index
 * (custody-index.sqlite beside the log) says in one lookup whether the log mentions a subject;
 * `appendUnlessMentioned` uses it to close such gaps when the item is next touched.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { EnvironmentError, errnoCode } from '../../errors.js';
import { appendCheckpoint, checkLogAgainstAnchors, cutTornCheckpoint, newestAnchor, readAnchors, readLineEndingAt, signCheckpoint, writeHead, type CheckpointSigner, type CustodyCheckpoint } from './custodyAnchor.js';
import { aboutSubjects, CustodyIndex, type AboutRow, type Mention, type ReceiptMention } from './custodyIndex.js';
import { insideRoot } from '../paths.js';
import { readLastLineBefore } from '../../util/lastLine.js';

/** `viewed` and `downloaded`: a person looked at or took the evidence in the console (with `by`, `role`). */
export type CustodyEvent = 'recording-created' | 'segment-stored' | 'receipt-issued' | 'viewed' | 'downloaded';

export interface CustodyEntry {
  seq: number;
  time: string;
  event: CustodyEvent;
  recordingId: string;
  dockId: string;
  sha256: string;
  prev: string;
  [extra: string]: unknown;
}

export interface CustodyFields {
  event: CustodyEvent;
  recordingId: string;
  dockId: string;
  sha256: string;
}

interface Pending {
  /** A lookup run in the same serialised step as the appends (the index is current for it). */
  query?: () => Promise<unknown>;
  fields: CustodyFields;
  build?: (seq: number, prevHash: string) => { extra?: Record<string, unknown>; value: unknown };
  /** Skip the entry when the log already mentions its subject (resolves with seq 0). */
  unlessMentioned?: boolean;
  resolve: (result: { seq: number; value: unknown }) => void;
  reject: (error: unknown) => void;
}

/**
 * What an entry is about: the recording (namespaced per dock, as the store keys it), and for
 * `segment-stored` which of its blobs: one entry per recording and blob received, also when the
 * server held the bytes already for another recording (ATTACK-s6 B3: keyed on the blob alone, the
 * second recording of the same bytes had no entry of its own).
 */
export function mentionOf(fields: CustodyFields): Mention {
  const recording = `${fields.dockId}/${fields.recordingId}`;
  return { event: fields.event, subject: fields.event === 'segment-stored' ? `${recording} ${fields.sha256}` : recording };
}

export const GENESIS = '0'.repeat(64);
const lineHash = (line: string) => createHash('sha256').update(line, 'utf8').digest('hex');

export interface CustodyLogOptions {
  /** Sign checkpoints with this key and refuse to open a log that does not match them (custodyAnchor.ts). */
  signer?: CheckpointSigner;
  /** A checkpoint after this many entries at the latest (default 1000); also after every batch with a receipt. */
  checkpointEvery?: number;
  /** A checkpoint this often when entries were appended since the last (default 60 s). */
  checkpointIntervalMs?: number;
  /** The highest custodySeq of any receipt the store holds (given the newest checkpoint): a shorter log is refused. */
  highestReceiptSeq?: (anchor: CustodyCheckpoint | undefined) => Promise<number>;
}

/** A `receipt-issued` entry found in the log, with the hash of the line before it. */
export interface ReceiptEntry {
  entry: CustodyEntry;
  seq: number;
}

export function custodyLogPath(dataDir: string): string {
  return insideRoot(dataDir, 'custody.log');
}

export class CustodyLog {
  private lastSeq = 0;
  private lastHash = GENESIS;
  /** Bytes of whole entries in the file. */
  private size = 0;
  private pending: Pending[] = [];
  private writing: Promise<void> | undefined;
  private index: CustodyIndex | undefined;
  private indexError: unknown;
  /** A write to the index failed after its entries were durable: read the log again before trusting it. */
  private indexBehind = false;
  /** The index catching up with the log; appends wait for it (it takes long only for a log that never had an index). */
  private indexReady: Promise<void> = Promise.resolve();
  private closing = false;
  private checkpoint: CustodyCheckpoint | undefined;
  private checkpointsSize = 0;
  /** seq of the checkpoint in custody-head.json. */
  private headSeq = 0;
  private appendedSinceOpen = false;
  private checkpointDue = false;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly path: string, private readonly options: CustodyLogOptions = {}) {}

  private get indexPath(): string {
    return join(dirname(this.path), 'custody-index.sqlite');
  }

  /** Open the tail of the log, check it against its anchors, then the index, which catches up in the background. */
  async open(): Promise<void> {
    const exists = await this.openTail();
    const signer = this.options.signer;
    if (signer) {
      const anchors = await readAnchors(this.path, signer);
      const anchor = newestAnchor(anchors);
      await checkLogAgainstAnchors(this.path, { exists, lastSeq: this.lastSeq, size: this.size }, anchor, await this.options.highestReceiptSeq?.(anchor) ?? 0);
      if (anchors.tornCheckpointBytes > 0) await cutTornCheckpoint(this.path, anchors.checkpointsSize);
      this.checkpoint = anchor;
      this.checkpointsSize = anchors.checkpointsSize;
      this.headSeq = anchors.head?.seq ?? 0;
      // The head may be behind the checkpoints file (a crash between the two writes): the next checkpoint rewrites it.
      if (anchors.head && anchors.lastCheckpoint && anchors.head.seq < anchors.lastCheckpoint.seq) this.checkpointDue = true;
      const interval = this.options.checkpointIntervalMs ?? 60_000;
      this.timer = setInterval(() => {
        if (!this.anchored(this.lastSeq, true)) { this.checkpointDue = true; this.kick(); }
      }, interval);
      this.timer.unref();
    } else if (this.options.highestReceiptSeq) {
      await checkLogAgainstAnchors(this.path, { exists, lastSeq: this.lastSeq, size: this.size }, undefined, await this.options.highestReceiptSeq(undefined));
    }
    // An empty log is a log: verify-log tells "no entries yet" from "no log".
    if (!exists) await (await open(this.path, 'a', 0o600)).close();
    try {
      this.index = CustodyIndex.open(this.indexPath);
    } catch (error) {
      this.indexError = error;
      return;
    }
    const index = this.index;
    this.indexReady = this.catchUp(index).catch((error: unknown) => {
      this.indexError = error;
      this.indexBehind = true;
    });
  }

  /**
   * Read only the tail of the file: startup cost does not grow with the log. A crash in the
   * middle of an append can leave a torn last line (no newline): it was never acknowledged
   * (acks follow the fsync), so it is moved aside to custody.log.torn-<time> and cut off,
   * and the chain continues from the last whole entry. Resolves false when there is no log file.
   */
  private async openTail(): Promise<boolean> {
    let size = 0;
    try {
      size = (await stat(this.path)).size;
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return false;
      throw error;
    }
    if (size === 0) return true;
    const handle = await open(this.path, 'r+');
    try {
      const tail = await readLastLineBefore(handle, size);
      if (tail === undefined) throw new EnvironmentError('E_CUSTODY_LOG', `${this.path} was cut short while the server was opening it; is another server using this data dir?`);
      if (tail.torn > 0) {
        const torn = Buffer.alloc(tail.torn);
        await handle.read(torn, 0, torn.length, size - torn.length);
        await writeFile(`${this.path}.torn-${Date.now()}`, torn, { mode: 0o600 });
        await handle.truncate(size - torn.length);
        await handle.sync();
        size -= torn.length;
        if (size === 0) return true;
      }
      // After a torn line is cut off, a file with bytes left has a newline, so a line (perhaps empty: not JSON).
      const line = tail.line ?? '';
      let entry: CustodyEntry;
      try {
        entry = JSON.parse(line) as CustodyEntry;
      } catch (error) {
        throw new EnvironmentError('E_CUSTODY_LOG', `the last entry of ${this.path} is not valid JSON; run \`bodycam server verify-log\` and have the log examined before starting the server`, { cause: error });
      }
      this.lastSeq = entry.seq;
      this.lastHash = lineHash(line);
      this.size = size;
      return true;
    } finally {
      await handle.close();
    }
  }

  private kick(): void {
    if (!this.writing && !this.closing) this.writing = this.drain();
  }

  /**
   * Append one entry. `build` may look at the sequence number the entry will get and the hash of
   * the entry before it (a receipt carries both) and add fields. Appends that arrive while a write
   * is in progress are committed together: one write, one fsync (group commit), so eight
   * concurrent uploads do not queue behind eight fsyncs. A batch with a `receipt-issued` entry is
   * covered by a signed checkpoint before any of its receipts is handed out.
   */
  append<T>(fields: CustodyFields, build?: (seq: number, prevHash: string) => { extra?: Record<string, unknown>; value: T }): Promise<{ seq: number; value: T | undefined }> {
    return new Promise((resolve, reject) => {
      this.pending.push({ fields, build: build as Pending['build'], resolve: resolve as Pending['resolve'], reject });
      if (!this.writing) this.writing = this.drain();
    });
  }

  /**
   * Append the entry only if the log does not mention its subject yet (one per recording created,
   * one per blob stored, whoever asks first). Decided in the same serialised step as the write,
   * so two callers never both append. Resolves with the new seq, or 0 when it was mentioned.
   * Rejects when the index is unavailable: a duplicate or a gap would follow from guessing.
   */
  appendUnlessMentioned(fields: CustodyFields, extra?: Record<string, unknown>): Promise<number> {
    return new Promise((resolve, reject) => {
      this.pending.push({ fields, build: () => ({ extra, value: undefined }), unlessMentioned: true, resolve: (r) => resolve(r.seq), reject });
      if (!this.writing) this.writing = this.drain();
    });
  }

  /**
   * The recording's `receipt-issued` entry, if the log has one (a receipt was signed, and a failure
   * came before the recording was updated with it). Serialised with the appends, so an entry
   * appended before this call is found; the entry is covered by a checkpoint before it is returned.
   */
  findReceiptEntry(dockId: string, recordingId: string): Promise<CustodyEntry | undefined> {
    return new Promise((resolve, reject) => {
      const query = async () => {
        const index = await this.currentIndex();
        const at = index.receipt(dockId, recordingId);
        if (!at) return undefined;
        const line = await readLineEndingAt(this.path, at.end);
        const entry = line === undefined ? undefined : JSON.parse(line) as CustodyEntry;
        if (!entry || entry.seq !== at.seq || entry.event !== 'receipt-issued' || entry.recordingId !== recordingId || entry.dockId !== dockId) {
          throw new EnvironmentError('E_CUSTODY_INDEX', `the custody index points at entry ${at.seq} for ${recordingId}, which the log does not hold there; delete custody-index.sqlite and restart`);
        }
        if (this.options.signer && !this.anchored(entry.seq)) await this.writeCheckpointNow(false);
        return entry;
      };
      this.pending.push({ query, fields: undefined as unknown as CustodyFields, resolve: (r) => resolve(r.value as CustodyEntry | undefined), reject });
      if (!this.writing) this.writing = this.drain();
    });
  }

  /** The index, read up to the end of the log; reopened and caught up when a failure (a full disk) left it behind. */
  private async currentIndex(): Promise<CustodyIndex> {
    if (this.index && !this.indexBehind) return this.index;
    try {
      this.index ??= CustodyIndex.open(this.indexPath);
      await this.catchUp(this.index);
      this.indexBehind = false;
      this.indexError = undefined;
      return this.index;
    } catch (error) {
      this.indexError = error;
      this.indexBehind = true;
      // A handle left in a bad state by the failure is not reused: the next use opens it afresh.
      this.index?.close();
      this.index = undefined;
      throw error;
    }
  }

  /** Read what the index has not seen (normally nothing, or the last batch before a crash). */
  private async catchUp(index: CustodyIndex): Promise<void> {
    let from = index.position();
    if (from.seq === this.lastSeq && from.offset === this.size) return;
    if (from.seq > this.lastSeq || from.offset > this.size) {
      index.clear(); // the log was replaced or cut: the index no longer describes it
      from = { seq: 0, offset: 0 };
    }
    if (this.size === 0) return;
    const input = createReadStream(this.path, { start: from.offset, end: this.size - 1, encoding: 'utf8' });
    const lines = createInterface({ input, crlfDelay: Infinity });
    let offset = from.offset;
    let seq = from.seq;
    let batch: Mention[] = [];
    let receipts: ReceiptMention[] = [];
    let about: AboutRow[] = [];
    try {
      for await (const line of lines) {
        if (this.closing) return;
        const entry = JSON.parse(line) as CustodyEntry;
        if (from.offset > 0 && seq === from.seq && entry.seq !== from.seq + 1) {
          // The index's offset does not land on the entry after its seq: rebuild from the start.
          lines.close();
          input.destroy();
          index.clear();
          return this.catchUp(index);
        }
        const start = offset;
        const length = Buffer.byteLength(line, 'utf8');
        offset += length + 1;
        seq = entry.seq;
        batch.push(mentionOf(entry));
        for (const subject of aboutSubjects(entry)) about.push({ subject, seq, start, length });
        if (entry.event === 'receipt-issued') receipts.push({ dockId: entry.dockId, recordingId: entry.recordingId, seq, end: offset });
        if (batch.length >= 2000) {
          index.record(batch, receipts, { seq, offset }, about);
          batch = [];
          receipts = [];
          about = [];
          await new Promise<void>((resolve) => setImmediate(resolve)); // let requests through while a large log is indexed
        }
      }
      index.record(batch, receipts, { seq, offset }, about);
    } finally {
      lines.close();
      input.destroy();
    }
  }

  private async drain(): Promise<void> {
    await this.indexReady;
    while (this.pending.length || (this.checkpointDue && !this.closing)) {
      const batch = this.pending.splice(0);
      // Lookups first: each sees every entry appended before it was asked.
      for (const item of batch.filter((i) => i.query)) {
        try {
          item.resolve({ seq: 0, value: await item.query!() });
        } catch (error) {
          item.reject(error);
        }
      }
      const appends = batch.filter((i) => !i.query);
      const needsIndex = appends.some((i) => i.unlessMentioned);
      let index: CustodyIndex | undefined;
      if (needsIndex) {
        try {
          index = await this.currentIndex();
        } catch {
          index = undefined; // each item that needs it is refused below, with the cause
        }
      }
      const lines: string[] = [];
      const results: Array<{ seq: number; value: unknown }> = [];
      const mentions: Mention[] = [];
      const receipts: ReceiptMention[] = [];
      const about: AboutRow[] = [];
      const mentionedInBatch = new Set<string>();
      let seq = this.lastSeq;
      let prev = this.lastHash;
      let end = this.size;
      const accepted: Pending[] = [];
      /** Skipped because an earlier entry of this same batch mentions their subject: settled with it. */
      const coveredByBatch: Pending[] = [];
      for (const item of appends) {
        try {
          const mention = mentionOf(item.fields);
          const key = `${mention.event} ${mention.subject}`;
          if (item.unlessMentioned) {
            if (!index) throw this.indexUnavailable();
            if (mentionedInBatch.has(key)) { coveredByBatch.push(item); continue; }
            if (index.has(mention.event, mention.subject)) { item.resolve({ seq: 0, value: undefined }); continue; }
          }
          const built = item.build ? item.build(seq + 1, prev) : undefined;
          const entry: CustodyEntry = { seq: seq + 1, time: new Date().toISOString(), ...item.fields, ...(built?.extra ?? {}), prev };
          const line = JSON.stringify(entry);
          seq++;
          prev = lineHash(line);
          const length = Buffer.byteLength(line, 'utf8');
          for (const subject of aboutSubjects(entry)) about.push({ subject, seq, start: end, length });
          end += length + 1;
          lines.push(line);
          mentionedInBatch.add(key);
          mentions.push(mention);
          if (entry.event === 'receipt-issued') receipts.push({ dockId: entry.dockId, recordingId: entry.recordingId, seq, end });
          results.push({ seq, value: built?.value });
          accepted.push(item);
        } catch (error) {
          item.reject(error);
        }
      }
      if (lines.length) {
        try {
          const handle = await open(this.path, 'a', 0o600);
          const text = lines.join('\n') + '\n';
          try {
            await handle.appendFile(text); // loops until every byte is written
            await handle.sync();
          } catch (error) {
            // A failed append (ENOSPC, EIO) may have left part of the batch in the file: cut it back
            // to the last whole entry, or the next append would chain onto a torn line for good.
            await handle.truncate(this.size).then(() => handle.sync()).catch(() => {});
            throw error;
          } finally {
            await handle.close();
          }
          this.lastSeq = seq;
          this.lastHash = prev;
          this.size += Buffer.byteLength(text, 'utf8');
          this.appendedSinceOpen = true;
        } catch (error) {
          accepted.forEach((item) => item.reject(error));
          coveredByBatch.forEach((item) => item.reject(error));
          continue;
        }
        this.indexBatch(mentions, receipts, about);
      }
      // The entries are durable. A receipt is handed out only once a signed checkpoint covers it;
      // if that fails (a full disk), the caller retries and gets the very same receipt (findReceiptEntry).
      let checkpointError: unknown;
      const cpSeq = this.checkpoint?.seq ?? 0;
      const periodic = this.checkpointDue || this.lastSeq - cpSeq >= (this.options.checkpointEvery ?? 1000);
      if (this.options.signer && !this.anchored(this.lastSeq, periodic) && (receipts.length > 0 || periodic)) {
        try {
          await this.writeCheckpointNow(periodic);
        } catch (error) {
          checkpointError = error;
        }
      }
      if (this.checkpointDue && this.anchored(this.lastSeq, true)) this.checkpointDue = false;
      if (checkpointError !== undefined) this.checkpointDue = false; // retried at the next batch or tick, not in a loop
      accepted.forEach((item, i) => {
        if (checkpointError !== undefined && item.fields.event === 'receipt-issued') item.reject(checkpointError);
        else item.resolve(results[i]!);
      });
      coveredByBatch.forEach((item) => item.resolve({ seq: 0, value: undefined }));
    }
    this.writing = undefined;
  }

  private indexUnavailable(): Error {
    const cause = this.indexError;
    // A full disk is the caller's to report as such (507), not as a broken index.
    if (cause instanceof Error && isStorageFull(cause)) return cause;
    return new EnvironmentError('E_CUSTODY_INDEX', 'the custody index is unavailable, so the server cannot tell whether the custody log already mentions this item', { cause });
  }

  /**
   * Sign the tail into custody-checkpoints.jsonl (one fsynced append); with `head`, also replace
   * custody-head.json (periodic checkpoints and shutdown: the head is the second copy, it may lag).
   */
  private async writeCheckpointNow(head: boolean): Promise<void> {
    const signer = this.options.signer!;
    if ((this.checkpoint?.seq ?? 0) < this.lastSeq) {
      const checkpoint = signCheckpoint({ seq: this.lastSeq, hash: this.lastHash, offset: this.size }, signer);
      this.checkpointsSize = await appendCheckpoint(this.path, checkpoint, this.checkpointsSize);
      this.checkpoint = checkpoint;
    }
    if (head && this.checkpoint) {
      await writeHead(this.path, this.checkpoint);
      this.headSeq = this.checkpoint.seq;
    }
  }

  /** A signed checkpoint (and with `head`, the head too) covers entry `seq`. */
  private anchored(seq: number, head = false): boolean {
    return (this.checkpoint?.seq ?? 0) >= seq && (!head || this.headSeq >= seq);
  }

  /** The entries are durable in the log already; an index that cannot follow reads the log again at the next use. */
  private indexBatch(mentions: Mention[], receipts: ReceiptMention[], about: AboutRow[]): void {
    if (!this.index || this.indexBehind) { this.indexBehind = true; return; }
    try {
      this.index.record(mentions, receipts, { seq: this.lastSeq, offset: this.size }, about);
    } catch (error) {
      this.indexError = error;
      this.indexBehind = true;
    }
  }

  /** The last checkpoint written or read at open (for tests and verify-log). */
  /**
   * CustodyChain.entriesAbout: the index says where the entries are (no pass over the log), each
   * line is read from the log itself; a pass over the log only while the index is unusable.
   */
  async entriesAbout(dockId: string, recordingId: string, segmentSha256s: readonly string[], limit: number): Promise<CustodyEntry[]> {
    await this.indexReady;
    const index = this.index;
    if (!index || this.indexBehind) return entriesAboutInLines(readLines(this.path), dockId, recordingId, segmentSha256s, limit);
    const subjects = [...aboutSubjects({ event: 'recording-created', dockId, recordingId, sha256: '' }), ...new Set(segmentSha256s.map((sha) => `blob:${sha}`))];
    const rows = index.about(subjects, limit);
    if (rows.length === 0) return [];
    const handle = await open(this.path, 'r');
    try {
      const out: CustodyEntry[] = [];
      for (const row of rows) {
        const buffer = Buffer.alloc(row.length);
        const { bytesRead } = await handle.read(buffer, 0, row.length, row.start);
        let entry: CustodyEntry | undefined;
        try { entry = JSON.parse(buffer.subarray(0, bytesRead).toString('utf8')) as CustodyEntry; } catch { entry = undefined; }
        // The index is a cache: one that does not point at the entry it names is not trusted for this answer.
        if (entry?.seq !== row.seq) return entriesAboutInLines(readLines(this.path), dockId, recordingId, segmentSha256s, limit);
        out.push(entry);
      }
      return out;
    } finally {
      await handle.close();
    }
  }

  lastCheckpoint(): CustodyCheckpoint | undefined {
    return this.checkpoint;
  }

  async close(): Promise<void> {
    await this.indexReady;
    while (this.writing) await this.writing;
    this.closing = true;
    if (this.timer) clearInterval(this.timer);
    // A clean shutdown leaves the tail signed: a forged or removed last line is then seen at the next start.
    // After appends, the checkpoint is signed afresh (its time then follows every record this
    // process updated, so the next startup reads only records changed after it).
    if (this.options.signer && (this.appendedSinceOpen || !this.anchored(this.lastSeq, true))) {
      if (this.appendedSinceOpen && this.lastSeq > 0) this.checkpoint = undefined;
      await this.writeCheckpointNow(true).catch(() => {});
    }
    this.index?.close();
    this.index = undefined;
  }
}

/** ENOSPC, EDQUOT or SQLITE_FULL anywhere in an error's cause chain. */
export function isStorageFull(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    const code = errnoCode(e);
    if (code === 'ENOSPC' || code === 'EDQUOT' || code === 'SQLITE_FULL') return true;
  }
  return false;
}

export interface CustodyVerification {
  ok: boolean;
  entries: number;
  /** First entry that breaks the chain: its 1-based line number, its seq if readable, and why. */
  firstBroken?: { line: number; seq?: number; reason: string };
}

/** Check the whole chain; streaming, so memory does not grow with the log. */
export async function verifyCustodyLog(dataDir: string): Promise<CustodyVerification> {
  const path = custodyLogPath(dataDir);
  try {
    await stat(path);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return { ok: true, entries: 0 };
    throw error;
  }
  const lines = createInterface({ input: createReadStream(path, 'utf8'), crlfDelay: Infinity });
  let prevHash = GENESIS;
  let expectedSeq = 1;
  let lineNo = 0;
  for await (const line of lines) {
    lineNo++;
    const broken = (reason: string, seq?: number): CustodyVerification => {
      lines.close();
      return { ok: false, entries: lineNo - 1, firstBroken: { line: lineNo, ...(seq !== undefined ? { seq } : {}), reason } };
    };
    let entry: CustodyEntry;
    try {
      entry = JSON.parse(line) as CustodyEntry;
    } catch {
      return broken('not valid JSON');
    }
    if (typeof entry !== 'object' || entry === null) return broken('not a JSON object');
    const seq = typeof entry.seq === 'number' ? entry.seq : undefined;
    if (seq !== expectedSeq) return broken(`seq is ${String(entry.seq)}, expected ${expectedSeq}`, seq);
    if (entry.prev !== prevHash) return broken('prev does not match the SHA-256 of the previous entry (this entry or the one before it was altered, removed or reordered)', seq);
    for (const field of ['time', 'event', 'recordingId', 'dockId', 'sha256'] as const) {
      if (typeof entry[field] !== 'string') return broken(`missing ${field}`, seq);
    }
    prevHash = lineHash(line);
    expectedSeq++;
  }
  return { ok: true, entries: lineNo };
}

async function* readLines(path: string): AsyncIterable<string> {
  const input = createReadStream(path, { encoding: 'utf8' });
  try {
    yield* createInterface({ input, crlfDelay: Infinity });
  } catch (error) {
    if (errnoCode(error) !== 'ENOENT') throw error;
  } finally {
    input.destroy();
  }
}

/** The entries of `lines` about one recording (see CustodyChain.entriesAbout), shared by the backends. */
export async function entriesAboutInLines(lines: AsyncIterable<string>, dockId: string, recordingId: string, segmentSha256s: readonly string[], limit: number): Promise<CustodyEntry[]> {
  const shas = new Set(segmentSha256s);
  const idNeedle = JSON.stringify(recordingId);
  const out: CustodyEntry[] = [];
  for await (const line of lines) {
    if (!line.includes(idNeedle)) {
      const at = line.indexOf('"sha256":"');
      if (at < 0 || !line.includes('"segment-stored"') || !shas.has(line.slice(at + 10, at + 74))) continue;
    }
    let entry: CustodyEntry;
    try { entry = JSON.parse(line) as CustodyEntry; } catch { continue; }
    const own = entry.dockId === dockId && entry.recordingId === recordingId;
    if (own || (entry.event === 'segment-stored' && shas.has(entry.sha256))) {
      out.push(entry);
      if (out.length >= limit) break;
    }
  }
  return out;
}
