/**
 * The periodic safety-net rescan is held back by what the last scan of every bay cost (a docked
 * card of 20,000 files made the 10 s rescan a fifth of a core for as long as it stayed docked),
 * but never for longer than RESCAN_MAX_WAIT_MS, and a scan that hangs does not switch it off.
 */
import { describe, it, expect } from '@jest/globals';
import fc from 'fast-check';
import { RESCAN_COST_FACTOR, RESCAN_MAX_WAIT_MS, rescanDue } from '../../src/dock/watcher.js';

describe('rescanDue', () => {
  it('runs the first rescan, and none while a recent scan of every bay is running', () => {
    expect(rescanDue({ endedAt: -Infinity, tookMs: 0, runningSince: [] }, 0)).toBe(true);
    expect(rescanDue({ endedAt: -Infinity, tookMs: 0, runningSince: [1e9 - 1000] }, 1e9)).toBe(false);
  });

  it('waits RESCAN_COST_FACTOR times the last scan\'s time after it ended, capped at RESCAN_MAX_WAIT_MS', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 1e9 }), fc.integer({ min: 0, max: 3_600_000 }), fc.integer({ min: 0, max: 2e7 }), (endedAt, tookMs, later) => {
      const due = rescanDue({ endedAt, tookMs, runningSince: [] }, endedAt + later);
      expect(due).toBe(later >= Math.min(RESCAN_COST_FACTOR * tookMs, RESCAN_MAX_WAIT_MS));
    }));
    // A small card (a 5 ms scan) is rescanned at the configured period as before.
    expect(rescanDue({ endedAt: 1000, tookMs: 5, runningSince: [] }, 1000 + 10_000)).toBe(true);
    // A 1 s scan: the next periodic one waits 20 s.
    expect(rescanDue({ endedAt: 1000, tookMs: 1000, runningSince: [] }, 1000 + 10_000)).toBe(false);
    expect(rescanDue({ endedAt: 1000, tookMs: 1000, runningSince: [] }, 1000 + 20_000)).toBe(true);
    // A 10-minute scan (a slow reader): the next waits 5 minutes, not 200.
    expect(rescanDue({ endedAt: 0, tookMs: 600_000, runningSince: [] }, RESCAN_MAX_WAIT_MS)).toBe(true);
  });

  it('ignores running scans older than RESCAN_MAX_WAIT_MS, and waits for any younger one', () => {
    fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: 2 * RESCAN_MAX_WAIT_MS }), { maxLength: 4 }), (ages) => {
      const now = 1e9;
      const due = rescanDue({ endedAt: -Infinity, tookMs: 0, runningSince: ages.map((age) => now - age) }, now);
      expect(due).toBe(ages.every((age) => age >= RESCAN_MAX_WAIT_MS));
    }));
  });
});
