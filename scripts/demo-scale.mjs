#!/usr/bin/env node
// `npm run demo:scale`: the agency-scale picture on one machine. Engines up (scripts/engines.sh:
// PostgreSQL and Ceph RGW), three `bodycam server` processes on one database, one RGW bucket under
// Object Lock and one receipt key, a dozen simulated cameras (real ffmpeg) docked over several docks,
// each dock given every server (`--endpoint a,b,c`). Midway one server is SIGKILLed (mid-upload: the
// docks fail over at once) and started again; PostgreSQL is restarted once (the servers answer 503
// with Retry-After meanwhile, the docks wait and resume); a third server is SIGKILLed once the first
// receipts are issued (completes in flight). A live summary every second; at the end every recording
// is read back byte-exact from a server, counted to one receipt each, the chain checked for gaps and
// duplicate seqs, `verify-log --db --store` checks it and its locked exports in the bucket, and
// `scrub --db --store` re-hashes every blob. Everything is stopped and the folder removed (--keep).
// `npm run soak` runs it with 2 docks and 8 cameras.
//
//   npm run build && npm run demo:scale [-- --docks 3 --cameras 12 --servers 3 --duration 3 --no-faults --keep]
//
// Exit 0 when everything arrived and verified, 1 otherwise. Needs `scripts/engines.sh install`.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const bin = join(root, 'bin', 'bodycam.js');
const { recordFleet } = await import(join(root, 'dist', 'camera', 'index.js'));
const pg = (await import('pg')).default;

const args = process.argv.slice(2);
const flag = (name, fallback) => { const i = args.indexOf(`--${name}`); return i >= 0 ? Number(args[i + 1]) : fallback; };
const DOCKS = flag('docks', 3);
const CAMERAS = flag('cameras', 12);
const SERVERS = flag('servers', 3);
const DURATION = flag('duration', 6);
const FAULTS = !args.includes('--no-faults');
const KEEP = args.includes('--keep');
const TIMEOUT_S = flag('timeout', 600);

const dir = mkdtempSync(join(tmpdir(), 'bodycam-scale-'));
chmodSync(dir, 0o711); // the postgres user must traverse it
const started = Date.now();
const t = () => `${((Date.now() - started) / 1000).toFixed(0).padStart(3)}s`;
const say = (line) => process.stdout.write(`${line}\n`);
const children = new Set();
let enginesUp = false;

function engines(cmd) {
  const r = spawnSync('bash', [join(root, 'scripts', 'engines.sh'), cmd, join(dir, 'engines')], { encoding: 'utf8', timeout: 180_000 });
  if (r.status !== 0) throw new Error(`scripts/engines.sh ${cmd} failed: ${r.stderr.trim()}`);
  return Object.fromEntries(r.stdout.split('\n').map((l) => /^([A-Z_][A-Z0-9_]*)=(.*)$/.exec(l.trim())).filter(Boolean).map((m) => [m[1], m[2]]));
}

let engineEnv = {};
function bodycam(argv, logName) {
  const child = spawn(process.execPath, [bin, ...argv], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...engineEnv, BODYCAM_LOG_FILE: join(dir, `${logName}.log`) } });
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

// Blobs in one Ceph RGW bucket under Object Lock (the custody chain is exported there too).
const BUCKET = `demo-scale-${Date.now().toString(36)}`;
const storeFlags = () => ['--store', `s3://${BUCKET}`, '--s3-endpoint', engineEnv.S3_ENDPOINT];
const servers = [];
async function startServer(i, url) {
  const name = `server-${i + 1}`;
  const child = bodycam(['server', '--data-dir', join(dir, name), ...storeFlags(), '--retention', '1d', '--db', url, '--server-key', join(dir, 'receipt-key.pem'),
    '--tokens', join(dir, 'tokens.json'), '--listen', `127.0.0.1:${servers[i]?.port ?? 0}`], name);
  const listening = await new Promise((ok, fail) => {
    let out = '';
    child.stdout.on('data', (d) => { out += d; const m = /listening (http:\/\/\S+)/.exec(out); if (m) ok(m[1]); });
    child.once('exit', (code) => fail(new Error(`${name} exited ${code} (see ${join(dir, `${name}.log`)})`)));
  });
  servers[i] = { name, child, url: listening, port: Number(new URL(listening).port) };
}

