/** Counters of a running dock, and their Prometheus text exposition. */
export class DockMetrics {
  bytesSent = 0;
  segmentsSent = 0;
  requestRetries = 0;
  jobRetries = 0;
  receipts = 0;
  wiped = 0;
  possessionFailures = 0;
  staleAlarms = 0;

  prometheus(gauges: { queueDepth: number; oldestQueuedSeconds: number; quarantined: number; flagged: number; baysDocked: number }): string {
    const lines: string[] = [];
    const metric = (name: string, type: 'counter' | 'gauge', help: string, value: number): void => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, `${name} ${value}`);
    };
    metric('bodycam_dock_bytes_sent_total', 'counter', 'Segment body bytes sent to the ingest server.', this.bytesSent);
    metric('bodycam_dock_segments_sent_total', 'counter', 'Segments acknowledged by the ingest server.', this.segmentsSent);
    metric('bodycam_dock_request_retries_total', 'counter', 'Per-request retries (connection errors, 408/429/5xx).', this.requestRetries);
    metric('bodycam_dock_job_retries_total', 'counter', 'Jobs sent back to the journal with backoff.', this.jobRetries);
    metric('bodycam_dock_receipts_total', 'counter', 'Verified receipts stored.', this.receipts);
    metric('bodycam_dock_wiped_total', 'counter', 'Camera files wiped after a stored receipt.', this.wiped);
    metric('bodycam_dock_possession_failures_total', 'counter', 'Wipes refused because the server did not prove it holds the bytes (an integrity problem).', this.possessionFailures);
    metric('bodycam_dock_stale_alarms_total', 'counter', 'Recordings that waited longer than --stale-after.', this.staleAlarms);
    metric('bodycam_dock_queue_depth', 'gauge', 'Recordings with work left.', gauges.queueDepth);
    metric('bodycam_dock_oldest_queued_seconds', 'gauge', 'Age of the oldest recording with work left.', gauges.oldestQueuedSeconds);
    metric('bodycam_dock_quarantined', 'gauge', 'Recordings quarantined with a reason.', gauges.quarantined);
    metric('bodycam_dock_flagged', 'gauge', 'Recordings uploaded with an integrity flag (never wiped).', gauges.flagged);
    metric('bodycam_dock_bays_docked', 'gauge', 'Bays with a camera docked.', gauges.baysDocked);
    return lines.join('\n') + '\n';
  }
}
