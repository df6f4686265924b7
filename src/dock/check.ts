/**
 * `bodycam check` (like `rclone check`): every file on the docked cameras, and every receipted
 * recording in the journal, against the server. A file on a card is `held` only when the server
 * just proved it holds exactly those bytes (a fresh proof of possession, docs/protocol.md, over the
 * file read from the card now, and over its sidecar); `differing` when the card's bytes are not the
 * receipted ones or the server's answer does not match them; `missing` when the server has no
 * complete recording of it, or lost part of it since its receipt (the card then holds the good bytes:
 * `--resend` sends the parts the server lists missing again, src/dock/resend.ts). Nothing else is
 * uploaded, nothing deleted, the journal is read-only.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Logger } from '../log.js';
import { createLogger } from '../log.js';
import type { RecordingManifest } from '../protocol/types.js';
import { IngestClient } from './client.js';
import type { DockConfig } from './config.js';
import { ProblemError } from './errors.js';
import { closeWhenUnread, hashFileOffThread, hashThroughDescriptorOffThread } from './hasher.js';
import { matchJournal, walkBays, type BayListing, type CardFile } from './inventory.js';
import { MAY_HOLD_EVIDENCE, mayHoldEvidence, type SkipCode } from '../protocol/cameraStorage/index.js';
import { isMediaExtension } from '../protocol/fileKinds.js';
import { Journal, type RecordingRow } from './journal.js';
import { TokenBucket } from './rateLimit.js';
import { resendLostParts, type ResendOutcome } from './resend.js';
import { chooseChallengeSegments, openNoFollow, possessionProblems } from './wipe.js';

/**
 * `left`: a path on a card the dock leaves alone (docs/dock.md "Skipped files") that may hold
 * evidence the server never got — a symlink, a hidden or temporary file with a media name, a folder
 * not read, a listing cut short: the card is not safe to reformat. `ignored`: left alone and not
 * evidence (a maker's thumbnails, a stray .json, a hidden folder, a host's
 * AppleDouble `._` file), listed so that nothing is passed over without a word. The camera's own
 * folder (`.system`, device_internal) is on every card and is not listed.
 */
export type CheckVerdict = 'held' | 'missing' | 'differing' | 'left' | 'ignored';

export interface CheckEntry {
  /** `card`: a file on a docked camera; `journal`: a receipted recording no docked camera holds now. */
  where: 'card' | 'journal';
  bay?: string;
  serial: string;
  /** Path on the card, relative to the camera's root. */
  path: string;
  verdict: CheckVerdict;
  detail: string;
  recordingId?: string;
}

export interface CheckResult {
  entries: CheckEntry[];
  counts: Record<CheckVerdict, number>;
  /** True when every file on the cards is held, nothing on them that may be evidence is left unread, and no receipted recording is missing from the server. */
  allHeld: boolean;
}

async function sidecarBytes(card: CardFile): Promise<Buffer | undefined> {
  return card.file.sidecarPath ? readFile(card.file.sidecarPath) : undefined;
}

/** The receipted row this card file is (the journal's own match, then by bytes), if any. */
async function receiptedRow(journal: Journal | undefined, card: CardFile): Promise<{ row?: RecordingRow; note?: string }> {
  const match = matchJournal(journal, card);
  if (match.kind === 'row') {
    if (match.row.state === 'completed' && match.row.manifestJson) return { row: match.row };
    if (match.row.state === 'quarantined') return { note: `quarantined (${match.row.reasonCode ?? 'unknown'}): ${match.row.reason ?? ''}` };
    return { note: `not receipted yet (${match.row.state})` };
  }
  if (match.kind === 'verify') {
    // Stat changed since the receipt: the same bytes still are that recording.
    const hash = await hashFileOffThread(card.file.absPath, [{ offset: 0, length: card.file.size }], card.file.size);
    const row = match.rows.find((r) => (JSON.parse(r.manifestJson!) as RecordingManifest).file.sha256 === hash.sha256);
    return row ? { row } : { note: 'new bytes at a receipted path: a new version, never uploaded' };
  }
  if (match.kind === 'changedAfterHash') return { note: 'rewritten after it was hashed: never uploaded' };
  return { note: journal ? 'not in the journal: never uploaded' : 'no journal: never uploaded' };
}

