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
import { EnvironmentError, errnoCode } from '../errors.js';
import { CustodyIndex, type Mention } from './custodyIndex.js';
import { insideRoot } from './paths.js';

export type CustodyEvent = 'recording-created' | 'segment-stored' | 'receipt-issued';

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
  fields: CustodyFields;
  build?: (seq: number) => { extra?: Record<string, unknown>; value: unknown };
  /** Skip the entry when the log already mentions its subject (resolves with seq 0). */
  unlessMentioned?: boolean;
  resolve: (result: { seq: number; value: unknown }) => void;
  reject: (error: unknown) => void;
}

/**
 * What an entry is about: the recording (namespaced per dock, as the store keys it), or for
 * `segment-stored` the blob (content-addressed).
 */
export function mentionOf(fields: CustodyFields): Mention {
  return { event: fields.event, subject: fields.event === 'segment-stored' ? fields.sha256 : `${fields.dockId}/${fields.recordingId}` };
}

export const GENESIS = '0'.repeat(64);
const lineHash = (line: string) => createHash('sha256').update(line, 'utf8').digest('hex');

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
  /** The index catching up with the log; appends wait for it (it takes long only for a log that never had an index). */
  private indexReady: Promise<void> = Promise.resolve();
  private closing = false;

  constructor(private readonly path: string) {}

  /** Open the tail of the log, then the index, which catches up in the background. */
  async open(): Promise<void> {
    await this.openTail();
    try {
      this.index = CustodyIndex.open(join(dirname(this.path), 'custody-index.sqlite'));
    } catch (error) {
      this.indexError = error;
      return;
    }
    this.indexReady = this.catchUp().catch((error: unknown) => {
      this.indexError = error;
      this.index?.close();
      this.index = undefined;
    });
  }

  /**
   * Read only the tail of the file: startup cost does not grow with the log. A crash in the
   * middle of an append can leave a torn last line (no newline): it was never acknowledged
   * (acks follow the fsync), so it is moved aside to custody.log.torn-<time> and cut off,
   * and the chain continues from the last whole entry.
   */
  private async openTail(): Promise<void> {
    let size = 0;
    try {
      size = (await stat(this.path)).size;
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return;
      throw error;
    }
    if (size === 0) return;
    const handle = await open(this.path, 'r+');
    try {
      let window = 64 * 1024;
      for (;;) {
        const start = Math.max(0, size - window);
        const buffer = Buffer.alloc(size - start);
        await handle.read(buffer, 0, buffer.length, start);
        if (buffer[buffer.length - 1] !== 0x0a) {
          const lastNewline = buffer.lastIndexOf(0x0a);
          if (lastNewline < 0 && start > 0) { window *= 4; continue; }
          const torn = buffer.subarray(lastNewline + 1);
          await writeFile(`${this.path}.torn-${Date.now()}`, torn, { mode: 0o600 });
          await handle.truncate(size - torn.length);
          await handle.sync();
          size -= torn.length;
          if (size === 0) return;
          window = 64 * 1024;
          continue;
        }
        const body = buffer.subarray(0, buffer.length - 1);
        const cut = body.lastIndexOf(0x0a);
        if (cut < 0 && start > 0) { window *= 4; continue; }
        const line = body.subarray(cut + 1).toString('utf8');
        let entry: CustodyEntry;
        try {
          entry = JSON.parse(line) as CustodyEntry;
        } catch (error) {
          throw new EnvironmentError('E_CUSTODY_LOG', `the last entry of ${this.path} is not valid JSON; run \`bodycam server verify-log\` and have the log examined before starting the server`, { cause: error });
        }
        this.lastSeq = entry.seq;
        this.lastHash = lineHash(line);
        this.size = size;
        return;
      }
    } finally {
      await handle.close();
    }
  }

  /**
   * Append one entry. `build` may look at the sequence number the entry will get
   * (a receipt carries it) and add fields. Appends that arrive while a write is in
   * progress are committed together: one write, one fsync (group commit), so eight
   * concurrent uploads do not queue behind eight fsyncs.
   */
  append<T>(fields: CustodyFields, build?: (seq: number) => { extra?: Record<string, unknown>; value: T }): Promise<{ seq: number; value: T | undefined }> {
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

  /** Read what the index has not seen (normally nothing, or the last batch before a crash). */
  private async catchUp(): Promise<void> {
    const index = this.index!;
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
    try {
      for await (const line of lines) {
        if (this.closing) return;
        const entry = JSON.parse(line) as CustodyEntry;
        if (from.offset > 0 && seq === from.seq && entry.seq !== from.seq + 1) {
          // The index's offset does not land on the entry after its seq: rebuild from the start.
          lines.close();
          input.destroy();
          index.clear();
          return this.catchUp();
        }
        offset += Buffer.byteLength(line, 'utf8') + 1;
        seq = entry.seq;
        batch.push(mentionOf(entry));
        if (batch.length >= 2000) {
          index.record(batch, { seq, offset });
          batch = [];
          await new Promise<void>((resolve) => setImmediate(resolve)); // let requests through while a large log is indexed
        }
      }
      index.record(batch, { seq, offset });
    } finally {
      lines.close();
      input.destroy();
    }
  }

  private async drain(): Promise<void> {
    await this.indexReady;
    while (this.pending.length) {
      const batch = this.pending.splice(0);
      const lines: string[] = [];
      const results: Array<{ seq: number; value: unknown }> = [];
      const mentions: Mention[] = [];
      const mentionedInBatch = new Set<string>();
      let seq = this.lastSeq;
      let prev = this.lastHash;
      const accepted: Pending[] = [];
      /** Skipped because an earlier entry of this same batch mentions their subject: settled with it. */
      const coveredByBatch: Pending[] = [];
      for (const item of batch) {
        try {
          const mention = mentionOf(item.fields);
          const key = `${mention.event} ${mention.subject}`;
          if (item.unlessMentioned) {
            if (!this.index) throw new EnvironmentError('E_CUSTODY_INDEX', 'the custody index is unavailable, so the server cannot tell whether the custody log already mentions this item', { cause: this.indexError });
            if (mentionedInBatch.has(key)) { coveredByBatch.push(item); continue; }
            if (this.index.has(mention.event, mention.subject)) { item.resolve({ seq: 0, value: undefined }); continue; }
          }
          const built = item.build ? item.build(seq + 1) : undefined;
          const entry: CustodyEntry = { seq: seq + 1, time: new Date().toISOString(), ...item.fields, ...(built?.extra ?? {}), prev };
          const line = JSON.stringify(entry);
          seq++;
          prev = lineHash(line);
          lines.push(line);
          mentionedInBatch.add(key);
          mentions.push(mention);
          results.push({ seq, value: built?.value });
          accepted.push(item);
        } catch (error) {
          item.reject(error);
        }
      }
      if (!lines.length) continue;
      try {
        const handle = await open(this.path, 'a', 0o600); // evidence: owner only (docs/reliability.md, item 7)
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
        this.indexBatch(mentions);
        accepted.forEach((item, i) => item.resolve(results[i]!));
        coveredByBatch.forEach((item) => item.resolve({ seq: 0, value: undefined }));
      } catch (error) {
        accepted.forEach((item) => item.reject(error));
        coveredByBatch.forEach((item) => item.reject(error));
      }
    }
    this.writing = undefined;
  }

  /** The entries are durable in the log already; an index that cannot follow is dropped and rebuilt at the next open. */
  private indexBatch(mentions: Mention[]): void {
    if (!this.index) return;
    try {
      this.index.record(mentions, { seq: this.lastSeq, offset: this.size });
    } catch (error) {
      this.indexError = error;
      this.index.close();
      this.index = undefined;
    }
  }

  async close(): Promise<void> {
    this.closing = true;
    await this.indexReady;
    while (this.writing) await this.writing;
    this.index?.close();
    this.index = undefined;
  }
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
