/**
 * Shared pieces of the dock-side safety tests (issue 9 items 4, 5, 6, 13, 14): a real server on
 * 127.0.0.1, the real built CLI (`bodycam dock`), real camera folders, and the dock's journal
 * read straight from its SQLite file afterwards.
 */
import Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { runCli, type CliResult } from './cli.js';
import { startTestServer, TEST_TOKENS, type TestServer } from './server.js';
import { makeTempDir } from './tmp.js';

export const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

export interface JournalRow { key: string; uid: string | null; relPath: string; serial: string; state: string; recordingId: string | null; sha256: string | null; bay: string | null; receiptJson: string | null }

export interface DockRig {
  root: string;
  bays: string;
  stateDir: string;
  server: TestServer;
  /** Common flags of `bodycam dock` for this rig (bays, endpoint, token, state, pinned server key). */
  dockArgs(extra?: string[]): string[];
  once(extra?: string[]): Promise<CliResult>;
  rows(): JournalRow[];
  /** The bytes the server holds for a recording id (GET …/content). */
  serverBytes(recordingId: string): Promise<Buffer | undefined>;
  close(): Promise<void>;
}

export async function startRig(prefix: string): Promise<DockRig> {
  const tmp = makeTempDir(prefix);
  const server = await startTestServer();
  const root = tmp.path;
  const bays = join(root, 'bays');
  const stateDir = join(root, 'state');
  mkdirSync(bays, { recursive: true });
  const tokenFile = join(root, 'token');
  writeFileSync(tokenFile, TEST_TOKENS['dock-1']! + '\n', { mode: 0o600 });
  const keyFile = join(root, 'server-key.pem');
  writeFileSync(keyFile, server.publicKeyPem);
  const dockArgs = (extra: string[] = []): string[] => ['dock', '--bays', bays, '--endpoint', server.url, '--token-file', tokenFile, '--dock-id', 'dock-1',
    '--state-dir', stateDir, '--status-port', '0', '--settle', '0.2s', '--rescan-interval', '0.5s', '--max-backoff', '1s', '--server-key', keyFile, '--log-level', 'silent', ...extra];
  return {
    root, bays, stateDir, server, dockArgs,
    once: (extra = []) => runCli(dockArgs(['--once', ...extra]), { timeoutMs: 90_000 }),
    rows: () => {
      const db = new Database(join(stateDir, 'journal.sqlite'), { readonly: true, fileMustExist: true });
      try {
        return (db.prepare('SELECT key, uid, rel_path AS relPath, serial, state, recording_id AS recordingId, sha256, bay, receipt_json AS receiptJson FROM recordings ORDER BY detected_at, rowid').all() as JournalRow[]);
      } finally { db.close(); }
    },
    serverBytes: async (recordingId) => {
      const response = await server.request(`/v1/recordings/${recordingId}/content`);
      if (response.status !== 200) return undefined;
      return Buffer.from(await response.arrayBuffer());
    },
    close: async () => { await server.close(); tmp.cleanup(); },
  };
}

/** Every regular non-JSON file under a camera folder (relative path → bytes). */
export function mediaOnCard(cameraRoot: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const abs = join(dir, name);
      const stats = lstatSync(abs);
      if (stats.isDirectory()) { if (!name.startsWith('.')) walk(abs); continue; }
      if (stats.isFile() && !name.endsWith('.json') && !name.startsWith('.')) out.set(relative(cameraRoot, abs), readFileSync(abs));
    }
  };
  walk(cameraRoot);
  return out;
}

/**
 * The invariant `--once` exit 0 must mean: every media file on the card is on the server, byte for
 * byte, under a receipted recording of the journal. Returns what is not (empty = holds).
 */
export async function notOnServer(rig: DockRig, bay: string, ignore: (relPath: string) => boolean = () => false): Promise<string[]> {
  const rows = rig.rows();
  const missing: string[] = [];
  for (const [rel, bytes] of mediaOnCard(join(rig.bays, bay))) {
    if (ignore(rel)) continue;
    const sha = sha256(bytes);
    const row = rows.find((r) => r.relPath === rel && r.sha256 === sha && r.bay === bay && (r.state === 'completed' || r.state === 'wiped') && r.receiptJson);
    const held = row?.recordingId ? await rig.serverBytes(row.recordingId) : undefined;
    if (!held || sha256(held) !== sha) missing.push(rel);
  }
  return missing;
}