/** Prove, now, that the server holds the card's bytes of this receipted recording. */
async function prove(client: IngestClient, row: RecordingRow, card: CardFile, options: { resend?: boolean; round?: number } = {}): Promise<{ verdict: CheckVerdict; detail: string }> {
  const manifest = JSON.parse(row.manifestJson!) as RecordingManifest;
  const opened = await openNoFollow(card.file.absPath);
  if (!('handle' in opened)) return { verdict: 'differing', detail: 'the file went away or became a symlink while checked' };
  const nonce = randomBytes(32);
  const challenged = chooseChallengeSegments(manifest.segments.map((s) => s.index));
  let hashed;
  try {
    hashed = await hashThroughDescriptorOffThread(opened.handle, manifest.segments, nonce, new Set(challenged));
  } finally {
    await closeWhenUnread(opened.handle);
  }
  if (hashed.sha256 !== manifest.file.sha256 || hashed.size !== manifest.file.size) {
    return { verdict: 'differing', detail: `the card's bytes (SHA-256 ${hashed.sha256.slice(0, 16)}…, ${hashed.size} bytes) are not the receipted ones (${manifest.file.sha256.slice(0, 16)}…)` };
  }
  const sidecar = await sidecarBytes(card);
  const sidecarSha = sidecar ? createHash('sha256').update(sidecar).digest('hex') : undefined;
  const expectedSidecar = manifest.device.sidecarSha256;
  if ((expectedSidecar ?? undefined) !== sidecarSha) {
    return { verdict: 'differing', detail: sidecar ? (expectedSidecar ? 'the sidecar on the card is not the one the server holds' : 'the card has a sidecar the server never got') : 'the sidecar the server holds is no longer on the card' };
  }
  const withSidecar = sidecar !== undefined;
  // The card holds the receipted bytes (checked above): from here on, anything wrong is the server's copy.
  // A complete recording lists what the server found damaged (or lost) since: the challenge alone may miss it.
  const lost = await lostOnServer(client, row.recordingId!);
  if (lost) {
    if (!options.resend) return { verdict: 'missing', detail: lostCopyDetail(lost) };
    const sent = await resendLostParts(client, manifest, card.file.absPath);
    const still = await lostOnServer(client, row.recordingId!);
    if (still) return { verdict: 'missing', detail: `the server lost ${lost} since the receipt; ${nothingSent(sent) ? 'nothing of it could be sent again' : 'sent again from the card, but the server still lacks'} ${still}` };
  }
  const challenge = { nonce: nonce.toString('hex'), segments: challenged, ...(withSidecar ? { sidecar: true } : {}) };
  let answer: unknown;
  try {
    answer = await client.possession(row.recordingId!, challenge);
  } catch (error) {
    if (error instanceof ProblemError && (error.status === 404 || error.problemCode === 'incomplete')) {
      return { verdict: 'missing', detail: `receipted, but the server answers ${error.problemCode} (${error.status}): it does not hold it` };
    }
    // A blob that fails the server's verified read is marked missing there: a --resend run heals it.
    if (error instanceof ProblemError && error.problemCode === 'blob_damaged') {
      // Each round heals at least the blob this answer named, so the rounds are bounded by the plan.
      const round = (options.round ?? 0) + 1;
      if (options.resend && round <= manifest.segments.length + (manifest.attachments?.length ?? 0)) return prove(client, row, card, { resend: true, round });
      return { verdict: 'missing', detail: lostCopyDetail(`its copy (the server's answer: ${error.message})`) };
    }
    // The card already matched the receipt above: what failed is the server's copy, not the card.
    if (error instanceof ProblemError && error.problemCode === 'record_damaged') {
      return { verdict: 'missing', detail: `the server's copy is damaged (${error.problemCode}): the card holds the receipted bytes; keep it until the server holds them again` };
    }
    if (error instanceof ProblemError) return { verdict: 'differing', detail: `the server refused the proof: ${error.problemCode} (${error.status}): ${error.message}` };
    throw error;
  }
  const problems = possessionProblems(answer, {
    recordingId: row.recordingId!, nonce: challenge.nonce, segments: hashed.answers,
    ...(withSidecar ? { sidecar: createHash('sha256').update(nonce).update(sidecar).digest('hex') } : {}),
  });
  if (problems.length) return { verdict: 'differing', detail: `the server's proof does not match the receipted bytes the card holds (the server's copy differs): ${problems.join('; ')}` };
  const healed = lost ? `; the server had lost ${lost}: sent again from the card` : '';
  return { verdict: 'held', detail: `proved: ${challenged.length} of ${manifest.segments.length} segment(s)${withSidecar ? ' and the sidecar' : ''} answered for a fresh nonce${healed}` };
}

