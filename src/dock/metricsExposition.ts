/**
 * The Prometheus side of the dock's metrics (GET /metrics on the status port): what every program
 * has (src/util/metrics.ts: a registry per agent, process metrics, the build) and the dock's own
 * series, each read at scrape time from the tallies DockMetrics keeps (metrics.ts). Loaded at the
 * first scrape only: prom-client costs ≈ 0.12 CPU s to load, paid by every `dock --once` before
 * (docs/benchmarks.md, "Dock start-up").
 */
import { ProgramMetrics } from '../util/metrics.js';
import type { DockStatus } from './agent.js';
import type { DockTallies } from './metrics.js';

export class DockExposition extends ProgramMetrics {
  /** The status of the scrape in progress: read once per scrape, not once per series (a docked card of 20,000 files makes one 0.28 s). */
  private scrape: { status: DockStatus | undefined } | undefined;

  constructor(tallies: DockTallies, readStatus: () => DockStatus | undefined) {
    super('dock');
    const status = (): DockStatus | undefined => (this.scrape ??= { status: readStatus() }).status;
    const counter = (name: string, help: string, label: string, of: Map<string, number>): void => {
      this.series('counter', name, help, [label], () => [...of].map(([value, n]) => [{ [label]: value }, n]));
    };
    counter('bodycam_dock_bytes_sent_total', 'Segment body bytes sent to the ingest server and acknowledged.', 'bay', tallies.bytesSent);
    counter('bodycam_dock_segments_sent_total', 'Segments acknowledged by the ingest server.', 'bay', tallies.segmentsSent);
    counter('bodycam_dock_request_retries_total', 'Per-request retries (connection errors, 408/429/5xx), by reason.', 'reason', tallies.requestRetries);
    counter('bodycam_dock_job_retries_total', 'Jobs sent back to the journal with backoff.', 'bay', tallies.jobRetries);
    counter('bodycam_dock_receipts_total', 'Verified receipts stored.', 'bay', tallies.receipts);
    counter('bodycam_dock_wiped_total', 'Camera files wiped after a stored receipt and proof of possession.', 'bay', tallies.wiped);
    counter('bodycam_dock_possession_failures_total', 'Wipes refused because the server did not prove it holds the bytes (an integrity problem).', 'bay', tallies.possessionFailures);
    counter('bodycam_dock_stale_alarms_total', 'Recordings that waited longer than --stale-after.', 'bay', tallies.staleAlarms);
    this.series('gauge', 'bodycam_dock_last_receipt_timestamp_seconds', 'Unix time of the last verified receipt (0: none since start): alert when it stops moving while the queue is not empty.', ['bay'],
      () => [...tallies.lastReceiptAt].map(([bay, ms]) => [{ bay }, ms / 1000]));
    this.gaugeReading('bodycam_dock_last_success_timestamp_seconds', 'Unix time of the last verified receipt of any bay (0: none since start).', () => tallies.lastReceiptAnyAt / 1000);
    const gauge = (name: string, help: string, value: (s: DockStatus) => number): void => {
      this.gaugeReading(name, help, () => { const s = status(); return s ? value(s) : undefined; });
    };
    gauge('bodycam_dock_queue_depth', 'Recordings with work left.', (s) => s.queue.depth);
    gauge('bodycam_dock_oldest_queued_seconds', 'Age of the oldest recording with work left.', (s) => s.queue.oldestQueuedSeconds);
    gauge('bodycam_dock_quarantined', 'Recordings quarantined with a reason.', (s) => s.queue.quarantined);
    gauge('bodycam_dock_flagged', 'Recordings uploaded with an integrity flag (never wiped).', (s) => s.queue.flagged);
    gauge('bodycam_dock_bays_docked', 'Bays with a camera docked.', (s) => s.bays.filter((b) => b.state !== 'empty').length);
    const bays = () => status()?.bays ?? [];
    // One series per bay and state, 1 for the bay's state now: `bodycam_dock_bay_state{state="attention"} == 1` is an alert.
    this.series('gauge', 'bodycam_dock_bay_state', 'State of each bay (1 for the current state).', ['bay', 'state'], () => bays().map((bay) => [{ bay: bay.bay, state: bay.state }, 1]));
    this.series('gauge', 'bodycam_dock_bay_bytes', 'Bytes of the recordings of the camera docked in each bay: found, and done (acknowledged or finished otherwise).', ['bay', 'kind'],
      () => bays().flatMap((bay) => bay.bytesTotal === undefined ? [] : [[{ bay: bay.bay, kind: 'found' }, bay.bytesTotal], [{ bay: bay.bay, kind: 'done' }, bay.bytesDone ?? 0]] as Array<[Record<string, string>, number]>));
  }

  override async render(): Promise<string> {
    this.scrape = undefined;
    try {
      return await super.render();
    } finally {
      this.scrape = undefined;
    }
  }
}
