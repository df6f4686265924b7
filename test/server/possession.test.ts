import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import { generateSigningKeyPair } from '../../src/protocol/signing.js';
import { buildRecording, testBytes } from '../helpers/manifest.js';
import { segmentHeaders, startTestServer, type TestServer } from '../helpers/server.js';

const json = { 'content-type': 'application/json' };
// The server pins each dock's key on first use: every dock-1 manifest here is signed with one key.
const dock1Keys = generateSigningKeyPair();

describe('possession: held bytes count only for the dock that proved it holds them', () => {
  let server: TestServer;
  beforeAll(async () => { server = await startTestServer(); });
  afterAll(async () => { await server.close(); });

  const footage = testBytes(100_000, 42);

  it('a dock that only knows the hashes of another dock\'s footage cannot earn a receipt or read it back', async () => {
    // dock-1 ingests the footage.
    const own = buildRecording(footage, { dockId: 'dock-1', dockKeys: dock1Keys, segmentSize: 40_000 });
    expect((await server.request('/v1/recordings', { method: 'POST', headers: json, body: JSON.stringify(own.manifest) })).status).toBe(201);
    for (const [i, body] of own.segments.entries()) {
      const put = await server.request(`/v1/recordings/${own.manifest.recordingId}/segments/${i}`, { method: 'PUT', headers: segmentHeaders(body), body });
      expect(put.status).toBe(201);
    }
    expect((await server.request(`/v1/recordings/${own.manifest.recordingId}/complete`, { method: 'POST' })).status).toBe(200);

    // dock-2 signs a plan over the same hashes (learnt from a sidecar or receipt) without the bytes.
    const thief = buildRecording(footage, { dockId: 'dock-2', segmentSize: 40_000, recordingId: 'THIEF-1' });
    const created = await server.request('/v1/recordings', { method: 'POST', headers: json, body: JSON.stringify(thief.manifest), dock: 'dock-2' });
    expect(created.status).toBe(201);
    expect(((await created.json()) as { missing: number[] }).missing).toEqual([0, 1, 2]);
    const complete = await server.request('/v1/recordings/THIEF-1/complete', { method: 'POST', dock: 'dock-2' });
    expect(complete.status).toBe(409);
    expect((await server.request('/v1/recordings/THIEF-1/content', { dock: 'dock-2' })).status).not.toBe(200);

    // Wrong bytes under a right hash are refused; the real bytes prove possession (stored once).
    const wrong = Buffer.alloc(40_000, 1);
    const bad = await server.request('/v1/recordings/THIEF-1/segments/0', { method: 'PUT', headers: segmentHeaders(wrong, thief.segments[0]!), body: wrong, dock: 'dock-2' });
    expect(bad.status).toBe(422);
    for (const [i, body] of thief.segments.entries()) {
      const put = await server.request(`/v1/recordings/THIEF-1/segments/${i}`, { method: 'PUT', headers: segmentHeaders(body), body, dock: 'dock-2' });
      expect(put.status).toBe(200); // already stored: nothing written twice
    }
    const done = await server.request('/v1/recordings/THIEF-1/complete', { method: 'POST', dock: 'dock-2' });
    expect(done.status).toBe(200);
    const content = Buffer.from(await (await server.request('/v1/recordings/THIEF-1/content', { dock: 'dock-2' })).arrayBuffer());
    expect(createHash('sha256').update(content).digest('hex')).toBe(thief.manifest.file.sha256);
  });

  it('a plan naming a held blob with another length earns no receipt', async () => {
    const data = testBytes(30_000, 7);
    const first = buildRecording(data, { dockId: 'dock-1', dockKeys: dock1Keys, segmentSize: 30_000, recordingId: 'LEN-A' });
    expect((await server.request('/v1/recordings', { method: 'POST', headers: json, body: JSON.stringify(first.manifest) })).status).toBe(201);
    expect((await server.request('/v1/recordings/LEN-A/segments/0', { method: 'PUT', headers: segmentHeaders(first.segments[0]!), body: first.segments[0]! })).status).toBe(201);
    // Same segment hash, declared 1 byte shorter, file size to match: the store's blob is longer.
    const lying = buildRecording(data, {
      dockId: 'dock-1', dockKeys: dock1Keys, segmentSize: 30_000, recordingId: 'LEN-B',
      mutate: (m) => { m.segments[0]!.length = 29_999; m.file.size = 29_999; },
    });
    const created = await server.request('/v1/recordings', { method: 'POST', headers: json, body: JSON.stringify(lying.manifest) });
    expect(created.status).toBe(201);
    const complete = await server.request('/v1/recordings/LEN-B/complete', { method: 'POST' });
    expect(complete.status).toBe(422);
    expect(((await complete.json()) as { code: string }).code).toBe('whole_digest_mismatch');
  });

  it('a manifest whose file SHA-256 is not that of its segments earns no receipt, and its intact blobs are not taken for damaged', async () => {
    const damage = async () => Number(/^bodycam_blob_damage_total (\d+)$/m.exec(await (await server.request('/metrics', { dock: null })).text())![1]);
    const before = await damage();
    const lying = buildRecording(testBytes(90_000, 8), {
      dockId: 'dock-1', dockKeys: dock1Keys, segmentSize: 30_000, recordingId: 'WHOLE-LIE',
      mutate: (m) => { m.file.sha256 = createHash('sha256').update('other bytes').digest('hex'); },
    });
    expect((await server.request('/v1/recordings', { method: 'POST', headers: json, body: JSON.stringify(lying.manifest) })).status).toBe(201);
    for (const [i, body] of lying.segments.entries()) {
      expect((await server.request(`/v1/recordings/WHOLE-LIE/segments/${i}`, { method: 'PUT', headers: segmentHeaders(body), body })).status).toBe(201);
    }
    const complete = await server.request('/v1/recordings/WHOLE-LIE/complete', { method: 'POST' });
    expect(complete.status).toBe(422);
    expect(((await complete.json()) as { code: string; detail: string })).toMatchObject({ code: 'whole_digest_mismatch', detail: expect.stringContaining('the assembled file hashes to') });
    const state = (await (await server.request('/v1/recordings/WHOLE-LIE')).json()) as { state: string; missing: number[] };
    expect([state.state, state.missing]).toEqual(['receiving', []]);
    expect(await damage()).toBe(before);
  });
});
