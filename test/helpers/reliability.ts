/**
 * The reliability harness: the real CLI programs as child processes (server,
 * dock) that can be SIGKILLed and restarted on the same data/state dirs, the
 * checks every reliability test ends with (byte-exact, stored once, wiped only
 * on receipt, never re-sent after an acknowledgement), and the JSON summary
 * each test writes for docs/reliability.md.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { verifyObject } from '../../src/protocol/signing.js';
import type { Receipt, RecordingListEntry, RecordingManifest } from '../../src/protocol/types.js';
import { BIN } from './cli.js';
import { testToken } from './server.js';

export const DOCK_ID = 'dock-1';
/** dock-1 is the dock under test; the others are the rest of the fleet (floods, replayed tokens). */
export const TOKENS: Record<string, string> = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`dock-${i + 1}`, testToken(`dock-${i + 1}`)]));

/** Size knobs: small in `npm test`, large in `npm run soak` (scripts/soak.mjs sets these). */
export function knob(name: string, small: number): number {
  const raw = process.env[`RELIABILITY_${name}`];
  const value = raw === undefined ? NaN : Number(raw);
  return Number.isFinite(value) && value > 0 ? value : small;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export const sha256Of = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

export async function waitFor<T>(what: string, check: () => T | Promise<T>, timeoutMs = 60_000, everyMs = 150): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

function spawnBodycam(args: string[], logPath: string): ChildProcess {
  const fd = openSync(logPath, 'a');
  try {
    return spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', fd] });
  } finally {
    closeSync(fd);
  }
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** A `bodycam` child process that tests kill (SIGKILL) or stop (SIGTERM) and start again. */
abstract class BodycamChild {
  child?: ChildProcess;
  starts = 0;
  kills = 0;

  /** Called once the process has gone, however it ended. */
  protected ended(): void {}

  async kill(): Promise<void> {
    if (await this.end('SIGKILL')) this.kills++;
    this.ended();
  }

  async stop(): Promise<void> {
    await this.end('SIGTERM');
    this.ended();
  }

  private async end(signal: NodeJS.Signals): Promise<boolean> {
    const child = this.child;
    if (!child) return false;
    child.kill(signal);
    await exited(child);
    this.child = undefined;
    return true;
  }
}

/** `bodycam server` as a child process; restarts keep the data dir and the port. */
export class ServerProcess extends BodycamChild {
  port = 0;
  readonly logPath: string;
  readonly tokensPath: string;

  constructor(readonly dataDir: string, readonly extraArgs: string[] = []) {
    super();
    mkdirSync(dataDir, { recursive: true });
    this.logPath = `${dataDir}.log`;
    this.tokensPath = `${dataDir}.tokens.json`;
    // The server refuses a tokens file readable by group or others.
    writeFileSync(this.tokensPath, JSON.stringify(TOKENS), { mode: 0o600 });
  }

  get url(): string { return `http://127.0.0.1:${this.port}`; }

  async start(): Promise<void> {
    // The same port after a restart: a SIGKILLed listener frees it at once (SO_REUSEADDR).
    for (let attempt = 0; ; attempt++) {
      const child = spawnBodycam(['server', '--data-dir', this.dataDir, '--listen', `127.0.0.1:${this.port}`, '--tokens', this.tokensPath, ...this.extraArgs], this.logPath);
      const line = await new Promise<string | undefined>((resolve) => {
        let out = '';
        child.stdout!.on('data', (d: Buffer) => {
          out += d.toString();
          const match = /listening (\S+)/.exec(out);
          if (match) resolve(match[1]);
        });
        child.once('exit', () => resolve(undefined));
      });
      if (line) {
        this.child = child;
        this.port = Number(new URL(line).port);
        this.starts++;
        return;
      }
      if (attempt >= 20) throw new Error(`bodycam server did not start (see ${this.logPath})`);
      await sleep(100);
    }
  }

  request(path: string, init: RequestInit & { dock?: string } = {}): Promise<Response> {
    const { dock = DOCK_ID, headers, ...rest } = init;
    const merged = new Headers(headers);
    if (!merged.has('authorization')) merged.set('authorization', `Bearer ${TOKENS[dock] ?? dock}`);
    return fetch(this.url + path, { ...rest, headers: merged });
  }

  /** Every request line the server logged so far. */
  requestLog(): Array<{ time: number; method: string; url: string; status: number }> {
    return parseRequestLog(readFileSync(this.logPath, 'utf8'));
  }
}

export function parseRequestLog(text: string): Array<{ time: number; method: string; url: string; status: number }> {
  const out: Array<{ time: number; method: string; url: string; status: number }> = [];
  for (const line of text.split('\n')) {
    if (!line.includes('"msg":"request"')) continue;
    try {
      const r = JSON.parse(line) as { time: string; method: string; url: string; status: number };
      out.push({ time: Date.parse(r.time), method: r.method, url: r.url, status: r.status });
    } catch { /* a line cut by SIGKILL */ }
  }
  return out;
}

export interface DockProcessOptions {
  root: string;
  endpoint: string;
  bays: string;
  extraArgs?: string[];
}

/** `bodycam dock` as a child process; every restart uses the same --state-dir. */
export class DockProcess extends BodycamChild {
  readonly stateDir: string;
  readonly logPath: string;
  readonly tokenFile: string;
  /** Start time of each generation (one per process lifetime). */
  readonly generations: Array<{ startedAt: number; endedAt?: number; acked?: Set<string> }> = [];

  constructor(readonly options: DockProcessOptions) {
    super();
    this.stateDir = join(options.root, 'dock-state');
    this.logPath = join(options.root, 'dock.log');
    this.tokenFile = join(options.root, 'dock.token');
    writeFileSync(this.tokenFile, TOKENS[DOCK_ID] + '\n', { mode: 0o600 });
  }

  /** `extraArgs`: this generation's own flags instead of the options' (e.g. the last one of a loop without its rate cap). */
  start(extraArgs: string[] = this.options.extraArgs ?? []): void {
    this.child = spawnBodycam(['dock', '--bays', this.options.bays, '--endpoint', this.options.endpoint, '--token-file', this.tokenFile,
      '--state-dir', this.stateDir, '--dock-id', DOCK_ID, '--status-port', '0', ...extraArgs], this.logPath);
    this.child.stdout!.resume();
    this.generations.push({ startedAt: Date.now() });
    this.starts++;
  }

  get pid(): number | undefined { return this.child?.pid; }

  /** Record what the journal holds as acknowledged at the moment the process went. */
  protected override ended(): void {
    const generation = this.generations[this.generations.length - 1];
    if (!generation || generation.endedAt !== undefined) return;
    generation.endedAt = Date.now();
    generation.acked = readJournal(this.stateDir).acked;
  }
}

export interface JournalView {
  /** `<recordingId>/<index>` of every segment the dock journaled as acknowledged. */
  acked: Set<string>;
  rows: Array<{ relPath: string; serial: string; state: string; reason: string | null; reasonCode: string | null; sha256: string | null; receipt?: Receipt; bay: string | null }>;
}

/** Read the dock's SQLite journal (the dock is dead or it is a WAL reader: both are safe). */
export function readJournal(stateDir: string): JournalView {
  const path = join(stateDir, 'journal.sqlite');
  if (!existsSync(path)) return { acked: new Set(), rows: [] };
  const db = new Database(path, { fileMustExist: true });
  try {
    db.pragma('busy_timeout = 5000');
    // A dock that is just starting may have created the file but not its tables yet.
    const tables = (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as Array<{ name: string }>).map((t) => t.name);
    if (!tables.includes('segments') || !tables.includes('recordings')) return { acked: new Set(), rows: [] };
    const acked = new Set((db.prepare(`SELECT r.recording_id AS id, s.idx AS idx FROM segments s JOIN recordings r ON r.key = s.rkey
      WHERE s.acked = 1 AND r.recording_id IS NOT NULL`).all() as Array<{ id: string; idx: number }>).map((r) => `${r.id}/${r.idx}`));
    const rows = (db.prepare('SELECT rel_path, serial, state, reason, reason_code, sha256, receipt_json, bay FROM recordings').all() as Array<{
      rel_path: string; serial: string; state: string; reason: string | null; reason_code: string | null; sha256: string | null; receipt_json: string | null; bay: string | null;
    }>).map((r) => ({
      relPath: r.rel_path, serial: r.serial, state: r.state, reason: r.reason, reasonCode: r.reason_code, sha256: r.sha256, bay: r.bay,
      ...(r.receipt_json ? { receipt: JSON.parse(r.receipt_json) as Receipt } : {}),
    }));
    return { acked, rows };
  } finally {
    db.close();
  }
}

/** A recording as the camera wrote it, remembered before the dock may wipe it. */
export interface OriginalFile {
  /** Where it lives while docked. */
  path: string;
  relPath: string;
  serial: string;
  sha256: string;
  size: number;
}

export function originalsIn(cameraRoot: string, serial: string, relPaths: string[]): OriginalFile[] {
  return relPaths.map((relPath) => {
    const path = join(cameraRoot, relPath);
    const data = readFileSync(path);
    return { path, relPath, serial, sha256: sha256Of(data), size: data.length };
  });
}

/**
 * Checks at the moment of a kill: every camera file already gone has a receipt
 * for exactly its bytes, signed by the server, stored in the dock's journal.
 * Returns the files wiped without one (must be empty).
 */
export function wipedWithoutReceipt(originals: OriginalFile[], journal: JournalView, serverKeyPem: string): string[] {
  const bad: string[] = [];
  for (const file of originals) {
    if (existsSync(file.path)) continue;
    const row = journal.rows.find((r) => r.sha256 === file.sha256 && r.receipt);
    if (!row || row.receipt!.sha256 !== file.sha256 || !verifyObject(row.receipt as unknown as Record<string, unknown>, serverKeyPem)) bad.push(file.path);
  }
  return bad;
}

export interface SegmentPutAccounting {
  /** PUTs the server answered 2xx for a segment it had already answered 2xx for. */
  duplicate2xx: number;
  /** Of those, PUTs of a segment the dock had journaled as acknowledged in an earlier life: must be 0. */
  resentAfterAck: number;
  resentAfterAckExamples: string[];
  segmentPuts2xx: number;
}

/**
 * "Acknowledged" from the dock's view = the dock received the 2xx and journaled
 * the segment as acked. A PUT the server completed but whose answer the dock never
 * journaled (killed first, or the answer was cut on the wire) may be sent again:
 * it shows in `duplicate2xx` but not in `resentAfterAck`. Each kill ends a
 * generation; its journal's acked set is read right after the SIGKILL; every PUT
 * the server logged after a later generation started must not be in it.
 */
export function accountSegmentPuts(log: Array<{ time: number; method: string; url: string; status: number }>, generations: DockProcess['generations']): SegmentPutAccounting {
  const seen = new Set<string>();
  const result: SegmentPutAccounting = { duplicate2xx: 0, resentAfterAck: 0, resentAfterAckExamples: [], segmentPuts2xx: 0 };
  // cumulative[g] = everything acked by the end of generations 0..g (the acked set only grows, barring a re-plan).
  const cumulative: Array<Set<string>> = [];
  for (const [g, generation] of generations.entries()) cumulative.push(new Set([...(cumulative[g - 1] ?? []), ...(generation.acked ?? [])]));
  const ackedBefore = (time: number): Set<string> | undefined => {
    let last = -1;
    for (let g = 0; g < generations.length - 1; g++) {
      if (generations[g + 1]!.startedAt > time) break;
      last = g;
    }
    return last >= 0 ? cumulative[last] : undefined;
  };
  for (const entry of log) {
    const match = /^\/v1\/recordings\/([^/]+)\/segments\/(\d+)$/.exec(entry.url);
    if (entry.method !== 'PUT' || !match) continue;
    const key = `${decodeURIComponent(match[1]!)}/${match[2]}`;
    if (entry.status >= 200 && entry.status < 300) {
      result.segmentPuts2xx++;
      if (seen.has(key)) result.duplicate2xx++;
      seen.add(key);
    }
    if (ackedBefore(entry.time)?.has(key)) {
      result.resentAfterAck++;
      if (result.resentAfterAckExamples.length < 5) result.resentAfterAckExamples.push(`${key} at ${new Date(entry.time).toISOString()}`);
    }
  }
  return result;
}

export interface ServerVerdict {
  recordings: number;
  bytes: number;
  lost: string[];
  altered: string[];
  duplicated: string[];
  blobs: number;
  distinctSegmentHashes: number;
  receiptsVerified: number;
}

/**
 * The end-of-run truth: each original is on the server once, complete, with a
 * receipt that verifies, and its content hashes to the camera's SHA-256.
 */
export async function verifyServer(server: { request: ServerProcess['request']; dataDir: string }, originals: OriginalFile[], options: { dock?: string } = {}): Promise<ServerVerdict> {
  const keys = await (await server.request('/v1/keys')).json() as { publicKeyPem: string };
  const list = await (await server.request('/v1/recordings', options)).json() as { recordings: RecordingListEntry[] };
  const verdict: ServerVerdict = { recordings: list.recordings.length, bytes: 0, lost: [], altered: [], duplicated: [], blobs: 0, distinctSegmentHashes: 0, receiptsVerified: 0 };
  const segmentHashes = new Set<string>();
  for (const file of originals) {
    const matches = list.recordings.filter((r) => r.sha256 === file.sha256 && r.deviceSerial === file.serial);
    if (matches.length === 0 || matches.every((m) => m.state !== 'complete')) { verdict.lost.push(file.relPath); continue; }
    if (matches.length > 1) verdict.duplicated.push(file.relPath);
    const entry = matches.find((m) => m.state === 'complete')!;
    const detail = await (await server.request(`/v1/recordings/${entry.id}`, options)).json() as { receipt?: Receipt; manifest: RecordingManifest };
    if (detail.receipt && detail.receipt.sha256 === file.sha256 && verifyObject(detail.receipt as unknown as Record<string, unknown>, keys.publicKeyPem)) verdict.receiptsVerified++;
    const content = Buffer.from(await (await server.request(`/v1/recordings/${entry.id}/content`, options)).arrayBuffer());
    if (sha256Of(content) !== file.sha256 || content.length !== file.size) verdict.altered.push(file.relPath);
    verdict.bytes += content.length;
  }
  for (const entry of list.recordings) {
    const detail = await (await server.request(`/v1/recordings/${entry.id}`, options)).json() as { manifest: RecordingManifest };
    for (const s of detail.manifest.segments) segmentHashes.add(s.sha256);
  }
  verdict.distinctSegmentHashes = segmentHashes.size;
  verdict.blobs = countBlobs(join(server.dataDir, 'blobs'));
  return verdict;
}

export function countBlobs(dir: string): number {
  if (!existsSync(dir)) return 0;
  let n = 0;
  for (const sub of readdirSync(dir)) {
    const path = join(dir, sub);
    if (statSync(path).isDirectory()) n += readdirSync(path).length;
  }
  return n;
}

/** Where the JSON summaries go: $RELIABILITY_REPORT_DIR, or a fixed folder in the temp dir. */
export function reportDir(): string {
  const dir = process.env.RELIABILITY_REPORT_DIR ?? join(tmpdir(), 'bodycam-reliability');
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** One JSON file per test section; scripts/soak.mjs merges them into reliability-report.json. */
export function writeReport(section: string, figures: Record<string, unknown>): string {
  const path = join(reportDir(), `${section}.json`);
  writeFileSync(path, JSON.stringify({ section, finishedAt: new Date().toISOString(), size: process.env.RELIABILITY_SIZE ?? 'npm-test', ...figures }, null, 2) + '\n');
  return path;
}

/** VmRSS in KiB and utime+stime in clock ticks of a live process. */
export function procSample(pid: number): { rssKiB: number; cpuTicks: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const rss = /VmRSS:\s+(\d+)\s+kB/.exec(status);
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // After "pid (comm) ", field 3 is state; utime and stime are fields 14 and 15 overall.
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    return { rssKiB: rss ? Number(rss[1]) : 0, cpuTicks: utime + stime };
  } catch {
    return undefined;
  }
}

/** Total size of the journal's SQLite files (db + WAL + SHM). */
export function journalBytes(stateDir: string): number {
  let total = 0;
  for (const suffix of ['', '-wal', '-shm']) {
    const path = join(stateDir, `journal.sqlite${suffix}`);
    if (existsSync(path)) total += statSync(path).size;
  }
  return total;
}

export interface CustodyAccounting {
  entries: number;
  created: number;
  segmentsStored: number;
  receipts: number;
  /** Recordings, blobs and receipts the store holds with no custody entry for them. */
  missing: string[];
}

/**
 * Compare the custody log with what the store holds: every recording needs a
 * `recording-created`, every blob a `segment-stored`, every receipt a `receipt-issued`.
 */
export function accountCustody(dataDir: string, expected: { recordingIds: string[]; blobHashes: string[]; receiptIds: string[] }): CustodyAccounting {
  const path = join(dataDir, 'custody.log');
  const lines = existsSync(path) ? readFileSync(path, 'utf8').split('\n').filter(Boolean) : [];
  const events = lines.map((l) => { try { return JSON.parse(l) as { event: string; recordingId: string; sha256: string }; } catch { return undefined; } })
    .filter((e): e is { event: string; recordingId: string; sha256: string } => e !== undefined);
  const created = new Set(events.filter((e) => e.event === 'recording-created').map((e) => e.recordingId));
  const stored = new Set(events.filter((e) => e.event === 'segment-stored').map((e) => e.sha256));
  const receipts = new Set(events.filter((e) => e.event === 'receipt-issued').map((e) => e.recordingId));
  const missing = [
    ...expected.recordingIds.filter((id) => !created.has(id)).map((id) => `recording-created ${id}`),
    ...expected.blobHashes.filter((h) => !stored.has(h)).map((h) => `segment-stored ${h}`),
    ...expected.receiptIds.filter((id) => !receipts.has(id)).map((id) => `receipt-issued ${id}`),
  ];
  return { entries: lines.length, created: created.size, segmentsStored: stored.size, receipts: receipts.size, missing };
}

export function blobHashes(dataDir: string): string[] {
  const dir = join(dataDir, 'blobs');
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((sub) => (statSync(join(dir, sub)).isDirectory() ? readdirSync(join(dir, sub)) : []));
}
