/**
 * The dock's side of ingest protocol v1, one exchange at a time over node:http (src/dock/http.ts,
 * which never retries): a body cannot be replayed, so each attempt here builds a fresh body (a
 * new read of the file range) and the loop below retries connection errors and 408/429/5xx,
 * honouring Retry-After.
 */
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { pipeline, Transform, type Readable } from 'node:stream';
import { exchange } from './http.js';
import { formatDigestHeader } from '../protocol/digest.js';
import { DOCK_ID_HEADER } from '../protocol/types.js';
import type { CreateRecordingResponse, MissingAttachmentSegment, PossessionChallenge, Receipt, RecordingManifest } from '../protocol/types.js';
import type { Logger } from '../log.js';
import { InputError, isFileGone } from '../errors.js';
import { PausedError, ProblemError, TransportError } from './errors.js';
import { isRetryableStatus, parseRetryAfter, REQUEST_RETRY_POLICY, retryDelayMs, RETRYABLE_ERROR_CODES, type RetryPolicy } from './retry.js';
import type { TokenBucket } from './rateLimit.js';
import { readChunks } from '../util/chunkReader.js';

export interface ClientOptions {
  /** Base URL of the ingest server; several, comma-separated, are spread over and failed over (see IngestClient). */
  endpoint: string;
  token: string;
  /** Sent as DOCK_ID_HEADER: a server that maps the token to another dock answers 403, not 404 (docs/protocol.md). */
  dockId?: string;
  requestTimeoutMs: number;
  retries: number;
  bucket: TokenBucket;
  logger: Logger;
  policy?: RetryPolicy;
  /** Called for every per-request retry (metrics). */
  onRetry?: (reason: string) => void;
  /** Called as body bytes leave (progress, metrics). */
  onBytesSent?: (bytes: number) => void;
  /** Called for every HTTP answer that ends a request (after the retries): dock-level attention (src/dock/attention.ts). */
  onAnswer?: (answer: { endpoint: string; method: string; path: string; status: number; problemCode?: string; detail?: string }) => void;
}

interface Answer { status: number; body: string; headers: Record<string, string | string[] | undefined> }

type Method = 'GET' | 'POST' | 'PUT';

export interface SegmentRange { index: number; offset: number; length: number; sha256: string }

/** Body read size with no rate cap. */
const BODY_CHUNK_BYTES = 1024 * 1024;

/**
 * Body buffers no body holds right now, kept for the next one. A fresh pair per segment (2 MiB of
 * memory outside the JS heap, a few hundred times per GB) made V8 run a full mark-compact about
 * once a second just to account for it: more CPU than the upload itself (docs/benchmarks.md).
 * Bounded: at most BODY_POOL_MAX buffers wait here (two per upload in flight at the default
 * concurrency), the rest are left to the collector.
 */
const bodyPool: Buffer[] = [];
const BODY_POOL_MAX = 16;

function takeBodyBuffer(size: number): Buffer {
  if (size === BODY_CHUNK_BYTES) {
    const pooled = bodyPool.pop();
    if (pooled) return pooled;
  }
  return Buffer.allocUnsafeSlow(size);
}

function giveBackBodyBuffers(buffers: Buffer[]): void {
  for (const buffer of buffers) if (buffer.length === BODY_CHUNK_BYTES && bodyPool.length < BODY_POOL_MAX) bodyPool.push(buffer);
}

/**
 * A file range as a request body, read into two buffers that are reused for the whole body.
 * exchange (http.ts) writes an iterable body chunk by chunk and asks for the next only once the socket has
 * taken the previous one (the write callback), so the buffer handed out last time is free
 * again when the generator resumes; the other one is being filled meanwhile. A read stream
 * allocates a fresh buffer per chunk instead, whose page faults cost more CPU on this VM than
 * sending the bytes (docs/benchmarks.md, Dock offload). The two buffers go back to a pool for the
 * next body only when this one was read to its end and the consumer asked past its last chunk
 * (so the socket has taken every byte): a body abandoned mid-way may still have a chunk in a
 * socket's write queue, so its buffers are never handed out again.
 */
