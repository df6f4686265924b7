/**
 * The dock's Prometheus metrics (GET /metrics on the status port), with prom-client: one
 * registry per agent (several agents in one process, as in the demo and the tests, do not
 * share counters), the process metrics prom-client collects (CPU, memory, event loop lag,
 * file descriptors), the build, and per-bay labels on what a bay does.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { buildInfo } from '../util/version.js';
import type { DockStatus } from './agent.js';

/** Label value for work whose bay is not known (a row from before the bay was recorded). */
export const UNKNOWN_BAY = 'unknown';

export class DockMetrics {
  readonly registry = new Registry();
  /** Segment body bytes acknowledged by the server, all bays (what `status` shows as bytesSent). */
  bytesSent = 0;
  private status: (() => DockStatus) | undefined;

  private readonly bytesSentTotal = this.counter('bodycam_dock_bytes_sent_total', 'Segment body bytes sent to the ingest server and acknowledged.', ['bay']);
  private readonly segmentsSentTotal = this.counter('bodycam_dock_segments_sent_total', 'Segments acknowledged by the ingest server.', ['bay']);
  private readonly requestRetriesTotal = this.counter('bodycam_dock_request_retries_total', 'Per-request retries (connection errors, 408/429/5xx), by reason.', ['reason']);
  private readonly jobRetriesTotal = this.counter('bodycam_dock_job_retries_total', 'Jobs sent back to the journal with backoff.', ['bay']);
  private readonly receiptsTotal = this.counter('bodycam_dock_receipts_total', 'Verified receipts stored.', ['bay']);
  private readonly wipedTotal = this.counter('bodycam_dock_wiped_total', 'Camera files wiped after a stored receipt and proof of possession.', ['bay']);
  private readonly possessionFailuresTotal = this.counter('bodycam_dock_possession_failures_total', 'Wipes refused because the server did not prove it holds the bytes (an integrity problem).', ['bay']);
  private readonly staleAlarmsTotal = this.counter('bodycam_dock_stale_alarms_total', 'Recordings that waited longer than --stale-after.', ['bay']);
  private readonly lastReceipt = new Gauge({ name: 'bodycam_dock_last_receipt_timestamp_seconds', help: 'Unix time of the last verified receipt (0: none since start): alert when it stops moving while the queue is not empty.', labelNames: ['bay'], registers: [this.registry] });
  private readonly lastReceiptAny = new Gauge({ name: 'bodycam_dock_last_success_timestamp_seconds', help: 'Unix time of the last verified receipt of any bay (0: none since start).', registers: [this.registry] });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    const build = buildInfo();
    new Gauge({ name: 'bodycam_build_info', help: 'The running build: always 1, the labels say which.', labelNames: ['component', 'version', 'node'], registers: [this.registry] })
      .set({ component: 'dock', version: build.version, node: build.node }, 1);
    this.lastReceiptAny.set(0);
    const gauge = (name: string, help: string, value: (s: DockStatus) => number): void => {
      const metrics = this;
      new Gauge({ name, help, registers: [this.registry], collect() { const s = metrics.status?.(); if (s) this.set(value(s)); } });
    };
    gauge('bodycam_dock_queue_depth', 'Recordings with work left.', (s) => s.queue.depth);
    gauge('bodycam_dock_oldest_queued_seconds', 'Age of the oldest recording with work left.', (s) => s.queue.oldestQueuedSeconds);
    gauge('bodycam_dock_quarantined', 'Recordings quarantined with a reason.', (s) => s.queue.quarantined);
    gauge('bodycam_dock_flagged', 'Recordings uploaded with an integrity flag (never wiped).', (s) => s.queue.flagged);
    gauge('bodycam_dock_bays_docked', 'Bays with a camera docked.', (s) => s.bays.filter((b) => b.state !== 'empty').length);
    const metrics = this;
    // One series per bay and state, 1 for the bay's state now: `bodycam_dock_bay_state{state="attention"} == 1` is an alert.
    new Gauge({
      name: 'bodycam_dock_bay_state', help: 'State of each bay (1 for the current state).', labelNames: ['bay', 'state'], registers: [this.registry],
      collect() {
        this.reset();
        for (const bay of metrics.status?.().bays ?? []) this.set({ bay: bay.bay, state: bay.state }, 1);
      },
    });
    new Gauge({
      name: 'bodycam_dock_bay_bytes', help: 'Bytes of the recordings of the camera docked in each bay: found, and done (acknowledged or finished otherwise).', labelNames: ['bay', 'kind'], registers: [this.registry],
      collect() {
        this.reset();
        for (const bay of metrics.status?.().bays ?? []) {
          if (bay.bytesTotal === undefined) continue;
          this.set({ bay: bay.bay, kind: 'found' }, bay.bytesTotal);
          this.set({ bay: bay.bay, kind: 'done' }, bay.bytesDone ?? 0);
        }
      },
    });
  }

  private counter(name: string, help: string, labelNames: string[]): Counter {
    return new Counter({ name, help, labelNames, registers: [this.registry] });
  }

  /** Where the gauges read the agent's state at scrape time. */
  observe(status: () => DockStatus): void {
    this.status = status;
  }

  segmentSent(bay: string, bytes: number): void {
    this.bytesSent += bytes;
    this.bytesSentTotal.inc({ bay }, bytes);
    this.segmentsSentTotal.inc({ bay });
  }

  requestRetried(reason: string): void { this.requestRetriesTotal.inc({ reason }); }
  jobRetried(bay: string): void { this.jobRetriesTotal.inc({ bay }); }
  staleAlarm(bay: string): void { this.staleAlarmsTotal.inc({ bay }); }
  wiped(bay: string): void { this.wipedTotal.inc({ bay }); }
  possessionFailed(bay: string): void { this.possessionFailuresTotal.inc({ bay }); }

  receiptStored(bay: string, at = Date.now()): void {
    this.receiptsTotal.inc({ bay });
    this.lastReceipt.set({ bay }, at / 1000);
    this.lastReceiptAny.set(at / 1000);
  }

  /** The Prometheus text exposition (0.0.4). */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
