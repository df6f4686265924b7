/**
 * The dock's metrics (src/dock/metrics.ts): tallies kept as the work happens, exposed through
 * prom-client only from the first scrape (metricsExposition.ts). Every series the dock had
 * exposes the tallies, with the values of the calls made before and after the first scrape.
 */
import { describe, expect, it } from '@jest/globals';
import { DockMetrics } from '../../src/dock/metrics.js';
import type { DockStatus } from '../../src/dock/agent.js';

const value = (text: string, series: string): number | undefined => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};

describe('dock metrics', () => {
  it('counts before and after the first scrape, per bay and reason, and reads the status at scrape time', async () => {
    const metrics = new DockMetrics();
    metrics.segmentSent('bay1', 1000);
    metrics.segmentSent('bay1', 500);
    metrics.requestRetried('ECONNRESET');
    metrics.receiptStored('bay1', 1_700_000_000_000);
    let text = await metrics.render();
    for (const name of ['bytes_sent_total', 'segments_sent_total', 'request_retries_total', 'job_retries_total', 'receipts_total', 'wiped_total', 'possession_failures_total', 'stale_alarms_total']) {
      expect(text).toContain(`# TYPE bodycam_dock_${name} counter`);
    }
    expect(text).toMatch(/^bodycam_build_info\{component="dock",/m);
    expect(text).toMatch(/^process_cpu_seconds_total /m);
    expect([value(text, 'bodycam_dock_bytes_sent_total{bay="bay1"}'), value(text, 'bodycam_dock_segments_sent_total{bay="bay1"}')]).toEqual([1500, 2]);
    expect(value(text, 'bodycam_dock_request_retries_total{reason="ECONNRESET"}')).toBe(1);
    expect(value(text, 'bodycam_dock_last_success_timestamp_seconds')).toBe(1_700_000_000);
    expect(value(text, 'bodycam_dock_queue_depth')).toBe(0); // no status yet: left as it was
    let statusReads = 0;
    metrics.observe(() => { statusReads++; return { queue: { depth: 3, oldestQueuedSeconds: 9, quarantined: 1, flagged: 0 }, bays: [{ bay: 'bay1', state: 'uploading', bytesTotal: 10, bytesDone: 4 }] } as unknown as DockStatus; });
    metrics.segmentSent('bay2', 7);
    metrics.wiped('bay1');
    metrics.staleAlarm('bay2');
    text = await metrics.render();
    expect([value(text, 'bodycam_dock_bytes_sent_total{bay="bay1"}'), value(text, 'bodycam_dock_bytes_sent_total{bay="bay2"}')]).toEqual([1500, 7]);
    expect([value(text, 'bodycam_dock_wiped_total{bay="bay1"}'), value(text, 'bodycam_dock_stale_alarms_total{bay="bay2"}')]).toEqual([1, 1]);
    expect([value(text, 'bodycam_dock_queue_depth'), value(text, 'bodycam_dock_bay_state{bay="bay1",state="uploading"}'), value(text, 'bodycam_dock_bay_bytes{bay="bay1",kind="done"}')]).toEqual([3, 1, 4]);
    expect(metrics.bytesSent).toBe(1507);
    // One status per scrape, however many series read it (a docked card of 20,000 files makes one 0.28 s).
    expect(statusReads).toBe(1);
    await metrics.render();
    expect(statusReads).toBe(2);
  });
});
