/**
 * What keeps one client, or many, from holding the server's sockets and memory:
 *  - an answer given before the request body was read ends the connection (closeAfterResponse):
 *    `Connection: close`, then a short lingering close (the body keeps being discarded for up
 *    to LINGER_MS so that the client reads the answer instead of a reset), then the socket goes.
 *    Node's default would drain the unread body to keep the connection alive, for as long as a
 *    slow client cares to send it;
 *  - concurrent requests are capped in total and per dock (RequestGate): 429 + Retry-After;
 *  - JSON bodies (manifests, challenges) are read by readJsonBody: capped by bytes as they
 *    stream (and by a budget of JSON bytes buffered across all requests), and cut by an idle
 *    and a total timeout.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { ProblemError } from './problem.js';

/** How long a closing connection keeps discarding what the client still sends. */
export const LINGER_MS = 2_000;
const RETRY_BUSY_SECONDS = 1;

const lingering = new WeakSet<Socket>();

/**
 * Answer with `Connection: close` and close the socket once the answer is out. Used for every
 * answer given before the request body arrived in full (401, 403, 413, 429, 408, …).
 */
export function closeAfterResponse(reply: FastifyReply): void {
  reply.header('Connection', 'close');
  const socket = reply.raw.socket ?? reply.request.raw.socket;
  if (!socket || lingering.has(socket)) return;
  lingering.add(socket);
  // Node ends a `Connection: close` response with socket.destroySoon(): end our side, then
  // destroy as soon as the answer is flushed, which resets a client that is still sending
  // (it may never read the answer). Instead: end our side, keep discarding input until the
  // client closes its side, and destroy after LINGER_MS at the latest.
  socket.destroySoon = function lingeringClose(this: Socket) {
    if (this.writable) this.end();
    if (this.readableEnded) { this.destroy(); return; }
    const timer = setTimeout(() => this.destroy(), LINGER_MS);
    timer.unref();
    this.once('close', () => clearTimeout(timer));
    this.once('end', () => this.destroy());
    this.resume();
  };
}

/** Whether the request's body (if any) has not arrived in full: an answer now must close the connection. */
export function bodyPending(request: FastifyRequest): boolean {
  return !request.raw.complete;
}

export interface GateLimits {
  /** Requests in flight on the server before 429 (health, metrics and keys are not counted). */
  maxConcurrentRequests: number;
  /** Requests in flight for one dock before 429. */
  maxConcurrentRequestsPerDock: number;
}

/** Counts of requests in flight, released when their response closes (answered or cut). */
export class RequestGate {
  private total = 0;
  private readonly perDock = new Map<string, number>();
  refusedTotal = 0;
  refusedPerDock = 0;

  constructor(private readonly limits: GateLimits) {}

  get inFlight(): number { return this.total; }

  /** Admit one more request on the server, or throw 429. */
  enter(reply: FastifyReply): void {
    if (this.total >= this.limits.maxConcurrentRequests) {
      this.refusedTotal++;
      throw new ProblemError('rate_limited', `the server has ${this.limits.maxConcurrentRequests} requests in flight; retry shortly`, { retryAfter: RETRY_BUSY_SECONDS });
    }
    this.total++;
    reply.raw.once('close', () => { this.total--; });
  }

  /** Admit one more request of `dockId`, or throw 429. */
  enterDock(dockId: string, reply: FastifyReply): void {
    const n = this.perDock.get(dockId) ?? 0;
    if (n >= this.limits.maxConcurrentRequestsPerDock) {
      this.refusedPerDock++;
      throw new ProblemError('rate_limited', `dock ${dockId} has ${this.limits.maxConcurrentRequestsPerDock} requests in flight; retry shortly`, { retryAfter: RETRY_BUSY_SECONDS });
    }
    this.perDock.set(dockId, n + 1);
    reply.raw.once('close', () => {
      const left = (this.perDock.get(dockId) ?? 1) - 1;
      if (left <= 0) this.perDock.delete(dockId); else this.perDock.set(dockId, left);
    });
  }
}

export interface JsonBodyLimits {
  /** Largest JSON body (default 4 MiB). */
  maxManifestBytes: number;
  /** JSON body bytes buffered across all requests at once before 429 (default 32 MiB). */
  maxManifestBytesInFlight: number;
  /** JSON body bytes buffered for one dock at once before 429 (default 8 MiB): one dock cannot use up the budget of all. */
  maxManifestBytesInFlightPerDock: number;
  /** A JSON body that sends nothing for this long is cut (408). */
  bodyIdleTimeoutMs: number;
  /** A JSON body that has not arrived in full after this long is cut (408). */
  manifestTimeoutMs: number;
}

