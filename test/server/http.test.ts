/** Protocol v1 against a real in-process server on 127.0.0.1; every test checks what is stored afterwards. */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { formatDigestHeader, parseDigestHeader, sha256Hex } from '../../src/protocol/digest.js';
import { generateSigningKeyPair, keyIdOf, verifyObject } from '../../src/protocol/signing.js';
import type { CreateRecordingResponse, Receipt, RecordingListEntry } from '../../src/protocol/types.js';
import { verifyCustodyLog } from '../../src/server/index.js';
import { buildRecording, testBytes, type BuiltRecording } from '../helpers/manifest.js';
import { segmentHeaders, startTestServer, type TestServer } from '../helpers/server.js';

let server: TestServer;
const dockKeys = generateSigningKeyPair();
let seed = 100;
const newRecording = (size = 200_000, segmentSize = 64 * 1024, extra: Parameters<typeof buildRecording>[1] = {}) =>
  buildRecording(testBytes(size, seed++), { dockKeys, segmentSize, ...extra });

const blobPath = (sha: string) => join(server.dataDir, 'blobs', sha.slice(0, 2), sha);
const allBlobs = () => readdirSync(join(server.dataDir, 'blobs')).flatMap((d) => readdirSync(join(server.dataDir, 'blobs', d)));

async function create(rec: BuiltRecording, dock = 'dock-1') {
  const response = await server.request('/v1/recordings', { method: 'POST', dock, headers: { 'content-type': 'application/json' }, body: JSON.stringify(rec.manifest) });
  return { status: response.status, body: await response.json() as CreateRecordingResponse & { code?: string } };
}
async function put(rec: BuiltRecording, index: number, body = rec.segments[index]!, headers: Record<string, string> = segmentHeaders(body), dock = 'dock-1') {
  const response = await server.request(`/v1/recordings/${rec.manifest.recordingId}/segments/${index}`, { method: 'PUT', dock, headers, body });
  return { status: response.status, body: await response.json() as Record<string, unknown> };
}
async function complete(rec: BuiltRecording, dock = 'dock-1') {
  const response = await server.request(`/v1/recordings/${rec.manifest.recordingId}/complete`, { method: 'POST', dock });
  return { status: response.status, body: await response.json() as Receipt & { code?: string; missing?: number[] } };
}

beforeAll(async () => { server = await startTestServer(); });
afterAll(async () => { await server.close(); });

