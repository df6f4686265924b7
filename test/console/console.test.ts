/**
 * The evidence console in a real browser (issue 14): Debian's headless Chromium driven by
 * playwright-core against the real server on 127.0.0.1. Screenshots go to <tmp>/screenshots.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BrowserContext, Page, Response } from 'playwright-core';
import { generateSigningKeyPair } from '../../src/protocol/signing.js';
import { UserStore } from '../../src/server/console/users.js';
import { runCli, spawnCli, type CliResult } from '../helpers/cli.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { makeTempDir } from '../helpers/tmp.js';
import { attributeOf, closePage, complete, declare, faststart, fixtureRecording, launchBrowser, openPage, pageSays, sendSegments, submit, textOf, uploadAll, waitInPage, type FixtureUpload } from '../helpers/console.js';

const PASSWORD = 'correct horse battery';

function runWithInput(args: string[], input: string): Promise<CliResult> {
  const child = spawnCli(args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => { stdout += d.toString(); });
  child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
  child.stdin!.end(input);
  return new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
}
let tmp: ReturnType<typeof makeTempDir>;
let server: TestServer;
let browser: BrowserContext;
let shots: string;
let h264: FixtureUpload;
let hevc: FixtureUpload;
let growing: FixtureUpload;
const keys = { 'dock-1': generateSigningKeyPair(), 'dock-2': generateSigningKeyPair() };

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const pageUrl = (r: FixtureUpload) => `${server.url}/console/recordings/${r.manifest.dock.id}/${encodeURIComponent(r.manifest.recordingId)}`;

/** Sign in through the form; `expected` 'in' fails at once, with the page, when the form did not sign in (wrong password, lockout, sign-in closed). */
async function signIn(page: Page, name: string, password = PASSWORD, expected: 'in' | 'refused' = 'in'): Promise<void> {
  await page.goto(`${server.url}/console/login`);
  await page.fill('input[name=name]', name);
  await page.fill('input[name=password]', password);
  await submit(page, '#sign-in');
  const signedIn = new URL(page.url()).pathname !== '/console/login';
  if (signedIn !== (expected === 'in')) throw new Error(`sign-in as ${name}: expected ${expected === 'in' ? 'signed in' : 'refused'}; ${await pageSays(page)}`);
}

async function signOut(page: Page): Promise<void> {
  await submit(page, '#sign-out');
  if (new URL(page.url()).pathname !== '/console/login') throw new Error(`sign-out did not end at the sign-in page; ${await pageSays(page)}`);
}

const PLAYER_STATE = "{t: document.getElementById('player')?.currentTime, e: document.getElementById('player')?.dataset.error, rs: document.getElementById('player')?.readyState}";

