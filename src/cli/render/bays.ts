/**
 * The bays at a glance while a dock works, for `bodycam dock` (stderr) and `bodycam demo`
 * (stdout): the one renderer of a dock's status for a person, like rclone's `-P`. On a terminal,
 * a frame redrawn in place: a total line (bytes done of bytes found, percent, rate, ETA, the
 * queue) and one line per bay with its bar, bytes, rate and ETA, each cut to the terminal's width.
 * Anywhere else (CI logs, pipes) a plain line whenever a bay changes state or moves a quarter of
 * the way; `bodycam dock` draws nothing there, since its stderr is the JSON log (docs/operations.md).
 *
 * Rates are measured over a sliding window of samples (the clock is injected, so the
 * arithmetic is tested without timers). Bay bytes move a segment at a time (the server's
 * acknowledgements), the total rate uses the bytes on the wire, which move smoothly.
 */
import { reusedWhileCheap } from '../../util/costBounded.js';
import type { BayStatus, DockStatus } from '../../dock/index.js';
import { formatBytes } from '../../util/units.js';
import { visible } from '../../util/visible.js';

const BAR_WIDTH = 20;
/** Rates are averaged over this long: short enough to follow a change, long enough to span a few segments. */
const WINDOW_MS = 10_000;

interface Sample { at: number; value: number }

/** A rate over the last WINDOW_MS of samples of a growing counter. */
class RateWindow {
  private readonly samples: Sample[] = [];

  add(at: number, value: number): void {
    const last = this.samples[this.samples.length - 1];
    // A counter that went down (a new camera docked in the bay) starts over.
    if (last && value < last.value) this.samples.length = 0;
    this.samples.push({ at, value });
    while (this.samples.length > 2 && this.samples[0]!.at < at - WINDOW_MS) this.samples.shift();
  }

  /** Bytes per second, or undefined until two samples at least a second apart exist. */
  perSecond(): number | undefined {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    if (!first || !last || last.at - first.at < 1000) return undefined;
    return ((last.value - first.value) * 1000) / (last.at - first.at);
  }
}

export function formatEta(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds)) return '-';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

function rateText(rate: number | undefined): string {
  return rate === undefined ? '-' : `${formatBytes(rate)}/s`;
}

function eta(remaining: number, rate: number | undefined): number | undefined {
  if (remaining <= 0) return 0;
  return rate && rate > 0 ? remaining / rate : undefined;
}

/** Keeps the samples and turns each status into the lines to show. */
export class ProgressModel {
  private readonly total = new RateWindow();
  private readonly bays = new Map<string, RateWindow>();

  /** The frame: the total line, then one line per bay. */
  lines(status: DockStatus, now: number): string[] {
    const bayLines = this.bayLines(status, now, true);
    return [this.totalLine(status, now), ...bayLines];
  }

  /** One line per bay, in the status's order; without the bar for a plain log line. */
  bayLines(status: DockStatus, now: number, withBar: boolean): string[] {
    return status.bays.map((bay) => this.bayLine(bay, now, withBar));
  }

  private totalLine(status: DockStatus, now: number): string {
    this.total.add(now, status.queue.bytesSent);
    let done = 0;
    let found = 0;
    for (const bay of status.bays) {
      done += bay.bytesDone ?? 0;
      found += bay.bytesTotal ?? 0;
    }
    const totalRate = this.total.perSecond();
    const pct = found > 0 ? Math.floor((done / found) * 100) : 100;
    const q = status.queue;
    return `Transferred: ${formatBytes(done)} / ${formatBytes(found)}, ${pct}%, ${rateText(totalRate)}, ETA ${formatEta(eta(found - done, totalRate))}`
      + `  (${q.uploading} uploading, ${q.waiting + q.backoff} waiting, ${q.completed + q.wiped} done, ${q.quarantined} quarantined)`;
  }

