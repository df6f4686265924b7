/**
 * Anchors of the custody chain. The hash chain alone shows an edit in the middle, but not a log
 * cut short, replaced by an older copy, or re-chained from an edited line on. So the server signs
 * checkpoints `{seq, hash, offset, time, serverKeyId, signature}`: `hash` is the SHA-256 of line
 * `seq`, `offset` the byte offset just past that line's newline. They are appended (fsynced) to
 * custody-checkpoints.jsonl, and the latest is also kept in custody-head.json (written by rename),
 * two files the log's truncation or replacement does not touch. Every receipt also carries
 * `custodySeq` and `custodyPrevHash` (the hash of line seq-1), so each dock holds signed evidence
 * of the log's length and content at that point (verify-log --receipts checks them).
 */
import { createHash, type KeyObject } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, readFile, stat } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { dirname } from 'node:path';
import { EnvironmentError, errnoCode } from '../../errors.js';
import { signObject, verifyObject } from '../../protocol/signing.js';
import { insideRoot } from '../paths.js';
import { replaceFile } from '../privateFiles.js';
import { readLastLineBefore } from '../../util/lastLine.js';

export const CHECKPOINTS_FILE = 'custody-checkpoints.jsonl';
export const HEAD_FILE = 'custody-head.json';

export interface CustodyCheckpoint {
  type: 'custody-checkpoint';
  /** seq of the last entry covered (the log has at least this many entries). */
  seq: number;
  /** SHA-256 (hex) of line `seq` without its newline. */
  hash: string;
  /** Byte offset in custody.log just past line `seq`'s newline. */
  offset: number;
  time: string;
  serverKeyId: string;
  signature: string;
}

export interface CheckpointSigner {
  privateKey: KeyObject;
  publicKeyPem: string;
  keyId: string;
}

export const lineHash = (line: string | Buffer): string => createHash('sha256').update(line).digest('hex');

export function signCheckpoint(fields: { seq: number; hash: string; offset: number }, signer: CheckpointSigner): CustodyCheckpoint {
  return signObject({ type: 'custody-checkpoint' as const, seq: fields.seq, hash: fields.hash, offset: fields.offset, time: new Date().toISOString(), serverKeyId: signer.keyId }, signer.privateKey) as CustodyCheckpoint;
}

/** Why a checkpoint cannot be trusted, or undefined when it is well formed and signed by this key. */
export function checkpointProblem(value: unknown, publicKeyPem: string, keyId: string): string | undefined {
  if (typeof value !== 'object' || value === null) return 'not a JSON object';
  const cp = value as Partial<CustodyCheckpoint>;
  if (cp.type !== 'custody-checkpoint') return 'not a custody checkpoint';
  if (!Number.isSafeInteger(cp.seq) || cp.seq! < 1) return 'seq is not a positive integer';
  if (!Number.isSafeInteger(cp.offset) || cp.offset! < 1) return 'offset is not a positive integer';
  if (typeof cp.hash !== 'string' || !/^[0-9a-f]{64}$/.test(cp.hash)) return 'hash is not hex SHA-256';
  if (cp.serverKeyId !== keyId) return `signed by key ${String(cp.serverKeyId).slice(0, 16)}…, not by this server's key ${keyId.slice(0, 16)}…`;
  if (!verifyObject(cp as Record<string, unknown>, publicKeyPem)) return 'signature does not verify';
  return undefined;
}

/**
 * The last whole line of a file and the file's size up to its end. A torn last line (no newline:
 * a crash mid-append, never acknowledged) is reported in `torn` (its byte count), not returned.
 */
export async function readLastLine(path: string): Promise<{ line: string | undefined; end: number; torn: number } | undefined> {
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return undefined;
    throw error;
  }
  const handle = await open(path, 'r');
  try {
    const tail = await readLastLineBefore(handle, size);
    // Cut short since the stat: read as the file it is now, not as it was.
    if (tail === undefined) return readLastLine(path);
    return { line: tail.line, end: size - tail.torn, torn: tail.torn };
  } finally {
    await handle.close();
  }
}

