/**
 * Issue 9 item 12: connections. After an early error answer (401, 413, 429 before the body is
 * read) the server sends `Connection: close` and closes the socket within seconds instead of
 * draining the unread body; concurrent requests are capped per dock and in total (429 +
 * Retry-After); manifest bodies are capped by bytes as they stream and cut by an idle and a total
 * timeout, so slow manifest posts cannot grow the server's memory.
 * Through the real built CLI server (`npm run build` first) on 127.0.0.1, port 0; memory is the
 * server process's own (VmRSS / VmHWM in /proc/<pid>/status).
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { LINGER_MS } from '../../src/server/connections.js';
import { makeTempDir } from '../helpers/tmp.js';
import { ServerProcess, sleep, TOKENS } from '../helpers/reliability.js';

const tmp = makeTempDir('bodycam-item12-');
const servers: ServerProcess[] = [];
afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
  tmp.cleanup();
});

async function startServer(name: string, args: string[] = []): Promise<ServerProcess> {
  const server = new ServerProcess(join(tmp.path, name), args);
  servers.push(server);
  await server.start();
  return server;
}

/** Times from the connect: the first answer byte (0 if none came) and the close. */
interface SlowResult { answer: string; status: number; answeredAfterMs: number; closedAfterMs: number; headers: string }

/**
 * An early answer closes its socket after the server's short linger, not after draining the body:
 * measured from the answer, not from the connect, so that a loaded machine answering late (7.2 s
 * after the connect at load 30) does not fail a server that closed promptly after answering.
 */
const CLOSED_AFTER_ANSWER_MS = LINGER_MS + 10_000; // draining instead would last until the hard stop
const closedAfterAnswer = (r: SlowResult): number => r.closedAfterMs - r.answeredAfterMs;
/**
 * The test's own end of a socket the server never closes. Far above any timeout under test: at load 30
 * (the full run of 2026-12-02 02:20) a server reading 100 x 768 KiB had not answered one socket within
 * 60 s, the hard stop then, which cut it with no answer (status 0) instead of letting the 408 arrive.
 */
const HARD_STOP_MS = 150_000;
/** A case outlives its sockets' hard stop: the assertion, not jest's timeout, says which socket was left. */
const CASE_TIMEOUT_MS = HARD_STOP_MS + 60_000;
/** Status and close of an answer; an unanswered socket also shows when it ended (0: the hard stop cut it). */
const outcome = (r: SlowResult) => ({ status: r.status, close: r.headers.includes('connection: close'), ...(r.status === 0 ? { closedAfterMs: r.closedAfterMs } : {}) });

/**
 * One raw HTTP request whose body arrives slowly: the head, `first` bytes at once, then
 * `trickle` bytes every `everyMs` (0: nothing more) until the server closes the socket.
 * Resolves when the socket is closed, however that happens.
 */
function slowRequest(port: number, head: string, first: number, trickle = 0, everyMs = 250): Promise<SlowResult> {
  return new Promise((resolve) => {
    const started = Date.now();
    const socket = connect({ host: '127.0.0.1', port });
    let answer = '';
    let answeredAfterMs = 0;
    let timer: NodeJS.Timeout | undefined;
    socket.on('data', (d: Buffer) => { if (!answer) answeredAfterMs = Date.now() - started; answer += d.toString('latin1'); });
    socket.on('error', () => {});
    socket.on('close', () => {
      clearInterval(timer);
      const [headers = ''] = answer.split('\r\n\r\n');
      resolve({ answer, headers: headers.toLowerCase(), status: Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 0), answeredAfterMs, closedAfterMs: Date.now() - started });
    });
    socket.write(head);
    if (first > 0) socket.write(Buffer.alloc(first, 0x61));
    if (trickle > 0) timer = setInterval(() => { if (!socket.destroyed) socket.write(Buffer.alloc(trickle, 0x61)); }, everyMs);
    // A hard stop so that a server that never closes fails the test instead of hanging it.
    setTimeout(() => socket.destroy(), HARD_STOP_MS).unref();
  });
}

