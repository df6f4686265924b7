/**
 * The operator's queue tools (`bodycam quarantine`, modelled on Postfix's mailq / postsuper -r):
 * list what a person must look at, show one, put a quarantined one back to the start once its
 * cause is fixed, and export one as a folder a person can carry away by hand.
 *
 * Retry works on the journal itself, in one SQLite transaction (Journal.requeueQuarantined), whether
 * a dock runs or not: the dock's lock (lock.ts) keeps a second AGENT off the state folder; it does not
 * stop a row being edited, and the journal is WAL with a busy timeout made for a second writer. A
 * running agent never works a quarantined row and reads its rows afresh on every scheduling round,
 * so it picks the retried row up at its next scan. No retry endpoint on the status port: that port
 * is unauthenticated on 127.0.0.1, and any local user could requeue evidence through it.
 */
import { createHash } from 'node:crypto';
import { constants, existsSync, lstatSync } from 'node:fs';
import { mkdir, open, readdir, rename, rm, type FileHandle } from 'node:fs/promises';
import { makeDirs } from '../util/makeDirs.js';
import { basename, dirname, join, normalize } from 'node:path';
import { BodycamError, UsageError } from '../errors.js';
import { refuseInsideDockFolders } from './dockFolders.js';
import { isFlagged } from './integrity.js';
import type { Journal, RecordingRow } from './journal.js';
import { QUARANTINE_CODES } from './errors.js';
import { isInside, readDevice } from '../protocol/cameraStorage/index.js';
import { unreadableOf } from './pipeline.js';
import { INTEGRITY_STATUSES, isIntegrityProblem, type IntegrityStatus } from '../protocol/types.js';
import { isProblemCode } from '../protocol/problems.js';

export interface QuarantineEntry {
  key: string;
  recordingId: string | null;
  kind: 'quarantined' | 'flagged';
  /** The quarantine's reason code, or the integrity flag (hash-mismatch, signature-invalid, sidecar-invalid, truncated). */
  code: string;
  reason: string;
  state: string;
  serial: string;
  bay: string | null;
  /** Path on the card, relative to the camera's root. */
  path: string;
  size: number;
  sha256: string | null;
  detectedAt: string;
  updatedAt: string;
  /** False for a code whose retry could never succeed (see NOT_RETRYABLE). */
  retryable: boolean;
}

/**
 * Codes a retry cannot help: the bytes the row stood for are no longer on the card (the file there
 * now is already its own recording, with its own row). Retrying would leave a row with no file.
 */
export const NOT_RETRYABLE: ReadonlyMap<string, string> = new Map([
  [QUARANTINE_CODES.fileChanged, 'the file was rewritten after it was hashed: the bytes now on the card are already ingested as their own recording'],
  [QUARANTINE_CODES.fileReplaced, 'the path no longer holds a regular file: whatever is there now is detected on its own'],
  [QUARANTINE_CODES.fileVanished, 'the file left the card (renamed, moved or deleted): a file under another name, or back at this path, is detected on its own'],
]);

export class QuarantineError extends BodycamError {
  override readonly userFacing = true;
}

/**
 * Whether `code` is one a row can carry (src/dock/errors.ts reasonCodeOf: a local code, or
 * `server_<the protocol's problem code>`), or with `flags` also an integrity flag of a flagged
 * recording: a typo in --reason is a usage error (exit 2), never "nothing quarantined" (exit 0).
 * Called when nothing matched: a code some row does carry (another server's problem code) is real.
 */
export function checkReasonCode(code: string, flags: boolean): void {
  const local: readonly string[] = [...Object.values(QUARANTINE_CODES), 'unknown'];
  const flagCodes: readonly string[] = [...INTEGRITY_STATUSES.filter((s) => isIntegrityProblem(s)), 'unreadable', 'truncated'];
  const server = code.startsWith('server_') && (isProblemCode(code.slice('server_'.length)) || code === 'server_attachment_out_of_plan');
  if (local.includes(code) || server || (flags && flagCodes.includes(code))) return;
  const known = [...local, 'server_<problem code> (e.g. server_invalid_manifest)', ...(flags ? flagCodes : [])];
  throw new UsageError(`--reason ${JSON.stringify(code)} is not a reason code: one of ${known.join(', ')} (the CODE column of \`bodycam quarantine list\`)`, { code: 'E_QUARANTINE_REASON' });
}

