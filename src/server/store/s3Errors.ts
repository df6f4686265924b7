/**
 * What an S3 error means to the server. The engine away (refused, reset, timed out, any 5xx or
 * SlowDown) is EnvironmentError E_STORE_UNAVAILABLE: a request answered 503 store_unavailable with
 * Retry-After, the dock tries again later. Answers about the request itself (404, 412, 403, …)
 * stay the SDK's own errors for the store to act on.
 */
import { EnvironmentError, errnoCode } from '../../errors.js';

export const STORE_UNAVAILABLE = 'E_STORE_UNAVAILABLE';

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNABORTED', 'UND_ERR_SOCKET']);
const NETWORK_NAMES = new Set(['TimeoutError', 'RequestTimeout', 'RequestTimeoutException', 'SlowDown', 'ServiceUnavailable', 'InternalError', 'AbortError']);

function statusOf(error: unknown): number | undefined {
  const status = (error as { $metadata?: { httpStatusCode?: unknown } } | undefined)?.$metadata?.httpStatusCode;
  return typeof status === 'number' ? status : undefined;
}

function nameOf(error: unknown): string | undefined {
  const name = (error as { name?: unknown } | undefined)?.name;
  return typeof name === 'string' ? name : undefined;
}

export function isUnavailable(error: unknown): boolean {
  if (error instanceof EnvironmentError) return error.code === STORE_UNAVAILABLE;
  const status = statusOf(error);
  if (status !== undefined && status >= 500) return true;
  // The SDK wraps a socket error ("AWS SDK error wrapper for Error: connect ECONNREFUSED …"):
  // look down the cause chain, and at the words, for the network's own codes.
  for (let cause: unknown = error, depth = 0; cause && depth < 5; cause = (cause as { cause?: unknown }).cause, depth++) {
    const code = errnoCode(cause);
    if (code && NETWORK_CODES.has(code)) return true;
    const name = nameOf(cause);
    if (name && NETWORK_NAMES.has(name)) return true;
  }
  if (status !== undefined) return false;
  const message = error instanceof Error ? error.message : '';
  // A socket closed mid-body: Node's "aborted" / "socket hang up" carry no errno code.
  return new RegExp(`\\b(${[...NETWORK_CODES].join('|')})\\b|socket hang up|aborted|premature close|other side closed`, 'i').test(message);
}

export function classifyS3Error(error: unknown, what: string): unknown {
  if (error instanceof EnvironmentError) return error;
  if (isUnavailable(error)) {
    const why = error instanceof Error ? error.message : String(error);
    return new EnvironmentError(STORE_UNAVAILABLE, `object store unavailable: ${what}: ${why}`, { cause: error });
  }
  return error;
}

export function isNotFound(error: unknown): boolean {
  const name = nameOf(error);
  return statusOf(error) === 404 || name === 'NotFound' || name === 'NoSuchKey' || name === 'NoSuchBucket' || name === 'ObjectLockConfigurationNotFoundError';
}

export function isPreconditionFailed(error: unknown): boolean {
  return statusOf(error) === 412 || nameOf(error) === 'PreconditionFailed';
}
