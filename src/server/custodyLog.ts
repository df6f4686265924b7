/**
 * The custody log: append-only JSON lines in <data dir>/custody.log. Each entry
 * carries `prev`, the SHA-256 (hex) of the previous entry's line (without its
 * newline; 64 zeros for the first), so editing, removing or reordering any line
 * breaks the chain at that line. Appends are serialised in-process and fsynced.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, stat, writeFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { EnvironmentError, errnoCode } from '../errors.js';
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
  resolve: (result: { seq: number; value: unknown }) => void;
  reject: (error: unknown) => void;
}

export const GENESIS = '0'.repeat(64);
const lineHash = (line: string) => createHash('sha256').update(line, 'utf8').digest('hex');

export function custodyLogPath(dataDir: string): string {
  return insideRoot(dataDir, 'custody.log');
}

export class CustodyLog {
  private lastSeq = 0;
  private lastHash = GENESIS;
  private pending: Pending[] = [];
  private writing: Promise<void> | undefined;

  constructor(private readonly path: string) {}

  /**
   * Read only the tail of the file: startup cost does not grow with the log. A crash in the
   * middle of an append can leave a torn last line (no newline): it was never acknowledged
   * (acks follow the fsync), so it is moved aside to custody.log.torn-<time> and cut off,
   * and the chain continues from the last whole entry.
   */
  async open(): Promise<void> {
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
          await writeFile(`${this.path}.torn-${Date.now()}`, torn);
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

  private async drain(): Promise<void> {
    while (this.pending.length) {
      const batch = this.pending.splice(0);
      const lines: string[] = [];
      const results: Array<{ seq: number; value: unknown }> = [];
      let seq = this.lastSeq;
      let prev = this.lastHash;
      const accepted: Pending[] = [];
      for (const item of batch) {
        try {
          const built = item.build ? item.build(seq + 1) : undefined;
          const entry: CustodyEntry = { seq: seq + 1, time: new Date().toISOString(), ...item.fields, ...(built?.extra ?? {}), prev };
          const line = JSON.stringify(entry);
          seq++;
          prev = lineHash(line);
          lines.push(line);
          results.push({ seq, value: built?.value });
          accepted.push(item);
        } catch (error) {
          item.reject(error);
        }
      }
      if (!lines.length) continue;
      try {
        const handle = await open(this.path, 'a', 0o644);
        try {
          await handle.write(lines.join('\n') + '\n');
          await handle.sync();
        } finally {
          await handle.close();
        }
        this.lastSeq = seq;
        this.lastHash = prev;
        accepted.forEach((item, i) => item.resolve(results[i]!));
      } catch (error) {
        accepted.forEach((item) => item.reject(error));
      }
    }
    this.writing = undefined;
  }

  async close(): Promise<void> {
    while (this.writing) await this.writing;
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
