/** Eight cameras docked at once offload together (not one after another) under one bandwidth cap. */
import { describe, it, expect, afterAll } from '@jest/globals';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { recordCamera, dockCamera } from '../../src/camera/index.js';
import { startDockAgent, type DockAgent } from '../../src/dock/index.js';
import { startFaultProxy, type FaultProxy } from '../../src/faultproxy/faultProxy.js';
import { makeTempDir } from '../helpers/tmp.js';
import { dockConfig, serverContent, startLoggedServer, waitFor, type LoggedServer } from '../helpers/dock.js';

const sha = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

describe('a fleet of eight cameras', () => {
  const tmp = makeTempDir('bodycam-dock-fleet-');
  let server: LoggedServer | undefined;
  let agent: DockAgent | undefined;
  let proxy: FaultProxy | undefined;
  afterAll(async () => {
    await agent?.stop();
    await proxy?.close();
    await server?.close();
    tmp.cleanup();
  });

  it('has all eight cameras offloading at the same time and finishes every one byte-exact', async () => {
    server = await startLoggedServer();
    const bays = join(tmp.path, 'bays');
    mkdirSync(bays, { recursive: true });
    const originals = new Map<string, Buffer>();
    await Promise.all(Array.from({ length: 8 }, async (_, i) => {
      const storage = join(tmp.path, `cam${i}`);
      const result = await recordCamera({ storage, count: 1, durationSeconds: 2, width: 160, height: 120, fps: 10, seed: `fleet-${i}` });
      originals.set(result.files[0]!.mediaPath.split('/').pop()!, readFileSync(result.files[0]!.mediaPath));
      await dockCamera({ storage, bays, bay: `bay${i + 1}` });
    }));
    // A stalled uplink holds every upload in flight, so all of them can be seen together.
    proxy = await startFaultProxy({ target: { host: '127.0.0.1', port: server.port }, mode: { kind: 'stall' } });
    agent = await startDockAgent(dockConfig(tmp.path, proxy.url, { segmentSeconds: '1s', maxRate: '10MB/s' }));
    await waitFor('eight bays offloading at once', () => agent!.status().bays.filter((b) => b.state === 'offloading').length === 8
      && agent!.status().queue.uploading === 8, 60_000, 50);
    await proxy.setMode('pass');
    await waitFor('every recording receipted', () => agent!.status().queue.recordings.filter((r) => r.state === 'completed').length === 8, 90_000);
    const status = agent.status();
    expect(status.bays.map((b) => b.state)).toEqual(Array(8).fill('done'));
    for (const r of status.queue.recordings) {
      expect(sha(await serverContent(server, r.recordingId!))).toBe(sha(originals.get(r.file.split('/').pop()!)!));
    }
  });
});
