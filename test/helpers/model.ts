/**
 * The world of the model-based adversarial test (test/model/adversarial.test.ts):
 * two simulated cameras made once by the real ffmpeg, three bays, the real
 * `bodycam server` (data dir on a small tmpfs, so disk-full is real ENOSPC),
 * the replay fault proxy between dock and server, and the real `bodycam dock`
 * with --wipe-after-ingest and the server key pinned. A run applies a random
 * sequence of operations, lets the system settle, then checks THE invariant
 * of issue 9 against a model of what was on the cards.
 *
 * The model: for every camera, every file under its recordings folder (media
 * and sidecars) with the bytes the harness last put there. The dock never
 * writes to a card, so a modelled file that is gone from its card and was not
 * removed by the harness was removed by the dock: it "left the card", and its
 * bytes (a media file's SHA-256, a sidecar's exact bytes) must be on the server
 * under a receipt whose proof of possession the dock checked. Every file still
 * on a card must be on the server byte-exact or listed on its bay with a reason.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync, cpSync, existsSync, fstatSync, ftruncateSync, futimesSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync,
  unlinkSync, writeFileSync, writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { dockCamera, recordCamera, undockCamera } from '../../src/camera/index.js';
import { writeFileAtomic } from '../../src/util/atomicFile.js';
import { RECORDINGS_DIR, SYSTEM_DIR, type Sidecar } from '../../src/protocol/cameraStorage/index.js';
import { generateSigningKeyPair, signObject, verifyObject } from '../../src/protocol/signing.js';
import type { Receipt, RecordingListEntry, RecordingManifest } from '../../src/protocol/types.js';
import { startFaultProxy, type FaultProxy } from './faultProxy.js';
import { runCli } from './cli.js';
import { DockProcess, readJournal, ServerProcess, sleep } from './reliability.js';

// ---------------------------------------------------------------------------
// Operations: plain data, so fast-check can generate, shrink and print them.

export type NetFault = 'down' | 'reset' | 'http-503';
export type Op =
  | { t: 'overwrite'; cam: number; file: number; at: number }
  | { t: 'append'; cam: number; file: number; bytes: number }
  | { t: 'truncate'; cam: number; file: number; keep: number }
  | { t: 'resign'; cam: number; file: number; category: string }
  | { t: 'rename'; cam: number; file: number }
  | { t: 'duplicate'; cam: number; file: number; toCam: number; withSidecar: boolean }
  | { t: 'delete'; cam: number; file: number }
  | { t: 'move'; cam: number; bay: number }
  | { t: 'killDock' }
  | { t: 'killServer' }
  | { t: 'net'; fault: NetFault; ms: number }
  | { t: 'diskFull'; ms: number }
  | { t: 'wait'; ms: number };

export const CAMERAS = 2;
export const BAYS = 3;
export const bayName = (i: number): string => `bay-${i + 1}`;

// ---------------------------------------------------------------------------
// Camera files, made once (real ffmpeg) and cached in the temp dir across test runs.

const CACHE_VERSION = 'v1';

export async function cachedCameras(): Promise<string[]> {
  const root = join(tmpdir(), `bodycam-model-cameras-${CACHE_VERSION}`);
  const done = join(root, 'complete');
  const dirs = Array.from({ length: CAMERAS }, (_, c) => join(root, `cam${c}`));
  if (existsSync(done)) return dirs;
  rmSync(root, { recursive: true, force: true });
  mkdirSync(root, { recursive: true });
  for (const [c, dir] of dirs.entries()) {
    await recordCamera({ storage: dir, count: 2, seed: `model-${c}`, durationSeconds: 1.5, width: 320, height: 240, fps: 15 });
  }
  writeFileSync(done, new Date().toISOString());
  return dirs;
}

// ---------------------------------------------------------------------------
// The model.

export const sha256Of = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

export interface ModelFile {
  /** Path inside the camera root. */
  rel: string;
  kind: 'media' | 'sidecar';
  sha256: string;
  /** Kept for sidecars (their bytes must be on the server). */
  bytes?: Buffer;
  size: number;
}