/**
 * A fastify content-type parser for application/json that never holds more than the limit of
 * one body, nor more than the budget of all of them, and never waits on a slow one for long.
 * A body with a Content-Length reserves it up front (refused at once if it does not fit); one
 * without (chunked) is counted as it streams.
 */
export function jsonBodyParser(configured: JsonBodyLimits) {
  // The budgets always admit one body of the largest size.
  const perDock = Math.max(configured.maxManifestBytesInFlightPerDock, configured.maxManifestBytes);
  const limits = { ...configured, maxManifestBytesInFlightPerDock: perDock, maxManifestBytesInFlight: Math.max(configured.maxManifestBytesInFlight, perDock) };
  let buffered = 0;
  const bufferedPerDock = new Map<string, number>();
  /** Take `bytes` of the budgets, or say which one is spent. */
  const take = (dock: string, bytes: number): string | undefined => {
    const mine = bufferedPerDock.get(dock) ?? 0;
    if (mine + bytes > limits.maxManifestBytesInFlightPerDock) return `the server is reading ${mine} bytes of this dock's JSON bodies already; retry shortly`;
    if (buffered + bytes > limits.maxManifestBytesInFlight) return `the server is reading ${buffered} bytes of JSON bodies already; retry shortly`;
    buffered += bytes;
    bufferedPerDock.set(dock, mine + bytes);
    return undefined;
  };
  const give = (dock: string, bytes: number) => {
    buffered -= bytes;
    const left = (bufferedPerDock.get(dock) ?? bytes) - bytes;
    if (left <= 0) bufferedPerDock.delete(dock); else bufferedPerDock.set(dock, left);
  };
  return (request: FastifyRequest, payload: IncomingMessage, done: (error: Error | null, body?: unknown) => void): void => {
    const lengthHeader = request.headers['content-length'];
    const declared = lengthHeader !== undefined && /^\d+$/.test(lengthHeader) ? Number(lengthHeader) : undefined;
    if (declared !== undefined && declared > limits.maxManifestBytes) {
      done(new ProblemError('payload_too_large', `JSON bodies are limited to ${limits.maxManifestBytes} bytes; this one declares ${declared}`));
      return;
    }
    const dock = request.dockId ?? '';
    let reserved = declared ?? 0;
    const refusal = take(dock, reserved);
    if (refusal) {
      done(new ProblemError('rate_limited', refusal, { retryAfter: RETRY_BUSY_SECONDS }));
      return;
    }
    const chunks: Buffer[] = [];
    let received = 0;
    let finished = false;
    const finish = (error: Error | null, body?: unknown) => {
      if (finished) return;
      finished = true;
      clearTimeout(idle);
      clearTimeout(total);
      give(dock, reserved);
      reserved = 0;
      payload.off('data', onData);
      payload.off('end', onEnd);
      payload.off('error', onError);
      // Whatever else arrives is discarded (the answer closes the connection: closeAfterResponse).
      if (error) payload.resume();
      done(error, body);
    };
    const cut = (why: string) => finish(new ProblemError('timeout', why));
    const idle = setTimeout(() => cut(`no body bytes for ${limits.bodyIdleTimeoutMs} ms`), limits.bodyIdleTimeoutMs);
    const total = setTimeout(() => cut(`the JSON body did not arrive within ${limits.manifestTimeoutMs} ms`), limits.manifestTimeoutMs);
    const onData = (chunk: Buffer) => {
      received += chunk.length;
      if (received > limits.maxManifestBytes) {
        finish(new ProblemError('payload_too_large', `JSON bodies are limited to ${limits.maxManifestBytes} bytes`));
        return;
      }
      if (declared === undefined) {
        const spent = take(dock, chunk.length);
        if (spent) {
          finish(new ProblemError('rate_limited', spent, { retryAfter: RETRY_BUSY_SECONDS }));
          return;
        }
        reserved += chunk.length;
      }
      chunks.push(chunk);
      idle.refresh();
    };
    const onEnd = () => {
      const text = Buffer.concat(chunks).toString('utf8');
      chunks.length = 0;
      if (text === '') { finish(null, undefined); return; }
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch (error) {
        finish(new ProblemError('bad_request', 'body is not valid JSON', { cause: error }));
        return;
      }
      finish(null, parsed);
    };
    const onError = (error: Error) => finish(error);
    // The client went away mid-body: nothing can be answered, but the budget and timers are freed.
    const onClose = () => { if (!finished) finish(Object.assign(new Error('the client closed the connection before the body arrived'), { code: 'ECONNRESET' })); };
    payload.on('data', onData);
    payload.on('end', onEnd);
    payload.on('error', onError);
    payload.once('close', onClose);
  };
}
