/**
 * The one bay renderer (src/cli/render/bays.ts) of `bodycam dock` and `bodycam demo`, rclone -P
 * style: bytes, rate and ETA per bay and in total, computed from samples at injected times (no
 * timers); a frame redrawn in place on a terminal, plain lines per change in a log, and nothing at
 * all from the dock when stderr is not a TTY.
 */
import { describe, it, expect } from '@jest/globals';
import { PassThrough } from 'node:stream';
import type { BayStatus, DockStatus } from '../../../src/dock/index.js';
import { BayView, formatEta, ProgressModel, startProgress } from '../../../src/cli/render/bays.js';

const MiB = 1024 * 1024;

function status(bays: BayStatus[], bytesSent: number): DockStatus {
  return {
    dockId: 'd', generatedAt: '2026-12-03T00:00:00.000Z', version: '0.0.0-test', attention: [], bays,
    queue: { depth: 1, preparing: 0, uploading: 1, waiting: 0, backoff: 0, paused: 0, settling: 0, completed: 0, wiped: 0, quarantined: 0, flagged: 0, oldestQueuedSeconds: 0, bytesSent, recordings: [] },
  };
}

const bay = (name: string, done: number, total: number, state: BayStatus['state'] = 'offloading'): BayStatus =>
  ({ bay: name, serial: `CAM-${name}`, state, progress: Math.floor((done / total) * 100), bytesDone: done, bytesTotal: total, reason: null });

describe('bay renderer', () => {
  it('shows bytes, rate and ETA per bay and in total', () => {
    const model = new ProgressModel();
    model.lines(status([bay('bay-01', 0, 40 * MiB), bay('bay-02', 10 * MiB, 10 * MiB, 'done')], 0), 0);
    // 4 s later: bay-01 moved 8 MiB (2 MiB/s), the wire carried 8 MiB.
    const lines = model.lines(status([bay('bay-01', 8 * MiB, 40 * MiB), bay('bay-02', 10 * MiB, 10 * MiB, 'done')], 8 * MiB), 4000);
    expect(lines[0]).toMatch(/^Transferred: 18\.0 MiB \/ 50\.0 MiB, 36%, 2\.0 MiB\/s, ETA 16s/);
    expect(lines[1]).toMatch(/^bay-01\s+CAM-bay-01\s+\[####-+\]\s+20%  8\.0 MiB \/ 40\.0 MiB  2\.0 MiB\/s  ETA 16s  offloading$/);
    expect(lines[2]).toMatch(/^bay-02\s+CAM-bay-02\s+\[#{20}\] 100%  10\.0 MiB \/ 10\.0 MiB  done$/);
  });

  it('says - until a rate can be measured, and starts a bay over when a new camera brings less', () => {
    const model = new ProgressModel();
    expect(model.lines(status([bay('bay-01', 1 * MiB, 4 * MiB)], 1 * MiB), 0)[1]).toMatch(/  -  ETA -  offloading$/);
    model.lines(status([bay('bay-01', 3 * MiB, 4 * MiB)], 3 * MiB), 2000);
    const swapped = model.lines(status([bay('bay-01', 0, 2 * MiB)], 3 * MiB), 3000);
    expect(swapped[1]).toMatch(/0 B \/ 2\.0 MiB  -  ETA -  offloading$/);
  });

  it('formats ETAs like rclone', () => {
    expect(formatEta(undefined)).toBe('-');
    expect(formatEta(59.4)).toBe('59s');
    expect(formatEta(61)).toBe('1m01s');
    expect(formatEta(7322)).toBe('2h02m');
  });

  it('draws nothing when the stream is not a terminal', () => {
    const stream = new PassThrough() as unknown as NodeJS.WriteStream;
    let written = '';
    (stream as unknown as PassThrough).on('data', (d: Buffer) => { written += d.toString(); });
    const stop = startProgress(() => status([bay('bay-01', 0, MiB)], 0), stream, 1);
    stop();
    expect(written).toBe('');
  });

  it('on a terminal, redraws in place within the width', () => {
    const chunks: string[] = [];
    const stream = { isTTY: true, columns: 60, write: (text: string) => { chunks.push(text); return true; } } as unknown as NodeJS.WriteStream;
    let t = 0;
    const stop = startProgress(() => status([bay('bay-01', 0, MiB)], 0), stream, 60_000, () => (t += 1000));
    stop();
    expect(chunks).toHaveLength(1);
    const lines = chunks[0]!.split('\n').filter(Boolean);
    expect(lines).toHaveLength(2);
    for (const line of lines) expect(line.replace('\x1b[2K', '').length).toBeLessThanOrEqual(59);
  });

  it('without a terminal, writes a plain line (no bar, no escapes) when a bay changes state or moves a quarter', () => {
    let out = '';
    const view = new BayView({ write: (t) => { out += t; }, tty: false, clock: () => 0 });
    const at = (progress: number | null, state: BayStatus['state'], reason: string | null = null, serial: string | null = 'BWC1'): DockStatus =>
      status([{ bay: 'bay-01', serial, state, progress, reason, ...(progress === null ? {} : { bytesDone: progress * MiB, bytesTotal: 100 * MiB }) }], 0);
    view.update(at(null, 'empty', null, null));
    view.update(at(10, 'offloading'));
    view.update(at(20, 'offloading'));
    view.update(at(60, 'offloading'));
    view.update(at(60, 'offloading'));
    view.update(at(100, 'attention', 'x.mp4: hash-mismatch'));
    const lines = out.trimEnd().split('\n').map((l) => l.replace(/\s+/g, ' '));
    expect(lines).toEqual([
      'bay-01 BWC1 10% 10.0 MiB / 100.0 MiB - ETA - offloading',
      'bay-01 BWC1 60% 60.0 MiB / 100.0 MiB - ETA - offloading',
      'bay-01 BWC1 100% 100.0 MiB / 100.0 MiB attention x.mp4: hash-mismatch',
    ]);
    expect(out).not.toContain('\x1b[');
    expect(out).not.toContain('#');
  });

  it('on a terminal, redraws the same frame in place, clears the lines of a bay gone, and finish() moves below it', () => {
    let out = '';
    const view = new BayView({ write: (t) => { out += t; }, tty: true, columns: () => 90, clock: () => 0 });
    const two = status([bay('bay-01', 5 * MiB, 10 * MiB), { bay: 'bay-02', serial: null, state: 'empty', progress: null, reason: null }], 0);
    view.update(two);
    expect(out.startsWith('\x1b[')).toBe(true);
    expect(out).toContain('[##########----------]  50%');
    out = '';
    view.update(status([bay('bay-01', 5 * MiB, 10 * MiB)], 0));
    expect(out.startsWith('\x1b[3A')).toBe(true); // the total line and two bays were drawn
    expect(out.split('\n').filter(Boolean)).toHaveLength(3); // total, bay-01, the cleared line of bay-02
    for (const line of out.split('\n').filter(Boolean)) expect(line.replace(/\x1b\[\d*[A-Z]/g, '').length).toBeLessThanOrEqual(89);
    view.finish();
    out = '';
    view.update(two);
    expect(out.startsWith('\x1b[2K')).toBe(true); // a new frame below the last one, not over it
  });
});
