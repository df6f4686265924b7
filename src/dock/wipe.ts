/**
 * The one irreversible act: deleting a camera's file and its sidecar. The wipe
 * happens only when every one of these holds (docs/dock.md, "The wipe"):
 *
 * - the server's key was confirmed out of band (`serverKey`, or `bodycam dock trust-server`);
 *   a key learned from GET /v1/keys on first contact never authorises a wipe;
 * - the stored receipt verifies with that key and is for this recording, dock, bytes and plan;
 * - the file, read through the descriptor that is about to be unlinked, hashes to the receipt's
 *   SHA-256 and size, and its fstat (dev, ino, size, mtime, ctime) did not move while it was read;
 * - the path still names that very inode (lstat: same dev and ino, a regular file, not a symlink)
 *   and resolves inside the camera folder;
 * - the sidecar, if there is one, read through its own descriptor, hashes to the manifest's
 *   device.sidecarSha256 (the server holds those bytes) and did not move either;
 * - the server proved it holds the bytes: a fresh 32-byte nonce and random segments (first and
 *   last included), answered with SHA-256(nonce ‖ stored segment bytes) that the dock computed
 *   itself from the same descriptor, compared in constant time (and the same over the sidecar);
 * - every attachment still on the card, read through its own descriptor, hashes to its receipted
 *   SHA-256, did not move, and the server proved it holds its bytes too. An attachment another
 *   recording beside it still claims is left for that one's wipe.
 *
 * Anything else keeps both file and sidecar, with the reason on the bay. The decision functions
 * below are small and pure so that tests (and mutation testing) can pin every single check.
 */