describe('ingest protocol v1 over HTTP', () => {
  it('happy path: create, upload, complete → verifiable receipt; content reads back byte-exact, also by range', async () => {
    const rec = newRecording();
    const created = await create(rec);
    expect(created.status).toBe(201);
    expect(created.body).toEqual({ recordingId: rec.manifest.recordingId, state: 'receiving', missing: [0, 1, 2, 3] });
    for (let i = 0; i < rec.segments.length; i++) expect((await put(rec, i)).status).toBe(201);
    for (const segment of rec.manifest.segments) expect(readFileSync(blobPath(segment.sha256)).length).toBe(segment.length);

    const done = await complete(rec);
    expect(done.status).toBe(200);
    const receipt = done.body;
    expect(receipt).toMatchObject({ type: 'receipt', recordingId: rec.manifest.recordingId, dockId: 'dock-1', sha256: rec.manifest.file.sha256, size: 200_000, segmentCount: 4, merkleRoot: rec.manifest.merkleRoot, serverKeyId: server.keyId });
    expect(verifyObject(receipt as unknown as Record<string, unknown>, server.publicKeyPem)).toBe(true);
    expect(keyIdOf(readFileSync(join(server.dataDir, 'server-key.pub.pem'), 'utf8'))).toBe(server.keyId);
    // Repeat: the same receipt, not a new one.
    expect((await complete(rec)).body).toEqual(receipt);

    const content = await server.request(`/v1/recordings/${rec.manifest.recordingId}/content`);
    expect(content.status).toBe(200);
    expect(content.headers.get('content-length')).toBe('200000');
    expect(parseDigestHeader(content.headers.get('repr-digest') ?? undefined)).toBe(rec.manifest.file.sha256);
    expect(sha256Hex(Buffer.from(await content.arrayBuffer()))).toBe(rec.manifest.file.sha256);

    const original = testBytes(200_000, seed - 1);
    const ranged = await server.request(`/v1/recordings/${rec.manifest.recordingId}/content`, { headers: { range: 'bytes=65000-131100' } });
    expect(ranged.status).toBe(206);
    expect(ranged.headers.get('content-range')).toBe('bytes 65000-131100/200000');
    expect(Buffer.from(await ranged.arrayBuffer()).equals(original.subarray(65000, 131101))).toBe(true);
    const suffix = await server.request(`/v1/recordings/${rec.manifest.recordingId}/content`, { headers: { range: 'bytes=-10' } });
    expect(Buffer.from(await suffix.arrayBuffer()).equals(original.subarray(-10))).toBe(true);
    const beyond = await server.request(`/v1/recordings/${rec.manifest.recordingId}/content`, { headers: { range: 'bytes=300000-' } });
    expect(beyond.status).toBe(416);
    expect(beyond.headers.get('content-range')).toBe('bytes */200000');

    const one = await (await server.request(`/v1/recordings/${rec.manifest.recordingId}`)).json() as { state: string; receipt: Receipt; missing: number[] };
    expect(one).toMatchObject({ state: 'complete', missing: [], receipt });
    const list = await (await server.request('/v1/recordings?state=complete&device=CAM001')).json() as { recordings: RecordingListEntry[] };
    expect(list.recordings.find((r) => r.id === rec.manifest.recordingId)).toMatchObject({ state: 'complete', sha256: rec.manifest.file.sha256, segmentsReceived: 4, segmentCount: 4 });
    // Created again after completion: 200 with the receipt.
    const again = await create(rec);
    expect(again.status).toBe(200);
    expect(again.body.receipt).toEqual(receipt);

    const log = await verifyCustodyLog(server.dataDir);
    expect(log.ok).toBe(true);
    const entries = readFileSync(join(server.dataDir, 'custody.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { seq: number; event: string; recordingId: string });
    const mine = entries.filter((e) => e.recordingId === rec.manifest.recordingId).map((e) => e.event);
    expect(mine).toEqual(['recording-created', 'segment-stored', 'segment-stored', 'segment-stored', 'segment-stored', 'receipt-issued']);
    expect(entries.find((e) => e.event === 'receipt-issued' && e.recordingId === rec.manifest.recordingId)!.seq).toBe(receipt.custodySeq);
  });

  it('resume: creating twice is one recording; only the missing segments are sent', async () => {
    const rec = newRecording(150_000, 50_000);
    expect((await create(rec)).status).toBe(201);
    expect((await put(rec, 1)).status).toBe(201);
    const second = await create(rec);
    expect(second.status).toBe(200);
    expect(second.body.missing).toEqual([0, 2]);
    expect((await put(rec, 0)).status).toBe(201);
    expect((await put(rec, 2)).status).toBe(201);
    expect((await put(rec, 2)).status).toBe(200); // a blind retry is harmless
    expect((await complete(rec)).status).toBe(200);
  });

  it('wrong digest: 422, nothing kept; a body that does not match its own (correct-looking) digest too', async () => {
    const rec = newRecording(100_000, 50_000);
    await create(rec);
    const wrongClaim = await put(rec, 0, rec.segments[0], segmentHeaders(rec.segments[0]!, Buffer.from('other')));
    expect(wrongClaim).toMatchObject({ status: 422, body: { code: 'digest_mismatch' } });
    const tampered = Buffer.from(rec.segments[0]!);
    tampered[100] ^= 0xff;
    const badBody = await put(rec, 0, tampered, segmentHeaders(rec.segments[0]!));
    expect(badBody).toMatchObject({ status: 422, body: { code: 'digest_mismatch' } });
    expect(existsSync(blobPath(rec.manifest.segments[0]!.sha256))).toBe(false);
    expect(readdirSync(join(server.dataDir, 'tmp'))).toEqual([]);
    expect((await create(rec)).body.missing).toEqual([0, 1]);
  });

  it('length: a body longer or shorter than the plan is 400 length_mismatch, nothing kept', async () => {
    const rec = newRecording(100_000, 50_000);
    await create(rec);
    const longer = Buffer.concat([rec.segments[0]!, Buffer.from('extra')]);
    expect(await put(rec, 0, longer, segmentHeaders(rec.segments[0]!))).toMatchObject({ status: 400, body: { code: 'length_mismatch' } });
    const shorter = rec.segments[0]!.subarray(0, 1000);
    expect(await put(rec, 0, shorter, segmentHeaders(rec.segments[0]!))).toMatchObject({ status: 400, body: { code: 'length_mismatch' } });
    // Chunked (no Content-Length): the count is checked while streaming.
    const chunked = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpRequest(`${server.url}/v1/recordings/${rec.manifest.recordingId}/segments/1`, { method: 'PUT', headers: { authorization: `Bearer ${server.tokens['dock-1']}`, 'content-type': 'application/octet-stream', 'content-digest': formatDigestHeader(rec.manifest.segments[1]!.sha256), 'transfer-encoding': 'chunked' } }, (res) => {
        let body = '';
        res.on('data', (d: Buffer) => { body += d.toString(); });
        res.on('end', () => resolve({ status: res.statusCode!, body }));
      });
      req.on('error', reject);
      req.write(rec.segments[1]);
      req.end(Buffer.from('more bytes than planned'));
    });
    expect(chunked.status).toBe(400);
    expect(JSON.parse(chunked.body).code).toBe('length_mismatch');
    expect(existsSync(blobPath(rec.manifest.segments[0]!.sha256))).toBe(false);
    expect(existsSync(blobPath(rec.manifest.segments[1]!.sha256))).toBe(false);
  });

  it('segment index outside the plan, malformed index, unknown recording', async () => {
    const rec = newRecording(100_000, 50_000);
    await create(rec);
    expect(await put(rec, 2, rec.segments[0])).toMatchObject({ status: 404, body: { code: 'segment_out_of_plan' } });
    const malformed = await server.request(`/v1/recordings/${rec.manifest.recordingId}/segments/-1`, { method: 'PUT', headers: segmentHeaders(rec.segments[0]!), body: rec.segments[0] });
    expect(malformed.status).toBe(400);
    const unknown = await server.request('/v1/recordings/CAM001-ffffffffffffffffffffffffffffffff/segments/0', { method: 'PUT', headers: segmentHeaders(rec.segments[0]!), body: rec.segments[0] });
    expect(unknown.status).toBe(404);
    expect((await unknown.json() as { code: string }).code).toBe('not_found');
    expect((await server.request('/v1/recordings/CAM001-ffffffffffffffffffffffffffffffff')).status).toBe(404);
    // A path outside the protocol has its own code; the detail keeps the words older docks look for.
    const route = await server.request('/v2/recordings');
    expect(route.status).toBe(404);
    expect(await route.json()).toMatchObject({ code: 'no_such_route', type: expect.stringMatching(/\/no_such_route$/), detail: 'GET /v2/recordings is not part of protocol v1' });
    expect(existsSync(blobPath(rec.manifest.segments[0]!.sha256))).toBe(false);
  });

  it('a segment PUT follows the record on disk: altered in place after an earlier PUT, or removed (the parsed record is reused only while unchanged)', async () => {
    const rec = newRecording(150_000, 50_000);
    await create(rec);
    expect((await put(rec, 0)).status).toBe(201);
    const recordPath = join(server.dataDir, 'recordings', 'dock-1', `${rec.manifest.recordingId}.json`);
    const stored = JSON.parse(readFileSync(recordPath, 'utf8')) as { manifest: { segments: Array<{ sha256: string }> } };
    stored.manifest.segments[1]!.sha256 = 'f'.repeat(64);
    writeFileSync(recordPath, `${JSON.stringify(stored)} `); // in place: same inode, another size
    expect(await put(rec, 1)).toMatchObject({ status: 422, body: { code: 'digest_mismatch' } });
    expect(existsSync(blobPath(rec.manifest.segments[1]!.sha256))).toBe(false);
    rmSync(recordPath);
    expect(await put(rec, 2)).toMatchObject({ status: 404, body: { code: 'not_found' } });
  });

  it('complete with a segment missing is 409 incomplete naming it; no receipt is issued', async () => {
    const rec = newRecording(150_000, 50_000);
    await create(rec);
    await put(rec, 0);
    await put(rec, 2);
    const done = await complete(rec);
    expect(done).toMatchObject({ status: 409, body: { code: 'incomplete', missing: [1] } });
    const stored = await (await server.request(`/v1/recordings/${rec.manifest.recordingId}`)).json() as { state: string; receipt?: unknown };
    expect(stored.state).toBe('receiving');
    expect(stored.receipt).toBeUndefined();
    expect((await server.request(`/v1/recordings/${rec.manifest.recordingId}/content`)).status).toBe(409);
  });

  it('manifests: bad dock signature, broken plan, wrong Merkle root, schema violations are 400 and store nothing', async () => {
    const rec = newRecording(100_000, 50_000);
    const forged = { ...rec.manifest, file: { ...rec.manifest.file, name: 'renamed.mp4' } };
    const badSig = await server.request('/v1/recordings', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(forged) });
    expect(badSig.status).toBe(400);
    expect((await badSig.json() as { code: string }).code).toBe('bad_signature');
    const gap = newRecording(100_000, 50_000, { mutate: (m) => { m.segments[1]!.offset += 1; } });
    expect(await create(gap)).toMatchObject({ status: 400, body: { code: 'invalid_manifest' } });
    const root = newRecording(100_000, 50_000, { mutate: (m) => { m.merkleRoot = '0'.repeat(64); } });
    expect(await create(root)).toMatchObject({ status: 400, body: { code: 'invalid_manifest' } });
    const schema = newRecording(100_000, 50_000, { mutate: (m) => { (m.file as { size: unknown }).size = '100000'; } });
    expect(await create(schema)).toMatchObject({ status: 400, body: { code: 'invalid_manifest' } });
    const version = newRecording(100_000, 50_000, { mutate: (m) => { (m as { protocol: string }).protocol = 'bodycam-ingest/2'; } });
    expect(await create(version)).toMatchObject({ status: 400, body: { code: 'unsupported_protocol' } });
    for (const r of [rec, gap, root, schema, version]) expect((await server.request(`/v1/recordings/${r.manifest.recordingId}`)).status).toBe(404);
  });

  it('same id with different content is 409 conflict and never overwrites', async () => {
    const rec = newRecording(100_000, 50_000);
    await create(rec);
    const other = newRecording(100_000, 50_000, { recordingId: rec.manifest.recordingId });
    expect(await create(other)).toMatchObject({ status: 409, body: { code: 'conflict' } });
    const stored = await (await server.request(`/v1/recordings/${rec.manifest.recordingId}`)).json() as { manifest: { file: { sha256: string } } };
    expect(stored.manifest.file.sha256).toBe(rec.manifest.file.sha256);
  });

  it('a dock key change for a pinned dock id is refused (TOFU)', async () => {
    const rekeyed = buildRecording(testBytes(1000, seed++), { dockKeys: generateSigningKeyPair(), segmentSize: 500 });
    await create(newRecording(1000, 500)); // pins dockKeys for dock-1 (if not pinned already)
    expect(await create(rekeyed)).toMatchObject({ status: 400, body: { code: 'dock_key_mismatch' } });
    expect(readFileSync(join(server.dataDir, 'docks', 'dock-1.pub.pem'), 'utf8')).toBe(dockKeys.publicKeyPem);
  });

  it('path traversal in ids is 400 and touches nothing', async () => {
    for (const id of ['..%2F..%2Fetc', '..', '.hidden', 'a%00b', 'x'.repeat(200)]) {
      const response = await server.request(`/v1/recordings/${id}`);
      expect([400, 404]).toContain(response.status);
      if (response.status === 400) expect((await response.json() as { code: string }).code).toBe('invalid_id');
    }
    const traversal = await server.request('/v1/recordings/..%2F..%2Fetc/segments/0', { method: 'PUT', headers: segmentHeaders(Buffer.from('x')), body: 'x' });
    expect(traversal.status).toBe(400);
    const rec = newRecording(1000, 500, { recordingId: '..' });
    expect((await create(rec)).status).toBe(400);
  });

  it('auth: no token and unknown token are 401; another dock\'s recording does not exist for a dock (404), its manifest is 403', async () => {
    const rec = newRecording(100_000, 50_000);
    await create(rec);
    expect((await server.request('/v1/recordings', { dock: null })).status).toBe(401);
    expect((await server.request('/v1/recordings', { headers: { authorization: 'Bearer not-a-token' } })).status).toBe(401);
    const id = rec.manifest.recordingId;
    // Recordings are namespaced per dock: dock-2 has no recording of this id.
    expect((await server.request(`/v1/recordings/${id}`, { dock: 'dock-2' })).status).toBe(404);
    expect((await put(rec, 0, rec.segments[0], segmentHeaders(rec.segments[0]!), 'dock-2')).status).toBe(404);
    expect((await complete(rec, 'dock-2')).status).toBe(404);
    expect((await server.request(`/v1/recordings/${id}/content`, { dock: 'dock-2' })).status).toBe(404);
    // dock-2 presenting dock-1's manifest: the token decides who you are.
    expect((await create(rec, 'dock-2')).status).toBe(403);
    const list = await (await server.request('/v1/recordings', { dock: 'dock-2' })).json() as { recordings: unknown[] };
    expect(list.recordings).toEqual([]);
    expect(existsSync(blobPath(rec.manifest.segments[0]!.sha256))).toBe(false);
  });

  it('oversized bodies are 413: a manifest over 4 MiB, a segment over --max-segment-bytes', async () => {
    const big = newRecording(1000, 500, { mutate: (m) => { m.integrity.notes = ['x'.repeat(4_300_000)]; } });
    expect((await create(big)).status).toBe(413);
    const small = await startTestServer({ limits: { maxSegmentBytes: 10_000 } });
    try {
      const rec = buildRecording(testBytes(30_000, 9), { dockKeys, segmentSize: 10_000 });
      const tooBigPlan = buildRecording(testBytes(30_000, 9), { dockKeys, segmentSize: 20_000 });
      const created = await small.request('/v1/recordings', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(tooBigPlan.manifest) });
      expect(created.status).toBe(400);
      await small.request('/v1/recordings', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(rec.manifest) });
      const body = testBytes(20_000, 1);
      const response = await small.request(`/v1/recordings/${rec.manifest.recordingId}/segments/0`, { method: 'PUT', headers: segmentHeaders(rec.segments[0]!), body });
      expect(response.status).toBe(413);
      expect(readdirSync(join(small.dataDir, 'blobs'))).toEqual([]);
    } finally {
      await small.close();
    }
  });

  it('two concurrent PUTs of the same segment leave one blob; one 201, one 200 or 201', async () => {
    const rec = newRecording(300_000, 300_000);
    await create(rec);
    const before = allBlobs().length;
    const results = await Promise.all([put(rec, 0), put(rec, 0), put(rec, 0)]);
    expect(results.every((r) => r.status === 200 || r.status === 201)).toBe(true);
    expect(results.filter((r) => r.status === 201).length).toBe(1);
    expect(allBlobs().length).toBe(before + 1);
    expect(sha256Hex(readFileSync(blobPath(rec.manifest.segments[0]!.sha256)))).toBe(rec.manifest.segments[0]!.sha256);
  });

  it('concurrent completes issue one receipt', async () => {
    const rec = newRecording(100_000, 50_000);
    await create(rec);
    await put(rec, 0);
    await put(rec, 1);
    const answers = await Promise.all([complete(rec), complete(rec), complete(rec)]);
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200]);
    expect(answers[1]!.body).toEqual(answers[0]!.body);
    expect(answers[2]!.body).toEqual(answers[0]!.body);
    const issued = readFileSync(join(server.dataDir, 'custody.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { event: string; recordingId: string })
      .filter((e) => e.event === 'receipt-issued' && e.recordingId === rec.manifest.recordingId);
    expect(issued).toHaveLength(1);
  });

  it('metrics, health and keys', async () => {
    expect((await server.request('/healthz', { dock: null })).status).toBe(200);
    const keys = await (await server.request('/v1/keys', { dock: null })).json() as { keyId: string; publicKeyPem: string };
    expect(keys).toMatchObject({ keyId: server.keyId, publicKeyPem: server.publicKeyPem });
    const text = await (await server.request('/metrics', { dock: null })).text();
    expect(text).toMatch(/bodycam_http_requests_total\{method="PUT",route="\/v1\/recordings\/:id\/segments\/:index",status="201"\} \d+/);
    expect(text).toMatch(/bodycam_digest_failures_total [1-9]/);
    expect(text).toMatch(/bodycam_recordings_completed_total [1-9]/);
    expect(text).toMatch(/bodycam_segment_bytes_received_total [1-9]/);
    expect(text).toMatch(/bodycam_store_bytes [1-9]/);
  });
});

