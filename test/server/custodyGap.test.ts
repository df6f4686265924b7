/**
 * The custody log stays complete when a crash falls between a store write and its custody entry:
 * the server closes the gap when the item is next touched (repeated create, PUT of held bytes,
 * complete), once, and never issues a receipt before every blob of the recording has its entry.
 * The crash is reproduced exactly by cutting the log back to before the entries (the store keeps
 * the recording and the blobs); test/reliability/knownIssues.test.ts does it with real SIGKILLs.
 */
import { describe, expect, it } from '@jest/globals';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateSigningKeyPair } from '../../src/protocol/signing.js';
import type { Receipt } from '../../src/protocol/types.js';
import { verifyCustodyLog } from '../../src/server/index.js';
import { buildRecording, testBytes } from '../helpers/manifest.js';
import { segmentHeaders, startTestServer, type TestServer } from '../helpers/server.js';
import { makeTempDir } from '../helpers/tmp.js';

interface Entry { seq: number; event: string; recordingId: string; sha256: string; reconciled?: boolean; alreadyHeld?: boolean }
const entriesIn = (dataDir: string) => readFileSync(join(dataDir, 'custody.log'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Entry);

describe('custody gaps left by a crash', () => {
  it('are closed on the next create, PUT and complete, each once, and before the receipt', async () => {
    const dir = makeTempDir('bodycam-custody-gap-');
    const rec = buildRecording(testBytes(150_000, 7), { dockKeys: generateSigningKeyPair(), segmentSize: 50_000 });
    const id = rec.manifest.recordingId;
    const post = (server: TestServer) => server.request('/v1/recordings', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(rec.manifest) });
    const put = (server: TestServer, index: number) => server.request(`/v1/recordings/${id}/segments/${index}`, { method: 'PUT', headers: segmentHeaders(rec.segments[index]!), body: rec.segments[index] });
    try {
      const first = await startTestServer({ keepDir: dir.path });
      expect((await post(first)).status).toBe(201);
      for (let i = 0; i < 3; i++) expect((await put(first, i)).status).toBe(201);
      await first.close();
      expect(entriesIn(dir.path).map((e) => e.event)).toEqual(['recording-created', 'segment-stored', 'segment-stored', 'segment-stored']);
      // The crash: the recording file and the three blobs were stored, none of their entries was appended.
      // A SIGKILL leaves no checkpoint either (they follow receipts, every 1000 entries or 60 s, and a
      // clean shutdown); the first server's shutdown wrote one, so it goes too.
      writeFileSync(join(dir.path, 'custody.log'), '');
      for (const anchor of ['custody-checkpoints.jsonl', 'custody-head.json']) rmSync(join(dir.path, anchor));

      const second = await startTestServer({ keepDir: dir.path });
      try {
        expect((await post(second)).status).toBe(200);
        expect(entriesIn(dir.path).map((e) => [e.event, e.reconciled])).toEqual([['recording-created', true]]);
        const again = await put(second, 1);
        expect(again.status).toBe(200);
        expect(((await again.json()) as { stored: boolean }).stored).toBe(false);
        expect(entriesIn(dir.path).map((e) => [e.event, e.sha256])).toEqual([['recording-created', rec.manifest.file.sha256], ['segment-stored', rec.manifest.segments[1]!.sha256]]);

        const completed = await second.request(`/v1/recordings/${id}/complete`, { method: 'POST' });
        expect(completed.status).toBe(200);
        const receipt = (await completed.json()) as Receipt;
        const entries = entriesIn(dir.path);
        expect(entries.map((e) => e.event)).toEqual(['recording-created', 'segment-stored', 'segment-stored', 'segment-stored', 'receipt-issued']);
        expect(new Set(entries.filter((e) => e.event === 'segment-stored').map((e) => e.sha256))).toEqual(new Set(rec.manifest.segments.map((s) => s.sha256)));
        // Closed late: by the receipt's check (reconciled), or by the PUT of bytes the server held (alreadyHeld).
        expect(entries.filter((e) => e.event !== 'receipt-issued').map((e) => e.reconciled === true || e.alreadyHeld === true)).toEqual([true, true, true, true]);
        expect(entries.find((e) => e.event === 'segment-stored' && e.sha256 === rec.manifest.segments[1]!.sha256)?.alreadyHeld).toBe(true);
        expect(receipt.custodySeq).toBe(entries[4]!.seq);

        // Touching them again adds nothing: each subject is mentioned once.
        expect((await post(second)).status).toBe(200);
        expect((await put(second, 0)).status).toBe(200);
        expect((await second.request(`/v1/recordings/${id}/complete`, { method: 'POST' })).status).toBe(200);
        expect(entriesIn(dir.path)).toHaveLength(5);
      } finally {
        await second.close();
      }
      expect(await verifyCustodyLog(dir.path)).toEqual({ ok: true, entries: 5 });
    } finally {
      dir.cleanup();
    }
  });
});
