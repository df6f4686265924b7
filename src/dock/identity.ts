/**
 * Which journal row, if any, is the file on the card now (docs/dock.md,
 * "Identity"): a row follows its file by serial + path and a stat snapshot;
 * a receipted row whose file changed its snapshot is re-hashed before it is
 * taken to be the same recording.
 */
import { createHash } from 'node:crypto';
import { constants, lstatSync } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import type { CandidateFile } from '../protocol/cameraStorage/index.js';
import type { AgentState } from './agentState.js';
import { NO_SERIAL } from '../protocol/cameraStorage/index.js';
import { PausedError, QUARANTINE_CODES } from './errors.js';
import { hashFileOffThread } from './hasher.js';
import { sameSnapshot, type RecordingRow, type StatSnapshot } from './journal.js';
import { ACTIVE_STATES, statesOfPhase } from './states.js';
import { isVanishedRow } from './vanished.js';

/** What a scan decided for one file on the card. */
export type Match = { kind: 'row'; row: RecordingRow } | { kind: 'new' } | { kind: 'verify'; rows: RecordingRow[] };

/** Rows already hashed whose upload has not completed: their manifest vouches for the bytes on the card. */
const HASHED_UNSENT = statesOfPhase('upload', false);

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value).filter((k) => (value as Record<string, unknown>)[k] !== undefined).sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * May this row stand for the file at absPath? Not while it stands for another file that is
 * still there (the same card, or a copy of it, in two bays at once: two files, two rows).
 */
export function claimable(state: AgentState, row: RecordingRow, absPath: string): boolean {
  const at = state.located.get(row.key);
  if (!at || at.absPath === absPath) return true;
  try {
    lstatSync(at.absPath);
    return !state.bays.get(at.bay)?.present;
  } catch {
    return true; // moved away from there (re-docked elsewhere)
  }
}

/**
 * A row hashed (and maybe partly sent) whose file now has another size, mtime, inode or ctime (a
 * remount's new device number alone is not a rewrite): its manifest vouches for bytes the card no
 * longer has. The one rule of the scan (rowFor) and of the upload's check before each segment
 * (pipeline.ts checkUnchanged), so a rewrite ends `file_changed` whichever sees it first.
 */
export function rewrittenSinceHash(row: Pick<RecordingRow, 'state' | 'stat'>, now: Pick<StatSnapshot, 'size' | 'mtimeMs' | 'ino' | 'ctimeMs'>): boolean {
  const was = row.stat;
  return HASHED_UNSENT.includes(row.state) && was !== null
    && (was.size !== now.size || was.mtimeMs !== now.mtimeMs || was.ino !== now.ino || was.ctimeMs !== now.ctimeMs);
}

/**
 * May a row be the file found at its path now? Not a wiped one (whatever is at that path is not what
 * was wiped), nor one closed because its file vanished from the card (src/dock/vanished.ts: a file
 * at that path later, renamed back say, is a new observation, ingested as its own row).
 */
export function standsForAFile(row: Pick<RecordingRow, 'state' | 'reasonCode'>): boolean {
  return row.state !== 'wiped' && !isVanishedRow(row);
}

/** What the rows at a file's path say it is, before anything is done about it (see rowFor). */
export type RowDecision = Match | { kind: 'changedAfterHash'; row: RecordingRow };

/**
 * Which of the rows at a file's path (newest first, wiped ones left out) is the file: the one rule
 * the agent's scan (matchRow) and the read-only walks of `--dry-run` and `bodycam check`
 * (inventory.ts matchJournal) share, so that both take a file for the same row. Pure: the caller
 * acts on `changedAfterHash`. A completed or quarantined row is the file only while the stat
 * snapshot it vouches for is unchanged; a completed row whose file changed is re-hashed first
 * (verify). A row still at work follows its path.
 */