/** A file the dock removed from a card: these bytes must be on the server. */
export interface LeftFile {
  serial: string;
  rel: string;
  kind: 'media' | 'sidecar';
  /** One of these versions left (more than one when the dock's wipe raced a camera edit). */
  versions: Array<{ sha256: string; bytes?: Buffer }>;
  /** The op during or before which it was seen gone. */
  seenAt: string;
}

export interface ModelCamera {
  index: number;
  serial: string;
  keyPem: string;
  /** Bay index when docked, null when parked off the dock. */
  bay: number | null;
  parking: string;
  files: Map<string, ModelFile>;
  /** Counter for names the harness invents. */
  made: number;
}

export interface WorldOptions {
  root: string;
  cameraSources: string[];
  tmpfs: boolean;
  log: (line: string) => void;
  /** Keep the server's state in this PostgreSQL database (`--db`, with a `--server-key` file) instead of its data dir. */
  database?: string;
}

const SIDECAR_OF = (mediaRel: string): string => mediaRel.replace(/\.[^./]+$/, '') + '.json';
const isSidecarName = (name: string): boolean => name.endsWith('.json');

export class World {
  readonly bays: string;
  readonly cameras: ModelCamera[] = [];
  readonly left: LeftFile[] = [];
  /** Every camera edit and harness decision, for the failure report. */
  readonly trace: string[] = [];
  server!: ServerProcess;
  proxy!: FaultProxy;
  dock!: DockProcess;
  private mounted = false;
  private filler?: string;
  private step = 'setup';

  constructor(readonly options: WorldOptions) {
    this.bays = join(options.root, 'bays');
  }

  get serverDataDir(): string { return join(this.options.root, 'server-data'); }
  get serverKeyPath(): string { return join(this.serverDataDir, 'server-key.pub.pem'); }

  cameraRoot(cam: ModelCamera): string {
    return cam.bay === null ? cam.parking : join(this.bays, bayName(cam.bay));
  }

  note(line: string): void {
    this.trace.push(`[${this.step}] ${line}`);
  }

  async start(): Promise<void> {
    mkdirSync(this.bays, { recursive: true });
    for (let b = 0; b < BAYS; b++) mkdirSync(join(this.bays, bayName(b)), { recursive: true });
    mkdirSync(join(this.options.root, 'parking'), { recursive: true });
    for (const [c, source] of this.options.cameraSources.entries()) {
      const parking = join(this.options.root, 'parking', `cam${c}`);
      cpSync(source, parking, { recursive: true, preserveTimestamps: true });
      const device = JSON.parse(readFileSync(join(parking, 'DEVICE.json'), 'utf8')) as { serial: string };
      const cam: ModelCamera = { index: c, serial: device.serial, keyPem: readFileSync(join(parking, SYSTEM_DIR, 'camera-key.pem'), 'utf8'), bay: null, parking, files: new Map(), made: 0 };
      for (const name of readdirSync(join(parking, RECORDINGS_DIR))) {
        if (name.startsWith('.')) continue;
        const rel = `${RECORDINGS_DIR}/${name}`;
        const bytes = readFileSync(join(parking, rel));
        cam.files.set(rel, { rel, kind: isSidecarName(name) ? 'sidecar' : 'media', sha256: sha256Of(bytes), size: bytes.length, ...(isSidecarName(name) ? { bytes } : {}) });
      }
      this.cameras.push(cam);
    }
    // Server data dir on its own small tmpfs: disk-full is a real ENOSPC.
    let serverArgs: string[] = [];
    if (this.options.database) {
      const keyFile = join(this.options.root, 'receipt-key.pem');
      writeFileSync(keyFile, generateSigningKeyPair().privateKeyPem, { mode: 0o600 });
      serverArgs = ['--db', this.options.database, '--server-key', keyFile];
    }
    this.server = new ServerProcess(this.serverDataDir, serverArgs);
    if (this.options.tmpfs) {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=24m,mode=0700', 'tmpfs', this.serverDataDir]);
      this.mounted = true;
    }
    await this.server.start();
    this.proxy = await startFaultProxy({ target: { host: '127.0.0.1', port: this.server.port } });
    this.dock = new DockProcess({
      root: this.options.root, endpoint: this.proxy.url, bays: this.bays,
      extraArgs: ['--wipe-after-ingest', '--server-key', this.serverKeyPath, '--settle', '0.3s', '--segment-seconds', '1s', '--max-backoff', '1s',
        '--rescan-interval', '0.5s', '--request-timeout', '5s', '--concurrency', '2', '--max-rate', '96KB/s', '--log-level', 'info'],
    });
    // Camera 0 starts docked in bay 1, camera 1 parked off the dock.
    await this.moveCamera(this.cameras[0]!, 0);
    this.dock.start();
  }

