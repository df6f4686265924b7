/**
 * Issue 9 item 7: bytes at rest are verified. Through the real built CLI (`npm run build` first):
 * `bodycam server` on 127.0.0.1 port 0, `bodycam server scrub`, and `bodycam dock --once`.
 *
 * A stored blob is damaged behind the server's back (a flipped byte, a truncation, appended bytes,
 * another blob's bytes, deletion, a symbolic link). Then: GET content never completes a response
 * with wrong bytes (whole file or range; a range in an intact blob still serves); the damage is
 * logged and counted in /metrics; `scrub` reports it and exits 3; the recording lists the segment
 * missing; a verified re-upload (a direct PUT, or the real dock re-sending after `complete` found
 * the damage) repairs it and the content reads back byte-exact. Every file under the data dir is
 * 0600 and every folder 0700, even under umask 000 and for a data dir made with looser modes.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import { appendFileSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, chmodSync, truncateSync, writeFileSync } from 'node:fs';
import { request as httpRequest, createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { join, relative } from 'node:path';
import { formatDigestHeader, sha256Hex } from '../../src/protocol/digest.js';
import type { CreateRecordingResponse } from '../../src/protocol/types.js';
import { generateSigningKeyPair } from '../../src/protocol/signing.js';
import { recordCamera, dockCamera } from '../../src/camera/index.js';
import { scrubDataDir } from '../../src/server/scrub.js';
import { runCli } from '../helpers/cli.js';
import { buildRecording, testBytes, type BuiltRecording } from '../helpers/manifest.js';
import { makeTempDir } from '../helpers/tmp.js';
import { ServerProcess, TOKENS } from '../helpers/reliability.js';

const sha = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

interface RawResponse { status: number; headers: IncomingHttpHeaders; body: Buffer; complete: boolean }

/** GET as a plain HTTP client sees it: status, the bytes that arrived, and whether the body completed. */
function rawGet(url: string, headers: Record<string, string>, method = 'GET'): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      let done = false;
      const finish = () => { if (!done) { done = true; resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), complete: res.complete }); } };
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', () => {});
      res.on('end', finish);
      res.on('close', finish);
    });
    req.on('error', reject);
    req.end();
  });
}