export function rowFor(rows: readonly RecordingRow[], file: Pick<CandidateFile, 'size' | 'mtimeMs'>, stat: StatSnapshot): RowDecision {
  const same = rows.find((r) => sameSnapshot(r.stat, stat));
  if (same) return { kind: 'row', row: same };
  // A hashed upload whose file is unchanged but for the device number (the card remounted, in
  // another reader) is that file, newest row at the path or not: a later row there (another
  // camera without a serial, its file at the same path) must not hide it.
  const remounted = rows.find((r) => HASHED_UNSENT.includes(r.state) && r.stat !== null && !rewrittenSinceHash(r, stat));
  if (remounted) return { kind: 'row', row: remounted };
  const newest = rows[0];
  if (newest && ACTIVE_STATES.includes(newest.state)) {
    // Hashed, and the file was rewritten since (size, mtime, inode or ctime; a remount's new
    // device number alone is not a rewrite): the manifest vouches for bytes the card no longer has.
    if (rewrittenSinceHash(newest, stat)) return { kind: 'changedAfterHash', row: newest };
    return { kind: 'row', row: newest };
  }
  // A quarantined row of an older journal (no snapshot) still matches by size and mtime.
  const oldQuarantined = rows.find((r) => r.state === 'quarantined' && r.stat === null && r.size === file.size && r.mtimeMs === file.mtimeMs);
  if (oldQuarantined) return { kind: 'row', row: oldQuarantined };
  const completed = rows.filter((r) => r.state === 'completed' && r.manifestJson);
  return completed.length ? { kind: 'verify', rows: completed } : { kind: 'new' };
}

/**
 * What the scan decided for one file, before any await: a Match, or `whoseFile` when a hashed
 * upload of a card without a serial (NO_SERIAL) has other bytes at this path now, and that file
 * is not on the card this docking of the bay has held all along (the row was not found by this
 * docking, or the file is on another device: another card mounted there). Every card without
 * DEVICE.json shares the serial, and such cameras name their files alike, so the file may be
 * another camera's, not that upload's file rewritten: the scan compares the file with the
 * upload's segment hashes (holdsHashedBytes) before it closes anything.
 */
export type ScanMatch = Match | { kind: 'whoseFile'; row: RecordingRow };

/**
 * The agent's scan: rowFor over the rows that may stand for this file (standsForAFile). A hashed
 * upload whose file was rewritten can never complete: it is closed as file_changed, and the file
 * now on the card is a new version. `sessionKeys`: the rows this docking of the bay has found (none: a fresh look).
 */
export function matchRow(state: AgentState, serial: string, file: CandidateFile, stat: StatSnapshot, sessionKeys: ReadonlySet<string> = new Set()): ScanMatch {
  const rows = state.journal.listByPath(serial, file.relPath).filter((r) => standsForAFile(r) && claimable(state, r, file.absPath));
  const decision = rowFor(rows, file, stat);
  if (decision.kind !== 'changedAfterHash') return decision;
  if (serial === NO_SERIAL && (!sessionKeys.has(decision.row.key) || decision.row.stat?.dev !== stat.dev)) return { kind: 'whoseFile', row: decision.row };
  return closeRewritten(state, decision.row, file);
}

/**
 * `whoseFile` settled: the upload's own file grown or cut short (holdsHashedBytes) is closed as
 * file_changed like any rewrite. Another camera's file is a recording of its own, and that upload
 * is set aside, not closed: no longer located at this path (its job, if one runs, pauses), it
 * waits for its own camera to be docked again. `retry`: the file could not be read to the end
 * (undocked, a read error); the scan tries again later. The caller holds no journal batch open.
 */
export async function settleWhoseFile(state: AgentState, row: RecordingRow, file: CandidateFile, stat: StatSnapshot, signal?: AbortSignal): Promise<Match | 'retry'> {
  let same: boolean;
  try { same = await holdsHashedBytes(row, file.absPath, signal); } catch (error) {
    state.logger.info('comparison with an open upload deferred', { file: file.relPath, err: error });
    return 'retry';
  }
  // The scan awaited: the row may have been closed, or found on its own camera, meanwhile.
  const now = state.journal.get(row.key);
  if (!now || !ACTIVE_STATES.includes(now.state) || !claimable(state, now, file.absPath)) return { kind: 'new' };
  if (same) return closeRewritten(state, now, file);
  setAsideFrom(state, now.key, file.absPath, 'another camera\'s file is at its path now');
  // Said on the row (`bodycam status` lastError), never parked in silence.
  state.journal.noteSetAside(now.key, `set aside: another camera without a serial has other bytes at ${file.relPath}; waits for its own camera to be docked again`);
  state.logger.warn('another camera without a serial has a file at the path of an open upload: that upload waits for its camera', { file: file.relPath, openRecordingId: row.recordingId });
  // The file may still be one already held (a receipted row at the path): the rule again, without the row set aside.
  const others = state.journal.listByPath(NO_SERIAL, file.relPath).filter((r) => r.key !== now.key && standsForAFile(r) && claimable(state, r, file.absPath));
  const again = rowFor(others, file, stat);
  return again.kind === 'changedAfterHash' ? { kind: 'new' } : again;
}

