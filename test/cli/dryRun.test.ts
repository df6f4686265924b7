/**
 * `bodycam dock --dry-run` through the built CLI beside the real server: each file on the cards by
 * its path with what a run would do (wipe receipted ones, upload new ones, flag a bit flip, quarantine
 * a zero-byte file, leave a symlink alone, wait for a growing file), and proof that nothing happened:
 * the server saw no request at all, every byte and stat of the cards is unchanged, and the journal
 * holds exactly what it held. A real run afterwards does what the dry run said.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { createHash } from 'node:crypto';
import { lstatSync, mkdirSync, readdirSync, readFileSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import Database from 'better-sqlite3';
import { recordCamera, dockCamera } from '../../src/camera/index.js';
import { makeTempDir } from '../helpers/tmp.js';
import { runCli } from '../helpers/cli.js';
import { startLoggedServer, TOKEN, type LoggedServer } from '../helpers/dock.js';

const sha = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

/** Every path under `root` with its type, bytes' hash and stat (symlinks not followed). */
function treeOf(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      const s = lstatSync(path);
      const key = relative(root, path);
      if (s.isDirectory()) { out[key] = `dir ${s.mode} ${s.mtimeMs}`; walk(path); } else if (s.isSymbolicLink()) out[key] = `link ${s.mtimeMs}`;
      else out[key] = `file ${s.size} ${s.mode} ${s.mtimeMs} ${s.ctimeMs} ${s.ino} ${sha(readFileSync(path))}`;
    }
  };
  walk(root);
  return out;
}

function journalDump(stateDir: string): string {
  const db = new Database(join(stateDir, 'journal.sqlite'), { readonly: true });
  try {
    return JSON.stringify(['meta', 'recordings', 'segments', 'events'].map((t) => db.prepare(`SELECT * FROM ${t} ORDER BY rowid`).all()));
  } finally {
    db.close();
  }
}

interface Line { bay: string; path: string; action: string; code: string; detail: string }

function parseTable(stdout: string): Line[] {
  const lines = stdout.split('\n');
  const header = lines[0]!;
  const at = ['PATH', 'ACTION', 'CODE', 'DETAIL'].map((h) => header.indexOf(h));
  return lines.slice(1, lines.indexOf('')).map((l) => ({
    bay: l.slice(0, at[0]).trim(), path: l.slice(at[0], at[1]).trim(), action: l.slice(at[1], at[2]).trim(), code: l.slice(at[2], at[3]).trim(), detail: l.slice(at[3]).trim(),
  }));
}