  async close(): Promise<void> {
    await this.dock?.stop().catch(() => {});
    await this.proxy?.close().catch(() => {});
    await this.server?.stop().catch(() => {});
    if (this.mounted) {
      try { execFileSync('umount', [this.serverDataDir]); } catch { try { execFileSync('umount', ['-l', this.serverDataDir]); } catch { /* left for the OS */ } }
      this.mounted = false;
    }
  }

  // ---- observing the cards ----------------------------------------------------

  /** Files of the model that are gone from their card: the dock took them. */
  observe(cam: ModelCamera): void {
    const root = this.cameraRoot(cam);
    for (const file of [...cam.files.values()]) {
      if (existsSync(join(root, file.rel))) continue;
      this.recordLeft(cam, file, [file]);
    }
  }

  observeAll(): void {
    for (const cam of this.cameras) this.observe(cam);
  }

  private recordLeft(cam: ModelCamera, file: ModelFile, versions: Array<Pick<ModelFile, 'sha256' | 'bytes'>>): void {
    cam.files.delete(file.rel);
    this.left.push({ serial: cam.serial, rel: file.rel, kind: file.kind, versions: versions.map((v) => ({ sha256: v.sha256, ...(v.bytes ? { bytes: v.bytes } : {}) })), seenAt: this.step });
    this.note(`dock removed ${cam.serial}:${file.rel}`);
  }

  mediaFiles(cam: ModelCamera): ModelFile[] {
    return [...cam.files.values()].filter((f) => f.kind === 'media').sort((a, b) => a.rel.localeCompare(b.rel));
  }

  private pick(cam: ModelCamera, index: number): ModelFile | undefined {
    const media = this.mediaFiles(cam);
    return media.length ? media[index % media.length] : undefined;
  }

  // ---- applying operations ------------------------------------------------------

  async apply(op: Op, index: number): Promise<void> {
    this.step = `op ${index} ${describeOp(op)}`;
    this.observeAll();
    switch (op.t) {
      case 'overwrite': return this.editInPlace(op.cam, op.file, 'overwrite', (fd, size) => {
        const at = Math.min(size - 1, Math.floor(op.at * size));
        writeSync(fd, randomBytes(Math.min(16, size - at)), 0, Math.min(16, size - at), at);
      });
      case 'append': return this.editInPlace(op.cam, op.file, 'append', (fd, size) => { writeSync(fd, randomBytes(op.bytes), 0, op.bytes, size); });
      case 'truncate': return this.editInPlace(op.cam, op.file, 'truncate', (fd, size) => { ftruncateSync(fd, Math.floor(size * op.keep)); });
      case 'resign': return this.resign(op.cam, op.file, op.category);
      case 'rename': return this.rename(op.cam, op.file);
      case 'duplicate': return this.duplicate(op.cam, op.file, op.toCam, op.withSidecar);
      case 'delete': return this.delete(op.cam, op.file);
      case 'move': return this.moveCamera(this.cameras[op.cam % CAMERAS]!, op.bay >= BAYS ? null : op.bay);
      case 'killDock':
        await this.dock.kill();
        await sleep(100);
        this.dock.start();
        return;
      case 'killServer':
        await this.server.kill();
        await sleep(150);
        await this.server.start();
        return;
      case 'net':
        if (op.fault === 'down') {
          await this.proxy.setMode({ kind: 'down', how: 'reset' });
          await sleep(op.ms);
          await this.proxy.setMode('pass');
        } else if (op.fault === 'reset') {
          await this.proxy.setMode({ kind: 'reset-after-bytes', bytes: 2000, times: 3 });
          await sleep(op.ms);
        } else {
          await this.proxy.setMode({ kind: 'http-status', status: 503, count: 4, retryAfterSeconds: 0 });
          await sleep(op.ms);
        }
        return;
      case 'diskFull':
        if (!this.mounted) { this.note('disk-full skipped: no tmpfs'); return; }
        this.fillDisk();
        await sleep(op.ms);
        this.freeDisk();
        return;
      case 'wait':
        await sleep(op.ms);
        return;
    }
  }

