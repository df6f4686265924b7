/**
 * The console attacked from outside (issue 14): a real server on 127.0.0.1, plain fetch, no browser.
 * Auth bypass, CSRF, lockout, hostile ids, Range abuse, cache headers, custody events.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateSigningKeyPair } from '../../src/protocol/signing.js';
import { Sessions } from '../../src/server/console/sessions.js';
import { UserStore } from '../../src/server/console/users.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { makeTempDir } from '../helpers/tmp.js';
import { fixtureRecording, uploadAll, type FixtureUpload } from './helpers.js';

const PASSWORD = 'correct horse battery';
const ADMIN_TOKEN = randomBytes(32).toString('base64url');
let tmp: ReturnType<typeof makeTempDir>;
let server: TestServer;
let rec: FixtureUpload;

async function signIn(name: string, password = PASSWORD): Promise<{ status: number; cookie?: string }> {
  const response = await fetch(`${server.url}/console/login`, {
    method: 'POST', redirect: 'manual',
    headers: { origin: server.url, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ name, password }).toString(),
  });
  const set = response.headers.get('set-cookie') ?? '';
  const m = /^([^=]+=[^;]+)/.exec(set);
  await response.arrayBuffer();
  return { status: response.status, ...(m && !set.startsWith('bodycam_console=;') ? { cookie: m[1]! } : {}) };
}
const get = (path: string, headers: Record<string, string> = {}) => fetch(server.url + path, { redirect: 'manual', headers });
const custody = () => readFileSync(join(server.dataDir, 'custody.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);

beforeAll(async () => {
  tmp = makeTempDir('bodycam-console-attack-');
  server = await startTestServer({ keepDir: join(tmp.path, 'data'), adminToken: ADMIN_TOKEN });
  const users = new UserStore(server.dataDir);
  await users.add('rita', 'reviewer', PASSWORD);
  await users.add('locked', 'reviewer', PASSWORD);
  await users.add('boss', 'admin', PASSWORD);
  await users.add('Kate', 'reviewer', PASSWORD);
  rec = await fixtureRecording('fmp4-h264', 'dock-1', generateSigningKeyPair());
  await uploadAll(server, rec);
}, 60_000);
afterAll(async () => { await server?.close(); tmp?.cleanup(); });

const recPath = () => `/console/recordings/dock-1/${encodeURIComponent(rec.manifest.recordingId)}`;

describe('console under attack', () => {
  it('no cookie, a forged cookie, a dock token or the admin token get no console page', async () => {
    for (const headers of [{}, { cookie: 'bodycam_console=' + 'A'.repeat(43) }, { cookie: 'bodycam_console=' }, { authorization: `Bearer ${server.tokens['dock-1']}` }, { authorization: `Bearer ${ADMIN_TOKEN}` }] as Array<Record<string, string>>) {
      for (const path of ['/console/recordings', recPath(), `${recPath()}/media`, `${recPath()}/download`, `${recPath()}/playlist.m3u8`, '/console/docks']) {
        const r = await get(path, headers);
        expect([r.status, r.headers.get('location')?.startsWith('/console/login')]).toEqual([303, true]);
        await r.arrayBuffer();
      }
    }
  });

  it('a reviewer gets no admin page and a console cookie opens no admin API', async () => {
    const { cookie } = await signIn('rita');
    expect(cookie).toBeDefined();
    for (const path of ['/console/docks', '/console/cameras']) expect((await get(path, { cookie: cookie! })).status).toBe(403);
    for (const path of ['/v1/docks', '/v1/cameras', '/v1/recordings?dock=dock-1']) expect([401, 403]).toContain((await get(path, { cookie: cookie! })).status);
    const admin = await signIn('boss');
    for (const path of ['/v1/docks', '/v1/cameras']) expect([401, 403]).toContain((await get(path, { cookie: admin.cookie! })).status);
    expect((await get('/v1/docks', { authorization: `Bearer ${ADMIN_TOKEN}` })).status).toBe(200);
  });

  it('sign-in and sign-out refuse a cross-origin or token-less POST', async () => {
    for (const origin of [undefined, 'http://evil.example', 'null', server.url + '.evil.example']) {
      const r = await fetch(`${server.url}/console/login`, { method: 'POST', redirect: 'manual', headers: { ...(origin ? { origin } : {}), 'content-type': 'application/x-www-form-urlencoded' }, body: `name=rita&password=${encodeURIComponent(PASSWORD)}` });
      expect(r.status).toBe(403);
      expect(r.headers.get('set-cookie')).toBeNull();
    }
    const { cookie } = await signIn('rita');
    for (const [origin, body] of [[server.url, ''], [server.url, 'csrf=wrong'], ['http://evil.example', 'csrf=x']] as const) {
      const r = await fetch(`${server.url}/console/logout`, { method: 'POST', redirect: 'manual', headers: { origin, cookie: cookie!, 'content-type': 'application/x-www-form-urlencoded' }, body });
      expect(r.status).toBe(403);
    }
    expect((await get('/console/recordings', { cookie: cookie! })).status).toBe(200);
  });

  it('a session id chosen by the client is never adopted', async () => {
    const fixed = 'bodycam_console=' + 'F'.repeat(43);
    const r = await fetch(`${server.url}/console/login`, { method: 'POST', redirect: 'manual', headers: { origin: server.url, cookie: fixed, 'content-type': 'application/x-www-form-urlencoded' }, body: `name=rita&password=${encodeURIComponent(PASSWORD)}` });
    expect(r.status).toBe(303);
    expect(r.headers.get('set-cookie')).not.toContain('F'.repeat(43));
    expect((await get('/console/recordings', { cookie: fixed })).status).toBe(303);
  });

  it('lockout holds for the right password', async () => {
    for (let i = 0; i < 5; i++) expect((await signIn('locked', 'wrong password!')).status).toBe(401);
    expect((await signIn('locked')).status).toBe(429);
  });

  it('names are case-insensitive: one user, one lockout counter; Unicode case folding opens nothing', async () => {
    const users = new UserStore(server.dataDir);
    await expect(users.add('KATE', 'admin', PASSWORD)).rejects.toThrow(/already a user Kate/);
    expect((await users.load()).get('kate')?.role).toBe('reviewer');
    for (const name of ['kate', 'KATE', 'kAtE']) expect([name, (await signIn(name)).status]).toEqual([name, 303]);
    // The Kelvin sign folds to k, dotless ı upper-cases to I, İ lower-cases to i + a dot: none is a user here.
    for (const name of ['\u212Aate', 'Kat\u0130', 'kat\u0131', 'Ka\uFF54e', 'kate\u0000', ' kate']) expect([name, (await signIn(name)).status]).toEqual([name, 401]);
    const before = custody().length;
    const { cookie } = await signIn('KATE');
    await (await get(recPath(), { cookie: cookie! })).arrayBuffer();
    expect(custody().slice(before).map((e) => e['by'])).toEqual(['Kate']);
    // Five failures in five spellings lock the one name out, the right password in a sixth too.
    for (const name of ['kate', 'KATE', 'Kate', 'kATE', 'katE']) expect((await signIn(name, 'wrong password!')).status).toBe(401);
    expect((await signIn('kAte')).status).toBe(429);
    // A file with the same name twice (hand-edited) signs neither in.
    const twice = join(tmp.path, 'twice');
    const store = new UserStore(twice);
    await store.add('ann', 'reviewer', PASSWORD);
    const file = JSON.parse(readFileSync(store.path, 'utf8')) as { users: Array<Record<string, unknown>> };
    file.users.push({ ...file.users[0], name: 'ANN', role: 'admin' });
    writeFileSync(store.path, JSON.stringify(file));
    expect((await new UserStore(twice).load()).has('ann')).toBe(false);
    expect([...(await new UserStore(twice).list()).conflicting]).toEqual(['ann']);
    expect(await new UserStore(twice).remove('Ann')).toBe(true);
    expect((await new UserStore(twice).list()).records).toEqual([]);
  }, 30_000);

  it('a flood of other names (more than the failure table holds) does not lift a lockout', () => {
    let now = 1_000;
    const sessions = new Sessions({ now: () => now });
    for (let i = 0; i < 5; i++) sessions.fail('name:rita');
    expect(sessions.lockedFor('name:rita')).toBeGreaterThan(0);
    for (let i = 0; i < 100_010; i++) sessions.fail(`name:n${i}`);
    now += 1_000;
    expect(sessions.lockedFor('name:rita')).toBeGreaterThan(0);
  });

  it('hostile ids find nothing and echo nothing unescaped', async () => {
    const { cookie } = await signIn('rita');
    for (const path of ['/console/recordings/dock-1/..%2f..%2fcustody.log', '/console/recordings/..%2fdock-1/x', '/console/recordings/%2e%2e/%2e%2e', `/console/recordings/dock-1/${'x'.repeat(5000)}`,
      `/console/recordings/dock-2/${encodeURIComponent(rec.manifest.recordingId)}`, `/console/recordings/dock-1/${encodeURIComponent('<script>alert(1)</script>')}`,
      `/console/recordings/dock-2/${encodeURIComponent(rec.manifest.recordingId)}/download`, '/console/recordings/dock-1/%00/media']) {
      const r = await get(path, { cookie: cookie! });
      const text = await r.text();
      expect([path, r.status]).toEqual([path, 404]);
      expect(text).not.toContain('<script>alert');
    }
  });

  it('Range abuse never serves bytes outside the file or a wrong slice', async () => {
    const { cookie } = await signIn('rita');
    const size = rec.file.length;
    const cases: Array<[string, number, Buffer | undefined]> = [
      ['bytes=-1', 206, rec.file.subarray(size - 1)], ['bytes=0-0', 206, rec.file.subarray(0, 1)], [`bytes=${size - 2}-${size * 10}`, 206, rec.file.subarray(size - 2)],
      [`bytes=-${size * 10}`, 206, rec.file], ['bytes=10-5', 416, undefined], [`bytes=${size}-`, 416, undefined], ['bytes=-0', 416, undefined],
      ['bytes=0-1,5-6', 200, rec.file], ['bytes=x-y', 416, undefined], ['items=0-1', 416, undefined], [`bytes=${'9'.repeat(400)}-`, 416, undefined],
    ];
    for (const [range, status, body] of cases) {
      const r = await get(`${recPath()}/media`, { cookie: cookie!, range });
      const bytes = Buffer.from(await r.arrayBuffer());
      expect([range, r.status]).toEqual([range, status]);
      if (body) expect(bytes.equals(body)).toBe(true);
      expect(r.headers.get('cache-control')).toBe('no-store');
    }
  });

  it('evidence pages are no-store and views / downloads are in the custody log with the signed-in name only', async () => {
    const { cookie } = await signIn('rita');
    const before = custody().length;
    const page = await get(recPath(), { cookie: cookie!, 'x-forwarded-user': 'boss' });
    expect(page.headers.get('cache-control')).toBe('no-store');
    await page.arrayBuffer();
    const dl = await get(`${recPath()}/download?by=boss`, { cookie: cookie! });
    expect(Buffer.from(await dl.arrayBuffer()).equals(rec.file)).toBe(true);
    expect(dl.headers.get('cache-control')).toBe('no-store');
    const added = custody().slice(before);
    expect(added.map((e) => e['event'])).toEqual(['viewed', 'downloaded']);
    expect(JSON.stringify(added)).not.toContain('boss');
  });
});
