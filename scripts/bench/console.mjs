// `npm run bench console`: the server with 100, 10 000 and 100 000 recordings held (issue 14's
// console pages under 100 ms at 10 000; issue 15's history flatness at 100 000 against 100).
// The state is written straight into a data dir in the formats the server keeps (recording
// records, a hash-chained custody log, possession rows, blobs for the recordings that are opened),
// not uploaded: what is measured is what the server does with a long history, not ingest.
// Measured per size: server start-up (after a clean stop; the first start, which builds the custody
// index and reads every record once for want of a checkpoint, separately), the first console
// page after start, p50/p95 of 30 requests per page (console list, list filtered by camera, a
// recording, docks, cameras; GET /v1/recordings?dock= first and next page, GET /v1/docks),
// `bodycam server report`, and the time from a segment stored to the console's playlist listing it.
// BENCH_CONSOLE_SIZES=100,10000 picks sizes.
import { mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeSync, closeSync, writeFileSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startIngestServer } from '../../dist/server/index.js';
import { quietLogger } from '../../dist/log.js';
import { formatDigestHeader, sha256Hex } from '../../dist/protocol/digest.js';
import { merkleRoot } from '../../dist/protocol/merkle.js';
import { generateSigningKeyPair, signObject } from '../../dist/protocol/signing.js';
import { PROTOCOL_VERSION } from '../../dist/protocol/types.js';
import { Possession } from '../../dist/server/possession.js';
import { UserStore } from '../../dist/server/console/users.js';
import { serverReport } from '../../dist/server/operator/report.js';
import { planSegments } from '../../dist/dock/planner.js';
import { mediaSummary, probe } from '../../dist/media/probe.js';

const SIZES = (process.env.BENCH_CONSOLE_SIZES ?? '100,10000,100000').split(',').map(Number);
const DOCKS = 20;
const CAMERAS = 160;
const SEGMENTS = 4;
const ROUNDS = 30;
const PASSWORD = 'bench password 1234';
const ADMIN = randomBytes(32).toString('base64url');
const tokenOf = (dock) => createHash('sha256').update(`bench token ${dock}`).digest('base64url');
const dockIds = Array.from({ length: DOCKS }, (_, i) => `dock-${String(i).padStart(2, '0')}`);
const tokens = Object.fromEntries(dockIds.map((d) => [d, tokenOf(d)]));
const dockKeys = generateSigningKeyPair();
const lineHash = (line) => createHash('sha256').update(line, 'utf8').digest('hex');

/** A fixture camera file cut by the dock's planner: the bytes behind the recordings that are opened. */
async function fixture() {
  const root = new URL('../../fixtures/cameras/fmp4-h264/', import.meta.url).pathname;
  const folder = join(root, 'DCIM', '100BWC');
  const name = readdirSync(folder).find((f) => !f.endsWith('.json'));
  const path = join(folder, name);
  const file = readFileSync(path);
  const probed = await probe(path);
  const media = mediaSummary(probed);
  const plan = await planSegments(path, file.length, { segmentSeconds: 1, maxBytes: 8 << 20, formatName: probed.formatName });
  const segments = plan.segments.map((s) => ({ ...s, sha256: sha256Hex(file.subarray(s.offset, s.offset + s.length)) }));
  return { file, name, media, segments, sha256: sha256Hex(file) };
}

function manifestFor(dockId, id, serial, seq, fix, real) {
  const segments = real ? fix.segments : Array.from({ length: SEGMENTS }, (_, i) => ({ index: i, offset: i * 1000, length: 1000, sha256: sha256Hex(`${id}/${i}`) }));
  const size = real ? fix.file.length : SEGMENTS * 1000;
  const unsigned = {
    protocol: PROTOCOL_VERSION, recordingId: id,
    device: { serial, model: 'BWC-1', firmware: '1.0', sidecar: { recordingId: `${serial}-${seq}`, seq, category: ['traffic', 'arrest', 'interview'][seq % 3], officerId: `officer-${serial}`, trigger: 'button' } },
    dock: { id: dockId, publicKeyPem: dockKeys.publicKeyPem, bay: String(seq % 8 + 1) },
    file: { name: `BWC_${seq}.mp4`, size, sha256: real ? fix.sha256 : sha256Hex(id), media: fix.media },
    integrity: { status: 'verified', notes: [] },
    segments, merkleRoot: merkleRoot(segments.map((s) => s.sha256)), createdAt: new Date().toISOString(),
  };
  return signObject(unsigned, dockKeys.privateKeyPem);
}