  /**
   * Change a media file through one descriptor. If its path no longer names
   * that inode afterwards, the dock's wipe raced the edit: either version may
   * be the one that left the card.
   */
  private async editInPlace(camIndex: number, fileIndex: number, what: string, edit: (fd: number, size: number) => void): Promise<void> {
    const cam = this.cameras[camIndex % CAMERAS]!;
    const file = this.pick(cam, fileIndex);
    if (!file) return;
    const path = join(this.cameraRoot(cam), file.rel);
    let fd: number;
    try { fd = openSync(path, 'r+'); } catch { this.observe(cam); return; }
    try {
      const before = fstatSync(fd);
      if (before.size === 0) return;
      edit(fd, before.size);
      if (what === 'overwrite') futimesSync(fd, before.atime, before.mtime);
      const bytes = readFileSync(`/proc/self/fd/${fd}`);
      const after = fstatSync(fd);
      const atPath = (() => { try { return lstatSync(path); } catch { return undefined; } })();
      const edited = { sha256: sha256Of(bytes), size: bytes.length };
      if (!atPath || atPath.ino !== after.ino) {
        this.recordLeft(cam, file, [file, edited]);
        this.note(`${what} raced the dock on ${file.rel}`);
        return;
      }
      cam.files.set(file.rel, { ...file, ...edited });
      this.note(`${what} ${cam.serial}:${file.rel} → ${edited.size} bytes ${edited.sha256.slice(0, 12)}`);
    } finally {
      closeSync(fd);
    }
  }

  private async resign(camIndex: number, fileIndex: number, category: string): Promise<void> {
    const cam = this.cameras[camIndex % CAMERAS]!;
    const media = this.pick(cam, fileIndex);
    if (!media) return;
    const rel = SIDECAR_OF(media.rel);
    const modelled = cam.files.get(rel);
    if (!modelled) return;
    const root = this.cameraRoot(cam);
    let old: Buffer;
    try { old = readFileSync(join(root, rel)); } catch { this.observe(cam); return; }
    const mediaIno = (() => { try { return lstatSync(join(root, media.rel)).ino; } catch { return undefined; } })();
    if (mediaIno === undefined) { this.observe(cam); return; }
    const { signature: _old, ...unsigned } = JSON.parse(old.toString('utf8')) as Sidecar;
    const critical = ['use-of-force', 'pursuit', 'arrest'].includes(category);
    const signed = signObject({ ...unsigned, category, critical } as unknown as Record<string, unknown>, cam.keyPem);
    const bytes = Buffer.from(JSON.stringify(signed, null, 2) + '\n');
    writeFileAtomic(join(root, rel), bytes);
    // The dock may have wiped the recording (old sidecar included) just before the rename:
    // then the new sidecar is an orphan the harness made by accident; take it back.
    const mediaNow = (() => { try { return lstatSync(join(root, media.rel)).ino; } catch { return undefined; } })();
    if (mediaNow !== mediaIno) {
      rmSync(join(root, rel), { force: true });
      this.recordLeft(cam, modelled, [modelled]);
      this.observe(cam);
      this.note(`re-sign raced the dock's wipe on ${rel}`);
      return;
    }
    cam.files.set(rel, { ...modelled, sha256: sha256Of(bytes), size: bytes.length, bytes });
    this.note(`re-signed ${cam.serial}:${rel} category=${category}`);
  }