/** A row no longer stands for the file at absPath: not located there, its job (if any) paused; it waits for a scan to find its file. */
export function setAsideFrom(state: AgentState, key: string, absPath: string, why: string): void {
  const at = state.located.get(key);
  if (at?.absPath !== absPath) return;
  state.located.delete(key);
  const bay = state.bays.get(at.bay);
  bay?.keys.delete(key);
  bay?.sessionKeys.delete(key);
  state.running.get(key)?.controller.abort(new PausedError(why));
}

function closeRewritten(state: AgentState, changed: RecordingRow, file: CandidateFile): Match {
  state.running.get(changed.key)?.controller.abort(new PausedError('file rewritten on the camera after it was hashed'));
  state.journal.transition(changed.key, 'quarantined', { reason: 'the file was rewritten on the camera after it was hashed: the bytes now on the card are ingested as a new version', reasonCode: QUARANTINE_CODES.fileChanged });
  state.logger.warn('file rewritten after its hash: upload closed, new version follows', { file: file.relPath, recordingId: changed.recordingId });
  return { kind: 'new' };
}

/**
 * Whether the file at `absPath` is `row`'s file grown or cut short: every segment of the row's
 * hashed plan that lies inside the file's length now is still the bytes hashed, and at least one
 * does. Stops at the first segment that differs (another camera's file differs in its first, at
 * most segmentMaxBytes); the same file grown is read as far as it was hashed. A row without a
 * readable plan cannot tell: taken as its own file. Throws when the file cannot be read, and with
 * a PausedError when `signal` aborts (an undock; a read the kernel never answers is left behind).
 */
export async function holdsHashedBytes(row: Pick<RecordingRow, 'manifestJson'>, absPath: string, signal?: AbortSignal): Promise<boolean> {
  let plan: Array<{ offset?: unknown; length?: unknown; sha256?: unknown }> | undefined;
  try { plan = (JSON.parse(row.manifestJson ?? 'null') as { segments?: typeof plan } | null)?.segments; } catch { plan = undefined; }
  const segments = Array.isArray(plan) && plan.every((p) => typeof p.offset === 'number' && typeof p.length === 'number' && typeof p.sha256 === 'string')
    ? plan as Array<{ offset: number; length: number; sha256: string }> : undefined;
  if (!segments?.length) return true;
  const aborted = new Promise<never>((_, reject) => {
    const stop = (): void => reject(new PausedError('comparison abandoned', { cause: signal?.reason }));
    if (signal?.aborted) stop(); else signal?.addEventListener('abort', stop, { once: true });
  });
  aborted.catch(() => {});
  const opening = open(absPath, constants.O_RDONLY | constants.O_NOFOLLOW);
  let handle;
  try { handle = await Promise.race([opening, aborted]); } catch (error) {
    void opening.then((h) => h.close()).catch(() => {});
    throw error;
  }
  // Closed only once no read of it is pending (one stuck in the kernel keeps it).
  let pending: Promise<unknown> = Promise.resolve();
  try {
    const size = (await handle.stat()).size;
    const buffer = Buffer.allocUnsafe(COMPARE_CHUNK_BYTES);
    let compared = 0;
    for (const segment of segments) {
      if (segment.offset + segment.length > size) break;
      const hash = createHash('sha256');
      for (let at = segment.offset, end = segment.offset + segment.length; at < end;) {
        const read = handle.read(buffer, 0, Math.min(buffer.length, end - at), at);
        pending = read.catch(() => {});
        const { bytesRead } = await Promise.race([read, aborted]);
        if (bytesRead === 0) return false;
        hash.update(buffer.subarray(0, bytesRead));
        at += bytesRead;
      }
      if (hash.digest('hex') !== segment.sha256.toLowerCase()) return false;
      compared++;
    }
    return compared > 0;
  } finally {
    void pending.then(() => handle!.close()).catch(() => {});
  }
}

const COMPARE_CHUNK_BYTES = 1024 * 1024;

/** What was read of a file at a receipted path: its hash and size, its sidecar's bytes, and `name\0size\0sha256` of each companion. */
export interface FileBytes {
  fileSha: string;
  size: number;
  sidecarBytes: Buffer | undefined;
  companions: string[];
}

/**
 * Whether a row's manifest holds these very bytes: the file, the sidecar (by hash, or for a
 * manifest of an older build by what its parsed sidecar says) and the companions (other
 * companions: changed, added, gone, are other evidence). The run (verifyAgainst) and the dry run
 * (src/dock/dryRun.ts) decide "same recording" by this one rule.
 */