import { createHash, randomBytes, randomInt, timingSafeEqual } from 'node:crypto';
import { constants, type BigIntStats } from 'node:fs';
import { link, lstat, open, readdir, readFile, realpath, rename, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import { basename, dirname, extname, join, relative, sep } from 'node:path';
import { IntegrityError, isFileGone } from '../errors.js';
import { keyIdOf, verifyObject } from '../protocol/signing.js';
import { POSSESSION_MAX_SEGMENTS, PROTOCOL_VERSION, SIDECAR_MAX_BYTES, type PossessionChallenge, type Receipt, type RecordingManifest, type SegmentPlanEntry } from '../protocol/types.js';
import { PausedError, ProblemError } from './errors.js';
import { closeWhenUnread, hashThroughDescriptorOffThread } from './hasher.js';
import type { Journal, RecordingRow } from './journal.js';
import { cardPathRole } from '../protocol/cardLayouts.js';
import { companionKeysOf, isMediaExtension, recordingKeysOf } from '../protocol/fileKinds.js';
import { isInside, type CandidateFile } from '../protocol/cameraStorage/index.js';

// ---- receipts -------------------------------------------------------------------

/** What a receipt must say to be ours. */
export interface ReceiptExpectation {
  recordingId: string;
  dockId: string;
  sha256: string;
  size: number;
  merkleRoot: string;
  segmentCount: number;
  /** The manifest's attachments as a receipt names them (name, size, SHA-256); absent or empty: none. */
  attachments?: Array<{ name: string; size: number; sha256: string }>;
}

export function receiptExpectationOf(row: Pick<RecordingRow, 'recordingId' | 'sha256' | 'size'>, manifest: Pick<RecordingManifest, 'merkleRoot' | 'segments' | 'attachments'>, dockId: string): ReceiptExpectation {
  return {
    recordingId: row.recordingId ?? '', dockId, sha256: row.sha256 ?? '', size: row.size,
    merkleRoot: manifest.merkleRoot, segmentCount: manifest.segments.length,
    ...(manifest.attachments?.length ? { attachments: manifest.attachments.map((a) => ({ name: a.name, size: a.size, sha256: a.sha256 })) } : {}),
  };
}

const attachmentList = (list: unknown): string => (Array.isArray(list) ? JSON.stringify(list.map((a: { name?: unknown; size?: unknown; sha256?: unknown }) => [a?.name, a?.size, a?.sha256])) : String(list));

/** Every reason this receipt is not the pinned server's receipt for our recording (empty = good). */
export function receiptProblems(receipt: unknown, expected: ReceiptExpectation, serverKeyPem: string): string[] {
  if (receipt === null || typeof receipt !== 'object' || Array.isArray(receipt)) return ['receipt is not a JSON object'];
  const r = receipt as Partial<Receipt>;
  const problems: string[] = [];
  if (!verifyObject(r as Record<string, unknown>, serverKeyPem)) problems.push('signature does not verify with the pinned server key');
  let keyId: string | undefined;
  try { keyId = keyIdOf(serverKeyPem); } catch { keyId = undefined; }
  if (r.serverKeyId !== keyId) problems.push(`receipt names server key ${String(r.serverKeyId)}, the pinned key is ${String(keyId)}`);
  if (r.protocol !== PROTOCOL_VERSION) problems.push(`receipt protocol ${String(r.protocol)} is not ${PROTOCOL_VERSION}`);
  if (r.type !== 'receipt') problems.push(`document type ${String(r.type)} is not a receipt`);
  if (r.recordingId !== expected.recordingId) problems.push(`receipt is for ${String(r.recordingId)}, not ${expected.recordingId}`);
  if (r.dockId !== expected.dockId) problems.push(`receipt is for dock ${String(r.dockId)}, not ${expected.dockId}`);
  if (r.sha256 !== expected.sha256) problems.push(`receipt sha256 ${String(r.sha256)} is not ours (${expected.sha256})`);
  if (r.size !== expected.size) problems.push(`receipt size ${String(r.size)} is not ours (${expected.size})`);
  if (r.merkleRoot !== expected.merkleRoot) problems.push(`receipt merkleRoot ${String(r.merkleRoot)} is not ours (${expected.merkleRoot})`);
  if (r.segmentCount !== expected.segmentCount) problems.push(`receipt segmentCount ${String(r.segmentCount)} is not ours (${expected.segmentCount})`);
  // A receipt that does not name our attachments does not cover them: nothing of theirs may be deleted on it.
  if (attachmentList(r.attachments ?? []) !== attachmentList(expected.attachments ?? [])) problems.push('receipt attachments are not ours');
  return problems;
}

/** Throws E_RECEIPT_INVALID unless the receipt is good. */
export function verifyReceipt(receipt: unknown, expected: ReceiptExpectation, serverKeyPem: string): void {
  const problems = receiptProblems(receipt, expected, serverKeyPem);
  if (problems.length) throw new IntegrityError('E_RECEIPT_INVALID', `receipt rejected: ${problems.join('; ')}`);
}

// ---- proof of possession ------------------------------------------------------

/**
 * Which segments to challenge: all of them when there are at most 8, else the first, the last
 * and 6 others drawn at random. `draw(n)` returns an integer in [0, n).
 */
export function chooseChallengeSegments(indexes: readonly number[], draw: (bound: number) => number = (bound) => randomInt(bound)): number[] {
  if (indexes.length <= POSSESSION_MAX_SEGMENTS) return [...indexes];
  const middle = indexes.slice(1, -1);
  const picked = [indexes[0]!, indexes[indexes.length - 1]!];
  for (let i = 0; i < POSSESSION_MAX_SEGMENTS - 2; i++) {
    const j = i + draw(middle.length - i);
    [middle[i], middle[j]] = [middle[j]!, middle[i]!];
    picked.push(middle[i]!);
  }
  return picked.sort((a, b) => a - b);
}

const HEX64 = /^[0-9a-f]{64}$/;

/** Equal hex SHA-256 values, compared in constant time (both must be 64 lowercase hex). */
export function sameHash(a: unknown, b: unknown): boolean {
  if (typeof a !== 'string' || typeof b !== 'string' || !HEX64.test(a) || !HEX64.test(b)) return false;
  return timingSafeEqual(Buffer.from(a, 'hex'), Buffer.from(b, 'hex'));
}

export interface ExpectedPossession {
  recordingId: string;
  nonce: string;
  /** Challenged segment index → SHA-256(nonce ‖ segment bytes) computed by the dock. */
  segments: ReadonlyMap<number, string>;
  /** SHA-256(nonce ‖ sidecar bytes), when the sidecar was challenged too. */
  sidecar?: string;
  /** Attachment index → SHA-256(nonce ‖ attachment bytes), for the attachments still on the card. */
  attachments?: ReadonlyMap<number, string>;
}

/** Every reason the server's answer does not prove it holds the bytes (empty = proved). */
export function possessionProblems(answer: unknown, expected: ExpectedPossession): string[] {
  if (answer === null || typeof answer !== 'object' || Array.isArray(answer)) return ['answer is not a JSON object'];
  const a = answer as { recordingId?: unknown; nonce?: unknown; answers?: unknown; sidecarSha256?: unknown };
  const problems: string[] = [];
  if (a.recordingId !== expected.recordingId) problems.push(`answer is for ${String(a.recordingId)}, not ${expected.recordingId}`);
  if (a.nonce !== expected.nonce) problems.push('answer is for another nonce');
  if (!Array.isArray(a.answers)) return [...problems, 'answer has no answers list'];
  if (a.answers.length !== expected.segments.size) problems.push(`${a.answers.length} answers for ${expected.segments.size} challenged segments`);
  const seen = new Set<number>();
  for (const item of a.answers as Array<{ index?: unknown; sha256?: unknown }>) {
    const index = item?.index;
    if (typeof index !== 'number' || !expected.segments.has(index)) { problems.push(`answer for segment ${String(index)}, which was not challenged`); continue; }
    if (seen.has(index)) { problems.push(`segment ${index} answered twice`); continue; }
    seen.add(index);
    if (!sameHash(item.sha256, expected.segments.get(index))) problems.push(`segment ${index}: wrong answer`);
  }
  for (const index of expected.segments.keys()) if (!seen.has(index)) problems.push(`segment ${index} not answered`);
  if (expected.sidecar !== undefined && !sameHash(a.sidecarSha256, expected.sidecar)) problems.push('sidecar: wrong answer');
  if (expected.attachments?.size) {
    const given = Array.isArray((answer as { attachments?: unknown }).attachments) ? (answer as { attachments: Array<{ index?: unknown; sha256?: unknown }> }).attachments : [];
    for (const [index, want] of expected.attachments) {
      const found = given.filter((g) => g?.index === index);
      if (found.length !== 1 || !sameHash(found[0]!.sha256, want)) problems.push(`attachment ${index}: ${found.length ? 'wrong answer' : 'not answered'}`);
    }
  }
  return problems;
}

// ---- the file under the descriptor --------------------------------------------

/** What fstat/lstat say about an inode, at nanosecond precision. */
export interface StatSnapshot {
  dev: bigint;
  ino: bigint;
  size: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
  isFile: boolean;
}

export function snapshotOf(stats: BigIntStats): StatSnapshot {
  return { dev: stats.dev, ino: stats.ino, size: stats.size, mtimeNs: stats.mtimeNs, ctimeNs: stats.ctimeNs, isFile: stats.isFile() };
}

/** Fields of the descriptor's fstat that moved between the first look and now (empty = untouched). */
export function statChanges(before: StatSnapshot, after: StatSnapshot): string[] {
  const changed: string[] = [];
  if (before.dev !== after.dev) changed.push('dev');
  if (before.ino !== after.ino) changed.push('ino');
  if (before.size !== after.size) changed.push('size');
  if (before.mtimeNs !== after.mtimeNs) changed.push('mtime');
  if (before.ctimeNs !== after.ctimeNs) changed.push('ctime');
  return changed;
}

/** Why the path no longer names the inode the descriptor holds (empty = it does). */
export function pathProblems(held: StatSnapshot, atPath: StatSnapshot | null): string[] {
  if (!atPath) return ['the path is gone'];
  const problems: string[] = [];
  if (!atPath.isFile) problems.push('the path is no longer a regular file');
  if (atPath.dev !== held.dev) problems.push('the path is on another device');
  if (atPath.ino !== held.ino) problems.push('the path names another inode');
  return problems;
}

// ---- the decision -------------------------------------------------------------

export type KeepCode =
  | 'untrusted_server_key' | 'receipt_invalid' | 'file_changed' | 'file_replaced' | 'outside_camera'
  | 'sidecar_not_held' | 'sidecar_changed' | 'sidecar_replaced' | 'possession_failed'
  | 'attachment_changed' | 'attachment_replaced' | 'name_too_long';

export interface Keep { code: KeepCode; reason: string }

export interface SidecarFacts {
  /** device.sidecarSha256 of the receipted manifest (undefined: the server holds no sidecar bytes). */
  expectedSha256: string | undefined;
  /** SHA-256 of the sidecar's bytes as read through its descriptor. */
  actualSha256: string;
  before: StatSnapshot;
  after: StatSnapshot;
  atPath: StatSnapshot | null;
}

export interface WipeFacts {
  /** The server key was pinned out of band (never trust on first use). */
  trustedKey: boolean;
  receiptProblems: string[];
  receipt: { sha256: string; size: number };
  /** The file as read through the descriptor about to be unlinked. */
  file: { sha256: string; size: number };
  /** Size and whole-ms mtime the row saw at detection. */
  detected: { size: number; mtimeMs: number };
  fileBefore: StatSnapshot;
  fileAfter: StatSnapshot;
  fileAtPath: StatSnapshot | null;
  insideCamera: boolean;
  /** null: no sidecar on the camera for this file. */
  sidecar: SidecarFacts | null;
  /** The receipted attachments still on the card, each read through its own descriptor (absent: none). */
  attachments?: AttachmentFacts[];
}

export interface AttachmentFacts {
  name: string;
  /** The receipted SHA-256 and size. */
  expected: { sha256: string; size: number };
  /** As read through its descriptor. */
  actual: { sha256: string; size: number };
  before: StatSnapshot;
  after: StatSnapshot;
  atPath: StatSnapshot | null;
}

/** Everything the dock can check on its own; null = nothing stands in the way locally. */
export function decideLocal(f: WipeFacts): Keep | null {
  if (!f.trustedKey) return { code: 'untrusted_server_key', reason: 'the server key was learned on first contact, not confirmed (pass --server-key or run bodycam dock trust-server)' };
  if (f.receiptProblems.length) return { code: 'receipt_invalid', reason: `the receipt does not hold: ${f.receiptProblems.join('; ')}` };
  // Another inode at the path (rename, symlink) says more than the ctime of the unlinked one.
  const atPath = pathProblems(f.fileBefore, f.fileAtPath);
  if (atPath.length) return { code: 'file_replaced', reason: `the file was replaced: ${atPath.join('; ')}` };
  const changed = statChanges(f.fileBefore, f.fileAfter);
  if (changed.length) return { code: 'file_changed', reason: `the file changed while it was checked (${changed.join(', ')})` };
  if (!f.fileBefore.isFile) return { code: 'file_replaced', reason: 'the path is no longer a regular file' };
  if (f.fileBefore.size !== BigInt(f.detected.size) || BigInt(f.detected.mtimeMs) !== f.fileBefore.mtimeNs / 1_000_000n) {
    return { code: 'file_changed', reason: 'the file changed after its receipt (size or mtime)' };
  }
  if (f.file.size !== f.receipt.size || !sameHash(f.file.sha256, f.receipt.sha256)) return { code: 'file_changed', reason: 'the file on the camera no longer matches its receipt' };
  if (!f.insideCamera) return { code: 'outside_camera', reason: 'the path now leads outside the camera folder' };
  if (f.sidecar) {
    const s = f.sidecar;
    if (s.expectedSha256 === undefined) return { code: 'sidecar_not_held', reason: 'the server holds no copy of the sidecar on the camera' };
    if (!sameHash(s.actualSha256, s.expectedSha256)) return { code: 'sidecar_changed', reason: 'the sidecar on the camera differs from the one the server holds (re-signed after the receipt?)' };
    const sidecarPath = pathProblems(s.before, s.atPath);
    if (sidecarPath.length) return { code: 'sidecar_replaced', reason: `the sidecar was replaced: ${sidecarPath.join('; ')}` };
    const sidecarChanged = statChanges(s.before, s.after);
    if (sidecarChanged.length) return { code: 'sidecar_changed', reason: `the sidecar changed while it was checked (${sidecarChanged.join(', ')})` };
  }
  for (const a of f.attachments ?? []) {
    if (a.actual.size !== a.expected.size || !sameHash(a.actual.sha256, a.expected.sha256)) return { code: 'attachment_changed', reason: `attachment ${a.name} on the camera differs from the one the server holds (changed after the receipt)` };
    const atPath = pathProblems(a.before, a.atPath);
    if (atPath.length) return { code: 'attachment_replaced', reason: `attachment ${a.name} was replaced: ${atPath.join('; ')}` };
    const changed = statChanges(a.before, a.after);
    if (changed.length) return { code: 'attachment_changed', reason: `attachment ${a.name} changed while it was checked (${changed.join(', ')})` };
  }
  return null;
}

/** The whole decision: local checks, then the server's proof of possession (problems; undefined = not asked). */
export function decideWipe(f: WipeFacts, possession: string[] | undefined): Keep | null {
  const local = decideLocal(f);
  if (local) return local;
  if (possession === undefined) return { code: 'possession_failed', reason: 'the server was not asked to prove it holds the bytes' };
  if (possession.length) return { code: 'possession_failed', reason: `the server did not prove it holds the bytes: ${possession.join('; ')}` };
  return null;
}

// ---- reading through descriptors ------------------------------------------------

/** Open without following a symlink at the last component; ENOENT/ELOOP come back as undefined with the reason. */
export async function openNoFollow(path: string): Promise<{ handle: FileHandle } | { gone: true } | { symlink: true }> {
  try {
    return { handle: await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK) };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ELOOP' || code === 'EMLINK') return { symlink: true };
    if (isFileGone(error)) return { gone: true };
    throw error;
  }
}