  private bayLine(bay: BayStatus, now: number, withBar: boolean): string {
    let window = this.bays.get(bay.bay);
    if (!window) { window = new RateWindow(); this.bays.set(bay.bay, window); }
    // The serial and the reason come from the card: shown, never obeyed by the terminal.
    const name = `${visible(bay.bay, { oneLine: true }).padEnd(10)} ${visible(bay.serial ?? '-', { oneLine: true }).padEnd(14)}`;
    if (bay.bytesTotal === undefined || bay.state === 'empty') {
      const pct = bay.progress === null || bay.state === 'empty' ? '' : `  ${String(bay.progress).padStart(3)}%`;
      return `${name} ${bay.state}${pct}${bay.reason ? `  ${visible(bay.reason, { oneLine: true })}` : ''}`;
    }
    const doneBytes = bay.bytesDone ?? 0;
    window.add(now, doneBytes);
    const rate = bay.state === 'offloading' ? window.perSecond() : undefined;
    const pct = bay.progress ?? (bay.state === 'done' ? 100 : 0);
    const filled = Math.round((pct / 100) * BAR_WIDTH);
    const bar = withBar ? `[${'#'.repeat(filled) + '-'.repeat(BAR_WIDTH - filled)}] ` : '';
    const parts = [name, `${bar}${String(pct).padStart(3)}%`, `${formatBytes(doneBytes)} / ${formatBytes(bay.bytesTotal)}`];
    if (bay.state === 'offloading') parts.push(rateText(rate), `ETA ${formatEta(eta(bay.bytesTotal - doneBytes, rate))}`);
    parts.push(bay.state);
    if (bay.reason) parts.push(visible(bay.reason, { oneLine: true }));
    return parts.join('  ');
  }
}

export interface BayViewOptions {
  write: (text: string) => void;
  /** A terminal: the frame is redrawn in place. Else a plain line per bay change. */
  tty: boolean;
  /** The terminal's width now (it may change between frames): longer lines are cut, a wrapped line would break the redraw. */
  columns?: () => number | undefined;
  clock?: () => number;
}

/** Shows a dock's status, frame by frame on a terminal or line by line in a log. */
export class BayView {
  private readonly model = new ProgressModel();
  private readonly clock: () => number;
  private drawn = 0;
  private readonly lastPlain = new Map<string, { state: string; quarter: number }>();

  constructor(private readonly options: BayViewOptions) {
    this.clock = options.clock ?? Date.now;
  }

  update(status: DockStatus): void {
    if (this.options.tty) this.redraw(status);
    else this.plain(status);
  }

  /** The last frame stays on screen and what is written next goes below it. */
  finish(status?: DockStatus): void {
    if (status) this.update(status);
    this.drawn = 0;
  }

  private redraw(status: DockStatus): void {
    const width = Math.max(40, (this.options.columns?.() ?? 160) - 1);
    const lines = this.model.lines(status, this.clock()).map((line) => line.slice(0, width));
    let out = this.drawn > 0 ? `\x1b[${this.drawn}A` : '';
    for (const line of lines) out += `\x1b[2K${line}\n`;
    // Lines left over from a longer frame (a bay went away) are cleared.
    for (let i = lines.length; i < this.drawn; i++) out += '\x1b[2K\n';
    this.options.write(out);
    this.drawn = Math.max(lines.length, this.drawn);
  }

  private plain(status: DockStatus): void {
    const lines = this.model.bayLines(status, this.clock(), false);
    let out = '';
    status.bays.forEach((bay, i) => {
      const quarter = bay.progress === null ? -1 : Math.floor(bay.progress / 25);
      const last = this.lastPlain.get(bay.bay);
      if (last && last.state === bay.state && last.quarter === quarter) return;
      this.lastPlain.set(bay.bay, { state: bay.state, quarter });
      if (!last && bay.state === 'empty') return;
      out += `${lines[i]!.trimEnd()}\n`;
    });
    if (out) this.options.write(out);
  }
}

/** `bodycam dock`: the frame on stderr twice a second, only when it is a terminal (else it is the JSON log). */
export function startProgress(source: () => DockStatus, stream: NodeJS.WriteStream = process.stderr, intervalMs = 500, clock: () => number = Date.now): () => void {
  if (!stream.isTTY) return () => {};
  const view = new BayView({ write: (text) => { stream.write(text); }, tty: true, columns: () => stream.columns, clock });
  // Every 500 ms from a status at most 20x its own cost old (a docked card of 20,000 files makes a 0.3 s one); the last line is fresh.
  const recent = reusedWhileCheap(source);
  const timer = setInterval(() => view.update(recent()), intervalMs);
  timer.unref?.();
  return () => { clearInterval(timer); view.finish(source()); };
}
