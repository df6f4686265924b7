/**
 * Issue 9 item 10: a camera that moves between offices. Recordings are namespaced per dock on
 * the server: a recording id another dock created first (a squatter, or the same camera docked
 * at another office) never blocks this dock; it completes its own upload, gets its own receipt,
 * reads back only its own bytes, and another dock's bytes never count as held for it.
 * Through the real built CLI server (`npm run build` first) on 127.0.0.1, port 0.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { existsSync, readdirSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { formatDigestHeader, sha256Hex } from '../../src/protocol/digest.js';
import { generateSigningKeyPair, verifyObject } from '../../src/protocol/signing.js';
import type { CreateRecordingResponse, Receipt } from '../../src/protocol/types.js';
import { runCli } from '../helpers/cli.js';
import { buildRecording, testBytes, type BuiltRecording } from '../helpers/manifest.js';
import { makeTempDir } from '../helpers/tmp.js';
import { ServerProcess } from '../helpers/reliability.js';

const keys = { 'dock-1': generateSigningKeyPair(), 'dock-2': generateSigningKeyPair(), 'dock-3': generateSigningKeyPair() };
type Dock = keyof typeof keys;

describe('item 10: recording ids are per dock', () => {
  const tmp = makeTempDir('bodycam-item10-');
  const server = new ServerProcess(join(tmp.path, 'server'));
  beforeAll(async () => { await server.start(); });
  afterAll(async () => { await server.stop(); tmp.cleanup(); });

  const json = (body: unknown): RequestInit => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const create = async (dock: Dock, rec: BuiltRecording) => {
    const response = await server.request('/v1/recordings', { ...json(rec.manifest), dock });
    return { status: response.status, body: await response.json() as CreateRecordingResponse };
  };
  const put = (dock: Dock, rec: BuiltRecording, i: number) => server.request(`/v1/recordings/${rec.manifest.recordingId}/segments/${i}`, {
    dock, method: 'PUT', body: rec.segments[i]!, headers: { 'content-type': 'application/octet-stream', 'content-digest': formatDigestHeader(sha256Hex(rec.segments[i]!)) },
  });
  const complete = async (dock: Dock, id: string) => {
    const response = await server.request(`/v1/recordings/${id}/complete`, { method: 'POST', dock });
    return { status: response.status, body: await response.json() as Receipt };
  };
  const content = async (dock: Dock, id: string) => Buffer.from(await (await server.request(`/v1/recordings/${id}/content`, { dock })).arrayBuffer());
  const serverKey = async () => (await (await fetch(`${server.url}/v1/keys`)).json() as { publicKeyPem: string }).publicKeyPem;

  /** Create, send every segment, complete: the receipt. */
  async function ingest(dock: Dock, rec: BuiltRecording): Promise<Receipt> {
    const created = await create(dock, rec);
    expect([201, 200]).toContain(created.status);
    for (const i of created.body.missing) expect([200, 201]).toContain((await put(dock, rec, i)).status);
    const done = await complete(dock, rec.manifest.recordingId);
    expect(done.status).toBe(200);
    return done.body;
  }

  it('dock-1 completes id X first; dock-2 uploads its own X (other bytes) and gets its own receipt; each reads back only its own', async () => {
    const X = 'CAM7-moved-between-offices';
    const atOfficeA = buildRecording(testBytes(150_000, 101), { dockId: 'dock-1', dockKeys: keys['dock-1'], recordingId: X, segmentSize: 50_000 });
    const atOfficeB = buildRecording(testBytes(120_000, 202), { dockId: 'dock-2', dockKeys: keys['dock-2'], recordingId: X, segmentSize: 40_000 });
    const receiptA = await ingest('dock-1', atOfficeA);

    const createdB = await create('dock-2', atOfficeB);
    expect(createdB.status).toBe(201); // its own recording, not 403 and not dock-1's
    expect(createdB.body.missing).toEqual([0, 1, 2]);
    const receiptB = await ingest('dock-2', atOfficeB);

    const pem = await serverKey();
    for (const [receipt, rec, dock] of [[receiptA, atOfficeA, 'dock-1'], [receiptB, atOfficeB, 'dock-2']] as const) {
      expect(verifyObject(receipt as unknown as Record<string, unknown>, pem)).toBe(true);
      expect(receipt).toMatchObject({ recordingId: X, dockId: dock, sha256: rec.manifest.file.sha256, size: rec.manifest.file.size });
    }
    expect(receiptB.custodySeq).not.toBe(receiptA.custodySeq);
    expect((await content('dock-1', X)).equals(testBytes(150_000, 101))).toBe(true);
    expect((await content('dock-2', X)).equals(testBytes(120_000, 202))).toBe(true);
    // Completing again returns the same receipt for each: neither overwrote the other.
    expect((await complete('dock-1', X)).body.sha256).toBe(atOfficeA.manifest.file.sha256);
    expect((await complete('dock-2', X)).body.sha256).toBe(atOfficeB.manifest.file.sha256);
    const listB = await (await server.request('/v1/recordings', { dock: 'dock-2' })).json() as { recordings: Array<{ id: string; sha256: string }> };
    expect(listB.recordings.filter((r) => r.id === X).map((r) => r.sha256)).toEqual([atOfficeB.manifest.file.sha256]);
  });

  it('the same camera file at two offices: dock-1\'s held bytes are not held for dock-2, which must send them itself', async () => {
    const Y = 'CAM8-same-file-two-offices';
    const data = testBytes(100_000, 303);
    const first = buildRecording(data, { dockId: 'dock-1', dockKeys: keys['dock-1'], recordingId: Y, segmentSize: 25_000 });
    const second = buildRecording(data, { dockId: 'dock-2', dockKeys: keys['dock-2'], recordingId: Y, segmentSize: 25_000 });
    await ingest('dock-1', first);
    const created = await create('dock-2', second);
    expect(created.status).toBe(201);
    expect(created.body.missing).toEqual([0, 1, 2, 3]);
    // Without sending the bytes, dock-2 gets no receipt.
    expect((await complete('dock-2', Y)).status).toBe(409);
    for (let i = 0; i < 4; i++) {
      const response = await put('dock-2', second, i);
      expect(response.status).toBe(200); // verified, then dropped as a duplicate: stored once
      expect((await response.json() as { stored: boolean }).stored).toBe(false);
    }
    const receipt = (await complete('dock-2', Y)).body;
    expect(receipt).toMatchObject({ recordingId: Y, dockId: 'dock-2', sha256: sha256Hex(data) });
    expect((await content('dock-2', Y)).equals(data)).toBe(true);
  });

  it('a squatter that creates an id and never completes it blocks nobody; its plan stays its own', async () => {
    const Z = 'CAM9-squatted';
    const squat = buildRecording(testBytes(10_000, 404), { dockId: 'dock-3', dockKeys: keys['dock-3'], recordingId: Z, segmentSize: 5_000 });
    expect((await create('dock-3', squat)).status).toBe(201);
    const real = buildRecording(testBytes(80_000, 505), { dockId: 'dock-1', dockKeys: keys['dock-1'], recordingId: Z, segmentSize: 40_000 });
    const receipt = await ingest('dock-1', real);
    expect(receipt).toMatchObject({ recordingId: Z, dockId: 'dock-1', sha256: real.manifest.file.sha256, segmentCount: 2 });
    // The squatter still has only its own, incomplete recording.
    const squatted = await (await server.request(`/v1/recordings/${Z}`, { dock: 'dock-3' })).json() as { state: string; manifest: { file: { sha256: string } } };
    expect(squatted.state).toBe('receiving');
    expect(squatted.manifest.file.sha256).toBe(squat.manifest.file.sha256);
    expect((await server.request(`/v1/recordings/${Z}/content`, { dock: 'dock-3' })).status).toBe(409);
  });

  it('after a restart each dock still has its own record, and the custody log names each dock\'s receipt', async () => {
    await server.stop();
    await server.start();
    expect((await content('dock-2', 'CAM7-moved-between-offices')).equals(testBytes(120_000, 202))).toBe(true);
    expect((await content('dock-1', 'CAM7-moved-between-offices')).equals(testBytes(150_000, 101))).toBe(true);
    const entries = readFileSync(join(server.dataDir, 'custody.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { event: string; recordingId: string; dockId: string; reconciled?: boolean });
    const created = entries.filter((e) => e.event === 'recording-created' && e.recordingId === 'CAM7-moved-between-offices');
    expect(created.map((e) => e.dockId)).toEqual(['dock-1', 'dock-2']);
    expect(created.some((e) => e.reconciled)).toBe(false);
    const receipts = entries.filter((e) => e.event === 'receipt-issued').map((e) => `${e.dockId}/${e.recordingId}`);
    expect(receipts.sort()).toEqual(['dock-1/CAM7-moved-between-offices', 'dock-1/CAM8-same-file-two-offices', 'dock-1/CAM9-squatted', 'dock-2/CAM7-moved-between-offices', 'dock-2/CAM8-same-file-two-offices']);
    const verify = await runCli(['server', 'verify-log', '--data-dir', server.dataDir]);
    expect(verify.code).toBe(0);
  });

  it('a data dir of the flat layout (recordings/<id>.json, before namespacing) is moved under each dock at startup and still serves', async () => {
    await server.stop();
    // Put every record back where the old layout kept it.
    const root = join(server.dataDir, 'recordings');
    const moved: string[] = [];
    for (const dock of readdirSync(root)) {
      for (const name of readdirSync(join(root, dock))) {
        if (dock === 'dock-2' && name.startsWith('CAM7')) continue; // the old layout had one record per id
        renameSync(join(root, dock, name), join(root, name));
        moved.push(name);
      }
    }
    expect(moved.length).toBeGreaterThan(2);
    await server.start();
    for (const name of moved) expect(existsSync(join(root, name))).toBe(false);
    expect((await content('dock-1', 'CAM7-moved-between-offices')).equals(testBytes(150_000, 101))).toBe(true);
    expect((await content('dock-2', 'CAM7-moved-between-offices')).equals(testBytes(120_000, 202))).toBe(true);
    expect((await content('dock-2', 'CAM8-same-file-two-offices')).equals(testBytes(100_000, 303))).toBe(true);
    expect((await server.request('/v1/recordings/CAM9-squatted', { dock: 'dock-3' })).status).toBe(200);
    expect((await server.request('/v1/recordings/CAM9-squatted', { dock: 'dock-2' })).status).toBe(404);
  });
});
