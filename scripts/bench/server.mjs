// Segment PUT throughput of the ingest server (digest verified while streaming, fsynced, published
// by link) as a ratio to a bare node:http server that writes the same bodies to files (also fsynced),
// on loopback, with 1 and with 8 concurrent clients. Target: verification costs under 20%.
// The clients run in a child process, as a dock is another machine, so this process's CPU time is
// the server's alone. Bare and ingest rounds alternate so machine noise hits both alike.
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, createWriteStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { createServer, request, Agent } from 'node:http';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startIngestServer } from '../../dist/server/index.js';
import { quietLogger } from '../../dist/log.js';
import { formatDigestHeader, sha256Hex } from '../../dist/protocol/digest.js';
import { merkleRoot } from '../../dist/protocol/merkle.js';
import { generateSigningKeyPair, signObject } from '../../dist/protocol/signing.js';

const SEGMENT = Number(process.env.BENCH_SEGMENT_BYTES ?? 8 * 1024 * 1024);
const COUNT = Number(process.env.BENCH_SEGMENTS ?? 16);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
const TOKEN = randomBytes(32).toString('base64url'); // the server refuses weak tokens (src/server/auth.ts)

function put(agent, url, body, headers) {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'PUT', agent, headers: { 'content-length': String(body.length), 'content-type': 'application/octet-stream', ...headers } }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 201 ? resolve() : reject(new Error(`status ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const isClient = process.argv[2] === '--client';
if (isClient) {
  // Client side: PUT every segment with `concurrency` keep-alive connections, print MB/s.
  const { concurrency, seed, urls, headers } = JSON.parse(process.argv[3]);
  const segments = makeSegments(seed);
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const mbps = await timed(concurrency, segments, (i) => put(agent, urls[i], segments[i], headers[i]));
  agent.destroy();
  process.stdout.write(JSON.stringify({ mbps }));
}

/** Incompressible, reproducible bytes (AES-CTR keystream), the same in server and client processes. */
function makeSegments(seed) {
  const key = createHash('sha256').update(String(seed)).digest().subarray(0, 16);
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  return Array.from({ length: COUNT }, () => cipher.update(Buffer.alloc(SEGMENT)));
}

// Server cost from CPU time (user+system) of this process per MB: far less exposed to a busy
// machine than wall-clock throughput.
async function runClients(concurrency, seed, urls, headers) {
  const cpuBefore = process.cpuUsage();
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--client', JSON.stringify({ concurrency, seed, urls, headers })], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  const code = await new Promise((resolve) => child.on('close', resolve));
  if (code !== 0) throw new Error(`client exited ${code}`);
  const cpu = process.cpuUsage(cpuBefore);
  const { mbps } = JSON.parse(out);
  return { mbps, cpuMsPerMB: (cpu.user + cpu.system) / 1000 / ((COUNT * SEGMENT) / 1e6) };
}

async function timed(concurrency, segments, send) {
  let next = 0;
  const start = process.hrtime.bigint();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < segments.length) { const i = next++; await send(i); }
  }));
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  return (segments.length * SEGMENT) / seconds / 1e6; // MB/s
}

async function baselineServer(dir) {
  let n = 0;
  const server = createServer((req, res) => {
    const path = join(dir, `${n++}.bin`);
    const out = createWriteStream(path);
    req.pipe(out);
    out.on('finish', async () => {
      const fh = await open(path, 'r+'); await fh.sync(); await fh.close();
      res.statusCode = 201; res.end('{}');
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${server.address().port}`, close: () => new Promise((r) => { server.closeAllConnections(); server.close(r); }) };
}

