// The ingest server's CPU per GB for what a dock asks of it, without the dock: recordings of
// ~245 MB (53 segments of 4.6 MB, as the dock plans 8-minute 1080p30 fMP4s), 4 at a time, each
// POSTed, its segments PUT one after another, `complete`d and challenged for proof of possession
// (8 segments, as the dock does before a wipe). The clients run in a child process (bytes from an
// AES-CTR keystream, regenerated per segment, so nothing large is held); the server runs in its
// own process (dist/ of this build, or of BENCH_SERVER_BASELINE=<repo dir of another build>), so
// its CPU (all threads: event loop, libuv pool, GC, JIT) is read from /proc and is the server's
// alone. Rounds alternate this build / the baseline on the same bytes, each on a fresh data dir.
// `npm run bench server-recordings` (after `npm run build`). BENCH_ROUNDS (3), BENCH_RECORDINGS (4),
// BENCH_SERVER_NODE_ARGS (node options for the server processes).
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request, Agent } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const HERE = fileURLToPath(import.meta.url);
const REPO = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const SEGMENT = 4_600_000;
const SEGMENTS = 53;
const RECORDINGS = Number(process.env.BENCH_RECORDINGS ?? 4);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
// BENCH_SERVER_NODE_ARGS: node options for the server process (--trace-gc, --cpu-prof, ...).
const NODE_ARGS = (process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean);
const TICK = Number((spawnSync('getconf', ['CLK_TCK']).stdout || '100').toString().trim()) || 100;

/** Segment `i` of recording `r`: incompressible, reproducible, distinct across recordings and rounds. */
function segmentBytes(seed, r, i) {
  const key = createHash('sha256').update(`${seed}/${r}`).digest().subarray(0, 16);
  const iv = Buffer.alloc(16);
  iv.writeUInt32BE(i, 12);
  return createCipheriv('aes-128-ctr', key, iv).update(Buffer.alloc(SEGMENT));
}