function entryOf(row: RecordingRow): QuarantineEntry {
  const quarantined = row.state === 'quarantined';
  const integrity = row.info.integrity as IntegrityStatus | undefined;
  const notes = Array.isArray(row.info.integrityNotes) ? (row.info.integrityNotes as unknown[]).map(String) : [];
  const code = quarantined ? row.reasonCode ?? 'unknown' : integrity && isIntegrityProblem(integrity) ? integrity
    : unreadableOf(row) !== undefined ? 'unreadable' : 'truncated';
  return {
    key: row.key, recordingId: row.recordingId, kind: quarantined ? 'quarantined' : 'flagged', code,
    reason: quarantined ? row.reason ?? '' : notes.join('; ') || code, state: row.state, serial: row.serial, bay: row.bay, path: row.relPath,
    size: row.size, sha256: row.sha256, detectedAt: new Date(row.detectedAt).toISOString(), updatedAt: new Date(row.updatedAt).toISOString(),
    retryable: quarantined && !NOT_RETRYABLE.has(code),
  };
}

function needsAttention(row: RecordingRow): boolean {
  return row.state === 'quarantined' || isFlagged(row.info.integrity as IntegrityStatus | undefined, Boolean(row.info.truncated), unreadableOf(row));
}

/** Every quarantined and flagged recording, oldest first, optionally of one code. */
export function* listQuarantine(journal: Journal, filter: { reason?: string } = {}): Generator<QuarantineEntry> {
  for (let after = 0; ;) {
    const page = journal.listNeedingAttention(after);
    if (page.length === 0) return;
    for (const row of page) {
      const entry = entryOf(row);
      if (!filter.reason || entry.code === filter.reason) yield entry;
    }
    after = page[page.length - 1]!.rowid;
  }
}

/** The one quarantined or flagged row `ref` names (journal key, recording id, or path on the card). */
export function findQuarantined(journal: Journal, ref: string): RecordingRow {
  const rows = journal.findByRef(ref).filter(needsAttention);
  if (rows.length === 0) throw new QuarantineError('E_QUARANTINE_UNKNOWN', `no quarantined or flagged recording "${ref}" in the journal (see \`bodycam quarantine list\`)`);
  if (rows.length > 1) throw new QuarantineError('E_QUARANTINE_AMBIGUOUS', `"${ref}" names ${rows.length} recordings (${rows.map((r) => r.key).join(', ')}): give the KEY column instead`);
  return rows[0]!;
}

export interface ShownEntry extends QuarantineEntry {
  integrity: string | null;
  integrityNotes: string[];
  attempts: number;
  lastError: string | null;
  manifest: unknown;
  receipt: unknown;
}

export function showQuarantined(journal: Journal, ref: string): ShownEntry {
  const row = findQuarantined(journal, ref);
  const parse = (text: string | null): unknown => { try { return text ? JSON.parse(text) : null; } catch { return text; } };
  return {
    ...entryOf(row), integrity: (row.info.integrity as string | undefined) ?? null,
    integrityNotes: Array.isArray(row.info.integrityNotes) ? (row.info.integrityNotes as unknown[]).map(String) : [],
    attempts: row.attempts, lastError: row.lastError, manifest: parse(row.manifestJson), receipt: parse(row.receiptJson),
  };
}

export interface RetryOutcome { key: string; path: string; code: string; retried: boolean; why?: string }

/** Requeue one recording (`ref`) or every quarantined one of a reason code. */
export function retryQuarantined(journal: Journal, target: { ref?: string; reason?: string }): RetryOutcome[] {
  if (Boolean(target.ref) === Boolean(target.reason)) throw new UsageError('give either a recording (KEY, recording id or path) or --reason CODE');
  if (target.reason && NOT_RETRYABLE.has(target.reason)) {
    throw new QuarantineError('E_NOT_RETRYABLE', `${target.reason} cannot be retried: ${NOT_RETRYABLE.get(target.reason)!}`);
  }
  const rows = target.ref ? [findQuarantined(journal, target.ref)] : [...listQuarantine(journal, { reason: target.reason })].map((e) => journal.get(e.key)!);
  if (target.reason && rows.length === 0) checkReasonCode(target.reason, false);
  const outcomes: RetryOutcome[] = [];
  for (const row of rows) {
    const entry = entryOf(row);
    if (entry.kind === 'flagged') {
      outcomes.push({ key: row.key, path: row.relPath, code: entry.code, retried: false, why: 'flagged, not quarantined: it is already on the server (with its flag) and is never wiped; export it for a person instead' });
    } else if (!entry.retryable) {
      outcomes.push({ key: row.key, path: row.relPath, code: entry.code, retried: false, why: NOT_RETRYABLE.get(entry.code)! });
    } else {
      const retried = journal.requeueQuarantined(row.key, `operator retry of ${entry.code}`);
      outcomes.push({ key: row.key, path: row.relPath, code: entry.code, retried, ...(retried ? {} : { why: 'no longer quarantined (changed meanwhile)' }) });
    }
  }
  return outcomes;
}

