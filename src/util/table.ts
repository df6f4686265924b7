/**
 * The one plain-text table printer (CLI tables, replay's report, the demo's summary): columns
 * padded to their widest cell, two spaces between, trailing blanks trimmed, one line per row and
 * a newline after the last. In src/util rather than src/cli because replay's report prints one too
 * and replay may not import the CLI (docs/architecture.md).
 */
import { visible } from './visible.js';

export interface TableOptions {
  /** Put before every line (the demo's summary is indented). */
  indent?: string;
  /** A column is padded to at most this many characters (a longer cell still prints whole). */
  maxColumnWidth?: number;
  /** A line of dashes under the first row (the header). */
  headerRule?: boolean;
}

export function table(given: string[][], options: TableOptions = {}): string {
  // Cells hold card text (file names, serials): shown, never obeyed by the terminal, one row per line.
  const rows = given.map((r) => r.map((cell) => visible(cell ?? '', { oneLine: true })));
  const cap = options.maxColumnWidth ?? Infinity;
  const widths = rows[0]!.map((_, i) => Math.min(cap, Math.max(...rows.map((r) => (r[i] ?? '').length))));
  const line = (cells: string[]): string => (options.indent ?? '') + cells.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd();
  const lines = rows.map(line);
  if (options.headerRule) lines.splice(1, 0, line(widths.map((w) => '-'.repeat(w))));
  return lines.join('\n') + '\n';
}