  private async rename(camIndex: number, fileIndex: number): Promise<void> {
    const cam = this.cameras[camIndex % CAMERAS]!;
    const media = this.pick(cam, fileIndex);
    if (!media) return;
    const root = this.cameraRoot(cam);
    const name = `RN${++cam.made}_${basename(media.rel)}`;
    const target = `${dirname(media.rel)}/${name}`;
    for (const [from, to] of [[media.rel, target], [SIDECAR_OF(media.rel), SIDECAR_OF(target)]] as const) {
      const file = cam.files.get(from);
      if (!file) continue;
      try {
        renameSync(join(root, from), join(root, to));
      } catch {
        this.observe(cam);
        continue;
      }
      cam.files.delete(from);
      cam.files.set(to, { ...file, rel: to });
      this.note(`renamed ${cam.serial}:${from} → ${to}`);
    }
  }

  private async duplicate(camIndex: number, fileIndex: number, toCamIndex: number, withSidecar: boolean): Promise<void> {
    const cam = this.cameras[camIndex % CAMERAS]!;
    const to = this.cameras[toCamIndex % CAMERAS]!;
    const media = this.pick(cam, fileIndex);
    if (!media) return;
    const name = `DUP${++to.made}_${basename(media.rel)}`;
    const copies: Array<[string, string]> = [[media.rel, `${RECORDINGS_DIR}/${name}`]];
    if (withSidecar && cam.files.has(SIDECAR_OF(media.rel))) copies.push([SIDECAR_OF(media.rel), SIDECAR_OF(`${RECORDINGS_DIR}/${name}`)]);
    for (const [from, rel] of copies) {
      let bytes: Buffer;
      try { bytes = readFileSync(join(this.cameraRoot(cam), from)); } catch { this.observe(cam); return; }
      // Made whole in the camera's own system area, then renamed in: the dock never sees half a copy.
      const toRoot = this.cameraRoot(to);
      const temp = join(toRoot, SYSTEM_DIR, `.dup-${randomBytes(4).toString('hex')}`);
      writeFileSync(temp, bytes);
      renameSync(temp, join(toRoot, rel));
      to.files.set(rel, { rel, kind: isSidecarName(rel) ? 'sidecar' : 'media', sha256: sha256Of(bytes), size: bytes.length, ...(isSidecarName(rel) ? { bytes } : {}) });
      this.note(`duplicated ${cam.serial}:${from} → ${to.serial}:${rel}`);
    }
  }

  private async delete(camIndex: number, fileIndex: number): Promise<void> {
    const cam = this.cameras[camIndex % CAMERAS]!;
    const media = this.pick(cam, fileIndex);
    if (!media) return;
    for (const rel of [media.rel, SIDECAR_OF(media.rel)]) {
      const file = cam.files.get(rel);
      if (!file) continue;
      try {
        unlinkSync(join(this.cameraRoot(cam), rel));
        cam.files.delete(rel);
        this.note(`deleted ${cam.serial}:${rel}`);
      } catch {
        this.observe(cam);
      }
    }
  }

  /** Undock (if docked), then dock into `bay` if it is free; null = park off the dock. */
  async moveCamera(cam: ModelCamera, bay: number | null): Promise<void> {
    if (cam.bay === bay) return;
    if (bay !== null && this.cameras.some((c) => c.bay === bay)) return;
    this.observe(cam);
    if (cam.bay !== null) {
      await undockCamera({ bays: this.bays, bay: bayName(cam.bay), to: cam.parking });
      // The bay folder stays, empty, as a real dock's mount point would.
      mkdirSync(join(this.bays, bayName(cam.bay)), { recursive: true });
      this.note(`undocked ${cam.serial} from ${bayName(cam.bay)}`);
      cam.bay = null;
    }
    if (bay !== null) {
      await dockCamera({ storage: cam.parking, bays: this.bays, bay: bayName(bay) });
      cam.bay = bay;
      this.note(`docked ${cam.serial} in ${bayName(bay)}`);
    }
  }