const head = (method: string, path: string, headers: Record<string, string>) =>
  `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
const segmentPut = (auth?: string) => head('PUT', '/v1/recordings/CAM1-0123/segments/0', {
  ...(auth ? { Authorization: `Bearer ${auth}` } : {}), 'Content-Type': 'application/octet-stream', 'Content-Length': '10000000', 'Content-Digest': `sha-256=:${Buffer.alloc(32).toString('base64')}:`,
});
const manifestPost = (length: number, auth?: string) => head('POST', '/v1/recordings', {
  ...(auth ? { Authorization: `Bearer ${auth}` } : {}), 'Content-Type': 'application/json', 'Content-Length': String(length),
});

function memoryOf(pid: number): { rss: number; hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)![1]) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

describe('item 12: connections', () => {
  it('50 unauthenticated slow uploads (and oversized manifests) are answered and closed within seconds', async () => {
    const server = await startServer('early');
    const requests = [
      ...Array.from({ length: 25 }, () => slowRequest(server.port, segmentPut(), 1000, 100)),
      ...Array.from({ length: 15 }, () => slowRequest(server.port, segmentPut('not-a-token-of-any-dock-at-all-xxxxxxxxxx'), 1000, 100)),
      ...Array.from({ length: 10 }, () => slowRequest(server.port, manifestPost(3_000_000), 1000, 100)),
    ];
    // An authenticated manifest declaring more than the limit is refused before its body is read.
    const oversized = Array.from({ length: 5 }, () => slowRequest(server.port, manifestPost(5 * 1024 * 1024, TOKENS['dock-1']), 1000, 100));
    const unauthenticated = await Promise.all(requests);
    const tooLarge = await Promise.all(oversized);
    for (const r of unauthenticated) {
      expect(outcome(r)).toEqual({ status: 401, close: true });
      expect(closedAfterAnswer(r)).toBeLessThan(CLOSED_AFTER_ANSWER_MS);
    }
    for (const r of tooLarge) {
      expect(outcome(r)).toEqual({ status: 413, close: true });
      expect(closedAfterAnswer(r)).toBeLessThan(CLOSED_AFTER_ANSWER_MS);
    }
    const slowest = Math.max(...[...unauthenticated, ...tooLarge].map((r) => r.closedAfterMs));
    process.stdout.write(`item12: 50 unauthenticated slow uploads + 5 oversized manifests closed, slowest after ${slowest} ms\n`);
    expect((await server.request('/v1/recordings')).status).toBe(200);
  }, CASE_TIMEOUT_MS);

  it('100 authenticated slow manifest posts: memory stays bounded, past the cap 429 + Retry-After, the rest cut by the manifest timeouts', async () => {
    const server = await startServer('slow-manifests', ['--body-idle-timeout', '2s', '--manifest-timeout', '5s']);
    const pid = server.child!.pid!;
    for (let i = 0; i < 20; i++) await (await server.request('/v1/recordings')).arrayBuffer(); // warm up
    await sleep(300);
    const before = memoryOf(pid);
    const declared = 1024 * 1024;
    // Each sends 768 KiB of its declared 1 MiB at once, then one byte a second: never idle, never done.
    const trickling = Array.from({ length: 100 }, () => slowRequest(server.port, manifestPost(declared, TOKENS['dock-1']), 768 * 1024, 1, 1000));
    // And five that stall after their first bytes: cut by the idle timeout.
    const stalled = Array.from({ length: 5 }, () => slowRequest(server.port, manifestPost(10_000, TOKENS['dock-2']), 1000));
    await sleep(2_500);
    const during = memoryOf(pid);
    const results = await Promise.all(trickling);
    const idle = await Promise.all(stalled);
    const after = memoryOf(pid);

    const refused = results.filter((r) => r.status === 429);
    const accepted = results.filter((r) => r.status !== 429);
    for (const r of refused) {
      expect(r.headers).toMatch(/\r\nretry-after: \d+/);
      expect(r.headers).toContain('connection: close');
      expect(closedAfterAnswer(r)).toBeLessThan(CLOSED_AFTER_ANSWER_MS);
    }
    // At most 32 in flight for one dock (fewer when the manifest byte budget is reached first).
    expect(refused.length).toBeGreaterThanOrEqual(100 - 32);
    expect(accepted.length).toBeGreaterThan(0);
    for (const r of accepted) {
      expect(outcome(r)).toEqual({ status: 408, close: true });
      // Cut by the 5 s total timeout: never before it (a lower bound holds on any load), and answered (408), so not
      // by the test's hard stop; how late past 5 s is the machine's load, not the server's doing.
      expect(r.answeredAfterMs).toBeGreaterThanOrEqual(4_900);
      expect(r.closedAfterMs).toBeLessThan(HARD_STOP_MS);
    }
    for (const r of idle) {
      expect(outcome(r)).toEqual({ status: 408, close: true });
      expect(r.answeredAfterMs).toBeGreaterThanOrEqual(1_900); // idle timeout 2 s
      expect(r.closedAfterMs).toBeLessThan(HARD_STOP_MS);
    }
    const growth = Math.max(during.rss, after.hwm) - before.rss;
    process.stdout.write(`item12: 100 slow manifests: ${refused.length} refused 429, ${accepted.length} cut 408; RSS ${Math.round(before.rss / 2 ** 20)} MiB before, ${Math.round(during.rss / 2 ** 20)} MiB during, peak ${Math.round(after.hwm / 2 ** 20)} MiB (growth ${Math.round(growth / 2 ** 20)} MiB)\n`);
    // Bounded by the connection cap (100 × the 4 MiB manifest limit would be 400 MiB); pino and prom-client raised the floor.
    expect(growth).toBeLessThan(96 * 1024 * 1024);
    expect((await server.request('/v1/recordings')).status).toBe(200);
  }, CASE_TIMEOUT_MS);

  it('the total cap holds across docks: --max-requests 20 refuses the 21st request in flight with 429', async () => {
    // The idle timeout frees the 20 slots: long enough that all 30 are in before the first is cut, on a loaded machine too.
    const server = await startServer('total-cap', ['--max-requests', '20', '--body-idle-timeout', '5s']);
    const docks = Object.keys(TOKENS);
    const held = Array.from({ length: 30 }, (_, i) => slowRequest(server.port, manifestPost(10_000, TOKENS[docks[i % docks.length]!]), 1000));
    const results = await Promise.all(held);
    const statuses = results.map((r) => r.status).sort();
    expect(statuses.filter((s) => s === 429)).toHaveLength(10);
    expect(statuses.filter((s) => s === 408)).toHaveLength(20);
    expect((await server.request('/v1/recordings')).status).toBe(200);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toContain('bodycam_requests_refused_total{cap="server"} 10');
    expect(metrics).toContain('bodycam_requests_in_flight 0');
  }, CASE_TIMEOUT_MS);
});
