/**
 * The mistakes a newcomer makes on the first run, through the built CLI: each
 * ends in ONE line on stderr that says what to do, and a non-zero exit. The JSON
 * log goes to a file so that stderr holds only what a person is meant to read.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { recordCamera } from '../../src/camera/index.js';
import { makeTempDir } from '../helpers/tmp.js';
import { describeRun, expectExitCode, runCli, type CliResult } from '../helpers/cli.js';
import { startTestServer, TEST_TOKENS, type TestServer } from '../helpers/server.js';

function expectOneLine(result: CliResult, ...mustSay: RegExp[]): void {
  // A wrong exit or more than one line: the failure shows what the run said.
  if (result.code === 0 || result.code === null || result.stderr.trim().split('\n').length !== 1) throw new Error(`not one line and a failure exit: ${describeRun([], result)}`);
  expect(result.code).not.toBe(0);
  expect(result.code).not.toBeNull();
  const lines = result.stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).not.toMatch(/^\s+at /);
  for (const words of mustSay) expect(lines[0]).toMatch(words);
}

describe('first-run errors (CLI)', () => {
  const tmp = makeTempDir('bodycam-first-run-');
  const env = { ...process.env, BODYCAM_LOG_FILE: join(tmp.path, 'log.jsonl') };
  const bays = join(tmp.path, 'bays');
  const tokenFile = join(tmp.path, 'dock.token');
  const badTokenFile = join(tmp.path, 'bad.token');
  let server: TestServer;
  let stateDirs = 0;
  // A failed run may leave retry state behind: each run gets its own journal.
  const dockArgs = (endpoint: string, token = tokenFile): string[] => [
    'dock', '--bays', bays, '--endpoint', endpoint, '--token-file', token, '--dock-id', 'dock-1',
    '--state-dir', join(tmp.path, `state-${++stateDirs}`), '--status-port', '0', '--settle', '0.2s',
    '--once', '--request-retries', '0', '--max-backoff', '0.2s',
  ];

  beforeAll(async () => {
    server = await startTestServer();
    writeFileSync(tokenFile, TEST_TOKENS['dock-1']! + '\n', { mode: 0o600 });
    writeFileSync(badTokenFile, 'not-the-token-of-dock-1\n', { mode: 0o600 });
    mkdirSync(bays);
    await recordCamera({ storage: join(bays, 'bay-01'), count: 1, durationSeconds: 1, seed: 'first-run', width: 160, height: 120, fps: 10 });
  });
  afterAll(async () => {
    await server.close();
    tmp.cleanup();
  });

  it('server: a port in use says to stop the other process or pick another --listen port', async () => {
    const port = new URL(server.url).port;
    const tokens = join(tmp.path, 'tokens.json');
    writeFileSync(tokens, JSON.stringify(TEST_TOKENS), { mode: 0o600 });
    const result = await runCli(['server', '--data-dir', join(tmp.path, 'srv'), '--tokens', tokens, '--listen', `127.0.0.1:${port}`], { env });
    expectOneLine(result, /already in use/, /stop the other process/, /--listen 127\.0\.0\.1:PORT/);
  });

  it('dock: a missing bays folder says to create it or pass the right --bays', async () => {
    const missing = join(tmp.path, 'no-such-bays');
    const result = await runCli(dockArgs(server.url).map((a) => (a === bays ? missing : a)), { env });
    expectOneLine(result, /does not exist/, new RegExp(`mkdir -p ${missing}`), /--bays/);
  });

  it('dock --once: an unreachable server says to start it or check --endpoint', async () => {
    const result = await runCli(dockArgs('http://127.0.0.1:9'), { env, timeoutMs: 60_000 });
    expectOneLine(result, /not offloaded/, /cannot reach the ingest server at http:\/\/127\.0\.0\.1:9 \(connection refused/, /start it or check --endpoint/);
  });

  it('dock --once: a rejected token says to check --token-file and --dock-id', async () => {
    const result = await runCli(dockArgs(server.url, badTokenFile), { env, timeoutMs: 60_000 });
    expectOneLine(result, /not offloaded/, /rejected this dock's token/, /check --token-file and --dock-id/);
  });

  it.each(['http://127.0.0.1:', 'ftp://x', 'http://127.0.0.1:99999'])('dock: endpoint %s is a usage error (exit 2), not a silent port 80', async (endpoint) => {
    const result = await runCli(dockArgs(endpoint), { env });
    expectOneLine(result, /invalid endpoint/, /http:\/\/127\.0\.0\.1:8443/);
    expect(result.code).toBe(2);
  });

  it('dock --once: a broken FFPROBE_PATH leaves a camera-less file queued (not quarantined as not media) and names the fix', async () => {
    const foreignBays = join(tmp.path, 'bays-foreign');
    mkdirSync(join(foreignBays, 'bay-01'), { recursive: true });
    copyFileSync(fileURLToPath(new URL('../../fixtures/foreign/VX100_0001.MP4', import.meta.url)), join(foreignBays, 'bay-01', 'VX100_0001.MP4'));
    const args = dockArgs(server.url).map((a) => (a === bays ? foreignBays : a));
    const broken = await runCli(args, { env: { ...env, FFPROBE_PATH: '/bin/false' }, timeoutMs: 60_000 });
    expectOneLine(broken, /not offloaded/, /FFPROBE_PATH=\/bin\/false is not a working ffprobe/);
    expectExitCode(broken, 1, args, { env });
    // Same journal, ffprobe fixed: the file was only waiting, and now arrives.
    const fixed = await runCli(args, { env, timeoutMs: 60_000 });
    expectExitCode(fixed, 0, args, { env });
  });

  it('runCli: a run it has to kill fails the test saying so, after how long, with the run\'s output tails', async () => {
    // The service (no --once) never exits by itself: killed by the helper's timer, whatever the load.
    const service = dockArgs(server.url).filter((a) => a !== '--once');
    const error = await runCli(service, { env, timeoutMs: 2_000 }).then(() => undefined, (e: unknown) => e as Error);
    expect(error?.message).toMatch(/^runCli timed out: no exit within 2 s \(killed after \d+\.\d s\): bodycam dock .* was killed by SIGKILL/);
    expect(error?.message).toMatch(/--- stderr \(tail\) ---[\s\S]*--- stdout \(tail\) ---[\s\S]*--- last 20 lines of .*log\.jsonl/);
  });

  it('camera: FFMPEG_PATH=/bin/false says to set FFMPEG_PATH to a working ffmpeg or unset it', async () => {
    const result = await runCli(['camera', 'record', '--storage', join(tmp.path, 'cam-false'), '--duration', '1', '--size', '160x120'],
      { env: { ...env, FFMPEG_PATH: '/bin/false' } });
    expectOneLine(result, /FFMPEG_PATH=\/bin\/false is not a working ffmpeg/, /set FFMPEG_PATH to a working ffmpeg or unset it/);
  });

  it('camera: FFMPEG_PATH at an empty file (not a binary) fails the same way instead of writing an empty recording', async () => {
    const fake = join(tmp.path, 'empty-ffmpeg');
    writeFileSync(fake, '');
    const result = await runCli(['camera', 'record', '--storage', join(tmp.path, 'cam-empty'), '--duration', '1', '--size', '160x120'],
      { env: { ...env, FFMPEG_PATH: fake } });
    expectOneLine(result, /is not a working ffmpeg/, /set FFMPEG_PATH to a working ffmpeg or unset it/);
  });

  it.each([
    'camera', 'camera record', 'camera dock', 'camera undock', 'camera fleet',
    'dock', 'server', 'server verify-log', 'server reset-dock-key', 'server token new', 'status', 'replay', 'demo',
  ])('bodycam %s --help shows an example', async (command) => {
    const result = await runCli([...command.split(' '), '--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/Examples?:\n[\s\S]*\$ .*bodycam /);
  });
});
