import { describe, it, expect, beforeAll, afterAll, afterEach } from '@jest/globals';
import { createServer, request, Agent, type Server, type IncomingMessage } from 'node:http';
import { connect } from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { startFaultProxy, type FaultProxy } from '../../src/faultproxy/faultProxy.js';
import { HttpRequestFramer } from '../../src/faultproxy/httpFramer.js';

/** A tiny real upstream: answers every request with the SHA-256 and length of its body. */
interface Upstream { server: Server; port: number; completed: number; received: number[]; aborted: number }
async function startUpstream(): Promise<Upstream> {
  const state: Upstream = { server: undefined as unknown as Server, port: 0, completed: 0, received: [], aborted: 0 };
  state.server = createServer((req, res) => {
    const hash = createHash('sha256');
    let length = 0;
    req.on('data', (chunk: Buffer) => { hash.update(chunk); length += chunk.length; });
    req.on('aborted', () => { state.aborted++; state.received.push(length); });
    req.on('end', () => {
      state.completed++;
      state.received.push(length);
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ sha256: hash.digest('hex'), length, path: req.url }));
    });
  });
  state.server.listen(0, '127.0.0.1');
  await once(state.server, 'listening');
  state.port = (state.server.address() as { port: number }).port;
  return state;
}

interface Answer { status: number; headers: IncomingMessage['headers']; body: string }
function send(port: number, options: { method?: string; path?: string; body?: Buffer; agent?: Agent; timeoutMs?: number; chunked?: boolean } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({
      host: '127.0.0.1', port, method: options.method ?? (options.body ? 'POST' : 'GET'), path: options.path ?? '/',
      agent: options.agent ?? false,
      headers: options.body && !options.chunked ? { 'content-length': options.body.length } : {},
    }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (options.timeoutMs) req.setTimeout(options.timeoutMs, () => req.destroy(Object.assign(new Error('client timeout'), { code: 'CLIENT_TIMEOUT' })));
    if (options.body && options.chunked) {
      // several writes → several chunks on the wire
      const third = Math.ceil(options.body.length / 3);
      for (let i = 0; i < options.body.length; i += third) req.write(options.body.subarray(i, i + third));
      req.end();
    } else {
      req.end(options.body);
    }
  });
}

function sha(buffer: Buffer): string {
  return createHash('sha256').update(buffer).digest('hex');
}