async function main() {
  say(`bodycam demo --scale: ${SERVERS} servers, ${DOCKS} docks, ${CAMERAS} cameras, in ${dir}`);
  say(`${t()} engines up (PostgreSQL + Ceph RGW: scripts/engines.sh)…`);
  const env = engines('up');
  enginesUp = true;
  engineEnv = { S3_ENDPOINT: env.S3_ENDPOINT, AWS_ACCESS_KEY_ID: env.AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY: env.AWS_SECRET_ACCESS_KEY, AWS_REGION: env.AWS_REGION ?? 'us-east-1' };
  const url = env.DATABASE_URL;
  execFileSync(process.execPath, [bin, 'server', 'key', 'new', '--out', join(dir, 'receipt-key.pem')]);
  const tokens = Object.fromEntries(Array.from({ length: DOCKS }, (_, d) => [`dock-${d + 1}`, randomBytes(32).toString('base64url')]));
  writeFileSync(join(dir, 'tokens.json'), JSON.stringify(tokens), { mode: 0o600 });
  await Promise.all(Array.from({ length: SERVERS }, (_, i) => startServer(i, url)));
  say(`${t()} servers: ${servers.map((s) => s.url).join(', ')}`);

  // Cameras: a share per dock, recorded by the real ffmpeg and docked into that dock's bays.
  const perDock = Array.from({ length: DOCKS }, (_, d) => Math.floor(CAMERAS / DOCKS) + (d < CAMERAS % DOCKS ? 1 : 0));
  const expected = [];
  for (const [d, n] of perDock.entries()) {
    if (!n) continue;
    const bays = join(dir, `dock-${d + 1}`, 'bays');
    mkdirSync(bays, { recursive: true });
    const fleet = await recordFleet({ bays, cameras: n, count: 1, durationSeconds: DURATION, width: 320, height: 240, seed: `scale-${d}` });
    for (const cam of fleet) for (const f of cam.files) expected.push({ dock: `dock-${d + 1}`, path: f.mediaPath, sha256: createHash('sha256').update(readFileSync(f.mediaPath)).digest('hex'), size: statSync(f.mediaPath).size });
  }
  say(`${t()} ${expected.length} recordings on ${CAMERAS} cameras, docked over ${DOCKS} docks`);

  const endpoints = servers.map((s) => s.url).join(',');
  const docks = perDock.map((n, d) => {
    const name = `dock-${d + 1}`;
    writeFileSync(join(dir, `${name}.token`), tokens[name], { mode: 0o600 });
    const child = bodycam(['dock', '--once', '--bays', join(dir, name, 'bays'), '--endpoint', endpoints, '--token-file', join(dir, `${name}.token`),
      '--state-dir', join(dir, name, 'state'), '--dock-id', name, '--status-port', '0', '--settle', '0.2s', '--segment-seconds', '1s',
      '--max-backoff', '2s', '--request-timeout', '10s', '--max-rate', '512KB/s', '--no-fingerprint'], name);
    const done = new Promise((ok) => child.once('exit', (code) => ok(code)));
    return { name, child, done, code: undefined };
  });
  docks.forEach((d) => d.done.then((code) => { d.code = code; }));

  const db = new pg.Pool({ connectionString: url, max: 1, connectionTimeoutMillis: 2000, query_timeout: 2000 });
  db.on('error', () => {});
  let killed = false;
  let killedInComplete = false;
  let pgRestarted = false;
  let faultsDone = Promise.resolve();
  const faults = [];
  const summary = async () => {
    let line = 'database restarting';
    try {
      const r = (await db.query(`SELECT (SELECT count(*) FROM recordings) AS recordings, (SELECT count(*) FROM custody_receipts) AS receipts,
        (SELECT seq FROM custody_head) AS seq, (SELECT count(*) FROM possession) AS held`)).rows[0];
      line = `recordings ${r.recordings}/${expected.length}, receipts ${r.receipts}, segments held ${r.held}, custody seq ${r.seq}`;
    } catch { /* shown as restarting */ }
    const up = servers.filter((s) => s.child.exitCode === null && !s.child.signalCode).length;
    say(`${t()} servers up ${up}/${SERVERS} | docks done ${docks.filter((d) => d.code !== undefined).length}/${docks.length} | ${line}${faults.length ? ` | ${faults.at(-1)}` : ''}`);
  };
  const deadline = Date.now() + TIMEOUT_S * 1000;
  while (docks.some((d) => d.code === undefined) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 1000));
    if (FAULTS && !killed && Date.now() - started > 0) {
      const held = Number((await db.query('SELECT count(*) AS n FROM possession').catch(() => ({ rows: [{ n: 0 }] }))).rows[0].n);
      if (held > 0) {
        killed = true;
        servers[1 % SERVERS].child.kill('SIGKILL');
        faults.push(`SIGKILLed ${servers[1 % SERVERS].name} mid-upload`);
        faultsDone = (async () => {
          await new Promise((r) => setTimeout(r, 1500));
          faults.push('PostgreSQL restarting');
          const data = join(dir, 'engines', 'pg', 'data');
          const status = await new Promise((ok) => spawn('runuser', ['-u', 'postgres', '--', '/usr/lib/postgresql/15/bin/pg_ctl', '-D', data, '-m', 'fast', '-w', '-t', '30', 'restart'], { stdio: 'ignore' }).once('exit', ok));
          pgRestarted = status === 0;
          faults.push(pgRestarted ? 'PostgreSQL restarted' : `PostgreSQL restart failed (pg_ctl exit ${status})`);
          await startServer(1 % SERVERS, url);
          faults.push(`${servers[1 % SERVERS].name} back`);
        })().catch((e) => { faults.push(String(e.message)); });
      }
    }
    // A second server SIGKILLed while receipts are being issued (completes in flight on it and the others).
    if (FAULTS && killed && !killedInComplete && SERVERS > 2) {
      const receipts = Number((await db.query('SELECT count(*) AS n FROM custody_receipts').catch(() => ({ rows: [{ n: 0 }] }))).rows[0].n);
      if (receipts > 0 && receipts < expected.length) {
        killedInComplete = true;
        servers[2].child.kill('SIGKILL');
        faults.push(`SIGKILLed ${servers[2].name} while completes run (${receipts}/${expected.length} receipts)`);
      }
    }
    await summary();
  }
  await faultsDone;
  await summary();

  // The audit: every recording once, byte-exact, one receipt each, one chain.
  const problems = [];
  for (const d of docks) if (d.code !== 0) problems.push(`${d.name} exited ${d.code ?? 'not at all (timeout)'} (see ${join(dir, `${d.name}.log`)})`);
  const live = servers.find((s) => s.child.exitCode === null && !s.child.signalCode);
  for (const e of expected) {
    const { recordings: list } = await (await fetch(`${live.url}/v1/recordings`, { headers: { authorization: `Bearer ${tokens[e.dock]}` } })).json();
    const entry = list.find((r) => r.sha256 === e.sha256);
    if (!entry || entry.state !== 'complete') { problems.push(`${e.dock}: ${e.path} (${e.sha256.slice(0, 12)}…) not complete on the server`); continue; }
    const bytes = Buffer.from(await (await fetch(`${live.url}/v1/recordings/${encodeURIComponent(entry.id)}/content`, { headers: { authorization: `Bearer ${tokens[e.dock]}` } })).arrayBuffer());
    if (createHash('sha256').update(bytes).digest('hex') !== e.sha256) problems.push(`${entry.id}: read back differs`);
  }
  const receipts = (await db.query("SELECT count(*) AS n, count(DISTINCT line::json->>'dockId' || '/' || (line::json->>'recordingId')) AS distinct_ FROM custody_entries WHERE line::json->>'event' = 'receipt-issued'")).rows[0];
  if (Number(receipts.n) !== Number(receipts.distinct_)) problems.push(`${receipts.n} receipt entries for ${receipts.distinct_} recordings`);
  const chain = (await db.query('SELECT count(*) AS n, count(DISTINCT seq) AS d, min(seq) AS lo, max(seq) AS hi FROM custody_entries')).rows[0];
  if (!(Number(chain.n) === Number(chain.d) && Number(chain.lo) === 1 && Number(chain.hi) === Number(chain.n))) problems.push(`custody chain: ${chain.n} entries, ${chain.d} distinct seqs, ${chain.lo}..${chain.hi}`);
  // Wait for the exports of the last checkpoints (each server exports after each checkpoint).
  for (let i = 0; i < 100 && Number((await db.query('SELECT count(*) AS n FROM custody_checkpoints WHERE exported_at IS NULL')).rows[0].n) > 0; i++) await new Promise((r) => setTimeout(r, 200));
  const verify = spawnSync(process.execPath, [bin, 'server', 'verify-log', '--db', url, ...storeFlags()], { encoding: 'utf8', env: { ...process.env, ...engineEnv } });
  say(`${t()} verify-log --db --store: ${verify.stdout.trim()}`);
  if (verify.status !== 0) problems.push(`verify-log failed: ${verify.stdout.trim()} ${verify.stderr.trim().slice(0, 300)}`);
  const scrub = spawnSync(process.execPath, [bin, 'server', 'scrub', '--db', url, ...storeFlags()], { encoding: 'utf8', env: { ...process.env, ...engineEnv } });
  say(`${t()} scrub --db --store: ${scrub.stdout.trim()}`);
  if (scrub.status !== 0) problems.push('scrub failed');
  if (FAULTS && SERVERS > 2 && !killedInComplete) problems.push('the SIGKILL during completes did not happen');
  if (FAULTS && !pgRestarted) problems.push('the PostgreSQL restart did not happen');
  await db.end();
  say('');
  say(problems.length ? `PROBLEM:\n${problems.map((p) => `  - ${p}`).join('\n')}`
    : `Arrived: ${expected.length} recordings from ${CAMERAS} cameras over ${DOCKS} docks and ${SERVERS} servers, byte-exact, one receipt each, one custody chain${FAULTS ? ', through a server SIGKILL mid-upload, another during completes and a PostgreSQL restart' : ''}, in ${t().trim()}.`);
  return problems.length ? 1 : 0;
}

async function cleanup() {
  for (const child of children) child.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 500));
  for (const child of children) child.kill('SIGKILL');
  // A restarted postmaster has a pid engines.sh did not record: stop it here, then the rest.
  const data = join(dir, 'engines', 'pg', 'data');
  if (enginesUp && existsSync(join(data, 'postmaster.pid'))) spawnSync('runuser', ['-u', 'postgres', '--', '/usr/lib/postgresql/15/bin/pg_ctl', '-D', data, '-m', 'fast', '-w', '-t', '20', 'stop'], { timeout: 30_000 });
  say(`${t()} stopping the engines…`);
  if (enginesUp) { try { engines('down'); } catch (e) { say(`engines down: ${e.message}`); } }
  if (KEEP) say(`kept ${dir}`); else rmSync(dir, { recursive: true, force: true });
}

let code = 1;
try {
  code = await main();
} catch (error) {
  say(`demo --scale failed: ${error.message}`);
} finally {
  await cleanup();
}
process.exit(code);