/** Write `count` complete recordings (and their custody entries) into a fresh data dir. */
async function buildState(count, fix) {
  const dir = mkdtempSync(join(tmpdir(), `bench-console-${count}-`));
  for (const sub of ['recordings', 'blobs', 'tmp']) mkdirSync(join(dir, sub), { recursive: true, mode: 0o700 });
  for (const d of dockIds) mkdirSync(join(dir, 'recordings', d), { mode: 0o700 });
  const log = openSync(join(dir, 'custody.log'), 'w', 0o600);
  let prev = '0'.repeat(64);
  let seq = 0;
  let buffered = [];
  const append = (fields) => {
    const line = JSON.stringify({ seq: ++seq, time: new Date().toISOString(), ...fields, prev });
    prev = lineHash(line);
    buffered.push(line);
    if (buffered.length >= 4096) { writeSync(log, buffered.join('\n') + '\n'); buffered = []; }
    return seq;
  };
  const opened = [];
  const day = Date.now() - 30 * 86400_000;
  for (let i = 0; i < count; i++) {
    const dockId = dockIds[i % DOCKS];
    const camera = i % CAMERAS;
    const serial = `CAM${String(camera).padStart(4, '0')}`;
    const cameraSeq = Math.floor(i / CAMERAS) + 1;
    const id = `${serial}-${String(cameraSeq).padStart(6, '0')}-${sha256Hex(String(i)).slice(0, 16)}`;
    const real = i === count - 1 || i === Math.floor(count / 2);
    const manifest = manifestFor(dockId, id, serial, cameraSeq, fix, real);
    const createdAt = new Date(day + Math.floor((i / count) * 30 * 86400_000)).toISOString();
    append({ event: 'recording-created', recordingId: id, dockId, sha256: manifest.file.sha256 });
    for (const s of manifest.segments) append({ event: 'segment-stored', recordingId: id, dockId, sha256: s.sha256, index: s.index });
    const custodySeq = append({ event: 'receipt-issued', recordingId: id, dockId, sha256: manifest.file.sha256 });
    const receipt = { protocol: PROTOCOL_VERSION, recordingId: id, dockId, sha256: manifest.file.sha256, size: manifest.file.size, segmentCount: manifest.segments.length, merkleRoot: manifest.merkleRoot, receivedAt: createdAt, serverKeyId: 'bench', custodySeq, custodyPrevHash: '0'.repeat(64), signature: 'bench' };
    writeFileSync(join(dir, 'recordings', dockId, `${id}.json`), JSON.stringify({ manifest, createdAt, receipt, completedAt: createdAt }), { mode: 0o600 });
    if (real) opened.push({ dockId, id, manifest });
  }
  writeSync(log, buffered.length ? buffered.join('\n') + '\n' : '');
  closeSync(log);
  const possession = Possession.open(join(dir, 'possession.sqlite'));
  for (const { dockId, manifest } of opened) {
    for (const s of manifest.segments) {
      mkdirSync(join(dir, 'blobs', s.sha256.slice(0, 2)), { recursive: true, mode: 0o700 });
      writeFileSync(join(dir, 'blobs', s.sha256.slice(0, 2), s.sha256), fix.file.subarray(s.offset, s.offset + s.length), { mode: 0o600 });
      await possession.add(dockId, s.sha256);
    }
  }
  await possession.close();
  await new UserStore(dir).add('ada', 'admin', PASSWORD);
  return { dir, opened };
}

const quantile = (xs, q) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(q * s.length))]; };
const ms = (t0) => Number(process.hrtime.bigint() - t0) / 1e6;

async function timed(fn) { const t0 = process.hrtime.bigint(); await fn(); return ms(t0); }

