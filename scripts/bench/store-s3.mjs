#!/usr/bin/env node
// Segment PUT throughput and CPU per GB, side by side in one run: the filesystem store against the
// S3 store on Ceph RGW (scripts/engines.sh), with 1 and with 3 `bodycam server` processes
// (3 servers share one state in PostgreSQL, --db, and one blob store: a shared folder or one
// bucket). The servers are real child processes of the built CLI, so each one's CPU (and RGW's and
// the OSD's) is read from /proc/<pid>/stat. One recording per round; its segments are PUT
// round-robin across the servers by C keep-alive clients in this process.
//   node scripts/bench/store-s3.mjs   (after `npm run build`; BENCH_SEGMENTS, BENCH_SEGMENT_BYTES, BENCH_ROUNDS, BENCH_CLIENTS)
// Engines: S3_ENDPOINT + DATABASE_URL (+ AWS_*) from the environment, or a throw-away cluster
// started here and stopped at the end (then RGW's CPU is measured too).
import { execFileSync, spawn } from 'node:child_process';
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';

const root = fileURLToPath(new URL('../../', import.meta.url));
const { formatDigestHeader, sha256Hex } = await import('../../dist/protocol/digest.js');
const { merkleRoot } = await import('../../dist/protocol/merkle.js');
const { generateSigningKeyPair, signObject } = await import('../../dist/protocol/signing.js');

const SEGMENT = Number(process.env.BENCH_SEGMENT_BYTES ?? 8 * 1024 * 1024);
const COUNT = Number(process.env.BENCH_SEGMENTS ?? 24);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 8);
const TOKEN = randomBytes(32).toString('base64url');
const TICK_MS = 1000 / Number(execFileSync('getconf', ['CLK_TCK']).toString().trim());

const work = mkdtempSync(join(tmpdir(), 'bodycam-bench-s3-'));
chmodSync(work, 0o711);
let enginesDir;
let env = { ...process.env };
if (!env.S3_ENDPOINT || !env.DATABASE_URL) {
  enginesDir = join(work, 'engines');
  const out = execFileSync('bash', [join(root, 'scripts/engines.sh'), 'up', enginesDir]).toString();
  for (const line of out.split('\n')) { const m = /^([A-Z_0-9]+)=(.*)$/.exec(line); if (m) env[m[1]] = m[2]; }
}
const pidOf = (name) => enginesDir ? Number(readFileSync(join(enginesDir, 'pids'), 'utf8').split('\n').filter((l) => l.startsWith(`${name} `)).pop()?.split(' ')[1]) : undefined;
const cpuMs = (pid) => {
  if (!pid) return NaN;
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) * TICK_MS; // utime + stime
};

const tokens = join(work, 'tokens.json');
writeFileSync(tokens, JSON.stringify({ 'dock-b': TOKEN }), { mode: 0o600 });
const serverKey = join(work, 'receipt-key.pem');
execFileSync(process.execPath, [join(root, 'bin/bodycam.js'), 'server', 'key', 'new', '--out', serverKey], { stdio: 'ignore' });
const admin = new pg.Client({ connectionString: env.DATABASE_URL });
await admin.connect();

async function startServers(kind, count, round) {
  const tag = `${kind}${count}r${round}${Date.now().toString(36)}`;
  let database;
  if (count > 1) {
    await admin.query(`CREATE DATABASE bench_${tag}`);
    database = Object.assign(new URL(env.DATABASE_URL), { pathname: `/bench_${tag}` }).toString();
  }
  const store = kind === 's3' ? `s3://bench-${tag}` : join(work, `blobs-${tag}`);
  const servers = [];
  for (let i = 0; i < count; i++) {
    const args = [join(root, 'bin/bodycam.js'), 'server', '--data-dir', join(work, `data-${tag}-${i}`), '--tokens', tokens, '--listen', '127.0.0.1:0',
      '--max-segment-bytes', String(SEGMENT), ...(count > 1 || kind === 's3' ? ['--store', store] : []),
      ...(database ? ['--db', database, '--server-key', serverKey] : [])];
    const childEnv = { ...env, BODYCAM_LOG_LEVEL: 'warn' };
    if (!database) delete childEnv.DATABASE_URL;
    const child = spawn(process.execPath, args, { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let errors = '';
    child.stderr.on('data', (d) => { errors += d; });
    // Servers of one database start one after another: the first applies the migrations.
    const url = await new Promise((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d) => { out += d; const m = /listening (http:\/\/\S+)/.exec(out); if (m) resolve(m[1]); });
      child.on('exit', (code) => reject(new Error(`server exited ${code}: ${errors.slice(-500)}`)));
    });
    servers.push({ child, url });
  }
  return servers;
}

function stopServers(servers) {
  return Promise.all(servers.map(({ child }) => new Promise((resolve) => { child.once('exit', resolve); child.kill('SIGTERM'); })));
}

