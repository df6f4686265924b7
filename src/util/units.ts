/** Parsing of the human units used on the command line and in config files. */
import { UsageError } from '../errors.js';

/** "90", "90s", "10m", "1h", "1.5s", "250ms" → seconds. Negative or malformed → UsageError. */
export function parseDuration(text: string, what = 'duration'): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/i.exec(String(text));
  if (!match) throw new UsageError(`invalid ${what} "${text}": use seconds or a number with s, m or h (e.g. 30s, 10m, 1h)`);
  const value = Number(match[1]);
  const unit = (match[2] ?? 's').toLowerCase();
  const factor = unit === 'ms' ? 0.001 : unit === 'm' ? 60 : unit === 'h' ? 3600 : 1;
  return value * factor;
}

/** "16MiB", "500k", "1G", "1048576" → bytes. */
export function parseBytes(text: string, what = 'size'): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(b|k|kb|kib|m|mb|mib|g|gb|gib)?\s*$/i.exec(String(text));
  if (!match) throw new UsageError(`invalid ${what} "${text}": use bytes or a number with KiB, MiB or GiB`);
  const unit = (match[2] ?? 'b').toLowerCase();
  const factor = unit.startsWith('k') ? 1024 : unit.startsWith('m') ? 1024 ** 2 : unit.startsWith('g') ? 1024 ** 3 : 1;
  return Math.floor(Number(match[1]) * factor);
}

/** "25mbit", "500kbit", "10MB/s", "1000000" (bytes/s) → bytes per second. */
export function parseRate(text: string, what = 'rate'): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(bit|kbit|mbit|gbit|b\/s|kb\/s|mb\/s|gb\/s)?\s*$/i.exec(String(text));
  if (!match) throw new UsageError(`invalid ${what} "${text}": use e.g. 25mbit, 500kbit or 10MB/s`);
  const value = Number(match[1]);
  const unit = (match[2] ?? 'b/s').toLowerCase();
  const table: Record<string, number> = {
    bit: 1 / 8, kbit: 1000 / 8, mbit: 1e6 / 8, gbit: 1e9 / 8,
    'b/s': 1, 'kb/s': 1000, 'mb/s': 1e6, 'gb/s': 1e9,
  };
  return Math.floor(value * table[unit]!);
}

export function parsePositiveInt(text: string, what: string): number {
  const value = Number(text);
  if (!Number.isInteger(value) || value <= 0) throw new UsageError(`invalid ${what} "${text}": expected a positive whole number`);
  return value;
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit++; }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}