describe('stalled uploads', () => {
  it('a body that stops sending is abandoned after the idle timeout; nothing kept, the slot is freed', async () => {
    const slow = await startTestServer({ limits: { bodyIdleTimeoutMs: 300 } });
    try {
      const rec = buildRecording(testBytes(100_000, 31), { dockKeys, segmentSize: 100_000 });
      await slow.request('/v1/recordings', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(rec.manifest) });
      const outcome = await new Promise<string>((resolve) => {
        const req = httpRequest(`${slow.url}/v1/recordings/${rec.manifest.recordingId}/segments/0`, { method: 'PUT', headers: { authorization: `Bearer ${slow.tokens['dock-1']}`, 'content-type': 'application/octet-stream', 'content-length': '100000', 'content-digest': formatDigestHeader(rec.manifest.segments[0]!.sha256) } }, (res) => {
          res.resume();
          res.on('end', () => resolve(`status ${res.statusCode}`));
        });
        req.on('error', () => resolve('connection closed'));
        req.write(rec.segments[0]!.subarray(0, 40_000)); // ...and never the rest
      });
      expect(outcome).toBe('status 408'); // the documented answer, then the connection closes
      // The server cleans up after the socket is gone: wait for it (bounded), then check.
      for (const deadline = Date.now() + 30_000; readdirSync(join(slow.dataDir, 'tmp')).length && Date.now() < deadline;) await new Promise((r) => setTimeout(r, 20));
      expect(readdirSync(join(slow.dataDir, 'tmp'))).toEqual([]);
      expect(readdirSync(join(slow.dataDir, 'blobs'))).toEqual([]);
      const retry = await slow.request(`/v1/recordings/${rec.manifest.recordingId}/segments/0`, { method: 'PUT', headers: segmentHeaders(rec.segments[0]!), body: rec.segments[0] });
      expect(retry.status).toBe(201);
    } finally {
      await slow.close();
    }
  });
});

