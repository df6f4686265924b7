/**
 * Retry policy as data, and the one pure function that turns it into a delay.
 * Two layers use it: a single request (short delays, a few tries, Retry-After
 * honoured) and a whole job going back to the journal (long delays, forever
 * while the error is transient).
 */
export interface RetryPolicy {
  /** First delay, in ms. */
  baseMs: number;
  /** Cap of any computed delay, in ms (Retry-After may ask for more, up to maxRetryAfterMs). */
  maxMs: number;
  /** Growth per attempt. */
  factor: number;
  /** 'full' = uniform in [0, exp) (AWS "full jitter"); 'none' = the exponential itself. */
  jitter: 'full' | 'none';
  /** Largest Retry-After the client obeys, in ms. */
  maxRetryAfterMs: number;
  /** Shortest delay, in ms, whatever the jitter or Retry-After (at most maxMs); none when absent. */
  minMs?: number;
}

export const REQUEST_RETRY_POLICY: RetryPolicy = { baseMs: 250, maxMs: 8_000, factor: 2, jitter: 'full', maxRetryAfterMs: 120_000 };

export function jobRetryPolicy(maxBackoffSeconds: number): RetryPolicy {
  return { baseMs: 1_000, maxMs: Math.max(1, maxBackoffSeconds * 1000), factor: 2, jitter: 'full', maxRetryAfterMs: Math.max(1, maxBackoffSeconds * 1000) };
}

/**
 * A job refused for a reason of the dock itself (its token, dock id, key, endpoint path) in a
 * running dock: trying again within a second cannot mend it, and a rejected token sent every few
 * seconds looks like guessing, so it waits at least 30 s (or the whole cap, when smaller); the
 * reload that follows a fix (SIGHUP) makes the job due at once.
 */
export function dockRefusalRetryPolicy(maxBackoffSeconds: number): RetryPolicy {
  const policy = jobRetryPolicy(maxBackoffSeconds);
  return { ...policy, minMs: Math.min(policy.maxMs, 30_000) };
}

/**
 * Delay before retry number `attempt` (1 = first retry). When the server sent
 * Retry-After, it wins (capped), because it knows its own load; otherwise
 * exponential backoff with full jitter, capped. `random` is injectable for tests.
 */
export function retryDelayMs(policy: RetryPolicy, attempt: number, retryAfterMs?: number, random: () => number = Math.random): number {
  const floor = policy.minMs ?? 0;
  if (retryAfterMs !== undefined && Number.isFinite(retryAfterMs) && retryAfterMs >= 0) {
    return Math.max(floor, Math.min(retryAfterMs, policy.maxRetryAfterMs));
  }
  const exponent = Math.max(0, attempt - 1);
  const exp = Math.min(policy.maxMs, policy.baseMs * policy.factor ** Math.min(exponent, 60));
  return Math.max(floor, policy.jitter === 'full' ? Math.floor(random() * exp) : exp);
}

/** Retry-After as ms: delta-seconds or an HTTP date (RFC 9110 §10.2.3); undefined if absent or unreadable. */
export function parseRetryAfter(header: string | string[] | undefined, now: number = Date.now()): number | undefined {
  if (header === undefined) return undefined;
  const text = (Array.isArray(header) ? header[0] ?? '' : header).trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}

/** Statuses a single request is retried on (the job layer then decides permanent vs transient). */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/** Connection-level failures worth retrying (as got's default list). */
export const RETRYABLE_ERROR_CODES = new Set([
  'ETIMEDOUT', 'ECONNRESET', 'EADDRINUSE', 'ECONNREFUSED', 'EPIPE', 'ENOTFOUND', 'ENETUNREACH', 'EAI_AGAIN',
  'ERR_GOT_REQUEST_ERROR', 'ECONNABORTED', 'EHOSTUNREACH', 'UND_ERR_SOCKET',
]);
