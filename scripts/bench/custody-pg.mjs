#!/usr/bin/env node
// Custody appends/s one PostgreSQL sustains with the chain serialised on its head row
// (src/server/pg/pgCustody.ts): S "servers" (each its own PgCustodyChain and pool, as separate
// processes would have), C concurrent appenders each, for T seconds; then the chain is verified.
//   DATABASE_URL=postgres://… node scripts/bench/custody-pg.mjs [servers=3] [concurrency=32] [seconds=10] [receiptEvery=3]
// Without DATABASE_URL a throw-away cluster is started (Debian's PostgreSQL, durable: fsync on,
// synchronous_commit on, as production would run), and removed after. Run `npm run build` first.
import { execFileSync, spawnSync } from 'node:child_process';
import { createPrivateKey } from 'node:crypto';
import { chownSync, mkdtempSync, rmSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

const { openPgState } = await import('../../dist/server/pg/pgState.js');
const { verifyPgCustody } = await import('../../dist/server/pg/pgExport.js');
const { generateSigningKeyPair, keyIdOf } = await import('../../dist/protocol/signing.js');
const { quietLogger } = await import('../../dist/log.js');

const [servers = 3, concurrency = 32, seconds = 10, receiptEvery = 3] = process.argv.slice(2).map(Number);
let url = process.env.DATABASE_URL;
let dir;
const bin = `/usr/lib/postgresql/${readdirSync('/usr/lib/postgresql').sort().pop()}/bin`;
const asPg = (cmd, args) => { const r = spawnSync('runuser', ['-u', 'postgres', '--', join(bin, cmd), ...args], { encoding: 'utf8' }); if (r.status) throw new Error(r.stderr); };
if (!url) {
  dir = mkdtempSync(join(tmpdir(), 'bodycam-bench-pg-'));
  chownSync(dir, Number(execFileSync('id', ['-u', 'postgres']).toString()), Number(execFileSync('id', ['-g', 'postgres']).toString()));
  asPg('initdb', ['-D', join(dir, 'data'), '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C.UTF-8']);
  const port = 20000 + Math.floor(Math.random() * 20000);
  asPg('pg_ctl', ['-D', join(dir, 'data'), '-l', join(dir, 'log'), '-w', '-o', `-c listen_addresses=127.0.0.1 -c port=${port} -c unix_socket_directories=${dir}`, 'start']);
  url = `postgres://postgres@127.0.0.1:${port}/postgres`;
}
const admin = new pg.Client({ connectionString: url });
await admin.connect();
const db = `bench_custody_${Date.now()}`;
await admin.query(`CREATE DATABASE ${db}`);
const benchUrl = Object.assign(new URL(url), { pathname: `/${db}` }).toString();
const pair = generateSigningKeyPair();
const serverKey = { privateKey: createPrivateKey(pair.privateKeyPem), publicKeyPem: pair.publicKeyPem, keyId: keyIdOf(pair.publicKeyPem) };
const states = [];
for (let i = 0; i < servers; i++) states.push(await openPgState(benchUrl, { serverKey, log: quietLogger(), poolSize: 4 }));
const cpu0 = process.cpuUsage();
const t0 = performance.now();
const deadline = t0 + seconds * 1000;
let appended = 0;
let receipts = 0;
let n = 0;
async function worker(state) {
  while (performance.now() < deadline) {
    const i = n++;
    const event = i % receiptEvery === receiptEvery - 1 ? 'receipt-issued' : 'segment-stored';
    const fields = { event, recordingId: `R-${i}`, dockId: `dock-${i % 700}`, sha256: i.toString(16).padStart(64, '0') };
    if (event === 'receipt-issued') { await state.custody.append(fields, () => ({ extra: { receiptSignature: 'x'.repeat(86) }, value: undefined })); receipts++; }
    else await state.custody.appendUnlessMentioned(fields, { index: 0, length: 16 << 20 });
    appended++;
  }
}
await Promise.all(states.flatMap((s) => Array.from({ length: concurrency }, () => worker(s))));
const elapsed = (performance.now() - t0) / 1000;
const cpu = process.cpuUsage(cpu0);
for (const s of states) await s.close();
const report = await verifyPgCustody(benchUrl);
const size = (await admin.query(`SELECT pg_database_size('${db}') AS b`)).rows[0].b;
console.log(JSON.stringify({
  servers, concurrencyPerServer: concurrency, seconds: Number(elapsed.toFixed(1)), durable: !process.env.DATABASE_URL,
  appends: appended, appendsPerSecond: Math.round(appended / elapsed), receiptsPerSecond: Math.round(receipts / elapsed),
  clientCpuPercent: Math.round(((cpu.user + cpu.system) / 1e6 / elapsed) * 100), databaseBytesPerEntry: Math.round(Number(size) / Math.max(1, report.entries)),
  verify: { ok: report.ok, entries: report.entries, checkpoints: report.checkpoints },
}));
await admin.query(`DROP DATABASE ${db} WITH (FORCE)`);
await admin.end();
if (dir) { asPg('pg_ctl', ['-D', join(dir, 'data'), '-m', 'fast', '-w', 'stop']); rmSync(dir, { recursive: true, force: true }); }
