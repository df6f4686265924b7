/**
 * How a job can end other than in success, each telling the scheduler what to
 * do next: paused (camera undocked: wait for it), transient (back to the
 * journal with backoff), permanent (quarantine with the reason).
 */
import { BodycamError, IntegrityError, InputError, isFileGone, type ErrorOptions } from '../errors.js';
import { isProblemCode, ProblemError } from '../protocol/problems.js';
import { attentionCodeOf, attentionReason } from './attention.js';

/** The camera (or the file) went away mid-job: not an error, the job waits for a re-dock. */
export class PausedError extends BodycamError {
  constructor(message: string, options: ErrorOptions = {}) {
    super('E_DOCK_PAUSED', message, options);
  }
}

/** A file without a sidecar grew again after it had settled: it was not finished after all. */
export class FileGrowingError extends BodycamError {
  constructor(message: string) {
    super('E_FILE_GROWING', message);
  }
}

/**
 * A hashed upload of a camera without a serial finds other bytes at its file's path: perhaps
 * another such camera's file (src/dock/identity.ts settleWhoseFile). The job stops without an
 * attempt and the scan compares the file before anything is closed.
 */
export class NotThisFileError extends BodycamError {
  constructor(message: string) {
    super('E_NOT_THIS_FILE', message);
  }
}

/** The server answered with a problem (RFC 9457) after the per-request retries: ProblemError.received (src/protocol/problems.ts). */
export { ProblemError } from '../protocol/problems.js';

/** The server could not be reached (connection refused/reset, timeout) after the per-request retries. */
export class TransportError extends BodycamError {
  // The endpoint is down or mistyped: the message says which, the person can act on it (not a bug to report).
  override readonly userFacing = true;
  constructor(message: string, options: ErrorOptions = {}) {
    super('E_DOCK_TRANSPORT', message, options);
  }
}

export type Disposition = 'paused' | 'transient' | 'permanent';

/**
 * Problems that say the DOCK is misconfigured (its token, its dock id, its key, its protocol
 * version), not that a recording is bad (src/dock/attention.ts has the list). Quarantining
 * evidence for them would strand every recording behind a typo in a token file; they are retried
 * with backoff instead, and the dock shows `attention` with what to fix at the first such answer.
 */
export function isDockLevelProblem(error: unknown): error is ProblemError {
  return error instanceof ProblemError && attentionOf(error) !== undefined;
}

/** The attention code of a received problem, with the request it answered (client.ts words it `<METHOD> <path>: <detail>`). */
function attentionOf(error: ProblemError): ReturnType<typeof attentionCodeOf> {
  const said = /^(\S+) (\S+): ([^]*)$/.exec(error.message);
  return attentionCodeOf(error.status, error.problemCode, said ? { method: said[1]!, path: said[2]!, detail: said[3]! } : { method: '', path: '', detail: error.message });
}

/**
 * A 404 about a recording the dock created moments before in the same job (every upload starts with
 * POST /v1/recordings, which the server answered): the server does not find it under the caller's
 * dock id. That says something about the server's view of the caller, not about the evidence: a
 * server whose token table has not followed a token moved between docks yet (pg/pgTokens.ts polls
 * every 2 s), a server behind the same URL that is not the one holding the state, or an endpoint
 * URL whose path is not the server's (a proxy's bare 404). The job is retried with backoff (its
 * next attempt creates the recording again, idempotently) instead of quarantining the recording.
 * A 404 for the route itself or at the create is a dock-level problem as well (server_not_found in
 * src/dock/attention.ts: shown at once, /healthz 503); either way no 404 quarantines evidence.
 */
export function isServerLostRecording(error: unknown): error is ProblemError {
  return error instanceof ProblemError && error.status === 404 && !isAttachmentOutOfPlan(error) && (error.problemCode === 'not_found' || !isProblemCode(error.problemCode));
}

/**
 * The server holds this recording with other attachments than the dock's manifest lists
 * (`attachment_out_of_plan`; a server from before that code answers `not_found` "recording … has no
 * attachment N"). Another plan for the same id is never reconciled by a retry, as a `conflict` is
 * not: the recording is quarantined (kept on the card, shown, exportable) instead of retried unseen.
 */
export function isAttachmentOutOfPlan(error: ProblemError): boolean {
  if (error.problemCode === 'attachment_out_of_plan') return true;
  return error.status === 404 && error.problemCode === 'not_found' && /^PUT \S+\/attachments\/\d+\/segments\/\d+: recording \S+ has no attachment \d+/.test(error.message);
}

export function dispositionOf(error: unknown): Disposition {
  if (error instanceof PausedError) return 'paused';
  if (isDockLevelProblem(error)) return 'transient';
  if (isServerLostRecording(error)) return 'transient';
  if (error instanceof ProblemError) return error.permanent || isAttachmentOutOfPlan(error) ? 'permanent' : 'transient';
  if (error instanceof TransportError) return 'transient';
  // Before the file-gone test, which follows the cause chain: a typed local verdict keeps its
  // meaning whatever it wraps. A companion that vanished while it was sent is closed
  // `file_changed` (InputError E_FILE_CHANGED) with the read's ENOENT as its cause; read as a
  // pause it left the row `uploading` and, once no scan found the row again, `--once` exited 0.
  if (error instanceof IntegrityError || error instanceof InputError) return 'permanent';
  if (isFileGone(error)) return 'paused';
  return 'transient';
}

/** One line a person can read in the status output. */
export function reasonOf(error: unknown): string {
  if (isDockLevelProblem(error)) return `server: ${attentionReason(attentionOf(error)!, `${error.problemCode} (${error.status})${error.status === 404 ? `: ${error.message}` : ''}`)}`;
  if (isServerLostRecording(error)) return `server: ${error.problemCode} (${error.status}): ${error.message}: the server does not find what it acknowledged (a token moved between docks not yet followed, or another server behind --endpoint); retried, never quarantined`;
  if (error instanceof ProblemError) return `server: ${error.problemCode} (${error.status}): ${error.message}`;
  if (error instanceof Error) return error.message;
  return String(error);
}

/** Stable machine codes of a quarantine; docs/dock.md says when each happens and what a person should do. */
export const QUARANTINE_CODES = {
  zeroByte: 'zero_byte',
  notMedia: 'not_media',
  receiptInvalid: 'receipt_invalid',
  fileChanged: 'file_changed',
  fileReplaced: 'file_replaced',
  /** The file left a docked card (renamed, moved, deleted) before its receipt: src/dock/vanished.ts. */
  fileVanished: 'file_vanished',
  integrityError: 'integrity_error',
  inputError: 'input_error',
} as const;

const LOCAL_CODES: Record<string, string> = {
  E_RECEIPT_INVALID: QUARANTINE_CODES.receiptInvalid,
  E_NOT_MEDIA: QUARANTINE_CODES.notMedia,
  E_FILE_CHANGED: QUARANTINE_CODES.fileChanged,
  E_FILE_GREW: QUARANTINE_CODES.fileChanged,
  E_FILE_REPLACED: QUARANTINE_CODES.fileReplaced,
};

/** The stable code a permanent error quarantines with: `server_<problem code>` for the server's word, else a local code. */
export function reasonCodeOf(error: unknown): string {
  if (error instanceof ProblemError) return `server_${isAttachmentOutOfPlan(error) ? 'attachment_out_of_plan' : error.problemCode}`;
  if (error instanceof BodycamError && LOCAL_CODES[error.code]) return LOCAL_CODES[error.code]!;
  if (error instanceof IntegrityError) return QUARANTINE_CODES.integrityError;
  return QUARANTINE_CODES.inputError;
}