describe('fault proxy', () => {
  let upstream: Upstream;
  let proxy: FaultProxy;

  beforeAll(async () => { upstream = await startUpstream(); });
  afterAll(async () => { upstream.server.closeAllConnections(); upstream.server.close(); });
  afterEach(async () => { await proxy?.close(); });

  const start = async (): Promise<FaultProxy> => {
    proxy = await startFaultProxy({ target: { host: '127.0.0.1', port: upstream.port } });
    return proxy;
  };

  it('pass: forwards requests and bodies byte-exact', async () => {
    await start();
    const body = randomBytes(700_000);
    const answer = await send(proxy.port, { body, path: '/x' });
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body)).toEqual({ sha256: sha(body), length: body.length, path: '/x' });
    expect(proxy.stats.bytesToServer).toBeGreaterThan(body.length);
    expect(proxy.url).toBe(`http://127.0.0.1:${proxy.port}`);
  });

  it('down (refuse): connections are refused, then the same port serves again', async () => {
    await start();
    const port = proxy.port;
    await proxy.setMode({ kind: 'down' });
    await expect(send(port)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await proxy.setMode('pass');
    expect(proxy.port).toBe(port);
    expect((await send(port)).status).toBe(200);
  });

  it('down (reset): every connection is reset on accept, live ones too', async () => {
    await start();
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    expect((await send(proxy.port, { agent })).status).toBe(200);
    await proxy.setMode({ kind: 'down', how: 'reset' });
    await expect(send(proxy.port)).rejects.toMatchObject({ code: 'ECONNRESET' });
    expect(proxy.stats.refused).toBe(1);
    expect(proxy.stats.severed).toBe(1);
    await proxy.setMode('pass');
    expect((await send(proxy.port)).status).toBe(200);
    agent.destroy();
  });

  it('reset-after-bytes: a body is cut after N bytes, then the link is healthy again', async () => {
    await start();
    const before = { completed: upstream.completed, aborted: upstream.aborted };
    await proxy.setMode({ kind: 'reset-after-bytes', bytes: 50_000, times: 1 });
    const body = randomBytes(400_000);
    await expect(send(proxy.port, { body })).rejects.toMatchObject({ code: expect.stringMatching(/ECONNRESET|EPIPE/) });
    // the server saw a request that ended early, with less than the body
    // (a deadline, not a count of turns: the upstream's 'aborted' may come seconds later on a loaded machine)
    for (const deadline = Date.now() + 30_000; upstream.aborted === before.aborted && Date.now() < deadline;) await new Promise((r) => setTimeout(r, 20));
    expect(upstream.aborted).toBe(before.aborted + 1);
    expect(upstream.received[upstream.received.length - 1]).toBeLessThan(50_000);
    expect(upstream.completed).toBe(before.completed);
    expect(proxy.stats.resets).toBe(1);
    expect(proxy.mode.kind).toBe('pass');
    const answer = await send(proxy.port, { body });
    expect(JSON.parse(answer.body).sha256).toBe(sha(body));
  });

  it('stall: holds every byte until the mode changes, then delivers them', async () => {
    await start();
    await proxy.setMode('stall');
    const before = upstream.completed;
    const pending = send(proxy.port, { body: Buffer.from('held') });
    await new Promise((r) => setTimeout(r, 300));
    expect(upstream.completed).toBe(before);
    expect(proxy.stats.bytesToServer).toBe(0);
    await proxy.setMode('pass');
    const answer = await pending;
    expect(JSON.parse(answer.body).length).toBe(4);
  });

  it('latency: each direction is delayed by at least the given time', async () => {
    await start();
    await proxy.setMode({ kind: 'latency', ms: 150 });
    const started = Date.now();
    const answer = await send(proxy.port);
    expect(answer.status).toBe(200);
    // request out and answer back: two delays at least (a lower bound, not a speed target)
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
  });

  it('bandwidth: a body takes at least size / rate to cross', async () => {
    await start();
    await proxy.setMode({ kind: 'bandwidth', bytesPerSecond: 200_000 });
    const body = randomBytes(100_000);
    const started = Date.now();
    const answer = await send(proxy.port, { body });
    expect(JSON.parse(answer.body).sha256).toBe(sha(body));
    expect(Date.now() - started).toBeGreaterThanOrEqual(450);
  });

  it('blackhole: accepts the connection and never answers', async () => {
    await start();
    await proxy.setMode('blackhole');
    const before = upstream.completed;
    // the TCP connection itself succeeds
    const socket = connect(proxy.port, '127.0.0.1');
    await once(socket, 'connect');
    socket.destroy();
    await expect(send(proxy.port, { body: Buffer.from('lost'), timeoutMs: 400 })).rejects.toMatchObject({ code: 'CLIENT_TIMEOUT' });
    expect(upstream.completed).toBe(before);
    expect(proxy.stats.blackholed).toBeGreaterThanOrEqual(2);
    await proxy.setMode('pass');
    expect((await send(proxy.port)).status).toBe(200);
  });

  it('half-close: the request is cut with a FIN and no answer comes', async () => {
    await start();
    await proxy.setMode('half-close');
    await expect(send(proxy.port, { body: Buffer.from('cut') })).rejects.toMatchObject({ code: 'ECONNRESET' });
    expect(proxy.stats.halfClosed).toBe(1);
    expect(proxy.stats.resets).toBe(0);
  });

  it('http-status: answers the next N requests itself with Retry-After, then passes, on one keep-alive connection', async () => {
    await start();
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    expect((await send(proxy.port, { agent })).status).toBe(200);
    await proxy.setMode({ kind: 'http-status', status: 503, count: 2, retryAfterSeconds: 3 });
    const before = upstream.completed;
    const body = randomBytes(90_000);
    const first = await send(proxy.port, { agent, body });
    const second = await send(proxy.port, { agent, body, chunked: true });
    expect([first.status, second.status]).toEqual([503, 503]);
    expect(first.headers['retry-after']).toBe('3');
    expect(JSON.parse(first.body)).toMatchObject({ status: 503, code: 'unavailable' });
    expect(upstream.completed).toBe(before);
    expect(proxy.mode.kind).toBe('pass');
    const third = await send(proxy.port, { agent, body, chunked: true });
    expect(JSON.parse(third.body).sha256).toBe(sha(body));
    expect(proxy.stats.statusAnswers).toBe(2);
    expect(proxy.stats.connections).toBe(1);
    agent.destroy();
  });

  it('a fault with a budget falls back to the mode before it (a bandwidth cap stays)', async () => {
    await start();
    await proxy.setMode({ kind: 'bandwidth', bytesPerSecond: 1_000_000 });
    await proxy.setMode({ kind: 'http-status', status: 429, count: 1 });
    expect((await send(proxy.port)).status).toBe(429);
    expect(proxy.mode).toEqual({ kind: 'bandwidth', bytesPerSecond: 1_000_000 });
    expect((await send(proxy.port)).status).toBe(200);
  });

  it('rejects a malformed mode with a clear message', async () => {
    await start();
    await expect(proxy.setMode({ kind: 'latency', ms: -1 })).rejects.toThrow(/ms must be a positive number/);
    await expect(proxy.setMode({ kind: 'nope' } as never)).rejects.toThrow(/unknown fault mode "nope"/);
  });
});

describe('HTTP request framer', () => {
  const requests = [
    'GET /a HTTP/1.1\r\nHost: x\r\n\r\n',
    'PUT /b HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello',
    'POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Trailer: 1\r\n\r\n',
    'GET /d HTTP/1.1\r\n\r\n',
  ];
  const stream = Buffer.from(requests.join(''));

  it.each([1, 2, 7, stream.length])('finds request boundaries when fed %i bytes at a time', (step) => {
    const framer = new HttpRequestFramer();
    const byRequest = new Map<number, string>();
    let firsts = 0;
    let lasts = 0;
    for (let i = 0; i < stream.length; i += step) {
      for (const piece of framer.push(stream.subarray(i, i + step))) {
        byRequest.set(piece.request, (byRequest.get(piece.request) ?? '') + piece.data.toString('latin1'));
        if (piece.first) firsts++;
        if (piece.last) lasts++;
      }
    }
    expect([...byRequest.values()]).toEqual(requests);
    expect(firsts).toBe(4);
    expect(lasts).toBe(4);
    expect(framer.opaque).toBe(false);
  });

  it('turns opaque on bytes that are not HTTP', () => {
    const framer = new HttpRequestFramer();
    framer.push(Buffer.from('\x16\x03\x01 tls hello\r\n\r\nmore'));
    expect(framer.opaque).toBe(true);
  });
});
