/**
 * Shared pieces of the wipe's safety tests (issue 9 items 1-3): a camera made by the simulated
 * firmware, the real built CLI as the dock, a real server, the dock's journal read back, the
 * camera's own key (to re-sign a sidecar as the firmware would), and a fake ingest endpoint.
 */
import { createHash, createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { recordCamera } from '../../src/camera/index.js';
import { keyPairFromSeed } from '../../src/camera/identity.js';
import { derive } from '../../src/camera/random.js';
import { signObject, keyIdOf } from '../../src/protocol/signing.js';
import type { RecordingManifest } from '../../src/protocol/types.js';
import { runCli, type CliResult } from './cli.js';
import { DOCK_ID, TOKENS } from './reliability.js';

export { DOCK_ID, TOKENS };

export const sha = (data: Buffer | string): string => createHash('sha256').update(data).digest('hex');

export interface Camera {
  root: string;
  seed: string;
  serial: string;
  media: string;
  sidecar: string;
}

/** One short recording with its signed sidecar in <bays>/<bay>. */
export async function makeCamera(bays: string, bay: string, seed: string, durationSeconds = 2): Promise<Camera> {
  const root = join(bays, bay);
  const result = await recordCamera({ storage: root, count: 1, durationSeconds, seed, width: 160, height: 120, fps: 10 });
  const file = result.files[0]!;
  return { root, seed, serial: result.serial, media: file.mediaPath, sidecar: file.sidecarPath! };
}

/** The camera's private key, derived from its seed as the simulated firmware does. */
export function cameraKeyPem(camera: Camera): string {
  return keyPairFromSeed(derive(camera.seed, `key:${camera.serial}`)).privateKeyPem;
}

/** What the officer's re-categorisation does: a new sidecar with a valid camera signature, written atomically. */
export function resignSidecar(camera: Camera, changes: Record<string, unknown> = { category: 'critical-incident', critical: true }): Buffer {
  const current = JSON.parse(readFileSync(camera.sidecar, 'utf8')) as Record<string, unknown>;
  const { signature: _old, ...unsigned } = current;
  const signed = signObject({ ...unsigned, ...changes }, cameraKeyPem(camera));
  const bytes = Buffer.from(JSON.stringify(signed, null, 2) + '\n');
  writeFileSync(camera.sidecar + '.tmp', bytes);
  renameSync(camera.sidecar + '.tmp', camera.sidecar);
  return bytes;
}

export interface DockRun extends CliResult { args: string[] }

/** `bodycam dock --once` through the built CLI (one dock id per state dir: the server pins a dock's key). */
export async function dockOnce(options: { bays: string; endpoint: string; stateDir: string; tokenFile: string; dockId?: string; wipe?: boolean; serverKey?: string; extra?: string[]; env?: NodeJS.ProcessEnv }): Promise<DockRun> {
  const dockId = options.dockId ?? DOCK_ID;
  writeFileSync(options.tokenFile, TOKENS[dockId] + '\n', { mode: 0o600 });
  const args = ['dock', '--once', '--bays', options.bays, '--endpoint', options.endpoint, '--token-file', options.tokenFile, '--state-dir', options.stateDir,
    '--dock-id', dockId, '--status-port', '0', '--settle', '0.2s', '--segment-seconds', '0.5s', '--max-backoff', '0.5s', '--request-retries', '1', '--once-attempts', '2',
    '--log-level', 'warn', ...(options.wipe ? ['--wipe-after-ingest'] : []), ...(options.serverKey ? ['--server-key', options.serverKey] : []), ...(options.extra ?? [])];
  const result = await runCli(args, { env: { ...process.env, ...options.env }, timeoutMs: 90_000 });
  return { ...result, args };
}

export interface Row { relPath: string; state: string; reason: string | null; recordingId: string | null; info: Record<string, unknown>; manifest?: RecordingManifest; receiptJson: string | null }

export function journalRows(stateDir: string): Row[] {
  const db = new Database(join(stateDir, 'journal.sqlite'), { readonly: true, fileMustExist: true });
  try {
    const raw = db.prepare('SELECT rel_path, state, reason, recording_id, info_json, manifest_json, receipt_json FROM recordings').all() as Array<Record<string, string | null>>;
    return raw.map((r) => ({
      relPath: r.rel_path!, state: r.state!, reason: r.reason ?? null, recordingId: r.recording_id ?? null, info: JSON.parse(r.info_json ?? '{}') as Record<string, unknown>,
      ...(r.manifest_json ? { manifest: JSON.parse(r.manifest_json) as RecordingManifest } : {}), receiptJson: r.receipt_json ?? null,
    }));
  } finally {
    db.close();
  }
}

export function journalEvents(stateDir: string): Array<{ kind: string; detail: string | null }> {
  const db = new Database(join(stateDir, 'journal.sqlite'), { readonly: true, fileMustExist: true });
  try {
    return db.prepare('SELECT kind, detail FROM events ORDER BY id').all() as Array<{ kind: string; detail: string | null }>;
  } finally {
    db.close();
  }
}

/** Wait for the wipe's test pause (BODYCAM_WIPE_PAUSE_FILE) to be reached; returns the camera path it names. */
export async function waitForPause(pauseFile: string, timeoutMs = 60_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try { return readFileSync(pauseFile, 'utf8'); } catch { await new Promise((r) => setTimeout(r, 25)); }
  }
  throw new Error('the wipe never reached its pause point');
}

