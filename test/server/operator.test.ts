/**
 * The server operator's tools (issue 12): the admin token, GET /v1/docks, GET /v1/recordings across
 * docks in bounded pages, and `bodycam server report` with the gaps in each camera's sequence numbers.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { keyIdOf, generateSigningKeyPair, type KeyPairPem } from '../../src/protocol/signing.js';
import { buildRecording, testBytes, type BuiltRecording } from '../helpers/manifest.js';
import { runCli } from '../helpers/cli.js';
import { segmentHeaders, startTestServer, testToken, type TestServer } from '../helpers/server.js';
import { makeTempDir } from '../helpers/tmp.js';
import { sequenceGaps, sequenceNumberOf } from '../../src/server/operator/sequence.js';
import { SERVER_TOOLS, toolSettings } from '../../src/cli/server/toolSettings.js';
import { resolveSettings } from '../../src/util/settings.js';

const ADMIN = testToken('operator admin');
const admin = { authorization: `Bearer ${ADMIN}` };
const keys: Record<string, KeyPairPem> = { 'dock-1': generateSigningKeyPair(), 'dock-2': generateSigningKeyPair() };

function recording(dock: string, serial: string, seq: number, bytes = 3000): BuiltRecording {
  const recordingId = `${serial}-${String(seq).padStart(4, '0')}`;
  return buildRecording(testBytes(bytes, seq * 31 + Number(serial.slice(3)) * 1000 + (dock === 'dock-2' ? 7 : 0)), {
    dockId: dock, dockKeys: keys[dock]!, serial, recordingId, segmentSize: 1024, fileName: `20260101_120000_${serial}_${String(seq).padStart(4, '0')}.mp4`,
    mutate: (m) => { m.device.sidecar = { recordingId, serial, officerId: 'OF-7', category: 'traffic', trigger: 'manual' }; },
  });
}

async function upload(server: TestServer, r: BuiltRecording, complete = true, segments = r.segments.length): Promise<void> {
  const dock = r.manifest.dock.id;
  const created = await server.request('/v1/recordings', { dock, method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(r.manifest) });
  expect(created.status).toBe(201);
  for (let i = 0; i < segments; i++) {
    const put = await server.request(`/v1/recordings/${r.manifest.recordingId}/segments/${i}`, { dock, method: 'PUT', headers: segmentHeaders(r.segments[i]!), body: r.segments[i]! });
    expect([200, 201]).toContain(put.status);
  }
  if (complete) expect((await server.request(`/v1/recordings/${r.manifest.recordingId}/complete`, { dock, method: 'POST' })).status).toBe(200);
}

describe('operator API (admin token)', () => {
  let server: TestServer;
  const cam1 = [1, 2, 4, 7].map((seq) => recording('dock-1', 'CAM001', seq));
  const cam2 = [1, 2].map((seq) => recording('dock-2', 'CAM002', seq));
  const receiving = recording('dock-1', 'CAM003', 1, 4000);

  beforeAll(async () => {
    server = await startTestServer({ adminToken: ADMIN, staleAfterMs: 1 });
    for (const r of [...cam1, ...cam2]) await upload(server, r);
    await upload(server, receiving, false, 2);
  });
  afterAll(() => server.close());

  it('GET /v1/docks: every dock with last seen, key id, recordings, bytes, in progress and stale', async () => {
    const response = await server.request('/v1/docks', { dock: null, headers: admin });
    expect(response.status).toBe(200);
    const body = await response.json() as { docks: Array<Record<string, unknown>> };
    const byId = Object.fromEntries(body.docks.map((d) => [d.dockId, d]));
    expect(Object.keys(byId).sort()).toEqual(['dock-1', 'dock-2']);
    expect(byId['dock-1']).toMatchObject({ keyId: keyIdOf(keys['dock-1']!.publicKeyPem), recordings: 5, inProgress: 1, stale: 1, bytes: 4 * 3000 + 4000 });
    expect(byId['dock-2']).toMatchObject({ keyId: keyIdOf(keys['dock-2']!.publicKeyPem), recordings: 2, inProgress: 0, stale: 0, bytes: 6000 });
    for (const d of body.docks) expect(Date.now() - Date.parse(String(d.lastSeen))).toBeLessThan(10 * 60_000);
  });

  it('a dock token is refused on the operator routes (403), no token is 401, and the admin token cannot upload', async () => {
    const asDock = await server.request('/v1/docks');
    expect(asDock.status).toBe(403);
    expect((await asDock.json() as { code: string }).code).toBe('admin_only');
    expect((await server.request('/v1/docks', { dock: null })).status).toBe(401);
    expect((await server.request('/v1/recordings?dock=dock-2')).status).toBe(403);
    const post = await server.request('/v1/recordings', { dock: null, method: 'POST', headers: { ...admin, 'content-type': 'application/json' }, body: JSON.stringify(recording('dock-1', 'CAM009', 1).manifest) });
    expect(post.status).toBe(401);
  });

  it('GET /v1/recordings?dock=… across docks, in bounded pages that cover every recording exactly once', async () => {
    const only2 = await (await server.request('/v1/recordings?dock=dock-2', { dock: null, headers: admin })).json() as { recordings: Array<{ id: string; dockId: string }> };
    expect(only2.recordings.map((r) => r.id).sort()).toEqual(['CAM002-0001', 'CAM002-0002']);
    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await (await server.request(`/v1/recordings?limit=2${cursor ? `&cursor=${cursor}` : ''}`, { dock: null, headers: admin })).json() as { recordings: Array<{ id: string; dockId: string }>; next?: string; total: number };
      expect(page.recordings.length).toBeLessThanOrEqual(2);
      expect(page.total).toBe(7);
      seen.push(...page.recordings.map((r) => `${r.dockId}/${r.id}`));
      cursor = page.next;
      pages++;
    } while (cursor && pages < 10);
    expect(pages).toBe(4);
    expect(seen).toEqual([...new Set(seen)]);
    expect(seen.sort()).toEqual([...cam1, receiving, ...cam2].map((r) => `${r.manifest.dock.id}/${r.manifest.recordingId}`).sort());
    const stale = await (await server.request('/v1/recordings?state=stale', { dock: null, headers: admin })).json() as { recordings: Array<{ id: string; segmentsReceived: number; segmentCount: number }> };
    expect(stale.recordings).toEqual([expect.objectContaining({ id: 'CAM003-0001', segmentsReceived: 2, segmentCount: 4 })]);
  });

  it('bad page arguments are 400 with one reason', async () => {
    for (const query of ['limit=0', 'limit=abc', 'cursor=bm90LWEtY3Vyc29y', 'state=lost', 'day=yesterday', 'dock=a&dock=b']) {
      const response = await server.request(`/v1/recordings?${query}`, { dock: null, headers: admin });
      expect([query, response.status]).toEqual([query, 400]);
    }
  });

  it('a query parameter a list does not take is 400 bad_request naming it, never ignored (a list of everything)', async () => {
    const cases: Array<[string, string | null, RegExp]> = [
      ['/v1/docks?limit=-1', null, /GET \/v1\/docks has no query parameter "limit": it takes none/],
      ['/v1/docks?cursor=zzz', null, /no query parameter "cursor"/],
      ['/v1/cameras?cursor=eyJ4IjoxfQ', null, /GET \/v1\/cameras has no query parameter "cursor"/],
      ['/v1/recordings?dock[]=a&dock[]=b', null, /no query parameter "dock\[\]": it takes dock, device, state, integrity, category, day, limit, cursor/],
      ['/v1/recordings?stat=complete', null, /no query parameter "stat"/],
      // A dock token's own list: a filter or a typo beyond device and state is never ignored either.
      ['/v1/recordings?dya=2026-01-01', 'dock-1', /no query parameter "dya"/],
      ['/v1/recordings?day=yesterday', 'dock-1', /day must be YYYY-MM-DD/],
      ['/v1/recordings?device=a&device=b', 'dock-1', /device must be given once/],
    ];
    for (const [path, dock, said] of cases) {
      const response = await server.request(path, dock ? { dock } : { dock: null, headers: admin });
      const body = await response.json() as { code: string; detail: string };
      expect([path, response.status, body.code]).toEqual([path, 400, 'bad_request']);
      expect(body.detail).toMatch(said);
    }
  });

  it('a new segment shows in the next page at once (the catalog follows the uploads)', async () => {
    const before = await (await server.request('/v1/recordings?dock=dock-1&state=receiving', { dock: null, headers: admin })).json() as { recordings: Array<{ segmentsReceived: number }> };
    expect(before.recordings[0]!.segmentsReceived).toBe(2);
    const put = await server.request(`/v1/recordings/${receiving.manifest.recordingId}/segments/2`, { method: 'PUT', headers: segmentHeaders(receiving.segments[2]!), body: receiving.segments[2]! });
    expect(put.status).toBe(201);
    const after = await (await server.request('/v1/recordings?dock=dock-1&state=receiving', { dock: null, headers: admin })).json() as { recordings: Array<{ segmentsReceived: number }> };
    const direct = await (await server.request(`/v1/recordings/${receiving.manifest.recordingId}`)).json() as { missing: number[] };
    expect(direct.missing).toEqual([3]);
    expect(after.recordings[0]!.segmentsReceived).toBe(3);
  });

  it('a dock token still lists its own recordings, in pages when it asks', async () => {
    const all = await (await server.request('/v1/recordings', { dock: 'dock-2' })).json() as { recordings: unknown[] };
    expect(all.recordings).toHaveLength(2);
    const page = await (await server.request('/v1/recordings?limit=1', { dock: 'dock-2' })).json() as { recordings: Array<{ dockId: string }>; next?: string };
    expect(page.recordings.map((r) => r.dockId)).toEqual(['dock-2']);
    expect(page.next).toBeDefined();
  });
});

describe('admin token checks at start', () => {
  it('refuses an admin token that is also a dock token, or a weak one', async () => {
    await expect(startTestServer({ adminToken: testToken('dock-1') })).rejects.toMatchObject({ code: 'E_ADMIN_TOKEN_REUSED' });
    await expect(startTestServer({ adminToken: 'admin' })).rejects.toMatchObject({ code: 'E_ADMIN_TOKEN_WEAK' });
  });
});

describe('sequence numbers', () => {
  it('come from the sidecar, else the file name; gaps are ranges between the lowest and highest held', () => {
    expect(sequenceNumberOf({ recordingId: 'CAM001-0012' }, 'x.mp4')).toBe(12);
    expect(sequenceNumberOf(undefined, '20260101_120000_CAM001_0005.MP4')).toBe(5);
    expect(sequenceNumberOf(undefined, 'clip.mp4')).toBeUndefined();
    expect(sequenceGaps([7, 1, 2, 4, 4, 10])).toEqual({ lowest: 1, highest: 10, missing: [[3, 3], [5, 6], [8, 9]], missingCount: 5 });
    expect(sequenceGaps([3])).toEqual({ lowest: 3, highest: 3, missing: [], missingCount: 0 });
  });
});

describe('bodycam server report / verify-log (CLI)', () => {
  let tmp: ReturnType<typeof makeTempDir>;
  let dataDir: string;
  beforeAll(async () => {
    tmp = makeTempDir('bodycam-report-');
    dataDir = join(tmp.path, 'data');
    const server = await startTestServer({ keepDir: dataDir });
    for (const seq of [1, 2, 4, 7]) await upload(server, recording('dock-1', 'CAM001', seq));
    for (const seq of [1, 2]) await upload(server, recording('dock-2', 'CAM002', seq));
    await server.close();
  });
  afterAll(() => tmp.cleanup());

  it('names each camera\'s missing sequence numbers and exits 3', async () => {
    const result = await runCli(['server', 'report', '--data-dir', dataDir]);
    expect(result.code).toBe(3);
    expect(result.stdout).toMatch(/CAM001 +4 recordings .* via dock-1; sequence 0001-0007: MISSING 0003, 0005-0006 \(3\)/);
    expect(result.stdout).toMatch(/CAM002 +2 recordings .* via dock-2; sequence 0001-0002 complete/);
    expect(result.stdout).toMatch(/dock-1 +key [0-9a-f]{16} .* 4 recordings/);
    const json = JSON.parse((await runCli(['server', 'report', '--data-dir', dataDir, '--json'])).stdout) as { cameras: Array<{ serial: string; sequence: { missing: number[][] } }> };
    expect(json.cameras.find((c) => c.serial === 'CAM001')!.sequence.missing).toEqual([[3, 3], [5, 6]]);
  });

  it('the tools read the deployment as `bodycam server` does: the server\'s --config file, BODYCAM_SERVER_* variables, flags first', async () => {
    // The server's own file (keys the tools do not take, such as listen and tokens, are no error).
    const config = join(tmp.path, 'server.json');
    writeFileSync(config, JSON.stringify({ dataDir, listen: '127.0.0.1:0', tokens: 'tokens.json', staleAfter: '1h' }));
    const byFlag = await runCli(['server', 'report', '--data-dir', dataDir, '--stale-after', '1h', '--json']);
    const byFile = await runCli(['server', 'report', '--config', config, '--json']);
    const strip = (text: string) => ({ ...(JSON.parse(text) as Record<string, unknown>), generatedAt: 'x' });
    expect(byFile.code).toBe(byFlag.code);
    expect(strip(byFile.stdout)).toEqual(strip(byFlag.stdout));
    expect((JSON.parse(byFile.stdout) as { staleAfterSeconds: number }).staleAfterSeconds).toBe(3600);
    expect((await runCli(['server', 'user', 'list'], { env: { ...process.env, BODYCAM_SERVER_CONFIG: config } })).stdout).toBe('no users\n');
    // In process, the same resolution: a flag outranks the variables, which outrank the file.
    const other = join(tmp.path, 'other');
    const env = { BODYCAM_SERVER_DATA_DIR: other, DATABASE_URL: 'postgres://env/db' };
    const resolved = resolveSettings(SERVER_TOOLS.verifyLog, { configFile: config, env, flags: { receipts: ['r.json'] }, cwd: tmp.path });
    expect(resolved.values).toMatchObject({ dataDir: other, db: 'postgres://env/db', receipts: [join(tmp.path, 'r.json')] });
    expect(resolveSettings(SERVER_TOOLS.verifyLog, { configFile: config, env, flags: { dataDir } }).values.dataDir).toBe(dataDir);
    expect(resolveSettings(SERVER_TOOLS.report, { configFile: config, env: {} }).sources.staleAfter).toEqual({ source: 'file', name: `config file ${config}` });
  });

  it('a tool\'s missing or invalid setting is one line naming it, exit 2, no stack', async () => {
    const config = join(tmp.path, 'typo.json');
    writeFileSync(config, JSON.stringify({ dataDir, staleAftr: '1h' }));
    const cases: Array<[string[], RegExp]> = [
      [['server', 'report', '--config', config], /unknown key "staleAftr"/],
      [['server', 'scrub', '--data-dir', dataDir, '--db', 'mysql://u:hunter2@h/db'], /^bodycam: --db must be a postgres:/],
      [['server', 'token', 'import', '--db', 'postgres://127.0.0.1:1/x'], /^bodycam: missing --tokens \(or BODYCAM_SERVER_TOKENS/],
    ];
    for (const [argv, message] of cases) {
      const result = await runCli(argv);
      expect([argv.join(' '), result.code, result.stderr.trim().split('\n').length]).toEqual([argv.join(' '), 2, 1]);
      expect(result.stderr).toMatch(message);
      expect(result.stderr).not.toMatch(/hunter2|\n\s+at /);
    }
    // Every tool's required argument, in process: "missing --name: Sign-in name …".
    for (const [tool, flag] of [['userRemove', '--name'], ['resetDockKey', '--dock'], ['keyNew', '--out']] as const) {
      expect(() => toolSettings(tool, { dataDir })).toThrow(new RegExp(`^missing ${flag}: `));
    }
  });

  it('a missing data dir is one line and exit 2, for report and verify-log', async () => {
    const missing = join(tmp.path, 'nothing-here');
    for (const command of ['report', 'verify-log']) {
      const result = await runCli(['server', command, '--data-dir', missing]);
      expect([command, result.code]).toEqual([command, 2]);
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
      expect(result.stderr).toContain(missing);
    }
    mkdirSync(join(tmp.path, 'empty'));
    writeFileSync(join(tmp.path, 'empty', 'note.txt'), 'not a data dir');
    expect((await runCli(['server', 'report', '--data-dir', join(tmp.path, 'empty')])).code).toBe(2);
  });
});
