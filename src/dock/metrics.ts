/**
 * The dock's Prometheus metrics (GET /metrics on the status port): what every program has
 * (src/util/metrics.ts: a registry per agent, process metrics, the build) and per-bay labels on
 * what a bay does.
 */
import { ProgramMetrics } from '../util/metrics.js';
import type { DockStatus } from './agent.js';

/** Label value for work whose bay is not known (a row from before the bay was recorded). */
export const UNKNOWN_BAY = 'unknown';

export class DockMetrics extends ProgramMetrics {
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
  private readonly lastReceipt = this.gauge('bodycam_dock_last_receipt_timestamp_seconds', 'Unix time of the last verified receipt (0: none since start): alert when it stops moving while the queue is not empty.', ['bay']);
  private readonly lastReceiptAny = this.gauge('bodycam_dock_last_success_timestamp_seconds', 'Unix time of the last verified receipt of any bay (0: none since start).');

  constructor() {
    super('dock');
    this.lastReceiptAny.set(0);
    const gauge = (name: string, help: string, value: (s: DockStatus) => number): void => {
      this.gaugeReading(name, help, () => { const s = this.status?.(); return s ? value(s) : undefined; });
    };
    gauge('bodycam_dock_queue_depth', 'Recordings with work left.', (s) => s.queue.depth);
    gauge('bodycam_dock_oldest_queued_seconds', 'Age of the oldest recording with work left.', (s) => s.queue.oldestQueuedSeconds);
    gauge('bodycam_dock_quarantined', 'Recordings quarantined with a reason.', (s) => s.queue.quarantined);
    gauge('bodycam_dock_flagged', 'Recordings uploaded with an integrity flag (never wiped).', (s) => s.queue.flagged);
    gauge('bodycam_dock_bays_docked', 'Bays with a camera docked.', (s) => s.bays.filter((b) => b.state !== 'empty').length);
    const bays = () => this.status?.().bays ?? [];
    // One series per bay and state, 1 for the bay's state now: `bodycam_dock_bay_state{state="attention"} == 1` is an alert.
    this.series('gauge', 'bodycam_dock_bay_state', 'State of each bay (1 for the current state).', ['bay', 'state'], () => bays().map((bay) => [{ bay: bay.bay, state: bay.state }, 1]));
    this.series('gauge', 'bodycam_dock_bay_bytes', 'Bytes of the recordings of the camera docked in each bay: found, and done (acknowledged or finished otherwise).', ['bay', 'kind'],
      () => bays().flatMap((bay) => bay.bytesTotal === undefined ? [] : [[{ bay: bay.bay, kind: 'found' }, bay.bytesTotal], [{ bay: bay.bay, kind: 'done' }, bay.bytesDone ?? 0]] as Array<[Record<string, string>, number]>));
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
}
