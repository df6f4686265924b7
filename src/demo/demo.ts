/**
 * The first run (`npm start` → `bodycam demo`): the reference server on
 * loopback, a fleet of simulated cameras recording and docking into a dock
 * with one bay each, the dock agent offloading them, and then every recording
 * checked the way an auditor would: read back byte for byte, Merkle root
 * recomputed, the server's signed receipt and the camera's signed sidecar
 * verified with their public keys.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { EnvironmentError, UsageError } from '../errors.js';
import { bayName, recordFleet, type FleetCamera } from '../camera/index.js';
import { loadDockConfig, startDockAgent, type DockAgent, type DockStatus } from '../dock/index.js';
import { fileLogger } from '../log.js';
import { merkleRoot } from '../protocol/merkle.js';
import { verifyObject } from '../protocol/signing.js';
import type { Receipt, RecordingListEntry, RecordingManifest } from '../protocol/types.js';
import { startIngestServer, type IngestServer } from '../server/index.js';
import { ServerObserver } from '../replay/index.js';

export const DEMO_MARKER = '.bodycam-demo';
export const DEMO_DOCK_ID = 'demo-dock';

export interface DemoOptions {
  dir: string;
  cameras: number;
  recordings: number;
  /** Seconds per recording. */
  duration: number;
  width?: number;
  height?: number;
  /** Port of the server; 0 picks a free one. */
  port?: number;
  /** Called with the dock's status a few times a second while it works. */
  onStatus?: (status: DockStatus) => void;
  /** Progress lines for a person. */
  onProgress?: (line: string) => void;
  /** Give up after this many seconds. */
  timeoutSeconds?: number;
}

export interface DemoRecording {
  id: string;
  serial: string;
  fileName: string;
  size: number;
  sha256: string;
  integrity: string;
  segments: number;
  /** GET /content re-hashed here equals the camera's SHA-256. */
  readBack: boolean;
  /** Receipt SHA-256 equals the camera's; the server re-hashed the assembled file before signing it. */
  serverHash: boolean;
  /** Merkle root recomputed from the manifest's segment hashes equals the receipt's. */
  merkle: boolean;
  /** Receipt signature verifies with the server's public key. */
  receipt: boolean;
  /** Camera sidecar signature verifies with the camera key in DEVICE.json ('absent' without sidecar). */
  camera: 'verified' | 'invalid' | 'absent';
}

export interface DemoResult {
  dir: string;
  serverUrl: string;
  serverKeyId: string;
  dataDir: string;
  stateDir: string;
  baysDir: string;
  tokenFile: string;
  tokensFile: string;
  logFile: string;
  cameras: number;
  filesRecorded: number;
  /** Camera files the dock deleted after their receipts (all of them, when every check passed). */
  filesWiped: number;
  recordings: DemoRecording[];
  /** Every recording arrived and passed every check. */
  ok: boolean;
  seconds: number;
  /** Left running with keepRunning; close() stops them. */
  close: () => Promise<void>;
}

/** A fresh demo folder: one made by an earlier demo is emptied, anything else is refused. */
function prepareDir(dir: string): void {
  if (existsSync(dir)) {
    const entries = readdirSync(dir);
    if (entries.length > 0 && !entries.includes(DEMO_MARKER)) {
      throw new UsageError(`${dir} exists and was not made by bodycam demo: choose another folder with --dir`, { code: 'E_DEMO_DIR' });
    }
    for (const entry of entries) rmSync(join(dir, entry), { recursive: true, force: true });
  }
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, DEMO_MARKER), 'made by `bodycam demo`; the next demo run empties this folder\n');
}

