/** POST /v1/recordings/{id}/possession (docs/protocol.md, Proof of possession), on the real server over HTTP. */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateSigningKeyPair } from '../../src/protocol/signing.js';
import { buildRecording, testBytes, type BuiltRecording } from '../helpers/manifest.js';
import { segmentHeaders, startTestServer, type TestServer } from '../helpers/server.js';

const json = { 'content-type': 'application/json' };
const dockKeys = generateSigningKeyPair();
const H = (...parts: Buffer[]): string => { const h = createHash('sha256'); for (const p of parts) h.update(p); return h.digest('hex'); };

describe('proof of possession: the server answers SHA-256(nonce ‖ stored bytes)', () => {
  let server: TestServer;
  let rec: BuiltRecording;
  const sidecar = Buffer.from('{"format":"bodycam-sidecar/1","category":"traffic","signature":"c2ln"}\n');
  beforeAll(async () => {
    server = await startTestServer();
    rec = buildRecording(testBytes(50_000, 5), {
      dockKeys, segmentSize: 10_000,
      mutate: (m) => { m.device.sidecarSha256 = H(sidecar); m.device.sidecarBase64 = sidecar.toString('base64'); m.device.sidecar = JSON.parse(sidecar.toString()) as Record<string, unknown>; },
    });
    expect((await server.request('/v1/recordings', { method: 'POST', headers: json, body: JSON.stringify(rec.manifest) })).status).toBe(201);
  });
  afterAll(async () => { await server.close(); });
  const ask = (body: unknown, dock = 'dock-1', id = rec.manifest.recordingId) =>
    server.request(`/v1/recordings/${id}/possession`, { method: 'POST', headers: json, body: JSON.stringify(body), dock });

  it('answers only for a complete recording', async () => {
    const early = await ask({ nonce: 'aa'.repeat(32), segments: [0] });
    expect(early.status).toBe(409);
    expect((await early.json() as { code: string }).code).toBe('incomplete');
    for (const [i, body] of rec.segments.entries()) {
      expect((await server.request(`/v1/recordings/${rec.manifest.recordingId}/segments/${i}`, { method: 'PUT', headers: segmentHeaders(body), body })).status).toBe(201);
    }
    expect((await server.request(`/v1/recordings/${rec.manifest.recordingId}/complete`, { method: 'POST' })).status).toBe(200);
  });

  it('answers each challenged segment, and the sidecar, from the stored bytes with this nonce', async () => {
    const nonce = randomBytes(32);
    const answer = await ask({ nonce: nonce.toString('hex'), segments: [4, 0, 2], sidecar: true });
    expect(answer.status).toBe(200);
    expect(await answer.json()).toEqual({
      recordingId: rec.manifest.recordingId, nonce: nonce.toString('hex'),
      answers: [4, 0, 2].map((i) => ({ index: i, sha256: H(nonce, rec.segments[i]!) })),
      sidecarSha256: H(nonce, sidecar),
    });
    // Another nonce, other answers: nothing can be precomputed.
    const again = await (await ask({ nonce: 'bb'.repeat(32), segments: [4] })).json() as { answers: Array<{ sha256: string }> };
    expect(again.answers[0]!.sha256).not.toBe(H(nonce, rec.segments[4]!));
  });

  it('refuses malformed challenges with invalid_challenge', async () => {
    const bad = [
      {}, { nonce: 'ab'.repeat(32) }, { segments: [0] }, { nonce: 'AB'.repeat(32), segments: [0] }, { nonce: 'ab'.repeat(31), segments: [0] },
      { nonce: 'ab'.repeat(32), segments: [] }, { nonce: 'ab'.repeat(32), segments: [0, 0] }, { nonce: 'ab'.repeat(32), segments: [0, 1, 2, 3, 4, 5, 6, 7, 8] },
      { nonce: 'ab'.repeat(32), segments: [-1] }, { nonce: 'ab'.repeat(32), segments: ['0'] }, { nonce: 'ab'.repeat(32), segments: [0], extra: 1 }, [1],
    ];
    for (const body of bad) {
      const answer = await ask(body);
      expect([answer.status, (await answer.json() as { code: string }).code]).toEqual([400, 'invalid_challenge']);
    }
  });

  it('refuses a segment outside the plan, and another dock\'s recording', async () => {
    const out = await ask({ nonce: 'ab'.repeat(32), segments: [5] });
    expect([out.status, (await out.json() as { code: string }).code]).toEqual([404, 'segment_out_of_plan']);
    expect((await ask({ nonce: 'ab'.repeat(32), segments: [0] }, 'dock-2')).status).toBe(404);
  });

  it('gives no answer from damaged stored bytes', async () => {
    const sha = rec.manifest.segments[1]!.sha256;
    const path = join(server.dataDir, 'blobs', sha.slice(0, 2), sha);
    const bytes = readFileSync(path);
    bytes[10] = bytes[10]! ^ 0xff;
    writeFileSync(path, bytes);
    const answer = await ask({ nonce: 'cd'.repeat(32), segments: [1] });
    expect(answer.status).toBeGreaterThanOrEqual(400);
    expect((await answer.json() as { code: string }).code).toBe('blob_damaged');
  });
});