function nothingSent(sent: ResendOutcome): boolean {
  return sent.segments.length === 0 && sent.attachments.length === 0;
}

function lostCopyDetail(lost: string): string {
  return `the server lost ${lost} since the receipt; the card holds the receipted bytes: \`bodycam check --resend\` sends them again`;
}

/** What a complete recording's server answer lists as lost (damaged or gone since its receipt), undefined when nothing. */
async function lostOnServer(client: IngestClient, recordingId: string): Promise<string | undefined> {
  try {
    const held = await client.getRecording(recordingId);
    return held.state === 'complete' ? lostParts(held) : undefined;
  } catch (error) {
    // Not there at all: the proof's own answer says so.
    if (error instanceof ProblemError && error.status === 404) return undefined;
    throw error;
  }
}

/** What the server says it lacks of a recording ("segment(s) 0, 3 and 1 attachment segment(s)"), undefined when nothing. */
function lostParts(held: { missing?: unknown; missingAttachments?: unknown }): string | undefined {
  // An answer without a `missing` list is no word that anything is held.
  if (!Array.isArray(held.missing)) return 'an unknown set of segments (its answer has no missing list)';
  const segments = held.missing;
  const attachments = Array.isArray(held.missingAttachments) ? held.missingAttachments : [];
  const parts = [segments.length ? `segment(s) ${segments.slice(0, 10).join(', ')}${segments.length > 10 ? ` and ${segments.length - 10} more` : ''}` : '', attachments.length ? `${attachments.length} attachment segment(s)` : ''].filter(Boolean);
  return parts.length ? parts.join(' and ') : undefined;
}

/** What the check saw on the docked cameras: each camera's bay, and each path on it (for "where is it now"). */
interface DockedNow { bayOf: Map<string, string>; paths: Set<string> }

function dockedNow(files: readonly CardFile[]): DockedNow {
  const bayOf = new Map<string, string>();
  const paths = new Set<string>();
  for (const card of files) {
    bayOf.set(card.serial, card.bay);
    paths.add(`${card.serial}\u0000${card.file.relPath}`);
  }
  return { bayOf, paths };
}

/** Where a receipted recording that no card file proved is now, in what the check saw (never a guess). */
function whereNow(row: RecordingRow, docked: DockedNow): string {
  if (row.state === 'wiped') return 'wiped from the camera';
  const bay = docked.bayOf.get(row.serial);
  if (bay === undefined) return `its camera ${row.serial} is not docked now`;
  if (docked.paths.has(`${row.serial}\u0000${row.relPath}`)) return `its camera is docked in ${bay}, but the file at that path is not the receipted bytes now (rewritten since: the new bytes are their own row)`;
  return `its camera is docked in ${bay}, but it holds no recording at that path now (not wiped by this dock)`;
}

/** A receipted recording no docked camera holds: the server's word (no bytes here to prove against). */
async function askServer(client: IngestClient, row: RecordingRow, docked: DockedNow): Promise<{ verdict: CheckVerdict; detail: string }> {
  try {
    const held = await client.getRecording(row.recordingId!);
    // A complete recording lists the blobs found damaged (or lost) since its receipt: `complete` alone is not held.
    const lost = lostParts(held);
    const wiped = row.state === 'wiped';
    const where = whereNow(row, docked);
    if (held.state === 'complete' && !lost) return { verdict: 'held', detail: `${where}; the server has it complete (no bytes here to prove against)` };
    if (held.state === 'complete') {
      return { verdict: 'missing', detail: wiped ? `WIPED from the camera and the server lost ${lost} since the receipt: restore from a backup` : `${where}; the server lost ${lost} since the receipt` };
    }
    return { verdict: 'missing', detail: `${wiped ? 'WIPED from the camera and ' : ''}the server has it incomplete (${lost ?? 'nothing listed missing'})` };
  } catch (error) {
    if (error instanceof ProblemError && error.status === 404) return { verdict: 'missing', detail: `${row.state === 'wiped' ? 'WIPED from the camera and ' : ''}not on the server (404)` };
    throw error;
  }
}