// ---- export -------------------------------------------------------------------------

export interface ExportResult { folder: string; files: Array<{ name: string; sha256: string; size: number }>; matchesJournal: boolean | null }

/** The docked camera (bay folder) holding the row's file: its own bay first, then any bay whose DEVICE.json has its serial. */
async function findCameraRoot(bays: string, row: RecordingRow): Promise<string> {
  let names: string[];
  try { names = (await readdir(bays)).filter((n) => !n.startsWith('.')).sort(); } catch (cause) {
    throw new UsageError(`cannot read the bays folder ${bays}: ${(cause as Error).message}`, { cause });
  }
  const order = row.bay && names.includes(row.bay) ? [row.bay, ...names.filter((n) => n !== row.bay)] : names;
  for (const name of order) {
    const root = join(bays, name);
    const device = await readDevice(root);
    const serial = device.kind === 'ok' ? device.device.serial : 'unknown';
    if (serial !== row.serial) continue;
    const path = join(root, row.relPath);
    if (!isInside(root, path)) continue;
    try { if (lstatSync(path).isFile()) return root; } catch { /* not on this one */ }
  }
  throw new QuarantineError('E_EXPORT_NOT_DOCKED', `${row.relPath} of camera ${row.serial} is not on any camera docked in ${bays}: dock it (bay ${row.bay ?? '?'}) and export again`);
}

/**
 * Copy src to dst (new file, 0600) without following a symlink at either end, hashing what is read;
 * then fsync and read the copy back: the copy's hash must be the source's. Returns the SHA-256.
 */
async function copyVerified(src: string, dst: string): Promise<{ sha256: string; size: number }> {
  const source = await open(src, constants.O_RDONLY | constants.O_NOFOLLOW);
  let target: FileHandle | undefined;
  const read = createHash('sha256');
  let size = 0;
  try {
    if (!(await source.stat()).isFile()) throw new QuarantineError('E_EXPORT_NOT_FILE', `${src} is not a regular file`);
    target = await open(dst, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    const buffer = Buffer.alloc(1024 * 1024);
    for (;;) {
      const { bytesRead } = await source.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) break;
      const chunk = buffer.subarray(0, bytesRead);
      read.update(chunk);
      size += bytesRead;
      await target.write(chunk);
    }
    await target.sync();
  } finally {
    await target?.close();
    await source.close();
  }
  const sha256 = read.digest('hex');
  const back = createHash('sha256');
  const copy = await open(dst, constants.O_RDONLY);
  try {
    for await (const chunk of copy.createReadStream({ autoClose: false })) back.update(chunk as Buffer);
  } finally {
    await copy.close();
  }
  if (back.digest('hex') !== sha256) throw new QuarantineError('E_EXPORT_COPY_DIFFERS', `the copy of ${src} does not read back as the bytes read from the card: the destination disk is not trustworthy`);
  return { sha256, size };
}

async function writeNew(path: string, data: string): Promise<{ sha256: string; size: number }> {
  const handle = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  try { await handle.writeFile(data); await handle.sync(); } finally { await handle.close(); }
  return { sha256: createHash('sha256').update(data).digest('hex'), size: Buffer.byteLength(data) };
}

async function fsyncDir(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try { await handle.sync(); } finally { await handle.close(); }
}

/** Names of attachments the manifest lists (a-media's attachments): files next to the recording on the card. */
function attachmentPathsOf(manifest: unknown, relPath: string): string[] {
  const list = (manifest as { attachments?: unknown } | null)?.attachments;
  if (!Array.isArray(list)) return [];
  const out: string[] = [];
  for (const item of list) {
    const value = item && typeof item === 'object' ? (item as Record<string, unknown>).relPath ?? (item as Record<string, unknown>).path ?? (item as Record<string, unknown>).name : undefined;
    if (typeof value !== 'string' || value === '') continue;
    out.push(value.includes('/') ? normalize(value) : join(dirname(relPath), value));
  }
  return out;
}

