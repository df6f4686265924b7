import { describe, expect, it } from '@jest/globals';
import { TokenBucket } from '../../src/dock/rateLimit.js';

/**
 * The bandwidth cap with a manual clock: the bucket's sleep moves the clock instead of waiting,
 * so the arithmetic (refill, debt, a timetable turning the cap off) is checked with no timer.
 */
function manualTime(start = 1_000_000) {
  let t = start;
  return {
    clock: { now: () => t },
    sleep: async (ms: number): Promise<void> => { t += ms; },
    elapsed: () => t - start,
  };
}

describe('TokenBucket (manual clock)', () => {
  it('a full bucket lets its capacity through at once, then the rate decides', async () => {
    const time = manualTime();
    const bucket = new TokenBucket(1000, 100, time.clock, time.sleep);
    await bucket.take(100);
    expect(time.elapsed()).toBe(0);
    for (let i = 0; i < 9; i++) await bucket.take(100);
    // 900 bytes more at 1000 B/s: 900 ms of (simulated) waiting, give or take the 5 ms wait step.
    expect(time.elapsed()).toBeGreaterThanOrEqual(900);
    expect(time.elapsed()).toBeLessThan(950);
  });

  it('a chunk larger than the bucket goes into debt, which the next taker waits out', async () => {
    const time = manualTime();
    const bucket = new TokenBucket(1000, 100, time.clock, time.sleep);
    await bucket.take(500);
    expect(time.elapsed()).toBe(0);
    await bucket.take(100);
    expect(time.elapsed()).toBeGreaterThanOrEqual(500);
    expect(time.elapsed()).toBeLessThan(550);
  });

  it('a timetable that turns the cap off frees a waiting upload within one wait step', async () => {
    const time = manualTime();
    const bucket = new TokenBucket(() => (time.elapsed() < 500 ? 10 : 0), 10, time.clock, time.sleep);
    await bucket.take(10);
    await bucket.take(10); // would need 1 s at 10 B/s; the cap goes at 500 ms
    expect(time.elapsed()).toBeGreaterThanOrEqual(500);
    expect(time.elapsed()).toBeLessThanOrEqual(750);
    expect(bucket.unlimited).toBe(true);
  });

  it('an aborted upload stops waiting with the abort reason', async () => {
    const time = manualTime();
    const controller = new AbortController();
    const sleep = async (ms: number): Promise<void> => { await time.sleep(ms); controller.abort(new Error('undocked')); };
    const bucket = new TokenBucket(1, 10, time.clock, sleep);
    await bucket.take(10);
    await expect(bucket.take(10, controller.signal)).rejects.toThrow('undocked');
  });
});
