/**
 * Progress for a person at a terminal, like rclone's `-P`: a total line (bytes done of
 * bytes found, percent, rate, ETA) and one line per bay with its own bytes, rate and ETA,
 * redrawn in place. Only when stderr is a TTY: anywhere else stderr is the JSON log and
 * nothing is drawn (docs/operations.md).
 *
 * Rates are measured over a sliding window of samples (the clock is injected, so the
 * arithmetic is tested without timers). Bay bytes move a segment at a time (the server's
 * acknowledgements), the total rate uses the bytes on the wire, which move smoothly.
 */
import type { BayStatus, DockStatus } from './status.js';
import { formatBytes } from '../util/units.js';

const WIDTH = 20;
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

/** Keeps the samples and turns each status into the lines to draw. */
export class ProgressModel {
  private readonly total = new RateWindow();
  private readonly bays = new Map<string, RateWindow>();

  lines(status: DockStatus, now: number): string[] {
    this.total.add(now, status.queue.bytesSent);
    let done = 0;
    let found = 0;
    const bayLines = status.bays.map((bay) => {
      done += bay.bytesDone ?? 0;
      found += bay.bytesTotal ?? 0;
      return this.bayLine(bay, now);
    });
    const totalRate = this.total.perSecond();
    const pct = found > 0 ? Math.floor((done / found) * 100) : 100;
    const q = status.queue;
    const head = `Transferred: ${formatBytes(done)} / ${formatBytes(found)}, ${pct}%, ${rateText(totalRate)}, ETA ${formatEta(eta(found - done, totalRate))}`
      + `  (${q.uploading} uploading, ${q.waiting + q.backoff} waiting, ${q.completed + q.wiped} done, ${q.quarantined} quarantined)`;
    return [head, ...bayLines];
  }

  private bayLine(bay: BayStatus, now: number): string {
    let window = this.bays.get(bay.bay);
    if (!window) { window = new RateWindow(); this.bays.set(bay.bay, window); }
    const name = `${bay.bay.padEnd(10)} ${(bay.serial ?? '-').padEnd(14)}`;
    if (bay.bytesTotal === undefined || bay.state === 'empty') {
      return `${name} ${bay.state}${bay.reason ? `  ${bay.reason}` : ''}`;
    }
    const doneBytes = bay.bytesDone ?? 0;
    window.add(now, doneBytes);
    const rate = bay.state === 'offloading' ? window.perSecond() : undefined;
    const pct = bay.progress ?? (bay.state === 'done' ? 100 : 0);
    const filled = Math.round((pct / 100) * WIDTH);
    const bar = '#'.repeat(filled) + '-'.repeat(WIDTH - filled);
    const parts = [name, `[${bar}] ${String(pct).padStart(3)}%`, `${formatBytes(doneBytes)} / ${formatBytes(bay.bytesTotal)}`];
    if (bay.state === 'offloading') parts.push(rateText(rate), `ETA ${formatEta(eta(bay.bytesTotal - doneBytes, rate))}`);
    parts.push(bay.state);
    if (bay.reason) parts.push(bay.reason);
    return parts.join('  ');
  }
}

export function startProgress(source: () => DockStatus, stream: NodeJS.WriteStream = process.stderr, intervalMs = 500, clock: () => number = Date.now): () => void {
  if (!stream.isTTY) return () => {};
  const model = new ProgressModel();
  let drawn = 0;
  const draw = (): void => {
    const width = Math.max(40, (stream.columns ?? 160) - 1);
    // A wrapped line would break the redraw: cut each to the terminal's width.
    const lines = model.lines(source(), clock()).map((line) => line.slice(0, width));
    let out = drawn > 0 ? `\x1b[${drawn}A` : '';
    for (const line of lines) out += `\x1b[2K${line}\n`;
    // Lines left over from a longer frame (a bay went away) are cleared.
    for (let i = lines.length; i < drawn; i++) out += '\x1b[2K\n';
    stream.write(out);
    drawn = Math.max(lines.length, drawn);
  };
  const timer = setInterval(draw, intervalMs);
  timer.unref?.();
  return () => { clearInterval(timer); draw(); };
}
