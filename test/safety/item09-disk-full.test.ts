/**
 * Issue 9 item 9: disk full is a 507, and the server recovers by itself. The built CLI server runs
 * on a real 20 MiB tmpfs; the test fills it to the last page with a filler file, drives creates,
 * segment PUTs and completes through HTTP (every write must answer 507 with Retry-After, never
 * 500; reads keep working; no custody entry for a write that failed), frees the space and, without
 * a restart, sees uploads resume and complete with exactly one `receipt-issued` entry and one
 * receipt per recording, and `verify-log` ok. Needs root for the mount: it fails, never skips.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { formatDigestHeader, sha256Hex } from '../../src/protocol/digest.js';
import { generateSigningKeyPair, verifyObject } from '../../src/protocol/signing.js';
import type { Receipt } from '../../src/protocol/types.js';
import { runCli, spawnCli } from '../helpers/cli.js';
import { buildRecording, testBytes, type BuiltRecording } from '../helpers/manifest.js';
import { makeTempDir } from '../helpers/tmp.js';

const TOKEN = randomBytes(32).toString('base64url');
const auth = { authorization: `Bearer ${TOKEN}` };
const dockKeys = generateSigningKeyPair();
let tmp: ReturnType<typeof makeTempDir>;
let mountPoint: string;
let mounted = false;
let tokensFile: string;

interface Running { child: ChildProcess; url: string; exited: Promise<number | null>; stderr: () => string }

function startServer(dataDir: string): Promise<Running> {
  const child = spawnCli(['server', '--data-dir', dataDir, '--listen', '127.0.0.1:0', '--tokens', tokensFile]);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  let err = '';
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const match = /^listening (http:\/\/127\.0\.0\.1:\d+)\n/.exec(out);
      if (match) resolve({ child, url: match[1]!, exited, stderr: () => err });
    });
    child.on('exit', (code) => reject(new Error(`server exited ${code}: ${err.slice(-2000)}`)));
  });
}

/** Every answer of the full phase, to check that none was a 500. */
const answers: Array<{ what: string; status: number; retryAfter: string | null; code?: string }> = [];

async function call(url: string, what: string, path: string, init: RequestInit = {}): Promise<Response> {
  const response = await fetch(url + path, { ...init, headers: { ...auth, ...(init.headers as Record<string, string> | undefined) } });
  const clone = response.clone();
  const body = response.headers.get('content-type')?.includes('json') ? await clone.json().catch(() => undefined) as { code?: string } | undefined : undefined;
  answers.push({ what, status: response.status, retryAfter: response.headers.get('retry-after'), ...(body?.code ? { code: body.code } : {}) });
  return response;
}

const create = (url: string, rec: BuiltRecording) => call(url, `create ${rec.manifest.recordingId.slice(-6)}`, '/v1/recordings', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(rec.manifest) });
const put = (url: string, rec: BuiltRecording, i: number) => call(url, `put ${rec.manifest.recordingId.slice(-6)}/${i}`, `/v1/recordings/${rec.manifest.recordingId}/segments/${i}`, { method: 'PUT', headers: { 'content-type': 'application/octet-stream', 'content-digest': formatDigestHeader(rec.manifest.segments[i]!.sha256) }, body: rec.segments[i] });
const complete = (url: string, rec: BuiltRecording) => call(url, `complete ${rec.manifest.recordingId.slice(-6)}`, `/v1/recordings/${rec.manifest.recordingId}/complete`, { method: 'POST' });

