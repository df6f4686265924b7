/**
 * The dock's own page (issue 14) in headless Chromium, every item of the list: an empty
 * bay; a camera docking (docked), its upload slowed by the bandwidth cap (offloading with bytes,
 * rate and ETA), then done; a bay in attention with its reason (a second dock whose token the
 * server rejects: token_rejected); the queue; a quarantined recording with its reason (a zero-byte
 * file); hostile bay and file names shown as text; the page refreshes by itself; read-only (no
 * form, writes answer 405 and change nothing); the port is bound on 127.0.0.1 only.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { cpSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { startDockAgent, type DockAgent } from '../../src/dock/index.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { makeTempDir } from '../helpers/tmp.js';
import { FIXTURES, launchBrowser, withPage } from '../helpers/console.js';
import { dockConfig, serverKeyFile } from '../helpers/dock.js';

let tmp: ReturnType<typeof makeTempDir>;
let server: TestServer;
let agent: DockAgent;
/** A second dock whose token the server does not know. */
let refused: DockAgent;
let browser: BrowserContext;

// Markup in a bay folder's name and a file's name: the page must show it as text.
const HOSTILE_BAY = '<img src=x onerror=window.__pwned=1>';
const HOSTILE_FILE = '<img src=x onerror=window.__pwned=2>.mp4';

type Status = { bays: Array<{ bay: string; state: string; reasonCode?: string }>; queue: { quarantined: number; recordingsTotal: number; recordings: Array<{ file: string; state: string; reasonCode?: string }> } };
const statusOf = async (port: number | undefined) => await (await fetch(`http://127.0.0.1:${port}/status`)).json() as Status;

/**
 * Evaluate `expression` in the page, again if the page's own refresh replaced the document
 * meanwhile (an expression string: the tests' types have no DOM).
 */
async function inPage<T>(page: Page, expression: string): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await page.evaluate(expression) as T;
    } catch (error) {
      if (attempt > 20 || !/context was destroyed|navigat/i.test(String(error))) throw error;
      await page.waitForLoadState('load');
    }
  }
}