function custodyLines(): Array<Record<string, unknown>> {
  return readFileSync(join(server.dataDir, 'custody.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
}

beforeAll(async () => {
  tmp = makeTempDir('bodycam-console-');
  shots = join(tmp.path, 'screenshots');
  mkdirSync(shots);
  server = await startTestServer({ keepDir: join(tmp.path, 'data') });
  const users = new UserStore(server.dataDir);
  await users.add('rita', 'reviewer', PASSWORD);
  await users.add('victim', 'reviewer', PASSWORD);
  // Every case signs in users made here, never ones an earlier case made: a case run alone (-t) or after a failed one is the same case.
  await users.add('ada', 'admin', PASSWORD);
  h264 = await fixtureRecording('fmp4-h264', 'dock-1', keys['dock-1']);
  hevc = await fixtureRecording('fmp4-hevc', 'dock-1', keys['dock-1']);
  growing = await fixtureRecording('fmp4-h264', 'dock-2', keys['dock-2']);
  await uploadAll(server, h264);
  await uploadAll(server, hevc);
  browser = await launchBrowser(join(tmp.path, 'profile'));
}, 60_000);

afterAll(async () => {
  // BODYCAM_SCREENSHOT_DIR keeps the screenshots (docs/img/ is refreshed from them by hand).
  if (process.env.BODYCAM_SCREENSHOT_DIR && shots) cpSync(shots, process.env.BODYCAM_SCREENSHOT_DIR, { recursive: true });
  await browser?.close();
  await server?.close();
  tmp?.cleanup();
});

describe('evidence console', () => {
  it('bodycam server user add reads the password from stdin; list never shows it', async () => {
    const add = await runWithInput(['server', 'user', 'add', '--data-dir', server.dataDir, '--name', 'otto', '--role', 'admin'], `${PASSWORD}\n`);
    expect([add.code, add.stderr]).toEqual([0, '']);
    const list = await runCli(['server', 'user', 'list', '--data-dir', server.dataDir]);
    expect(list.stdout).toMatch(/^otto\tadmin\t/m);
    expect(list.stdout).toMatch(/^rita\treviewer\t/m);
    // The running server reads the file the CLI wrote: the new admin signs in.
    const signedIn = await fetch(`${server.url}/console/login`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded', origin: server.url }, body: `name=otto&password=${encodeURIComponent(PASSWORD)}` });
    await signedIn.arrayBuffer();
    expect([signedIn.status, signedIn.headers.get('location')]).toEqual([303, '/console/recordings']);
    expect(readFileSync(join(server.dataDir, 'console-users.json'), 'utf8')).not.toContain(PASSWORD);
    const bad = await runWithInput(['server', 'user', 'add', '--data-dir', server.dataDir, '--name', 'x', '--role', 'boss'], `${PASSWORD}\n`);
    expect(bad.code).toBe(2);
    // Names are case-insensitive: OTTO is otto, refused as a second user (one line, no stack).
    const twice = await runWithInput(['server', 'user', 'add', '--data-dir', server.dataDir, '--name', 'OTTO', '--role', 'reviewer'], `${PASSWORD}\n`);
    expect([twice.code, twice.stderr.trim().split('\n').length]).toEqual([2, 1]);
    expect(twice.stderr).toContain('already a user otto');
  }, 60_000); // four CLI processes, each a cold node start and a scrypt hash: 5-10 s alone, 30+ s seen at load 35

  it('sign-in and sign-out; the cookie is HttpOnly and SameSite=Strict; wrong passwords lock the name out', async () => {
    const page = await openPage(browser);
    await signIn(page, 'rita', 'wrong password!!', 'refused');
    expect(await textOf(page, '#login-error')).toContain('Wrong name or password');
    await signIn(page, 'rita');
    expect(new URL(page.url()).pathname).toBe('/console/recordings');
    const cookie = (await browser.cookies()).find((c) => c.name === 'bodycam_console')!;
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/console' });
    await page.screenshot({ path: join(shots, 'recordings.png'), fullPage: true });
    await signOut(page);
    const after = await page.goto(`${server.url}/console/recordings`);
    expect(new URL(after!.url()).pathname).toBe('/console/login');
    await page.screenshot({ path: join(shots, 'sign-in.png') });
    // A POST from another origin (a CSRF attempt) is refused even with the right password.
    const forged = await fetch(`${server.url}/console/login`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'http://evil.example' }, body: `name=rita&password=${encodeURIComponent(PASSWORD)}` });
    expect(forged.status).toBe(403);
    const post = (password: string) => fetch(`${server.url}/console/login`, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded', origin: server.url }, body: `name=victim&password=${encodeURIComponent(password)}` });
    for (let i = 0; i < 5; i++) expect((await post(`nope-${i}-password`)).status).toBe(401);
    const locked = await post(PASSWORD);
    expect(locked.status).toBe(429);
    expect(Number(locked.headers.get('retry-after'))).toBeGreaterThan(0);
    await closePage(page);
  }, 60_000); // nine scrypt checks and two screenshots: 24 s seen at load 25 with two busy loops

  it('a reviewer gets 403 on the admin pages; an admin sees docks and the cameras\' sequence gaps', async () => {
    const page = await openPage(browser);
    await signIn(page, 'rita');
    for (const path of ['/console/docks', '/console/cameras']) expect((await page.goto(server.url + path))!.status()).toBe(403);
    await signOut(page);
    await signIn(page, 'ada');
    const docks = await page.goto(`${server.url}/console/docks`);
    expect(docks!.status()).toBe(200);
    expect(await textOf(page, '#docks tr[data-dock="dock-1"]')).toContain('2');
    await page.screenshot({ path: join(shots, 'docks.png'), fullPage: true });
    expect((await page.goto(`${server.url}/console/cameras`))!.status()).toBe(200);
    expect(await page.locator('#cameras tr[data-camera]').count()).toBe(2);
    await page.screenshot({ path: join(shots, 'cameras.png'), fullPage: true });
    await signOut(page);
    await closePage(page);
  }, 60_000); // two sign-ins, six pages, two screenshots: 12 s seen at load 25

  it('the list shows what the server holds', async () => {
    const page = await openPage(browser);
    await signIn(page, 'rita');
    const ids = await page.evaluate("[...document.querySelectorAll('#recordings tbody tr')].map((r) => r.dataset.dock + '/' + r.dataset.id)") as string[];
    expect(ids.sort()).toEqual([h264, hevc].map((r) => `${r.manifest.dock.id}/${r.manifest.recordingId}`).sort());
    await page.selectOption('select[name=device]', hevc.manifest.device.serial);
    await submit(page, '.filters button');
    expect(await page.locator('#recordings tbody tr').count()).toBe(1);
    await closePage(page);
  }, 30_000);

  it('a recording plays from the original bytes: currentTime passes 3 s and every range fetched hashes to the manifest\'s segments', async () => {
    const page = await openPage(browser);
    await signIn(page, 'rita');
    const fetched: Array<{ start: number; body: Buffer }> = [];
    const pending: Promise<void>[] = [];
    page.on('response', (response: Response) => {
      if (!response.url().endsWith('/media')) return;
      const range = /bytes=(\d+)-(\d+)?/.exec(response.request().headers()['range'] ?? '');
      pending.push(response.body().then((body) => { fetched.push({ start: range ? Number(range[1]) : 0, body }); }, () => {}));
    });
    const before = custodyLines().filter((e) => e.event === 'viewed' && e.by === 'rita').length;
    await page.goto(pageUrl(h264));
    await page.evaluate("void document.getElementById('player').play()");
    await waitInPage(page, "document.getElementById('player').currentTime > 3", 20_000, PLAYER_STATE);
    await page.screenshot({ path: join(shots, 'recording.png'), fullPage: true });
    await Promise.all(pending);
    expect(fetched.length).toBeGreaterThan(1);
    // Every fetched range is exactly bytes of the original file…
    for (const f of fetched) expect(sha(f.body)).toBe(sha(h264.file.subarray(f.start, f.start + f.body.length)));
    // …and together they are the plan's segments: each segment's bytes as fetched hash to its manifest hash.
    const covered = new Map<number, Buffer>();
    for (const f of fetched) covered.set(f.start, f.body);
    for (const segment of h264.manifest.segments) {
      const parts: Buffer[] = [];
      for (let at = segment.offset; at < segment.offset + segment.length;) {
        const part = covered.get(at);
        if (!part) break;
        parts.push(part);
        at += part.length;
      }
      expect([segment.index, sha(Buffer.concat(parts))]).toEqual([segment.index, segment.sha256]);
    }
    const after = custodyLines().filter((e) => e.event === 'viewed' && e.by === 'rita' && e.recordingId === h264.manifest.recordingId).length;
    expect(after).toBeGreaterThan(0);
    // The page view and one playback entry, however many ranges the player fetched (fetched.length > 1 above).
    expect(custodyLines().filter((e) => e.event === 'viewed' && e.by === 'rita').length).toBe(before + 2);
    await closePage(page);
  }, 40_000);

  it('the custody timeline and the checks show; a download is a custody event', async () => {
    const page = await openPage(browser);
    await signIn(page, 'rita');
    const pageViews = () => custodyLines().filter((e) => e.event === 'viewed' && e.by === 'rita' && e.recordingId === h264.manifest.recordingId && e.via === 'recording page').length;
    const viewsBefore = pageViews();
    await page.goto(pageUrl(h264));
    const checks = await page.$$eval('#checks tr', (rows) => rows.map((r) => [r.querySelector('th')!.textContent, r.querySelector('.badge')!.textContent]));
    expect(Object.fromEntries(checks)).toMatchObject({
      'SHA-256 of the content': 'pass', 'Merkle root': 'pass', 'Receipt signature': 'pass', 'Dock signature (manifest)': 'pass', 'Camera signature (sidecar)': 'pass',
    });
    const timeline = await textOf(page, '#timeline');
    for (const event of ['recording-created', 'segment-stored', 'receipt-issued', 'viewed']) expect(timeline).toContain(event);
    expect(timeline).toContain('by rita (reviewer)');
    const positions = await page.$$eval('#timeline tbody tr td:first-child', (cells) => cells.map((c) => Number(c.textContent!.slice(1))));
    expect(positions).toEqual([...positions].sort((a, b) => a - b));
    const receiptSeq = JSON.parse(await textOf(page, '#receipt')).custodySeq as number;
    expect(positions).toContain(receiptSeq);
    const download = await page.request.get(`${pageUrl(h264)}/download`);
    expect(sha(await download.body())).toBe(h264.manifest.file.sha256);
    expect(custodyLines().some((e) => e.event === 'downloaded' && e.by === 'rita' && e.recordingId === h264.manifest.recordingId)).toBe(true);
    // Each view is its own entry in the chain.
    await page.reload();
    // Counted from this case's start, not from what earlier cases viewed: the case alone (-t) is the same case.
    expect(pageViews()).toBeGreaterThanOrEqual(viewsBefore + 2);
    await closePage(page);
  }, 30_000);

  it('HEVC shows a poster frame made by the server, a download link and why', async () => {
    const page = await openPage(browser);
    await signIn(page, 'rita');
    await page.goto(pageUrl(hevc));
    expect(await textOf(page, '#why')).toContain('HEVC');
    await waitInPage(page, "document.getElementById('poster').naturalWidth > 0");
    expect(await attributeOf(page, '#download', 'href')).toMatch(/\/download$/);
    await page.screenshot({ path: join(shots, 'hevc.png'), fullPage: true });
    await closePage(page);
  }, 30_000);

  it('a recording still uploading plays its first segments, and the playlist grows until ENDLIST', async () => {
    await declare(server, growing);
    await sendSegments(server, growing, 0, 2);
    const page = await openPage(browser);
    await signIn(page, 'rita');
    const playlist = async () => (await page.request.get(`${pageUrl(growing)}/playlist.m3u8`)).text();
    const first = await playlist();
    expect(first.match(/#EXTINF/g)).toHaveLength(2);
    expect(first).not.toContain('#EXT-X-ENDLIST');
    await page.goto(pageUrl(growing));
    await page.evaluate("void document.getElementById('player').play()");
    await waitInPage(page, "document.getElementById('player').currentTime > 0.5", 20_000, PLAYER_STATE);
    await sendSegments(server, growing, 2, growing.segments.length);
    const grown = await playlist();
    expect(grown.match(/#EXTINF/g)).toHaveLength(growing.segments.length);
    expect(grown).not.toContain('#EXT-X-ENDLIST');
    await complete(server, growing);
    expect(await playlist()).toContain('#EXT-X-ENDLIST');
    await waitInPage(page, "document.getElementById('player').currentTime > 2.5", 20_000, PLAYER_STATE);
    await closePage(page);
  }, 40_000);

  // Plain MP4 (moov at the end as the camera wrote it, and faststart) plays with Range requests on
  // …/media; MPEG-TS through hls.js from the playlist's byte ranges. One page each, in this browser.
  it.each([
    ['plain MP4, moov at the end', 'mp4-h264', undefined, 'mp4'],
    ['plain MP4, faststart', 'mp4-h264', faststart, 'mp4'],
    ['MPEG-TS', 'mpegts-h264', undefined, 'ts'],
  ] as const)('%s plays from the original bytes: currentTime passes 3 s and every byte fetched is the original file\'s', async (_label, camera, transform, kind) => {
    const r = await fixtureRecording(camera, 'dock-2', keys['dock-2'], 1, undefined, transform ? { transform, fileName: `faststart-${camera}.mp4` } : {});
    await uploadAll(server, r);
    const page = await openPage(browser);
    await signIn(page, 'rita');
    const fetched: Array<{ status: number; range: string | undefined; contentRange: string | null; body: Buffer }> = [];
    const pending: Promise<void>[] = [];
    page.on('response', (response: Response) => {
      if (!response.url().endsWith('/media')) return;
      // A <video> cancels a ranged fetch once it has what it needs: such a body is not readable and not counted.
      pending.push(response.body().then((body) => { fetched.push({ status: response.status(), range: response.request().headers()['range'], contentRange: response.headers()['content-range'] ?? null, body }); }, () => {}));
    });
    await page.goto(pageUrl(r));
    expect(await attributeOf(page, '#player', 'data-kind')).toBe(kind);
    // At 4x the 3 s of media take under a second of the CI's time; the bytes fetched are the same.
    await page.evaluate("const v = document.getElementById('player'); v.playbackRate = 4; void v.play()");
    await waitInPage(page, "document.getElementById('player').currentTime > 3", 30_000, PLAYER_STATE);
    await Promise.all(pending);
    expect(fetched.length).toBeGreaterThan(0);
    expect(fetched.some((f) => f.status === 206)).toBe(true);
    for (const f of fetched) {
      const start = f.contentRange ? Number(/^bytes (\d+)-/.exec(f.contentRange)![1]) : 0;
      if (f.status === 206) expect(f.contentRange).toBe(`bytes ${start}-${start + f.body.length - 1}/${r.file.length}`);
      expect([f.status, sha(f.body)]).toEqual([f.status, sha(r.file.subarray(start, start + f.body.length))]);
    }
    if (kind === 'ts') {
      // hls.js fetched exactly the playlist's byte ranges: the segments the dock cut, each hashing to its manifest entry.
      const bySegment = new Map(fetched.map((f) => [Number(/^bytes (\d+)-/.exec(f.contentRange ?? 'bytes 0-')![1]), f.body]));
      for (const s of r.manifest.segments) expect([s.index, sha(bySegment.get(s.offset) ?? Buffer.alloc(0))]).toEqual([s.index, s.sha256]);
    }
    await closePage(page);
  }, 60_000);
});