export async function* fileRangeChunks(path: string, offset: number, length: number, chunkBytes = BODY_CHUNK_BYTES): AsyncGenerator<Buffer> {
  const handle = await open(path, 'r');
  let buffers: [Buffer, Buffer] | undefined;
  let finished = false;
  try {
    const size = Math.min(chunkBytes, Math.max(1, length));
    buffers = [takeBodyBuffer(size), takeBodyBuffer(size)];
    yield* readChunks(handle, { position: offset, length, buffers, name: path });
    finished = true;
  } finally {
    // readChunks let the read in flight settle (abandoned mid-body: request failed or aborted).
    await handle.close();
    if (finished && buffers) giveBackBodyBuffers(buffers);
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) { reject(signal.reason); return; }
    const timer = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve(); }, ms);
    const onAbort = (): void => { clearTimeout(timer); reject(signal!.reason); };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function problemOf(answer: Answer): { code: string; detail: string } {
  try {
    const body = JSON.parse(answer.body) as { code?: unknown; detail?: unknown; title?: unknown };
    return { code: typeof body.code === 'string' ? body.code : `http_${answer.status}`, detail: String(body.detail ?? body.title ?? '') };
  } catch {
    return { code: `http_${answer.status}`, detail: answer.body.slice(0, 200) };
  }
}

/** What a person sees when the server cannot be reached at all: the usual first-run mistake is a server not started or a wrong --endpoint. */
const UNREACHABLE: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ENOTFOUND: 'no such host',
  EAI_AGAIN: 'host name lookup failed',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
};

function unreachableMessage(endpoint: string, code: string): string | undefined {
  const what = UNREACHABLE[code];
  return what ? `cannot reach the ingest server at ${endpoint} (${what}: ${code}): start it or check --endpoint` : undefined;
}

/** A server that failed at the connection level (or answered 502/503/504) is tried last for this long. */
export const ENDPOINT_DOWN_MS = 30_000;

/** Failures that say "this server is not there", not "this request was wrong": try the next server at once. */
function serverGone(failure: unknown, status: number | undefined): boolean {
  if (status !== undefined) return status === 502 || status === 503 || status === 504;
  const code = (failure as { code?: string }).code ?? '';
  return RETRYABLE_ERROR_CODES.has(code) || /^ETIMEDOUT|^UND_ERR/.test(code) || code === 'ERR_STREAM_PREMATURE_CLOSE';
}

/**
 * The dock's client. With several endpoints (any number of `bodycam server` processes sharing one
 * state), requests go round-robin over the servers not marked down; a connection failure,
 * timeout or 502/503/504 marks that server down for ENDPOINT_DOWN_MS and the same request goes
 * to the next server at once. Only when every server failed does the attempt count against the
 * retries and wait its backoff: a dead server costs one request timeout, not a job backoff.
 * Every request of the protocol is idempotent, so sending one again elsewhere is safe.
 */
export class IngestClient {
  private readonly endpoints: string[];
  private cursor = 0;
  private readonly downUntil = new Map<string, number>();
  private readonly now: () => number;
  private token: string;

  constructor(private readonly options: ClientOptions & { now?: () => number }) {
    this.token = options.token;
    this.endpoints = options.endpoint.split(',').map((e) => e.trim().replace(/\/+$/, '')).filter(Boolean);
    if (!this.endpoints.length) throw new TransportError('no ingest server endpoint configured');
    this.now = options.now ?? Date.now;
  }

  /** This request's order: round-robin from the cursor, servers marked down last. */
  private order(): string[] {
    const n = this.endpoints.length;
    const start = this.cursor++ % n;
    const rotated = Array.from({ length: n }, (_, i) => this.endpoints[(start + i) % n]!);
    const now = this.now();
    const up = rotated.filter((e) => (this.downUntil.get(e) ?? 0) <= now);
    return [...up, ...rotated.filter((e) => !up.includes(e))];
  }

  /** A new bearer token (SIGHUP reload): requests from now on carry it. */
  setToken(token: string): void {
    this.token = token;
  }

  /** Endpoints not marked down now (status, tests). */
  liveEndpoints(): string[] {
    const now = this.now();
    return this.endpoints.filter((e) => (this.downUntil.get(e) ?? 0) <= now);
  }