describe('too many uploads', () => {
  it('a dock over its in-flight upload limit gets 429 with Retry-After; nothing is stored for it', async () => {
    const limited = await startTestServer({ limits: { maxConcurrentUploadsPerDock: 1 } });
    try {
      const rec = buildRecording(testBytes(100_000, 41), { dockKeys, segmentSize: 50_000 });
      await limited.request('/v1/recordings', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(rec.manifest) });
      // Hold the one slot with a body that is still arriving.
      const holder = httpRequest(`${limited.url}/v1/recordings/${rec.manifest.recordingId}/segments/0`, { method: 'PUT', headers: { authorization: `Bearer ${limited.tokens['dock-1']}`, 'content-type': 'application/octet-stream', 'content-length': '50000', 'content-digest': formatDigestHeader(rec.manifest.segments[0]!.sha256) } });
      const held = new Promise<number>((resolve, reject) => { holder.on('response', (res) => { res.resume(); resolve(res.statusCode!); }); holder.on('error', reject); });
      holder.write(rec.segments[0]!.subarray(0, 10_000));
      for (const deadline = Date.now() + 30_000; readdirSync(join(limited.dataDir, 'tmp')).length === 0 && Date.now() < deadline;) await new Promise((r) => setTimeout(r, 20));
      const refused = await limited.request(`/v1/recordings/${rec.manifest.recordingId}/segments/1`, { method: 'PUT', headers: segmentHeaders(rec.segments[1]!), body: rec.segments[1] });
      expect(refused.status).toBe(429);
      expect(refused.headers.get('retry-after')).toBe('1');
      expect(existsSync(join(limited.dataDir, 'blobs', rec.manifest.segments[1]!.sha256.slice(0, 2), rec.manifest.segments[1]!.sha256))).toBe(false);
      holder.end(rec.segments[0]!.subarray(10_000));
      expect(await held).toBe(201);
      const retried = await limited.request(`/v1/recordings/${rec.manifest.recordingId}/segments/1`, { method: 'PUT', headers: segmentHeaders(rec.segments[1]!), body: rec.segments[1] });
      expect(retried.status).toBe(201);
    } finally {
      await limited.close();
    }
  });
});

