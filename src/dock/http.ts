/**
 * One HTTP exchange of the dock's client, on node:http / node:https: a request with an optional
 * body (bytes, or an async iterable of chunks written one at a time), the whole answer as text.
 * This replaced got in the dock's upload path: got's per-request option merging, hooks and
 * stream wrappers cost ≈0.2 CPU s per GB of segments on the dock's event loop, and loading
 * got and its 20-odd packages ≈0.2 CPU s at every start (docs/benchmarks.md, "Dock CPU per GB,
 * session 5"). Retries, failover and backoff stay where they were (src/dock/client.ts); this
 * module only sends once, with got's semantics for what the client relies on:
 *
 * - no retry, no redirect, no decompression (the request asks for none), any status answered;
 * - `timeoutMs` bounds the whole exchange, from the request to the answer's last byte; when it
 *   passes the request is destroyed with an error of code `ETIMEDOUT`;
 * - `signal` aborts the exchange at once (an error of code `ABORT_ERR`);
 * - an iterable body is pulled one chunk at a time, the next one only after the socket took the
 *   previous one (its write callback): the dock's body chunks are views of reused buffers;
 * - an error of the body (file gone, range changed, bandwidth wait abandoned) is the exchange's
 *   error, the request destroyed; so is a connection that fails or ends before the answer ended
 *   (`ECONNRESET`, `ECONNREFUSED`, … as node reports them);
 * - an answer longer than MAX_ANSWER_BYTES is refused (`E_ANSWER_TOO_LARGE`): every answer of
 *   the protocol is a small JSON document, and a server that streams without end must not
 *   grow the dock's memory (got kept whatever came).
 */
import { request as httpRequest, type IncomingHttpHeaders, type ClientRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';

export interface Exchange {
  method: string;
  headers: Record<string, string>;
  /** Bytes sent as they are, or chunks written in order; absent: no body. */
  body?: Buffer | AsyncIterable<Buffer>;
  timeoutMs: number;
  signal?: AbortSignal;
}

export interface ExchangeAnswer {
  status: number;
  body: string;
  headers: IncomingHttpHeaders;
}

/** Far above any answer of the protocol (a `missing` list of 100 000 segments is ≈ 0.7 MB). */
export const MAX_ANSWER_BYTES = 16 * 1024 * 1024;

/** An error with the errno-like code the client's retry rules read. */
function codedError(message: string, code: string, cause?: unknown): Error {
  const error = new Error(message, cause === undefined ? undefined : { cause }) as Error & { code: string };
  error.code = code;
  return error;
}

/**
 * Write every chunk, each once the socket took the one before (see the module comment). A
 * request destroyed meanwhile (answered early, failed, timed out) ends the loop, which closes
 * the body's file (its `finally`) even if that write's callback never comes.
 */
async function writeChunks(req: ClientRequest, chunks: AsyncIterable<Buffer>): Promise<void> {
  const closed = new Promise<void>((resolve) => req.once('close', resolve));
  for await (const chunk of chunks) {
    if (req.destroyed) return;
    const written = new Promise<void>((resolve, reject) => {
      req.write(chunk, (error) => (error ? reject(error) : resolve()));
    });
    await Promise.race([written, closed]);
    if (req.destroyed) return;
  }
  req.end();
}

export function exchange(url: string, options: Exchange): Promise<ExchangeAnswer> {
  return new Promise<ExchangeAnswer>((resolve, reject) => {
    let settled = false;
    let req: ClientRequest | undefined;
    const finish = (error: unknown, answer?: ExchangeAnswer): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      if (error !== undefined) {
        req?.destroy();
        closeBody();
        reject(error);
      } else {
        resolve(answer!);
      }
    };
    // A stream body waiting on something (the bandwidth bucket) is closed at once, its file with it,
    // not when that wait ends; a generator body closes when its pending chunk comes (writeChunks).
    const closeBody = (): void => {
      const body = options.body as { destroy?: () => void } | undefined;
      if (body && !Buffer.isBuffer(body) && typeof body.destroy === 'function') body.destroy();
    };
    const onAbort = (): void => finish(codedError('the request was aborted', 'ABORT_ERR', options.signal?.reason));
    const timer = setTimeout(() => finish(codedError(`Timeout awaiting 'request' for ${options.timeoutMs}ms`, 'ETIMEDOUT')), options.timeoutMs);
    if (options.signal?.aborted) { onAbort(); return; }
    options.signal?.addEventListener('abort', onAbort, { once: true });
    let target: URL;
    try {
      target = new URL(url);
    } catch (error) {
      finish(codedError(`invalid URL ${url}`, 'ERR_INVALID_URL', error));
      return;
    }
    const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
    const headers: Record<string, string> = { ...options.headers };
    if (Buffer.isBuffer(options.body)) headers['content-length'] = String(options.body.length);
    try {
      req = send(target, { method: options.method, headers });
    } catch (error) {
      finish(error);
      return;
    }
    req.on('error', (error) => finish(error));
    req.on('response', (res) => {
      const parts: Buffer[] = [];
      let received = 0;
      res.on('data', (chunk: Buffer) => {
        received += chunk.length;
        if (received > MAX_ANSWER_BYTES) finish(codedError(`the answer exceeds ${MAX_ANSWER_BYTES} bytes`, 'E_ANSWER_TOO_LARGE'));
        else parts.push(chunk);
      });
      res.on('error', (error) => finish(error));
      res.on('end', () => {
        finish(undefined, { status: res.statusCode ?? 0, body: Buffer.concat(parts).toString('utf8'), headers: res.headers });
        // Answered before the body was all sent (a refusal): stop sending; the socket is not reused.
        if (!req!.writableEnded) { req!.destroy(); closeBody(); }
      });
      res.on('close', () => {
        if (!res.complete) finish(codedError('the connection closed before the answer ended', 'ECONNRESET'));
      });
    });
    const body = options.body;
    if (body === undefined) req.end();
    else if (Buffer.isBuffer(body)) req.end(body);
    else writeChunks(req, body).catch((error: unknown) => finish(error));
  });
}
