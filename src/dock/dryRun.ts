/**
 * `bodycam dock --dry-run`: what a run would do with every file on the docked cameras — upload,
 * upload flagged, wipe, keep, leave alone, quarantine, wait — by its path on the card, without
 * sending or deleting anything. It never contacts the server (what the server holds is the journal's
 * word: its receipts; `bodycam check` asks the server). It reads the cards (walk, sidecars, a hash and
 * an ffprobe per file not yet receipted, as the run would) and the journal read-only; it takes no
 * lock and writes no file, so it may run beside a running dock.
 */
import { PrivateFileError } from '../util/privateFile.js';
import { readServerKeyFile } from './serverKeyPin.js';
import { lstat } from 'node:fs/promises';
import { companionDigests, sameBytes, holdsHashedBytes } from './identity.js';
import { NO_SERIAL } from '../protocol/cameraStorage/index.js';
import { readFile } from 'node:fs/promises';
import { UsageError } from '../errors.js';
import { probe } from '../media/probe.js';
import { isMediaExtension } from '../protocol/fileKinds.js';
import { isEd25519PublicKeyPem } from '../protocol/signing.js';
import { isIntegrityProblem, type IntegrityStatus } from '../protocol/types.js';
import type { DockConfig } from './config.js';
import { QUARANTINE_CODES } from './errors.js';
import { hashFileOffThread } from './hasher.js';
import { checkIntegrity, isFlagged } from './integrity.js';
import { matchJournal, walkBays, type CardFile } from './inventory.js';
import { Journal, type RecordingRow } from './journal.js';
import { STATE_TABLE } from './states.js';
import { looksLikePlainText, unreadableOf, wipeAllowed } from './pipeline.js';
import { ATTENTION_SKIPS } from '../protocol/cameraStorage/index.js';
import { readSidecar } from './storage.js';
import { CONFIRMED_SERVER_KEY_META, UNCONFIRMED_KEY_LINE } from './trust.js';

export type DryRunAction = 'upload' | 'flag' | 'wipe' | 'keep' | 'skip' | 'quarantine' | 'settle';

export interface DryRunEntry {
  bay: string;
  /** Path on the card, relative to the camera's root. */
  path: string;
  action: DryRunAction;
  detail: string;
  /** Quarantine code, skip code or integrity flag, when there is one. */
  code?: string;
  recordingId?: string;
}

export interface DryRunResult {
  entries: DryRunEntry[];
  counts: Record<DryRunAction, number>;
  /** Always false: the dry run answers from the cards and the journal alone. */
  serverContacted: false;
}

function confirmedKey(config: DockConfig, journal: Journal | undefined): boolean {
  if (config.serverKey) {
    // A key file others may rewrite is refused here as by the dock itself (exit 2), not shown as "no wipe".
    try { readServerKeyFile(config.serverKey); return true; } catch (error) {
      if (error instanceof PrivateFileError && (error.problem === 'mode' || error.problem === 'owner')) throw error;
      return false;
    }
  }
  const pem = journal?.getMeta(CONFIRMED_SERVER_KEY_META);
  return pem !== undefined && isEd25519PublicKeyPem(pem);
}

function flagOf(row: Pick<RecordingRow, 'info'>): string | undefined {
  const integrity = row.info.integrity as IntegrityStatus | undefined;
  if (!isFlagged(integrity, Boolean(row.info.truncated), unreadableOf(row))) return undefined;
  return integrity && isIntegrityProblem(integrity) ? integrity : unreadableOf(row) ? 'unreadable' : 'truncated';
}

/** A receipted row: wiped (after proof of possession) or kept, and why. */
function receipted(config: DockConfig, row: RecordingRow, base: Pick<DryRunEntry, 'bay' | 'path'>): DryRunEntry {
  const id = row.recordingId ? { recordingId: row.recordingId } : {};
  const flag = flagOf(row);
  if (flag) return { ...base, ...id, action: 'keep', code: flag, detail: `receipted, flagged ${flag}: stays on the card (a flagged recording is never wiped)` };
  if (!config.wipeAfterIngest) return { ...base, ...id, action: 'keep', detail: 'receipted: stays on the card (--wipe-after-ingest is off)' };
  if (!wipeAllowed(row)) return { ...base, ...id, action: 'keep', code: String(row.info.wipeKeptCode ?? 'kept'), detail: `receipted, kept by an earlier wipe check: ${row.reason ?? 'not wiped'}` };
  return { ...base, ...id, action: 'wipe', detail: 'receipted: deleted (file and sidecar) once the server proves it holds the bytes' };
}