/** The line that ends (newline included) at byte `end` of the file, or undefined if no line ends there. */
export async function readLineEndingAt(path: string, end: number): Promise<string | undefined> {
  const handle = await open(path, 'r');
  try {
    const tail = await readLastLineBefore(handle, end);
    return tail !== undefined && tail.torn === 0 ? tail.line : undefined;
  } finally {
    await handle.close();
  }
}

/** Where the anchor files of a log live (beside it). */
export function anchorPaths(logPath: string): { checkpoints: string; head: string } {
  const dir = dirname(logPath);
  return { checkpoints: insideRoot(dir, CHECKPOINTS_FILE), head: insideRoot(dir, HEAD_FILE) };
}

export interface AnchorState {
  /** Last whole line of custody-checkpoints.jsonl, parsed (undefined: no file or no checkpoint in it). */
  lastCheckpoint?: CustodyCheckpoint;
  checkpointsFileExists: boolean;
  /** Bytes of whole lines in custody-checkpoints.jsonl. */
  checkpointsSize: number;
  tornCheckpointBytes: number;
  head?: CustodyCheckpoint;
}

const refuse = (message: string) => new EnvironmentError('E_CUSTODY_ANCHOR', `${message}; the server will not start (run \`bodycam server verify-log\` and have the data dir examined)`);

/** Read and check both anchors; throws a one-line refusal when either is forged or they disagree. */
export async function readAnchors(logPath: string, signer: CheckpointSigner): Promise<AnchorState> {
  const paths = anchorPaths(logPath);
  const state: AnchorState = { checkpointsFileExists: false, checkpointsSize: 0, tornCheckpointBytes: 0 };
  const tail = await readLastLine(paths.checkpoints);
  if (tail) {
    state.checkpointsFileExists = true;
    state.checkpointsSize = tail.end;
    state.tornCheckpointBytes = tail.torn;
    if (tail.line !== undefined) {
      let parsed: unknown;
      try { parsed = JSON.parse(tail.line); } catch { throw refuse(`the last line of ${paths.checkpoints} is not valid JSON`); }
      const problem = checkpointProblem(parsed, signer.publicKeyPem, signer.keyId);
      if (problem) throw refuse(`the last checkpoint in ${paths.checkpoints} cannot be trusted: ${problem}`);
      state.lastCheckpoint = parsed as CustodyCheckpoint;
    }
  }
  let headText: string | undefined;
  try {
    headText = await readFile(paths.head, 'utf8');
  } catch (error) {
    if (errnoCode(error) !== 'ENOENT') throw error;
  }
  if (headText !== undefined) {
    let parsed: unknown;
    try { parsed = JSON.parse(headText); } catch { throw refuse(`${paths.head} is not valid JSON`); }
    const problem = checkpointProblem(parsed, signer.publicKeyPem, signer.keyId);
    if (problem) throw refuse(`the checkpoint in ${paths.head} cannot be trusted: ${problem}`);
    state.head = parsed as CustodyCheckpoint;
    const last = state.lastCheckpoint;
    if (!last) throw refuse(`${paths.head} holds a checkpoint at seq ${state.head.seq} but ${paths.checkpoints} ${state.checkpointsFileExists ? 'has no checkpoint' : 'is missing'}`);
    if (state.head.seq > last.seq) throw refuse(`${paths.head} holds a checkpoint at seq ${state.head.seq} but the last one in ${paths.checkpoints} is at seq ${last.seq} (the checkpoints file was cut short or replaced)`);
    if (state.head.seq === last.seq && state.head.hash !== last.hash) throw refuse(`${paths.head} and ${paths.checkpoints} disagree on the hash of entry ${last.seq}`);
  }
  return state;
}

/** The newest trustworthy anchor of the two. */
export function newestAnchor(state: AnchorState): CustodyCheckpoint | undefined {
  const { lastCheckpoint, head } = state;
  if (lastCheckpoint && head) return head.seq > lastCheckpoint.seq ? head : lastCheckpoint;
  return lastCheckpoint ?? head;
}