function segmentsOf(seed) {
  const key = createHash('sha256').update(String(seed)).digest().subarray(0, 16);
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  return Array.from({ length: COUNT }, () => cipher.update(Buffer.alloc(SEGMENT)));
}

function put(agent, url, body, headers) {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'PUT', agent, headers: { 'content-length': String(body.length), 'content-type': 'application/octet-stream', ...headers } }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 201 ? resolve() : reject(new Error(`PUT ${url}: ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function round(kind, count, r) {
  const segments = segmentsOf(`${kind}-${count}-${r}-${Date.now()}`);
  const servers = await startServers(kind, count, r);
  try {
    const keys = generateSigningKeyPair();
    const plan = segments.map((s, index) => ({ index, offset: index * SEGMENT, length: s.length, sha256: sha256Hex(s) }));
    const whole = sha256Hex(Buffer.concat(segments));
    const manifest = signObject({
      protocol: 'bodycam-ingest/1', recordingId: `BENCH-${whole.slice(0, 32)}`, device: { serial: 'BENCH' },
      dock: { id: 'dock-b', publicKeyPem: keys.publicKeyPem }, file: { name: 'bench.bin', size: SEGMENT * segments.length, sha256: whole },
      integrity: { status: 'unsigned', notes: [] }, segments: plan, merkleRoot: merkleRoot(plan.map((p) => p.sha256)), createdAt: new Date().toISOString(),
    }, keys.privateKeyPem);
    const created = await fetch(`${servers[0].url}/v1/recordings`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify(manifest) });
    if (created.status !== 201) throw new Error(`create: ${created.status} ${await created.text()}`);
    const pids = { servers: servers.map((s) => s.child.pid), rgw: pidOf('rgw.a'), osd: pidOf('osd') };
    const before = { servers: pids.servers.map(cpuMs), rgw: cpuMs(pids.rgw), osd: cpuMs(pids.osd) };
    const agent = new Agent({ keepAlive: true, maxSockets: CLIENTS });
    let next = 0;
    const t0 = performance.now();
    await Promise.all(Array.from({ length: CLIENTS }, async () => {
      while (next < COUNT) {
        const i = next++;
        await put(agent, `${servers[i % count].url}/v1/recordings/${manifest.recordingId}/segments/${i}`, segments[i], { authorization: `Bearer ${TOKEN}`, 'content-digest': formatDigestHeader(plan[i].sha256) });
      }
    }));
    const seconds = (performance.now() - t0) / 1000;
    agent.destroy();
    const gb = (COUNT * SEGMENT) / 1e9;
    const serverMs = pids.servers.reduce((sum, pid, i) => sum + cpuMs(pid) - before.servers[i], 0);
    // The receipt closes the round: every PUT really landed (and the 3-server case completes through another server).
    const done = await fetch(`${servers[servers.length - 1].url}/v1/recordings/${manifest.recordingId}/complete`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } });
    if (done.status !== 200) throw new Error(`complete: ${done.status} ${await done.text()}`);
    return { mbps: (COUNT * SEGMENT) / seconds / 1e6, serverCpuSPerGB: serverMs / 1000 / gb, rgwCpuSPerGB: (cpuMs(pids.rgw) - before.rgw) / 1000 / gb, osdCpuSPerGB: (cpuMs(pids.osd) - before.osd) / 1000 / gb };
  } finally {
    await stopServers(servers);
  }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (x) => Number.isNaN(x) ? '—' : x.toFixed(1);
try {
  console.log(`segments: ${COUNT} x ${(SEGMENT / 1048576).toFixed(0)} MiB per round, ${CLIENTS} clients, ${ROUNDS} rounds (median), loopback; load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
  console.log('| store | servers | PUT throughput | server CPU per GB | RGW CPU per GB | OSD CPU per GB |');
  console.log('| --- | --- | --- | --- | --- | --- |');
  for (const count of [1, 3]) {
    for (const kind of ['fs', 's3']) {
      const results = [];
      // Rounds of the four set-ups interleave in time only within a set-up; each set-up runs ROUNDS times back to back.
      for (let r = 0; r < ROUNDS; r++) results.push(await round(kind, count, r));
      const m = (key) => median(results.map((x) => x[key]));
      const label = kind === 'fs' ? (count > 1 ? 'filesystem (shared folder) + PostgreSQL' : 'filesystem (embedded)') : (count > 1 ? 'S3 on RGW + PostgreSQL' : 'S3 on RGW (records in the data dir)');
      console.log(`| ${label} | ${count} | ${m('mbps').toFixed(0)} MB/s | ${fmt(m('serverCpuSPerGB'))} s | ${kind === 's3' ? fmt(m('rgwCpuSPerGB')) : '—'} s | ${kind === 's3' ? fmt(m('osdCpuSPerGB')) : '—'} s |`);
    }
  }
  console.log(`load average after: ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
} finally {
  await admin.end();
  if (enginesDir) execFileSync('bash', [join(root, 'scripts/engines.sh'), 'down', enginesDir]);
  rmSync(work, { recursive: true, force: true });
}
