/**
 * Metrics as Prometheus scrapes them (prom-client): after a clean demo-like run every byte the
 * server stored was counted as received (bodycam_segment_bytes_received_total undercounted before:
 * it read the socket's bytesRead, which missed what Node had read ahead of the handler), the dock's
 * per-bay counters add up to the same bytes, both sides name their build, carry process metrics
 * and a last-success timestamp.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { join } from 'node:path';
import { recordCamera } from '../../src/camera/index.js';
import { startDockAgent, type DockAgent } from '../../src/dock/index.js';
import { VERSION } from '../../src/util/version.js';
import { makeTempDir } from '../helpers/tmp.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { dockConfig, waitFor } from '../helpers/dock.js';

/** Every sample of a metric: labels (as text) → value. */
function samples(text: string, name: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$/.exec(line);
    if (m && m[1] === name) out.set(m[2] ?? '', Number(m[3]));
  }
  return out;
}
const sum = (m: Map<string, number>): number => [...m.values()].reduce((a, b) => a + b, 0);

describe('metrics (prom-client)', () => {
  const tmp = makeTempDir('bodycam-metrics-');
  let server: TestServer;
  let agent: DockAgent | undefined;
  let serverText = '';
  let dockText = '';
  const started = Date.now() / 1000;

  beforeAll(async () => {
    server = await startTestServer();
    // Two cameras in two bays, several segments each (1 s segments): the demo in small.
    for (const bay of ['bay-01', 'bay-02']) {
      await recordCamera({ storage: join(tmp.path, 'bays', bay), count: 2, durationSeconds: 3, seed: `metrics-${bay}`, width: 320, height: 240, fps: 15 });
    }
    agent = await startDockAgent(dockConfig(tmp.path, server.url, { segmentSeconds: '1s', concurrency: 3, settle: '0.2s' }));
    await waitFor('4 receipts', () => agent!.status().queue.completed === 4 || undefined, 90_000);
    serverText = await (await server.request('/metrics', { dock: null })).text();
    dockText = await agent.metricsText();
  }, 120_000);
  afterAll(async () => {
    await agent?.stop();
    await server.close();
    tmp.cleanup();
  });

  it('the server counts every stored byte as received after a clean run (received == stored)', () => {
    const received = sum(samples(serverText, 'bodycam_segment_bytes_received_total'));
    const stored = sum(samples(serverText, 'bodycam_store_bytes'));
    expect(stored).toBeGreaterThan(100_000);
    expect(received).toBe(stored);
    expect(sum(samples(serverText, 'bodycam_recordings_completed_total'))).toBe(4);
  });

  it('the dock counts the same bytes, per bay', () => {
    const sent = samples(dockText, 'bodycam_dock_bytes_sent_total');
    expect([...sent.keys()].sort()).toEqual(['{bay="bay-01"}', '{bay="bay-02"}']);
    expect(sum(sent)).toBe(sum(samples(serverText, 'bodycam_store_bytes')));
    expect(sum(sent)).toBe(agent!.status().queue.bytesSent);
    expect(samples(dockText, 'bodycam_dock_receipts_total')).toEqual(new Map([['{bay="bay-01"}', 2], ['{bay="bay-02"}', 2]]));
    expect(samples(dockText, 'bodycam_dock_bay_state').get('{bay="bay-01",state="done"}')).toBe(1);
    const bytes = samples(dockText, 'bodycam_dock_bay_bytes');
    expect(bytes.get('{bay="bay-01",kind="done"}')).toBe(bytes.get('{bay="bay-01",kind="found"}'));
  });

  it('both name their build, carry process metrics and a last-success timestamp', () => {
    for (const [text, component] of [[serverText, 'server'], [dockText, 'dock']] as const) {
      const info = samples(text, 'bodycam_build_info');
      expect([...info.entries()]).toEqual([[`{component="${component}",version="${VERSION}",node="${process.version}"}`, 1]]);
      expect(samples(text, 'process_cpu_seconds_total').size).toBe(1);
      expect(samples(text, 'nodejs_eventloop_lag_seconds').size).toBe(1);
      expect(text).toMatch(/^# TYPE bodycam_build_info gauge$/m);
      expect(text).toMatch(/^# TYPE bodycam_log_lines_dropped_total counter$/m);
      expect(samples(text, 'bodycam_log_lines_dropped_total').size).toBe(1);
    }
    const lastServer = sum(samples(serverText, 'bodycam_last_receipt_timestamp_seconds'));
    const lastDock = samples(dockText, 'bodycam_dock_last_success_timestamp_seconds').get('')!;
    for (const t of [lastServer, lastDock]) {
      expect(t).toBeGreaterThanOrEqual(Math.floor(started));
      expect(t).toBeLessThanOrEqual(Date.now() / 1000);
    }
    expect(samples(dockText, 'bodycam_dock_last_receipt_timestamp_seconds').size).toBe(2);
  });

  it('the server keeps its request counters and gate gauges in the same exposition', () => {
    const puts = [...samples(serverText, 'bodycam_http_requests_total').entries()].filter(([labels]) => labels.includes('method="PUT"'));
    expect(puts.length).toBeGreaterThan(0);
    expect(samples(serverText, 'bodycam_requests_in_flight').size).toBe(1);
    expect(samples(serverText, 'bodycam_requests_refused_total')).toEqual(new Map([['{cap="server"}', 0], ['{cap="dock"}', 0]]));
  });
});