/** Fill the filesystem to its last page: big writes, then page-sized ones, until ENOSPC. */
function fill(path: string): number {
  const fd = openSync(path, 'w');
  let written = 0;
  try {
    for (const size of [1 << 20, 64 << 10, 4096, 512, 1]) {
      const chunk = Buffer.alloc(size, 0x5a);
      for (;;) {
        try {
          written += writeSync(fd, chunk);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
          break;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
  return written;
}

interface Entry { seq: number; event: string; recordingId: string; dockId: string }
const entries = (dataDir: string) => readFileSync(join(dataDir, 'custody.log'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Entry);

beforeAll(() => {
  tmp = makeTempDir('bodycam-item09-');
  tokensFile = join(tmp.path, 'tokens.json');
  writeFileSync(tokensFile, JSON.stringify({ 'dock-1': TOKEN }), { mode: 0o600 });
  mountPoint = join(tmp.path, 'small-disk');
  mkdirSync(mountPoint);
  // A real filesystem that fills up. Root is needed; without it this test fails, it does not skip.
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=20m,mode=0700', 'tmpfs', mountPoint]);
  mounted = true;
});
afterAll(() => {
  if (mounted) {
    try { execFileSync('umount', [mountPoint]); } catch { execFileSync('umount', ['-l', mountPoint]); }
  }
  tmp.cleanup();
});

describe('item 9: a full data dir', () => {
  it('answers 507 with Retry-After (never 500), keeps serving reads, writes no entry for a failed write, and recovers without a restart: one receipt per recording', async () => {
    const dataDir = join(mountPoint, 'data');
    const server = await startServer(dataDir);
    const url = server.url;
    const rec = (seed: number) => buildRecording(testBytes(300_000, seed), { segmentSize: 100_000, dockKeys });
    const done = rec(901); // complete before the disk fills
    const uploaded = rec(902); // every segment stored, complete only once the disk is full
    const half = rec(903); // created, one segment stored, the rest while full
    const fresh = [rec(904), rec(905)]; // created only while full
    let pads = 0;
    try {
      expect((await create(url, done)).status).toBe(201);
      for (let i = 0; i < 3; i++) expect((await put(url, done, i)).status).toBe(201);
      const first = await complete(url, done);
      expect(first.status).toBe(200);
      const doneReceipt = (await first.json()) as Receipt;
      expect((await create(url, uploaded)).status).toBe(201);
      for (let i = 0; i < 3; i++) expect((await put(url, uploaded, i)).status).toBe(201);
      expect((await create(url, half)).status).toBe(201);
      expect((await put(url, half, 0)).status).toBe(201);
      // Arrange the hard case: the log's last page (tmpfs allocates by page) keeps room for one
      // receipt-issued entry, so that entry is written while what follows it (its checkpoint, the
      // head file, the recording's update) finds the disk full.
      const logPath = join(dataDir, 'custody.log');
      while (statSync(logPath).size % 4096 > 2048) {
        const pad = buildRecording(testBytes(1000, 1000 + pads), { segmentSize: 1000, dockKeys, recordingId: `pad-${pads}-${'x'.repeat(40)}` });
        expect((await create(url, pad)).status).toBe(201);
        pads++;
      }
      const before = entries(dataDir);

      const filler = join(mountPoint, 'filler');
      const filled = fill(filler);
      expect(filled).toBeGreaterThan(10 << 20);
      answers.length = 0;

      // Writes while full: each must be 507 + Retry-After (or succeed, if it fitted in a page already held).
      for (const r of fresh) await create(url, r);
      for (let i = 1; i < 3; i++) await put(url, half, i);
      const fullComplete = await complete(url, uploaded);
      await complete(url, uploaded); // a dock retrying at once
      await Promise.all([complete(url, uploaded), put(url, half, 2), create(url, fresh[0]!)]);

      const writes = [...answers];
      expect(writes.filter((a) => a.status >= 500 && a.status !== 507)).toEqual([]);
      const refused = writes.filter((a) => a.status === 507);
      expect(refused.length).toBeGreaterThanOrEqual(5);
      for (const a of refused) {
        expect(a.code).toBe('insufficient_storage');
        expect(a.retryAfter).toMatch(/^[1-9]\d*$/);
      }
      expect(fullComplete.status).toBe(507);
      // Reads keep working.
      const content = await call(url, 'read content', `/v1/recordings/${done.manifest.recordingId}/content`);
      expect(content.status).toBe(200);
      expect(sha256Hex(Buffer.from(await content.arrayBuffer()))).toBe(done.manifest.file.sha256);
      expect((await call(url, 'read list', '/v1/recordings')).status).toBe(200);
      const again = await complete(url, done); // already complete: a read of the stored receipt
      expect(again.status).toBe(200);
      expect(await again.json()).toEqual(doneReceipt);
      expect((await call(url, 'read keys', '/v1/keys')).status).toBe(200);
      // No entry for what failed: nothing about the fresh recordings, no segment of `half` beyond 0.
      const whileFull = entries(dataDir).slice(before.length);
      const freshIds = new Set(fresh.map((r) => r.manifest.recordingId));
      expect(whileFull.filter((e) => freshIds.has(e.recordingId))).toEqual([]);
      expect(whileFull.filter((e) => e.event === 'segment-stored')).toEqual([]);
      // A receipt-issued entry may have fitted in the log's last page while its checkpoint or the
      // recording's update did not: then it is the receipt the retry must answer, not a second one.
      const pendingReceipt = whileFull.filter((e) => e.event === 'receipt-issued');
      expect(pendingReceipt.map((e) => e.recordingId)).toEqual([uploaded.manifest.recordingId]);

      // Space returns: no restart.
      rmSync(filler);
      const recovered = await complete(url, uploaded);
      expect(recovered.status).toBe(200);
      const uploadedReceipt = (await recovered.json()) as Receipt;
      expect(uploadedReceipt.custodySeq).toBe(pendingReceipt[0]!.seq); // the entry written while full is its receipt
      for (let i = 1; i < 3; i++) expect([200, 201]).toContain((await put(url, half, i)).status);
      const halfReceipt = (await (await complete(url, half)).json()) as Receipt;
      const freshReceipts: Receipt[] = [];
      for (const r of fresh) {
        expect([200, 201]).toContain((await create(url, r)).status);
        for (let i = 0; i < 3; i++) expect([200, 201]).toContain((await put(url, r, i)).status);
        const answer = await complete(url, r);
        expect(answer.status).toBe(200);
        freshReceipts.push((await answer.json()) as Receipt);
      }
      // Completing again answers the same receipts.
      expect(await (await complete(url, uploaded)).json()).toEqual(uploadedReceipt);
      const keys = (await (await fetch(`${url}/v1/keys`)).json()) as { publicKeyPem: string };
      for (const r of [doneReceipt, uploadedReceipt, halfReceipt, ...freshReceipts]) expect(verifyObject(r as unknown as Record<string, unknown>, keys.publicKeyPem)).toBe(true);
      const content2 = await fetch(`${url}/v1/recordings/${fresh[1]!.manifest.recordingId}/content`, { headers: auth });
      expect(sha256Hex(Buffer.from(await content2.arrayBuffer()))).toBe(fresh[1]!.manifest.file.sha256);
      expect(server.stderr()).not.toMatch(/"status":500/);
    } finally {
      server.child.kill('SIGTERM');
      expect(await server.exited).toBe(0);
    }
    const all = entries(dataDir);
    const issued = all.filter((e) => e.event === 'receipt-issued');
    expect(issued.map((e) => e.recordingId).sort()).toEqual([done, uploaded, half, ...fresh].map((r) => r.manifest.recordingId).sort());
    const created = all.filter((e) => e.event === 'recording-created');
    expect(created).toHaveLength(5 + pads);
    const verify = await runCli(['server', 'verify-log', '--data-dir', dataDir]);
    expect(verify.stdout).toMatch(/^custody log ok: \d+ entries, \d+ checkpoints .*, 5 stored receipts match/);
    expect(verify.code).toBe(0);
  }, 120_000);
});