describe('store quota', () => {
  it('answers 507 with Retry-After when full, corrupts nothing, and still serves reads', async () => {
    const full = await startTestServer({ limits: { maxStoreBytes: 120_000 } });
    try {
      const send = (path: string, init: RequestInit) => full.request(path, init);
      const first = buildRecording(testBytes(100_000, 21), { dockKeys, segmentSize: 50_000 });
      const second = buildRecording(testBytes(100_000, 22), { dockKeys, segmentSize: 50_000 });
      for (const rec of [first, second]) {
        expect((await send('/v1/recordings', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(rec.manifest) })).status).toBe(201);
      }
      for (let i = 0; i < 2; i++) {
        expect((await send(`/v1/recordings/${first.manifest.recordingId}/segments/${i}`, { method: 'PUT', headers: segmentHeaders(first.segments[i]!), body: first.segments[i] })).status).toBe(201);
      }
      expect((await send(`/v1/recordings/${first.manifest.recordingId}/complete`, { method: 'POST' })).status).toBe(200);
      const refused = await send(`/v1/recordings/${second.manifest.recordingId}/segments/0`, { method: 'PUT', headers: segmentHeaders(second.segments[0]!), body: second.segments[0] });
      expect(refused.status).toBe(507);
      expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
      expect((await refused.json() as { code: string }).code).toBe('insufficient_storage');
      expect(existsSync(join(full.dataDir, 'blobs', second.manifest.segments[0]!.sha256.slice(0, 2), second.manifest.segments[0]!.sha256))).toBe(false);
      const content = await send(`/v1/recordings/${first.manifest.recordingId}/content`, { method: 'GET' });
      expect(sha256Hex(Buffer.from(await content.arrayBuffer()))).toBe(first.manifest.file.sha256);
      const pending = await (await send(`/v1/recordings/${second.manifest.recordingId}`, { method: 'GET' })).json() as { missing: number[] };
      expect(pending.missing).toEqual([0, 1]);
      expect((await verifyCustodyLog(full.dataDir)).ok).toBe(true);
    } finally {
      await full.close();
    }
  });
});