/** Poll an expression until it is true (with a generous deadline; the machine is loaded). */
async function until(page: Page, expression: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!await inPage<boolean>(page, expression)) {
    if (Date.now() > deadline) throw new Error(`${expression} still false after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Expression: the bay element whose data-bay is exactly `name` (no selector quoting of hostile names). */
const bayEl = (name: string) => `[...document.querySelectorAll('.bay')].find((b) => b.dataset.bay === ${JSON.stringify(name)})`;
const bayText = (page: Page, name: string, part: string) => inPage<string | null>(page, `${bayEl(name)}?.querySelector(${JSON.stringify(part)})?.textContent ?? null`);

beforeAll(async () => {
  tmp = makeTempDir('bodycam-dockpage-');
  server = await startTestServer();
  const bays = join(tmp.path, 'bays');
  mkdirSync(bays, { recursive: true });
  mkdirSync(join(bays, 'bay0'));
  const hostile = join(bays, HOSTILE_BAY);
  cpSync(join(FIXTURES, 'zero-byte'), hostile, { recursive: true });
  writeFileSync(join(hostile, 'DCIM', '100BWC', HOSTILE_FILE), '');
  // 16 KB/s: the 84 KB recording of bay1 takes about 5 s, more than one of the page's 2 s refreshes.
  agent = await startDockAgent(dockConfig(tmp.path, server.url, { serverKey: serverKeyFile(server), rescanInterval: '0.3s', segmentSeconds: '1s', settle: '0.3s', maxRate: '16KB/s' }));
  const other = join(tmp.path, 'refused');
  mkdirSync(other);
  const badToken = join(other, 'bad-token');
  writeFileSync(badToken, 'not-a-token-this-server-knows-0123456789abcdef\n', { mode: 0o600 });
  const config = dockConfig(other, server.url, { serverKey: serverKeyFile(server), rescanInterval: '0.3s', settle: '0.3s', dockId: 'dock-2', tokenFile: badToken });
  cpSync(join(FIXTURES, 'mp4-h264'), join(other, 'bays', 'bayA'), { recursive: true });
  refused = await startDockAgent(config);
  browser = await launchBrowser(join(tmp.path, 'profile'));
}, 120_000);

afterAll(async () => {
  if (process.env.BODYCAM_SCREENSHOT_DIR) cpSync(join(tmp.path, 'shots'), process.env.BODYCAM_SCREENSHOT_DIR, { recursive: true });
  await browser?.close();
  await refused?.stop();
  await agent?.stop();
  await server?.close();
  tmp?.cleanup();
});

describe('dock status page', () => {
  it('shows a bay going from docked to offloading (bytes, rate, ETA) to done, by itself', async () => {
    await withPage(browser, async (page) => {
      let loads = 0;
      page.on('load', () => { loads++; });
      const url = `http://127.0.0.1:${agent.statusPort}/`;
      const response = await page.goto(url);
      expect(response!.headers()['content-type']).toContain('text/html');
      expect(response!.headers()['content-security-policy']).toContain("default-src 'none'");
      const bay = join(tmp.path, 'bays', 'bay1');
      mkdirSync(bay, { recursive: true });
      cpSync(join(FIXTURES, 'fmp4-h264', 'DEVICE.json'), join(bay, 'DEVICE.json'));
      // No reload by the test: the page refreshes itself.
      await page.waitForSelector('.bay[data-bay="bay1"][data-state="docked"]', { timeout: 20_000 });
      mkdirSync(join(tmp.path, 'shots'), { recursive: true });
      await page.screenshot({ path: join(tmp.path, 'shots', 'dock-docked.png') });
      cpSync(join(FIXTURES, 'fmp4-h264', 'DCIM'), join(bay, 'DCIM'), { recursive: true });
      // Offloading: bytes sent of the total, the rate and the time left, all on one refresh.
      const offloading = /^\d+(\.\d)? [KM]?B of 84\.6 KB \(\d+%\) · \d+(\.\d)? [KM]?B\/s · ETA \d+ s$/;
      await until(page, `${offloading}.test(document.querySelector('.bay[data-bay="bay1"][data-state="offloading"] .detail')?.textContent ?? '')`, 30_000);
      expect(await page.locator('.bay[data-bay="bay1"] progress').count()).toBe(1);
      await page.screenshot({ path: join(tmp.path, 'shots', 'dock-offloading.png') });
      await page.waitForSelector('.bay[data-bay="bay1"][data-state="done"]', { timeout: 40_000 });
      expect(await page.textContent('.bay[data-bay="bay1"] .serial')).toContain('BWC839682');
      expect(loads).toBeGreaterThanOrEqual(3);
      await page.screenshot({ path: join(tmp.path, 'shots', 'dock-done.png') });
      expect(await page.locator('form, input, button, script').count()).toBe(0);
      // Scripts still get JSON from / and /status.
      const json = await (await fetch(url)).json() as Status;
      expect(json.bays.find((b) => b.bay === 'bay1')!.state).toBe('done');
    });
  }, 120_000); // above the sum of its waits (20 + 30 + 40 s): on a loaded machine the wait that ran out says what was missing

  it('shows an empty bay, the queue, the quarantined recordings with their reasons, hostile names as text', async () => {
    await withPage(browser, async (page) => {
      await page.goto(`http://127.0.0.1:${agent.statusPort}/`);
      await page.waitForSelector('.bay[data-bay="bay0"][data-state="empty"]', { timeout: 20_000 });
      expect(await bayText(page, 'bay0', '.detail')).toBe('no camera');
      // Both zero-byte files quarantined: the bay is in attention with the code and the reason.
      await until(page, "document.querySelectorAll('#quarantined tr').length === 3", 20_000);
      const status = await statusOf(agent.statusPort);
      expect(status.queue.quarantined).toBe(2);
      expect(status.bays.find((b) => b.bay === HOSTILE_BAY)).toMatchObject({ state: 'attention', reasonCode: 'zero_byte' });
      await until(page, `${bayEl(HOSTILE_BAY)}?.dataset.state === 'attention'`, 20_000);
      expect(await bayText(page, HOSTILE_BAY, 'b')).toBe(`Bay ${HOSTILE_BAY}`);
      const detail = await bayText(page, HOSTILE_BAY, '.detail');
      expect(detail).toMatch(/^zero_byte: /);
      expect(detail).toContain(`${HOSTILE_FILE}: zero_byte: zero-byte file: nothing to ingest`);
      const rows = await inPage<string[][]>(page, "[...document.querySelectorAll('#quarantined tr')].slice(1).map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent))");
      expect(rows).toEqual(expect.arrayContaining([
        [`DCIM/100BWC/${HOSTILE_FILE}`, 'BWC796982', 'zero_byte', 'zero-byte file: nothing to ingest'],
        ['DCIM/100BWC/20251211_171823_BWC796982_0001.mp4', 'BWC796982', 'zero_byte', 'zero-byte file: nothing to ingest'],
      ]));
      expect(await page.textContent('h2:nth-of-type(2)')).toBe('Quarantined (2)');
      // The markup stayed text: no element made of it, no handler ran.
      expect(await page.locator('img').count()).toBe(0);
      expect(await inPage(page, 'window.__pwned ?? null')).toBeNull();
      // The queue: the journal's counters, as /status has them.
      const queue = await page.textContent('#queue');
      expect(queue).toMatch(/^\d+ queued · \d+ uploading · \d+ preparing · \d+ waiting · \d+ in backoff · \d+ complete · \d+ wiped · \d+ flagged · 2 quarantined · [\d.]+ [KM]?B sent$/);
      await page.screenshot({ path: join(tmp.path, 'shots', 'dock-quarantine.png') });
    });
  });

  it('shows a bay in attention with the reason when the server rejects the dock\'s token', async () => {
    await withPage(browser, async (page) => {
      await page.goto(`http://127.0.0.1:${refused.statusPort}/`);
      await page.waitForSelector('.bay[data-bay="bayA"][data-state="attention"][data-reason-code="token_rejected"]', { timeout: 30_000 });
      const detail = await bayText(page, 'bayA', '.detail');
      expect(detail).toMatch(/^token_rejected: /);
      expect(detail).toContain('the server rejected this dock\'s token');
      expect(await bayText(page, 'bayA', '.serial')).toBe('BWC196360');
      await page.screenshot({ path: join(tmp.path, 'shots', 'dock-attention.png') });
    });
  });

  it('is read-only and listens on 127.0.0.1 only', async () => {
    const port = agent.statusPort!;
    const before = await statusOf(port);
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
      for (const path of ['/', '/status', '/metrics', '/healthz', '/retry', '/quarantine']) {
        const answer = await fetch(`http://127.0.0.1:${port}${path}`, { method, body: method === 'DELETE' ? undefined : '{"bay":"bay1"}', headers: { 'content-type': 'application/json' } });
        expect([404, 405]).toContain(answer.status);
        await answer.arrayBuffer();
      }
    }
    const after = await statusOf(port);
    expect(after.queue.recordingsTotal).toBe(before.queue.recordingsTotal);
    expect(after.queue.recordings.map((r) => [r.file, r.state])).toEqual(before.queue.recordings.map((r) => [r.file, r.state]));
    expect(after.bays.map((b) => [b.bay, b.state])).toEqual(before.bays.map((b) => [b.bay, b.state]));
    // The port file names the loopback address; another loopback address (127.0.0.2, which a
    // socket bound to 0.0.0.0 would answer) is refused.
    expect(JSON.parse(readFileSync(join(tmp.path, 'state', 'status.json'), 'utf8')).url).toBe(`http://127.0.0.1:${port}`);
    const refusedAt = await new Promise<string>((resolve) => {
      const socket = connect({ host: '127.0.0.2', port }, () => { socket.destroy(); resolve('connected'); });
      socket.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
    });
    expect(refusedAt).toBe('ECONNREFUSED');
  });

  it('answers HEAD like GET without a body, and only a loopback Host with its port (DNS rebinding)', async () => {
    const port = agent.statusPort!;
    const ask = (method: string, path: string, host: string) => new Promise<{ status: number; body: string; length?: string }>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port, method, path, headers: { host } }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (c: string) => { body += c; }).on('end', () => resolve({ status: res.statusCode!, body, ...(res.headers['content-length'] ? { length: res.headers['content-length'] } : {}) }));
      });
      req.on('error', reject).end();
    });
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `LOCALHOST:${port}`, `[::1]:${port}`]) expect((await ask('GET', '/status', host)).status).toBe(200);
    for (const host of [`evil.example:${port}`, 'evil.example', `127.0.0.1:${port + 1}`, '127.0.0.1', `127.0.0.1.evil.example:${port}`]) {
      const refused = await ask('GET', '/status', host);
      expect([host, refused.status]).toEqual([host, 421]);
      expect(refused.body).not.toContain('bays');
    }
    const head = await ask('HEAD', '/healthz', `127.0.0.1:${port}`);
    expect([200, 503]).toContain(head.status);
    expect(head.body).toBe('');
    expect((await ask('HEAD', '/status', `127.0.0.1:${port}`)).status).toBe(200);
  });
});
