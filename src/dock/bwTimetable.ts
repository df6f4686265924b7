/**
 * Bandwidth timetable, as rclone's `--bwlimit "08:00,10M 18:00,off"`: office hours get a cap,
 * nights run free. A pure function of (timetable, clock): `limitAt(table, date)` is the rate of the
 * entry that began last at or before that moment of the week (local time), wrapping around the week.
 *
 * Grammar: space-separated entries `[Day-]HH:MM,RATE`; Day is Mon..Sun (an entry without one holds
 * every day); RATE is `off` (unlimited), a plain rate of the dock (`25mbit`, `10MB/s`, `1000000`),
 * or rclone's `512k` / `10M` / `1G` (KiB/s, MiB/s, GiB/s). A single RATE without a time is a
 * constant cap. Two entries at the same moment of the week are an error (which one holds?).
 */
import { UsageError } from '../errors.js';
import { parseRate } from '../util/units.js';

export interface TimetableEntry {
  /** Minute of the week the entry starts: 0 = Monday 00:00 … 10079 = Sunday 23:59. */
  minute: number;
  /** Bytes per second; 0 = unlimited. */
  rate: number;
}

/** Entries sorted by minute of the week (an every-day entry appears once per day). */
export type Timetable = readonly TimetableEntry[];

export const DAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'] as const;
const MINUTES_PER_DAY = 24 * 60;
export const MINUTES_PER_WEEK = 7 * MINUTES_PER_DAY;

/** rclone's rate: a number with an optional k/M/G suffix (binary, bytes/s), else the dock's units, or off. */
export function parseTimetableRate(text: string, what: string): number {
  if (/^off$/i.test(text)) return 0;
  const rclone = /^(\d+(?:\.\d+)?)([kKmMgG])$/.exec(text);
  if (rclone) return Math.floor(Number(rclone[1]) * 1024 ** ('kmg'.indexOf(rclone[2]!.toLowerCase()) + 1));
  return parseRate(text, what);
}

export function parseTimetable(text: string): Timetable {
  const where = (part: string): string => `bandwidth timetable entry "${part}"`;
  const parts = text.trim().split(/\s+/).filter(Boolean);
  if (parts.length === 0) throw new UsageError('empty bandwidth timetable: give e.g. "08:00,10M 18:00,off"');
  if (parts.length === 1 && !parts[0]!.includes(',')) return [{ minute: 0, rate: parseTimetableRate(parts[0]!, where(parts[0]!)) }];
  const entries: TimetableEntry[] = [];
  for (const part of parts) {
    const match = /^(?:([A-Za-z]{3})-)?(\d{1,2}):(\d{2}),(\S+)$/.exec(part);
    if (!match) throw new UsageError(`invalid ${where(part)}: expected [Day-]HH:MM,RATE, e.g. 08:00,10M or Mon-08:00,512k`);
    const [, day, hh, mm, rateText] = match;
    const hours = Number(hh);
    const minutes = Number(mm);
    if (hours > 23 || minutes > 59) throw new UsageError(`invalid ${where(part)}: ${hh}:${mm} is not a time of day (00:00..23:59)`);
    const rate = parseTimetableRate(rateText!, where(part));
    const ofDay = hours * 60 + minutes;
    let days: number[];
    if (day === undefined) days = [0, 1, 2, 3, 4, 5, 6];
    else {
      const index = DAYS.findIndex((d) => d.toLowerCase() === day.toLowerCase());
      if (index < 0) throw new UsageError(`invalid ${where(part)}: day "${day}" is not one of ${DAYS.join(', ')}`);
      days = [index];
    }
    for (const d of days) entries.push({ minute: d * MINUTES_PER_DAY + ofDay, rate });
  }
  entries.sort((a, b) => a.minute - b.minute);
  for (let i = 1; i < entries.length; i++) {
    if (entries[i]!.minute === entries[i - 1]!.minute) throw new UsageError(`bandwidth timetable "${text}" gives two rates for ${formatMinute(entries[i]!.minute)}`);
  }
  return entries;
}

/** Minute of the week of a moment, in local time (Monday 00:00 = 0). */
export function minuteOfWeek(date: Date): number {
  return ((date.getDay() + 6) % 7) * MINUTES_PER_DAY + date.getHours() * 60 + date.getMinutes();
}

export function formatMinute(minute: number): string {
  const day = DAYS[Math.floor(minute / MINUTES_PER_DAY)]!;
  const ofDay = minute % MINUTES_PER_DAY;
  return `${day} ${String(Math.floor(ofDay / 60)).padStart(2, '0')}:${String(ofDay % 60).padStart(2, '0')}`;
}

/** Index of the entry in force at `minute` of the week: the last one starting at or before it, else the week's last. */
function indexAt(table: Timetable, minute: number): number {
  let found = table.length - 1;
  for (let i = 0; i < table.length; i++) {
    if (table[i]!.minute <= minute) found = i;
    else break;
  }
  return found;
}

/** The rate (bytes/s, 0 = unlimited) in force at this minute of the week. */
export function limitAtMinute(table: Timetable, minute: number): number {
  return table[indexAt(table, ((minute % MINUTES_PER_WEEK) + MINUTES_PER_WEEK) % MINUTES_PER_WEEK)]!.rate;
}

export function limitAt(table: Timetable, date: Date): number {
  return limitAtMinute(table, minuteOfWeek(date));
}

export interface BandwidthNow {
  /** Bytes per second now; 0 = unlimited. */
  limit: number;
  /** Where the limit comes from: the timetable, a constant cap, or none. */
  source: 'timetable' | 'maxRate' | 'none';
  /** The next change of the timetable: when (minute of the week, local) and to what. */
  next?: { at: string; limit: number };
}

/** What status shows: the limit now and, with a timetable, the next change that alters it. */
export function bandwidthAt(table: Timetable | undefined, maxRate: number, date: Date): BandwidthNow {
  if (!table) return { limit: maxRate, source: maxRate > 0 ? 'maxRate' : 'none' };
  const minute = minuteOfWeek(date);
  const current = indexAt(table, minute);
  const limit = table[current]!.rate;
  for (let step = 1; step <= table.length; step++) {
    const entry = table[(current + step) % table.length]!;
    if (entry.rate !== limit) return { limit, source: 'timetable', next: { at: formatMinute(entry.minute), limit: entry.rate } };
  }
  return { limit, source: 'timetable' };
}
