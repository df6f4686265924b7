/**
 * Issue 9 item 14: one agent per state folder. A second `bodycam dock` on the same --state-dir
 * refuses with one line naming the pid that holds the lock; a SIGKILLed agent leaves no lock
 * behind; a stale pid file (dead pid, or a live pid with another start time: reused) never blocks.
 * Plus contract point 7: state folder 0700, journal and key files 0600. Built CLI, real server.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { runCli, spawnCli } from '../helpers/cli.js';
import { startRig, type DockRig } from '../helpers/cards.js';

async function waitForAgent(stateDir: string, pid: number, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const status = JSON.parse(readFileSync(join(stateDir, 'status.json'), 'utf8')) as { pid: number; url: string };
      if (status.pid === pid) {
        const ok = await fetch(`${status.url}/healthz`).then((r) => r.ok, () => false);
        if (ok) return;
      }
    } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`agent ${pid} did not come up`);
}

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode);
    else child.once('exit', (code) => resolve(code));
  });
}

describe('item 14: one agent per state folder', () => {
  let rig: DockRig;
  const children: ChildProcess[] = [];
  beforeAll(async () => {
    rig = await startRig('bodycam-item14-');
    // A state folder and files left readable by others (an earlier build, a careless copy).
    mkdirSync(rig.stateDir, { recursive: true });
    chmodSync(rig.stateDir, 0o755);
  });
  afterAll(async () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await rig.close();
  });

  it('refuses a second agent with one line naming the holder, survives SIGKILL, ignores stale pid files', async () => {
    const first = spawnCli(rig.dockArgs());
    children.push(first);
    await waitForAgent(rig.stateDir, first.pid!);

    const second = await runCli(rig.dockArgs());
    expect(second.code).not.toBe(0);
    const lines = second.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^bodycam: another dock agent \\(pid ${first.pid}\\) is using the state folder `));
    expect(second.stderr).not.toMatch(/^\s+at /m);
    // --once takes the same lock: no offload beside a running agent either.
    const once = await runCli(rig.dockArgs(['--once']));
    expect(once.code).not.toBe(0);
    expect(once.stderr).toMatch(new RegExp(`pid ${first.pid}`));
    // The refusal touched nothing: the first agent still answers.
    await waitForAgent(rig.stateDir, first.pid!);

    // SIGKILL: no cleanup ran, agent.pid still names the dead pid; the kernel dropped the lock.
    first.kill('SIGKILL');
    await exited(first);
    expect(readFileSync(join(rig.stateDir, 'agent.pid'), 'utf8')).toMatch(new RegExp(`^${first.pid} `));
    const third = spawnCli(rig.dockArgs());
    children.push(third);
    await waitForAgent(rig.stateDir, third.pid!);
    // The stop handlers are in place before the status port answers (src/cli/dock.ts): a SIGTERM now is a clean stop.
    third.kill('SIGTERM');
    expect(await exited(third)).toBe(0);
    expect(existsSync(join(rig.stateDir, 'agent.pid'))).toBe(false);

    // A pid file naming a live process with another start time (a pid reused since): not a holder.
    writeFileSync(join(rig.stateDir, 'agent.pid'), `${process.pid} 1\n`);
    const fourth = await runCli(rig.dockArgs(['--once']), { timeoutMs: 60_000 });
    expect(fourth.stderr).not.toMatch(/another dock agent/);
    expect(fourth.code).toBe(0);
  }, 120_000);

  it('keeps the state folder 0700 and the journal and key files 0600', () => {
    const mode = (path: string): number => statSync(path).mode & 0o777;
    expect(mode(rig.stateDir)).toBe(0o700);
    for (const file of ['journal.sqlite', 'dock-key.pem', 'dock-key.pub.pem', 'agent.lock']) {
      expect([file, mode(join(rig.stateDir, file))]).toEqual([file, 0o600]);
    }
    for (const file of ['journal.sqlite-wal', 'journal.sqlite-shm']) {
      if (existsSync(join(rig.stateDir, file))) expect([file, mode(join(rig.stateDir, file))]).toEqual([file, 0o600]);
    }
  });
});
