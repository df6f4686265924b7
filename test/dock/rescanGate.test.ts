/**
 * The periodic safety-net rescan is held back by what the last scan of every bay cost (a docked
 * card of 20,000 files made the 10 s rescan a fifth of a core for as long as it stayed docked).
 */
import { describe, it, expect } from '@jest/globals';
import fc from 'fast-check';
import { RESCAN_COST_FACTOR, rescanDue } from '../../src/dock/watcher.js';

describe('rescanDue', () => {
  it('runs the first rescan, and none while a scan of every bay is running', () => {
    expect(rescanDue({ endedAt: -Infinity, tookMs: 0, running: 0 }, 0)).toBe(true);
    expect(rescanDue({ endedAt: -Infinity, tookMs: 0, running: 1 }, 1e9)).toBe(false);
  });

  it('waits RESCAN_COST_FACTOR times the last scan\'s time after it ended, and no longer', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 1e9 }), fc.integer({ min: 0, max: 60_000 }), fc.integer({ min: 0, max: 2e6 }), (endedAt, tookMs, later) => {
      const due = rescanDue({ endedAt, tookMs, running: 0 }, endedAt + later);
      expect(due).toBe(later >= RESCAN_COST_FACTOR * tookMs);
    }));
    // A small card (a 5 ms scan) is rescanned at the configured period as before.
    expect(rescanDue({ endedAt: 1000, tookMs: 5, running: 0 }, 1000 + 10_000)).toBe(true);
    // A 1 s scan: the next periodic one waits 20 s.
    expect(rescanDue({ endedAt: 1000, tookMs: 1000, running: 0 }, 1000 + 10_000)).toBe(false);
    expect(rescanDue({ endedAt: 1000, tookMs: 1000, running: 0 }, 1000 + 20_000)).toBe(true);
  });
});
