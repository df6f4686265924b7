/**
 * What the dock counts for its Prometheus metrics (GET /metrics on the status port): plain tallies
 * per bay (or per retry reason), kept as the work happens. The exposition (metricsExposition.ts:
 * prom-client, the process metrics, the per-bay series) is loaded at the first scrape, so a dock
 * that is never scraped (`dock --once`, no status port) never loads prom-client. The process
 * metrics (event loop lag, GC) are therefore measured from the first scrape on.
 */
import type { DockStatus } from './agent.js';

/** Label value for work whose bay is not known (a row from before the bay was recorded). */
export const UNKNOWN_BAY = 'unknown';

/** Counts by label value (bay or reason). */
export interface DockTallies {
  bytesSent: Map<string, number>;
  segmentsSent: Map<string, number>;
  requestRetries: Map<string, number>;
  jobRetries: Map<string, number>;
  receipts: Map<string, number>;
  wiped: Map<string, number>;
  possessionFailures: Map<string, number>;
  staleAlarms: Map<string, number>;
  /** Bay → ms of its last verified receipt. */
  lastReceiptAt: Map<string, number>;
  /** ms of the last verified receipt of any bay (0: none since start). */
  lastReceiptAnyAt: number;
}

const add = (tally: Map<string, number>, key: string, n = 1): void => { tally.set(key, (tally.get(key) ?? 0) + n); };

export class DockMetrics {
  /** Segment body bytes acknowledged by the server, all bays (what `status` shows as bytesSent). */
  bytesSent = 0;
  private status: (() => DockStatus) | undefined;
  private readonly tallies: DockTallies = {
    bytesSent: new Map(), segmentsSent: new Map(), requestRetries: new Map(), jobRetries: new Map(), receipts: new Map(),
    wiped: new Map(), possessionFailures: new Map(), staleAlarms: new Map(), lastReceiptAt: new Map(), lastReceiptAnyAt: 0,
  };
  private exposition: Promise<{ render(): Promise<string> }> | undefined;

  /** Where the gauges read the agent's state at scrape time. */
  observe(status: () => DockStatus): void {
    this.status = status;
  }

  segmentSent(bay: string, bytes: number): void {
    this.bytesSent += bytes;
    add(this.tallies.bytesSent, bay, bytes);
    add(this.tallies.segmentsSent, bay);
  }

  requestRetried(reason: string): void { add(this.tallies.requestRetries, reason); }
  jobRetried(bay: string): void { add(this.tallies.jobRetries, bay); }
  staleAlarm(bay: string): void { add(this.tallies.staleAlarms, bay); }
  wiped(bay: string): void { add(this.tallies.wiped, bay); }
  possessionFailed(bay: string): void { add(this.tallies.possessionFailures, bay); }

  receiptStored(bay: string, at = Date.now()): void {
    add(this.tallies.receipts, bay);
    this.tallies.lastReceiptAt.set(bay, at);
    this.tallies.lastReceiptAnyAt = at;
  }

  /** The Prometheus text exposition (0.0.4); the first call loads prom-client. */
  render(): Promise<string> {
    this.exposition ??= import('./metricsExposition.js').then((m) => new m.DockExposition(this.tallies, () => this.status?.()));
    return this.exposition.then((e) => e.render());
  }
}
