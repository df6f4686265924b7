/**
 * Issue 9 item 2: no wipe on trust-on-first-use, and no wipe without proof of possession.
 * A fake endpoint (a real HTTP server on 127.0.0.1:0) answers /v1/keys with its own key and
 * "complete" with its own valid signed receipt: it never gets a camera wiped, whether the dock
 * learned its key on first contact, was handed it with --server-key, or confirmed it with
 * `bodycam dock trust-server`. Only a server that answers the challenge from the stored bytes
 * (the real one, or a fake that really kept the bytes) does. Everything through the built CLI.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { makeTempDir } from '../helpers/tmp.js';
import { ServerProcess, TOKENS } from '../helpers/reliability.js';
import { dockOnce, journalEvents, journalRows, makeCamera, startFakeEndpoint, type Camera, type FakeMode } from '../helpers/wipeKit.js';

describe('item 2: a wipe needs a confirmed server key and a proof of possession', () => {
  const tmp = makeTempDir('bodycam-item02-');
  let n = 0;
  const fresh = async (seed: string, seconds = 2): Promise<{ bays: string; stateDir: string; tokenFile: string; camera: Camera; media: Buffer; sidecar: Buffer }> => {
    const root = join(tmp.path, `case-${++n}`);
    const bays = join(root, 'bays');
    mkdirSync(bays, { recursive: true });
    const camera = await makeCamera(bays, 'bay-1', seed, seconds);
    return { bays, stateDir: join(root, 'state'), tokenFile: join(root, 'token'), camera, media: readFileSync(camera.media), sidecar: readFileSync(camera.sidecar) };
  };
  const intact = (c: { camera: Camera; media: Buffer; sidecar: Buffer }): void => {
    expect(existsSync(c.camera.media)).toBe(true);
    expect(readFileSync(c.camera.media).equals(c.media)).toBe(true);
    expect(readFileSync(c.camera.sidecar).equals(c.sidecar)).toBe(true);
  };
  let server: ServerProcess;
  beforeAll(async () => {
    server = new ServerProcess(join(tmp.path, 'server-data'));
    await server.start();
  });
  afterAll(async () => { await server.stop(); tmp.cleanup(); });

  it('--wipe-after-ingest without a confirmed key refuses to start with one line, exit 2 (also after a key was learned on first contact)', async () => {
    const fake = await startFakeEndpoint(tmp.path, 'no-bytes');
    try {
      const c = await fresh('item02-refuse');
      const refused = await dockOnce({ ...c, endpoint: fake.url, wipe: true });
      expect(refused.code).toBe(2);
      expect(refused.stderr.trim().split('\n')).toHaveLength(1);
      expect(refused.stderr).toMatch(/--wipe-after-ingest needs a confirmed server key: pass --server-key .* trust-server/);
      intact(c);
      // First contact without wipe: the fake's key is learned (TOFU) and its receipts accepted...
      const tofu = await dockOnce({ ...c, endpoint: fake.url });
      expect(tofu.code).toBe(0);
      expect(journalRows(c.stateDir)[0]!.state).toBe('completed');
      // ...but the learned key never authorises a wipe.
      const again = await dockOnce({ ...c, endpoint: fake.url, wipe: true });
      expect(again.code).toBe(2);
      expect(again.stderr).toMatch(/needs a confirmed server key/);
      intact(c);
    } finally {
      await fake.close();
    }
  });

  const liars: FakeMode[] = ['no-bytes', 'hash-only', 'wrong-nonce', 'other-segments'];
  it(`fake endpoints pinned with --server-key (${liars.join(', ')}) sign valid receipts but cannot prove possession: nothing is wiped`, async () => {
    // The four liars run side by side (each its own endpoint, camera and dock): one test's time.
    const cases = await Promise.all(liars.map(async (mode) => ({ mode, fake: await startFakeEndpoint(tmp.path, mode), c: await fresh(`item02-${mode}`, 3) })));
    try {
      const runs = await Promise.all(cases.map(({ fake, c }) => dockOnce({ ...c, endpoint: fake.url, wipe: true, serverKey: fake.keyFile })));
      cases.forEach(({ mode, fake, c }, i) => {
        const run = runs[i]!;
        // Several segments, so that "other segments" are other bytes.
        const [row] = journalRows(c.stateDir);
        expect([mode, row!.manifest!.segments.length >= 2]).toEqual([mode, true]);
        expect([mode, fake.possessionRequests >= 1]).toEqual([mode, true]);
        intact(c);
        expect([mode, row!.state, row!.info.wipeKeptCode]).toEqual([mode, 'completed', 'possession_failed']);
        expect(row!.reason).toMatch(/not wiped: the server did not prove it holds the bytes/);
        // Reported on the kept line (the log goes to the log file), and journaled.
        expect(run.stderr).toMatch(/possession_failed: not wiped: the server did not prove it holds the bytes/);
        expect(journalEvents(c.stateDir).some((e) => e.kind === 'possession-failed')).toBe(true);
      });
    } finally {
      await Promise.all(cases.map(({ fake }) => fake.close()));
    }
  });

  it('trust-server refuses a wrong fingerprint; a right one pins the fake, which still cannot get a camera wiped', async () => {
    const fake = await startFakeEndpoint(tmp.path, 'no-bytes');
    try {
      const c = await fresh('item02-trust');
      const wrong = await runCli(['dock', 'trust-server', '--state-dir', c.stateDir, '--endpoint', fake.url, '--fingerprint', 'ab'.repeat(32)]);
      expect(wrong.code).toBe(1);
      expect(wrong.stderr).toMatch(/has key [0-9a-f]{64}, not the fingerprint ab/);
      expect((await dockOnce({ ...c, endpoint: fake.url, wipe: true })).code).toBe(2);
      const bad = await runCli(['dock', 'trust-server', '--state-dir', c.stateDir, '--endpoint', fake.url, '--fingerprint', 'nope']);
      expect(bad.code).toBe(2);
      // The dock's own config file (trust-server reads stateDir and endpoint from it as `bodycam dock` does), with
      // its comma-separated list: every server of it must have the key, or nothing is pinned.
      const config = join(tmp.path, 'item02-trust-dock.json');
      writeFileSync(config, JSON.stringify({ stateDir: c.stateDir, endpoint: `${fake.url},${server.url}` }));
      const list = await runCli(['dock', 'trust-server', '--config', config, '--fingerprint', fake.keyId]);
      expect(list.code).toBe(1);
      expect(list.stderr.trim().split('\n')).toHaveLength(1);
      expect(list.stderr).toContain(`the server at ${server.url} has key `);
      expect((await dockOnce({ ...c, endpoint: fake.url, wipe: true })).code).toBe(2);
      writeFileSync(config, JSON.stringify({ stateDir: c.stateDir, endpoint: fake.url }));
      const right = await runCli(['dock', 'trust-server', '--config', config, '--fingerprint', fake.keyId]);
      expect(right.code).toBe(0);
      expect(right.stdout).toContain(`confirmed server key ${fake.keyId}`);
      const run = await dockOnce({ ...c, endpoint: fake.url, wipe: true });
      // Kept because the server proved nothing: never a plain success.
      expect(run.code).toBe(3);
      expect(run.stderr).toMatch(/kept: .*possession_failed/);
      intact(c);
      expect(journalRows(c.stateDir)[0]!.info.wipeKeptCode).toBe('possession_failed');
    } finally {
      await fake.close();
    }
  });

  it('control: a server that holds the bytes and answers the challenge gets the camera wiped (real server, key confirmed with trust-server)', async () => {
    const keys = await (await fetch(`${server.url}/v1/keys`)).json() as { keyId: string };
    const c = await fresh('item02-real');
    const trusted = await runCli(['dock', 'trust-server', '--state-dir', c.stateDir, '--endpoint', server.url, '--fingerprint', keys.keyId]);
    expect(trusted.code).toBe(0);
    const run = await dockOnce({ ...c, endpoint: server.url, wipe: true });
    expect(run.code).toBe(0);
    expect(existsSync(c.camera.media)).toBe(false);
    expect(existsSync(c.camera.sidecar)).toBe(false);
    const [row] = journalRows(c.stateDir);
    expect(row!.state).toBe('wiped');
    // The server holds the bytes and the exact sidecar bytes.
    const content = Buffer.from(await (await server.request(`/v1/recordings/${row!.recordingId}/content`)).arrayBuffer());
    expect(content.equals(c.media)).toBe(true);
    const stored = await (await server.request(`/v1/recordings/${row!.recordingId}`)).json() as { manifest: { device: { sidecarBase64: string } } };
    expect(Buffer.from(stored.manifest.device.sidecarBase64, 'base64').equals(c.sidecar)).toBe(true);
  });

  it('replay --endpoint with a scenario that wipes needs --server-key or --server-fingerprint (the scenario fails saying so)', async () => {
    const tokenFile = join(tmp.path, 'replay.token');
    writeFileSync(tokenFile, TOKENS['dock-9'] + '\n', { mode: 0o600 });
    const scenario = fileURLToPath(new URL('../../fixtures/scenarios/clean-two-cameras.json', import.meta.url));
    const run = await runCli(['replay', scenario, '--endpoint', server.url, '--token-file', tokenFile, '--dock-id', 'dock-9', '--quiet'], { cwd: tmp.path });
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/ERROR clean-two-cameras: .*/);
    expect(run.stdout).toMatch(/needs the server's key confirmed: --server-key <PEM file> or --server-fingerprint <keyId>/);
    // With the fingerprint (checked against GET /v1/keys), the same scenario runs and wipes.
    const keys = await (await fetch(`${server.url}/v1/keys`)).json() as { keyId: string };
    const ok = await runCli(['replay', scenario, '--endpoint', server.url, '--token-file', tokenFile, '--dock-id', 'dock-9', '--quiet',
      '--server-fingerprint', keys.keyId, '--dock-key-dir', join(tmp.path, 'replay-dock-key')], { cwd: tmp.path });
    expect(ok.stdout).toMatch(/replay: 4\/4 expectations held/);
    expect(ok.code).toBe(0);
  });

  it('control: an honest fake (keeps the bytes, answers from them) pinned with --server-key does get the wipe', async () => {
    const fake = await startFakeEndpoint(tmp.path, 'honest');
    try {
      const c = await fresh('item02-honest');
      const run = await dockOnce({ ...c, endpoint: fake.url, wipe: true, serverKey: fake.keyFile });
      expect(run.code).toBe(0);
      expect(fake.segmentBytesReceived).toBe(c.media.length);
      expect(existsSync(c.camera.media)).toBe(false);
    } finally {
      await fake.close();
    }
  });
});
