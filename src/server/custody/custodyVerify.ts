/**
 * `bodycam server verify-log`: the custody log checked against everything that anchors it.
 * One streaming pass over the log checks the chain (seq 1, 2, 3… and each `prev`), every signed
 * checkpoint (signature, and the hash and byte offset of the line at its seq), and every receipt:
 * those of the stored recordings and those a dock holds (`--receipts`). A receipt matches when its
 * signature verifies with the server's key and the log has, at its custodySeq, a `receipt-issued`
 * entry with that receiptSignature, recording, dock and sha256, whose `prev` (the hash of line
 * seq-1) equals the receipt's custodyPrevHash. Memory grows with the number of receipts checked,
 * not with the log.
 */
import Database from 'better-sqlite3';
import { createReadStream } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { createInterface } from 'node:readline';
import { UsageError, errnoCode } from '../../errors.js';
import { verifyObject, keyIdOf } from '../../protocol/signing.js';
import type { Receipt } from '../../protocol/types.js';
import { anchorPaths, checkpointProblem, lineHash, type CustodyCheckpoint } from './custodyAnchor.js';
import { GENESIS, custodyLogPath, type CustodyEntry } from './custodyLog.js';
import { FsStore } from '../store/fsStore.js';
import type { RecordingStore } from '../state.js';

export interface CustodyProblem {
  reason: string;
  line?: number;
  seq?: number;
  /** The first break of the hash chain itself. */
  chain?: boolean;
}

export interface CustodyReport {
  ok: boolean;
  entries: number;
  checkpoints: number;
  lastCheckpointSeq?: number;
  storedReceipts: number;
  /** Dock receipts read (`--receipts`), and of those the ones that matched the log. */
  dockReceipts: number;
  dockReceiptsMatched: number;
  /** Broken chain first (if any), then the others, in the order found. */
  problems: CustodyProblem[];
  /** Not failures: e.g. a receipt entry whose recording was not yet updated (the next complete answers it). */
  notes: string[];
}

interface ReceiptToCheck {
  receipt: Receipt;
  source: string;
}

/** Where a receipt must be found in the log, checked while streaming. */
interface Expectation {
  atSeq: Map<number, ReceiptToCheck[]>;
  prevOf: Map<number, ReceiptToCheck[]>;
}

