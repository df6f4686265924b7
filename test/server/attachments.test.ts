/**
 * Issue 11 item 4, server side: attachments of a manifest are checked (plain unique names, plans
 * that tile), uploaded with the digest rules of segments, required before a receipt, re-hashed at
 * complete, named by the receipt, proved on challenge and served byte-exact through the verified
 * read. A real server on 127.0.0.1 with hand-built, dock-signed manifests, as an attacker sends them.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { formatDigestHeader, sha256Hex } from '../../src/protocol/digest.js';
import type { AttachmentEntry, Receipt, SegmentPlanEntry } from '../../src/protocol/types.js';
import { generateSigningKeyPair } from '../../src/protocol/signing.js';
import { buildRecording, testBytes } from '../helpers/manifest.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

function attachmentOf(index: number, name: string, data: Buffer, segmentSize: number): AttachmentEntry {
  const segments: SegmentPlanEntry[] = [];
  for (let offset = 0, i = 0; offset < data.length; offset += segmentSize, i++) {
    const body = data.subarray(offset, Math.min(offset + segmentSize, data.length));
    segments.push({ index: i, offset, length: body.length, sha256: sha256Hex(body) });
  }
  return { index, name, size: data.length, sha256: sha256Hex(data), kind: 'other', segments };
}

describe('server: attachments', () => {
  let server: TestServer;
  // One dock key for every manifest: the server pins the first it sees for dock-1.
  const dockKeys = generateSigningKeyPair();
  beforeAll(async () => { server = await startTestServer(); });
  afterAll(async () => { await server.close(); });

  const post = (body: unknown) => server.request('/v1/recordings', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const put = (path: string, body: Buffer, digestOf: Buffer = body) => server.request(path, {
    method: 'PUT', headers: { 'content-type': 'application/octet-stream', 'content-digest': formatDigestHeader(sha256Hex(digestOf)) }, body,
  });

  it('refuses attachment names with a folder, duplicates, and plans that do not tile', async () => {
    const data = testBytes(1000, 3);
    const thumb = testBytes(500, 4);
    const cases: Array<[string, (a: AttachmentEntry[]) => void]> = [
      ['a/b.thm', (a) => { a[0]!.name = '../b.thm'; }],
      ['duplicate', (a) => { a.push({ ...a[0]!, index: 1 }); }],
      ['gap', (a) => { a[0]!.segments[1]!.offset += 1; }],
      ['short', (a) => { a[0]!.size += 1; }],
      ['index', (a) => { a[0]!.index = 3; }],
    ];
    for (const [what, spoil] of cases) {
      const { manifest } = buildRecording(data, { dockKeys, recordingId: `bad-${what.replace(/\W/g, '')}`, mutate: (m) => { m.attachments = [attachmentOf(0, 'b.thm', thumb, 200)]; spoil(m.attachments); } });
      const response = await post(manifest);
      expect({ what, status: response.status, code: ((await response.json()) as { code: string }).code }).toEqual({ what, status: 400, code: 'invalid_manifest' });
    }
  });

  it('uploads, requires, re-hashes, receipts, proves and serves attachments byte-exact', async () => {
    const data = testBytes(150_000, 5);
    const thumb = testBytes(70_000, 6);
    const gps = Buffer.from('<gpx/>');
    const { manifest, segments } = buildRecording(data, { dockKeys, recordingId: 'with-attachments', mutate: (m) => { m.attachments = [attachmentOf(0, 'CLIP.THM', thumb, 32 * 1024), attachmentOf(1, 'CLIP.gpx', gps, 32 * 1024)]; } });
    const created = await post(manifest);
    expect(created.status).toBe(201);
    const body = (await created.json()) as { missing: number[]; missingAttachments: Array<{ attachment: number; index: number }> };
    expect(body.missingAttachments).toEqual([{ attachment: 0, index: 0 }, { attachment: 0, index: 1 }, { attachment: 0, index: 2 }, { attachment: 1, index: 0 }]);
    for (const [i, segment] of segments.entries()) expect((await put(`/v1/recordings/with-attachments/segments/${i}`, segment)).status).toBe(201);
    // Not before every attachment segment is held.
    const early = await server.request('/v1/recordings/with-attachments/complete', { method: 'POST' });
    expect(early.status).toBe(409);
    expect(((await early.json()) as { missingAttachments: unknown[] }).missingAttachments).toHaveLength(4);
    // Wrong bytes under the right digest header, and the right header for another segment: refused.
    const code = async (r: Promise<Response>) => { const x = await r; return [x.status, ((await x.json()) as { code: string }).code]; };
    expect(await code(put('/v1/recordings/with-attachments/attachments/0/segments/0', Buffer.from(thumb.subarray(0, 32 * 1024)).fill(1), thumb.subarray(0, 32 * 1024)))).toEqual([422, 'digest_mismatch']);
    expect(await code(put('/v1/recordings/with-attachments/attachments/0/segments/1', thumb.subarray(0, 32 * 1024)))).toEqual([422, 'digest_mismatch']);
    // An attachment the held manifest does not list: its own permanent code (the dock quarantines), not a retried not_found.
    expect(await code(put('/v1/recordings/with-attachments/attachments/2/segments/0', gps))).toEqual([404, 'attachment_out_of_plan']);
    for (const s of manifest.attachments![0]!.segments) expect((await put(`/v1/recordings/with-attachments/attachments/0/segments/${s.index}`, thumb.subarray(s.offset, s.offset + s.length))).status).toBe(201);
    expect((await server.request('/v1/recordings/with-attachments/attachments/0')).status).toBe(409);
    expect((await put('/v1/recordings/with-attachments/attachments/1/segments/0', gps)).status).toBe(201);
    const done = await server.request('/v1/recordings/with-attachments/complete', { method: 'POST' });
    expect(done.status).toBe(200);
    const receipt = (await done.json()) as Receipt;
    expect(receipt.attachments).toEqual([{ name: 'CLIP.THM', size: thumb.length, sha256: sha256Hex(thumb) }, { name: 'CLIP.gpx', size: gps.length, sha256: sha256Hex(gps) }]);
    const got = await server.request('/v1/recordings/with-attachments/attachments/0');
    expect(got.status).toBe(200);
    expect(got.headers.get('repr-digest')).toBe(formatDigestHeader(sha256Hex(thumb)));
    expect(Buffer.from(await got.arrayBuffer()).equals(thumb)).toBe(true);
    // Proof of possession covers them: SHA-256(nonce ‖ the attachment's bytes).
    const nonce = createHash('sha256').update('nonce').digest('hex');
    const answer = await server.request('/v1/recordings/with-attachments/possession', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ nonce, segments: [0], attachments: true }) });
    const proved = (await answer.json()) as { attachments: Array<{ index: number; sha256: string }> };
    const expect1 = createHash('sha256').update(Buffer.from(nonce, 'hex')).update(thumb).digest('hex');
    expect(proved.attachments).toEqual([{ index: 0, sha256: expect1 }, { index: 1, sha256: createHash('sha256').update(Buffer.from(nonce, 'hex')).update(gps).digest('hex') }]);
    // Damage at rest is found on read: the download is cut, the blob marked missing, no answer from it.
    const blobs = join(server.dataDir, 'blobs');
    const victim = manifest.attachments![0]!.segments[1]!.sha256;
    const find = (dir: string): string | undefined => {
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) { const hit = find(path); if (hit) return hit; } else if (entry.name.startsWith(victim)) return path;
      }
      return undefined;
    };
    writeFileSync(find(blobs)!, Buffer.alloc(32 * 1024, 9));
    const damagedRead = await server.request('/v1/recordings/with-attachments/attachments/0').then(async (r) => Buffer.from(await r.arrayBuffer())).catch(() => undefined);
    expect(damagedRead?.equals(thumb)).not.toBe(true);
    const after = (await (await server.request('/v1/recordings/with-attachments')).json()) as { missingAttachments: unknown[] };
    expect(after.missingAttachments).toEqual([{ attachment: 0, index: 1 }]);
  });

  it('another attachment list under the same id is a conflict, never an overwrite', async () => {
    const data = testBytes(2000, 7);
    const first = buildRecording(data, { dockKeys, recordingId: 'conflicting', mutate: (m) => { m.attachments = [attachmentOf(0, 'a.xml', Buffer.from('<a/>'), 1024)]; } });
    expect((await post(first.manifest)).status).toBe(201);
    const second = buildRecording(data, { dockKeys, recordingId: 'conflicting', mutate: (m) => { m.attachments = [attachmentOf(0, 'a.xml', Buffer.from('<b/>'), 1024)]; } });
    expect((await post(second.manifest)).status).toBe(409);
  });
});
