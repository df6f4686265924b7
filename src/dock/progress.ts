/**
 * Progress bars for a person at a terminal (stderr is a TTY): one line per bay,
 * redrawn in place. Hand-rolled: a dependency for a dozen lines is not worth it.
 * When stderr is not a TTY nothing is drawn; the JSON log says it all.
 */
import type { DockStatus } from './status.js';

const WIDTH = 24;

export function renderBays(status: DockStatus): string[] {
  return status.bays.map((bay) => {
    const pct = bay.progress ?? (bay.state === 'done' ? 100 : 0);
    const filled = Math.round((pct / 100) * WIDTH);
    const bar = bay.state === 'empty' ? ' '.repeat(WIDTH) : '#'.repeat(filled) + '-'.repeat(WIDTH - filled);
    const tail = bay.reason ? `  ${bay.reason}` : '';
    return `${bay.bay.padEnd(10)} ${(bay.serial ?? '').padEnd(14)} [${bar}] ${String(pct).padStart(3)}% ${bay.state}${tail}`.slice(0, 160);
  });
}

export function startProgress(source: () => DockStatus, stream: NodeJS.WriteStream = process.stderr, intervalMs = 500): () => void {
  if (!stream.isTTY) return () => {};
  let drawn = 0;
  const draw = (): void => {
    const lines = renderBays(source());
    let out = drawn > 0 ? `\x1b[${drawn}A` : '';
    for (const line of lines) out += `\x1b[2K${line}\n`;
    stream.write(out);
    drawn = lines.length;
  };
  const timer = setInterval(draw, intervalMs);
  timer.unref?.();
  return () => { clearInterval(timer); draw(); };
}