function call(agent, url, method, headers, body) {
  return new Promise((resolvePromise, reject) => {
    const req = request(url, { method, agent, headers: { ...headers, ...(body ? { 'content-length': String(body.length) } : {}) } }, (res) => {
      const parts = [];
      res.on('data', (d) => parts.push(d));
      res.on('end', () => resolvePromise({ status: res.statusCode, body: Buffer.concat(parts).toString('utf8') }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

// ---- client (child process) -------------------------------------------------
if (process.argv[2] === '--client') {
  const { url, token, seed, dist } = JSON.parse(process.argv[3]);
  const { formatDigestHeader } = await import(`${dist}/protocol/digest.js`);
  const { merkleRoot } = await import(`${dist}/protocol/merkle.js`);
  const { generateSigningKeyPair, signObject } = await import(`${dist}/protocol/signing.js`);
  const keys = generateSigningKeyPair();
  // Plans first (hashing every byte here), then a line to say the uploads start: the parent reads
  // the server's CPU from that moment.
  const recordings = [];
  for (let r = 0; r < RECORDINGS; r++) {
    const whole = createHash('sha256');
    const segments = [];
    for (let i = 0; i < SEGMENTS; i++) {
      const bytes = segmentBytes(seed, r, i);
      whole.update(bytes);
      segments.push({ index: i, offset: i * SEGMENT, length: SEGMENT, sha256: createHash('sha256').update(bytes).digest('hex') });
    }
    const sha256 = whole.digest('hex');
    recordings.push(signObject({
      protocol: 'bodycam-ingest/1', recordingId: `BENCH-${r}-${sha256.slice(0, 16)}`, device: { serial: `BENCH${r}` },
      dock: { id: 'bench-dock', publicKeyPem: keys.publicKeyPem }, file: { name: `bench-${r}.mp4`, size: SEGMENT * SEGMENTS, sha256 },
      integrity: { status: 'unsigned', notes: [] }, segments, merkleRoot: merkleRoot(segments.map((s) => s.sha256)), createdAt: new Date().toISOString(),
    }, keys.privateKeyPem));
  }
  process.stdout.write('START\n');
  const agent = new Agent({ keepAlive: true, maxSockets: RECORDINGS * 2 });
  const auth = { authorization: `Bearer ${token}` };
  await Promise.all(recordings.map(async (manifest, r) => {
    const base = `${url}/v1/recordings/${manifest.recordingId}`;
    const created = await call(agent, `${url}/v1/recordings`, 'POST', { ...auth, 'content-type': 'application/json' }, Buffer.from(JSON.stringify(manifest)));
    if (created.status !== 201) throw new Error(`create ${created.status} ${created.body}`);
    for (const s of manifest.segments) {
      const put = await call(agent, `${base}/segments/${s.index}`, 'PUT', { ...auth, 'content-type': 'application/octet-stream', 'content-digest': formatDigestHeader(s.sha256) }, segmentBytes(seed, r, s.index));
      if (put.status !== 201) throw new Error(`PUT ${put.status} ${put.body}`);
    }
    const done = await call(agent, `${base}/complete`, 'POST', auth);
    if (done.status !== 200) throw new Error(`complete ${done.status} ${done.body}`);
    if (JSON.parse(done.body).sha256 !== manifest.file.sha256) throw new Error('receipt for other bytes');
    const nonce = randomBytes(32);
    const challenged = [0, SEGMENTS - 1, 7, 13, 21, 29, 37, 45];
    const proof = await call(agent, `${base}/possession`, 'POST', { ...auth, 'content-type': 'application/json' }, Buffer.from(JSON.stringify({ nonce: nonce.toString('hex'), segments: challenged })));
    if (proof.status !== 200) throw new Error(`possession ${proof.status} ${proof.body}`);
    const answers = JSON.parse(proof.body).answers;
    for (const [k, i] of challenged.entries()) {
      if (answers[k].sha256 !== createHash('sha256').update(nonce).update(segmentBytes(seed, r, i)).digest('hex')) throw new Error(`possession answer ${i} wrong`);
    }
  }));
  agent.destroy();
  process.exit(0);
}

// ---- server (child process) -------------------------------------------------
if (process.argv[2] === '--server') {
  const { dist, dataDir, token } = JSON.parse(process.argv[3]);
  const serverModule = await import(`${dist}/server/index.js`);
  const { startIngestServer } = serverModule;
  const { quietLogger } = await import(`${dist}/log.js`);
  // As `bodycam server` runs it (a build without keepHeapSlack runs without; BENCH_SERVER_HEAP_SLACK=0 turns it off).
  if (serverModule.keepHeapSlack && process.env.BENCH_SERVER_HEAP_SLACK !== '0') serverModule.keepHeapSlack();
  const server = await startIngestServer({ dataDir, tokens: { 'bench-dock': token }, host: '127.0.0.1', port: 0, logger: quietLogger() });
  process.stdout.write(`READY ${server.url}\n`);
  process.on('SIGTERM', () => { void server.close().then(() => process.exit(0)); });
}

// ---- driver -----------------------------------------------------------------
function cpuSeconds(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / TICK;
}

/** The child's next line starting with `prefix`; its other lines (--trace-gc output) go to stderr. */
function lines(child, prefix) {
  const rl = createInterface({ input: child.stdout });
  const waiting = [];
  rl.on('line', (line) => { if (line.startsWith(prefix)) waiting.shift()?.(line); else process.stderr.write(`${line}\n`); });
  return () => new Promise((r) => waiting.push(r));
}

async function round(repo, seed) {
  const dist = join(repo, 'dist');
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-recordings-'));
  const token = randomBytes(32).toString('base64url');
  const server = spawn(process.execPath, [...NODE_ARGS, HERE, '--server', JSON.stringify({ dist, dataDir, token })], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const url = (await lines(server, 'READY ')()).replace(/^READY /, '');
    const client = spawn(process.execPath, [HERE, '--client', JSON.stringify({ url, token, seed, dist })], { stdio: ['ignore', 'pipe', 'inherit'] });
    await lines(client, 'START')();
    const cpu0 = cpuSeconds(server.pid);
    const t0 = process.hrtime.bigint();
    const code = await new Promise((r) => client.on('exit', r));
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const cpu = cpuSeconds(server.pid) - cpu0;
    if (code !== 0) throw new Error(`client exited ${code}`);
    const gb = (RECORDINGS * SEGMENTS * SEGMENT) / 1e9;
    const peakRssMiB = Math.round(Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${server.pid}/status`, 'utf8'))?.[1] ?? 0) / 1024);
    return { cpuPerGB: cpu / gb, seconds, peakRssMiB, load: readFileSync('/proc/loadavg', 'utf8').split(' ')[0] };
  } finally {
    server.kill('SIGTERM');
    await new Promise((r) => server.once('exit', r));
    rmSync(dataDir, { recursive: true, force: true });
  }
}

if (!process.argv[2]) {
  const baseline = process.env.BENCH_SERVER_BASELINE;
  const builds = [['this build', REPO], ...(baseline ? [['baseline', resolve(baseline)]] : [])];
  const runs = new Map(builds.map(([name]) => [name, []]));
  console.log(`${RECORDINGS} recordings x ${SEGMENTS} segments x ${SEGMENT} B (${(RECORDINGS * SEGMENTS * SEGMENT / 1e9).toFixed(2)} GB) per round, ${ROUNDS} rounds: create, PUTs, complete, possession (8 segments)`);
  for (let r = 0; r < ROUNDS; r++) {
    const seed = `${r}-${Date.now()}`;
    for (const [name, repo] of builds) {
      const result = await round(repo, seed);
      runs.get(name).push(result);
      console.log(`round ${r + 1} ${name.padEnd(10)} server ${result.cpuPerGB.toFixed(2)} CPU s/GB, ${result.seconds.toFixed(1)} s, peak RSS ${result.peakRssMiB} MiB, load ${result.load}`);
    }
  }
  const median = (xs) => { const v = [...xs].sort((a, b) => a - b); return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2; };
  for (const [name, list] of runs) {
    console.log(`median ${name.padEnd(10)} server ${median(list.map((x) => x.cpuPerGB)).toFixed(2)} CPU s/GB, ${median(list.map((x) => x.seconds)).toFixed(1)} s`);
  }
  console.log(`load average now: ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
}