describe('bodycam dock --dry-run', () => {
  const tmp = makeTempDir('bodycam-dry-run-');
  const bays = join(tmp.path, 'bays');
  const stateDir = join(tmp.path, 'state');
  const tokenFile = join(tmp.path, 'token');
  const env = { ...process.env, BODYCAM_LOG_LEVEL: 'silent' };
  let server: LoggedServer;
  let args: string[];

  beforeAll(async () => {
    server = await startLoggedServer();
    writeFileSync(tokenFile, TOKEN + '\n', { mode: 0o600 });
    mkdirSync(bays);
    args = ['dock', '--bays', bays, '--endpoint', server.url, '--token-file', tokenFile, '--state-dir', stateDir, '--dock-id', 'dock-1',
      '--status-port', '0', '--settle', '0.2s', '--no-fingerprint', '--server-key', join(server.dataDir, 'server-key.pub.pem')];
    const small = { durationSeconds: 1, width: 160, height: 120, fps: 10 };
    await recordCamera({ storage: join(tmp.path, 'cam1'), count: 2, seed: 'd1', ...small });
    await dockCamera({ storage: join(tmp.path, 'cam1'), bays, bay: 'bay1' });
    const once = await runCli([...args, '--once'], { env, timeoutMs: 90_000 }); // receipted, kept (no wipe)
    expect(once.code).toBe(0);
    await recordCamera({ storage: join(tmp.path, 'cam2'), count: 2, seed: 'd2', faults: ['bitflip'], ...small });
    await dockCamera({ storage: join(tmp.path, 'cam2'), bays, bay: 'bay2' });
    const dcim = join(bays, 'bay2', 'DCIM', '100BWC');
    writeFileSync(join(dcim, 'EMPTY.MP4'), '');
    utimesSync(join(dcim, 'EMPTY.MP4'), new Date(Date.now() - 3_600_000), new Date(Date.now() - 3_600_000)); // settled long ago
    symlinkSync('/etc/passwd', join(dcim, 'LINK.MP4'));
  }, 180_000);
  afterAll(async () => {
    await server.close();
    tmp.cleanup();
  });

  it('says what a run would do with each file, and does none of it', async () => {
    // A file still being written (no sidecar, just changed): the run would wait for it.
    writeFileSync(join(bays, 'bay2', 'DCIM', '100BWC', 'GROWING.MP4'), Buffer.alloc(4096, 1));
    const cards = treeOf(bays);
    const state = treeOf(stateDir);
    const journal = journalDump(stateDir);
    const requestsBefore = server.requests.length;
    const result = await runCli([...args, '--settle', '10m', '--wipe-after-ingest', '--dry-run'], { env, timeoutMs: 90_000 });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const lines = parseTable(result.stdout);
    const byPath = (bay: string, name: string): Line => lines.find((l) => l.bay === bay && l.path.endsWith(name))!;
    const bay1 = lines.filter((l) => l.bay === 'bay1' && /\.mp4$/i.test(l.path));
    expect(bay1.map((l) => l.action)).toEqual(['wipe', 'wipe']);
    const bay2 = lines.filter((l) => l.bay === 'bay2' && /_\d{4}\.mp4$/.test(l.path));
    expect(bay2.map((l) => l.action).sort()).toEqual(['flag', 'upload']);
    expect(bay2.find((l) => l.action === 'flag')!.code).toBe('hash-mismatch');
    expect(bay2.find((l) => l.action === 'upload')!.detail).toContain('then wiped once receipted');
    expect(byPath('bay2', 'EMPTY.MP4')).toMatchObject({ action: 'quarantine', code: 'zero_byte' });
    expect(byPath('bay2', 'LINK.MP4')).toMatchObject({ action: 'skip', code: 'symlink' });
    expect(byPath('bay2', 'GROWING.MP4')).toMatchObject({ action: 'settle' });
    expect(lines.every((l) => l.path && !l.path.startsWith('/'))).toBe(true); // paths on the card
    expect(result.stdout).toContain('the server was not contacted');
    // Nothing happened: no request, the cards and the journal as they were.
    expect(server.requests.slice(requestsBefore)).toEqual([]);
    expect(treeOf(bays)).toEqual(cards);
    expect(journalDump(stateDir)).toBe(journal);
    const stateAfter = treeOf(stateDir);
    // SQLite's reader may add its shared-memory index; the journal file and everything else stay byte for byte.
    for (const [path, entry] of Object.entries(state)) expect([path, stateAfter[path]]).toEqual([path, entry]);
    expect(Object.keys(stateAfter).filter((p) => !(p in state)).every((p) => /journal\.sqlite-(shm|wal)$/.test(p))).toBe(true);

    // Without a confirmed key the run would refuse to wipe: the dry run says so too (exit 2).
    const unpinned = await runCli([...args.filter((a, i) => a !== '--server-key' && args[i - 1] !== '--server-key'), '--wipe-after-ingest', '--dry-run'], { env });
    expect(unpinned.code).toBe(2);
    expect(unpinned.stderr).toMatch(/^bodycam: --wipe-after-ingest needs a confirmed server key/);

    // The real run does what the dry run said.
    const run = await runCli([...args, '--wipe-after-ingest', '--once'], { env, timeoutMs: 90_000 });
    expect(run.code).toBe(3); // flagged, quarantined, symlink, growing
    for (const l of bay1) expect(() => lstatSync(join(bays, 'bay1', l.path))).toThrow();
    expect(lstatSync(join(bays, 'bay2', bay2.find((l) => l.action === 'flag')!.path)).isFile()).toBe(true);
    expect(() => lstatSync(join(bays, 'bay2', bay2.find((l) => l.action === 'upload')!.path))).toThrow();
  }, 180_000);
});