/** After the paused moment a test acted on: let every later pause of the same run pass (the new version's wipe). */
export async function releasePauses<T>(pauseFile: string, running: Promise<T>): Promise<T> {
  let done = false;
  void running.finally(() => { done = true; });
  while (!done) {
    rmSync(pauseFile, { force: true });
    await new Promise((r) => setTimeout(r, 25));
  }
  return running;
}

// ---- a fake ingest endpoint ------------------------------------------------------

export type FakeMode =
  /** Keeps no bytes; possession → 404. */
  | 'no-bytes'
  /** Keeps no bytes; answers with what a server holding only hashes can compute: H(nonce ‖ segment sha256). */
  | 'hash-only'
  /** Keeps the bytes but answers as if the nonce were another (an old answer replayed). */
  | 'wrong-nonce'
  /** Keeps the bytes, answers correctly but for other segments than challenged. */
  | 'other-segments'
  /** Keeps the bytes and answers honestly (the control: this one does get the camera wiped). */
  | 'honest';

export interface FakeEndpoint {
  url: string;
  publicKeyPem: string;
  keyId: string;
  /** PEM file of the fake's key (what a careless operator would hand over as --server-key). */
  keyFile: string;
  possessionRequests: number;
  segmentBytesReceived: number;
  close(): Promise<void>;
}

async function body(request: IncomingMessage): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of request) parts.push(chunk as Buffer);
  return Buffer.concat(parts);
}

/**
 * A small real HTTP server on 127.0.0.1:0 that plays ingest server: its own key at /v1/keys,
 * "complete" with its own valid signed receipt. In every mode but `honest` it cannot prove
 * possession, whatever it answers.
 */
