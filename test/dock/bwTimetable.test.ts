/**
 * The bandwidth timetable is a pure function of (timetable, moment of the week): properties over
 * random timetables and moments (fast-check), the grammar's refusals, and rclone's examples.
 * No clock is read and nothing sleeps: moments are minutes of the week, or Dates built in local time.
 */
import { describe, it, expect } from '@jest/globals';
import fc from 'fast-check';
import { runs } from '../helpers/fcRuns.js';
import { bandwidthAt, formatMinute, limitAt, limitAtMinute, minuteOfWeek, MINUTES_PER_WEEK, parseTimetable, parseTimetableRate } from '../../src/dock/bwTimetable.js';

const MiB = 1024 * 1024;
const dayNames = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];
/** A local Date on a known Monday (2026-11-30) plus `days` and the time. */
const at = (days: number, hh: number, mm: number): Date => new Date(2026, 10, 30 + days, hh, mm, 30);

const entryArb = fc.record({ day: fc.option(fc.integer({ min: 0, max: 6 }), { nil: undefined }), minute: fc.integer({ min: 0, max: 1439 }), rate: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 1e9 })) });
const textOf = (e: { day?: number; minute: number; rate: number }): string =>
  `${e.day === undefined ? '' : `${dayNames[e.day]}-`}${String(Math.floor(e.minute / 60)).padStart(2, '0')}:${String(e.minute % 60).padStart(2, '0')},${e.rate === 0 ? 'off' : e.rate}`;
/** Entries whose expansion gives each moment of the week at most one rate (the parser refuses the others). */
const tableArb = fc.array(entryArb, { minLength: 1, maxLength: 8 }).filter((entries) => {
  const moments = entries.flatMap((e) => (e.day === undefined ? [0, 1, 2, 3, 4, 5, 6] : [e.day]).map((d) => d * 1440 + e.minute));
  return new Set(moments).size === moments.length;
});

describe('bandwidth timetable', () => {
  it('rclone\'s example: office hours capped, nights free', () => {
    const table = parseTimetable('08:00,10M 18:00,off');
    expect(limitAt(table, at(0, 7, 59))).toBe(0);
    expect(limitAt(table, at(0, 8, 0))).toBe(10 * MiB);
    expect(limitAt(table, at(2, 17, 59))).toBe(10 * MiB);
    expect(limitAt(table, at(2, 18, 0))).toBe(0);
    expect(limitAt(table, at(6, 3, 0))).toBe(0); // Sunday night: the previous day's 18:00 holds
    const weekly = parseTimetable('Mon-08:00,512k Sat-00:00,off');
    expect(limitAt(weekly, at(4, 23, 0))).toBe(512 * 1024); // Friday night still capped
    expect(limitAt(weekly, at(5, 0, 0))).toBe(0);
    expect(limitAt(weekly, at(0, 7, 0))).toBe(0); // Monday before 08:00: Saturday's entry wraps around
    expect(bandwidthAt(table, 0, at(0, 9, 0))).toEqual({ limit: 10 * MiB, source: 'timetable', next: { at: 'Mon 18:00', limit: 0 } });
    expect(bandwidthAt(undefined, 1000, at(0, 9, 0))).toEqual({ limit: 1000, source: 'maxRate' });
    expect(bandwidthAt(parseTimetable('10M'), 0, at(3, 3, 3))).toEqual({ limit: 10 * MiB, source: 'timetable' });
  });

  it('rates: off, rclone suffixes (binary), the dock\'s own units', () => {
    expect(parseTimetableRate('off', 'x')).toBe(0);
    expect(parseTimetableRate('512k', 'x')).toBe(512 * 1024);
    expect(parseTimetableRate('1.5M', 'x')).toBe(1.5 * MiB);
    expect(parseTimetableRate('1G', 'x')).toBe(1024 * MiB);
    expect(parseTimetableRate('25mbit', 'x')).toBe(25e6 / 8);
    expect(parseTimetableRate('10MB/s', 'x')).toBe(10e6);
  });

  it('refuses what it cannot read, naming the entry', () => {
    expect(() => parseTimetable('')).toThrow(/empty bandwidth timetable/);
    expect(() => parseTimetable('25:00,1M')).toThrow(/25:00 is not a time of day/);
    expect(() => parseTimetable('08:00,fast')).toThrow(/invalid bandwidth timetable entry "08:00,fast"/);
    expect(() => parseTimetable('Xyz-08:00,1M')).toThrow(/day "Xyz"/);
    expect(() => parseTimetable('08:00 18:00,off')).toThrow(/expected \[Day-\]HH:MM,RATE/);
    expect(() => parseTimetable('08:00,1M Mon-08:00,2M')).toThrow(/two rates for Mon 08:00/);
  });

  it('the rate at a moment is the rate of the entry that began last at or before it (wrapping the week)', () => {
    fc.assert(fc.property(tableArb, fc.integer({ min: 0, max: MINUTES_PER_WEEK - 1 }), (entries, minute) => {
      const table = parseTimetable(entries.map(textOf).join(' '));
      // The oracle: walk back minute by minute (at most a week) to the last start.
      let expected: number | undefined;
      for (let back = 0; back < MINUTES_PER_WEEK && expected === undefined; back++) {
        const m = (minute - back + MINUTES_PER_WEEK) % MINUTES_PER_WEEK;
        const starting = entries.find((e) => (e.day === undefined || e.day === Math.floor(m / 1440)) && e.minute === m % 1440);
        if (starting) expected = starting.rate;
      }
      expect(limitAtMinute(table, minute)).toBe(expected);
      // Periodic over the week, and constant between two entries.
      expect(limitAtMinute(table, minute + MINUTES_PER_WEEK)).toBe(expected);
      const starts = new Set(table.map((e) => e.minute));
      if (!starts.has((minute + 1) % MINUTES_PER_WEEK)) expect(limitAtMinute(table, minute + 1)).toBe(expected);
    }), { numRuns: runs(300) });
  });

  it('limitAt reads the Date in local time; bandwidthAt names the next change that alters the limit', () => {
    fc.assert(fc.property(tableArb, fc.integer({ min: 0, max: 6 }), fc.integer({ min: 0, max: 23 }), fc.integer({ min: 0, max: 59 }), (entries, day, hh, mm) => {
      const table = parseTimetable(entries.map(textOf).join(' '));
      const date = at(day, hh, mm);
      expect(minuteOfWeek(date)).toBe(day * 1440 + hh * 60 + mm);
      expect(limitAt(table, date)).toBe(limitAtMinute(table, day * 1440 + hh * 60 + mm));
      const now = bandwidthAt(table, 0, date);
      expect(now.limit).toBe(limitAt(table, date));
      if (now.next) {
        expect(now.next.limit).not.toBe(now.limit);
        const [d, time] = now.next.at.split(' ');
        const m = dayNames.indexOf(d!) * 1440 + Number(time!.slice(0, 2)) * 60 + Number(time!.slice(3));
        expect(limitAtMinute(table, m)).toBe(now.next.limit);
        expect(formatMinute(m)).toBe(now.next.at);
      } else {
        expect(new Set(table.map((e) => e.rate)).size).toBe(1);
      }
    }), { numRuns: runs(200) });
  });
});
