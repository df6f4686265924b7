/**
 * Every error the ingest server can answer, in one table (RFC 9457 problem
 * details). `code` is stable and is what a dock acts on; `permanent` tells the
 * dock whether retrying can ever help (a permanent problem quarantines the job).
 * ProblemError is such a problem as an error, on either side of the wire.
 */
import { BodycamError, type ErrorOptions } from '../errors.js';

export interface ProblemSpec {
  status: number;
  title: string;
  permanent: boolean;
}

export const PROBLEMS = {
  bad_request:            { status: 400, title: 'Malformed request', permanent: true },
  invalid_id:             { status: 400, title: 'Invalid recording id or segment index', permanent: true },
  invalid_manifest:       { status: 400, title: 'Manifest does not match the schema', permanent: true },
  bad_signature:          { status: 400, title: 'Manifest signature does not verify', permanent: true },
  dock_key_mismatch:      { status: 400, title: 'Dock key differs from the key pinned for this dock id', permanent: true },
  unsupported_protocol:   { status: 400, title: 'Unsupported protocol version', permanent: true },
  invalid_challenge:      { status: 400, title: 'Possession challenge is malformed (nonce, segments)', permanent: true },
  missing_digest:         { status: 400, title: 'Content-Digest with sha-256 is required', permanent: true },
  unauthorized:           { status: 401, title: 'Missing or unknown bearer token', permanent: true },
  forbidden:              { status: 403, title: 'The manifest is not this dock\'s', permanent: true },
  admin_only:             { status: 403, title: 'This needs the admin token', permanent: true },
  not_found:              { status: 404, title: 'No such recording', permanent: true },
  segment_out_of_plan:    { status: 404, title: 'Segment index outside the plan', permanent: true },
  attachment_out_of_plan: { status: 404, title: 'Attachment index not in the recording\'s manifest', permanent: true },
  no_such_route:          { status: 404, title: 'Not a route of this protocol', permanent: true },
  timeout:                { status: 408, title: 'Request body too slow', permanent: false },
  conflict:               { status: 409, title: 'Recording id exists with different content', permanent: true },
  incomplete:             { status: 409, title: 'Segments are missing', permanent: false },
  length_mismatch:        { status: 400, title: 'Body length differs from the plan', permanent: true },
  payload_too_large:      { status: 413, title: 'Body exceeds the limit', permanent: true },
  unsupported_media_type: { status: 415, title: 'Unsupported content type', permanent: true },
  range_not_satisfiable:  { status: 416, title: 'Range not satisfiable', permanent: true },
  digest_mismatch:        { status: 422, title: 'Body does not match its digest', permanent: false },
  whole_digest_mismatch:  { status: 422, title: 'Assembled file does not match the manifest SHA-256', permanent: true },
  rate_limited:           { status: 429, title: 'Too many requests', permanent: false },
  internal:               { status: 500, title: 'Internal server error', permanent: false },
  blob_damaged:           { status: 500, title: 'Stored bytes failed their integrity check and were not served', permanent: false },
  record_damaged:         { status: 500, title: 'The stored recording record no longer matches its signed receipt; nothing was served', permanent: false },
  unavailable:            { status: 503, title: 'Service unavailable', permanent: false },
  store_unavailable:      { status: 503, title: 'The object store holding the blobs cannot be reached', permanent: false },
  insufficient_storage:   { status: 507, title: 'Store is full', permanent: false },
} as const satisfies Record<string, ProblemSpec>;

export type ProblemCode = keyof typeof PROBLEMS;

/** RFC 9457 body, with this protocol's `code` extension member. */
export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  code: ProblemCode | string;
  detail?: string;
  instance?: string;
  [extension: string]: unknown;
}

export function problemType(code: string): string {
  return `https://bodycam-dock.invalid/problems/${code}`;
}

/**
 * Whether a dock should give up on a job after this answer. Unknown codes fall
 * back to the status: 4xx other than 408/409/429 is permanent (docs/dock.md, "Retry").
 */
export function isPermanentProblem(status: number, code?: string): boolean {
  if (isProblemCode(code)) return PROBLEMS[code].permanent;
  if (status === 408 || status === 409 || status === 429) return false;
  return status >= 400 && status < 500;
}

/** The stable internal code of every ProblemError; what the problem is says `problemCode`. */
export const PROBLEM_ERROR_CODE = 'E_PROBLEM';

/**
 * A problem of the protocol as an error: one the server answers (its routes throw it and its one
 * error handler writes `body()`), or one a dock received (`ProblemError.received`, after the
 * per-request retries). The internal `code` is always E_PROBLEM; the protocol's code is
 * `problemCode`, which for a received answer may be one this table does not know (another
 * server's, or `http_<status>` for a body that named none).
 */
export class ProblemError extends BodycamError {
  readonly problemCode: string;
  readonly status: number;
  /** Whether retrying can ever help: the table's word for a known code, else by the status (isPermanentProblem). */
  readonly permanent: boolean;
  /** Extension members of the body (index, expectedLength, missing, …). */
  readonly extension: Record<string, unknown>;
  /** Seconds the answer asks to wait before a retry (Retry-After; 429, 503, 507). */
  readonly retryAfter?: number;

  constructor(code: ProblemCode, detail?: string, options: ErrorOptions & { extension?: Record<string, unknown>; retryAfter?: number; received?: { status: number; problemCode: string } } = {}) {
    super(PROBLEM_ERROR_CODE, detail ?? PROBLEMS[code].title, options);
    const { received } = options;
    this.problemCode = received?.problemCode ?? code;
    this.status = received?.status ?? PROBLEMS[code].status;
    this.permanent = received ? isPermanentProblem(received.status, received.problemCode) : PROBLEMS[code].permanent;
    this.extension = options.extension ?? {};
    if (options.retryAfter !== undefined) this.retryAfter = options.retryAfter;
  }

  /** An answer a dock received: the status and code it came with, known to this table or not (a proxy's 503 names none). */
  static received(status: number, problemCode: string, message: string, options: ErrorOptions & { retryAfterMs?: number } = {}): ProblemError {
    const { retryAfterMs, ...rest } = options;
    return new ProblemError('internal', message, { ...rest, received: { status, problemCode }, ...(retryAfterMs !== undefined ? { retryAfter: retryAfterMs / 1000 } : {}) });
  }

  /** Milliseconds to wait before a retry, when the answer said (the dock's retry policy takes these). */
  get retryAfterMs(): number | undefined {
    return this.retryAfter === undefined ? undefined : this.retryAfter * 1000;
  }

  body(instance?: string): ProblemBody {
    return {
      type: problemType(this.problemCode),
      title: isProblemCode(this.problemCode) ? PROBLEMS[this.problemCode].title : `HTTP ${this.status}`,
      status: this.status,
      code: this.problemCode,
      detail: this.message,
      ...(instance ? { instance } : {}),
      ...this.extension,
    };
  }
}

export function isProblemCode(code: unknown): code is ProblemCode {
  return typeof code === 'string' && Object.prototype.hasOwnProperty.call(PROBLEMS, code);
}
