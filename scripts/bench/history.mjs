// Dock history (issue 15): what start-up, one scheduling pass, `status`, the operator's lists and a
// scan's path lookup cost with 100 and with 100,000 finished recordings in the journal, the
// migration of an older build's journal of 100,000 rows, and the retention rule pruning them; then
// 16 bays × 8 cameras (128 cameras, one recording each) docked at once into a running `bodycam dock`:
// the time from docking to the first segment byte at the server, and the scheduling pass over them.
// The journals are built directly in SQL (rows, segments, receipts as a year of use leaves them),
// not by uploading video. `npm run bench history` (after `npm run build`); inputs are deleted.
import Database from 'better-sqlite3';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DockAgentCore } from '../../dist/dock/agent.js';
import { loadDockConfig } from '../../dist/dock/config.js';
import { Journal } from '../../dist/dock/journal.js';
import { pruneFinished } from '../../dist/dock/retention.js';
import { recordCamera, dockCamera } from '../../dist/camera/index.js';
import { startIngestServer } from '../../dist/server/index.js';
import { quietLogger } from '../../dist/log.js';

const BIN = fileURLToPath(new URL('../../bin/bodycam.js', import.meta.url));
const root = mkdtempSync(join(tmpdir(), 'bodycam-bench-history-'));
process.env.BODYCAM_TILE_CACHE = join(root, 'tiles');
const TOKEN = randomBytes(32).toString('base64url');
writeFileSync(join(root, 'token'), TOKEN + '\n', { mode: 0o600 });
const load = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
const DAY = 86_400_000;

