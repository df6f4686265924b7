/**
 * The dock's state dir fills up while it uploads (a real tmpfs, filled at the first segment PUT,
 * whose request then fails): the journal cannot record the failure. Before, the write in the
 * failure path threw out of the job (SqliteError: database or disk is full) as an unhandled
 * rejection: the daemon died, `--once` printed a raw stack and no report. Now the job waits in
 * memory and runs again; `--once` ends with its report (exit 1), and once space is back the next
 * run offloads everything, byte-exact. Mounting tmpfs needs root, as on CI.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { sha256, startRig, type DockRig } from '../helpers/cards.js';
import { runCli } from '../helpers/cli.js';
import { makeFmp4 } from '../helpers/dock.js';
import { startHookProxy, type HookProxy } from '../helpers/hookProxy.js';

function run(command: string, args: string[]): void {
  const result = spawnSync(command, args, { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')}: ${result.stderr || result.error?.message} (this case mounts tmpfs: it needs root, as on CI)`);
}

/** Write zeros into `path` until the file system has no room left. */
function fill(path: string): void {
  const fd = openSync(path, 'w');
  const block = Buffer.alloc(64 * 1024);
  try {
    for (;;) writeSync(fd, block);
  } catch (error) {
    if ((error as { code?: string }).code !== 'ENOSPC') throw error;
  } finally {
    closeSync(fd);
  }
}

describe('dock: the state dir fills up mid-upload', () => {
  let rig: DockRig | undefined;
  let proxy: HookProxy | undefined;
  let mounted = '';
  afterAll(async () => {
    await proxy?.close();
    if (mounted) spawnSync('umount', [mounted]);
    await rig?.close();
  });

  it('--once ends with its report (no crash); the next run with space back offloads every file once', async () => {
    rig = await startRig('bodycam-state-full-');
    mkdirSync(rig.stateDir, { recursive: true });
    run('mount', ['-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', rig.stateDir]);
    mounted = rig.stateDir;
    const files = ['FILE0001.MP4', 'FILE0002.MP4', 'FILE0003.MP4'].map((name) => join(rig!.bays, 'bay1', 'DCIM', name));
    mkdirSync(join(rig.bays, 'bay1', 'DCIM'), { recursive: true });
    for (const file of files) await makeFmp4(file, 2);
    const filler = join(rig.stateDir, 'filler');
    let filled = false;
    proxy = await startHookProxy(rig.server.url, (req) => {
      if (filled || req.method !== 'PUT') return;
      filled = true;
      fill(filler);
      throw new Error('this PUT fails: its failure must be journaled on a full disk');
    });
    const full = await runCli(rig.dockArgs(['--once']).map((arg) => (arg === rig!.server.url ? proxy!.url : arg)), { timeoutMs: 90_000 });
    expect(filled).toBe(true);
    expect(full.stderr).not.toMatch(/SqliteError|\n\s+at /);
    expect(full.code).toBe(1);
    expect(full.stdout + full.stderr).toMatch(/not offloaded: DCIM\/FILE000\d\.MP4/);

    rmSync(filler);
    const again = await rig.once();
    expect(again.code).toBe(0);
    const rows = rig.rows();
    expect(rows.map((r) => r.state)).toEqual(['completed', 'completed', 'completed']);
    for (const row of rows) {
      const file = files.find((f) => f.endsWith(row.relPath.split('/').pop()!))!;
      expect(sha256((await rig.serverBytes(row.recordingId!))!)).toBe(sha256(readFileSync(file)));
    }
  }, 180_000);
});