async function start(dir) {
  let server;
  const t = await timed(async () => { server = await startIngestServer({ dataDir: dir, tokens, adminToken: ADMIN, logger: quietLogger(), host: '127.0.0.1', port: 0 }); });
  return { server, ms: t };
}

async function signIn(url) {
  const r = await fetch(`${url}/console/login`, { method: 'POST', redirect: 'manual', headers: { origin: url, 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ name: 'ada', password: PASSWORD }) });
  await r.arrayBuffer();
  return /^([^;]+)/.exec(r.headers.get('set-cookie'))[1];
}

async function fetchOk(url, headers) {
  const r = await fetch(url, { headers, redirect: 'manual' });
  const body = await r.text();
  if (r.status !== 200) throw new Error(`${url}: ${r.status} ${body.slice(0, 300)}`);
  return body;
}

/** ms to the first answer (200, or 503 while the catalog is being built) and to the first 200, asking again as Retry-After says. */
async function firstAnswers(url, headers) {
  const t0 = process.hrtime.bigint();
  let first;
  for (;;) {
    const r = await fetch(url, { headers, redirect: 'manual' });
    await r.text();
    first ??= { ms: ms(t0), status: r.status };
    if (r.status === 200) return { first: first.ms, firstStatus: first.status, full: ms(t0) };
    if (r.status !== 503) throw new Error(`${url}: ${r.status}`);
    await new Promise((resolve) => setTimeout(resolve, 1000 * Number(r.headers.get('retry-after') ?? 1)));
  }
}

