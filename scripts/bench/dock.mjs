// Dock offload: about 1 GB of camera recordings offloaded by `bodycam dock --once` (a child
// process: hashing, segment planning, media fingerprint, signed manifest, uploads, receipt checks)
// to the reference ingest server on loopback, side by side with `rclone copy` of the same files to
// `rclone serve webdav` on 127.0.0.1. Then the dock's peak RSS while it offloads one ~5 GB recording.
// Figures: MB/s, CPU seconds per GB of the client (the dock's own CPU plus the ffmpeg/ffprobe it
// waits for; rclone copy) and of the receiving server (the ingest server in this process; rclone
// serve webdav), peak RSS (VmHWM) of the client. `npm run bench dock` (after `npm run build`).
// Inputs are generated and deleted. Every camera gets its own bitrate, hence its own filler tile:
// with one shared tile most segments of the four recordings were byte-identical and the
// content-addressed server took them as already held, so the dock sent only ~40% of the bytes.
// rclone: `copy` with its defaults, to a webdav remote without vendor, which supports no hash
// and no modtime (`rclone backend features :webdav:`), so rclone checks sizes only, hashes nothing.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, linkSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { recordCamera, dockCamera } from '../../dist/camera/index.js';
import { keepHeapSlack, startIngestServer } from '../../dist/server/index.js';
import { quietLogger } from '../../dist/log.js';

const BIN = fileURLToPath(new URL('../../bin/bodycam.js', import.meta.url));
// BENCH_DOCK_INPUTS=DIR keeps the generated recordings in DIR (made there once, reused by later
// runs, never deleted), so paired runs and profiles start at once on the same bytes.
const INPUTS = process.env.BENCH_DOCK_INPUTS;
// BENCH_DOCK_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/p' passes node flags to every dock child.
const NODE_ARGS = (process.env.BENCH_DOCK_NODE_ARGS ?? '').split(' ').filter(Boolean);
// BENCH_DOCK_WRAP='perf record -g -F 499 -o /tmp/dock.data --' runs every dock child under a wrapper
// (a profiler); the wrapper's own CPU is then counted with the dock's.
const WRAP = (process.env.BENCH_DOCK_WRAP ?? '').split(' ').filter(Boolean);
const TICK = Number((spawnSync('getconf', ['CLK_TCK']).stdout || '100').toString().trim()) || 100;
const root = mkdtempSync(join(tmpdir(), 'bodycam-bench-dock-'));
process.env.BODYCAM_TILE_CACHE = join(INPUTS ?? root, 'tiles');
// The in-process server gets the heap room `bodycam server` gives itself (src/server/heapSlack.ts);
// BENCH_DOCK_HEAP_SLACK=0 runs it without, for a paired before/after.
if (process.env.BENCH_DOCK_HEAP_SLACK !== '0') keepHeapSlack();
const TOKEN = randomBytes(32).toString('base64url'); // the server refuses weak tokens (src/server/auth.ts)

/** CPU seconds (self + waited-for children) and VmHWM of a live process, sampled until it exits. */
function sampler(pid) {
  const last = { cpu: 0, hwmKiB: 0 };
  const read = () => {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // utime, stime, cutime, cstime are fields 14-17 (1-based) → 11-14 after the comm field.
      last.cpu = (Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) / TICK;
      const hwm = /VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (hwm) last.hwmKiB = Math.max(last.hwmKiB, Number(hwm[1]));
    } catch { /* exited */ }
  };
  const timer = setInterval(read, 50);
  return { stop: () => { clearInterval(timer); return last; }, read };
}

/** CPU seconds a live process has used so far. */
function cpuOf(pid) {
  const s = sampler(pid);
  s.read();
  return s.stop().cpu;
}

function run(command, args, options = {}) {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'], ...options });
    const probe = sampler(child.pid);
    let stderr = '';
    child.stderr.on('data', (d) => { stderr = (stderr + d).slice(-4000); });
    child.on('error', reject);
    // Sample once more right before the process is reaped (exit fires after wait()).
    child.on('exit', (code) => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const usage = probe.stop();
      resolve({ code, seconds, cpu: usage.cpu, hwmMiB: usage.hwmKiB / 1024, stderr });
    });
  });
}

