/**
 * Dock-level attention (src/dock/attention.ts) against the real server: a token the server rejects,
 * a token of another dock id, a dock key other than the pinned one, a pinned server key other than
 * the server's, and one of two servers refusing while the other works. Each shows `attention` with
 * its stable code on the bay, in the status JSON and on /healthz (503) at the first refusal — a
 * running dock tries a dock-level refusal again after 30 s at the soonest, so the job has been tried
 * once when it shows — and a reload (SIGHUP) with the
 * fixed token clears it and retries at once, without waiting out the backoff.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startDockAgent, type DockAgent, type DockStatus } from '../../src/dock/index.js';
import { attentionCodeOf, DockAttention } from '../../src/dock/attention.js';
import { dispositionOf, ProblemError, reasonCodeOf } from '../../src/dock/errors.js';
import { startFaultProxy } from '../../src/faultproxy/faultProxy.js';
import { generateSigningKeyPair } from '../../src/protocol/signing.js';
import { makeTempDir } from '../helpers/tmp.js';
import { runCli, spawnCli } from '../helpers/cli.js';
import { startTestServer, TEST_TOKENS, type TestServer } from '../helpers/server.js';
import { dockConfig, makeFmp4, serverKeyFile, TOKEN, waitFor } from '../helpers/dock.js';

const SLOW = { settle: '0.1s', maxBackoff: '10m', requestRetries: 0, rescanInterval: '0.3s', fingerprint: false };

async function healthz(agent: DockAgent): Promise<{ status: number; body: string }> {
  const response = await fetch(`http://127.0.0.1:${agent.statusPort!}/healthz`);
  return { status: response.status, body: await response.text() };
}

describe('dock-level attention', () => {
  const tmp = makeTempDir('bodycam-attention-');
  const clip = join(tmp.path, 'clip.mp4');
  const agents: DockAgent[] = [];
  const servers: TestServer[] = [];
  let n = 0;

  beforeAll(async () => {
    await makeFmp4(clip, 1);
  });
  afterAll(async () => {
    for (const a of agents) await a.stop().catch(() => {});
    for (const s of servers) await s.close();
    tmp.cleanup();
  });

  /** A fresh dock root with one recording docked in bay-1. */
  function root(): string {
    const dir = join(tmp.path, `dock-${++n}`);
    const folder = join(dir, 'bays', 'bay-1', 'DCIM', '100BWC');
    mkdirSync(folder, { recursive: true });
    copyFileSync(clip, join(folder, `CLIP_${n}.mp4`));
    return dir;
  }

  async function start(dir: string, endpoint: string, overrides: Record<string, unknown> = {}, token?: string): Promise<DockAgent> {
    const config = dockConfig(dir, endpoint, { ...SLOW, ...overrides });
    const agent = await startDockAgent(token ? { ...config, token } : config);
    agents.push(agent);
    return agent;
  }

  /** A server of its own per case: it pins dock-1's key on first contact. */
  async function freshServer(options: Parameters<typeof startTestServer>[0] = {}): Promise<TestServer> {
    const started = await startTestServer(options);
    servers.push(started);
    return started;
  }

  const bay = (s: DockStatus): DockStatus['bays'][number] => s.bays.find((b) => b.bay === 'bay-1')!;

  it('a rejected token: attention at the first refusal (not after backoff), 503 on /healthz, cleared by reload which retries at once', async () => {
    const server = await freshServer();
    const dir = root();
    const agent = await start(dir, server.url, {}, 'a-token-the-server-never-issued-0123456789ab');
    const shown = await waitFor('attention on bay-1', () => (bay(agent.status()).state === 'attention' ? agent.status() : undefined), 60_000, 50);
    expect(bay(shown).reasonCode).toBe('token_rejected');
    expect(bay(shown).reason).toMatch(/^token_rejected from http:\/\/127\.0\.0\.1:\d+: unauthorized \(401\).*check --token-file/);
    expect(shown.attention).toEqual([expect.objectContaining({ code: 'token_rejected', endpoint: server.url, status: 401 })]);
    // A dock-level refusal waits >= 30 s (cap 10 min here): the job was tried exactly once when the bay showed it.
    expect(shown.queue.recordings[0]!.attempts).toBeLessThanOrEqual(1);
    expect(shown.queue.recordings[0]!.state).not.toBe('quarantined');
    const health = await healthz(agent);
    expect(health.status).toBe(503);
    expect(health.body).toMatch(/^attention\ntoken_rejected: /);

    await agent.reload({ token: TOKEN, serverKey: undefined });
    expect(agent.status().attention).toEqual([]);
    const done = await waitFor('the recording to complete after the reload', () => {
      const s = agent.status();
      return s.queue.recordings[0]?.state === 'completed' ? s : undefined;
    }, 60_000);
    expect(bay(done).state).toBe('done');
    expect(await healthz(agent)).toEqual({ status: 200, body: 'ok\n' });
  });

  it('the token of another dock id: token_other_dock, nothing quarantined', async () => {
    const server = await freshServer();
    const dir = root();
    const agent = await start(dir, server.url, {}, TEST_TOKENS['dock-2']);
    const shown = await waitFor('attention on bay-1', () => (bay(agent.status()).state === 'attention' ? agent.status() : undefined), 60_000, 50);
    expect(bay(shown).reasonCode).toBe('token_other_dock');
    expect(bay(shown).reason).toMatch(/forbidden \(403\).*check --dock-id and --token-file/);
    expect(shown.queue.quarantined).toBe(0);
    expect((await healthz(agent)).status).toBe(503);
  });

  it('a dock key other than the one the server pinned: dock_key_mismatch', async () => {
    const fresh = await freshServer();
    const first = await start(root(), fresh.url, { stateDir: join(tmp.path, 'pinning-state') });
    await waitFor('the first dock to pin its key', () => first.status().queue.recordings[0]?.state === 'completed', 60_000);
    await first.stop();
    const agent = await start(root(), fresh.url);
    const shown = await waitFor('attention on bay-1', () => (bay(agent.status()).state === 'attention' ? agent.status() : undefined), 60_000, 50);
    expect(bay(shown).reasonCode).toBe('dock_key_mismatch');
    expect(bay(shown).reason).toMatch(/reset-dock-key/);
    expect(shown.queue.quarantined).toBe(0);
  });

  it('a pinned server key other than the server\'s: server_key_mismatch at the first receipt; reload with the right key clears it', async () => {
    const server = await freshServer();
    const wrong = join(tmp.path, 'wrong-key.pub.pem');
    writeFileSync(wrong, generateSigningKeyPair().publicKeyPem);
    const agent = await start(root(), server.url, { serverKey: wrong });
    const shown = await waitFor('attention', () => (agent.status().attention.length ? agent.status() : undefined), 60_000, 50);
    expect(shown.attention).toEqual([expect.objectContaining({ code: 'server_key_mismatch' })]);
    expect(shown.attention[0]!.reason).toMatch(/--server-key/);
    await waitFor('bay-1 in attention', () => bay(agent.status()).reasonCode === 'server_key_mismatch', 30_000);
    expect((await healthz(agent)).body).toMatch(/server_key_mismatch/);
    await agent.reload({ token: TOKEN, serverKey: serverKeyFile(server) });
    expect(agent.status().attention).toEqual([]);
  });

  it('one of two servers refuses the token while the other works: the work goes on, the refusing one stays named', async () => {
    const server = await freshServer();
    const stale = await freshServer({ tokens: { 'dock-9': TEST_TOKENS['dock-2']! } });
    const agent = await start(root(), `${server.url},${stale.url}`, { maxBackoff: '0.3s' });
    await waitFor('the recording to complete through the working server', () => agent.status().queue.recordings[0]?.state === 'completed', 60_000);
    const shown = await waitFor('attention naming the refusing server', () => (agent.status().attention.length ? agent.status() : undefined), 30_000);
    expect(shown.attention.map((p) => [p.code, p.endpoint])).toEqual([['token_rejected', stale.url]]);
    // Successes at the other server do not clear it; the bay has no work left, so it shows done.
    expect(bay(shown).state).toBe('done');
    expect((await healthz(agent)).status).toBe(503);
  });

  it('a token moved to another dock, at a server whose table has not followed yet: 403 forbidden (token_other_dock), never 404, nothing quarantined; done once the table follows', async () => {
    const server = await freshServer();
    // The link is slow (an upper bound on progress, whatever the load), so segments are left when the table changes.
    const proxy = await startFaultProxy({ target: { host: '127.0.0.1', port: server.port }, mode: { kind: 'bandwidth', bytesPerSecond: 10_000 } });
    try {
      const dir = join(tmp.path, `dock-moved-${++n}`);
      mkdirSync(join(dir, 'bays', 'bay-1', 'DCIM', '100BWC'), { recursive: true });
      await makeFmp4(join(dir, 'bays', 'bay-1', 'DCIM', '100BWC', 'MOVED.mp4'), 3);
      const agent = await start(dir, proxy.url, { segmentSeconds: 1, maxBackoff: '0.3s' });
      const received = async (): Promise<number> => {
        const list = await (await server.request('/v1/recordings')).json() as { recordings?: Array<{ segmentsReceived: number; segmentCount: number }> };
        const r = list.recordings?.[0];
        return r && r.segmentsReceived >= 1 && r.segmentsReceived < r.segmentCount ? r.segmentsReceived : 0;
      };
      await waitFor('a first segment held, others left', received, 60_000, 20);
      // What a stale server believes: this token now names dock-2 (and dock-1 has another).
      await server.setTokens({ 'dock-2': TOKEN, 'dock-1': TEST_TOKENS['dock-2']! });
      const shown = await waitFor('token_other_dock', () => (agent.status().attention.some((p) => p.code === 'token_other_dock') ? agent.status() : undefined), 60_000, 20);
      expect(shown.attention.find((p) => p.code === 'token_other_dock')!.reason).toMatch(/forbidden \(403\)/);
      expect(shown.queue.quarantined).toBe(0);
      // The table follows: the same job goes on from the segments the server holds.
      await server.setTokens({ 'dock-1': TOKEN, 'dock-2': TEST_TOKENS['dock-2']! });
      await proxy.setMode('pass');
      const done = await waitFor('completion', () => (agent.status().queue.recordings[0]?.state === 'completed' ? agent.status() : undefined), 60_000);
      expect(done.queue.quarantined).toBe(0);
      expect(done.attention).toEqual([]);
    } finally {
      await proxy.close();
    }
  });

  it('a 404 about a recording the dock just created (a server without the dock-id check, a proxy\'s bare 404) is retried, never quarantined', () => {
    expect(dispositionOf(ProblemError.received(404, 'not_found', 'PUT /v1/recordings/x/segments/1: dock dock-2 has no recording x'))).toBe('transient');
    expect(dispositionOf(ProblemError.received(404, 'http_404', 'PUT /ingest/v1/…: Not Found'))).toBe('transient');
    expect(dispositionOf(ProblemError.received(404, 'segment_out_of_plan', 'index 9'))).toBe('permanent');
    // An attachment the server's manifest does not list: another plan under this id, quarantined like a conflict, new server or old.
    const outOfPlan = ProblemError.received(404, 'attachment_out_of_plan', 'PUT /v1/recordings/x/attachments/2/segments/0: recording x has no attachment 2 (it has 1)');
    const oldServer = ProblemError.received(404, 'not_found', 'PUT /v1/recordings/x/attachments/2/segments/0: recording x has no attachment 2 (it has 0)');
    for (const error of [outOfPlan, oldServer]) expect([dispositionOf(error), reasonCodeOf(error), attentionCodeOf(404, error.problemCode, { method: 'PUT', path: '/v1/recordings/x/attachments/2/segments/0', detail: 'recording x has no attachment 2' })]).toEqual(['permanent', 'server_attachment_out_of_plan', undefined]);
    // Only the server's own words about an attachment index: a recording it does not find stays a retry.
    expect(dispositionOf(ProblemError.received(404, 'not_found', 'PUT /v1/recordings/x/attachments/0/segments/0: dock dock-2 has no recording x'))).toBe('transient');
    expect(dispositionOf(ProblemError.received(404, 'proxy_fault', 'GET /v1/keys: Injected by the fault proxy'))).toBe('transient'); // not a protocol code
    expect(dispositionOf(ProblemError.received(409, 'conflict', 'other content'))).toBe('permanent');
  });

  it('an endpoint whose path is not the protocol\'s: server_not_found at the first 404 (503, nothing quarantined); a 404 page that goes away clears it at that endpoint', async () => {
    const server = await freshServer();
    // The server's own 404 for a path outside the protocol.
    const wrong = await start(root(), `${server.url}/wrong`);
    const shown = await waitFor('server_not_found', () => (wrong.status().attention.length ? wrong.status() : undefined), 60_000, 50);
    expect(shown.attention[0]).toMatchObject({ code: 'server_not_found', endpoint: `${server.url}/wrong`, status: 404 });
    expect(shown.attention[0]!.reason).toMatch(/is not part of protocol v1: the endpoint does not answer the protocol's paths \(404\): check --endpoint/);
    expect(shown.queue.quarantined).toBe(0);
    const health = await healthz(wrong);
    expect(health.status).toBe(503);
    expect(health.body).toMatch(/^attention\nserver_not_found: /);
    await waitFor('bay-1 in attention', () => bay(wrong.status()).reasonCode === 'server_not_found', 30_000);
    await wrong.stop();
    // A proxy's bare 404 for a while, then the server behind it: cleared by the successes, the work completes.
    const proxy = await startFaultProxy({ target: { host: '127.0.0.1', port: server.port }, mode: { kind: 'http-status', status: 404, count: 1_000_000 } });
    try {
      const agent = await start(root(), proxy.url, { maxBackoff: '0.3s' });
      await waitFor('server_not_found from the proxy', () => agent.status().attention.some((p) => p.code === 'server_not_found' && p.endpoint === proxy.url), 60_000, 50);
      expect(agent.status().queue.quarantined).toBe(0);
      await proxy.setMode('pass');
      const done = await waitFor('completion', () => (agent.status().queue.recordings[0]?.state === 'completed' ? agent.status() : undefined), 60_000);
      expect(done.attention).toEqual([]);
      expect(done.queue.quarantined).toBe(0);
      expect((await healthz(agent)).status).toBe(200);
    } finally {
      await proxy.close();
    }
  });

  it('the CLI: `bodycam status` (table and JSON) shows it; fixing the token file and SIGHUP clears it and the work completes', async () => {
    const server = await freshServer();
    const dir = root();
    const tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, 'a-token-the-server-never-issued-0123456789ab\n', { mode: 0o600 });
    const stateDir = join(dir, 'state');
    const env = { ...process.env, BODYCAM_LOG_LEVEL: 'silent' };
    const child = spawnCli(['dock', '--bays', join(dir, 'bays'), '--endpoint', server.url, '--token-file', tokenFile, '--state-dir', stateDir, '--dock-id', 'dock-1',
      '--status-port', '0', '--settle', '0.1s', '--max-backoff', '10m', '--request-retries', '0', '--no-fingerprint'], { env });
    try {
      // Polled on the status port (cheap); the CLI is run once the state is there.
      const statusOf = async (): Promise<DockStatus | undefined> => {
        try {
          const { port } = JSON.parse(readFileSync(join(stateDir, 'status.json'), 'utf8')) as { port: number };
          return await (await fetch(`http://127.0.0.1:${port}/status`)).json() as DockStatus;
        } catch { return undefined; }
      };
      await waitFor('attention', async () => (await statusOf())?.attention.length, 60_000, 100);
      const r = await runCli(['status', '--state-dir', stateDir, '--json'], { env });
      const json = JSON.parse(r.stdout) as DockStatus;
      expect(json.attention[0]!.code).toBe('token_rejected');
      expect(bay(json)).toMatchObject({ state: 'attention', reasonCode: 'token_rejected' });
      const table = await runCli(['status', '--state-dir', stateDir], { env });
      expect(table.stdout).toMatch(/^ATTENTION token_rejected: token_rejected from http:\/\/127\.0\.0\.1:\d+: unauthorized \(401\)/m);
      expect(table.stdout).toMatch(/bay-1 .* attention /);
      writeFileSync(tokenFile, TOKEN + '\n', { mode: 0o600 });
      child.kill('SIGHUP');
      const done = await waitFor('completion after SIGHUP', async () => {
        const parsed = await statusOf();
        return parsed?.queue.recordings[0]?.state === 'completed' ? parsed : undefined;
      }, 60_000, 100);
      expect(done.attention).toEqual([]);
      expect(child.exitCode).toBeNull();
    } finally {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    }
  });

  it('maps answers to codes: the protocol refusal, a proxy\'s bare 403, and per-recording problems (none)', () => {
    expect(attentionCodeOf(400, 'unsupported_protocol')).toBe('protocol_refused');
    expect(attentionCodeOf(403, 'http_403')).toBe('token_rejected');
    expect(attentionCodeOf(401, 'http_401')).toBe('token_rejected');
    for (const [status, code] of [[400, 'invalid_manifest'], [409, 'conflict'], [503, 'unavailable'], [422, 'digest_mismatch'], [403, 'admin_only']] as const) {
      expect([status, code, attentionCodeOf(status, code)]).toEqual([status, code, code === 'admin_only' ? 'token_rejected' : undefined]);
    }
    // 404: the route, or the create, is the endpoint's problem; a recording the server does not find is the recording's retry.
    expect(attentionCodeOf(404, 'not_found', { method: 'GET', path: '/v1/keys', detail: 'GET /wrong/v1/keys is not part of protocol v1' })).toBe('server_not_found');
    expect(attentionCodeOf(404, 'no_such_route', { method: 'PUT', path: '/v1/recordings/x/segments/1', detail: 'reworded by a later server' })).toBe('server_not_found');
    expect(attentionCodeOf(404, 'http_404', { method: 'PUT', path: '/v1/recordings/x/segments/1', detail: 'Not Found' })).toBe('server_not_found');
    expect(attentionCodeOf(404, 'not_found', { method: 'POST', path: '/v1/recordings', detail: 'whatever' })).toBe('server_not_found');
    expect(attentionCodeOf(404, 'not_found', { method: 'PUT', path: '/v1/recordings/x/segments/1', detail: 'dock dock-2 has no recording x' })).toBeUndefined();
    expect(dispositionOf(ProblemError.received(404, 'not_found', 'POST /v1/recordings: POST /wrong/v1/recordings is not part of protocol v1'))).toBe('transient');
  });

  it('server_not_found clears with a success of the request kind that got the 404 (a create clears a keys one too), at that endpoint', () => {
    const attention = new DockAttention({ now: () => 1 });
    attention.raise('server_not_found', 'not_found (404)', 'http://a', 404, 'create');
    attention.raise('server_not_found', 'not_found (404)', 'http://a', 404, 'keys');
    attention.succeeded('create', 'http://b');
    attention.succeeded('auth', 'http://a');
    expect(attention.list().map((p) => p.code)).toEqual(['server_not_found', 'server_not_found']);
    attention.succeeded('keys', 'http://a');
    expect(attention.size).toBe(1);
    attention.succeeded('create', 'http://a');
    expect(attention.size).toBe(0);
    attention.raise('server_not_found', 'not_found (404)', 'http://a', 404, 'keys');
    attention.succeeded('create', 'http://a');
    expect(attention.size).toBe(0);
  });
});