/** Median of `rounds` timings of fn (ms), after one warm-up. */
async function timed(fn, rounds = 15) {
  await fn();
  const times = [];
  for (let i = 0; i < rounds; i++) {
    const t = process.hrtime.bigint();
    await fn();
    times.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

/**
 * A journal of `finished` rows as a year of use leaves them: 128 cameras whose file names repeat
 * after every wipe, 3 segments each, receipts, a few quarantined and flagged; plus `active` rows.
 */
function seedJournal(stateDir, finished, active = 0, { oldSchema = false } = {}) {
  Journal.open(stateDir).close();
  const db = new Database(join(stateDir, 'journal.sqlite'));
  db.pragma('synchronous = OFF');
  const now = Date.now();
  const info = JSON.stringify({ recordedAt: now, planKind: 'fmp4', integrity: 'verified', formatName: 'mov,mp4,m4a,3gp,3g2,mj2' });
  const stat = (i) => JSON.stringify({ size: 50_000_000 + i, mtimeMs: now - i * 1000, ino: 1000 + i, dev: 2049, ctimeMs: now - i * 1000, sidecar: { size: 900, mtimeMs: now, ino: 5000 + i, dev: 2049, ctimeMs: now } });
  const receipt = (i) => JSON.stringify({ type: 'receipt', version: 1, recordingId: `CAM${i % 128}-${'ab'.repeat(16)}-${i.toString(16).padStart(16, '0')}`, sha256: 'cd'.repeat(32), size: 50_000_000 + i, dockId: 'bench', receivedAt: new Date(now).toISOString(), keyId: 'k', signature: 'x'.repeat(86) });
  const insert = db.prepare(`INSERT INTO recordings (key, uid, serial, file_name, rel_path, bay, size, mtime_ms, state, reason, reason_code, recording_id, sha256, critical,
    detected_at, updated_at, attempts, next_attempt_at, info_json, manifest_json, receipt_json, stat_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, 0, 0, ?, ?, ?, ?)`);
  const segment = db.prepare('INSERT INTO segments (rkey, idx, offset, length, sha256, acked) VALUES (?, ?, ?, ?, ?, 1)');
  db.transaction(() => {
    for (let i = 0; i < finished + active; i++) {
      const key = i.toString(16).padStart(16, '0');
      const isActive = i >= finished;
      const state = isActive ? 'detected' : i % 500 === 7 ? 'quarantined' : i % 3 === 0 ? 'completed' : 'wiped';
      const name = `FILE${String(i % 1000).padStart(4, '0')}.MP4`;
      // Spread over the last year, oldest first.
      const at = now - Math.floor(((finished + active - i) / (finished + active)) * 365 * DAY);
      const flaggedInfo = i % 997 === 3 ? JSON.stringify({ recordedAt: at, integrity: 'hash-mismatch' }) : info;
      insert.run(key, key, `CAM${i % 128}`, name, `DCIM/100BWC/${name}`, `bay${i % 16}`, 50_000_000 + i, now - i * 1000, state,
        state === 'quarantined' ? 'not a media file' : null, state === 'quarantined' ? 'not_media' : null, isActive ? null : `CAM${i % 128}-${'ab'.repeat(16)}-${key}`,
        isActive ? null : 'cd'.repeat(32), at, isActive ? now : at, isActive ? '{}' : flaggedInfo, isActive ? null : '{"manifest":"…"}', isActive || state === 'quarantined' ? null : receipt(i), stat(i));
      if (!isActive) for (let s = 0; s < 3; s++) segment.run(key, s, s * 16_777_216, 16_777_216, 'ef'.repeat(32));
    }
  })();
  if (oldSchema) {
    // As the build before this one left a journal: its two indexes, no counters.
    db.exec(`DROP TRIGGER recordings_count_insert; DROP TRIGGER recordings_count_delete; DROP TRIGGER recordings_count_update; DROP TABLE recording_counts;
      DROP INDEX recordings_state_detected; DROP INDEX recordings_rel_path; DROP INDEX recordings_updated; DROP INDEX recordings_recording_id; DROP INDEX recordings_attention;
      CREATE INDEX recordings_state ON recordings(state); CREATE INDEX recordings_path ON recordings(serial, rel_path);`);
  }
  db.close();
}

function configFor(stateDir, bays, endpoint, extra = {}) {
  mkdirSync(bays, { recursive: true });
  writeFileSync(join(root, 'token'), TOKEN + '\n', { mode: 0o600 });
  return loadDockConfig({ flags: { bays, endpoint, tokenFile: join(root, 'token'), stateDir, dockId: 'bench', statusPort: 0, logLevel: 'silent', retainFinished: '0s', ...extra }, env: {} });
}

const results = {};

async function flatness(n) {
  const stateDir = join(root, `state-${n}`);
  const t0 = process.hrtime.bigint();
  seedJournal(stateDir, n, 100);
  const seedMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const bays = join(root, `bays-${n}`);
  const r = { seedMs };
  const silent = quietLogger();
  // Start-up: open (lock, journal, keys, pin) + start (scan of the bays, first pump) + stop; --once and service mode.
  for (const once of [false, true]) {
    r[once ? 'startOnce' : 'start'] = await timed(async () => {
      const core = await DockAgentCore.open(configFor(stateDir, bays, 'http://127.0.0.1:9', { once, wipeAfterIngest: false }), { logger: silent });
      await core.start();
      await core.stop();
    }, 7);
  }
  // One agent, kept open, wiping on (completed rows are candidates for a wipe): passes and reads.
  const core = await DockAgentCore.open(configFor(stateDir, bays, 'http://127.0.0.1:9', { wipeAfterIngest: false }), { logger: silent });
  const scheduler = core.scheduler;
  const state = core.state;
  state.initialScanDone = true;
  r.pass = await timed(() => { scheduler.rowsChanged(); scheduler.prepareQueues(); scheduler.runnable(); });
  state.config.wipeAfterIngest = true;
  r.passWiping = await timed(() => { scheduler.runnable(); });
  state.config.wipeAfterIngest = false;
  let statusBytes = 0;
  r.status = await timed(() => { statusBytes = JSON.stringify(core.status()).length; });
  r.statusBytes = statusBytes;
  const journal = core.journal;
  r.listByPath = await timed(() => journal.listByPath('CAM5', 'DCIM/100BWC/FILE0005.MP4'), 50);
  r.attentionPage = await timed(() => journal.listNeedingAttention(0, 500));
  r.receiptedPage = await timed(() => journal.listReceipted(Math.floor(n / 2), 500));
  r.findByRef = await timed(() => journal.findByRef('bay5/DCIM/100BWC/FILE0005.MP4'));
  global.gc?.();
  r.heapMiB = process.memoryUsage().heapUsed / 2 ** 20;
  await core.stop();
  // The retention rule over all of it (rows older than 30 days: ~11/12 of the year).
  const pruneJournal = Journal.open(stateDir);
  const tp = process.hrtime.bigint();
  const pruned = await pruneFinished({ journal: pruneJournal, stateDir, retainSeconds: 30 * 86_400, now: Date.now(), inUse: () => false, yieldTurn: () => new Promise((res) => setImmediate(res)) });
  r.pruneMs = Number(process.hrtime.bigint() - tp) / 1e6;
  r.pruned = pruned.pruned;
  pruneJournal.close();
  rmSync(stateDir, { recursive: true, force: true });
  // An older build's journal of n rows, opened by this one (indexes + counters made once).
  const oldDir = join(root, `old-${n}`);
  seedJournal(oldDir, n, 0, { oldSchema: true });
  const tm = process.hrtime.bigint();
  Journal.open(oldDir).close();
  r.migrateMs = Number(process.hrtime.bigint() - tm) / 1e6;
  rmSync(oldDir, { recursive: true, force: true });
  results[n] = r;
}

console.log(`dock history benchmark, ${new Date().toISOString()}, load ${load()}, ${root}`);
try {
  for (const n of process.env.BENCH_HISTORY_SKIP_FLAT ? [] : [100, 100_000]) {
    await flatness(n);
    console.log(`${n} rows done, load ${load()}`);
  }
  if (process.env.BENCH_HISTORY_SKIP_FLAT) throw Object.assign(new Error('skipped'), { skipped: true });
  const a = results[100];
  const b = results[100_000];
  const row = (label, key, unit = 'ms', digits = 2) => console.log(`${label.padEnd(44)} ${a[key].toFixed(digits).padStart(10)} ${b[key].toFixed(digits).padStart(10)} ${unit}`);
  console.log(`${'finished rows in the journal'.padEnd(44)} ${'100'.padStart(10)} ${'100,000'.padStart(10)}`);
  row('build the journal (SQL, not measured below)', 'seedMs');
  row('start-up + stop, service (median of 7)', 'start');
  row('start-up + stop, --once (median of 7)', 'startOnce');
  row('one scheduling pass (prepare queues + runnable)', 'pass');
  row('one scheduling pass, wipeAfterIngest', 'passWiping');
  row('status() + JSON', 'status');
  row('status JSON size', 'statusBytes', 'bytes', 0);
  row('scan: rows at a reused path (listByPath)', 'listByPath', 'ms', 3);
  row('quarantine list: one page', 'attentionPage');
  row('check: one page of receipts', 'receiptedPage');
  row('quarantine show by bay/path', 'findByRef', 'ms', 3);
  row('heap after status', 'heapMiB', 'MiB', 1);
  row('migrate an older build\'s journal on open', 'migrateMs');
  row('retention: prune rows > 30 days, archive', 'pruneMs');
  row('  rows pruned', 'pruned', 'rows', 0);
} catch (error) {
  if (!error.skipped) { console.error(error); process.exitCode = 1; } else console.log('flatness part skipped (BENCH_HISTORY_SKIP_FLAT)');
}

// ---- 16 bays × 8 cameras docked at once into a running agent ------------------------------------
let server;
try {
  const CAMERAS = Number(process.env.BENCH_HISTORY_CAMERAS ?? 128);
  server = await startIngestServer({ dataDir: join(root, 'server'), tokens: { bench: TOKEN }, host: '127.0.0.1', port: 0, logger: quietLogger() });
  const staging = join(root, 'staging');
  mkdirSync(staging, { recursive: true });
  const tr = process.hrtime.bigint();
  for (let i = 0; i < CAMERAS; i++) {
    const storage = join(root, `cam${i}`);
    await recordCamera({ storage, count: 1, durationSeconds: 2, width: 160, height: 120, fps: 10, seed: `history-${i}` });
    await dockCamera({ storage, bays: staging, bay: `rack${Math.floor(i / 8)}-slot${i % 8}` });
  }
  console.log(`\n${CAMERAS} cameras recorded in ${(Number(process.hrtime.bigint() - tr) / 1e9).toFixed(0)} s`);
  const bays = join(root, 'bays-live');
  mkdirSync(bays, { recursive: true });
  const stateDir = join(root, 'state-live');
  const dock = spawn(process.execPath, [BIN, 'dock', '--bays', bays, '--endpoint', server.url, '--token-file', join(root, 'token'), '--state-dir', stateDir,
    '--dock-id', 'bench', '--status-port', '0', '--rescan-interval', '10s'], { stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, BODYCAM_LOG_LEVEL: process.env.BENCH_HISTORY_LOG ? 'debug' : 'warn', ...(process.env.BENCH_HISTORY_LOG ? { BODYCAM_LOG_FILE: process.env.BENCH_HISTORY_LOG } : {}) } });
  let stderr = '';
  dock.stderr.on('data', (d) => { stderr = (stderr + d).slice(-4000); });
  const metric = async () => Number(/^bodycam_segment_bytes_received_total (\d+)/m.exec(await (await fetch(server.url + '/metrics')).text())?.[1] ?? 0);
  // Running and idle: its status port is written.
  for (let i = 0; i < 300; i++) { try { JSON.parse(readFileSync(join(stateDir, 'status.json'), 'utf8')); break; } catch { await new Promise((r) => setTimeout(r, 100)); } }
  await new Promise((r) => setTimeout(r, 1000));
  const loadBefore = load();
  const t0 = process.hrtime.bigint();
  console.log(`  docking at ${new Date().toISOString()}`);
  for (const name of (await import('node:fs')).readdirSync(staging)) renameSync(join(staging, name), join(bays, name));
  const docked = Number(process.hrtime.bigint() - t0) / 1e6;
  let firstByte;
  for (;;) {
    if (await metric() > 0) { firstByte = Number(process.hrtime.bigint() - t0) / 1e6; break; }
    if (Number(process.hrtime.bigint() - t0) > 120e9) throw new Error(`no byte at the server after 120 s: ${stderr}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  const port = JSON.parse(readFileSync(join(stateDir, 'status.json'), 'utf8')).port;
  let all;
  for (;;) {
    const status = await (await fetch(`http://127.0.0.1:${port}/status`)).json();
    if (status.queue.completed >= CAMERAS) { all = Number(process.hrtime.bigint() - t0) / 1e6; break; }
    if (Number(process.hrtime.bigint() - t0) > 600e9) throw new Error('not all completed after 600 s');
    await new Promise((r) => setTimeout(r, 100));
  }
  dock.kill('SIGTERM');
  await new Promise((r) => dock.once('exit', r));
  console.log(`${CAMERAS} cameras (16 racks × 8 slots) docked at once (renames took ${docked.toFixed(0)} ms), load before ${loadBefore}:`);
  console.log(`  first segment byte at the server ${firstByte.toFixed(0)} ms after docking; all ${CAMERAS} receipted after ${(all / 1000).toFixed(1)} s; load now ${load()}`);
  // The scheduling pass over those candidates: the same journal, the same 128 bays, in-process.
  const core = await DockAgentCore.open(configFor(stateDir, bays, server.url, { wipeAfterIngest: false }), { logger: quietLogger() });
  await core.watcher.scanAll();
  core.state.initialScanDone = true;
  const located = core.state.located.size;
  const pass = await timed(() => { core.scheduler.rowsChanged(); core.scheduler.prepareQueues(); core.scheduler.runnable(); });
  await core.stop();
  console.log(`  one scheduling pass over ${located} located recordings: ${pass.toFixed(2)} ms`);
} catch (error) {
  console.error(error);
  process.exitCode = 1;
} finally {
  await server?.close();
  rmSync(root, { recursive: true, force: true });
}