  private fillDisk(): void {
    this.filler = join(this.serverDataDir, `.filler-${randomBytes(4).toString('hex')}`);
    const fd = openSync(this.filler, 'w');
    const chunk = Buffer.alloc(1 << 20);
    try {
      for (;;) writeSync(fd, chunk);
    } catch {
      // ENOSPC: full. Top it off byte-wise so that even small writes fail.
      const small = Buffer.alloc(4096);
      try { for (;;) writeSync(fd, small); } catch { /* full */ }
    } finally {
      closeSync(fd);
    }
    this.note('server disk full');
  }

  private freeDisk(): void {
    if (this.filler) rmSync(this.filler, { force: true });
    this.filler = undefined;
    this.note('server disk space back');
  }

  // ---- settling -------------------------------------------------------------------

  /**
   * Faults off, both programs up, every camera docked; then wait (bounded) until
   * the dock is quiescent: nothing queued, settling or running, twice in a row.
   */
  async settle(timeoutMs: number): Promise<{ quiescent: boolean; status: DockStatusView | undefined; waitedMs: number }> {
    this.step = 'settle';
    await this.proxy.setMode('pass');
    if (this.filler) this.freeDisk();
    if (!this.server.child) await this.server.start();
    if (!this.dock.child) this.dock.start();
    for (const cam of this.cameras) {
      if (cam.bay !== null) continue;
      const free = Array.from({ length: BAYS }, (_, b) => b).find((b) => !this.cameras.some((c) => c.bay === b));
      await this.moveCamera(cam, free!);
    }
    const started = Date.now();
    let calm = 0;
    let status: DockStatusView | undefined;
    while (Date.now() - started < timeoutMs) {
      await sleep(1000);
      status = await this.status();
      const busy = !status || status.queue.depth > 0 || status.queue.settling > 0 || status.queue.preparing > 0 || status.queue.uploading > 0
        || status.bays.some((b) => b.state === 'offloading');
      calm = busy ? 0 : calm + 1;
      if (calm >= 2) break;
    }
    this.observeAll();
    return { quiescent: calm >= 2, status, waitedMs: Date.now() - started };
  }

  async status(): Promise<DockStatusView | undefined> {
    const result = await runCli(['status', '--state-dir', this.dock.stateDir, '--json'], { timeoutMs: 15_000 });
    if (result.code !== 0) return undefined;
    try { return JSON.parse(result.stdout) as DockStatusView; } catch { return undefined; }
  }

  // ---- THE invariant --------------------------------------------------------------