export async function verifyCustody(options: { dataDir: string; receipts?: readonly string[]; store?: RecordingStore }): Promise<CustodyReport> {
  const { dataDir } = options;
  try {
    if (!(await stat(dataDir)).isDirectory()) throw new UsageError(`--data-dir ${dataDir} is not a directory`);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') throw new UsageError(`--data-dir ${dataDir} does not exist`);
    throw error;
  }
  const logPath = custodyLogPath(dataDir);
  const { checkpoints: checkpointsPath, head: headPath } = anchorPaths(logPath);
  const problems: CustodyProblem[] = [];
  const notes: string[] = [];
  const problem = (reason: string, at: { line?: number; seq?: number } = {}) => { problems.push({ reason, ...at }); };
  // Receipts that did not check out, so the report says how many of those read matched.
  const failed = new Set<ReceiptToCheck>();
  const bad = (item: ReceiptToCheck, reason: string, at: { line?: number; seq?: number } = {}) => { failed.add(item); problem(`${item.source}: ${reason}`, at); };

  const publicKeyPem = await readOptional(join(dataDir, 'server-key.pub.pem'));
  const keyId = publicKeyPem ? keyIdOf(publicKeyPem) : undefined;

  // Checkpoints: all of them, checked against the log below.
  const checkpointText = await readOptional(checkpointsPath);
  const checkpoints: CustodyCheckpoint[] = [];
  if (checkpointText !== undefined) {
    const lines = checkpointText.split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    else if (lines.length) notes.push(`${basename(checkpointsPath)} ends in a torn line (a crash while one was written); the server cuts it at startup`);
    lines.forEach((line, i) => {
      if (i === lines.length - 1 && !checkpointText.endsWith('\n')) return;
      let parsed: unknown;
      try { parsed = JSON.parse(line); } catch { problem(`checkpoint line ${i + 1} of ${basename(checkpointsPath)} is not valid JSON`); return; }
      const why = publicKeyPem ? checkpointProblem(parsed, publicKeyPem, keyId!) : 'cannot be checked: server-key.pub.pem is missing';
      if (why) { problem(`checkpoint line ${i + 1} of ${basename(checkpointsPath)}: ${why}`); return; }
      const cp = parsed as CustodyCheckpoint;
      const before = checkpoints[checkpoints.length - 1];
      if (before && cp.seq < before.seq) problem(`checkpoint line ${i + 1} of ${basename(checkpointsPath)} goes back from seq ${before.seq} to ${cp.seq}`);
      checkpoints.push(cp);
    });
  }
  const headText = await readOptional(headPath);
  let head: CustodyCheckpoint | undefined;
  if (headText !== undefined) {
    let parsed: unknown;
    try { parsed = JSON.parse(headText); } catch { /* reported below */ }
    const why = parsed === undefined ? 'not valid JSON' : publicKeyPem ? checkpointProblem(parsed, publicKeyPem, keyId!) : 'cannot be checked: server-key.pub.pem is missing';
    if (why) problem(`${basename(headPath)}: ${why}`);
    else head = parsed as CustodyCheckpoint;
  }
  const lastCp = checkpoints[checkpoints.length - 1];
  if (head && (!lastCp || head.seq > lastCp.seq)) problem(`${basename(headPath)} holds a checkpoint at seq ${head.seq} but ${basename(checkpointsPath)} ${checkpointText === undefined ? 'is missing' : `ends at seq ${lastCp?.seq ?? 0}`} (it was cut short, replaced or deleted)`);

  // Receipts: of the stored recordings, and those the docks hold.
  const store = options.store ?? new FsStore(dataDir);
  const stored = await storedReceipts(store, notes);
  const fromDocks: ReceiptToCheck[] = [];
  for (const source of options.receipts ?? []) {
    const read = await readReceipts(source);
    // A wrong path (the server's dir, a random file) must not pass as "0 dock receipts match": nothing was checked.
    if (read.length === 0) throw new UsageError(`--receipts: no dock receipts in ${source}: give the dock's state folder (--state-dir: its journal.sqlite and receipts-archive/) or a receipt file`, { code: 'E_NO_DOCK_RECEIPTS' });
    fromDocks.push(...read);
  }
  const expect: Expectation = { atSeq: new Map(), prevOf: new Map() };
  for (const item of [...stored, ...fromDocks]) {
    const r = item.receipt;
    if (!publicKeyPem) { bad(item, `cannot check the receipt's signature: server-key.pub.pem is missing`); continue; }
    if (r.serverKeyId !== keyId) { bad(item, `receipt signed by key ${String(r.serverKeyId).slice(0, 16)}…, not by this server's key ${keyId!.slice(0, 16)}…`); continue; }
    if (!verifyObject(r as unknown as Record<string, unknown>, publicKeyPem)) { bad(item, `the receipt's signature does not verify`); continue; }
    if (!Number.isSafeInteger(r.custodySeq) || r.custodySeq < 1) { bad(item, `custodySeq ${String(r.custodySeq)} is not a sequence number`); continue; }
    push(expect.atSeq, r.custodySeq, item);
    if (r.custodyPrevHash !== undefined) {
      if (r.custodySeq === 1) { if (r.custodyPrevHash !== GENESIS) bad(item, `custodyPrevHash of a receipt at seq 1 must be 64 zeros`); }
      else push(expect.prevOf, r.custodySeq - 1, item);
    }
  }

  // The log, once.
  const cpAt = new Map<number, CustodyCheckpoint[]>();
  // The head is checked as well when it is not the last checkpoint itself.
  const anchors = [...checkpoints, ...(head && !(lastCp && head.seq === lastCp.seq && head.signature === lastCp.signature) ? [head] : [])];
  for (const cp of anchors) push(cpAt, cp.seq, cp);
  let entries = 0;
  let logExists = true;
  const receiptEntries = new Map<string, number[]>();
  let chainBroken: CustodyProblem | undefined;
  try {
    await stat(logPath);
  } catch (error) {
    if (errnoCode(error) !== 'ENOENT') throw error;
    logExists = false;
  }
  if (!logExists) {
    const state = checkpoints.length > 0 || head !== undefined || stored.length > 0;
    if (!state && !fromDocks.length) throw new UsageError(`no custody log in ${dataDir} (${basename(logPath)} is missing and there are no checkpoints or receipts): not a server data dir, or its log was deleted with everything else`);
    problem(`${basename(logPath)} is missing, yet ${[checkpoints.length ? `${checkpoints.length} checkpoints` : '', stored.length ? `${stored.length} stored receipts` : '', fromDocks.length ? `${fromDocks.length} dock receipts` : ''].filter(Boolean).join(' and ') || 'a head checkpoint'} refer to it`);
  } else {
    const lines = createInterface({ input: createReadStream(logPath, 'utf8'), crlfDelay: Infinity });
    let prevHash = GENESIS;
    let offset = 0;
    let lineNo = 0;
    let lastAnchoredReceipt = 0;
    for await (const line of lines) {
      lineNo++;
      offset += Buffer.byteLength(line, 'utf8') + 1;
      const hash = lineHash(line);
      let entry: CustodyEntry | undefined;
      try { entry = JSON.parse(line) as CustodyEntry; } catch { /* below */ }
      const seq = entry && typeof entry.seq === 'number' ? entry.seq : undefined;
      if (!chainBroken) {
        const missing = entry && typeof entry === 'object' ? (['time', 'event', 'recordingId', 'dockId', 'sha256'] as const).find((f) => typeof entry![f] !== 'string') : undefined;
        const why = !entry || typeof entry !== 'object' ? 'not valid JSON'
          : seq !== lineNo ? `seq is ${String(entry.seq)}, expected ${lineNo}`
          : entry.prev !== prevHash ? 'prev does not match the SHA-256 of the previous entry (this entry or the one before it was altered, removed or reordered)'
          : missing ? `missing ${missing}` : undefined;
        if (why) chainBroken = { line: lineNo, ...(seq !== undefined ? { seq } : {}), reason: why, chain: true };
      }
      if (!chainBroken) entries = lineNo;
      for (const cp of cpAt.get(lineNo) ?? []) {
        if (cp.hash !== hash) problem(`the checkpoint of ${cp.time} at seq ${cp.seq} does not match entry ${lineNo} (the entry, or one before it, was altered and re-chained, or the log was replaced)`, { line: lineNo, seq: lineNo });
        else if (cp.offset !== offset) problem(`the checkpoint of ${cp.time} puts entry ${cp.seq} at byte ${cp.offset}, the log has it at ${offset}`, { line: lineNo, seq: lineNo });
      }
      for (const item of expect.prevOf.get(lineNo) ?? []) {
        if (item.receipt.custodyPrevHash !== hash) bad(item, `custodyPrevHash of the receipt at seq ${item.receipt.custodySeq} does not match entry ${lineNo} (the log before it was altered or replaced)`, { line: lineNo, seq: lineNo });
      }
      for (const item of expect.atSeq.get(lineNo) ?? []) {
        const r = item.receipt;
        const e = entry as (CustodyEntry & { receiptSignature?: unknown }) | undefined;
        const why = !e ? 'is not valid JSON'
          : e.event !== 'receipt-issued' ? `is a ${String(e.event)} entry, not receipt-issued`
          : e.receiptSignature !== r.signature ? 'carries another receiptSignature'
          : e.recordingId !== r.recordingId || e.dockId !== r.dockId ? `is about ${String(e.dockId)}/${String(e.recordingId)}`
          : e.sha256 !== r.sha256 ? 'names another sha256'
          : r.custodyPrevHash !== undefined && e.prev !== r.custodyPrevHash ? 'extends another chain head than the receipt says'
          : undefined;
        if (why) bad(item, `entry ${lineNo}, where the receipt for ${r.dockId}/${r.recordingId} puts it, ${why}`, { line: lineNo, seq: lineNo });
      }
      if (entry && entry.event === 'receipt-issued' && !(entry as { supersedesSeq?: unknown }).supersedesSeq) push(receiptEntries, `${entry.dockId}/${entry.recordingId}`, lineNo);
      if (entry && entry.event === 'receipt-issued' && typeof (entry as { serverKeyId?: unknown }).serverKeyId === 'string') lastAnchoredReceipt = lineNo;
      prevHash = hash;
    }
    const total = lineNo;
    // A server that writes receipt entries with serverKeyId checkpoints every receipt before answering
    // it: such entries with no checkpoint at all mean the anchors were deleted or emptied.
    if (lastAnchoredReceipt > 0 && anchors.length === 0) problem(`entry ${lastAnchoredReceipt} is a receipt of a server that checkpoints every receipt, but there is no checkpoint at all (${basename(checkpointsPath)} and ${basename(headPath)} were deleted or emptied): the log may have been cut short`, { seq: lastAnchoredReceipt });
    for (const cp of anchors) {
      if (cp.seq > total) problem(`the log has ${total} entries but the checkpoint of ${cp.time} says it had ${cp.seq} (it was cut short or replaced by an older copy)`);
    }
    for (const item of [...expect.atSeq.values()].flat()) {
      if (item.receipt.custodySeq > total) bad(item, `the receipt for ${item.receipt.dockId}/${item.receipt.recordingId} carries custodySeq ${item.receipt.custodySeq} but the log has ${total} entries (it was cut short or replaced)`);
    }
    for (const [key, seqs] of receiptEntries) {
      if (seqs.length > 1) problem(`recording ${key} has ${seqs.length} receipt-issued entries (seq ${seqs.join(', ')}): one recording, one receipt`, { seq: seqs[1]! });
    }
    const storedKeys = new Set(stored.map((s) => `${s.receipt.dockId}/${s.receipt.recordingId}`));
    const pendingUpdate = [...receiptEntries.keys()].filter((k) => !storedKeys.has(k));
    if (pendingUpdate.length) notes.push(`${pendingUpdate.length} receipt-issued entries whose recording holds no receipt yet (a failure came between the two; the next complete answers that same receipt), e.g. ${pendingUpdate.slice(0, 3).join(', ')}`);
  }
  if (chainBroken) problems.unshift(chainBroken);
  return {
    ok: problems.length === 0, entries, checkpoints: checkpoints.length, ...(lastCp ? { lastCheckpointSeq: lastCp.seq } : {}),
    storedReceipts: stored.length, dockReceipts: fromDocks.length,
    dockReceiptsMatched: logExists ? fromDocks.filter((item) => !failed.has(item)).length : 0, problems, notes,
  };
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value); else map.set(key, [value]);
}

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return undefined;
    throw error;
  }
}