export function sameBytes(row: RecordingRow, read: FileBytes): boolean {
  let manifest: { file?: { sha256?: string; size?: number }; device?: { sidecar?: unknown; sidecarSha256?: string }; attachments?: Array<{ name: string; size: number; sha256: string }> };
  try { manifest = JSON.parse(row.manifestJson!) as typeof manifest; } catch { return false; }
  if (manifest.file?.sha256 !== read.fileSha || manifest.file?.size !== read.size) return false;
  const held = (manifest.attachments ?? []).map((a) => `${a.name}\0${a.size}\0${a.sha256}`);
  if (held.length !== read.companions.length || held.some((h, i) => h !== read.companions[i])) return false;
  const device = manifest.device ?? {};
  const sidecarSha = read.sidecarBytes ? createHash('sha256').update(read.sidecarBytes).digest('hex') : null;
  if (typeof device.sidecarSha256 === 'string') return device.sidecarSha256 === sidecarSha;
  if (device.sidecar === undefined) return read.sidecarBytes === undefined;
  // A manifest of an older build holds only the parsed sidecar: compare what it says.
  let parsed: unknown;
  try { parsed = read.sidecarBytes ? JSON.parse(read.sidecarBytes.toString('utf8')) : undefined; } catch { parsed = undefined; }
  return parsed !== undefined && canonicalJson(parsed) === canonicalJson(device.sidecar);
}

/** `name\0size\0sha256` of each companion of a file, hashed off the event loop (FileBytes.companions). */
export async function companionDigests(file: CandidateFile): Promise<string[]> {
  const out: string[] = [];
  for (const c of file.companions) out.push(`${c.fileName}\0${c.stat.size}\0${(await hashFileOffThread(c.absPath, c.stat.size ? [{ offset: 0, length: c.stat.size }] : [], c.stat.size)).sha256}`);
  return out;
}

/**
 * The file at a completed row's path changed its stat snapshot (touched, copied back, rewritten,
 * sidecar re-signed): hash it and its sidecar. Same bytes as a row's manifest: that row, with the
 * new snapshot. Different: a new version, a new row. Changed while hashed: try again later.
 */
export async function verifyAgainst(state: AgentState, rows: RecordingRow[], file: CandidateFile, stat: StatSnapshot, bay: string): Promise<Match | 'retry'> {
  const { journal, logger } = state;
  let fileSha: string;
  let sidecarBytes: Buffer | undefined;
  let companions: string[];
  try {
    const hashed = await hashFileOffThread(file.absPath, [{ offset: 0, length: file.size }], file.size);
    fileSha = hashed.sha256;
    if (file.sidecarPath) sidecarBytes = await readFile(file.sidecarPath);
    companions = await companionDigests(file);
    const after = lstatSync(file.absPath);
    const sidecarAfter = file.sidecarPath ? lstatSync(file.sidecarPath) : undefined;
    const now: StatSnapshot = {
      size: after.size, mtimeMs: after.mtimeMs, ino: after.ino, dev: after.dev, ctimeMs: after.ctimeMs,
      sidecar: sidecarAfter ? { size: sidecarAfter.size, mtimeMs: sidecarAfter.mtimeMs, ino: sidecarAfter.ino, dev: sidecarAfter.dev, ctimeMs: sidecarAfter.ctimeMs } : null,
      ...(stat.companions ? { companions: stat.companions.map((c, i) => { const l = lstatSync(file.companions[i]!.absPath); return { name: c.name, size: l.size, mtimeMs: l.mtimeMs, ino: l.ino, dev: l.dev, ctimeMs: l.ctimeMs }; }) } : {}),
    };
    if (!sameSnapshot(stat, now)) return 'retry';
  } catch (error) {
    logger.info('re-check of a changed file deferred', { bay, file: file.relPath, err: error });
    return 'retry';
  }
  for (const row of rows.filter((r) => sameBytes(r, { fileSha, size: file.size, sidecarBytes, companions }))) {
    // Pruned by the retention rule while the file was hashed (src/dock/retention.ts): no row to
    // follow any more, so the file is a new row (sent again; the server stores its bytes once).
    if (!journal.get(row.key)) continue;
    logger.info('file changed its stat but not its bytes: same recording', { bay, file: file.relPath, recordingId: row.recordingId });
    return { kind: 'row', row: journal.relocate(row.key, bay, stat) };
  }
  logger.warn('file at a receipted path holds new bytes: ingested as a new version', { bay, file: file.relPath, sha256: fileSha, previous: rows[0]?.recordingId });
  return { kind: 'new' };
}
