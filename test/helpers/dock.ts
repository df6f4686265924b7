/** Shared pieces of the dock tests: small media (made by src/media), configs, polling, a logging server. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateForeignClip, generatePattern } from '../../src/media/generate.js';
import { loadDockConfig, type DockConfig } from '../../src/dock/index.js';
import { streamLogger, type LogSink } from '../../src/log.js';
import { startTestServer, TEST_TOKENS, type TestServer } from './server.js';

// Media through src/media only (the one place that knows ffmpeg's arguments).

/** Fragmented MP4, 1 s fragments (keyframe every 15 frames at 15 fps). */
export function makeFmp4(path: string, seconds: number): Promise<void> {
  return generatePattern(path, { container: 'fmp4', durationSeconds: seconds });
}

export function makeTs(path: string, seconds: number): Promise<void> {
  return generatePattern(path, { container: 'mpegts', durationSeconds: seconds });
}

export function makePlainMp4(path: string, seconds: number): Promise<void> {
  return generatePattern(path, { container: 'mp4', durationSeconds: seconds });
}

/** A plain MP4 from another make of camera: video, audio, a subtitle track and a timecode data track. */
export function makeForeignMp4(path: string, seconds: number): Promise<void> {
  return generateForeignClip(path, { durationSeconds: seconds, width: 320, height: 240, fps: 15, timecode: true });
}

export const TOKEN = TEST_TOKENS['dock-1']!;

/** The test server's public receipt key, as its operator would hand it over (a wipe needs a confirmed key). */
export function serverKeyFile(server: { dataDir: string }): string {
  return join(server.dataDir, 'server-key.pub.pem');
}

export function dockConfig(root: string, endpoint: string, overrides: Record<string, unknown> = {}): DockConfig {
  const tokenFile = join(root, 'token');
  writeFileSync(tokenFile, TOKEN + '\n', { mode: 0o600 });
  mkdirSync(join(root, 'bays'), { recursive: true });
  return loadDockConfig({
    flags: { bays: join(root, 'bays'), endpoint, tokenFile, stateDir: join(root, 'state'), dockId: 'dock-1', statusPort: 0, settle: '0.5s', maxBackoff: '1s', rescanInterval: '1s', logLevel: 'silent', ...overrides },
    env: {},
  });
}

/** Poll until `check` returns a truthy value (or throw after `timeoutMs`). */
export async function waitFor<T>(what: string, check: () => T | Promise<T>, timeoutMs = 60_000, everyMs = 100): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export interface LoggedServer extends TestServer {
  /** Server request log lines ({method, url, status}). */
  requests: Array<{ method: string; url: string; status: number }>;
  /** 2xx answers to segment PUTs, per URL. */
  segmentPutsAcked(): Map<string, number>;
}

export async function startLoggedServer(options: { keepDir?: string } = {}): Promise<LoggedServer> {
  const requests: Array<{ method: string; url: string; status: number }> = [];
  const sink: LogSink = {
    write(line) {
      try {
        const record = JSON.parse(line) as { msg?: string; method?: string; url?: string; status?: number };
        if (record.msg === 'request' && record.method && record.url && typeof record.status === 'number') requests.push({ method: record.method, url: record.url, status: record.status });
      } catch { /* not ours */ }
    },
  };
  const server = await startTestServer({ logger: streamLogger(sink), ...options });
  return Object.assign(server, {
    requests,
    segmentPutsAcked: () => {
      const counts = new Map<string, number>();
      for (const r of requests) if (r.method === 'PUT' && r.status < 300) counts.set(r.url, (counts.get(r.url) ?? 0) + 1);
      return counts;
    },
  });
}

/** The original bytes as the server gives them back. */
export async function serverContent(server: TestServer, recordingId: string): Promise<Buffer> {
  const response = await server.request(`/v1/recordings/${recordingId}/content`);
  if (response.status !== 200) throw new Error(`GET content of ${recordingId}: ${response.status}`);
  return Buffer.from(await response.arrayBuffer());
}

export async function serverRecording(server: TestServer, recordingId: string): Promise<Record<string, unknown>> {
  const response = await server.request(`/v1/recordings/${recordingId}`);
  return (await response.json()) as Record<string, unknown>;
}
