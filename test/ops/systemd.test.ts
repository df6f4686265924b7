/**
 * `Type=notify` for real: a unix datagram socket (python3, as systemd's NOTIFY_SOCKET) receives what
 * `bodycam dock` and `bodycam server` send through systemd-notify. READY=1 only once the dock's bays
 * were scanned (GET /status lists the bay at that moment), WATCHDOG=1 at half of WATCHDOG_USEC,
 * STOPPING=1 on SIGTERM before the exit; none of it without NOTIFY_SOCKET. The unit files say
 * Type=notify, NotifyAccess=all, WatchdogSec and RestartPreventExitStatus=2 (a configuration error
 * such as a missing token file exits 2: no restart loop).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { watchdogIntervalMs } from '../../src/util/sdNotify.js';
import { runCli, spawnCli } from '../helpers/cli.js';
import { TEST_TOKENS } from '../helpers/server.js';
import { makeTempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/dock.js';

// Like systemd: each datagram printed on a line; the fds of a BARRIER=1 closed at once (systemd-notify waits for that).
const RECEIVER = `
import array, os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("listening", flush=True)
while True:
    data, ancdata, flags, addr = s.recvmsg(65536, socket.CMSG_SPACE(16 * 4))
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds = array.array("i")
            fds.frombytes(payload[: len(payload) - (len(payload) % fds.itemsize)])
            for fd in fds:
                os.close(fd)
    text = data.decode("utf-8", "replace")
    if text != "BARRIER=1":
        print("|".join(line for line in text.split("\\n") if not line.startswith("MAINPID=")), flush=True)
`;

const haveTools = spawnSync('systemd-notify', ['--version']).status === 0 && spawnSync('python3', ['--version']).status === 0;

describe('systemd notifications', () => {
  const tmp = makeTempDir('bodycam-sdnotify-');
  const socketPath = join(tmp.path, 'notify.sock');
  const messages: Array<{ text: string; at: number }> = [];
  let receiver: ChildProcess;
  const env = { ...process.env, NOTIFY_SOCKET: socketPath, WATCHDOG_USEC: '400000', BODYCAM_LOG_LEVEL: 'silent' };

  beforeAll(async () => {
    if (!haveTools) throw new Error('these tests need systemd-notify (systemd) and python3 on the PATH');
    receiver = spawn('python3', ['-c', RECEIVER, socketPath], { stdio: ['ignore', 'pipe', 'inherit'] });
    const lines = createInterface({ input: receiver.stdout! });
    let ready = false;
    lines.on('line', (line) => { if (line === 'listening') ready = true; else messages.push({ text: line, at: Date.now() }); });
    await waitFor('the notify socket', () => ready, 30_000, 50);
  });
  afterAll(() => {
    receiver?.kill('SIGKILL');
    tmp.cleanup();
  });

  const exited = (child: ChildProcess): Promise<number | null> => new Promise((resolve) => child.once('exit', (code) => resolve(code)));

  /** A service's life as systemd sees it: READY (checked by `whileReady`), then SIGTERM → STOPPING and exit 0. */
  const serviceLifecycle = async (child: ChildProcess, ready: RegExp, whileReady: (message: (typeof messages)[number]) => Promise<void> = async () => {}) => {
    try {
      const message = await waitFor('READY=1', () => messages.find((m) => m.text.startsWith('READY=1')), 60_000, 20);
      expect(message.text).toMatch(ready);
      await whileReady(message);
      const exit = exited(child);
      child.kill('SIGTERM');
      expect(await exit).toBe(0);
      expect(messages.some((m) => m.text === 'STOPPING=1')).toBe(true);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  };

  it('dock: READY after the first scan, WATCHDOG pings, STOPPING on SIGTERM', async () => {
    const bays = join(tmp.path, 'bays');
    mkdirSync(join(bays, 'bay-1', 'DCIM'), { recursive: true });
    writeFileSync(join(tmp.path, 'token'), TEST_TOKENS['dock-1']! + '\n', { mode: 0o600 });
    const stateDir = join(tmp.path, 'state');
    const child = spawnCli(['dock', '--bays', bays, '--endpoint', 'http://127.0.0.1:9', '--token-file', join(tmp.path, 'token'), '--state-dir', stateDir,
      '--dock-id', 'dock-1', '--status-port', '0'], { env });
    const status = async (): Promise<{ bays: Array<{ bay: string }> }> => {
      const { port } = JSON.parse(readFileSync(join(stateDir, 'status.json'), 'utf8')) as { port: number };
      return await (await fetch(`http://127.0.0.1:${port}/status`)).json() as { bays: Array<{ bay: string }> };
    };
    await serviceLifecycle(child, /^READY=1\|STATUS=offloading 1 bay\(s\)$/, async (ready) => {
      // Sent after the scan: the bay is already known.
      expect((await status()).bays.map((b) => b.bay)).toEqual(['bay-1']);
      await waitFor('two watchdog pings', () => messages.filter((m) => m.text === 'WATCHDOG=1').length >= 2, 30_000, 50);
      expect(messages.findIndex((m) => m.text === 'WATCHDOG=1')).toBeGreaterThan(messages.indexOf(ready));
    });
  });

  it('server: READY once it listens, STOPPING on SIGTERM', async () => {
    messages.length = 0;
    const tokens = join(tmp.path, 'tokens.json');
    writeFileSync(tokens, JSON.stringify({ 'dock-1': TEST_TOKENS['dock-1'] }), { mode: 0o600 });
    const child = spawnCli(['server', '--data-dir', join(tmp.path, 'srv'), '--tokens', tokens, '--listen', '127.0.0.1:0'], { env });
    await serviceLifecycle(child, /^READY=1\|STATUS=listening http:\/\/127\.0\.0\.1:\d+$/);
  });

  it('a configuration error exits 2, which the units keep from restarting', async () => {
    const result = await runCli(['dock', '--bays', tmp.path, '--endpoint', 'http://127.0.0.1:9', '--token-file', join(tmp.path, 'no-such-token'),
      '--state-dir', join(tmp.path, 'state2'), '--dock-id', 'dock-1'], { env });
    expect(result.code).toBe(2);
    for (const unit of ['bodycam-dock.service', 'bodycam-server.service']) {
      const text = readFileSync(new URL(`../../scripts/${unit}`, import.meta.url), 'utf8');
      for (const line of ['Type=notify', 'NotifyAccess=all', 'RestartPreventExitStatus=2', 'ExecReload=/bin/kill -HUP $MAINPID']) expect([unit, text.split('\n').includes(line)]).toEqual([unit, true]);
      expect(text).toMatch(/^WatchdogSec=\d+/m);
    }
  });

  it('the watchdog period is half of WATCHDOG_USEC, and only for the process WATCHDOG_PID names', () => {
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '60000000' }, 42)).toBe(30_000);
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '60000000', WATCHDOG_PID: '42' }, 42)).toBe(30_000);
    expect(watchdogIntervalMs({ WATCHDOG_USEC: '60000000', WATCHDOG_PID: '41' }, 42)).toBeUndefined();
    expect(watchdogIntervalMs({}, 42)).toBeUndefined();
    expect(watchdogIntervalMs({ WATCHDOG_USEC: 'x' }, 42)).toBeUndefined();
  });
});