function freePort() {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

async function waitForPort(port) {
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => { socket.destroy(); resolve(true); });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`nothing listens on ${port}`);
}

function bytesUnder(dir) {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile() && /\.(mp4|ts)$/i.test(entry.name)) total += statSync(join(entry.parentPath ?? entry.path, entry.name)).size;
  }
  return total;
}

/** Media files under a folder (what a wipe deletes). */
function mediaUnder(dir) {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && /\.(mp4|ts)$/i.test(e.name)).map((e) => join(e.parentPath ?? e.path, e.name));
}

/**
 * A copy of the bays for one round whose wipe may delete the recordings: media files hard-linked
 * (the dock reads the same inodes, cached once for all rounds), everything else copied, so that
 * nothing the dock writes or deletes reaches the originals.
 */
function bayCopy(from, to) {
  for (const entry of readdirSync(from, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const source = join(entry.parentPath ?? entry.path, entry.name);
    const target = join(to, relative(from, source));
    mkdirSync(dirname(target), { recursive: true });
    if (/\.(mp4|ts)$/i.test(entry.name)) linkSync(source, target); else copyFileSync(source, target);
  }
  return to;
}

// Every check on (issue 15): each dock round runs with --wipe-after-ingest and the server's key
// pinned, so the receipt check, the proof of possession (the server's and the dock's re-read) and
// the wipe's re-hash are counted; BENCH_DOCK_WIPE=0 runs the dock without them.
const WIPE = process.env.BENCH_DOCK_WIPE !== '0';

// BENCH_DOCK_BASELINE=/path/to/other/bin/bodycam.js adds a round of that build after each dock
// round (an A/B of two versions on the same inputs and load): its dock, and its own server (the
// dist/ beside that bin/, started in this process), so both halves are compared.
const BASELINE_BIN = process.env.BENCH_DOCK_BASELINE;
const startBaselineServer = BASELINE_BIN
  ? (await import(new URL('../dist/server/index.js', `file://${BASELINE_BIN}`).href)).startIngestServer
  : undefined;

async function dockOnce(bays, server, label, extra = [], bin = BIN) {
  const stateDir = join(root, `state-${label}`);
  mkdirSync(stateDir, { recursive: true });
  writeFileSync(join(root, 'token'), TOKEN + '\n', { mode: 0o600 });
  let wipeArgs = [];
  let roundBays = bays;
  if (WIPE) {
    roundBays = bayCopy(bays, join(root, `bays-${label}`));
    writeFileSync(join(root, 'server-key.pub.pem'), server.publicKeyPem);
    wipeArgs = ['--wipe-after-ingest', '--server-key', join(root, 'server-key.pub.pem')];
  }
  const media = mediaUnder(roundBays).length;
  const serverCpu = process.cpuUsage();
  const argv = [...NODE_ARGS, bin, 'dock', '--once', '--bays', roundBays, '--endpoint', server.url, '--token-file', join(root, 'token'),
    '--state-dir', stateDir, '--dock-id', 'bench-dock', '--status-port', '0', '--settle', '0.5s', ...wipeArgs, ...extra];
  const [command, ...args] = WRAP.length ? [...WRAP, process.execPath, ...argv] : [process.execPath, ...argv];
  const result = await run(command, args, { env: { ...process.env, BODYCAM_LOG_LEVEL: 'warn' } });
  if (result.code !== 0) throw new Error(`dock --once exited ${result.code}: ${result.stderr}`);
  const used = process.cpuUsage(serverCpu);
  if (WIPE) {
    const left = mediaUnder(roundBays).length;
    if (left !== 0) throw new Error(`${left} of ${media} recordings were not wiped: the round did not run every check`);
    rmSync(roundBays, { recursive: true, force: true });
  }
  return { ...result, serverCpu: (used.user + used.system) / 1e6 };
}

function line(label, bytes, r) {
  const mb = bytes / 1e6;
  const gb = bytes / 1e9;
  const server = r.serverCpu === undefined ? '' : `  server ${(r.serverCpu / gb).toFixed(1).padStart(5)} CPU s/GB`;
  console.log(`${label.padEnd(28)} ${r.seconds.toFixed(1).padStart(6)} s  ${(mb / r.seconds).toFixed(0).padStart(5)} MB/s  ${(r.cpu / gb).toFixed(1).padStart(6)} CPU s/GB${server}  peak RSS ${r.hwmMiB.toFixed(0).padStart(4)} MiB  load ${readFileSync('/proc/loadavg', 'utf8').split(' ')[0]}`);
}

let server;
try {
  console.log(`dock offload benchmark, ${new Date().toISOString()}, ${root}`);
  server = await startIngestServer({ dataDir: join(root, 'server'), tokens: { 'bench-dock': TOKEN }, host: '127.0.0.1', port: 0, logger: quietLogger() });

  // ~1 GB: four cameras, one 8-minute 1080p30 recording each (camera tiling: fast to make).
  const bays = join(INPUTS ?? root, 'bays');
  const made = join(INPUTS ?? root, 'bays.done');
  if (!INPUTS || !existsSync(made)) {
    rmSync(bays, { recursive: true, force: true });
    mkdirSync(bays, { recursive: true });
    for (let i = 0; i < 4; i++) {
      const storage = join(INPUTS ?? root, `cam${i}`);
      rmSync(storage, { recursive: true, force: true });
      await recordCamera({ storage, count: 1, durationSeconds: 480, width: 1920, height: 1080, fps: 30, videoKbps: 3700 + 10 * i, seed: `bench-${i}` });
      await dockCamera({ storage, bays, bay: `bay${i + 1}` });
    }
    writeFileSync(made, '');
  }
  const total = bytesUnder(bays);
  console.log(`input: ${(total / 1e9).toFixed(2)} GB in 4 recordings (fMP4, 1080p30)`);

  // The machine is shared: rclone and the dock alternate, ROUNDS each, and the medians are compared.
  const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
  const rcloneRuns = [];
  const dockRuns = [];
  const noFingerprintRuns = [];
  const baselineRuns = [];
  // BENCH_DOCK_RCLONE=0 leaves rclone out (profiling the dock alone).
  const rcloneBin = process.env.BENCH_DOCK_RCLONE !== '0' && spawnSync('rclone', ['version']).status === 0 ? 'rclone' : undefined;
  if (!rcloneBin) console.log('rclone not installed (apt-get install -y rclone): comparison skipped');
  for (let round = 0; round < ROUNDS; round++) {
    if (rcloneBin) {
      const port = await freePort();
      const target = join(root, 'webdav');
      mkdirSync(target, { recursive: true });
      const serve = spawn('rclone', ['serve', 'webdav', target, '--addr', `127.0.0.1:${port}`, '--config', join(root, 'rclone.conf')], { stdio: 'ignore' });
      try {
        await waitForPort(port);
        const before = cpuOf(serve.pid);
        const r = await run('rclone', ['copy', bays, ':webdav:', '--webdav-url', `http://127.0.0.1:${port}`, '--transfers', '4', '--config', join(root, 'rclone.conf')]);
        r.serverCpu = cpuOf(serve.pid) - before;
        if (r.code !== 0) throw new Error(`rclone copy exited ${r.code}: ${r.stderr}`);
        if (bytesUnder(target) !== total) throw new Error(`rclone copied ${bytesUnder(target)} of ${total} bytes`);
        rcloneRuns.push(r);
        line(`round ${round + 1} rclone`, total, r);
      } finally {
        serve.kill('SIGKILL');
        rmSync(target, { recursive: true, force: true });
      }
    }
    // A fresh server and dock state per round, so every round uploads everything.
    await server.close();
    rmSync(join(root, 'server'), { recursive: true, force: true });
    server = await startIngestServer({ dataDir: join(root, 'server'), tokens: { 'bench-dock': TOKEN }, host: '127.0.0.1', port: 0, logger: quietLogger() });
    const d = await dockOnce(bays, server, `gb${round}`);
    dockRuns.push(d);
    line(`round ${round + 1} dock`, total, d);
    if (BASELINE_BIN) {
      await server.close();
      rmSync(join(root, 'server'), { recursive: true, force: true });
      server = await startBaselineServer({ dataDir: join(root, 'server'), tokens: { 'bench-dock': TOKEN }, host: '127.0.0.1', port: 0, logger: quietLogger() });
      const b = await dockOnce(bays, server, `base${round}`, [], BASELINE_BIN);
      baselineRuns.push(b);
      line(`round ${round + 1} baseline dock`, total, b);
    }
    // The same without the media fingerprint, to show its cost (BENCH_DOCK_NO_FINGERPRINT=0 skips it).
    if (process.env.BENCH_DOCK_NO_FINGERPRINT === '0') continue;
    await server.close();
    rmSync(join(root, 'server'), { recursive: true, force: true });
    server = await startIngestServer({ dataDir: join(root, 'server'), tokens: { 'bench-dock': TOKEN }, host: '127.0.0.1', port: 0, logger: quietLogger() });
    const n = await dockOnce(bays, server, `nofp${round}`, ['--no-fingerprint']);
    noFingerprintRuns.push(n);
    line(`round ${round + 1} dock --no-fingerprint`, total, n);
  }
  const median = (runs, key) => { const v = runs.map((r) => r[key]).sort((a, b) => a - b); return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2; };
  const summary = (runs) => ({ seconds: median(runs, 'seconds'), cpu: median(runs, 'cpu'), serverCpu: median(runs, 'serverCpu'), hwmMiB: Math.max(...runs.map((r) => r.hwmMiB)) });
  const dock = summary(dockRuns);
  console.log(`load average now: ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
  line('median: bodycam dock --once', total, dock);
  if (noFingerprintRuns.length) line('median: dock --no-fingerprint', total, summary(noFingerprintRuns));
  if (baselineRuns.length) line('median: baseline dock', total, summary(baselineRuns));
  if (rcloneRuns.length) {
    const rclone = summary(rcloneRuns);
    line('median: rclone copy → webdav', total, rclone);
    console.log(`CPU per GB, client + server: dock ${((dock.cpu + dock.serverCpu) / (total / 1e9)).toFixed(1)}, rclone ${((rclone.cpu + rclone.serverCpu) / (total / 1e9)).toFixed(1)}`);
    console.log(dock.seconds < rclone.seconds ? `dock is ${(rclone.seconds / dock.seconds).toFixed(2)}x as fast as rclone` : `DOCK SLOWER than rclone (${(dock.seconds / rclone.seconds).toFixed(2)}x its time)`);
  }
  if (!INPUTS) rmSync(bays, { recursive: true, force: true });
  await server.close();
  rmSync(join(root, 'server'), { recursive: true, force: true });

  // One ~5 GB recording: peak RSS must not grow with the file (BENCH_SKIP_BIG=1 skips it).
  if (!process.env.BENCH_SKIP_BIG) {
    server = await startIngestServer({ dataDir: join(root, 'server5'), tokens: { 'bench-dock': TOKEN }, host: '127.0.0.1', port: 0, logger: quietLogger() });
    const bigBays = join(root, 'bays5');
    mkdirSync(bigBays, { recursive: true });
    await recordCamera({ storage: join(root, 'big'), count: 1, durationSeconds: 3300, width: 1920, height: 1080, fps: 30, videoKbps: 12000, seed: 'bench-big' });
    await dockCamera({ storage: join(root, 'big'), bays: bigBays, bay: 'bay1' });
    const bigBytes = bytesUnder(bigBays);
    const big = await dockOnce(bigBays, server, 'big');
    line(`one ${(bigBytes / 1e9).toFixed(1)} GB recording`, bigBytes, big);
    console.log(big.hwmMiB < 200 && dock.hwmMiB < 200 ? 'target met: peak RSS under 200 MB' : 'TARGET MISSED: peak RSS 200 MB or more');
  }
} finally {
  await server?.close().catch(() => {});
  rmSync(root, { recursive: true, force: true });
}
