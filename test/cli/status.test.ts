/**
 * `bodycam status` without --state-dir finds the dock: in the stateDir of its config file
 * (BODYCAM_CONFIG), in the demo's ./bodycam-demo/dock; with nothing running it names every place it
 * tried. `bodycam demo --stay` prints the status command, and that very command (a folder with a
 * space in its name included) shows the demo's dock.
 */
import { describe, it, expect, afterAll } from '@jest/globals';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { makeTempDir } from '../helpers/tmp.js';
import { runCli, spawnCli } from '../helpers/cli.js';
import { TEST_TOKENS } from '../helpers/server.js';
import { waitFor } from '../helpers/dock.js';
import { bandwidthAt, parseTimetable } from '../../src/dock/bwTimetable.js';

describe('bodycam status: finding the dock', () => {
  const tmp = makeTempDir('bodycam-status-');
  const children: ChildProcess[] = [];
  const env = { PATH: process.env.PATH, HOME: process.env.HOME, BODYCAM_LOG_LEVEL: 'silent' } as NodeJS.ProcessEnv;
  afterAll(async () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    tmp.cleanup();
  });

  function startDock(stateDir: string, dockId: string, extra: string[] = []): ChildProcess {
    const bays = join(tmp.path, `${dockId}-bays`);
    mkdirSync(bays, { recursive: true });
    writeFileSync(join(tmp.path, 'token'), TEST_TOKENS['dock-1']! + '\n', { mode: 0o600 });
    const child = spawnCli(['dock', '--bays', bays, '--endpoint', 'http://127.0.0.1:9', '--token-file', join(tmp.path, 'token'), '--state-dir', stateDir,
      '--dock-id', dockId, '--status-port', '0', ...extra], { env });
    children.push(child);
    return child;
  }

  const status = (options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): ReturnType<typeof runCli> =>
    runCli(['status', '--json'], { cwd: options.cwd ?? tmp.path, env: options.env ?? env });

  it('with nothing running, names every place it looked (exit 1)', async () => {
    const result = await runCli(['status'], { cwd: tmp.path, env: { ...env, BODYCAM_STATUS_PORT: '9' } });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^bodycam: no dock agent answers on 127\.0\.0\.1:9 \(BODYCAM_STATUS_PORT: nothing answers\): is `bodycam dock` running\? Give its --state-dir/);
  });

  it('finds a dock in the demo\'s state folder, and one in its config file\'s stateDir', async () => {
    const demo = startDock(join(tmp.path, 'bodycam-demo', 'dock'), 'dock-demo');
    const found = await waitFor('status of the demo dock', async () => {
      const r = await status({ env: { ...env, BODYCAM_STATUS_PORT: '9' } });
      return r.code === 0 ? r : undefined;
    }, 30_000, 200);
    expect((JSON.parse(found.stdout) as { bays: unknown[] }).bays).toEqual([]);
    demo.kill('SIGTERM');
    await new Promise((resolve) => demo.once('exit', resolve));
    const stateDir = join(tmp.path, 'elsewhere', 'state');
    mkdirSync(join(tmp.path, 'elsewhere'));
    const config = join(tmp.path, 'dock.json');
    writeFileSync(config, JSON.stringify({ stateDir }));
    startDock(stateDir, 'dock-conf');
    const viaConfig = await waitFor('status via BODYCAM_CONFIG', async () => {
      const r = await runCli(['status'], { cwd: join(tmp.path, 'elsewhere'), env: { ...env, BODYCAM_CONFIG: config, BODYCAM_STATUS_PORT: '9' } });
      return r.code === 0 ? r : undefined;
    }, 30_000, 200);
    expect(viaConfig.stdout).toMatch(/^dock dock-conf\b/);
  });

  it('a stale status.json: a port another program took, or another dock, is named and not shown as this dock', async () => {
    // Another program on the port, answering JSON that looks like a status (no bodycam-dock-pid header).
    const impostor = createServer((_req, res) => { res.writeHead(200, { 'content-type': 'application/json' }); res.end(JSON.stringify({ dockId: 'not-a-dock', bays: [], queue: {} })); });
    await new Promise<void>((resolve) => impostor.listen(0, '127.0.0.1', resolve));
    try {
      const port = (impostor.address() as AddressInfo).port;
      const stale = join(tmp.path, 'stale-state');
      mkdirSync(stale);
      writeFileSync(join(stale, 'status.json'), JSON.stringify({ port, pid: 2 ** 22 + 1 }));
      const taken = await runCli(['status', '--state-dir', stale], { cwd: tmp.path, env });
      expect(taken.code).toBe(1);
      expect(taken.stdout).toBe('');
      expect(taken.stderr).toContain(`127.0.0.1:${port} (${stale}/status.json: another program answers there (HTTP 200, no bodycam-dock-pid): status.json is stale)`);
      // A dock of this machine answers on the port, but not the one status.json names (dock-conf of the test above still runs).
      const running = JSON.parse(readFileSync(join(tmp.path, 'elsewhere', 'state', 'status.json'), 'utf8')) as { port: number; pid: number };
      writeFileSync(join(stale, 'status.json'), JSON.stringify({ port: running.port, pid: running.pid + 1 }));
      const other = await runCli(['status', '--state-dir', stale, '--json'], { cwd: tmp.path, env });
      expect(other.code).toBe(1);
      expect(other.stderr).toContain(`the bodycam dock of pid ${running.pid} answers there, not pid ${running.pid + 1} of status.json (stale: that agent is gone)`);
      // By --status-port (no status.json to compare): any bodycam dock is shown, another program never.
      expect((await runCli(['status', '--status-port', String(running.port)], { cwd: tmp.path, env })).stdout).toMatch(/^dock dock-conf\b/);
      const byPort = await runCli(['status', '--status-port', String(port)], { cwd: tmp.path, env });
      expect([byPort.code, byPort.stderr]).toEqual([1, expect.stringContaining('no bodycam-dock-pid): not a bodycam dock')]);
    } finally {
      await new Promise((resolve) => impostor.close(resolve));
    }
  });

  it('`bodycam demo --stay` prints the exact status command, and it works as printed', async () => {
    const cwd = join(tmp.path, 'demo cwd');
    mkdirSync(cwd);
    const child = spawnCli(['demo', '--stay', '--dir', 'my demo', '--cameras', '1', '--recordings', '1', '--duration', '1s', '--size', '160x120'], { cwd, env });
    children.push(child);
    let out = '';
    child.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
    const line = await waitFor('the status command', () => /^ {2}npx bodycam (status .*)$/m.exec(out)?.[1], 120_000, 200);
    expect(line).toBe("status --state-dir './my demo/dock'");
    // As a shell would split it: the quoted path is one argument.
    const args = ['status', '--state-dir', './my demo/dock'];
    const result = await runCli(args, { cwd, env });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^dock demo/);
    child.kill('SIGINT');
    await new Promise((resolve) => child.once('exit', resolve));
  }, 180_000);

  it('a --bw-limit timetable: the limit in force now and the next change are in status (table and JSON); with --max-rate too it is a usage error', async () => {
    const timetable = '00:00,512k 12:00,1M Sat-06:00,off';
    const stateDir = join(tmp.path, 'bw', 'state');
    const child = startDock(stateDir, 'dock-bw', ['--bw-limit', timetable]);
    const before = bandwidthAt(parseTimetable(timetable), 0, new Date());
    const shown = await waitFor('status with bandwidth', async () => {
      const r = await runCli(['status', '--json', '--state-dir', stateDir], { env });
      return r.code === 0 ? JSON.parse(r.stdout) as { bandwidth: unknown } : undefined;
    }, 30_000, 200);
    const after = bandwidthAt(parseTimetable(timetable), 0, new Date());
    expect([before, after]).toContainEqual(shown.bandwidth);
    const text = await runCli(['status', '--state-dir', stateDir], { env });
    expect(text.stdout).toMatch(/^bandwidth: (512\.0 KiB\/s|1\.0 MiB\/s|unlimited) \(timetable\); (512\.0 KiB\/s|1\.0 MiB\/s|unlimited) from (Mon|Tue|Wed|Thu|Fri|Sat|Sun) \d\d:\d\d$/m);
    child.kill('SIGTERM');
    const both = await runCli(['dock', '--bays', tmp.path, '--endpoint', 'http://127.0.0.1:9', '--token-file', join(tmp.path, 'token'), '--state-dir', stateDir,
      '--max-rate', '1MB/s', '--bw-limit', '08:00,1M', '--once'], { env });
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/^bodycam: give maxRate or bwLimit, not both/);
    const bad = await runCli(['dock', 'config', '--print', '--state-dir', stateDir, '--bays', tmp.path, '--endpoint', 'http://127.0.0.1:9', '--token-file', join(tmp.path, 'token'), '--bw-limit', '08:00,1M 25:00,off'], { env });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('25:00 is not a time of day');
  });
});
