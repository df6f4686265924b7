/**
 * The agent's local window: GET /status (JSON: bays and queue) and GET /metrics
 * (Prometheus text), on 127.0.0.1 only. The port actually bound is written to
 * <stateDir>/status.json so `bodycam status --state-dir` can find an agent on port 0.
 */
import { createServer, type Server } from 'node:http';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { EnvironmentError } from '../errors.js';
import type { DockStatus } from './agent.js';
import type { DockProblem } from './attention.js';
import { DOCK_PAGE_CSP, DockPage } from './statusPage.js';

export const STATUS_FILE = 'status.json';
/**
 * Sent with every answer of GET /status: the agent's pid, as status.json also records it. `bodycam
 * status` shows an answer only with it (another program may have the port of a stale status.json), and
 * only with status.json's pid (another dock may have it).
 */
export const DOCK_PID_HEADER = 'bodycam-dock-pid';

export interface StatusSource {
  status(): unknown;
  metricsText(): Promise<string>;
  /** Dock-level problems (src/dock/attention.ts): /healthz is 503 while there is any. */
  attention?(): DockProblem[];
}

export interface StatusServer { port: number; close(): Promise<void> }

/** The Host header names this machine's loopback and the bound port (a missing port is 80). */
export function loopbackHost(host: string | undefined, port: number): boolean {
  if (!host) return false;
  const match = /^(127\.0\.0\.1|localhost|\[::1\])(?::(\d+))?$/i.exec(host.trim());
  if (!match) return false;
  return Number(match[2] ?? 80) === port;
}

export async function startStatusServer(source: StatusSource, port: number, stateDir: string): Promise<StatusServer> {
  const page = new DockPage();
  let bound = port;
  const server: Server = createServer((req, res) => {
    try {
      const path = (req.url ?? '/').split('?')[0];
      // Read-only: nothing on this unauthenticated port changes anything (docs/dock.md). HEAD is a
      // GET whose body node:http leaves out (monitoring probes use it).
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { 'content-type': 'text/plain', allow: 'GET, HEAD' });
        res.end('read-only: only GET and HEAD\n');
        return;
      }
      // DNS rebinding: a web page whose name was rebound to 127.0.0.1 sends its own name as Host.
      if (!loopbackHost(req.headers.host, bound)) {
        res.writeHead(421, { 'content-type': 'text/plain' });
        res.end('misdirected: this port answers only Host 127.0.0.1, localhost or [::1] with its port\n');
        return;
      }
      // A browser asking for / gets the page (statusPage.ts); scripts get JSON there as before.
      if (path === '/' && (req.headers.accept ?? '').includes('text/html')) {
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-security-policy': DOCK_PAGE_CSP, 'x-content-type-options': 'nosniff', 'cache-control': 'no-store' });
        res.end(page.render(source.status() as DockStatus));
      } else if (path === '/status' || path === '/') {
        res.writeHead(200, { 'content-type': 'application/json', [DOCK_PID_HEADER]: String(process.pid) });
        res.end(JSON.stringify(source.status()));
      } else if (path === '/metrics') {
        source.metricsText().then((text) => {
          res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
          res.end(text);
        }, (error: unknown) => {
          res.writeHead(500, { 'content-type': 'text/plain' });
          res.end(`metrics failed: ${(error as Error).message}\n`);
        });
      } else if (path === '/healthz') {
        // Not ok while the server refuses the dock (token, dock id, keys, protocol): a probe that
        // restarts or pages on this sees it at the first refusal, with the code and what to fix.
        const problems = source.attention?.() ?? [];
        res.writeHead(problems.length ? 503 : 200, { 'content-type': 'text/plain' });
        res.end(problems.length ? `attention\n${problems.map((p) => `${p.code}: ${p.reason}\n`).join('')}` : 'ok\n');
      } else {
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('not found\n');
      }
    } catch (error) {
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(`status failed: ${(error as Error).message}\n`);
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (cause: NodeJS.ErrnoException) => reject(new EnvironmentError('E_STATUS_PORT',
      cause.code === 'EADDRINUSE' ? `status port ${port} on 127.0.0.1 is in use: choose another with --status-port (0 = any free port)` : `cannot open the status port ${port}: ${cause.message}`, { cause })));
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  bound = typeof address === 'object' && address ? address.port : port;
  try {
    writeFileSync(join(stateDir, STATUS_FILE), JSON.stringify({ port: bound, pid: process.pid, url: `http://127.0.0.1:${bound}` }) + '\n');
  } catch { /* the port file is a convenience */ }
  return {
    port: bound,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections?.(); server.close(() => resolve()); }),
  };
}
