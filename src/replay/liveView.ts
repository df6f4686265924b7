/**
 * The bays at a glance while a dock works, like the LEDs of a real dock: on a
 * terminal, one line per bay with a progress bar, redrawn in place; anywhere
 * else (CI logs, pipes), a plain line whenever a bay changes state or moves a
 * quarter of the way.
 */
import type { BayStatus, DockStatus } from '../dock/index.js';

export interface LiveViewOptions {
  write: (text: string) => void;
  tty: boolean;
  /** Terminal width: longer lines are cut, since a wrapped line would break the redraw. */
  columns?: number;
  /** Width of the bar in characters. */
  barWidth?: number;
}

function bar(progress: number | null, width: number): string {
  const done = Math.round(((progress ?? 0) / 100) * width);
  return '█'.repeat(done) + '░'.repeat(width - done);
}

function bayLine(bay: BayStatus, barWidth: number): string {
  const progress = bay.progress === null ? '' : `${String(bay.progress).padStart(3)}%`;
  const showBar = bay.state === 'offloading' || bay.state === 'done' || (bay.state === 'attention' && bay.progress !== null);
  const reason = bay.reason ? `  ${bay.reason.length > 60 ? bay.reason.slice(0, 57) + '...' : bay.reason}` : '';
  return `  ${bay.bay.padEnd(8)} ${(bay.serial ?? '-').padEnd(12)} ${bay.state.padEnd(10)} ${showBar ? bar(bay.progress, barWidth) + ' ' + progress : ''}${reason}`.trimEnd();
}

function queueLine(status: DockStatus): string {
  const q = status.queue;
  return `  queue: ${q.uploading} uploading, ${q.preparing} preparing, ${q.waiting + q.backoff} waiting; ${q.completed + q.wiped} done (${q.wiped} wiped), ${q.quarantined} quarantined`;
}

export class LiveView {
  private drawnLines = 0;
  private readonly lastPlain = new Map<string, { state: string; quarter: number }>();
  private readonly barWidth: number;

  constructor(private readonly options: LiveViewOptions) {
    this.barWidth = options.barWidth ?? 24;
  }

  update(status: DockStatus): void {
    if (this.options.tty) this.redraw(status);
    else this.plain(status);
  }

  /** Leave the last frame on screen and move below it. */
  finish(status?: DockStatus): void {
    if (status) this.update(status);
    this.drawnLines = 0;
  }

  private redraw(status: DockStatus): void {
    const width = this.options.columns && this.options.columns > 20 ? this.options.columns - 1 : Infinity;
    const lines = [...status.bays.map((b) => bayLine(b, this.barWidth)), queueLine(status)].map((l) => (l.length > width ? l.slice(0, width) : l));
    let out = this.drawnLines > 0 ? `\x1b[${this.drawnLines}A` : '';
    for (const line of lines) out += `\x1b[2K${line}\n`;
    this.drawnLines = lines.length;
    this.options.write(out);
  }

  private plain(status: DockStatus): void {
    for (const bay of status.bays) {
      const quarter = bay.progress === null ? -1 : Math.floor(bay.progress / 25);
      const last = this.lastPlain.get(bay.bay);
      if (last && last.state === bay.state && last.quarter === quarter) continue;
      this.lastPlain.set(bay.bay, { state: bay.state, quarter });
      if (!last && bay.state === 'empty') continue;
      this.options.write(bayLine(bay, this.barWidth).replace(/[█░]+ /, '') + '\n');
    }
  }
}
