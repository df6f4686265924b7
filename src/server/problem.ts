/**
 * A request that ends in an RFC 9457 problem. Routes throw ProblemError (one class for both sides
 * of the wire: src/protocol/problems.ts); the app's one error handler turns it, the server's own
 * errors and fastify's into application/problem+json with the stable `code` from the same table,
 * through toProblem below: the one place an internal error becomes a protocol problem.
 */
import type { FastifyError } from 'fastify';
import { EnvironmentError, errnoCode } from '../errors.js';
import { ProblemError, type ProblemCode } from '../protocol/problems.js';
import { isStorageFull } from './custody/custodyLog.js';
import { SERVER_ERROR_CODES } from './errorCodes.js';
import { isDatabaseUnavailable } from './pg/pgState.js';
import { STORE_UNAVAILABLE } from './store/s3Errors.js';

export { isProblemCode, ProblemError } from '../protocol/problems.js';

/** The server's internal errors that a request may end in, and the problem each answers. */
const INTERNAL_PROBLEMS: Readonly<Record<string, ProblemCode>> = {
  [SERVER_ERROR_CODES.invalidId]: 'invalid_id',
  [SERVER_ERROR_CODES.bodyLength]: 'length_mismatch',
  [SERVER_ERROR_CODES.bodyDigest]: 'digest_mismatch',
  [SERVER_ERROR_CODES.dockKeyPinRace]: 'dock_key_mismatch',
  [SERVER_ERROR_CODES.storedLength]: 'record_damaged',
};

/** Seconds a dock is asked to wait when the data dir is full (space may be freed at any time). */
const RETRY_DISK_FULL_SECONDS = 30;

/** Seconds a dock is asked to wait while the database is away (a restart takes seconds). */
const RETRY_DATABASE_SECONDS = 5;

/** Seconds a dock is asked to wait when the object store cannot be reached (a gateway restarts in seconds). */
const RETRY_OBJECT_STORE_SECONDS = 5;

/**
 * What an HTTP request that ended in this error answers: the one table from errors to problems.
 * A ProblemError is its own answer; the server's internal errors (src/server/errorCodes.ts) and
 * fastify's map by code; a full disk, an absent database or object store ask the dock to come
 * back; anything else is `internal`, with the detail in the log only.
 */
export function toProblem(error: Error): ProblemError {
  if (error instanceof ProblemError) return error;
  // ENOSPC / EDQUOT from a file write, SQLITE_FULL from any sqlite file: nothing half-done was kept
  // (each write cleans up after itself), and the next attempt after space returns goes through.
  if (isStorageFull(error)) return new ProblemError('insufficient_storage', 'the server\'s data dir is full; retry later', { cause: error, retryAfter: RETRY_DISK_FULL_SECONDS });
  // The database is down or restarting: nothing was half-done (each write is one transaction), retry soon.
  if (isDatabaseUnavailable(error)) return new ProblemError('unavailable', 'the server\'s database is unavailable; retry later', { cause: error, retryAfter: RETRY_DATABASE_SECONDS });
  // The object store (S3) is away: a blob write is one PUT, so nothing half-done is in the bucket.
  if (error instanceof EnvironmentError && error.code === STORE_UNAVAILABLE) return new ProblemError('store_unavailable', 'the object store is unavailable; retry later', { cause: error, retryAfter: RETRY_OBJECT_STORE_SECONDS });
  const code = (error as FastifyError).code;
  const status = (error as FastifyError).statusCode;
  switch (code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE': return new ProblemError('payload_too_large', 'manifest bodies are limited in size', { cause: error });
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE': return new ProblemError('unsupported_media_type', error.message, { cause: error });
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_BAD_URL': return new ProblemError('bad_request', error.message, { cause: error });
  }
  if ((error as FastifyError).validation) return new ProblemError('invalid_manifest', error.message, { cause: error });
  const internal = code !== undefined && Object.prototype.hasOwnProperty.call(INTERNAL_PROBLEMS, code) ? INTERNAL_PROBLEMS[code] : undefined;
  if (internal) return new ProblemError(internal, error.message, { cause: error });
  if (status === 408 || errnoCode(error) === 'ECONNRESET') return new ProblemError('timeout', 'request body did not arrive in time', { cause: error });
  if (typeof status === 'number' && status >= 400 && status < 500) return new ProblemError('bad_request', error.message, { cause: error });
  return new ProblemError('internal', 'internal error (see the server log)', { cause: error });
}