/**
 * Refuse a log that does not reach or does not match its newest checkpoint, or that is shorter
 * than a receipt the store holds (its next entry would reuse that receipt's sequence number).
 */
export async function checkLogAgainstAnchors(logPath: string, log: { exists: boolean; lastSeq: number; size: number }, anchor: CustodyCheckpoint | undefined, highestReceiptSeq: number): Promise<void> {
  if (anchor) {
    const when = `its last checkpoint (${anchor.time})`;
    if (!log.exists) throw refuse(`${logPath} is missing but ${when} says it had ${anchor.seq} entries`);
    if (log.lastSeq < anchor.seq || log.size < anchor.offset) throw refuse(`${logPath} has ${log.lastSeq} entries but ${when} says it had ${anchor.seq} (it was cut short or replaced by an older copy)`);
    const line = await readLineEndingAt(logPath, anchor.offset);
    if (line === undefined) throw refuse(`${logPath} has no entry ending at byte ${anchor.offset}, where ${when} puts entry ${anchor.seq} (it was altered)`);
    if (lineHash(line) !== anchor.hash) throw refuse(`entry ${anchor.seq} of ${logPath} does not match the hash in ${when} (it or an entry before it was altered and re-chained, or the log was replaced)`);
  }
  if (!anchor && log.exists && log.lastSeq > 0) {
    const seq = await lastAnchoredReceiptSeq(logPath);
    if (seq > 0) throw refuse(`entry ${seq} of ${logPath} is a receipt of a server that checkpoints every receipt, but no checkpoint is left (custody-checkpoints.jsonl and custody-head.json were deleted or emptied): the log may have been cut short`);
  }
  if (highestReceiptSeq > log.lastSeq) {
    throw refuse(`a stored receipt carries custodySeq ${highestReceiptSeq} but ${logPath} ${log.exists ? `has only ${log.lastSeq} entries` : 'is missing'} (it was cut short, deleted or replaced by an older copy); its next entry would reuse that sequence number`);
  }
}

/** The seq of the last receipt entry written by a checkpointing server (it carries serverKeyId), 0 if none. Reads the whole log: only on the rare start with no checkpoint at all. */
async function lastAnchoredReceiptSeq(logPath: string): Promise<number> {
  let last = 0;
  for await (const line of createInterface({ input: createReadStream(logPath, 'utf8'), crlfDelay: Infinity })) {
    if (!line.includes('"receipt-issued"')) continue;
    try {
      const entry = JSON.parse(line) as { seq?: unknown; event?: unknown; serverKeyId?: unknown };
      if (entry.event === 'receipt-issued' && typeof entry.serverKeyId === 'string' && typeof entry.seq === 'number') last = entry.seq;
    } catch { /* a torn or foreign line: the chain check reports it */ }
  }
  return last;
}

/** Append one checkpoint line (fsynced; a failed append is cut back). Resolves with the file's new size. */
export async function appendCheckpoint(logPath: string, checkpoint: CustodyCheckpoint, checkpointsSize: number): Promise<number> {
  const text = JSON.stringify(checkpoint) + '\n';
  const handle = await open(anchorPaths(logPath).checkpoints, 'a', 0o600);
  try {
    await handle.appendFile(text);
    await handle.sync();
  } catch (error) {
    await handle.truncate(checkpointsSize).then(() => handle.sync()).catch(() => {});
    throw error;
  } finally {
    await handle.close();
  }
  return checkpointsSize + Buffer.byteLength(text, 'utf8');
}

/** Replace custody-head.json with this checkpoint (temp, fsync, rename, fsync the folder). */
export async function writeHead(logPath: string, checkpoint: CustodyCheckpoint): Promise<void> {
  await replaceFile(anchorPaths(logPath).head, JSON.stringify(checkpoint) + '\n');
}

/** Cut a torn last line (crash mid-append) off the checkpoints file. */
export async function cutTornCheckpoint(logPath: string, size: number): Promise<void> {
  const handle = await open(anchorPaths(logPath).checkpoints, 'r+');
  try {
    await handle.truncate(size);
    await handle.sync();
  } finally {
    await handle.close();
  }
}