  /**
   * `without`: diagnosis only (MODEL_DIAGNOSE_WITHOUT=possession): leave out one link of the
   * chain to see what else breaks while a fix is not merged yet. npm test and soak never set it.
   */
  async checkInvariant(status: DockStatusView | undefined, without: ReadonlySet<string> = new Set()): Promise<string[]> {
    const problems: string[] = [];
    const serverKeyPem = readFileSync(this.serverKeyPath, 'utf8');
    const server = await this.serverView();
    const journal = readJournal(this.dock.stateDir);
    const dockLog = existsSync(this.dock.logPath) ? readFileSync(this.dock.logPath, 'utf8') : '';
    const possessionOk = new Set(this.server.requestLog()
      .filter((r) => r.method === 'POST' && r.status === 200 && /\/possession$/.test(r.url))
      .map((r) => decodeURIComponent(r.url.split('/')[3] ?? '')));

    const sidecarOnServer = (bytes: Buffer): ServerRecording | undefined => server.find((r) => r.complete && sidecarMatches(r.manifest, bytes));
    const contentOnServer = (serial: string, sha256: string): ServerRecording | undefined =>
      server.find((r) => r.complete && r.contentSha256 === sha256 && r.manifest.device?.serial === serial);

    // 1. Every byte and every sidecar that left a card is on the server, under a receipt
    //    (verified with the pinned key) whose proof of possession the dock checked.
    for (const left of this.left) {
      const where = `${left.serial}:${left.rel} (gone at ${left.seenAt})`;
      if (left.kind === 'media') {
        const ok = left.versions.some((v) => {
          const rows = journal.rows.filter((r) => r.serial === left.serial && r.sha256 === v.sha256 && r.state === 'wiped' && r.receipt);
          return rows.some((row) => {
            const receipt = row.receipt!;
            const rec = server.find((s) => s.id === receipt.recordingId);
            return receipt.sha256 === v.sha256 && verifyObject(receipt as unknown as Record<string, unknown>, serverKeyPem)
              && rec?.complete === true && rec.contentSha256 === v.sha256 && (without.has('possession') || possessionOk.has(receipt.recordingId));
          });
        });
        if (ok) continue;
        // Say which link of the chain is missing.
        const sha = left.versions.map((v) => v.sha256.slice(0, 12)).join(' or ');
        const anyContent = left.versions.some((v) => contentOnServer(left.serial, v.sha256));
        const anyRow = left.versions.some((v) => journal.rows.some((r) => r.serial === left.serial && r.sha256 === v.sha256 && r.state === 'wiped' && r.receipt));
        const anyPossession = left.versions.some((v) => journal.rows.some((r) => r.serial === left.serial && r.sha256 === v.sha256 && r.receipt && possessionOk.has(r.receipt.recordingId)));
        if (!anyContent) problems.push(`LOST: media ${where} sha256 ${sha} left the card but no complete server recording holds those bytes`);
        else if (!anyRow) problems.push(`NO RECEIPT: media ${where} sha256 ${sha} left the card; the server has the bytes but no journal row wiped it under a verified receipt`);
        else if (!anyPossession) problems.push(`NO POSSESSION PROOF: media ${where} sha256 ${sha} was wiped without a proof of possession answered by the server (no 200 POST …/possession for its recording)`);
        else problems.push(`RECEIPT MISMATCH: media ${where} sha256 ${sha}: receipt, content or key do not line up`);
      } else {
        const ok = left.versions.some((v) => v.bytes && sidecarOnServer(v.bytes));
        if (!ok) problems.push(`SIDECAR LOST: sidecar ${where} (sha256 ${left.versions.map((v) => v.sha256.slice(0, 12)).join(' or ')}) left the card but no complete server recording holds those exact sidecar bytes`);
      }
    }
    if (!dockLog.includes('"msg"')) problems.push('the dock wrote no log at all');

    // 2. Every file still on a card is on the server byte-exact, or listed on its bay with a reason.
    for (const cam of this.cameras) {
      const root = this.cameraRoot(cam);
      const bay = cam.bay === null ? undefined : status?.bays.find((b) => b.bay === bayName(cam.bay!));
      const bayText = bay ? JSON.stringify(bay) : '';
      const queueText = JSON.stringify(status?.queue.recordings.filter((r) => r.serial === cam.serial && (r.reason || r.state === 'quarantined')) ?? []);
      const listed = (rel: string): boolean => {
        const names = [basename(rel)];
        if (isSidecarName(rel)) {
          const media = [...cam.files.values()].find((f) => f.kind === 'media' && SIDECAR_OF(f.rel) === rel);
          if (media) names.push(basename(media.rel));
        }
        return Boolean(bay?.reason) && names.some((n) => bayText.includes(n) || queueText.includes(n));
      };
      for (const file of cam.files.values()) {
        const bytes = readFileSync(join(root, file.rel));
        if (sha256Of(bytes) !== file.sha256) { problems.push(`HARNESS: ${cam.serial}:${file.rel} does not hold the bytes the model expects`); continue; }
        if (file.kind === 'media') {
          if (contentOnServer(cam.serial, file.sha256)) continue;
          if (listed(file.rel)) continue;
          problems.push(`UNACCOUNTED: media ${cam.serial}:${file.rel} (sha256 ${file.sha256.slice(0, 12)}, ${file.size} bytes) is on the card, not on the server and not listed on ${bay ? `${bay.bay} (state ${bay.state}, reason ${JSON.stringify(bay.reason)})` : 'any bay'}`);
        } else {
          if (sidecarOnServer(bytes)) continue;
          if (listed(file.rel)) continue;
          problems.push(`UNACCOUNTED: sidecar ${cam.serial}:${file.rel} (sha256 ${file.sha256.slice(0, 12)}) is on the card, its bytes are in no complete server recording and it is not listed on ${bay ? `${bay.bay} (state ${bay.state}, reason ${JSON.stringify(bay.reason)})` : 'any bay'}`);
        }
      }
    }
    return problems;
  }