  /** One request with the per-request retry loop; `makeBody` is called afresh for every attempt (and every server tried). */
  private async request(method: Method, path: string, init: { json?: unknown; makeBody?: () => Readable | AsyncIterable<Buffer>; headers?: Record<string, string>; signal?: AbortSignal; okStatuses?: number[] }): Promise<Answer> {
    const policy = this.options.policy ?? REQUEST_RETRY_POLICY;
    for (let attempt = 1; ; attempt++) {
      let answer: Answer | undefined;
      let failure: unknown;
      let endpoint = this.endpoints[0]!;
      const order = this.order();
      for (const [i, candidate] of order.entries()) {
        endpoint = candidate;
        if (init.signal?.aborted) throw new PausedError(`${method} ${path} abandoned`, { cause: init.signal.reason });
        answer = undefined;
        failure = undefined;
        try {
          const headers: Record<string, string> = { authorization: `Bearer ${this.token}`, ...(this.options.dockId ? { [DOCK_ID_HEADER]: this.options.dockId } : {}), ...init.headers };
          if (init.json !== undefined) headers['content-type'] = 'application/json';
          const body = init.json !== undefined ? Buffer.from(JSON.stringify(init.json)) : init.makeBody?.();
          answer = await exchange(endpoint + path, {
            method, headers, ...(body !== undefined ? { body } : {}), timeoutMs: this.options.requestTimeoutMs, ...(init.signal ? { signal: init.signal } : {}),
          });
        } catch (error) {
          failure = error;
        }
        if (init.signal?.aborted) throw new PausedError(`${method} ${path} abandoned`, { cause: init.signal.reason });
        // The body's file no longer holds the range it was hashed as (cut short: E_FILE_CHANGED): no
        // server and no retry can take it. Thrown as it is, never as a transport failure to retry.
        if (failure instanceof InputError) throw failure;
        if (failure !== undefined && (failure instanceof PausedError || isFileGone(failure))) throw new PausedError(`source file went away during ${method} ${path}`, { cause: failure });
        // A server that refuses the token (its tokens file not updated yet) while others may take it: the
        // dock shows the refusal (onAnswer) and the request goes to the next server, as for a dead one.
        // So does a 404: one server of a shared state that does not find the recording (its token table
        // behind a token moved between docks) is asked no further while another may hold it.
        const refused = answer !== undefined && (answer.status === 401 || answer.status === 403 || answer.status === 404) && i < order.length - 1;
        if (refused) {
          const { code, detail } = problemOf(answer!);
          this.options.onAnswer?.({ endpoint, method, path, status: answer!.status, problemCode: code, detail });
        } else if (!serverGone(failure, answer?.status)) {
          this.downUntil.delete(endpoint);
          break;
        }
        this.downUntil.set(endpoint, this.now() + ENDPOINT_DOWN_MS);
        if (i < order.length - 1) {
          const reason = answer ? `http_${answer.status}` : (failure as { code?: string }).code ?? 'error';
          this.options.onRetry?.(`failover_${reason}`);
          this.options.logger.info('server failed, trying the next one', { method, path, endpoint, next: order[i + 1], reason });
        }
      }
      if (failure !== undefined) {
        const code = (failure as { code?: string }).code ?? '';
        const retryable = RETRYABLE_ERROR_CODES.has(code) || /^ERR_GOT|^ETIMEDOUT|^UND_ERR/.test(code) || code === 'ERR_STREAM_PREMATURE_CLOSE';
        if (!retryable || attempt > this.options.retries) {
          const where = this.endpoints.length > 1 ? this.endpoints.join(', ') : endpoint;
          throw new TransportError(unreachableMessage(where, code) ?? `${method} ${path} failed: ${(failure as Error).message}`, { cause: failure });
        }
        const delay = retryDelayMs(policy, attempt);
        this.options.onRetry?.(code || 'error');
        this.options.logger.debug('request retry', { method, path, attempt, code, delayMs: delay });
        await sleep(delay, init.signal).catch((cause) => { throw new PausedError('abandoned while waiting to retry', { cause }); });
        continue;
      }
      const result = answer!;
      if (result.status < 400 || init.okStatuses?.includes(result.status)) {
        this.options.onAnswer?.({ endpoint, method, path, status: result.status });
        return result;
      }
      const retryAfterMs = parseRetryAfter(result.headers['retry-after']);
      const { code, detail } = problemOf(result);
      this.options.onAnswer?.({ endpoint, method, path, status: result.status, problemCode: code, detail });
      // A long Retry-After (507 store full: 60 s) goes back to the job layer, so the status shows why the bay waits.
      const waitsLong = retryAfterMs !== undefined && retryAfterMs > policy.maxMs;
      if (isRetryableStatus(result.status) && attempt <= this.options.retries && !waitsLong) {
        const delay = retryDelayMs(policy, attempt, retryAfterMs);
        this.options.onRetry?.(`http_${result.status}`);
        this.options.logger.debug('request retry', { method, path, attempt, status: result.status, code, delayMs: delay });
        await sleep(delay, init.signal).catch((cause) => { throw new PausedError('abandoned while waiting to retry', { cause }); });
        continue;
      }
      throw ProblemError.received(result.status, code, `${method} ${path}: ${detail || code}`, { ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) });
    }
  }

  async getKeys(signal?: AbortSignal): Promise<{ publicKeyPem: string; keyId?: string }> {
    const answer = await this.request('GET', '/v1/keys', { signal });
    const body = JSON.parse(answer.body) as { publicKeyPem?: unknown; keyId?: unknown };
    if (typeof body.publicKeyPem !== 'string') throw new TransportError('GET /v1/keys answered without publicKeyPem');
    return { publicKeyPem: body.publicKeyPem, keyId: typeof body.keyId === 'string' ? body.keyId : undefined };
  }

  async createRecording(manifest: RecordingManifest, signal?: AbortSignal): Promise<CreateRecordingResponse> {
    const answer = await this.request('POST', '/v1/recordings', { json: manifest, signal });
    return JSON.parse(answer.body) as CreateRecordingResponse;
  }

  /**
   * PUT one segment (of the recording, or with `attachment` of that attachment); the body is
   * re-read from the file range on every attempt, through the shared bandwidth cap.
   */
  async putSegment(recordingId: string, path: string, segment: SegmentRange, signal?: AbortSignal, attachment?: number): Promise<void> {
    const { bucket, onBytesSent } = this.options;
    const makeBody = (): Readable | AsyncIterable<Buffer> => {
      const range = { start: segment.offset, end: segment.offset + segment.length - 1 };
      // Unlimited: large reused buffers straight to the socket. Capped: small chunks through the bucket.
      if (bucket.unlimited) return fileRangeChunks(path, segment.offset, segment.length);
      let read = 0;
      const throttle = new Transform({
        transform(chunk: Buffer, _encoding, callback) {
          read += chunk.length;
          bucket.take(chunk.length, signal).then(() => callback(null, chunk), (error: unknown) => callback(error as Error));
        },
        // A read stream of a range simply ends early at a file cut short: the same error as the
        // unlimited body's (readChunks), not a body shorter than its content-length that leaves the
        // request waiting for its timeout.
        flush(callback) {
          callback(read === segment.length ? null : new InputError('E_FILE_CHANGED', `${path} ended ${segment.length - read} bytes before the ${segment.length}-byte range at ${segment.offset} it should hold`));
        },
      });
      // pipeline (not pipe) so a read error (file gone on undock) reaches the request.
      return pipeline(createReadStream(path, { ...range, highWaterMark: 64 * 1024 }), throttle, () => {});
    };
    const where = attachment === undefined ? '' : `/attachments/${attachment}`;
    await this.request('PUT', `/v1/recordings/${encodeURIComponent(recordingId)}${where}/segments/${segment.index}`, {
      makeBody,
      headers: {
        'content-type': 'application/octet-stream',
        'content-length': String(segment.length),
        'content-digest': formatDigestHeader(segment.sha256),
      },
      signal,
    });
    onBytesSent?.(segment.length);
  }

  /** Ask the server to assemble and receipt; `missing` when it still lacks segments (409 incomplete). */
  async complete(recordingId: string, signal?: AbortSignal): Promise<{ receipt?: Receipt; missing?: number[]; missingAttachments?: MissingAttachmentSegment[] }> {
    const answer = await this.request('POST', `/v1/recordings/${encodeURIComponent(recordingId)}/complete`, { signal, okStatuses: [409] });
    const body = JSON.parse(answer.body) as Record<string, unknown>;
    if (answer.status === 409) {
      const code = typeof body.code === 'string' ? body.code : '';
      if (code !== 'incomplete') throw ProblemError.received(409, code || 'http_409', `complete: ${String(body.detail ?? code)}`);
      return {
        missing: Array.isArray(body.missing) ? (body.missing as number[]) : [],
        ...(Array.isArray(body.missingAttachments) ? { missingAttachments: body.missingAttachments as MissingAttachmentSegment[] } : {}),
      };
    }
    return { receipt: (body.receipt ?? body) as Receipt };
  }

  /** What the server holds of one recording (`bodycam check`): its state and missing segments; a ProblemError (404 not_found) when none. */
  async getRecording(recordingId: string, signal?: AbortSignal): Promise<CreateRecordingResponse> {
    const answer = await this.request('GET', `/v1/recordings/${encodeURIComponent(recordingId)}`, { signal });
    return JSON.parse(answer.body) as CreateRecordingResponse;
  }

  /** Proof of possession (docs/protocol.md): the server's answer, unchecked (src/dock/wipe.ts checks it). */
  async possession(recordingId: string, challenge: PossessionChallenge, signal?: AbortSignal): Promise<unknown> {
    const answer = await this.request('POST', `/v1/recordings/${encodeURIComponent(recordingId)}/possession`, { json: challenge, signal });
    try {
      return JSON.parse(answer.body) as unknown;
    } catch {
      return undefined;
    }
  }
}
