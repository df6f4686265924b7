/**
 * The server's Prometheus metrics (GET /metrics), with prom-client: one registry per server
 * (several servers in one process do not share counters), prom-client's process metrics, the
 * build, and gauges read at scrape time from the store and the request gate.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { buildInfo } from '../util/version.js';

export interface ServerGauges {
  usedBytes(): number;
  quotaBytes?: number;
  inFlight(): number;
  refused(): { server: number; dock: number };
}

export class ServerMetrics {
  readonly registry = new Registry();
  private readonly requests = new Counter({ name: 'bodycam_http_requests_total', help: 'HTTP requests by method, route and status.', labelNames: ['method', 'route', 'status'], registers: [this.registry] });
  private readonly bytesReceived = new Counter({ name: 'bodycam_segment_bytes_received_total', help: 'Segment body bytes read from clients (every byte the store read, stored or not).', registers: [this.registry] });
  private readonly digestFailures = new Counter({ name: 'bodycam_digest_failures_total', help: 'Segment uploads rejected because the body did not match its digest.', registers: [this.registry] });
  private readonly completed = new Counter({ name: 'bodycam_recordings_completed_total', help: 'Receipts issued.', registers: [this.registry] });
  private readonly blobDamage = new Counter({ name: 'bodycam_blob_damage_total', help: 'Reads of stored blobs that found their bytes damaged or gone (the read was aborted, the blob marked missing).', registers: [this.registry] });
  private readonly lastReceipt = new Gauge({ name: 'bodycam_last_receipt_timestamp_seconds', help: 'Unix time of the last receipt issued (0: none since start).', registers: [this.registry] });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    const build = buildInfo();
    new Gauge({ name: 'bodycam_build_info', help: 'The running build: always 1, the labels say which.', labelNames: ['component', 'version', 'node'], registers: [this.registry] })
      .set({ component: 'server', version: build.version, node: build.node }, 1);
    this.lastReceipt.set(0);
  }

  /** Gauges read at scrape time (called once the store and the gate exist). */
  observe(source: ServerGauges): void {
    new Gauge({ name: 'bodycam_store_bytes', help: 'Bytes held in segment blobs.', registers: [this.registry], collect() { this.set(source.usedBytes()); } });
    if (source.quotaBytes !== undefined) new Gauge({ name: 'bodycam_store_quota_bytes', help: 'Configured store quota.', registers: [this.registry] }).set(source.quotaBytes);
    new Gauge({ name: 'bodycam_requests_in_flight', help: 'Requests being served (health, metrics and keys not counted).', registers: [this.registry], collect() { this.set(source.inFlight()); } });
    new Counter({
      name: 'bodycam_requests_refused_total', help: 'Requests answered 429 at a concurrency cap (server: all requests, dock: one dock\'s).', labelNames: ['cap'], registers: [this.registry],
      collect() {
        const refused = source.refused();
        this.reset();
        this.inc({ cap: 'server' }, refused.server);
        this.inc({ cap: 'dock' }, refused.dock);
      },
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

  render(): Promise<string> { return this.registry.metrics(); }
}