export async function startFakeEndpoint(dir: string, mode: FakeMode): Promise<FakeEndpoint> {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const keyId = keyIdOf(publicKeyPem);
  const keyFile = join(dir, `fake-${mode}-key.pub.pem`);
  writeFileSync(keyFile, publicKeyPem);
  const manifests = new Map<string, RecordingManifest>();
  const kept = new Map<string, Buffer>();
  let seq = 0;
  const state = { possessionRequests: 0, segmentBytesReceived: 0 };
  const receiptFor = (m: RecordingManifest) => signObject({
    protocol: 'bodycam-ingest/1', type: 'receipt', recordingId: m.recordingId, dockId: m.dock.id, sha256: m.file.sha256, size: m.file.size,
    segmentCount: m.segments.length, merkleRoot: m.merkleRoot, receivedAt: new Date().toISOString(), serverKeyId: keyId, custodySeq: ++seq,
    custodyPrevHash: '0'.repeat(64),
  }, createPrivateKey(privateKey.export({ type: 'pkcs8', format: 'pem' })));
  const send = (res: import('node:http').ServerResponse, status: number, json: unknown) => {
    res.writeHead(status, { 'content-type': status >= 400 ? 'application/problem+json' : 'application/json' });
    res.end(JSON.stringify(json));
  };
  const server: Server = createServer((req, res) => {
    void (async () => {
      const url = req.url ?? '';
      const data = await body(req);
      if (req.method === 'GET' && url === '/v1/keys') return send(res, 200, { keyId, publicKeyPem, algorithm: 'Ed25519' });
      if (req.method === 'POST' && url === '/v1/recordings') {
        const m = JSON.parse(data.toString()) as RecordingManifest;
        manifests.set(m.recordingId, m);
        // The attack of the issue: "complete" at once, having received only the manifest.
        if (mode === 'no-bytes' || mode === 'hash-only') return send(res, 201, { recordingId: m.recordingId, state: 'complete', missing: [], receipt: receiptFor(m) });
        return send(res, 201, { recordingId: m.recordingId, state: 'receiving', missing: m.segments.map((s) => s.index) });
      }
      const seg = /^\/v1\/recordings\/([^/]+)\/segments\/(\d+)$/.exec(url);
      if (req.method === 'PUT' && seg) {
        state.segmentBytesReceived += data.length;
        kept.set(`${decodeURIComponent(seg[1]!)}/${seg[2]}`, data);
        return send(res, 201, { recordingId: seg[1], index: Number(seg[2]), stored: true });
      }
      const done = /^\/v1\/recordings\/([^/]+)\/complete$/.exec(url);
      if (req.method === 'POST' && done) {
        const m = manifests.get(decodeURIComponent(done[1]!));
        if (!m) return send(res, 404, { code: 'not_found', status: 404, title: 'No such recording' });
        return send(res, 200, receiptFor(m));
      }
      const pop = /^\/v1\/recordings\/([^/]+)\/possession$/.exec(url);
      if (req.method === 'POST' && pop) {
        state.possessionRequests++;
        const id = decodeURIComponent(pop[1]!);
        const m = manifests.get(id);
        const challenge = JSON.parse(data.toString()) as { nonce: string; segments: number[]; sidecar?: boolean };
        if (!m || mode === 'no-bytes') return send(res, 404, { code: 'not_found', status: 404, title: 'No such recording' });
        const nonceFor = mode === 'wrong-nonce' ? Buffer.alloc(32, 7) : Buffer.from(challenge.nonce, 'hex');
        const answerFor = (index: number): string => {
          const segment = m.segments[index]!;
          if (mode === 'hash-only') return sha(Buffer.concat([nonceFor, Buffer.from(segment.sha256, 'hex')]));
          return sha(Buffer.concat([nonceFor, kept.get(`${id}/${source(index)}`) ?? Buffer.alloc(0)]));
        };
        // other-segments: each challenged index answered from the bytes of the next segment.
        const source = (i: number): number => (mode === 'other-segments' ? (i + 1) % m.segments.length : i);
        const sidecarBytes = m.device.sidecarBase64 ? Buffer.from(m.device.sidecarBase64, 'base64') : Buffer.alloc(0);
        return send(res, 200, {
          recordingId: id, nonce: challenge.nonce, answers: challenge.segments.map((index) => ({ index, sha256: answerFor(index) })),
          ...(challenge.sidecar ? { sidecarSha256: sha(Buffer.concat([nonceFor, sidecarBytes])) } : {}),
        });
      }
      return send(res, 404, { code: 'not_found', status: 404, title: 'not here' });
    })().catch((error: unknown) => { res.writeHead(500); res.end(String(error)); });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${address.port}`, publicKeyPem, keyId, keyFile,
    get possessionRequests() { return state.possessionRequests; },
    get segmentBytesReceived() { return state.segmentBytesReceived; },
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}
