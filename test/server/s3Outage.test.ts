/**
 * The object store goes away in the middle of an upload (its radosgw SIGKILLed) and comes back:
 * the server answers segment PUTs 503 store_unavailable with Retry-After meanwhile, the dock waits
 * as told and resumes, and the recording arrives byte-exact with one receipt. Real parts only:
 * Ceph RGW (a gateway of this test's own on the run's cluster), the server, the dock, the camera.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { recordCamera, dockCamera } from '../../src/camera/index.js';
import { startDockAgent, type DockAgent } from '../../src/dock/index.js';
import { streamLogger, type LogSink } from '../../src/log.js';
import { S3BlobStore } from '../../src/server/store/s3BlobStore.js';
import { parseRetention } from '../../src/server/store/s3Config.js';
import { engines, freshBucket, type Gateway } from '../helpers/engines.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { makeTempDir } from '../helpers/tmp.js';
import { dockConfig, serverContent, waitFor } from '../helpers/dock.js';

const sha = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

function capture(): { sink: LogSink; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  return { lines, sink: { write: (line) => { try { lines.push(JSON.parse(line) as Record<string, unknown>); } catch { /* not JSON */ } } } };
}

describe('object store outage mid-upload', () => {
  let tmp: ReturnType<typeof makeTempDir> | undefined;
  let server: TestServer | undefined;
  let agent: DockAgent | undefined;
  let gateway: Gateway | undefined;
  afterEach(async () => {
    await agent?.stop();
    await server?.close();
    await gateway?.start().catch(() => {});
    tmp?.cleanup();
  });

  it('RGW killed after the first segments arrived: 503 store_unavailable with Retry-After, the dock resumes when it is back, nothing is lost', async () => {
    const env = await engines();
    gateway = await env.gateway('outage');
    tmp = makeTempDir('bodycam-s3-outage-');
    const blobs = new S3BlobStore({
      bucket: freshBucket('outage'), retention: parseRetention('1d'), scratchDir: join(tmp.path, 'spool'),
      client: { endpoint: gateway.endpoint, region: env.region, credentials: { accessKeyId: env.accessKeyId, secretAccessKey: env.secretAccessKey }, requestHandler: { connectionTimeout: 1000, requestTimeout: 5000 } },
    });
    const serverLog = capture();
    server = await startTestServer({ store: blobs, logger: streamLogger(serverLog.sink) });

    const camera = join(tmp.path, 'cam');
    const recorded = await recordCamera({ storage: camera, count: 1, durationSeconds: 6, seed: 's3-outage', width: 320, height: 240, fps: 15 });
    const bays = join(tmp.path, 'bays');
    mkdirSync(bays, { recursive: true });
    const original = readFileSync(recorded.files[0]!.mediaPath);
    await dockCamera({ storage: camera, bays, bay: 'bay1' });

    const dockLog = capture();
    agent = await startDockAgent(dockConfig(tmp.path, server.url, { concurrency: 1, segmentSeconds: '1s' }), { logger: streamLogger(dockLog.sink, 'debug', { component: 'dock' }) });
    const segmentPuts = () => serverLog.lines.filter((l) => l.msg === 'request' && l.method === 'PUT' && String(l.url).includes('/segments/'));
    // Mid-upload: the first segment is in the bucket, the rest are not.
    await waitFor('a first segment stored', () => segmentPuts().some((l) => l.status === 200 || l.status === 201), 60_000, 20);
    await gateway.stop();
    await waitFor('503s while the object store is away', () => segmentPuts().filter((l) => l.status === 503).length >= 2, 60_000, 50);
    const completedBefore = agent.status().queue.recordings.filter((r) => r.state === 'completed').length;
    expect(completedBefore).toBe(0);
    await gateway.start();
    const [done] = await waitFor('receipt', () => {
      const completed = agent!.status().queue.recordings.filter((r) => r.state === 'completed');
      return completed.length === 1 ? completed : undefined;
    });

    // The dock was told to wait by the server's Retry-After (5 s) and did, each time.
    const retries = dockLog.lines.filter((l) => l.msg === 'request retry' && l.status === 503);
    expect(retries.length).toBeGreaterThanOrEqual(2);
    expect(retries.every((l) => l.delayMs === 5000)).toBe(true);
    const refused = serverLog.lines.filter((l) => l.msg === 'request failed' || l.msg === 'request refused');
    expect(refused.length).toBeGreaterThan(0);
    // Byte-exact, one receipt, the blobs read back verified through the restarted gateway.
    expect(sha(await serverContent(server, done!.recordingId!))).toBe(sha(original));
    expect(agent.status().queue.recordings).toHaveLength(1);
  });
});
