/**
 * The dock's own page (issue 14) in headless Chromium: a camera docks (bay "docked"), its
 * recording goes up, the bay shows "done"; the page refreshes by itself and is read-only.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { cpSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { BrowserContext } from 'playwright-core';
import { startDockAgent, type DockAgent } from '../../src/dock/index.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { makeTempDir } from '../helpers/tmp.js';
import { FIXTURES, launchBrowser } from '../helpers/console.js';
import { dockConfig, serverKeyFile } from '../helpers/dock.js';

let tmp: ReturnType<typeof makeTempDir>;
let server: TestServer;
let agent: DockAgent;
let browser: BrowserContext;

beforeAll(async () => {
  tmp = makeTempDir('bodycam-dockpage-');
  server = await startTestServer();
  agent = await startDockAgent(dockConfig(tmp.path, server.url, { serverKey: serverKeyFile(server), rescanInterval: '0.3s', segmentSeconds: '1s', settle: '0.3s' }));
  browser = await launchBrowser(join(tmp.path, 'profile'));
}, 60_000);

afterAll(async () => {
  if (process.env.BODYCAM_SCREENSHOT_DIR) cpSync(join(tmp.path, 'shots'), process.env.BODYCAM_SCREENSHOT_DIR, { recursive: true });
  await browser?.close();
  await agent?.stop();
  await server?.close();
  tmp?.cleanup();
});

describe('dock status page', () => {
  it('shows a bay going from docked to done, by itself', async () => {
    const page = await browser.newPage();
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
    await page.waitForSelector('.bay[data-bay="bay1"][data-state="done"]', { timeout: 40_000 });
    expect(await page.textContent('.bay[data-bay="bay1"] .serial')).toContain('BWC839682');
    await page.screenshot({ path: join(tmp.path, 'shots', 'dock-done.png') });
    expect(await page.locator('form, input, button').count()).toBe(0);
    // Scripts still get JSON from / and /status.
    const json = await (await fetch(url)).json() as { bays: Array<{ bay: string; state: string }> };
    expect(json.bays.find((b) => b.bay === 'bay1')!.state).toBe('done');
    await page.close();
  }, 60_000);
});