async function storedReceipts(store: RecordingStore, notes: string[]): Promise<ReceiptToCheck[]> {
  let keys: Array<{ dockId: string; recordingId: string }>;
  try {
    keys = await store.listRecordings();
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return [];
    throw error;
  }
  const out: ReceiptToCheck[] = [];
  for (const { dockId, recordingId: id } of keys) {
    const record = await store.getRecording(dockId, id);
    if (!record?.receipt) continue;
    if (record.receipt.recordingId !== id || record.receipt.sha256 !== record.manifest.file.sha256) {
      notes.push(`recording ${id}: its receipt names ${record.receipt.recordingId} / ${record.receipt.sha256}`);
    }
    out.push({ receipt: record.receipt, source: `stored recording ${record.manifest.dock.id}/${id}` });
  }
  return out;
}

/** Largest receipts file read (receipts-archive/ batches are far smaller). */
const MAX_RECEIPTS_FILE_BYTES = 256 * 1024 * 1024;

/** Receipts from a file (a receipt, an array of them, JSON lines, or a dock's journal.sqlite) or a folder of such files (a dock's state folder: with its receipts archive). */
async function readReceipts(source: string): Promise<ReceiptToCheck[]> {
  let info;
  try {
    info = await stat(source);
  } catch (error) {
    throw new UsageError(`--receipts: cannot read ${source} (${errnoCode(error) ?? String(error)})`, { cause: error });
  }
  if (info.isDirectory()) {
    const names = (await readdir(source)).sort();
    // A dock's state folder: its journal, and the receipts its retention rule archived before
    // pruning their rows (src/dock/retention.ts, RECEIPTS_ARCHIVE).
    if (names.includes('journal.sqlite')) {
      const out = readJournal(join(source, 'journal.sqlite'));
      if (names.includes('receipts-archive')) out.push(...await readReceipts(join(source, 'receipts-archive')));
      return out;
    }
    const out: ReceiptToCheck[] = [];
    for (const name of names.filter((n) => /\.(json|jsonl|sqlite)$/.test(n))) out.push(...await readReceipts(join(source, name)));
    return out;
  }
  // A FIFO or a device (/dev/zero) is read forever; a huge file is not a dock's receipts (archives come in batches).
  if (!info.isFile()) throw new UsageError(`--receipts: ${source} is neither a regular file nor a folder`);
  if (info.size > MAX_RECEIPTS_FILE_BYTES) throw new UsageError(`--receipts: ${source} is ${info.size} bytes, more than the ${MAX_RECEIPTS_FILE_BYTES} a receipts file may hold`);
  const bytes = await readFile(source);
  if (bytes.subarray(0, 16).toString('latin1') === 'SQLite format 3\u0000') return readJournal(source);
  const text = bytes.toString('utf8');
  let values: unknown[];
  try {
    const parsed = JSON.parse(text) as unknown;
    values = Array.isArray(parsed) ? parsed : [parsed];
  } catch {
    try {
      values = text.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as unknown);
    } catch (error) {
      throw new UsageError(`--receipts: ${source} is neither JSON, JSON lines nor a dock journal`, { cause: error });
    }
  }
  const receipts = values.map((v) => (isObject(v) && isObject(v.receipt) ? v.receipt : v)).filter((v) => isObject(v) && v.type === 'receipt');
  return receipts.map((receipt, i) => ({ receipt: receipt as unknown as Receipt, source: `${source}${receipts.length > 1 ? ` #${i + 1}` : ''}` }));
}

function readJournal(path: string): ReceiptToCheck[] {
  let db: Database.Database | undefined;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
    const rows = db.prepare('SELECT receipt_json FROM recordings WHERE receipt_json IS NOT NULL').all() as Array<{ receipt_json: string }>;
    return rows.map((row, i) => ({ receipt: JSON.parse(row.receipt_json) as Receipt, source: `${path} receipt ${i + 1}` }));
  } catch (error) {
    throw new UsageError(`--receipts: cannot read the receipts of dock journal ${path} (${error instanceof Error ? error.message : String(error)})`, { cause: error });
  } finally {
    db?.close();
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