describe('item 7: bytes at rest are verified', () => {
  const tmp = makeTempDir('bodycam-item07-');
  const dataDir = join(tmp.path, 'server');
  const server = new ServerProcess(dataDir);
  const dockKeys = generateSigningKeyPair();
  const auth = { authorization: `Bearer ${TOKENS['dock-1']}` };

  // Three segments: 1.5 MB, 1.5 MB, 1 MB (a blob is read in 1 MiB chunks, so damage late in a
  // segment is found after bytes of it went out).
  const fileA = testBytes(4_000_000, 71);
  const recA = buildRecording(fileA, { dockKeys, recordingId: 'CAM-item07-A', segmentSize: 1_500_000 });
  const blobOf = (rec: BuiltRecording, i: number) => { const s = rec.manifest.segments[i]!.sha256; return join(dataDir, 'blobs', s.slice(0, 2), s); };

  beforeAll(async () => {
    // A data dir left with loose modes (an older version, a copy): the server tightens it at startup.
    chmodSync(dataDir, 0o755);
    mkdirSync(join(dataDir, 'blobs', 'ab'), { recursive: true, mode: 0o755 });
    chmodSync(join(dataDir, 'blobs'), 0o755);
    chmodSync(join(dataDir, 'blobs', 'ab'), 0o755);
    writeFileSync(join(dataDir, 'store-usage.json'), JSON.stringify({ bytes: 0 }), { mode: 0o644 });
    // And a umask that would leave everything world-readable: the modes must not depend on it.
    let old: number | undefined;
    try { old = process.umask(0o000); } catch { /* worker thread: no umask */ }
    try {
      await server.start();
    } finally {
      if (old !== undefined) process.umask(old);
    }
    await ingest(recA);
  });
  afterAll(async () => { await server.stop(); tmp.cleanup(); });

  const api = (path: string, init: RequestInit = {}) => server.request(path, init);
  const create = async (rec: BuiltRecording) => {
    const r = await api('/v1/recordings', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(rec.manifest) });
    expect([200, 201]).toContain(r.status);
    return await r.json() as CreateRecordingResponse;
  };
  const put = async (rec: BuiltRecording, i: number) => {
    const r = await api(`/v1/recordings/${rec.manifest.recordingId}/segments/${i}`, {
      method: 'PUT', body: rec.segments[i]!, headers: { 'content-type': 'application/octet-stream', 'content-digest': formatDigestHeader(sha256Hex(rec.segments[i]!)) },
    });
    return { status: r.status, body: await r.json() as { stored?: boolean; code?: string } };
  };
  const complete = async (id: string) => {
    const r = await api(`/v1/recordings/${id}/complete`, { method: 'POST' });
    return { status: r.status, body: await r.json() as { code?: string; missing?: number[]; sha256?: string } };
  };
  async function ingest(rec: BuiltRecording): Promise<void> {
    const created = await create(rec);
    for (const i of created.missing) expect((await put(rec, i)).status).toBe(201);
    expect((await complete(rec.manifest.recordingId)).status).toBe(200);
  }
  const content = (id: string, range?: string, method = 'GET') => rawGet(`${server.url}/v1/recordings/${id}/content`, { ...auth, ...(range ? { range } : {}) }, method);
  const missingOf = async (id: string) => ((await (await api(`/v1/recordings/${id}`)).json()) as { missing: number[] }).missing;
  const damageMetric = async () => Number(/^bodycam_blob_damage_total (\d+)$/m.exec(await (await fetch(`${server.url}/metrics`)).text())![1]);
  const scrub = async () => {
    const result = await runCli(['server', 'scrub', '--data-dir', dataDir, '--json'], { timeoutMs: 60_000 });
    return { code: result.code, report: result.stdout.trim() ? JSON.parse(result.stdout) as { ok: boolean; damaged: { sha256: string; usedBy: { recordingId: string; index: number; complete: boolean }[] }[]; missing: { recordingId: string; index: number }[] } : undefined, stderr: result.stderr };
  };
  const flip = (path: string, offset: number) => { const b = readFileSync(path); b[offset] = b[offset]! ^ 0x40; writeFileSync(path, b); };
  /** The bytes a server without verification would have served after the damage. */
  const wrongWhole = (i: number, damagedSegment: Buffer) => Buffer.concat(recA.segments.map((s, j) => (j === i ? damagedSegment : s)));
  /** A response that completed with a success status: must only ever carry the right bytes. */
  const expectNeverWrong = (res: RawResponse, wrong: Buffer) => {
    expect(sha(res.body)).not.toBe(sha(wrong));
    if (res.status >= 200 && res.status < 300) {
      // A success status may only ever be a body cut short (the client sees it incomplete).
      if (res.complete) throw new Error(`a complete ${res.status} was served after damage (${res.body.length} bytes)`);
      expect(res.body.length).toBeLessThan(Number(res.headers['content-length']));
    } else {
      expect(res.status).toBe(500);
      expect(JSON.parse(res.body.toString()).code).toBe('blob_damaged');
    }
  };
  const repair = async (rec: BuiltRecording, i: number) => {
    const again = await put(rec, i);
    expect(again).toMatchObject({ status: 201, body: { stored: true } }); // the body was read and stored
    expect(await missingOf(rec.manifest.recordingId)).not.toContain(i);
  };

  function walkModes(): string[] {
    const wrong: string[] = [];
    const walk = (path: string) => {
      const info = lstatSync(path);
      const rel = relative(dataDir, path) || '.';
      if (info.isSymbolicLink()) {
        if (!rel.startsWith('damaged/')) wrong.push(`${rel}: a symbolic link outside damaged/`);
        return;
      }
      const want = info.isDirectory() ? 0o700 : 0o600;
      if ((info.mode & 0o777) !== want) wrong.push(`${rel}: ${(info.mode & 0o777).toString(8)}`);
      if (info.isDirectory()) for (const name of readdirSync(path)) walk(join(path, name));
    };
    walk(dataDir);
    return wrong;
  }

  it('an intact recording reads back byte-exact; every file under the data dir is 0600 and every folder 0700 (umask 000, loose dir tightened)', async () => {
    const whole = await content(recA.manifest.recordingId);
    expect([whole.status, whole.complete, sha(whole.body)]).toEqual([200, true, sha(fileA)]);
    const names = readdirSync(dataDir);
    expect(names).toEqual(expect.arrayContaining(['blobs', 'recordings', 'tmp', 'server-key.pem', 'custody.log', 'possession.sqlite']));
    expect(walkModes()).toEqual([]);
  });

  it('a range inside a damaged blob is never a complete 206 with wrong bytes; ranges in intact blobs of the same recording still serve', async () => {
    const id = recA.manifest.recordingId;
    const before = await damageMetric();
    const path = blobOf(recA, 1);
    flip(path, 700_000); // segment 1, file bytes 1_500_000..2_999_999
    const damaged = readFileSync(path);

    const inside = await content(id, 'bytes=2200000-2200099'); // the flipped byte itself
    expect(inside.body.equals(damaged.subarray(700_000, 700_100))).toBe(false);
    expectNeverWrong(inside, damaged.subarray(700_000, 700_100));
    expect(inside.status).toBe(500); // nothing had gone out yet: an honest error instead of bytes
    expect(JSON.parse(inside.body.toString()).code).toBe('blob_damaged');
    expect([inside.headers['content-range'], inside.headers['repr-digest']]).toEqual([undefined, undefined]); // not the content's headers
    expect(await damageMetric()).toBe(before + 1);
    expect(await missingOf(id)).toEqual([1]); // marked: the dock is told to send it again

    for (const [range, from, to] of [['bytes=100-199', 100, 200], ['bytes=3000000-3999999', 3_000_000, 4_000_000], ['bytes=-10', 3_999_990, 4_000_000]] as const) {
      const ok = await content(id, range);
      expect([ok.status, ok.complete]).toEqual([206, true]);
      expect(ok.body.equals(fileA.subarray(from, to))).toBe(true);
    }
    // A range in segment 1 now (blob gone from the store) and the whole file: never complete.
    expectNeverWrong(await content(id, 'bytes=1500000-1500009'), damaged.subarray(0, 10));
    expectNeverWrong(await content(id), wrongWhole(1, damaged));
    const head = await content(id, undefined, 'HEAD');
    expect([head.status, head.body.length]).toEqual([200, 0]); // HEAD sends no bytes at all

    await repair(recA, 1);
    const after = await content(id);
    expect([after.status, after.complete, sha(after.body)]).toEqual([200, true, sha(fileA)]);
    const range = await content(id, 'bytes=2200000-2200099');
    expect([range.status, range.body.equals(fileA.subarray(2_200_000, 2_200_100))]).toEqual([206, true]);
    // The damaged file is kept for the operator in damaged/, and still nothing is readable by others.
    expect(readdirSync(join(dataDir, 'damaged')).some((n) => n.startsWith(recA.manifest.segments[1]!.sha256))).toBe(true);
    expect(walkModes()).toEqual([]);
  });

  it('one flipped byte: the whole-file GET is cut short, scrub reports it (exit 3) while the server runs, a PUT repairs it', async () => {
    const id = recA.manifest.recordingId;
    const path = blobOf(recA, 1);
    flip(path, 1_400_000); // in the held-back last chunk of segment 1: 2.5 MB went out before it
    const damaged = readFileSync(path);
    const res = await content(id);
    expect(res.status).toBe(200); // headers and segment 0 had gone out; the body is cut short
    expect(res.complete).toBe(false);
    expect(res.body.length).toBeLessThan(fileA.length);
    expect(res.body.length).toBeGreaterThanOrEqual(1_500_000);
    expectNeverWrong(res, wrongWhole(1, damaged));
    expect(res.body.equals(fileA.subarray(0, res.body.length))).toBe(true); // what did arrive is right

    // The read marked it; scrub reports the complete recording's missing blob until it is re-sent.
    const first = await scrub();
    expect(first.code).toBe(3);
    expect(first.report!.missing).toEqual([expect.objectContaining({ recordingId: id, index: 1 })]);
    await repair(recA, 1);
    expect((await scrub()).code).toBe(0);

    // Damage no read has found yet: scrub finds it, names recording and segment, and marks it.
    flip(blobOf(recA, 2), 5);
    const found = await scrub();
    expect(found.code).toBe(3);
    expect(found.report!.damaged).toEqual([{ sha256: recA.manifest.segments[2]!.sha256, reason: expect.any(String), usedBy: [{ dockId: 'dock-1', recordingId: id, index: 2, complete: true }] }]);
    expect(await missingOf(id)).toEqual([2]);
    const human = await runCli(['server', 'scrub', '--data-dir', dataDir], { timeoutMs: 60_000 });
    expect(human.code).toBe(3);
    expect(human.stdout).toMatch(new RegExp(`MISSING blob ${recA.manifest.segments[2]!.sha256} of complete recording dock-1/${id} segment 2`));
    await repair(recA, 2);
    const clean = await runCli(['server', 'scrub', '--data-dir', dataDir], { timeoutMs: 60_000 });
    expect(clean.code).toBe(0);
    expect(clean.stdout).toMatch(/^scrub ok: \d+ blobs/m);
    expect(sha((await content(id)).body)).toBe(sha(fileA));
  });

  it('attacks on a blob (truncate, append, another blob\'s bytes, delete, symbolic links): never served, scrub finds it, a PUT repairs', async () => {
    const id = recA.manifest.recordingId;
    const path = blobOf(recA, 1);
    const outside = join(tmp.path, 'outside.bin');
    const attacks: [string, () => Buffer][] = [
      ['truncate', () => { truncateSync(path, 1_499_999); return readFileSync(path); }],
      ['append', () => { appendFileSync(path, Buffer.from([0])); return readFileSync(path); }],
      ['another blob', () => { writeFileSync(path, recA.segments[0]!); return recA.segments[0]!; }],
      ['delete', () => { rmSync(path); return Buffer.alloc(0); }],
      ['symlink to other bytes', () => { rmSync(path); writeFileSync(outside, recA.segments[2]!); symlinkSync(outside, path); return recA.segments[2]!; }],
      ['symlink to the right bytes', () => { rmSync(path); writeFileSync(outside, recA.segments[1]!); symlinkSync(outside, path); return Buffer.alloc(0); }],
    ];
    for (const [name, attack] of attacks) {
      const damaged = attack();
      const res = await content(id);
      try {
        expectNeverWrong(res, wrongWhole(1, damaged));
        // (Bytes of the damaged blob before its held-back last chunk may have gone out; never all.)
        const range = await content(id, 'bytes=1600000-1600099');
        expectNeverWrong(range, damaged.subarray(100_000, 100_100));
        expect((await content(id, 'bytes=0-99')).body.equals(fileA.subarray(0, 100))).toBe(true);
        // (scrub in-process here to keep the file fast; the CLI's exit codes are proved above)
        expect((await scrubDataDir(dataDir)).ok).toBe(false);
        expect(await missingOf(id)).toEqual([1]);
        await repair(recA, 1);
        expect(lstatSync(path).isFile()).toBe(true);
        const back = await content(id);
        expect([back.status, back.complete, sha(back.body)]).toEqual([200, true, sha(fileA)]);
      } catch (error) {
        throw new Error(`attack "${name}": ${(error as Error).message}`);
      }
    }
    expect((await scrub()).code).toBe(0);
  });

  it('damage found by complete is 409 incomplete with missing, never a receipt; the re-sent bytes earn it', async () => {
    const recB = buildRecording(testBytes(2_000_000, 72), { dockKeys, recordingId: 'CAM-item07-B', segmentSize: 1_000_000 });
    const created = await create(recB);
    for (const i of created.missing) expect((await put(recB, i)).status).toBe(201);
    flip(blobOf(recB, 0), 999_999);
    truncateSync(blobOf(recB, 1), 10);
    const refused = await complete(recB.manifest.recordingId);
    expect(refused.status).toBe(409);
    expect(refused.body).toMatchObject({ code: 'incomplete', missing: [0, 1] });
    expect((await content(recB.manifest.recordingId)).status).toBe(409); // no receipt, no content
    for (const i of refused.body.missing!) await repair(recB, i);
    const done = await complete(recB.manifest.recordingId);
    expect([done.status, done.body.sha256]).toEqual([200, recB.manifest.file.sha256]);
    expect(sha((await content(recB.manifest.recordingId)).body)).toBe(recB.manifest.file.sha256);
  });

  it('the real dock repairs: `bodycam dock --once` uploads, its complete finds a damaged blob (409), it re-sends and gets its receipt', async () => {
    const bays = join(tmp.path, 'bays');
    mkdirSync(bays, { recursive: true });
    await recordCamera({ storage: join(tmp.path, 'cam'), count: 1, durationSeconds: 4, seed: 'item07', width: 320, height: 240, fps: 15 });
    await dockCamera({ storage: join(tmp.path, 'cam'), bays, bay: 'bay1' });
    const tokenFile = join(tmp.path, 'dock-token');
    writeFileSync(tokenFile, TOKENS['dock-2']! + '\n', { mode: 0o600 }); // dock-1's key is pinned by the direct uploads above
    // Between the dock and the server: just before the dock's first complete, flip a byte in
    // every blob the dock just stored (the damage a disk could do between upload and receipt).
    let damagedBlobs = 0;
    const proxy: Server = createServer((req, res) => {
      const forward = () => {
        const upstream = httpRequest(`${server.url}${req.url}`, { method: req.method, headers: req.headers }, (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
        });
        upstream.on('error', () => res.destroy());
        req.pipe(upstream);
      };
      if (req.method === 'POST' && /\/complete$/.test(req.url ?? '') && damagedBlobs === 0) {
        const id = decodeURIComponent(/\/v1\/recordings\/([^/]+)\/complete$/.exec(req.url!)![1]!);
        const record = JSON.parse(readFileSync(join(dataDir, 'recordings', 'dock-2', `${id}.json`), 'utf8')) as { manifest: { segments: { sha256: string }[] } };
        for (const s of new Set(record.manifest.segments.map((x) => x.sha256))) {
          const p = join(dataDir, 'blobs', s.slice(0, 2), s);
          flip(p, Math.floor(lstatSync(p).size / 2));
          damagedBlobs++;
        }
      }
      forward();
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', () => r()));
    const port = (proxy.address() as { port: number }).port;
    const before = await damageMetric();
    try {
      const run = await runCli(['dock', '--once', '--bays', bays, '--endpoint', `http://127.0.0.1:${port}`, '--token-file', tokenFile,
        '--state-dir', join(tmp.path, 'dock-state'), '--dock-id', 'dock-2', '--status-port', '0', '--settle', '0.5s', '--max-backoff', '1s'],
      { env: { ...process.env, BODYCAM_LOG_LEVEL: 'warn' }, timeoutMs: 90_000 });
      if (run.code !== 0) throw new Error(`dock --once exited ${run.code}: ${run.stderr.slice(-3000)}`);
    } finally {
      await new Promise<void>((r) => proxy.close(() => r()));
    }
    expect(damagedBlobs).toBeGreaterThan(0);
    expect(await damageMetric()).toBeGreaterThanOrEqual(before + damagedBlobs);
    // The receipted recording reads back exactly as the camera file.
    const list = await (await server.request('/v1/recordings?state=complete', { dock: 'dock-2' })).json() as { recordings: { id: string; sha256: string }[] };
    const camFiles = readdirSync(join(bays, 'bay1', 'DCIM', '100BWC')).filter((n) => /\.mp4$/i.test(n));
    expect(camFiles).toHaveLength(1);
    const camBytes = readFileSync(join(bays, 'bay1', 'DCIM', '100BWC', camFiles[0]!));
    const entry = list.recordings.find((r) => r.sha256 === sha(camBytes));
    expect(entry).toBeDefined();
    const served = await rawGet(`${server.url}/v1/recordings/${entry!.id}/content`, { authorization: `Bearer ${TOKENS['dock-2']}` });
    expect([served.status, served.complete, sha(served.body)]).toEqual([200, true, sha(camBytes)]);
    expect((await scrub()).code).toBe(0);
  }, 120_000);

  it('scrub: a missing or foreign data dir is a usage error (exit 2), not "ok"', async () => {
    const none = await runCli(['server', 'scrub', '--data-dir', join(tmp.path, 'no-such-dir')]);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/^bodycam: --data-dir .*no-such-dir is not a server data dir/m);
    mkdirSync(join(tmp.path, 'empty'));
    expect((await runCli(['server', 'scrub', '--data-dir', join(tmp.path, 'empty')])).code).toBe(2);
    expect((await runCli(['server', 'scrub'])).code).toBe(2);
  });
});