  /** Every recording of this dock on the server, its content re-hashed from GET …/content. */
  async serverView(): Promise<ServerRecording[]> {
    const list = await (await this.server.request('/v1/recordings')).json() as { recordings: RecordingListEntry[] };
    const out: ServerRecording[] = [];
    for (const entry of list.recordings) {
      const id = encodeURIComponent(entry.id);
      const detail = await (await this.server.request(`/v1/recordings/${id}`)).json() as { receipt?: Receipt; manifest: RecordingManifest };
      let contentSha256: string | undefined;
      if (entry.state === 'complete') {
        const response = await this.server.request(`/v1/recordings/${id}/content`);
        try {
          const body = Buffer.from(await response.arrayBuffer());
          if (response.ok) contentSha256 = sha256Of(body);
        } catch { /* aborted: a damaged blob is not "on the server" */ }
      }
      out.push({ id: entry.id, complete: entry.state === 'complete' && Boolean(detail.receipt), manifest: detail.manifest, ...(detail.receipt ? { receipt: detail.receipt } : {}), ...(contentSha256 ? { contentSha256 } : {}) });
    }
    return out;
  }
}

export interface ServerRecording {
  id: string;
  complete: boolean;
  manifest: RecordingManifest;
  receipt?: Receipt;
  contentSha256?: string;
}

/** The manifest holds these exact sidecar bytes (device.sidecarBase64), or, from a server without it, the same parsed sidecar. */
export function sidecarMatches(manifest: RecordingManifest, bytes: Buffer): boolean {
  const device = manifest.device as RecordingManifest['device'] & { sidecarBase64?: string };
  if (typeof device.sidecarBase64 === 'string') return Buffer.from(device.sidecarBase64, 'base64').equals(bytes);
  if (!device.sidecar) return false;
  try {
    return canonical(device.sidecar) === canonical(JSON.parse(bytes.toString('utf8')));
  } catch {
    return false;
  }
}

function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`).join(',')}}`;
  return JSON.stringify(value);
}

export interface DockStatusView {
  bays: Array<{ bay: string; serial: string | null; state: string; reason: string | null; [k: string]: unknown }>;
  queue: { depth: number; settling: number; preparing: number; uploading: number; recordings: Array<{ file: string; serial: string; state: string; reason?: string; [k: string]: unknown }>; [k: string]: unknown };
}

export function describeOp(op: Op): string {
  const { t, ...rest } = op;
  const args = Object.entries(rest).map(([k, v]) => `${k}=${typeof v === 'number' && !Number.isInteger(v) ? v.toFixed(2) : String(v)}`).join(' ');
  return args ? `${t}(${args})` : t;
}

/** Can this machine mount a tmpfs (root, or CAP_SYS_ADMIN)? */
export function canMountTmpfs(root: string): boolean {
  const probe = join(root, 'tmpfs-probe');
  mkdirSync(probe, { recursive: true });
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', probe], { stdio: 'ignore' });
    execFileSync('umount', [probe], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  } finally {
    rmSync(probe, { recursive: true, force: true });
  }
}