export async function runDemo(options: DemoOptions & { keepRunning?: boolean }): Promise<DemoResult> {
  const started = Date.now();
  const progress = options.onProgress ?? (() => {});
  const dir = resolve(options.dir);
  prepareDir(dir);
  const dataDir = join(dir, 'server');
  const baysDir = join(dir, 'bays');
  const stateDir = join(dir, 'dock');
  const tokenFile = join(dir, 'dock.token');
  const tokensFile = join(dir, 'tokens.json');
  const logFile = join(dir, 'demo.log');
  // Every bay exists from the start, so the live view shows empty bays filling up.
  for (let i = 0; i < options.cameras; i++) mkdirSync(join(baysDir, bayName(i, options.cameras)), { recursive: true });
  const token = randomBytes(24).toString('hex');
  writeFileSync(tokenFile, token + '\n', { mode: 0o600 });
  writeFileSync(tokensFile, JSON.stringify({ [DEMO_DOCK_ID]: token }, null, 2) + '\n', { mode: 0o600 });
  const logger = fileLogger(logFile, 'info');

  let server: IngestServer | undefined;
  let dock: DockAgent | undefined;
  let viewTimer: NodeJS.Timeout | undefined;
  const close = async (): Promise<void> => {
    if (viewTimer) clearInterval(viewTimer);
    await dock?.stop().catch(() => {});
    await server?.close().catch(() => {});
    dock = undefined;
    server = undefined;
  };
  try {
    try {
      server = await startIngestServer({ dataDir, tokens: { [DEMO_DOCK_ID]: token }, host: '127.0.0.1', port: options.port ?? 0, logger: logger.child({ component: 'server' }) });
    } catch (error) {
      if (error instanceof EnvironmentError && error.code === 'E_PORT_IN_USE') {
        throw new EnvironmentError('E_PORT_IN_USE', `port ${options.port} on 127.0.0.1 is in use: pick another with --port, or --port 0 for a free one`, { cause: error });
      }
      throw error;
    }
    progress(`server   ${server.url}  (data in ${dataDir}; receipt key ${server.keyId.slice(0, 16)}…)`);
    const config = loadDockConfig({
      env: {},
      flags: {
        bays: baysDir, endpoint: server.url, tokenFile, stateDir, dockId: DEMO_DOCK_ID,
        // The demo started this server: its key is known first-hand (a wipe needs a confirmed key).
        serverKey: join(dataDir, 'server-key.pub.pem'),
        wipeAfterIngest: true, statusPort: 0, settle: 1, rescanInterval: 2, segmentSeconds: 2, maxBackoff: 5,
      },
    });
    dock = await startDockAgent(config, { logger: logger.child({ component: 'dock' }) });
    progress(`dock     ${options.cameras} bay(s) in ${baysDir}; status on 127.0.0.1:${dock.statusPort}`);
    const agent = dock;
    if (options.onStatus) {
      const onStatus = options.onStatus;
      viewTimer = setInterval(() => onStatus(agent.status()), 200);
    }
    progress(`cameras  recording ${options.cameras} × ${options.recordings} × ${options.duration}s and docking each as it finishes`);
    const fleet: FleetCamera[] = await recordFleet({
      cameras: options.cameras, bays: baysDir, staging: join(dir, 'cameras'),
      count: options.recordings, durationSeconds: options.duration,
      width: options.width ?? 640, height: options.height ?? 360, fps: 15, seed: 'bodycam-demo',
    });
    const files = fleet.flatMap((c) => c.files.map((f) => ({ ...f, serial: c.serial, fileName: f.mediaPath.split('/').pop()! })));
    // Done when the dock has decided every recorded file: wiped after its receipt, or set aside
    // (quarantined, or completed but flagged and therefore kept on the camera).
    const deadline = Date.now() + (options.timeoutSeconds ?? 300) * 1000;
    const settled = (r: { state: string; integrity?: string; truncated?: boolean }): boolean =>
      r.state === 'wiped' || r.state === 'quarantined' || (r.state === 'completed' && (r.integrity !== 'verified' || Boolean(r.truncated)));
    for (;;) {
      const rows = agent.status().queue.recordings;
      const decided = files.every((f) => rows.some((r) => r.file.endsWith(f.fileName) && settled(r)));
      if (decided) break;
      if (Date.now() > deadline) throw new EnvironmentError('E_DEMO_TIMEOUT', `the dock did not finish within ${options.timeoutSeconds ?? 300}s: see ${logFile}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    await agent.whenIdle();
    if (viewTimer) clearInterval(viewTimer);
    viewTimer = undefined;
    options.onStatus?.(agent.status());

    const observer = new ServerObserver(server.url, token);
    const listed = (await observer.list()) ?? [];
    const recordings: DemoRecording[] = [];
    for (const entry of listed.sort((a, b) => a.fileName.localeCompare(b.fileName))) {
      const camera = files.find((f) => f.fileName === entry.fileName);
      recordings.push(await checkRecording(server, observer, entry, camera?.sha256));
    }
    // RecordedFile paths point into the bays (the fleet docked each camera there).
    const filesWiped = files.filter((f) => !existsSync(f.mediaPath)).length;
    const ok = recordings.length === files.length && filesWiped === files.length
      && recordings.every((r) => r.readBack && r.serverHash && r.merkle && r.receipt && r.camera === 'verified');
    const result: DemoResult = {
      dir, serverUrl: server.url, serverKeyId: server.keyId, dataDir, stateDir, baysDir, tokenFile, tokensFile, logFile,
      cameras: fleet.length, filesRecorded: files.length, filesWiped, recordings, ok, seconds: (Date.now() - started) / 1000, close,
    };
    if (!options.keepRunning) await close();
    return result;
  } catch (error) {
    await close();
    throw error;
  }
}

async function checkRecording(server: IngestServer, observer: ServerObserver, entry: RecordingListEntry, cameraSha256: string | undefined): Promise<DemoRecording> {
  const { manifest, receipt } = await observer.detail<{ manifest: RecordingManifest; receipt?: Receipt }>(entry.id);
  const digest = await observer.contentDigest(entry.id);
  const sidecar = manifest.device.sidecar;
  const root = merkleRoot(manifest.segments.map((s) => s.sha256));
  return {
    id: entry.id, serial: entry.deviceSerial, fileName: entry.fileName, size: entry.size, sha256: entry.sha256,
    integrity: entry.integrity, segments: entry.segmentCount,
    readBack: 'sha256' in digest && digest.sha256 === cameraSha256 && digest.size === entry.size,
    serverHash: !!receipt && receipt.sha256 === cameraSha256 && receipt.size === entry.size,
    merkle: !!receipt && root === receipt.merkleRoot && root === manifest.merkleRoot,
    receipt: !!receipt && receipt.serverKeyId === server.keyId && verifyObject(receipt as unknown as Record<string, unknown>, server.publicKeyPem),
    camera: !sidecar || !manifest.device.publicKeyPem ? 'absent' : verifyObject(sidecar, manifest.device.publicKeyPem) ? 'verified' : 'invalid',
  };
}
