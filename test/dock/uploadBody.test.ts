import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { truncateSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { InputError } from '../../src/errors.js';
import { fileRangeChunks, IngestClient } from '../../src/dock/client.js';
import { exchange, MAX_ANSWER_BYTES } from '../../src/dock/http.js';
import { TokenBucket } from '../../src/dock/rateLimit.js';
import { quietLogger } from '../../src/log.js';
import { sha256Hex } from '../../src/protocol/digest.js';
import { makeTempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/dock.js';

describe('upload body from reused buffers', () => {
  const tmp = makeTempDir('bodycam-dock-body-');
  afterAll(() => tmp.cleanup());
  const data = randomBytes(300_000);
  const path = join(tmp.path, 'f.bin');
  writeFileSync(path, data);

  it('yields exactly the bytes of the range, across many chunks', async () => {
    const sent: Buffer[] = [];
    // Copy each chunk when it is taken, as the socket does before asking for the next one.
    for await (const chunk of fileRangeChunks(path, 1234, 250_001, 64 * 1024)) sent.push(Buffer.from(chunk));
    expect(sent.length).toBe(4);
    expect(Buffer.concat(sent).equals(data.subarray(1234, 1234 + 250_001))).toBe(true);
  });

  it('fails when the file holds less than the range (it changed since it was planned)', async () => {
    const read = async (): Promise<void> => { for await (const chunk of fileRangeChunks(path, 299_000, 5000, 1024)) void chunk; };
    await expect(read()).rejects.toMatchObject({ code: 'E_FILE_CHANGED' });
  });
});

/**
 * The client's one exchange (src/dock/http.ts) against a real node:http server on loopback: what
 * the retry and failover rules of IngestClient read (codes), and that a body is never left open.
 */
describe('one HTTP exchange of the dock', () => {
  type Handler = (req: IncomingMessage, res: ServerResponse) => void;
  let handler: Handler = (_req, res) => res.end();
  const server = createServer((req, res) => handler(req, res));
  let base = '';
  beforeAll(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => { server.closeAllConnections(); await new Promise((resolve) => server.close(resolve)); });

  /** Chunks of `count` × 64 KiB; `closed` settles when the generator was closed (its finally ran). */
  function body(count: number): { chunks: AsyncGenerator<Buffer>; closed: Promise<number> } {
    let done!: (n: number) => void;
    const closed = new Promise<number>((resolve) => { done = resolve; });
    async function* chunks(): AsyncGenerator<Buffer> {
      let sent = 0;
      try {
        for (; sent < count; sent++) yield Buffer.alloc(64 * 1024, sent);
      } finally {
        done(sent);
      }
    }
    return { chunks: chunks(), closed };
  }

  it('sends the body chunk by chunk and returns status, headers and text of the answer', async () => {
    handler = (req, res) => {
      const parts: Buffer[] = [];
      req.on('data', (c: Buffer) => parts.push(c));
      req.on('end', () => { res.setHeader('retry-after', '3'); res.statusCode = 503; res.end(JSON.stringify({ got: Buffer.concat(parts).length, auth: req.headers.authorization })); });
    };
    const b = body(20);
    const answer = await exchange(`${base}/x`, { method: 'PUT', headers: { authorization: 'Bearer t', 'content-length': String(20 * 64 * 1024) }, body: b.chunks, timeoutMs: 60_000 });
    expect(answer.status).toBe(503);
    expect(answer.headers['retry-after']).toBe('3');
    expect(JSON.parse(answer.body)).toEqual({ got: 20 * 64 * 1024, auth: 'Bearer t' });
    expect(await b.closed).toBe(20);
  });

  it('an answer before the body was sent ends the exchange and closes the body', async () => {
    handler = (_req, res) => { res.statusCode = 401; res.end('{"code":"unauthorized"}'); };
    const b = body(100_000);
    const answer = await exchange(`${base}/x`, { method: 'PUT', headers: { 'content-length': String(100_000 * 64 * 1024) }, body: b.chunks, timeoutMs: 60_000 });
    expect(answer.status).toBe(401);
    expect(await b.closed).toBeLessThan(100_000);
  });

  it('a server that never answers: ETIMEDOUT, and the body is closed', async () => {
    handler = () => { /* reads nothing, answers nothing */ };
    const b = body(100_000);
    await expect(exchange(`${base}/x`, { method: 'PUT', headers: { 'content-length': String(100_000 * 64 * 1024) }, body: b.chunks, timeoutMs: 300 })).rejects.toMatchObject({ code: 'ETIMEDOUT' });
    expect(await b.closed).toBeLessThan(100_000);
  });

  it('an abort ends the exchange at once (ABORT_ERR), the body closed', async () => {
    handler = () => { /* never answers */ };
    const b = body(100_000);
    const controller = new AbortController();
    const pending = exchange(`${base}/x`, { method: 'PUT', headers: { 'content-length': String(100_000 * 64 * 1024) }, body: b.chunks, timeoutMs: 600_000, signal: controller.signal });
    controller.abort(new Error('undocked'));
    await expect(pending).rejects.toMatchObject({ code: 'ABORT_ERR' });
    expect(await b.closed).toBeLessThan(100_000);
  });

  it('the body\'s own error is the exchange\'s error (file gone, range changed)', async () => {
    handler = (req, res) => { req.resume(); req.on('end', () => res.end()); };
    const gone = Object.assign(new Error('ENOENT: no such file'), { code: 'ENOENT' });
    async function* failing(): AsyncGenerator<Buffer> { yield Buffer.alloc(10); throw gone; }
    await expect(exchange(`${base}/x`, { method: 'PUT', headers: { 'content-length': '1000' }, body: failing(), timeoutMs: 60_000 })).rejects.toBe(gone);
  });

  it('a body error aborts the request: the server sees it cut off, the socket closes, the body is closed', async () => {
    // The server side of the very socket the request came on (a kept-alive one or a new one).
    let used: Socket | undefined;
    let cutOff = false;
    handler = (req, res) => { used = req.socket; req.resume(); req.on('close', () => { cutOff = !req.complete; }); req.on('end', () => res.end()); };
    const changed = new InputError('E_FILE_CHANGED', 'f.bin ended 1000 bytes before the range');
    let closed = false;
    async function* failing(): AsyncGenerator<Buffer> { try { yield Buffer.alloc(64 * 1024); yield Buffer.alloc(64 * 1024); throw changed; } finally { closed = true; } }
    await expect(exchange(`${base}/x`, { method: 'PUT', headers: { 'content-length': String(1024 * 1024) }, body: failing(), timeoutMs: 60_000 })).rejects.toBe(changed);
    expect(closed).toBe(true);
    await waitFor('the server side of the request cut off and its socket closed', () => cutOff && used?.destroyed === true, 20_000, 10);
  });

  it('a stream body waiting when the exchange fails is destroyed at once (its file closed), not when its wait ends', async () => {
    handler = () => { /* never answers */ };
    let pushed = false;
    const waiting = new Readable({ read() { if (!pushed) { pushed = true; this.push(Buffer.alloc(1024)); } /* then waits, as on the bucket */ } });
    await expect(exchange(`${base}/x`, { method: 'PUT', headers: { 'content-length': '1000000' }, body: waiting, timeoutMs: 300 })).rejects.toMatchObject({ code: 'ETIMEDOUT' });
    expect(waiting.destroyed).toBe(true);
  });

  it('a connection closed before the answer ended is ECONNRESET; no server at all is ECONNREFUSED', async () => {
    handler = (_req, res) => { res.writeHead(200, { 'content-length': '1000' }); res.write('{"partial":'); setImmediate(() => res.socket?.destroy()); };
    await expect(exchange(`${base}/x`, { method: 'GET', headers: {}, timeoutMs: 60_000 })).rejects.toMatchObject({ code: 'ECONNRESET' });
    handler = (req) => req.socket.destroy();
    await expect(exchange(`${base}/x`, { method: 'POST', headers: {}, body: Buffer.from('{}'), timeoutMs: 60_000 })).rejects.toMatchObject({ code: 'ECONNRESET' });
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    await expect(exchange(`http://127.0.0.1:${port}/x`, { method: 'GET', headers: {}, timeoutMs: 60_000 })).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('refuses an answer without end (E_ANSWER_TOO_LARGE) instead of keeping it in memory', async () => {
    handler = (_req, res) => {
      const chunk = Buffer.alloc(1024 * 1024, 0x20);
      const more = (): void => { while (!res.destroyed && res.write(chunk)); if (!res.destroyed) res.once('drain', more); };
      res.on('close', () => res.destroy());
      more();
    };
    await expect(exchange(`${base}/x`, { method: 'GET', headers: {}, timeoutMs: 600_000 })).rejects.toMatchObject({ code: 'E_ANSWER_TOO_LARGE' });
    expect(MAX_ANSWER_BYTES).toBeGreaterThanOrEqual(1024 * 1024);
  });
});

/**
 * A body file cut short while its segment is sent (something wrote to the card): the client's PUT
 * fails with the body's own E_FILE_CHANGED, at once, without a retry (no server can take the range)
 * and never as a transport failure (which the job layer would retry until --once gives up).
 */
describe('the client: a segment body whose file is cut short', () => {
  const tmp = makeTempDir('bodycam-dock-short-');
  let puts = 0;
  const server = createServer((req, res) => { puts++; req.resume(); req.on('end', () => { res.statusCode = 201; res.end('{}'); }); });
  let base = '';
  beforeAll(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => { server.closeAllConnections(); await new Promise((resolve) => server.close(resolve)); tmp.cleanup(); });

  const MiB = 1024 * 1024;
  const client = (bucket: TokenBucket): IngestClient => new IngestClient({ endpoint: base, token: 't', requestTimeoutMs: 60_000, retries: 4, bucket, logger: quietLogger(), policy: { baseMs: 1, maxMs: 2, factor: 2, jitter: 'none', maxRetryAfterMs: 2 } });

  /** The bucket's first take (the first chunk read) cuts the file inside the range being sent. */
  class CuttingBucket extends TokenBucket {
    private cut = false;
    constructor(private readonly path: string, private readonly at: number) { super(1e12); }
    override take(bytes: number, signal?: AbortSignal): Promise<void> {
      if (!this.cut) { this.cut = true; truncateSync(this.path, this.at); }
      return super.take(bytes, signal);
    }
  }

  it.each([
    ['capped, cut mid-body at a chosen byte', (path: string) => new CuttingBucket(path, 3 * MiB + 512 * 1024)],
    ['capped, cut before the body', (path: string) => { truncateSync(path, 3 * MiB + 512 * 1024); return new TokenBucket(1e12); }],
    ['uncapped, cut before the body', (path: string) => { truncateSync(path, 3 * MiB + 512 * 1024); return new TokenBucket(0); }],
  ])('%s: E_FILE_CHANGED, one request, no retry', async (_how, bucketFor) => {
    const path = join(tmp.path, `s-${puts}.bin`);
    const data = randomBytes(4 * MiB);
    writeFileSync(path, data);
    const bucket = bucketFor(path);
    puts = 0;
    const range = { index: 3, offset: 3 * MiB, length: MiB, sha256: sha256Hex(data.subarray(3 * MiB)) };
    const failure = await client(bucket).putSegment('rec-1', path, range).then(() => undefined, (error: unknown) => error);
    expect(failure).toBeInstanceOf(InputError);
    expect(failure).toMatchObject({ code: 'E_FILE_CHANGED', message: expect.stringMatching(/ended 524288 bytes before the 1048576-byte range/) });
    expect(puts).toBeLessThanOrEqual(1);
  });
});
