/**
 * Variants found by an attacker's review of issue 9 (server side): a recording id of the full
 * 128 characters works end to end; a stored record edited at rest (two segment hashes swapped)
 * is never served as a complete answer of other bytes, nor used for a proof of possession.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { cpSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { runCli } from '../helpers/cli.js';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { generateSigningKeyPair } from '../../src/protocol/signing.js';
import { buildRecording, testBytes, type BuiltRecording } from '../helpers/manifest.js';
import { segmentHeaders, startTestServer, type TestServer } from '../helpers/server.js';
import { makeTempDir } from '../helpers/tmp.js';

describe('server follow-ups', () => {
  let server: TestServer;
  const dockKeys = generateSigningKeyPair();
  const tmp = makeTempDir('bodycam-atk-srv-');
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

  it('a 128-character recording id is created, filled, completed and read back', async () => {
    const data = testBytes(150_000, 7);
    const id = `S${'x.'.repeat(40)}-${'a'.repeat(32)}-${'b'.repeat(13)}`;
    expect(id).toHaveLength(128);
    await upload(buildRecording(data, { recordingId: id, dockKeys }));
    const content = await server.request(`/v1/recordings/${id}/content`);
    expect(content.status).toBe(200);
    expect(Buffer.from(await content.arrayBuffer()).equals(data)).toBe(true);
  });

  it('a record with two segment hashes swapped at rest is refused, not served as other bytes', async () => {
    const data = Buffer.concat([testBytes(65_536, 1), testBytes(65_536, 2), testBytes(65_536, 3), testBytes(65_536, 4)]);
    const rec = buildRecording(data, { recordingId: 'SWAP-0001', dockKeys });
    await upload(rec);
    const path = join(server.dataDir, 'recordings', 'dock-1', 'SWAP-0001.json');
    const stored = JSON.parse(readFileSync(path, 'utf8')) as { manifest: { segments: Array<{ sha256: string }> } };
    const [a, b] = [stored.manifest.segments[1]!.sha256, stored.manifest.segments[2]!.sha256];
    stored.manifest.segments[1]!.sha256 = b;
    stored.manifest.segments[2]!.sha256 = a;
    writeFileSync(path, JSON.stringify(stored));
    // The store may cache records: a fresh server on the same data dir reads the edited file.
    await server.close().catch(() => {});
    server = await startTestServer({ keepDir: tmp.path });
    const content = await server.request('/v1/recordings/SWAP-0001/content');
    expect(content.status).toBe(500);
    expect(((await content.json()) as { code: string }).code).toBe('record_damaged');
    const pop = await server.request('/v1/recordings/SWAP-0001/possession', {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ nonce: randomBytes(32).toString('hex'), segments: [1, 2] }),
    });
    expect(pop.status).toBe(500);
    expect(((await pop.json()) as { code: string }).code).toBe('record_damaged');
  });

  it('a log cut short with both anchor files deleted is refused at start and by verify-log', async () => {
    const data = testBytes(100_000, 9);
    await upload(buildRecording(data, { recordingId: 'CUT-0001', dockKeys }));
    const copy = join(tmp.path, '..', `${tmp.path.split('/').pop()}-cut`);
    await server.close().catch(() => {});
    try {
      cpSync(tmp.path, copy, { recursive: true });
      const log = join(copy, 'custody.log');
      const lines = readFileSync(log, 'utf8').split('\n').filter(Boolean);
      const receiptLine = lines.findIndex((l) => l.includes('"receipt-issued"'));
      // Keep the receipt entries, cut what came after the last of them (here: nothing more, so cut the last line only if it is not a receipt).
      const kept = lines.slice(0, Math.max(receiptLine + 1, lines.length - 1));
      truncateSync(log, Buffer.byteLength(kept.join('\n') + '\n'));
      rmSync(join(copy, 'custody-checkpoints.jsonl'), { force: true });
      rmSync(join(copy, 'custody-head.json'), { force: true });
      await expect(startTestServer({ keepDir: copy })).rejects.toMatchObject({ code: 'E_CUSTODY_ANCHOR' });
      const verify = await runCli(['server', 'verify-log', '--data-dir', copy]);
      expect(verify.code).not.toBe(0);
      expect(verify.stdout + verify.stderr).toMatch(/no checkpoint at all/);
    } finally {
      rmSync(copy, { recursive: true, force: true });
      server = await startTestServer({ keepDir: tmp.path });
    }
  });
});
