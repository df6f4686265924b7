/**
 * Findings of an attacker's review of the ingest server (session 13): a record whose segment
 * lengths were edited at rest (still tiling, same Merkle root) is never served as a complete
 * answer of other bytes; a FIFO planted at a blob's path is damage, not a read that never ends;
 * HEAD gives the GET's Content-Length; a manifest string with a lone surrogate is refused at
 * create (it made every later answer naming it a 500); a URL fastify cannot decode answers
 * problem+json; a recording completing does not make another receiving recording of the dock
 * that shares a segment with it miss that segment (the dock would send held bytes again).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateSigningKeyPair } from '../../src/protocol/signing.js';
import { buildRecording, testBytes, type BuiltRecording } from '../helpers/manifest.js';
import { segmentHeaders, startTestServer, type TestServer } from '../helpers/server.js';
import { makeTempDir } from '../helpers/tmp.js';

describe('server: review 69', () => {
  let server: TestServer;
  const dockKeys = generateSigningKeyPair();
  const tmp = makeTempDir('bodycam-atk69-');
  beforeAll(async () => { server = await startTestServer({ keepDir: tmp.path }); });
  afterAll(async () => { await server.close(); tmp.cleanup(); });

  async function upload(rec: BuiltRecording): Promise<void> {
    const created = await server.request('/v1/recordings', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(rec.manifest) });
    expect(created.status).toBe(201);
    for (const [i, body] of rec.segments.entries()) {
      const put = await server.request(`/v1/recordings/${rec.manifest.recordingId}/segments/${i}`, { method: 'PUT', headers: segmentHeaders(body), body });
      expect([200, 201]).toContain(put.status);
    }
    expect((await server.request(`/v1/recordings/${rec.manifest.recordingId}/complete`, { method: 'POST' })).status).toBe(200);
  }

  /** The body, or undefined when the answer was cut short. */
  async function bodyOf(res: Response): Promise<Buffer | undefined> {
    return res.arrayBuffer().then((b) => Buffer.from(b), () => undefined);
  }

  async function restart(): Promise<void> {
    await server.close().catch(() => {});
    server = await startTestServer({ keepDir: tmp.path });
  }

  it('segment lengths shifted at rest (still tiling) are never served as a complete answer of other bytes', async () => {
    const data = testBytes(300_000, 69);
    const rec = buildRecording(data, { recordingId: 'LEN-0001', dockKeys, segmentSize: 100_000 });
    await upload(rec);
    const path = join(server.dataDir, 'recordings', 'dock-1', 'LEN-0001.json');
    const stored = JSON.parse(readFileSync(path, 'utf8')) as { manifest: { segments: Array<{ offset: number; length: number }> } };
    const [first, second] = stored.manifest.segments as [{ offset: number; length: number }, { offset: number; length: number }];
    first.length -= 1; second.offset -= 1; second.length += 1;
    writeFileSync(path, JSON.stringify(stored));
    await restart();
    for (const range of ['bytes=99990-100010', 'bytes=0-99998', undefined]) {
      const res = await server.request('/v1/recordings/LEN-0001/content', { headers: range ? { range } : {} });
      const body = await bodyOf(res);
      const [from, to] = range ? range.slice(6).split('-').map(Number) as [number, number] : [0, data.length - 1];
      // Either refused outright or cut short: never a whole answer, whatever bytes it holds.
      const complete = res.ok && body !== undefined && body.length === to - from + 1;
      expect({ range, complete }).toEqual({ range, complete: false });
      if (!res.ok) expect(((JSON.parse(body!.toString())) as { code: string }).code).toBe('record_damaged');
    }
    const pop = await server.request('/v1/recordings/LEN-0001/possession', {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ nonce: randomBytes(32).toString('hex'), segments: [0] }),
    });
    expect(pop.status).toBe(500);
    expect(((await pop.json()) as { code: string }).code).toBe('record_damaged');
  });

  it('a FIFO at a blob path is damage: the read answers, and other docks are not held up', async () => {
    const data = testBytes(200_000, 70);
    const rec = buildRecording(data, { recordingId: 'FIFO-0001', dockKeys, segmentSize: 100_000 });
    await upload(rec);
    const sha = rec.manifest.segments[1]!.sha256;
    const blob = join(server.dataDir, 'blobs', sha.slice(0, 2), sha);
    rmSync(blob);
    expect(spawnSync('mkfifo', [blob]).status).toBe(0);
    // More reads than the file-system pool has threads: each used to hold one in open(2) for good.
    const reads = await Promise.all(Array.from({ length: 6 }, () => server.request('/v1/recordings/FIFO-0001/content', { headers: { range: 'bytes=150000-150010' }, signal: AbortSignal.timeout(10_000) })));
    for (const res of reads) expect(res.status).toBe(500);
    expect(((await reads[0]!.json()) as { code: string }).code).toBe('blob_damaged');
    const other = buildRecording(testBytes(50_000, 71), { recordingId: 'FIFO-0002', dockKeys: generateSigningKeyPair(), dockId: 'dock-2' });
    const created = await server.request('/v1/recordings', { dock: 'dock-2', method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(other.manifest), signal: AbortSignal.timeout(10_000) });
    expect(created.status).toBe(201);
  });

  it('HEAD answers the Content-Length its GET has, whole and ranged', async () => {
    const data = testBytes(120_000, 72);
    await upload(buildRecording(data, { recordingId: 'HEAD-0001', dockKeys, segmentSize: 50_000 }));
    for (const range of [undefined, 'bytes=10-20', 'bytes=-5']) {
      const headers: Record<string, string> = range ? { range } : {};
      const get = await server.request('/v1/recordings/HEAD-0001/content', { headers });
      await get.arrayBuffer();
      const head = await server.request('/v1/recordings/HEAD-0001/content', { method: 'HEAD', headers });
      expect({ range, status: head.status, length: head.headers.get('content-length') }).toEqual({ range, status: get.status, length: get.headers.get('content-length') });
    }
  });

  it('a manifest string holding a lone surrogate is refused at create', async () => {
    for (const [where, name] of [['file', 'clip\ud800.mp4'], ['file', '\udfffx.mp4']] as const) {
      const rec = buildRecording(testBytes(1000, 73), { recordingId: `SURR-${name.length}${where}`, dockKeys });
      (rec.manifest.file as { name: string }).name = name;
      const res = await server.request('/v1/recordings', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(rec.manifest) });
      expect(res.status).toBe(400);
      const problem = (await res.json()) as { code: string; detail: string };
      expect(problem.code).toBe('invalid_manifest');
      expect(problem.detail).toContain('manifest.file.name');
    }
  });

  it('a completion keeps a shared segment held for the dock\'s other receiving recording', async () => {
    const shared = testBytes(60_000, 80);
    const a = buildRecording(Buffer.concat([testBytes(60_000, 81), shared]), { recordingId: 'SHARE-A', dockKeys, segmentSize: 60_000 });
    const b = buildRecording(Buffer.concat([shared, testBytes(60_000, 82)]), { recordingId: 'SHARE-B', dockKeys, segmentSize: 60_000 });
    expect(a.manifest.segments[1]!.sha256).toBe(b.manifest.segments[0]!.sha256);
    for (const rec of [a, b]) {
      expect((await server.request('/v1/recordings', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(rec.manifest) })).status).toBe(201);
    }
    const put = async (rec: BuiltRecording, i: number) => (await server.request(`/v1/recordings/${rec.manifest.recordingId}/segments/${i}`, { method: 'PUT', headers: segmentHeaders(rec.segments[i]!), body: rec.segments[i]! })).status;
    expect([await put(a, 0), await put(a, 1)]).toEqual([201, 201]);
    const missingOfB = async () => ((await (await server.request('/v1/recordings/SHARE-B')).json()) as { missing: number[] }).missing;
    expect(await missingOfB()).toEqual([1]);
    expect((await server.request('/v1/recordings/SHARE-A/complete', { method: 'POST' })).status).toBe(200);
    expect(await missingOfB()).toEqual([1]);
    expect(await put(b, 1)).toBe(201);
    expect((await server.request('/v1/recordings/SHARE-B/complete', { method: 'POST' })).status).toBe(200);
    const content = await server.request('/v1/recordings/SHARE-B/content');
    expect(Buffer.from(await content.arrayBuffer()).equals(Buffer.concat([shared, testBytes(60_000, 82)]))).toBe(true);
  });

  it('a URL that does not decode answers problem+json', async () => {
    const res = await server.request('/v1/recordings/%');
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
    expect(((await res.json()) as { code: string }).code).toBe('bad_request');
  });
});
