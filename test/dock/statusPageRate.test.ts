/**
 * The status page's rate and ETA come from the statuses' own times (generatedAt): a status served
 * again (src/util/costBounded.ts) is not a sample of no progress, and the page says when its
 * status was made.
 */
import { describe, it, expect } from '@jest/globals';
import { DockPage } from '../../src/dock/statusPage.js';
import type { DockStatus } from '../../src/dock/index.js';

function status(at: number, bytesDone: number): DockStatus {
  return {
    dockId: 'd', generatedAt: new Date(at).toISOString(), version: 't', attention: [],
    bays: [{ bay: 'bay1', serial: 'CAM', state: 'offloading', progress: Math.floor(bytesDone / 100_000), bytesDone, bytesTotal: 10_000_000, reason: null }],
    queue: { depth: 1, preparing: 0, uploading: 1, waiting: 0, backoff: 0, paused: 0, settling: 0, completed: 0, wiped: 0, quarantined: 0, flagged: 0, oldestQueuedSeconds: 0, bytesSent: bytesDone, recordings: [] },
  };
}
const detail = (html: string): string => /<div class="detail">([^<]*)<\/div>/.exec(html)![1]!;

describe('DockPage over reused statuses', () => {
  it('keeps the rate of the last two distinct statuses when one is served again, and shows its time', () => {
    let wall = 1_000_000;
    const page = new DockPage(() => wall);
    const t0 = Date.UTC(2026, 11, 3, 12, 0, 0);
    page.render(status(t0, 0));
    const first = page.render(status(t0 + 2000, 2_000_000)); // 1 MB/s
    expect(detail(first)).toContain('1.0 MB/s');
    // The same status again, 2 s of wall time later (reused): still 1 MB/s, not 0 B/s.
    wall += 2000;
    const again = page.render(status(t0 + 2000, 2_000_000));
    expect(detail(again)).toContain('1.0 MB/s');
    expect(detail(again)).toContain('ETA 8 s');
    expect(again).toContain(`datetime="${new Date(t0 + 2000).toISOString()}"`);
    // A fresh one 4 s after: the rate over those 4 s.
    const next = page.render(status(t0 + 6000, 4_000_000));
    expect(detail(next)).toContain('500.0 KB/s');
  });
});