async function ingestRound(concurrency, seed, segments) {
  const dir = mkdtempSync(join(tmpdir(), 'bench-ingest-'));
  const server = await startIngestServer({ dataDir: dir, tokens: { 'dock-b': TOKEN }, logger: quietLogger(), limits: { maxSegmentBytes: SEGMENT } });
  const keys = generateSigningKeyPair();
  const plan = segments.map((s, index) => ({ index, offset: index * SEGMENT, length: s.length, sha256: sha256Hex(s) }));
  const whole = sha256Hex(Buffer.concat(segments));
  const manifest = signObject({
    protocol: 'bodycam-ingest/1', recordingId: `BENCH-${whole.slice(0, 32)}`, device: { serial: 'BENCH' },
    dock: { id: 'dock-b', publicKeyPem: keys.publicKeyPem }, file: { name: 'bench.bin', size: SEGMENT * segments.length, sha256: whole },
    integrity: { status: 'unsigned', notes: [] }, segments: plan, merkleRoot: merkleRoot(plan.map((p) => p.sha256)), createdAt: new Date().toISOString(),
  }, keys.privateKeyPem);
  const created = await fetch(`${server.url}/v1/recordings`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify(manifest) });
  if (created.status !== 201) throw new Error(`create: ${created.status} ${await created.text()}`);
  try {
    return await runClients(concurrency, seed, segments.map((_, i) => `${server.url}/v1/recordings/${manifest.recordingId}/segments/${i}`), plan.map((p) => ({ authorization: `Bearer ${TOKEN}`, 'content-digest': formatDigestHeader(p.sha256) })));
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function baselineRound(concurrency, seed, segments) {
  const dir = mkdtempSync(join(tmpdir(), 'bench-bare-'));
  const server = await baselineServer(dir);
  try {
    return await runClients(concurrency, seed, segments.map((_, i) => `${server.url}/upload/${i}`), segments.map(() => ({})));
  } finally {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (!isClient) await main();

async function main() {
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

console.log(`segments: ${COUNT} x ${(SEGMENT / 1048576).toFixed(0)} MiB per run, ${ROUNDS} rounds (median), loopback, fsync on both sides`);
for (const concurrency of [1, 8]) {
  const verified = [];
  const bare = [];
  for (let r = 0; r < ROUNDS; r++) {
    const seed = `${concurrency}-${r}-${Date.now()}`; // fresh bytes each round: no dedupe
    const segments = makeSegments(seed);
    bare.push(await baselineRound(concurrency, seed, segments));
    verified.push(await ingestRound(concurrency, seed, segments));
  }
  const v = median(verified.map((r) => r.mbps));
  const b = median(bare.map((r) => r.mbps));
  // Each round's pair ran back to back on the same bytes: their ratio is less exposed to the noise
  // of a shared machine than the ratio of medians.
  const ratios = verified.map((x, i) => x.mbps / bare[i].mbps);
  const ratio = median(ratios);
  const busyV = median(verified.map((r) => r.cpuMsPerMB));
  const busyB = median(bare.map((r) => r.cpuMsPerMB));
  console.log(`clients=${concurrency}: throughput ingest (verified) ${v.toFixed(0)} MB/s, bare write ${b.toFixed(0)} MB/s (medians); paired ratio median ${ratio.toFixed(2)} [${Math.min(...ratios).toFixed(2)}..${Math.max(...ratios).toFixed(2)}], verification cost ${((1 - ratio) * 100).toFixed(0)}% ${1 - ratio < 0.2 ? '(target <20%: met)' : '(target <20%: NOT met)'}`);
  console.log(`clients=${concurrency}: server CPU per MB: ingest ${busyV.toFixed(2)} ms, bare ${busyB.toFixed(2)} ms; ingest/bare ${(busyV / busyB).toFixed(2)}`);
}
}

// Startup must not grow with the store: time startIngestServer on a data dir holding many
// recordings, blobs and custody entries (metadata only; blob sizes do not matter to startup).
async function startupOnFullDir() {
  const { mkdirSync, writeFileSync } = await import('node:fs');
  const dir = mkdtempSync(join(tmpdir(), 'bench-startup-'));
  const RECORDINGS = 2000;
  const BLOBS = 20000;
  for (let i = 0; i < BLOBS; i++) {
    const sha = sha256Hex(String(i));
    mkdirSync(join(dir, 'blobs', sha.slice(0, 2)), { recursive: true });
    writeFileSync(join(dir, 'blobs', sha.slice(0, 2), sha), 'x');
  }
  mkdirSync(join(dir, 'recordings'), { recursive: true });
  for (let i = 0; i < RECORDINGS; i++) writeFileSync(join(dir, 'recordings', `R${i}.json`), '{}');
  let prev = '0'.repeat(64);
  const lines = [];
  for (let seq = 1; seq <= 100000; seq++) {
    const line = JSON.stringify({ seq, time: new Date().toISOString(), event: 'segment-stored', recordingId: 'R', dockId: 'd', sha256: prev, prev });
    prev = sha256Hex(line);
    lines.push(line);
  }
  writeFileSync(join(dir, 'custody.log'), lines.join('\n') + '\n');
  const start = process.hrtime.bigint();
  const server = await startIngestServer({ dataDir: dir, tokens: { 'dock-b': TOKEN }, logger: quietLogger() });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  await server.close();
  rmSync(dir, { recursive: true, force: true });
  console.log(`startup on a data dir with ${RECORDINGS} recordings, ${BLOBS} blobs, 100000 custody entries: ${ms.toFixed(0)} ms (target < 1000 ms)`);
}
