/** Counters for GET /metrics in the Prometheus text exposition format (0.0.4). */
export class ServerMetrics {
  private readonly requests = new Map<string, number>();
  bytesReceived = 0;
  digestFailures = 0;
  recordingsCompleted = 0;
  /** Verified reads that found a stored blob damaged or gone (each moved it to damaged/). */
  blobDamage = 0;

  countRequest(method: string, route: string, status: number): void {
    const key = `method="${method}",route="${escapeLabel(route)}",status="${status}"`;
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
  }

  render(store: { usedBytes: number; quotaBytes?: number }): string {
    const lines: string[] = [
      '# HELP bodycam_http_requests_total HTTP requests by method, route and status.',
      '# TYPE bodycam_http_requests_total counter',
      ...[...this.requests].map(([labels, value]) => `bodycam_http_requests_total{${labels}} ${value}`),
      '# HELP bodycam_segment_bytes_received_total Segment body bytes read from clients.',
      '# TYPE bodycam_segment_bytes_received_total counter',
      `bodycam_segment_bytes_received_total ${this.bytesReceived}`,
      '# HELP bodycam_digest_failures_total Segment uploads rejected because the body did not match its digest.',
      '# TYPE bodycam_digest_failures_total counter',
      `bodycam_digest_failures_total ${this.digestFailures}`,
      '# HELP bodycam_recordings_completed_total Receipts issued.',
      '# TYPE bodycam_recordings_completed_total counter',
      `bodycam_recordings_completed_total ${this.recordingsCompleted}`,
      '# HELP bodycam_blob_damage_total Reads of stored blobs that found their bytes damaged or gone (the read was aborted, the blob marked missing).',
      '# TYPE bodycam_blob_damage_total counter',
      `bodycam_blob_damage_total ${this.blobDamage}`,
      '# HELP bodycam_store_bytes Bytes held in segment blobs.',
      '# TYPE bodycam_store_bytes gauge',
      `bodycam_store_bytes ${store.usedBytes}`,
    ];
    if (store.quotaBytes !== undefined) {
      lines.push('# HELP bodycam_store_quota_bytes Configured store quota.', '# TYPE bodycam_store_quota_bytes gauge', `bodycam_store_quota_bytes ${store.quotaBytes}`);
    }
    return lines.join('\n') + '\n';
  }
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}
