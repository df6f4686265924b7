/**
 * The dock as a user runs it: the built CLI in a child process. SIGKILL in the
 * middle of an upload and a restart must not PUT any segment twice that the
 * server acknowledged; SIGTERM stops cleanly; `bodycam status` reads the agent.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import { recordCamera, dockCamera } from '../../src/camera/index.js';
import { makeTempDir } from '../helpers/tmp.js';
import { expectExitCode, runCli, spawnCli } from '../helpers/cli.js';
import { serverContent, startLoggedServer, TOKEN, waitFor, type LoggedServer } from '../helpers/dock.js';
import { TEST_TOKENS } from '../helpers/server.js';

const sha = (data: Buffer): string => createHash('sha256').update(data).digest('hex');
const small = { width: 320, height: 240, fps: 15 };

function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

describe('bodycam dock (CLI)', () => {
  const tmp = makeTempDir('bodycam-dock-cli-');
  let server: LoggedServer;
  const tokenFile = join(tmp.path, 'token');
  const tokenFile2 = join(tmp.path, 'token2');
  const env = { ...process.env, BODYCAM_LOG_LEVEL: 'warn' };
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    server = await startLoggedServer();
    writeFileSync(tokenFile, TOKEN + '\n', { mode: 0o600 });
    writeFileSync(tokenFile2, TEST_TOKENS['dock-2']! + '\n', { mode: 0o600 });
  });
  afterAll(async () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await server.close();
    tmp.cleanup();
  });

  async function dockedCamera(name: string, seconds: number, faults: string[] = []): Promise<{ bays: string; file: string }> {
    const bays = join(tmp.path, name, 'bays');
    mkdirSync(bays, { recursive: true });
    const result = await recordCamera({ storage: join(tmp.path, name, 'cam'), count: 1, durationSeconds: seconds, seed: name, faults, ...small });
    await dockCamera({ storage: join(tmp.path, name, 'cam'), bays, bay: 'bay1' });
    return { bays, file: join(bays, 'bay1', 'DCIM', '100BWC', result.files[0]!.mediaPath.split('/').pop()!) };
  }

  // The server pins a dock's key on first use: each dock id keeps one state folder (one key pair).
  const baseArgs = (name: string, bays: string, dockId = 'dock-1'): string[] => [
    'dock', '--bays', bays, '--endpoint', server.url, '--token-file', dockId === 'dock-1' ? tokenFile : tokenFile2, '--state-dir', join(tmp.path, name, 'state'),
    '--dock-id', dockId, '--status-port', '0', '--settle', '0.5s', '--segment-seconds', '1s', '--max-backoff', '1s',
  ];

  it('resumes after SIGKILL mid-upload without re-sending any acknowledged segment', async () => {
    const { bays, file } = await dockedCamera('kill', 6);
    const original = readFileSync(file);
    const child = spawnCli([...baseArgs('kill', bays), '--max-rate', '16KB/s', '--concurrency', '1'], { env });
    children.push(child);
    const exit = exited(child);
    await waitFor('two segments acknowledged', () => server.segmentPutsAcked().size >= 2, 60_000);
    child.kill('SIGKILL');
    expect((await exit).signal).toBe('SIGKILL');
    const ackedBeforeKill = server.segmentPutsAcked().size;
    const rerun = await runCli([...baseArgs('kill', bays), '--once'], { env, timeoutMs: 90_000 });
    expect(rerun.code).toBe(0);
    const puts = server.segmentPutsAcked();
    expect(puts.size).toBeGreaterThan(ackedBeforeKill);
    expect([...puts.entries()].filter(([, n]) => n !== 1)).toEqual([]);
    const recordingId = [...puts.keys()][0]!.split('/')[3]!;
    expect(sha(await serverContent(server, recordingId))).toBe(sha(original));
  });

  it('answers `bodycam status`, then stops cleanly on SIGTERM with exit 0', async () => {
    const { bays } = await dockedCamera('term', 6);
    const stateDir = join(tmp.path, 'term', 'state');
    const child = spawnCli([...baseArgs('term', bays, 'dock-2'), '--max-rate', '8KB/s', '--concurrency', '1'], { env });
    children.push(child);
    const exit = exited(child);
    const acked = server.segmentPutsAcked().size;
    await waitFor('an upload under way', () => server.segmentPutsAcked().size > acked, 60_000);
    const status = await runCli(['status', '--state-dir', stateDir, '--json'], { env });
    expect(status.code).toBe(0);
    const parsed = JSON.parse(status.stdout) as { bays: Array<{ bay: string; serial: string; state: string; progress: number | null }>; queue: { depth: number } };
    expect(parsed.bays[0]).toMatchObject({ bay: 'bay1', state: 'offloading' });
    expect(parsed.bays[0]!.serial).toMatch(/^BWC/);
    expect(parsed.queue.depth).toBe(1);
    const table = await runCli(['status', '--state-dir', stateDir], { env });
    expect(table.stdout).toMatch(/bay1\s+BWC\S+\s+bodycam\s+(offloading|done)\s/); // BAY SERIAL LAYOUT STATE (it may finish between the two calls)
    child.kill('SIGTERM');
    expect(await exit).toEqual({ code: 0, signal: null });
  });

  it('--once exits 3 and lists the quarantined file when a recording cannot be ingested', async () => {
    const { bays } = await dockedCamera('zero', 1, ['zero-byte']);
    const result = await runCli([...baseArgs('zero', bays), '--once'], { env, timeoutMs: 60_000 });
    expectExitCode(result, 3, [...baseArgs('zero', bays), '--once'], { env });
    expect(result.stderr).toMatch(/quarantined: DCIM\/100BWC\/\S+\.mp4: zero_byte: zero-byte file/);
  });

  it('--once exits 1 and says what was not offloaded when the server cannot be reached', async () => {
    const { bays } = await dockedCamera('unreachable', 1);
    const args = baseArgs('unreachable', bays).map((a) => (a === server.url ? 'http://127.0.0.1:9' : a));
    const result = await runCli([...args, '--once', '--request-retries', '0', '--max-backoff', '0.2s'], { env, timeoutMs: 60_000 });
    expectExitCode(result, 1, args, { env });
    expect(result.stderr).toMatch(/not offloaded: DCIM\/100BWC\/\S+\.mp4 \((hashed|uploading)\): .*(ECONNREFUSED|failed)/);
  });

  it('--once stops at the first dock-level refusal (the token of another dock id), says it and exits 1: no retry can fix it', async () => {
    const { bays } = await dockedCamera('refused', 1);
    // A 10-minute backoff: waiting the job retries out would outlast the CLI's deadline many times over.
    const args = [...baseArgs('refused', bays).map((a) => (a === tokenFile ? tokenFile2 : a)), '--once', '--max-backoff', '10m'];
    const result = await runCli(args, { env, timeoutMs: 90_000 });
    expectExitCode(result, 1, args, { env });
    expect(result.stderr).toMatch(/not offloaded: DCIM\/100BWC\/\S+\.mp4 \(\w+\): token_other_dock from http:\/\/127\.0\.0\.1:\d+: forbidden \(403\).*check --dock-id and --token-file/);
    expect(result.stderr).not.toMatch(/quarantined:/);
  });

  it('rejects an unknown config key with one line and exit 2', async () => {
    const config = join(tmp.path, 'bad.json');
    writeFileSync(config, JSON.stringify({ bays: tmp.path, endpoint: server.url, tokenFile, stateDir: tmp.path, maxrate: '1mbit' }));
    const result = await runCli(['dock', '--config', config], { env });
    expect(result.code).toBe(2);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(/unknown key "maxrate"/);
  });
});
