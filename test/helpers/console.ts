/**
 * Console tests: a fixture camera recording cut by the dock's own planner and signed like a dock
 * would, uploaded to the real server; and headless Chromium (Debian's) driven by playwright-core.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { planSegments } from '../../src/dock/planner.js';
import { mediaSummary, probe } from '../../src/media/probe.js';
import { sha256Hex } from '../../src/protocol/digest.js';
import { merkleRoot } from '../../src/protocol/merkle.js';
import { signObject, type KeyPairPem } from '../../src/protocol/signing.js';
import { PROTOCOL_VERSION, type RecordingManifest } from '../../src/protocol/types.js';
import { segmentHeaders, type TestServer } from './server.js';

export const FIXTURES = new URL('../../fixtures/cameras/', import.meta.url).pathname;

export interface FixtureUpload { manifest: RecordingManifest; file: Buffer; segments: Buffer[] }

/**
 * `sidecarPatch`: fields written over the camera's sidecar (its bytes change, so the camera's signature of it no longer holds).
 * `transform`: the camera's file rewritten before the dock's planner sees it (e.g. `faststart`); `fileName` the name the manifest gives it.
 */
export async function fixtureRecording(camera: string, dockId: string, keys: KeyPairPem, segmentSeconds = 1, sidecarPatch?: Record<string, unknown>,
  options: { transform?: (file: Buffer) => Buffer; fileName?: string; recordingId?: string } = {}): Promise<FixtureUpload> {
  const root = join(FIXTURES, camera);
  const folder = join(root, 'DCIM', '100BWC');
  const cameraName = readdirSync(folder).find((f) => !f.endsWith('.json'))!;
  const name = options.fileName ?? cameraName;
  const original = readFileSync(join(folder, cameraName.replace(/\.[^.]+$/, '.json')));
  const scratch = options.transform ? mkdtempSync(join(tmpdir(), 'bodycam-fixture-')) : undefined;
  try {
    let path = join(folder, cameraName);
    if (options.transform && scratch) {
      path = join(scratch, cameraName);
      writeFileSync(path, options.transform(readFileSync(join(folder, cameraName))));
    }
    return await planned(path, name, root, original, dockId, keys, segmentSeconds, sidecarPatch, options.recordingId);
  } finally {
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  }
}

async function planned(path: string, name: string, root: string, original: Buffer, dockId: string, keys: KeyPairPem, segmentSeconds: number,
  sidecarPatch: Record<string, unknown> | undefined, recordingId: string | undefined): Promise<FixtureUpload> {
  const file = readFileSync(path);
  const sidecarBytes = sidecarPatch ? Buffer.from(JSON.stringify({ ...JSON.parse(original.toString('utf8')) as Record<string, unknown>, ...sidecarPatch }), 'utf8') : original;
  const device = JSON.parse(readFileSync(join(root, 'DEVICE.json'), 'utf8')) as { serial: string; model: string; firmware: string; publicKeyPem: string; clock: { offsetMs: number } };
  const probed = await probe(path);
  const media = mediaSummary(probed);
  const plan = await planSegments(path, file.length, { segmentSeconds, maxBytes: 8 * 1024 * 1024, formatName: probed.formatName });
  if (plan.packetSize) media.packetSize = plan.packetSize;
  if (plan.timeOrigin !== undefined) media.timeOrigin = plan.timeOrigin;
  const segments = plan.segments.map((s) => file.subarray(s.offset, s.offset + s.length));
  const entries = plan.segments.map((s, i) => ({ ...s, sha256: sha256Hex(segments[i]!) }));
  const unsigned = {
    protocol: PROTOCOL_VERSION, recordingId: recordingId ?? `${device.serial}-${sha256Hex(file).slice(0, 16)}-${dockId}`,
    device: { serial: device.serial, model: device.model, firmware: device.firmware, publicKeyPem: device.publicKeyPem, sidecar: JSON.parse(sidecarBytes.toString('utf8')) as Record<string, unknown>,
      sidecarSha256: sha256Hex(sidecarBytes), sidecarBase64: sidecarBytes.toString('base64'), clockOffsetMs: device.clock.offsetMs },
    dock: { id: dockId, publicKeyPem: keys.publicKeyPem, bay: '1' },
    file: { name, size: file.length, sha256: sha256Hex(file), media },
    integrity: { status: 'verified' as const, notes: [] },
    segments: entries, merkleRoot: merkleRoot(entries.map((e) => e.sha256)), createdAt: new Date().toISOString(),
  };
  const manifest = signObject(unsigned as unknown as Record<string, unknown>, keys.privateKeyPem) as unknown as RecordingManifest;
  return { manifest, file, segments };
}

