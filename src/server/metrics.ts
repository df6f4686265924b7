/**
 * The server's Prometheus metrics (GET /metrics): what every program has (src/util/metrics.ts),
 * the ingest counters, and gauges read at scrape time from the store and the request gate.
 */
import { ProgramMetrics } from '../util/metrics.js';

export interface ServerGauges {
  usedBytes(): number;
  quotaBytes?: number;
  inFlight(): number;
  refused(): { server: number; dock: number };
}

export class ServerMetrics extends ProgramMetrics {
  private readonly requests = this.counter('bodycam_http_requests_total', 'HTTP requests by method, route and status.', ['method', 'route', 'status']);
  private readonly bytesReceived = this.counter('bodycam_segment_bytes_received_total', 'Segment body bytes read from clients (every byte the store read, stored or not).');
  private readonly digestFailures = this.counter('bodycam_digest_failures_total', 'Segment uploads rejected because the body did not match its digest.');
  private readonly completed = this.counter('bodycam_recordings_completed_total', 'Receipts issued.');
  private readonly blobDamage = this.counter('bodycam_blob_damage_total', 'Reads of stored blobs that found their bytes damaged or gone (the read was aborted, the blob marked missing).');
  private readonly lastReceipt = this.gauge('bodycam_last_receipt_timestamp_seconds', 'Unix time of the last receipt issued (0: none since start).');

  constructor() {
    super('server');
    this.lastReceipt.set(0);
  }

  /** Gauges read at scrape time (called once the store and the gate exist). */
  observe(source: ServerGauges): void {
    this.gaugeReading('bodycam_store_bytes', 'Bytes held in segment blobs.', () => source.usedBytes());
    if (source.quotaBytes !== undefined) this.gauge('bodycam_store_quota_bytes', 'Configured store quota.').set(source.quotaBytes);
    this.gaugeReading('bodycam_requests_in_flight', 'Requests being served (health, metrics and keys not counted).', () => source.inFlight());
    this.series('counter', 'bodycam_requests_refused_total', 'Requests answered 429 at a concurrency cap (server: all requests, dock: one dock\'s).', ['cap'], () => {
      const refused = source.refused();
      return [[{ cap: 'server' }, refused.server], [{ cap: 'dock' }, refused.dock]];
    });
  }

  countRequest(method: string, route: string, status: number): void { this.requests.inc({ method, route, status: String(status) }); }
  segmentBytes(bytes: number): void { this.bytesReceived.inc(bytes); }
  digestFailure(): void { this.digestFailures.inc(); }
  blobDamaged(): void { this.blobDamage.inc(); }
  receiptIssued(at = Date.now()): void {
    this.completed.inc();
    this.lastReceipt.set(at / 1000);
  }
}