export async function checkAgainstServer(config: DockConfig, deps: { logger?: Logger; resend?: boolean } = {}): Promise<CheckResult> {
  const logger = deps.logger ?? createLogger({ component: 'check', dockId: config.dockId }, 'silent');
  const client = new IngestClient({ endpoint: config.endpoint, token: config.token, dockId: config.dockId, requestTimeoutMs: config.requestTimeout * 1000, retries: config.requestRetries, bucket: new TokenBucket(0), logger });
  let journal: Journal | undefined;
  try { journal = Journal.openReadOnly(config.stateDir); } catch (error) {
    if ((error as { code?: string }).code !== 'E_NO_JOURNAL') throw error;
  }
  try {
    const inventory = await walkBays(config.bays);
    const entries: CheckEntry[] = [];
    const onCards = new Set<string>();
    const docked = dockedNow(inventory.files);
    for (const card of inventory.files) {
      const base = { where: 'card' as const, bay: card.bay, serial: card.serial, path: card.file.relPath };
      const { row, note } = await receiptedRow(journal, card);
      if (!row) { entries.push({ ...base, verdict: 'missing', detail: note! }); continue; }
      onCards.add(row.key);
      // A server that cannot be reached (TransportError) ends the check: no verdict is better than a wrong one.
      entries.push({ ...base, recordingId: row.recordingId!, ...await prove(client, row, card, { resend: deps.resend === true }) });
    }
    if (journal) {
      for (let after = 0; ;) {
        const page = journal.listReceipted(after);
        if (page.length === 0) break;
        for (const row of page) {
          if (onCards.has(row.key)) continue;
          entries.push({ where: 'journal', serial: row.serial, path: row.relPath, ...(row.bay ? { bay: row.bay } : {}), recordingId: row.recordingId!, ...await askServer(client, row, docked) });
        }
        after = page[page.length - 1]!.rowid;
      }
    }
    for (const bay of inventory.bays) entries.push(...leftOnCard(bay));
    const counts = { held: 0, missing: 0, differing: 0, left: 0, ignored: 0 } satisfies Record<CheckVerdict, number>;
    for (const e of entries) counts[e.verdict]++;
    return { entries, counts, allHeld: counts.missing === 0 && counts.differing === 0 && counts.left === 0 };
  } finally {
    journal?.close();
  }
}

/** What the walker left alone on one docked card, as rows: nothing on a card is passed over in silence. */
function leftOnCard(bay: BayListing): CheckEntry[] {
  const base = { where: 'card' as const, bay: bay.bay, serial: bay.serial ?? 'unknown' };
  // The camera's own folder (.system) is on every card and never evidence: not a row, or every check would list it.
  const rows: CheckEntry[] = bay.skipped.filter((skip) => skip.code !== 'device_internal').map((skip) => mayHoldEvidence(skip)
    ? { ...base, path: skip.path, verdict: 'left' as const, detail: `${skip.code}: ${skip.reason}; never uploaded: the card may hold evidence the server does not have` }
    : { ...base, path: skip.path, verdict: 'ignored' as const, detail: `${skip.code}: ${skip.reason}` });
  // The walker lists a bounded number of skips and counts the rest by reason: an unlisted hidden file
  // has no name to judge by, so it counts as one that may be evidence.
  const listed = new Map<string, number>();
  for (const skip of bay.skipped) listed.set(skip.code, (listed.get(skip.code) ?? 0) + 1);
  for (const [code, count] of Object.entries(bay.skippedByCode) as Array<[SkipCode, number]>) {
    const unlisted = count - (listed.get(code) ?? 0);
    if (unlisted <= 0 || code === 'device_internal') continue;
    const evidence = MAY_HOLD_EVIDENCE.has(code);
    rows.push({ ...base, path: '…', verdict: evidence ? 'left' : 'ignored', detail: `${code}: ${unlisted} more path(s) left alone, not listed${evidence ? ': look at the card (bodycam dock --dry-run)' : ''}` });
  }
  return rows;
}