async function measure(count, fix) {
  const built = await timed(async () => {});
  const t0 = process.hrtime.bigint();
  const { dir, opened } = await buildState(count, fix);
  if (process.env.BENCH_VERBOSE) console.log("built", count);
  const buildMs = ms(t0);
  const first = await start(dir);
  if (process.env.BENCH_VERBOSE) console.log('first start', first.ms);
  // The catalog is built in the background from the start: the first answer (503 while building) and the first full one.
  const firstAnswer = await firstAnswers(`${first.server.url}/v1/docks`, { authorization: `Bearer ${ADMIN}` });
  const firstPage = firstAnswer.full;
  if (process.env.BENCH_VERBOSE) console.log('first /v1/docks', firstAnswer);
  await first.server.close();
  const again = await start(dir);
  const { server } = again;
  const cookie = await signIn(server.url);
  const c = { cookie };
  const a = { authorization: `Bearer ${ADMIN}` };
  const cold = await firstAnswers(`${server.url}/console/recordings`, c);
  const coldList = cold.full;
  const target = opened[opened.length - 1];
  const firstPageApi = JSON.parse(await fetchOk(`${server.url}/v1/recordings?dock=${dockIds[3]}&limit=100`, a));
  const pages = {
    'console list': `/console/recordings`,
    'console list, one camera': `/console/recordings?device=CAM0007`,
    'console recording': `/console/recordings/${target.dockId}/${encodeURIComponent(target.id)}`,
    'console docks': '/console/docks',
    'console cameras': '/console/cameras',
    'GET /v1/recordings?dock= (100)': `/v1/recordings?dock=${dockIds[3]}&limit=100`,
    'GET /v1/recordings?dock= next page': `/v1/recordings?dock=${dockIds[3]}&limit=100${firstPageApi.next ? `&cursor=${firstPageApi.next}` : ''}`,
    'GET /v1/docks': '/v1/docks',
  };
  const figures = {};
  for (const [name, path] of Object.entries(pages)) {
    const headers = path.startsWith('/v1/') ? a : c;
    await fetchOk(server.url + path, headers); // warm (the recording's content check runs once)
    const times = [];
    for (let i = 0; i < ROUNDS; i++) times.push(await timed(() => fetchOk(server.url + path, headers)));
    figures[name] = [quantile(times, 0.5), quantile(times, 0.95)];
    if (process.env.BENCH_VERBOSE) console.log(name, figures[name]);
  }
  // A segment stored → the console's playlist lists it (a recording still arriving, real fMP4 bytes; dock-01 holds none of them before).
  const live = `${fix.segments.length}-live-${randomBytes(4).toString('hex')}`;
  const manifest = manifestFor(dockIds[1], `LIVE-${live}`, 'CAM9999', 1, fix, true);
  const api = (path, init = {}) => fetch(server.url + path, { ...init, headers: { authorization: `Bearer ${tokens[dockIds[1]]}`, ...(init.headers ?? {}) } });
  const created = await api('/v1/recordings', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(manifest) });
  if (created.status !== 201) throw new Error(`create ${created.status} ${await created.text()}`);
  const playlist = `${server.url}/console/recordings/${dockIds[1]}/${encodeURIComponent(manifest.recordingId)}/playlist.m3u8`;
  const playable = [];
  for (const s of manifest.segments) {
    const body = fix.file.subarray(s.offset, s.offset + s.length);
    const put = await api(`/v1/recordings/${manifest.recordingId}/segments/${s.index}`, { method: 'PUT', headers: { 'content-type': 'application/octet-stream', 'content-digest': formatDigestHeader(s.sha256) }, body });
    if (put.status !== 201 && put.status !== 200) throw new Error(`segment ${put.status} ${await put.text()}`);
    const t = process.hrtime.bigint();
    for (let tries = 0; ; tries++) {
      const text = await fetchOk(playlist, c);
      if ((text.match(/#EXTINF/g) ?? []).length === s.index + 1) break;
      if (tries > 1000) throw new Error(`segment ${s.index} never appeared in the playlist:\n${text}`);
    }
    playable.push(ms(t));
  }
  if (process.env.BENCH_VERBOSE) console.log('playable', playable);
  const reportMs = await timed(() => serverReport({ dataDir: dir }));
  const rss = process.memoryUsage().rss;
  // The catalog's share: the heap with the server's catalog loaded, after a full GC (node --expose-gc).
  globalThis.gc?.();
  const heap = process.memoryUsage().heapUsed;
  await server.close();
  const reportAfterStop = await timed(() => serverReport({ dataDir: dir }));
  const third = await start(dir);
  const coldListAfterSnapshot = (await firstAnswers(`${third.server.url}/console/recordings`, { cookie: await signIn(third.server.url) })).full;
  await third.server.close();
  rmSync(dir, { recursive: true, force: true });
  void built;
  return { count, buildMs, firstStartMs: first.ms, firstRequestAfterFirstStart: firstPage, firstAnswer, cold, startMs: again.ms, coldList, figures, playable, reportMs, reportAfterStop, thirdStart: third.ms, coldListAfterSnapshot, rss, heap };
}

const fix = await fixture();
const results = [];
for (const count of SIZES) {
  const r = await measure(count, fix);
  results.push(r);
  console.log(`\n${count} recordings (state written in ${(r.buildMs / 1000).toFixed(1)} s)`);
  console.log(`  start-up: first ${r.firstStartMs.toFixed(0)} ms (then GET /v1/docks answers ${r.firstAnswer.firstStatus} in ${r.firstAnswer.first.toFixed(0)} ms, 200 after ${r.firstRequestAfterFirstStart.toFixed(0)} ms), after a clean stop ${r.startMs.toFixed(0)} ms; first console list after start: ${r.cold.firstStatus} in ${r.cold.first.toFixed(0)} ms, full after ${r.coldList.toFixed(0)} ms`);
  for (const [name, [p50, p95]] of Object.entries(r.figures)) console.log(`  ${name.padEnd(36)} p50 ${p50.toFixed(1)} ms  p95 ${p95.toFixed(1)} ms`);
  console.log(`  bodycam server report: ${r.reportMs.toFixed(0)} ms beside the running server, ${r.reportAfterStop.toFixed(0)} ms after its clean stop`);
  console.log(`  third start ${r.thirdStart.toFixed(0)} ms, then the first console list (sign-in included) ${r.coldListAfterSnapshot.toFixed(0)} ms`);
  console.log(`  segment stored -> in the playlist: ${r.playable.map((x) => x.toFixed(1)).join(', ')} ms (one request each)`);
  console.log(`  bench process RSS ${(r.rss / 2 ** 20).toFixed(0)} MiB, heap after GC ${(r.heap / 2 ** 20).toFixed(0)} MiB (${(r.heap / r.count).toFixed(0)} B per recording)`);
}
