import { describe, it, expect } from '@jest/globals';
import { LiveView } from '../../src/replay/liveView.js';
import type { DockStatus } from '../../src/dock/index.js';

function status(bays: DockStatus['bays']): DockStatus {
  return {
    dockId: 'd', version: '0.0.0-test', attention: [], bays,
    queue: { depth: 0, preparing: 0, uploading: 1, waiting: 0, backoff: 0, paused: 0, settling: 0, completed: 2, wiped: 1, quarantined: 0, flagged: 0, oldestQueuedSeconds: 0, bytesSent: 0, recordings: [] },
  };
}

describe('live bay view', () => {
  it('without a terminal, prints a plain line when a bay changes state or moves a quarter', () => {
    let out = '';
    const view = new LiveView({ write: (t) => { out += t; }, tty: false });
    view.update(status([{ bay: 'bay-01', serial: null, state: 'empty', progress: null, reason: null }]));
    view.update(status([{ bay: 'bay-01', serial: 'BWC1', state: 'offloading', progress: 10, reason: null }]));
    view.update(status([{ bay: 'bay-01', serial: 'BWC1', state: 'offloading', progress: 20, reason: null }]));
    view.update(status([{ bay: 'bay-01', serial: 'BWC1', state: 'offloading', progress: 60, reason: null }]));
    view.update(status([{ bay: 'bay-01', serial: 'BWC1', state: 'attention', progress: 100, reason: 'x.mp4: hash-mismatch' }]));
    const lines = out.trimEnd().split('\n').map((l) => l.trim().replace(/\s+/g, ' '));
    expect(lines).toEqual([
      'bay-01 BWC1 offloading 10%',
      'bay-01 BWC1 offloading 60%',
      'bay-01 BWC1 attention 100% x.mp4: hash-mismatch',
    ]);
    expect(out).not.toContain('\x1b[');
  });

  it('on a terminal, redraws the same lines in place with progress bars, cut to the width', () => {
    let out = '';
    const view = new LiveView({ write: (t) => { out += t; }, tty: true, columns: 40, barWidth: 10 });
    const bays = [
      { bay: 'bay-01', serial: 'BWC1', state: 'offloading' as const, progress: 50, reason: null },
      { bay: 'bay-02', serial: null, state: 'empty' as const, progress: null, reason: null },
    ];
    view.update(status(bays));
    const first = out;
    out = '';
    view.update(status(bays));
    expect(first).toContain('offloading ███');
    expect(out.startsWith('\x1b[3A')).toBe(true);   // two bays and the queue line
    for (const line of out.split('\n').filter(Boolean)) expect(line.replace(/\x1b\[\d*[A-Z]/g, '').length).toBeLessThanOrEqual(39);
  });
});
