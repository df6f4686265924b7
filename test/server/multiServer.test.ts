/**
 * Several servers, one truth: three `bodycam server` processes on one PostgreSQL database, one
 * Ceph RGW bucket under Object Lock (the run's engines) and one receipt key, with a dock client that spreads over and fails over among
 * them. Creates, PUTs and completes of one recording go to different servers; one server is
 * SIGKILLed mid-upload and another mid-complete; PostgreSQL is restarted (503 + Retry-After
 * meanwhile). Everything arrives byte-exact, one receipt per recording, possession answers are
 * the same from every server, and `verify-log --db` finds one gap-free chain.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import pg from 'pg';
import { createPrivateKey } from 'node:crypto';
import { isDatabaseUnavailable, openPgState } from '../../src/server/pg/pgState.js';
import { IngestClient } from '../../src/dock/client.js';
import { TokenBucket } from '../../src/dock/rateLimit.js';
import { quietLogger } from '../../src/log.js';
import { generateSigningKeyPair, keyIdOf, verifyObject } from '../../src/protocol/signing.js';
import type { Receipt } from '../../src/protocol/types.js';
import { DeleteObjectCommand, GetObjectCommand, ListObjectVersionsCommand, PutObjectCommand, PutObjectRetentionCommand, type S3Client } from '@aws-sdk/client-s3';
import { makeS3Client } from '../../src/server/store/s3BlobStore.js';
import { runCli, spawnCli } from '../helpers/cli.js';
import { engines, freshBucket, type Engines } from '../helpers/engines.js';
import { buildRecording, testBytes, type BuiltRecording } from '../helpers/manifest.js';
import { startTestPostgres, type TestPostgres } from '../helpers/postgres.js';
import { segmentHeaders, testToken } from '../helpers/server.js';
import { makeTempDir } from '../helpers/tmp.js';

const TOKENS = { 'dock-1': testToken('dock-1'), 'dock-2': testToken('dock-2') };

interface Server { child: ChildProcess; url: string; stderr: () => string; dataDir: string }

describe('three servers on one PostgreSQL and one S3 bucket (Ceph RGW, Object Lock)', () => {
  let postgres: TestPostgres;
  let url: string;
  let env: Engines;
  let s3: S3Client;
  const bucket = freshBucket('multi');
  const storeFlags = () => ['--store', `s3://${bucket}`, '--s3-endpoint', env.s3Endpoint];
  const engineEnv = () => ({ ...process.env, AWS_ACCESS_KEY_ID: env.accessKeyId, AWS_SECRET_ACCESS_KEY: env.secretAccessKey, AWS_REGION: env.region });
  const tmp = makeTempDir('bodycam-multi-');
  const servers: Server[] = [];
  const keyFile = join(tmp.path, 'receipt-key.pem');
  const adminFile = join(tmp.path, 'admin.token');
  const ADMIN = testToken('operator');
  const tokensFile = join(tmp.path, 'tokens.json');

  async function startServer(name: string, tokens: string | null = tokensFile): Promise<Server> {
    const dataDir = join(tmp.path, name);
    const child = spawnCli(['server', '--data-dir', dataDir, ...storeFlags(), '--retention', '1d', '--db', url, '--server-key', keyFile, ...(tokens ? ['--tokens', tokens] : []), '--admin-token-file', adminFile, '--listen', '127.0.0.1:0'], { env: { ...engineEnv(), BODYCAM_LOG_LEVEL: 'info', BODYCAM_LOG_FILE: '' } });
    let out = '';
    let err = '';
    child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
    const listening = await new Promise<string>((resolve, reject) => {
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /listening (http:\/\/\S+)/.exec(out);
        if (m) resolve(m[1]!);
      });
      child.once('exit', (code) => reject(new Error(`server ${name} exited ${code}: ${err.slice(-2000)}`)));
    });
    const server = { child, url: listening, stderr: () => err, dataDir };
    servers.push(server);
    return server;
  }

  async function waitUntil(what: string, check: () => Promise<boolean>, ms = 30_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  const kill = (s: Server) => new Promise<void>((resolve) => { if (s.child.exitCode !== null || s.child.signalCode) { resolve(); return; } s.child.once('exit', () => resolve()); s.child.kill('SIGKILL'); });

  function client(endpoints: string[], dock = 'dock-1', onRetry?: (r: string) => void): IngestClient {
    return new IngestClient({
      endpoint: endpoints.join(','), token: TOKENS[dock as 'dock-1'], requestTimeoutMs: 10_000, retries: 3,
      bucket: new TokenBucket(0), logger: quietLogger(), ...(onRetry ? { onRetry } : {}),
    });
  }

  /** The recording on disk (the client PUTs file ranges) and its plan. */
  function recording(seed: number, size: number, dock = 'dock-1'): BuiltRecording & { path: string } {
    const data = testBytes(size, seed);
    const built = buildRecording(data, { dockId: dock, recordingId: `REC-${seed}`, segmentSize: 64 * 1024, dockKeys: dockKeys[dock]! });
    const path = join(tmp.path, `rec-${seed}.bin`);
    writeFileSync(path, data);
    return { ...built, path };
  }
  const dockKeys: Record<string, BuiltRecording['dockKeys']> = {};

  async function upload(c: IngestClient, r: BuiltRecording & { path: string }): Promise<Receipt> {
    await c.createRecording(r.manifest);
    for (const s of r.manifest.segments) await c.putSegment(r.manifest.recordingId, r.path, s);
    const done = await c.complete(r.manifest.recordingId);
    expect(done.missing).toBeUndefined();
    return done.receipt!;
  }

  const get = (s: Server, path: string, dock = 'dock-1', init: RequestInit = {}) =>
    fetch(s.url + path, { ...init, headers: { authorization: `Bearer ${TOKENS[dock as 'dock-1']}`, ...(init.headers ?? {}) } });

  beforeAll(async () => {
    env = await engines();
    s3 = makeS3Client({ endpoint: env.s3Endpoint, region: env.region, credentials: { accessKeyId: env.accessKeyId, secretAccessKey: env.secretAccessKey } });
    postgres = await startTestPostgres({ own: true }); // restarted by a test below
    url = await postgres.createDatabase();
    writeFileSync(tokensFile, JSON.stringify(TOKENS), { mode: 0o600 });
    writeFileSync(adminFile, `${ADMIN}\n`, { mode: 0o600 });
    const made = await runCli(['server', 'key', 'new', '--out', keyFile]);
    expect(made.code).toBe(0);
    const first = buildRecording(Buffer.alloc(1), { dockId: 'dock-1' });
    dockKeys['dock-1'] = first.dockKeys;
    dockKeys['dock-2'] = buildRecording(Buffer.alloc(1), { dockId: 'dock-2' }).dockKeys;
    // Started together: the migrations run once (advisory lock), the others wait for them.
    await Promise.all(['s1', 's2', 's3'].map((n) => startServer(n)));
  });

  afterAll(async () => {
    await Promise.all(servers.map(kill));
    await postgres?.stop();
    s3?.destroy();
    tmp.cleanup();
  });

  it('spreads one recording\'s requests over the servers; receipts, records and possession answers agree everywhere', async () => {
    const [a, b, c] = servers;
    const r = recording(1, 300_000);
    // Create on a, PUT the segments on b and c in turn, complete on c: every server sees the same state.
    expect((await get(a!, '/v1/recordings', 'dock-1', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(r.manifest) })).status).toBe(201);
    for (const [i, body] of r.segments.entries()) {
      const put = await get(i % 2 ? b! : c!, `/v1/recordings/REC-1/segments/${i}`, 'dock-1', { method: 'PUT', headers: segmentHeaders(body), body });
      expect(put.status).toBe(201);
    }
    const done = await get(c!, '/v1/recordings/REC-1/complete', 'dock-1', { method: 'POST' });
    expect(done.status).toBe(200);
    const receipt = (await done.json()) as Receipt;
    for (const s of servers) {
      // The same receipt (one per recording) whoever is asked, also by a complete sent again.
      const again = await get(s, '/v1/recordings/REC-1/complete', 'dock-1', { method: 'POST' });
      expect(await again.json()).toEqual(receipt);
      const content = Buffer.from(await (await get(s, '/v1/recordings/REC-1/content')).arrayBuffer());
      expect(content.equals(testBytes(300_000, 1))).toBe(true);
    }
    const nonce = randomBytes(16).toString('hex');
    const answers = await Promise.all(servers.map(async (s) => (await get(s, '/v1/recordings/REC-1/possession', 'dock-1', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ nonce, segments: [0, 2, 4] }) })).json()));
    expect(answers[1]).toEqual(answers[0]);
    expect(answers[2]).toEqual(answers[0]);
    // A dock pinned through one server is pinned for all: another key is refused by another server.
    const impostor = buildRecording(testBytes(1000, 9), { dockId: 'dock-1', recordingId: 'IMPOSTOR' });
    const refused = await get(b!, '/v1/recordings', 'dock-1', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(impostor.manifest) });
    expect((await refused.json() as { code: string }).code).toBe('dock_key_mismatch');
    // Three completes of one recording at once, one on each server: one receipt, the same one to all.
    const race = recording(2, 150_000);
    expect((await get(b!, '/v1/recordings', 'dock-1', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(race.manifest) })).status).toBe(201);
    for (const [i, body] of race.segments.entries()) {
      expect((await get(servers[i % 3]!, `/v1/recordings/REC-2/segments/${i}`, 'dock-1', { method: 'PUT', headers: segmentHeaders(body), body })).status).toBe(201);
    }
    const raced = await Promise.all(servers.map(async (s) => {
      const answer = await get(s, '/v1/recordings/REC-2/complete', 'dock-1', { method: 'POST' });
      expect(answer.status).toBe(200);
      return answer.json();
    }));
    expect(raced[1]).toEqual(raced[0]);
    expect(raced[2]).toEqual(raced[0]);
    // The client spreads: each server answered some of this client's requests.
    const reasons: string[] = [];
    const spread = client(servers.map((s) => s.url), 'dock-2', (why) => reasons.push(why));
    const { publicKeyPem } = (await (await fetch(`${a!.url}/v1/keys`)).json()) as { publicKeyPem: string };
    for (let i = 0; i < 3; i++) {
      const issued = await upload(spread, recording(10 + i, 100_000, 'dock-2'));
      expect(verifyObject(issued as unknown as Record<string, unknown>, publicKeyPem)).toBe(true);
    }
    expect(reasons).toEqual([]);
    for (const s of servers) expect(s.stderr()).toMatch(/"dockId":"dock-2"/);
  });

  it('a server SIGKILLed mid-upload and another mid-complete: the client fails over at once, nothing lost, one receipt each', async () => {
    const [a, b, c] = servers;
    const r = recording(20, 2_000_000);
    const reasons: string[] = [];
    const all = client(servers.map((s) => s.url), 'dock-1', (why) => reasons.push(why));
    await all.createRecording(r.manifest);
    // Half a segment body into a, then a dies.
    const seg = r.manifest.segments[0]!;
    const body = r.segments[0]!;
    const req = httpRequest(`${a!.url}/v1/recordings/REC-20/segments/0`, { method: 'PUT', headers: { ...segmentHeaders(body), authorization: `Bearer ${TOKENS['dock-1']}` } });
    req.on('error', () => {});
    req.write(body.subarray(0, body.length / 2));
    await new Promise((resolve) => setTimeout(resolve, 300)); // let the half arrive (no assertion depends on it)
    await kill(a!);
    req.destroy();
    for (const s of r.manifest.segments) await all.putSegment('REC-20', r.path, s);
    expect(seg.index).toBe(0);
    // A complete sent to b, which is killed while it works; the client then completes elsewhere.
    const pending = get(b!, '/v1/recordings/REC-20/complete', 'dock-1', { method: 'POST' }).catch(() => undefined);
    await new Promise((resolve) => setImmediate(resolve));
    await kill(b!);
    await pending;
    const done = await all.complete('REC-20');
    expect(done.receipt!.recordingId).toBe('REC-20');
    // Failovers happened and cost no backoff: every retry the client made was an immediate failover.
    expect(reasons.length).toBeGreaterThan(0);
    expect(reasons.every((why) => why.startsWith('failover_'))).toBe(true);
    const content = Buffer.from(await (await get(c!, '/v1/recordings/REC-20/content')).arrayBuffer());
    expect(content.equals(testBytes(2_000_000, 20))).toBe(true);
    // Restarted servers rejoin the same state.
    await Promise.all([startServer('s1'), startServer('s2')]);
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    try {
      for (const id of ['REC-2', 'REC-20']) {
        const receipts = await db.query<{ n: string }>("SELECT count(*) AS n FROM custody_entries WHERE line::json->>'event' = 'receipt-issued' AND line::json->>'recordingId' = $1", [id]);
        expect(Number(receipts.rows[0]!.n)).toBe(1);
      }
      const seqs = await db.query<{ n: string; max: string }>('SELECT count(*) AS n, max(seq) AS max FROM custody_entries');
      expect(seqs.rows[0]!.n).toBe(seqs.rows[0]!.max);
      // Possession rows are pruned once a recording has its receipt: every recording so far is complete.
      expect(Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM possession')).rows[0]!.n)).toBe(0);
    } finally {
      await db.end();
    }
  });

  it('PostgreSQL restarted: 503 with Retry-After meanwhile, the client resumes after, and verify-log --db passes', async () => {
    const live = servers.filter((s) => s.child.exitCode === null && !s.child.signalCode);
    const r = recording(30, 200_000);
    postgres.stopServer();
    try {
      const refused = await get(live[0]!, '/v1/recordings', 'dock-1', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(r.manifest) });
      expect(refused.status).toBe(503);
      expect(refused.headers.get('retry-after')).toMatch(/^\d+$/);
      expect(((await refused.json()) as { code: string }).code).toBe('unavailable');
    } finally {
      postgres.startServer();
    }
    const receipt = await upload(client(live.map((s) => s.url)), r);
    expect(receipt.recordingId).toBe('REC-30');
    const verified = await runCli(['server', 'verify-log', '--db', url]);
    expect(verified.stdout).toMatch(/custody log ok: \d+ entries, \d+ checkpoints .*7 stored receipts/);
    expect(verified.code).toBe(0);
  });

  /** Every checkpoint the database has is exported (the servers export after each one). */
  async function exportsDone(): Promise<number> {
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    try {
      for (let i = 0; i < 600; i++) {
        const left = Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM custody_checkpoints WHERE exported_at IS NULL')).rows[0]!.n);
        if (left === 0) return Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM custody_checkpoints')).rows[0]!.n);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      throw new Error('custody checkpoints were not exported within 60 s');
    } finally {
      await db.end();
    }
  }

  it('the custody chain is in the bucket as locked objects, one per checkpoint; with the server\'s own credentials neither they nor a blob can be deleted or unlocked (403), and a PUT on top changes nothing the servers or verify-log read', async () => {
    const checkpoints = await exportsDone();
    const listed = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: 'custody/log/' }));
    const exports = (listed.Versions ?? []).filter((v) => /^custody\/log\/\d{16}\.jsonl$/.test(v.Key!));
    expect(new Set(exports.map((v) => v.Key)).size).toBe(checkpoints);
    // Concatenated, the exports are the chain: every entry once, in order, each stretch closed by its signed checkpoint.
    const sorted = [...new Map(exports.map((v) => [v.Key!, v])).values()].sort((x, y) => x.Key!.localeCompare(y.Key!));
    let seq = 0;
    for (const v of sorted) {
      const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: v.Key!, VersionId: v.VersionId! }));
      expect(got.ObjectLockMode).toBe('COMPLIANCE');
      const lines = Buffer.from(await got.Body!.transformToByteArray()).toString('utf8').trimEnd().split('\n');
      const checkpoint = JSON.parse(lines.pop()!) as { type: string; seq: number };
      expect(checkpoint.type).toBe('custody-checkpoint');
      for (const line of lines) expect((JSON.parse(line) as { seq: number }).seq).toBe(++seq);
      expect(checkpoint.seq).toBe(seq);
      expect(v.Key).toBe(`custody/log/${String(seq).padStart(16, '0')}.jsonl`);
    }

    // The attack, with the very credentials the servers use.
    const blob = (await s3.send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: 'blobs/' }))).Versions!.find((v) => v.Size! > 0)!;
    const target = sorted.at(-1)!;
    const original = new Map<string, Buffer>();
    for (const v of [blob, target]) {
      original.set(v.Key!, Buffer.from(await (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: v.Key!, VersionId: v.VersionId! }))).Body!.transformToByteArray()));
      await expect(s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: v.Key!, VersionId: v.VersionId! }))).rejects.toMatchObject({ name: 'AccessDenied', $metadata: { httpStatusCode: 403 } });
      await expect(s3.send(new PutObjectRetentionCommand({ Bucket: bucket, Key: v.Key!, VersionId: v.VersionId!, Retention: { Mode: 'COMPLIANCE', RetainUntilDate: new Date(Date.now() + 60_000) } })))
        .rejects.toMatchObject({ name: 'AccessDenied', $metadata: { httpStatusCode: 403 } });
      await expect(s3.send(new PutObjectRetentionCommand({ Bucket: bucket, Key: v.Key!, VersionId: v.VersionId!, BypassGovernanceRetention: true, Retention: { Mode: 'GOVERNANCE', RetainUntilDate: new Date(Date.now() + 2 * 86_400_000) } })))
        .rejects.toMatchObject({ name: 'AccessDenied', $metadata: { httpStatusCode: 403 } });
    }
    // A PUT on the export's key only stacks a version (S3 keeps every version of a locked bucket): the export is its first.
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: target.Key!, Body: Buffer.from('{"forged":true}\n') }));
    for (const v of [blob, target]) {
      const kept = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: v.Key!, VersionId: v.VersionId! }));
      expect(Buffer.from(await kept.Body!.transformToByteArray()).equals(original.get(v.Key!)!)).toBe(true);
      expect(kept.ObjectLockMode).toBe('COMPLIANCE');
    }
    const verified = await runCli(['server', 'verify-log', '--db', url, ...storeFlags()], { env: engineEnv() });
    expect(verified.stdout).toMatch(new RegExp(`custody log ok: .*, ${checkpoints} locked exports match`));
    expect(verified.code).toBe(0);

    // The database rewritten behind the servers' back (a superuser can lift the append-only trigger):
    // the chain no longer matches what the bucket locked.
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    try {
      await db.query('ALTER TABLE custody_entries DISABLE TRIGGER custody_entries_append_only');
      await db.query("UPDATE custody_entries SET line = replace(line, '\"event\":\"recording-created\"', '\"event\":\"recording-created\",\"x\":1') WHERE seq = 1");
      await db.query('ALTER TABLE custody_entries ENABLE TRIGGER custody_entries_append_only');
      const broken = await runCli(['server', 'verify-log', '--db', url, ...storeFlags()], { env: engineEnv() });
      expect(broken.code).toBe(3);
      expect(broken.stdout).toMatch(/differs from the database's chain up to checkpoint/);
    } finally {
      await db.end();
    }
  });

  it('scrub and report read the deployment (--store s3://… --db …) that every server shares', async () => {
    const scrub = await runCli(['server', 'scrub', ...storeFlags(), '--db', url, '--json'], { env: engineEnv() });
    expect(scrub.code).toBe(0);
    const report = JSON.parse(scrub.stdout) as { ok: boolean; blobsChecked: number; recordingsChecked: number; damaged: unknown[] };
    expect(report).toMatchObject({ ok: true, damaged: [], recordingsChecked: 7 });
    expect(report.blobsChecked).toBeGreaterThan(6);
    const operator = await runCli(['server', 'report', ...storeFlags(), '--db', url, '--json'], { env: engineEnv() });
    expect(operator.code).toBe(0);
    const docks = (JSON.parse(operator.stdout) as { docks: Array<{ dockId: string; recordings: number; keyId?: string }> }).docks;
    expect(docks.map((d) => [d.dockId, d.recordings])).toEqual([['dock-1', 4], ['dock-2', 3]]);
    expect(docks.every((d) => d.keyId && /^[0-9a-f]{64}$/.test(d.keyId))).toBe(true);
    // The operator API of every live server (each with its own in-memory catalog) counts what the others took in.
    for (const s of servers.filter((x) => x.child.exitCode === null && !x.child.signalCode)) {
      const answer = (await (await fetch(`${s.url}/v1/docks`, { headers: { authorization: `Bearer ${ADMIN}` } })).json()) as { docks: Array<{ dockId: string; recordings: number; inProgress: number }> };
      expect(answer.docks.map((d) => [d.dockId, d.recordings, d.inProgress])).toEqual([['dock-1', 4, 0], ['dock-2', 3, 0]]);
    }
    // A bucket that does not exist is one clear line, not a new bucket.
    const none = await runCli(['server', 'scrub', '--store', `s3://${freshBucket('none')}`, '--s3-endpoint', env.s3Endpoint, '--db', url], { env: engineEnv() });
    expect(none.code).not.toBe(0);
    expect(none.stderr).toMatch(/does not exist/);
  });

  it('dock tokens live in the database: a server with a stale tokens file or none accepts the same docks; SIGHUP on one server or `token import` changes every server\'s', async () => {
    const live = () => servers.filter((x) => x.child.exitCode === null && !x.child.signalCode);
    const status = async (s: Server, token: string) => (await fetch(`${s.url}/v1/recordings/NONE`, { headers: { authorization: `Bearer ${token}` } })).status;
    // Only hashes in the database, never a token.
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    try {
      const rows = (await db.query<{ dock_id: string; token_sha256: string }>('SELECT dock_id, token_sha256 FROM dock_tokens ORDER BY dock_id')).rows;
      expect(rows.map((r) => r.dock_id)).toEqual(['dock-1', 'dock-2']);
      expect(JSON.stringify(rows)).not.toContain(TOKENS['dock-1']);
    } finally {
      await db.end();
    }
    // A server started later with an old copy of the file (dock-2 missing, dock-1 with a token since replaced) and one with none.
    const stale = join(tmp.path, 'stale-tokens.json');
    writeFileSync(stale, JSON.stringify({ 'dock-1': testToken('dock-1-old') }), { mode: 0o600 });
    const oldCopy = await startServer('s4', stale);
    const noFile = await startServer('s5', null);
    for (const s of [oldCopy, noFile]) {
      expect(await status(s, TOKENS['dock-2'])).toBe(404); // authenticated: the recording is not there
      expect(await status(s, testToken('dock-1-old'))).toBe(401);
    }
    expect(oldCopy.stderr()).toMatch(/differs from the dock tokens in the database/);
    // The operator adds dock-3 to the file and SIGHUPs one server: every server accepts it at once.
    const dock3 = testToken('dock-3');
    writeFileSync(tokensFile, JSON.stringify({ ...TOKENS, 'dock-3': dock3 }), { mode: 0o600 });
    const [first] = live();
    first!.child.kill('SIGHUP');
    await waitUntil('dock-3 accepted by every server', async () => (await Promise.all(live().map((s) => status(s, dock3)))).every((c) => c === 404));
    // `token import` of a file without dock-3: every server refuses it soon (each looks every 2 s).
    writeFileSync(tokensFile, JSON.stringify(TOKENS), { mode: 0o600 });
    const imported = await runCli(['server', 'token', 'import', '--db', url, '--tokens', tokensFile]);
    expect(imported.stdout).toMatch(/imported 2 dock tokens/);
    await waitUntil('dock-3 refused by every server', async () => (await Promise.all(live().map((s) => status(s, dock3)))).every((c) => c === 401));
    for (const s of live()) expect(await status(s, TOKENS['dock-1'])).toBe(404);
    // A weak file is refused by import, and nothing changes.
    const weak = join(tmp.path, 'weak.json');
    writeFileSync(weak, JSON.stringify({ 'dock-1': 'password' }), { mode: 0o600 });
    const refused = await runCli(['server', 'token', 'import', '--db', url, '--tokens', weak]);
    expect(refused.code).toBe(2);
    for (const s of live()) expect(await status(s, TOKENS['dock-1'])).toBe(404);
    await Promise.all([kill(oldCopy), kill(noFile)]);
  });

  it('a connection in use (a recording lock held) when PostgreSQL stops does not end the process; the state works again after', async () => {
    const pair = generateSigningKeyPair();
    const serverKey = { privateKey: createPrivateKey(pair.privateKeyPem), publicKeyPem: pair.publicKeyPem, keyId: keyIdOf(pair.publicKeyPem) };
    const own = await postgres.createDatabase();
    const state = await openPgState(own, { serverKey, log: quietLogger() });
    try {
      let stopped!: () => void;
      const held = state.locks.run('dock-1/HELD', () => new Promise<string>((resolve) => { stopped = () => resolve('done'); }));
      await new Promise((resolve) => setTimeout(resolve, 200)); // the lock is taken (no assertion depends on it)
      postgres.stopServer();
      stopped();
      await expect(held).resolves.toBe('done');
      const away = await state.possession.has('dock-1', 'ab'.repeat(32)).then(() => undefined, (error: unknown) => error);
      expect(isDatabaseUnavailable(away)).toBe(true);
      postgres.startServer();
      await state.possession.add('dock-1', 'ab'.repeat(32));
      expect(await state.possession.has('dock-1', 'ab'.repeat(32))).toBe(true);
      await expect(state.locks.run('dock-1/HELD', async () => 'again')).resolves.toBe('again');
    } finally {
      await state.close();
    }
  });
});