/** A file the run would take up from the start: settle, quarantine, or upload (flagged or not). */
async function fresh(config: DockConfig, card: CardFile, base: Pick<DryRunEntry, 'bay' | 'path'>, now: number, note: string): Promise<DryRunEntry> {
  const { file } = card;
  const prefix = note ? `${note}; ` : '';
  if (!file.sidecarPath && now - file.mtimeMs < config.settle * 1000) {
    return { ...base, action: 'settle', detail: `${prefix}no sidecar and changed ${Math.round((now - file.mtimeMs) / 1000)} s ago: waits until it has been stable for ${config.settle} s` };
  }
  if (file.size === 0) return { ...base, action: 'quarantine', code: QUARANTINE_CODES.zeroByte, detail: `${prefix}zero-byte file: nothing to ingest` };
  const byName = Boolean(file.sidecarPath) || isMediaExtension(file.fileName);
  let unreadable: string | undefined;
  if (!file.sidecarPath && await looksLikePlainText(file.absPath, file.fileName).catch(() => false)) {
    if (!byName) return { ...base, action: 'quarantine', code: QUARANTINE_CODES.notMedia, detail: `${prefix}not a media file (plain text): stays on the card` };
    unreadable = 'plain text, not a media container';
  } else {
    try {
      const result = await probe(file.absPath);
      if (result.streams.length === 0) throw new Error('no media streams');
    } catch (error) {
      if (!byName) return { ...base, action: 'quarantine', code: QUARANTINE_CODES.notMedia, detail: `${prefix}not a media file (ffprobe cannot read it): stays on the card` };
      unreadable = `ffprobe: ${(error as Error).message.split('\n')[0]}`;
    }
  }
  const hash = await hashFileOffThread(file.absPath, [{ offset: 0, length: file.size }], file.size);
  const sidecar = file.sidecarPath ? await readSidecar(file.sidecarPath) : undefined;
  const truncated = !sidecar && Boolean(card.device);
  const verdict = checkIntegrity({ sidecar, device: card.device, deviceProblem: card.deviceProblem, fileSha256: hash.sha256, fileSize: hash.size, fileName: file.fileName, truncated });
  const then = config.wipeAfterIngest ? ', then wiped once receipted and the server proves it holds the bytes' : '';
  if (isFlagged(verdict.status, truncated, unreadable)) {
    const code = isIntegrityProblem(verdict.status) ? verdict.status : unreadable ? 'unreadable' : 'truncated';
    return { ...base, action: 'flag', code, detail: `${prefix}uploaded byte-exact with the flag ${code}, never wiped: ${[...verdict.notes, ...(unreadable ? [unreadable] : [])].join('; ')}` };
  }
  return { ...base, action: 'upload', detail: `${prefix}uploaded (${file.size} bytes, SHA-256 ${hash.sha256.slice(0, 16)}…, ${verdict.status})${then}` };
}

/**
 * The file changed its stat since its receipt: the same bytes are still that recording, by the run's
 * own rule (identity.ts sameBytes: file, sidecar, companions). The report differs from the copy this
 * had only where that copy disagreed with the run: a changed companion or an older build's sidecar.
 */
async function sameBytesAs(card: CardFile, rows: RecordingRow[]): Promise<RecordingRow | undefined> {
  const hash = await hashFileOffThread(card.file.absPath, [{ offset: 0, length: card.file.size }], card.file.size);
  const sidecarBytes = card.file.sidecarPath ? await readFile(card.file.sidecarPath) : undefined;
  const read = { fileSha: hash.sha256, size: card.file.size, sidecarBytes, companions: await companionDigests(card.file) };
  return rows.find((row) => sameBytes(row, read));
}

/**
 * What a run would do with a file the journal already has a row for, by what the row holds
 * (src/dock/states.ts `evidence`, declared with each state: a new state is classified there, and
 * the switch below fails to compile until it says what a run does with it).
 */
