/** Parsing of the human units used on the command line and in config files. */
import { UsageError } from '../errors.js';

/**
 * The grammar of each unit in ONE place: the parsers below and the JSON Schema patterns of config
 * files (src/util/settings.ts) are both made from these lists, so a value an editor's schema
 * check accepts is a value the program accepts. Unit names are case-insensitive.
 */
const DURATION_UNITS: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86_400, y: 365 * 86_400 };
const BYTE_UNITS: Record<string, number> = {
  b: 1, k: 1024, kb: 1024, kib: 1024, m: 1024 ** 2, mb: 1024 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3, gib: 1024 ** 3,
};
const RATE_UNITS: Record<string, number> = {
  bit: 1 / 8, kbit: 1000 / 8, mbit: 1e6 / 8, gbit: 1e9 / 8,
  'b/s': 1, 'kb/s': 1000, 'mb/s': 1e6, 'gb/s': 1e9,
};

/** "mib" → "[mM][iI][bB]": JSON Schema patterns have no case-insensitive flag. */
function caseless(unit: string): string {
  return [...unit].map((c) => (/[a-z]/.test(c) ? `[${c}${c.toUpperCase()}]` : c)).join('');
}

function unitPattern(units: Record<string, number>): string {
  // Longest first, so "ms" is tried before "m" and "mib" before "m".
  const names = Object.keys(units).sort((a, b) => b.length - a.length).map(caseless);
  return `^\\s*\\d+(?:\\.\\d+)?\\s*(?:${names.join('|')})?\\s*$`;
}

/** JSON Schema `pattern`s of the three unit kinds (ECMA-262 regular expressions). */
export const UNIT_PATTERNS = {
  duration: unitPattern(DURATION_UNITS),
  bytes: unitPattern(BYTE_UNITS),
  rate: unitPattern(RATE_UNITS),
} as const;

function parseUnit(text: string, units: Record<string, number>, fallback: string): { value: number; factor: number } | undefined {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z/]+)?\s*$/i.exec(String(text));
  if (!match) return undefined;
  const factor = units[(match[2] ?? fallback).toLowerCase()];
  return factor === undefined ? undefined : { value: Number(match[1]), factor };
}

/** "90", "90s", "10m", "1h", "1.5s", "250ms", "30d", "7y" (365 days) → seconds. Negative or malformed → UsageError. */
export function parseDuration(text: string, what = 'duration'): number {
  const parsed = parseUnit(text, DURATION_UNITS, 's');
  if (!parsed) throw new UsageError(`invalid ${what} "${text}": use seconds or a number with ms, s, m, h, d or y (e.g. 30s, 10m, 1h, 7y)`);
  return parsed.value * parsed.factor;
}

/** "16MiB", "500k", "1G", "1048576" → bytes. */
export function parseBytes(text: string, what = 'size'): number {
  const parsed = parseUnit(text, BYTE_UNITS, 'b');
  if (!parsed) throw new UsageError(`invalid ${what} "${text}": use bytes or a number with KiB, MiB or GiB`);
  return Math.floor(parsed.value * parsed.factor);
}

/** "25mbit", "500kbit", "10MB/s", "1000000" (bytes/s) → bytes per second. */
export function parseRate(text: string, what = 'rate'): number {
  const parsed = parseUnit(text, RATE_UNITS, 'b/s');
  if (!parsed) throw new UsageError(`invalid ${what} "${text}": use e.g. 25mbit, 500kbit or 10MB/s`);
  return Math.floor(parsed.value * parsed.factor);
}

/** Bytes per second as a person writes them and parseRate reads back exactly: 10MB/s, 25mbit, 500kB/s, 1234B/s. */
export function formatRate(bytesPerSecond: number): string {
  for (const [unit, size] of [['GB/s', 1e9], ['MB/s', 1e6], ['mbit', 1e6 / 8], ['kB/s', 1000], ['kbit', 1000 / 8]] as const) {
    if (bytesPerSecond >= size && bytesPerSecond % size === 0) return `${bytesPerSecond / size}${unit}`;
  }
  return `${bytesPerSecond}B/s`;
}

/** Seconds as a person writes them: 7y, 30d, 24h (a day or two stays in hours), 5m, 90s, 1.5s. */
export function formatDuration(seconds: number): string {
  for (const [unit, size, from] of [['y', DURATION_UNITS.y!, DURATION_UNITS.y!], ['d', 86_400, 3 * 86_400], ['h', 3600, 3600], ['m', 60, 60]] as const) {
    if (seconds >= from && seconds % size === 0) return `${seconds / size}${unit}`;
  }
  return `${seconds}s`;
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