/**
 * A plain MP4 with its moov at the end rewritten as "faststart" (moov before mdat), the way
 * `ffmpeg -movflags +faststart` lays it out: the moov moves in front of the first mdat and every
 * chunk offset (stco / co64) grows by the moov's size. The samples' bytes are unchanged.
 */
export function faststart(file: Buffer): Buffer {
  const boxes: Array<{ type: string; start: number; size: number }> = [];
  for (let at = 0; at + 8 <= file.length;) {
    const size = file.readUInt32BE(at);
    if (size < 8) throw new Error(`faststart: box of size ${size} at ${at}`);
    boxes.push({ type: file.toString('latin1', at + 4, at + 8), start: at, size });
    at += size;
  }
  const moov = boxes.find((b) => b.type === 'moov');
  const mdat = boxes.findIndex((b) => b.type === 'mdat');
  if (!moov || mdat < 0 || moov.start < boxes[mdat]!.start) throw new Error('faststart: needs a moov after the mdat');
  const moved = Buffer.from(file.subarray(moov.start, moov.start + moov.size));
  const containers = new Set(['moov', 'trak', 'mdia', 'minf', 'stbl', 'edts']);
  const shift = (from: number, to: number): void => {
    for (let at = from; at + 8 <= to;) {
      const size = moved.readUInt32BE(at);
      const type = moved.toString('latin1', at + 4, at + 8);
      if (containers.has(type)) shift(at + 8, at + size);
      if (type === 'stco') for (let i = 0, n = moved.readUInt32BE(at + 12); i < n; i++) moved.writeUInt32BE(moved.readUInt32BE(at + 16 + 4 * i) + moov.size, at + 16 + 4 * i);
      if (type === 'co64') for (let i = 0, n = moved.readUInt32BE(at + 12); i < n; i++) moved.writeBigUInt64BE(moved.readBigUInt64BE(at + 16 + 8 * i) + BigInt(moov.size), at + 16 + 8 * i);
      at += size;
    }
  };
  shift(8, moved.length);
  const parts = boxes.filter((b) => b !== moov).map((b) => file.subarray(b.start, b.start + b.size));
  parts.splice(mdat, 0, moved);
  return Buffer.concat(parts);
}

export async function declare(server: TestServer, r: FixtureUpload): Promise<void> {
  const response = await server.request('/v1/recordings', { dock: r.manifest.dock.id, method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(r.manifest) });
  if (response.status !== 201 && response.status !== 200) throw new Error(`create: ${response.status} ${await response.text()}`);
}

export async function sendSegments(server: TestServer, r: FixtureUpload, from: number, to: number): Promise<void> {
  for (let i = from; i < to; i++) {
    const put = await server.request(`/v1/recordings/${r.manifest.recordingId}/segments/${i}`, { dock: r.manifest.dock.id, method: 'PUT', headers: segmentHeaders(r.segments[i]!), body: r.segments[i]! });
    if (put.status !== 201 && put.status !== 200) throw new Error(`segment ${i}: ${put.status} ${await put.text()}`);
  }
}

export async function complete(server: TestServer, r: FixtureUpload): Promise<void> {
  const done = await server.request(`/v1/recordings/${r.manifest.recordingId}/complete`, { dock: r.manifest.dock.id, method: 'POST' });
  if (done.status !== 200) throw new Error(`complete: ${done.status} ${await done.text()}`);
}

export async function uploadAll(server: TestServer, r: FixtureUpload): Promise<void> {
  await declare(server, r);
  await sendSegments(server, r, 0, r.segments.length);
  await complete(server, r);
}

export const CHROMIUM = '/usr/bin/chromium';

/** A new page of `browser` for `body`, closed whatever happens (a failed test leaves no page behind to slow the next). */
export async function withPage<T>(browser: BrowserContext, body: (page: Page) => Promise<T>): Promise<T> {
  // Bounded: newPage and close have no playwright timeout (see PAGE_WAIT_MS below).
  const page = await within(browser.newPage(), PAGE_WAIT_MS, 'browser.newPage()');
  try {
    return await body(page);
  } finally {
    await closePage(page).catch(() => {});
  }
}