async function knownRow(config: DockConfig, journal: Journal, card: CardFile, row: RecordingRow, base: Pick<DryRunEntry, 'bay' | 'path'>, now: number): Promise<DryRunEntry> {
  const evidence = STATE_TABLE[row.state].evidence;
  switch (evidence) {
    case 'receipted': return receipted(config, row, base);
    case 'setAside': return { ...base, action: 'quarantine', code: row.reasonCode ?? 'unknown', detail: `stays quarantined: ${row.reason ?? ''} (bodycam quarantine retry after fixing the cause)` };
    case 'hashed':
    case 'sending': {
      const flag = flagOf(row);
      const segments = journal.segments(row.key);
      return { ...base, ...(row.recordingId ? { recordingId: row.recordingId } : {}), action: flag ? 'flag' : 'upload', ...(flag ? { code: flag } : {}),
        detail: `upload continues: ${segments.filter((s) => s.acked).length} of ${segments.length} segments acknowledged${flag ? `, flagged ${flag} (never wiped)` : ''}` };
    }
    case 'unhashed': return fresh(config, card, base, now, `known to the journal (${row.state})`);
    default: { const unclassified: never = evidence; throw new Error(`state ${row.state} holds ${String(unclassified)}: src/dock/dryRun.ts knownRow does not classify it`); }
  }
}

export async function dryRun(config: DockConfig, options: { now?: () => number } = {}): Promise<DryRunResult> {
  const bayRoot = await lstat(config.bays).catch(() => undefined);
  if (!bayRoot?.isDirectory()) throw new UsageError(`bays folder ${config.bays} does not exist or is not a folder: create it (mkdir -p ${config.bays}) or pass the right --bays`);
  let journal: Journal | undefined;
  try { journal = Journal.openReadOnly(config.stateDir); } catch (error) {
    if ((error as { code?: string }).code !== 'E_NO_JOURNAL') throw error;
  }
  try {
    // The run itself would refuse: say so, as it would.
    // (A server key file others may write is refused whether or not this run would wipe.)
    const keyConfirmed = confirmedKey(config, journal);
    if (config.wipeAfterIngest && !keyConfirmed) throw new UsageError(UNCONFIRMED_KEY_LINE);
    const now = (options.now ?? Date.now)();
    const inventory = await walkBays(config.bays);
    const entries: DryRunEntry[] = [];
    for (const bay of inventory.bays) {
      for (const s of bay.skipped) {
        entries.push({ bay: bay.bay, path: s.path, action: 'skip', code: s.code, detail: `${s.reason}${ATTENTION_SKIPS.has(s.code) ? ' (attention)' : ''}` });
      }
      if (bay.skippedCount > bay.skipped.length) entries.push({ bay: bay.bay, path: '…', action: 'skip', detail: `${bay.skippedCount - bay.skipped.length} more path(s) left alone` });
    }
    for (const card of inventory.files) {
      const base = { bay: card.bay, path: card.file.relPath };
      const match = matchJournal(journal, card);
      if (match.kind === 'row') {
        entries.push(await knownRow(config, journal!, card, match.row, base, now));
      } else if (match.kind === 'changedAfterHash' && card.serial === NO_SERIAL && !(await holdsHashedBytes(match.row, card.file.absPath).catch(() => true))) {
        // The agent's rule (identity.ts settleWhoseFile): a fresh run has seen no file of this docking.
        entries.push(await fresh(config, card, base, now, 'another camera without a serial has an upload open at this path: this file is a recording of its own, that upload stays open'));
      } else if (match.kind === 'changedAfterHash') {
        entries.push(await fresh(config, card, base, now, `rewritten after it was hashed: that upload is closed (${QUARANTINE_CODES.fileChanged}) and this is a new version`));
      } else if (match.kind === 'verify') {
        const same = await sameBytesAs(card, match.rows);
        entries.push(same ? receipted(config, same, base) : await fresh(config, card, base, now, 'new bytes at a receipted path: a new version'));
      } else {
        entries.push(await fresh(config, card, base, now, ''));
      }
    }
    entries.sort((a, b) => a.bay.localeCompare(b.bay) || a.path.localeCompare(b.path));
    const counts = { upload: 0, flag: 0, wipe: 0, keep: 0, skip: 0, quarantine: 0, settle: 0 } satisfies Record<DryRunAction, number>;
    for (const e of entries) counts[e.action]++;
    return { entries, counts, serverContacted: false };
  } finally {
    journal?.close();
  }
}
