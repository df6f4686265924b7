/**
 * The uplink misbehaves (the project's fault proxy between dock and the real
 * server) and cameras come and go: the dock finishes without help, resends the
 * right bytes, honours Retry-After, and resumes an undocked camera in another bay.
 */
import { describe, it, expect, afterEach } from '@jest/globals';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { recordCamera, dockCamera, undockCamera } from '../../src/camera/index.js';
import { startDockAgent, type DockAgent } from '../../src/dock/index.js';
import { streamLogger, type LogSink, type Logger } from '../../src/log.js';
import { startFaultProxy, type FaultProxy } from '../../src/faultproxy/faultProxy.js';
import { makeTempDir } from '../helpers/tmp.js';
import { dockConfig, serverContent, serverKeyFile, startLoggedServer, waitFor, type LoggedServer } from '../helpers/dock.js';

const sha = (data: Buffer): string => createHash('sha256').update(data).digest('hex');
const small = { width: 320, height: 240, fps: 15 };

function capturingLogger(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const sink: LogSink = { write: (line) => { lines.push(JSON.parse(line) as Record<string, unknown>); } };
  return { logger: streamLogger(sink, 'debug', { component: 'dock' }), lines };
}

describe('dock resilience', () => {
  let tmp: ReturnType<typeof makeTempDir>;
  let server: LoggedServer | undefined;
  let proxy: FaultProxy | undefined;
  let agent: DockAgent | undefined;

  afterEach(async () => {
    await agent?.stop();
    await proxy?.close();
    await server?.close();
    tmp?.cleanup();
    agent = undefined; proxy = undefined; server = undefined;
  });

  async function setup(seconds: number, count = 1): Promise<{ files: string[]; bays: string }> {
    tmp = makeTempDir('bodycam-dock-resil-');
    server = await startLoggedServer();
    proxy = await startFaultProxy({ target: { host: '127.0.0.1', port: server.port } });
    const camera = join(tmp.path, 'cam');
    const result = await recordCamera({ storage: camera, count, durationSeconds: seconds, seed: `resil-${seconds}-${count}`, ...small });
    const bays = join(tmp.path, 'bays');
    mkdirSync(bays, { recursive: true });
    const names = result.files.map((f) => f.mediaPath.split('/').pop()!);
    await dockCamera({ storage: camera, bays, bay: 'bay1' });
    return { files: names.map((n) => join(bays, 'bay1', 'DCIM', '100BWC', n)), bays };
  }

  const completed = (a: DockAgent) => a.status().queue.recordings.filter((r) => r.state === 'completed');

  it('honours 503 with Retry-After and finishes', async () => {
    const { files } = await setup(2);
    const original = readFileSync(files[0]!);
    await proxy!.setMode({ kind: 'http-status', status: 503, count: 3, retryAfterSeconds: 1 });
    const { logger, lines } = capturingLogger();
    agent = await startDockAgent(dockConfig(tmp.path, proxy!.url), { logger });
    const [done] = await waitFor('receipt', () => (completed(agent!).length === 1 ? completed(agent!) : undefined), 60_000);
    expect(proxy!.stats.statusAnswers).toBe(3);
    const retries = lines.filter((l) => l.msg === 'request retry' && l.status === 503);
    expect(retries.length).toBe(3);
    expect(retries.every((l) => l.delayMs === 1000)).toBe(true);
    expect(sha(await serverContent(server!, done!.recordingId!))).toBe(sha(original));
  });

  it('re-sends the exact bytes of a segment after a connection reset mid-body', async () => {
    const { files } = await setup(3);
    const original = readFileSync(files[0]!);
    // Past the manifest, into the first segment's body.
    await proxy!.setMode({ kind: 'reset-after-bytes', bytes: 20_000, times: 1 });
    agent = await startDockAgent(dockConfig(tmp.path, proxy!.url, { concurrency: 1, segmentSeconds: '10s' }));
    const [done] = await waitFor('receipt', () => (completed(agent!).length === 1 ? completed(agent!) : undefined), 60_000);
    expect(proxy!.stats.resets).toBe(1);
    expect(await agent.metricsText()).toMatch(/^bodycam_dock_request_retries_total\{reason="[A-Za-z_0-9]+"\} [1-9]/m);
    expect(sha(await serverContent(server!, done!.recordingId!))).toBe(sha(original));
  });

  it('waits out a server that is down, then finishes without help (and wipes only after the receipt)', async () => {
    const { files } = await setup(2);
    const original = readFileSync(files[0]!);
    await proxy!.setMode({ kind: 'down', how: 'refuse' });
    agent = await startDockAgent(dockConfig(tmp.path, proxy!.url, { requestRetries: 1, maxBackoff: '0.5s', staleAfter: '1s', rescanInterval: '0.3s', wipeAfterIngest: true, serverKey: serverKeyFile(server!) }));
    await waitFor('a job in backoff', () => agent!.status().queue.recordings.some((r) => r.attempts >= 2 && r.lastError), 60_000);
    expect(completed(agent)).toHaveLength(0);
    // Queued longer than --stale-after: the bay asks for attention and the alarm is counted.
    const bay = await waitFor('stale alarm', () => agent!.status().bays.find((b) => b.state === 'attention'), 20_000);
    expect(bay.reason).toMatch(/queued for more than 1s/);
    await waitFor('stale metric', async () => /^bodycam_dock_stale_alarms_total\{bay="[^"]+"\} 1$/m.test(await agent!.metricsText()), 20_000);
    expect(existsSync(files[0]!)).toBe(true); // no receipt, no wipe
    await proxy!.setMode('pass');
    const done = await waitFor('wiped after its receipt', () => agent!.status().queue.recordings.find((r) => r.state === 'wiped'), 60_000);
    expect(existsSync(files[0]!)).toBe(false);
    expect(sha(await serverContent(server!, done.recordingId!))).toBe(sha(original));
  });

  it('pauses on undock mid-upload and finishes when the camera is docked in another bay', async () => {
    const { files, bays } = await setup(6);
    const original = readFileSync(files[0]!);
    agent = await startDockAgent(dockConfig(tmp.path, server!.url, { maxRate: '16KB/s', concurrency: 1, segmentSeconds: '1s' }));
    await waitFor('first segments acknowledged', () => server!.segmentPutsAcked().size >= 2, 60_000);
    await undockCamera({ bays, bay: 'bay1', to: join(tmp.path, 'away') });
    await waitFor('bay empty', () => agent!.status().bays.find((b) => b.bay === 'bay1')?.state === 'empty', 20_000);
    const paused = agent.status().queue;
    expect(paused.recordings[0]!.state).toBe('uploading');
    expect(paused.paused).toBe(1);
    const ackedWhileAway = server!.segmentPutsAcked().size;
    await dockCamera({ storage: join(tmp.path, 'away'), bays, bay: 'bay7' });
    const [done] = await waitFor('receipt after re-dock', () => (completed(agent!).length === 1 ? completed(agent!) : undefined), 90_000);
    expect(done!.bay).toBe('bay7');
    expect(sha(await serverContent(server!, done!.recordingId!))).toBe(sha(original));
    const puts = server!.segmentPutsAcked();
    expect(puts.size).toBeGreaterThan(ackedWhileAway);
    expect([...puts.values()].every((n) => n === 1)).toBe(true);
  });

  it('does not offload a recording that is still being written in real time', async () => {
    const { bays } = await setup(1);
    agent = await startDockAgent(dockConfig(tmp.path, server!.url, { settle: '5s' }));
    await waitFor('first recording', () => completed(agent!).length === 1, 60_000);
    const live = await recordCamera({ storage: join(bays, 'bay1'), count: 1, durationSeconds: 4, realtime: true, ...small });
    const liveName = live.files[0]!.mediaPath.split('/').pop()!;
    await waitFor('live recording receipted', () => completed(agent!).find((r) => r.file.endsWith(liveName)), 60_000);
    const rows = agent.status().queue.recordings.filter((r) => r.file.endsWith(liveName));
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ state: 'completed', integrity: 'verified' });
    expect(rows[0]!.truncated).toBeUndefined();
    const list = (await (await server!.request('/v1/recordings')).json()) as { recordings?: unknown[] } | unknown[];
    expect((Array.isArray(list) ? list : list.recordings ?? []).length).toBe(2);
    expect(sha(await serverContent(server!, rows[0]!.recordingId!))).toBe(live.files[0]!.sha256);
  });
});