/** Debian's chromium, headless, with a new empty profile in `profileDir`. */
export function launchBrowser(profileDir: string): Promise<BrowserContext> {
  return chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM, headless: true, viewport: { width: 1280, height: 900 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--autoplay-policy=no-user-gesture-required'],
  });
}

/**
 * Browser waits that fail fast and say where the page was. A bare playwright wait gives up only after
 * 30 s (textContent, click, getAttribute wait for their selector; newPage and close never give up),
 * which is also jest's limit for a case: the case then ends in "Exceeded timeout" with no word of
 * what the page showed. Server pages are complete at their load event, so a selector missing then is
 * missing: these look once and fail with the page's URL and text.
 */
export const PAGE_WAIT_MS = 15_000;

/** The page for a failure message: its URL and the start of its text. */
export async function pageSays(page: Page): Promise<string> {
  const text = await within(page.evaluate('document.body ? document.body.innerText : document.documentElement.outerHTML'), 5_000, 'reading the page text')
    .catch((error: unknown) => `(text unreadable: ${error instanceof Error ? error.message.split('\n')[0] : String(error)})`);
  return `${page.url()} shows: ${String(text).replace(/\s+/g, ' ').trim().slice(0, 600)}`;
}

/** `promise`, or an error naming `what` after `ms` (for the playwright calls that have no timeout of their own). */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`${what}: no answer after ${ms} ms`)), ms); })]);
  } finally {
    clearTimeout(timer);
  }
}

/** A new tab with short default waits (newPage itself has no timeout in playwright). */
export async function openPage(browser: BrowserContext): Promise<Page> {
  const page = await within(browser.newPage(), PAGE_WAIT_MS, 'browser.newPage()');
  page.setDefaultTimeout(PAGE_WAIT_MS);
  page.setDefaultNavigationTimeout(PAGE_WAIT_MS);
  return page;
}

/** Close a tab, bounded (close has no timeout in playwright). */
export function closePage(page: Page): Promise<void> {
  return within(page.close(), PAGE_WAIT_MS, 'page.close()');
}

/** The one element `selector` on the page as loaded, or an error with the page's URL and text. */
export async function element(page: Page, selector: string) {
  const found = await page.$(selector);
  if (!found) throw new Error(`no ${selector} on ${await pageSays(page)}`);
  return found;
}

/** The text of `selector` on the page as loaded (no waiting for it to appear). */
export async function textOf(page: Page, selector: string): Promise<string> {
  return (await (await element(page, selector)).textContent()) ?? '';
}

/** An attribute of `selector` on the page as loaded. */
export async function attributeOf(page: Page, selector: string, name: string): Promise<string | null> {
  return (await element(page, selector)).getAttribute(name);
}

/**
 * Click the button that sends a form and wait for the page it loads. Not `waitForLoadState('load')`:
 * that answers at once for the page already loaded, so the test's next goto could cancel the POST
 * (and with it the Set-Cookie of a sign-in) when click returns before the navigation starts.
 */
export async function submit(page: Page, selector: string): Promise<void> {
  await element(page, selector);
  const loaded = page.waitForEvent('load', { timeout: PAGE_WAIT_MS }).then(() => undefined, (error: unknown) => error);
  await page.click(selector);
  const failed = await loaded;
  if (failed) throw new Error(`${selector} clicked, no page loaded after it (${failed instanceof Error ? failed.message.split('\n')[0] : String(failed)}); ${await pageSays(page)}`);
}

/** Poll an expression in the page until true (Runtime.evaluate is not subject to the page's CSP, unlike waitForFunction's polling); `state` says what the failure prints beside the page. */
export async function waitInPage(page: Page, expression: string, timeoutMs = 20_000, state = 'null'): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (await within(page.evaluate(expression), PAGE_WAIT_MS, `evaluating ${expression}`)) return;
    if (Date.now() > until) throw new Error(`${expression} still false after ${timeoutMs} ms (${String(await page.evaluate(`JSON.stringify(${state})`).catch(() => 'state unreadable'))}); ${await pageSays(page)}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