/**
 * Export one quarantined or flagged recording as `<to>/<recording id or key>/`: the file, its sidecar,
 * its attachments, the dock's manifest (when it got that far), reason.json and SHA256SUMS (sha256sum -c
 * format). Built under a hidden temporary name and renamed into place, so a half export never looks whole.
 */
export async function exportQuarantined(journal: Journal, ref: string, options: { bays: string; to: string; stateDir?: string }): Promise<ExportResult> {
  // Before anything is looked up: an export inside the bays lands on a docked camera's card.
  refuseInsideDockFolders(options.to, { bays: options.bays, ...(options.stateDir !== undefined ? { stateDir: options.stateDir } : {}) }, '--to');
  const row = findQuarantined(journal, ref);
  const entry = entryOf(row);
  const cameraRoot = await findCameraRoot(options.bays, row);
  const name = (row.recordingId ?? `${row.serial}-${row.key}`).replace(/[^A-Za-z0-9._-]/g, '-');
  const folder = join(options.to, name);
  if (existsSync(folder)) throw new QuarantineError('E_EXPORT_EXISTS', `${folder} exists already: export elsewhere (--to) or remove it`);
  await makeDirs(options.to, 0o700).catch((cause: unknown) => {
    // --to names a file, a folder this user may not write, a full or read-only stick: one line, not a stack.
    throw new QuarantineError('E_EXPORT_TARGET', `cannot export into ${options.to}: ${(cause as Error).message}`, { cause });
  });
  const partial = join(options.to, `.${name}.partial-${process.pid}`);
  await rm(partial, { recursive: true, force: true });
  await mkdir(partial, { mode: 0o700 });
  const files: ExportResult['files'] = [];
  try {
    const manifest = row.manifestJson ? JSON.parse(row.manifestJson) as { device?: { sidecarSha256?: string } } : null;
    const media = await copyVerified(join(cameraRoot, row.relPath), join(partial, row.fileName));
    files.push({ name: row.fileName, ...media });
    const matchesJournal = row.sha256 ? row.sha256 === media.sha256 : null;
    // The sidecar is found as the dock finds it: same name, .json (any case).
    const dir = dirname(join(cameraRoot, row.relPath));
    const stem = row.fileName.replace(/\.[^.]*$/, '');
    const sidecarName = (await readdir(dir)).find((n) => n !== row.fileName && n.toLowerCase() === `${stem.toLowerCase()}.json`);
    let sidecarMatches: boolean | null = null;
    if (sidecarName) {
      const sidecar = await copyVerified(join(dir, sidecarName), join(partial, sidecarName));
      files.push({ name: sidecarName, ...sidecar });
      if (manifest?.device?.sidecarSha256) sidecarMatches = manifest.device.sidecarSha256 === sidecar.sha256;
    }
    const attachments = attachmentPathsOf(manifest, row.relPath);
    if (attachments.length) await mkdir(join(partial, 'attachments'), { mode: 0o700 });
    for (const rel of attachments) {
      const abs = join(cameraRoot, rel);
      if (!isInside(cameraRoot, abs)) continue;
      const copied = await copyVerified(abs, join(partial, 'attachments', basename(rel)));
      files.push({ name: `attachments/${basename(rel)}`, ...copied });
    }
    if (manifest) files.push({ name: 'manifest.json', ...await writeNew(join(partial, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n') });
    const reason = {
      ...entry, integrity: row.info.integrity ?? null, integrityNotes: row.info.integrityNotes ?? [], exportedAt: new Date().toISOString(),
      source: { cameraRoot, path: row.relPath, sidecar: sidecarName ?? null },
      // false: the card's bytes are not what the dock hashed (changed since); null: never hashed.
      matchesJournal, sidecarMatchesManifest: sidecarMatches,
    };
    files.push({ name: 'reason.json', ...await writeNew(join(partial, 'reason.json'), JSON.stringify(reason, null, 2) + '\n') });
    await writeNew(join(partial, 'SHA256SUMS'), files.map((f) => `${f.sha256}  ${f.name}\n`).join(''));
    await fsyncDir(partial);
    await rename(partial, folder);
    await fsyncDir(options.to);
    return { folder, files, matchesJournal };
  } catch (error) {
    await rm(partial, { recursive: true, force: true });
    throw error;
  }
}