export async function lstatSnapshot(path: string): Promise<StatSnapshot | null> {
  try {
    return snapshotOf(await lstat(path, { bigint: true }));
  } catch (error) {
    if (isFileGone(error)) return null;
    throw error;
  }
}

/** Read a whole small file through its descriptor (at most `limit` bytes; more is an error). */
export async function readAllThrough(handle: FileHandle, limit = SIDECAR_MAX_BYTES): Promise<Buffer> {
  const parts: Buffer[] = [];
  let total = 0;
  const buffer = Buffer.allocUnsafe(64 * 1024);
  for (;;) {
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, total);
    if (bytesRead === 0) break;
    total += bytesRead;
    if (total > limit) throw new IntegrityError('E_SIDECAR_TOO_LARGE', `sidecar exceeds ${limit} bytes`);
    parts.push(Buffer.from(buffer.subarray(0, bytesRead)));
  }
  return Buffer.concat(parts);
}

export function sha256Of(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

// ---- the act --------------------------------------------------------------------

export interface WipeTarget {
  absPath: string;
  cameraRoot: string;
  sidecarPath?: string;
  /** Where each attachment of the manifest was found, relative to cameraRoot (by index; default: beside the file). */
  attachmentPaths?: readonly string[];
}

/** An attachment on the card as the wipe holds it: its descriptor from the first look to the unlink. */
interface HeldAttachment {
  index: number;
  name: string;
  /** Relative to the camera root. */
  rel: string;
  path: string;
  handle: FileHandle;
  before: StatSnapshot;
  hashed: { sha256: string; size: number; answer: string };
}

export interface WipeDeps {
  /** The confirmed server key (configured or confirmed with trust-server), or undefined. */
  trustedServerKeyPem: string | undefined;
  dockId: string;
  possession: (recordingId: string, challenge: PossessionChallenge & { sidecar?: boolean }, signal?: AbortSignal) => Promise<unknown>;
  /** Logged as integrity problems: a server that cannot prove possession is not a network blip. */
  onPossessionFailure?: (problems: string[]) => void;
  signal?: AbortSignal;
}

export type WipeOutcome = { wiped: true; sidecarKept?: string; attachmentsKept?: string[] } | { wiped: false; keep: Keep };

/**
 * Does another recording on the card still claim this companion (its folder holds a recording its
 * name names, or a maker's layout pairs it with a recording that is there)? Then the companion
 * stays for that recording's own wipe (docs/dock.md, "Attachments").
 */
async function claimedByAnother(cameraRoot: string, recordingPath: string, companionRel: string): Promise<boolean> {
  const companionName = basename(companionRel);
  const keys = new Set(companionKeysOf(companionName));
  const self = relative(cameraRoot, recordingPath).split(sep).join('/').toLowerCase();
  const names = async (dir: string): Promise<string[]> => readdir(join(cameraRoot, dir)).catch(() => [] as string[]);
  const companionDir = dirname(companionRel);
  for (const name of await names(companionDir)) {
    if (`${companionDir}/${name}`.toLowerCase() === self || name.includes('.wipe-') || !isMediaExtension(name)) continue;
    if (recordingKeysOf(name).some((k) => keys.has(k))) return true;
  }
  for (const owner of cardPathRole(companionRel)?.owners ?? []) {
    if (owner.toLowerCase() === self) continue;
    const want = basename(owner).toLowerCase();
    if ((await names(dirname(owner))).some((name) => name.toLowerCase() === want)) return true;
  }
  return false;
}

/**
 * Test hook (docs/dock.md): with BODYCAM_WIPE_PAUSE_FILE set, the wipe writes that file (holding the
 * camera path) after its re-hash and waits until it is removed, so a test can change the file
 * at exactly the moment a race would. Unset in production: no effect.
 */
async function testPause(relPath: string): Promise<void> {
  const path = process.env.BODYCAM_WIPE_PAUSE_FILE;
  if (!path) return;
  // Written aside and linked into place: the file appears whole, and only one wipe holds it at a time.
  const aside = `${path}.${process.pid}.${randomBytes(4).toString('hex')}`;
  await writeFile(aside, relPath);
  for (;;) {
    try { await link(aside, path); break; } catch { await new Promise((r) => setTimeout(r, 20)); }
  }
  await unlink(aside).catch(() => {});
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    try { await readFile(path); } catch { return; }
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A `<name>.json` (any case) beside a file that had no sidecar when it was scanned (and is not one of its attachments). */
async function sidecarBeside(absPath: string, attachments: ReadonlySet<string>): Promise<boolean> {
  const want = `${basename(absPath, extname(absPath))}.json`.toLowerCase();
  return (await readdir(dirname(absPath))).some((name) => name.toLowerCase() === want && !attachments.has(name));
}

/** What unlinkChecked puts between a file's base name and its extension while it holds it aside. */
const WIPE_ASIDE_TAG = '.wipe-';
const WIPE_ASIDE_NAME = /^(.+)\.wipe-[0-9a-f]{12}(\.[^.]*)?$/;

/** The name a file held aside by an interrupted wipe had (`FILE0001.wipe-<12 hex>.MP4` → `FILE0001.MP4`), if it is one. */
export function nameBeforeWipe(fileName: string): string | undefined {
  const match = WIPE_ASIDE_NAME.exec(fileName);
  return match ? match[1]! + (match[2] ?? '') : undefined;
}

/**
 * A dock killed between the rename and the unlink of unlinkChecked leaves the checked file under
 * its aside name, which a scan would take for a new recording (hashed, sent and receipted a second
 * time). Put back under its own name the files that are that: an aside name whose original name is
 * free, and a completed row of this camera at that path vouching for the same inode (dev, ino,
 * size). The wipe then starts again from its first check; nothing is deleted here. Returns how
 * many files were put back.
 */
/** The completed rows of this camera at the name a wipe-aside file had, vouching for its inode. */
function rowsVouchingForAside(journal: Journal, serial: string, file: CandidateFile): RecordingRow[] {
  const original = nameBeforeWipe(file.fileName);
  if (!original) return [];
  const folder = file.relPath.slice(0, file.relPath.length - file.fileName.length);
  return journal.listByPath(serial, folder + original).filter((row) => row.state === 'completed' && row.stat !== undefined && row.stat !== null
    && row.stat.dev === file.stat.dev && row.stat.ino === file.stat.ino && row.size === file.size);
}

/**
 * A wipe at work holds its file aside for an instant between its rename and its unlink: that is
 * not an interrupted one. Linking it back would race the unlink (the row ends "wiped" with the file
 * back under its name), and the scan must not take it for a recording either (it would settle, then
 * vanish): the scan passes over it; that wipe deletes it or puts it back itself.
 */
export function isAsideOfRunningWipe(journal: Journal, serial: string, file: CandidateFile, wipeRunning: (key: string) => boolean): boolean {
  return rowsVouchingForAside(journal, serial, file).some((row) => wipeRunning(row.key));
}

export async function restoreInterruptedWipes(journal: Journal, serial: string, files: readonly CandidateFile[], logger?: { warn(message: string, fields?: Record<string, unknown>): void },
  wipeRunning: (key: string) => boolean = () => false): Promise<number> {
  let restored = 0;
  for (const file of files) {
    const original = nameBeforeWipe(file.fileName);
    if (!original) continue;
    const folder = file.relPath.slice(0, file.relPath.length - file.fileName.length);
    const vouching = rowsVouchingForAside(journal, serial, file);
    if (vouching.length === 0 || vouching.some((row) => wipeRunning(row.key))) continue;
    const originalPath = join(dirname(file.absPath), original);
    try {
      await link(file.absPath, originalPath); // never overwrites a file that took the name
      await unlink(file.absPath);
      restored++;
      logger?.warn('a wipe interrupted mid-delete left this file aside: put back under its name, to be checked and wiped again', { path: folder + original, aside: file.relPath });
    } catch { /* the name is taken: the file stays where it is and is ingested as any file */ }
  }
  return restored;
}

/** The name a file is held under for the instant between its wipe's rename and unlink (nameBeforeWipe reads it back). */
function asideName(name: string): string {
  return `${basename(name, extname(name))}${WIPE_ASIDE_TAG}${randomBytes(6).toString('hex')}${extname(name)}`;
}

/** Longest file name in bytes on the file systems cards use (FAT's 255 UTF-16 units are more bytes in UTF-8 than ext4 takes). */
const NAME_MAX_BYTES = 255;

/**
 * A name whose aside name does not fit the file system (a name of about 238 bytes or more): its
 * rename fails, so the wipe would fail for ever after any earlier delete. Checked for every file
 * before the first one is deleted.
 */
function tooLongToSetAside(path: string): boolean {
  return Buffer.byteLength(asideName(basename(path))) > NAME_MAX_BYTES;
}

/**
 * Delete the very inode that was checked, with no window between the last check and the delete:
 * the path is renamed aside (atomic), and the moved file must be that inode (dev + ino) before it
 * is unlinked. A file that took the path in the last instant is moved back under its name (link(2)
 * never overwrites a newer one) and kept; if its name was taken again meanwhile, it stays beside
 * it under a visible media name, so the next scan ingests it. Nothing but the checked inode is deleted.
 */
export async function unlinkChecked(path: string, checked: StatSnapshot): Promise<boolean> {
  const aside = join(dirname(path), asideName(basename(path)));
  await rename(path, aside);
  const moved = await lstatSnapshot(aside);
  if (moved && moved.isFile && moved.dev === checked.dev && moved.ino === checked.ino) {
    await unlink(aside);
    return true;
  }
  try {
    await link(aside, path);
    await unlink(aside);
  } catch { /* the name is taken again: the file stays at `aside`, found and ingested by the next scan */ }
  return false;
}

/**
 * After the recording is gone: delete each proved attachment, the very inode that was checked,
 * unless it moved at the last moment or another recording beside it still claims it.
 */
async function removeAttachments(cameraRoot: string, recordingPath: string, held: readonly HeldAttachment[]): Promise<{ attachmentsKept?: string[] }> {
  const kept: string[] = [];
  for (const a of held) {
    if (await claimedByAnother(cameraRoot, recordingPath, a.rel)) { kept.push(`attachment ${a.name} kept: another recording beside it claims it too`); continue; }
    const moved = [...statChanges(a.before, snapshotOf(await a.handle.stat({ bigint: true }))), ...pathProblems(a.before, await lstatSnapshot(a.path))];
    if (moved.length) { kept.push(`attachment ${a.name} kept: it changed at the last moment (${moved.join('; ')})`); continue; }
    const removed = await unlinkChecked(a.path, a.before).catch((error: unknown) => { if (isFileGone(error)) return true; throw error; });
    if (!removed) kept.push(`attachment ${a.name} kept: another file took its path at the moment of the wipe`);
  }
  return kept.length ? { attachmentsKept: kept } : {};
}

/**
 * Check and delete the same file. Both descriptors stay open from the first fstat to the unlink.
 * Transient trouble (camera undocked, server unreachable) throws, so the job retries later;
 * everything else comes back as a reason to keep the file.
 */
export async function wipeRecording(row: RecordingRow, manifest: RecordingManifest, receipt: unknown, target: WipeTarget, deps: WipeDeps): Promise<WipeOutcome> {
  const keep = (k: Keep): WipeOutcome => ({ wiped: false, keep: k });
  if (!deps.trustedServerKeyPem) return keep({ code: 'untrusted_server_key', reason: 'the server key was learned on first contact, not confirmed (pass --server-key or run bodycam dock trust-server)' });
  const problems = receiptProblems(receipt, receiptExpectationOf(row, manifest, deps.dockId), deps.trustedServerKeyPem);
  if (problems.length) return keep({ code: 'receipt_invalid', reason: `the receipt does not hold: ${problems.join('; ')}` });
  const r = receipt as Receipt;

  const opened = await openNoFollow(target.absPath);
  if ('gone' in opened) throw new PausedError('file not on the camera right now');
  if ('symlink' in opened) return keep({ code: 'file_replaced', reason: 'the file was replaced by a symlink' });
  const file = opened.handle;
  let sidecarHandle: FileHandle | undefined;
  const attachmentsHeld: HeldAttachment[] = [];
  try {
    const fileBefore = snapshotOf(await file.stat({ bigint: true }));
    if (!fileBefore.isFile) return keep({ code: 'file_replaced', reason: 'the path is no longer a regular file' });

    let sidecarBytes: Buffer | undefined;
    let sidecarBefore: StatSnapshot | undefined;
    if (target.sidecarPath) {
      const s = await openNoFollow(target.sidecarPath);
      if ('symlink' in s) return keep({ code: 'sidecar_replaced', reason: 'the sidecar was replaced by a symlink' });
      if ('handle' in s) {
        sidecarHandle = s.handle;
        sidecarBefore = snapshotOf(await sidecarHandle.stat({ bigint: true }));
        if (!sidecarBefore.isFile) return keep({ code: 'sidecar_replaced', reason: 'the sidecar is no longer a regular file' });
        try {
          sidecarBytes = await readAllThrough(sidecarHandle);
        } catch (error) {
          if ((error as { code?: string }).code === 'E_SIDECAR_TOO_LARGE') return keep({ code: 'sidecar_changed', reason: (error as Error).message });
          throw error;
        }
      }
      // Gone since the scan: nothing of it to delete; what the server holds is what it holds.
    }

    const nonce = randomBytes(32);
    for (const attachment of manifest.attachments ?? []) {
      const rel = target.attachmentPaths?.[attachment.index] ?? join(relative(target.cameraRoot, dirname(target.absPath)), attachment.name);
      const path = join(target.cameraRoot, rel);
      // O_NOFOLLOW guards the last component; a folder on the way swapped for a symlink is caught here.
      const real = await realpath(path).catch(() => undefined);
      if (real !== undefined && !isInside(await realpath(target.cameraRoot), real)) return keep({ code: 'attachment_replaced', reason: `attachment ${attachment.name} now leads outside the camera folder` });
      const a = await openNoFollow(path);
      if ('symlink' in a) return keep({ code: 'attachment_replaced', reason: `attachment ${attachment.name} was replaced by a symlink` });
      if ('gone' in a) continue; // nothing of it to delete
      const held: HeldAttachment = { index: attachment.index, name: attachment.name, rel, path, handle: a.handle, before: snapshotOf(await a.handle.stat({ bigint: true })), hashed: { sha256: '', size: 0, answer: '' } };
      attachmentsHeld.push(held);
      if (!held.before.isFile) return keep({ code: 'attachment_replaced', reason: `attachment ${attachment.name} is no longer a regular file` });
      // One pass through its descriptor: its SHA-256 and the possession answer (bounded memory however large).
      const read = await hashThroughDescriptorOffThread(a.handle, [{ index: 0, offset: 0, length: attachment.size }], nonce, new Set([0]), deps.signal);
      held.hashed = { sha256: read.sha256, size: read.size, answer: read.answers.get(0) ?? createHash('sha256').update(nonce).digest('hex') };
    }
    const challenged = chooseChallengeSegments(manifest.segments.map((s) => s.index));
    const hashed = await hashThroughDescriptorOffThread(file, manifest.segments, nonce, new Set(challenged), deps.signal);
    await testPause(row.relPath);

    const gather = async (): Promise<WipeFacts> => {
      const [fileAfter, fileAtPath, rootReal, fileReal] = await Promise.all([
        file.stat({ bigint: true }).then(snapshotOf), lstatSnapshot(target.absPath),
        realpath(target.cameraRoot), realpath(target.absPath).catch(() => undefined),
      ]);
      let sidecar: SidecarFacts | null = null;
      if (sidecarHandle && sidecarBefore && sidecarBytes && target.sidecarPath) {
        sidecar = {
          expectedSha256: manifest.device.sidecarSha256, actualSha256: sha256Of(sidecarBytes), before: sidecarBefore,
          after: snapshotOf(await sidecarHandle.stat({ bigint: true })), atPath: await lstatSnapshot(target.sidecarPath),
        };
      }
      const attachments: AttachmentFacts[] = [];
      for (const held of attachmentsHeld) {
        const expected = manifest.attachments![held.index]!;
        attachments.push({
          name: held.name, expected: { sha256: expected.sha256, size: expected.size }, actual: held.hashed,
          before: held.before, after: snapshotOf(await held.handle.stat({ bigint: true })), atPath: await lstatSnapshot(held.path),
        });
      }
      return {
        trustedKey: true, receiptProblems: problems, receipt: { sha256: r.sha256, size: r.size }, file: hashed,
        detected: { size: row.size, mtimeMs: row.mtimeMs }, fileBefore, fileAfter, fileAtPath,
        insideCamera: fileReal !== undefined && isInside(rootReal, fileReal), sidecar, attachments,
      };
    };
    const local = decideLocal(await gather());
    if (local) return keep(local);
    // Before anything is deleted: every file to delete can be set aside for its checked delete.
    const tooLong = [target.absPath, ...(sidecarHandle && target.sidecarPath ? [target.sidecarPath] : []), ...attachmentsHeld.map((a) => a.path)].filter(tooLongToSetAside);
    if (tooLong.length) return keep({ code: 'name_too_long', reason: `${tooLong.map((p) => basename(p)).join(', ')}: the name is too long to be set aside for a checked delete (${NAME_MAX_BYTES} bytes with the wipe's tag): kept; the server holds it (\`bodycam dock check\`), delete it by hand` });

    // The server's turn: answer from the bytes it stores, for this nonce and these segments.
    const withSidecar = sidecarBytes !== undefined;
    const withAttachments = attachmentsHeld.length > 0;
    const challenge = { nonce: nonce.toString('hex'), segments: challenged, ...(withSidecar ? { sidecar: true } : {}), ...(withAttachments ? { attachments: true } : {}) };
    let popProblems: string[];
    try {
      const answer = await deps.possession(row.recordingId!, challenge, deps.signal);
      popProblems = possessionProblems(answer, {
        recordingId: row.recordingId!, nonce: challenge.nonce, segments: hashed.answers,
        ...(withSidecar ? { sidecar: createHash('sha256').update(nonce).update(sidecarBytes!).digest('hex') } : {}),
        ...(withAttachments ? { attachments: new Map(attachmentsHeld.map((h) => [h.index, h.hashed.answer])) } : {}),
      });
    } catch (error) {
      // Unreachable or busy: try again later. A refusal is an answer: it proves nothing.
      if (!(error instanceof ProblemError) || !error.permanent) throw error;
      popProblems = [`the server refused the challenge: ${error.message}`];
    }
    if (popProblems.length) deps.onPossessionFailure?.(popProblems);

    // Last look, after the round trip: the same inodes, untouched, still at their paths.
    const decision = decideWipe(await gather(), popProblems);
    if (decision) return keep(decision);
    if (!target.sidecarPath && await sidecarBeside(target.absPath, new Set(attachmentsHeld.map((a) => a.name)))) {
      return keep({ code: 'sidecar_not_held', reason: 'a sidecar appeared beside the file after it was hashed: the server does not hold it (ingested as a new version)' });
    }
    if (!(await unlinkChecked(target.absPath, fileBefore))) return keep({ code: 'file_replaced', reason: 'another file took the path at the moment of the wipe: kept' });
    if (sidecarHandle && target.sidecarPath) {
      const atPath = await lstatSnapshot(target.sidecarPath);
      const after = snapshotOf(await sidecarHandle.stat({ bigint: true }));
      const moved = [...statChanges(sidecarBefore!, after), ...pathProblems(sidecarBefore!, atPath)];
      if (moved.length) return { wiped: true, sidecarKept: `sidecar kept: it changed at the last moment (${moved.join('; ')})` };
      const removed = await unlinkChecked(target.sidecarPath, sidecarBefore!).catch((error: unknown) => { if (isFileGone(error)) return true; throw error; });
      if (!removed) return { wiped: true, sidecarKept: 'sidecar kept: another file took its path at the moment of the wipe', ...(await removeAttachments(target.cameraRoot, target.absPath, attachmentsHeld)) };
    }
    return { wiped: true, ...(await removeAttachments(target.cameraRoot, target.absPath, attachmentsHeld)) };
  } finally {
    // An abandoned re-hash's worker may still be in a read of these (a stuck card reader): closed once it is gone.
    for (const held of attachmentsHeld) await closeWhenUnread(held.handle).catch(() => {});
    await sidecarHandle?.close().catch(() => {});
    await closeWhenUnread(file).catch(() => {});
  }
}
