/**
 * The server's heap room (src/server/heapSlack.ts): the rule as a pure function, and the steering
 * loop (set at once, re-set as the heap changes, stopped). Its effect on the server (full
 * collections per GB received, CPU per GB) is a benchmark, `npm run bench server-recordings`
 * (docs/benchmarks.md, session 9): V8's own growing factor depends on the program's allocation
 * and GC speeds, and a child process that modelled the server's heap did not reproduce its
 * collections reliably enough to assert on.
 */
import { describe, it, expect } from '@jest/globals';
import { growingPercentFor, keepHeapSlack, HEAP_SLACK_BYTES, MAX_GROWING_PERCENT, MIN_HEAP_LIMIT_BYTES } from '../../src/server/heapSlack.js';

const MiB = 1024 * 1024;

describe('heap slack for a streaming server', () => {
  it('gives a small heap up to HEAP_SLACK_BYTES of room, at most 5x its size, and a big one back to V8', () => {
    expect(growingPercentFor(32 * MiB)).toBe(300);
    expect(growingPercentFor(40 * MiB)).toBe(Math.ceil((100 * HEAP_SLACK_BYTES) / (40 * MiB)));
    // Small heaps: the cap (5× live), never 96 MB of room for 1 MB; the server's usual 13 MB gets 52 MB.
    expect(MAX_GROWING_PERCENT).toBe(400);
    expect(growingPercentFor(13 * MiB)).toBe(MAX_GROWING_PERCENT);
    expect(growingPercentFor(1 * MiB)).toBe(MAX_GROWING_PERCENT);
    expect(growingPercentFor(0)).toBe(MAX_GROWING_PERCENT);
    // From about 64 MB live V8's own factor gives that room: 0 hands the choice back.
    expect(growingPercentFor(64 * MiB)).toBe(0);
    expect(growingPercentFor(2048 * MiB)).toBe(0);
    // A small host or container keeps V8's own rules (they slow growth under memory pressure).
    expect(growingPercentFor(13 * MiB, HEAP_SLACK_BYTES, 512 * MiB)).toBe(0);
    expect(growingPercentFor(13 * MiB, HEAP_SLACK_BYTES, MIN_HEAP_LIMIT_BYTES)).toBe(MAX_GROWING_PERCENT);
    // Monotonic: more live heap never gets a larger factor.
    let last = Infinity;
    for (let used = 1 * MiB; used < 200 * MiB; used += 3 * MiB) {
      const p = growingPercentFor(used);
      expect(p).toBeLessThanOrEqual(last);
      last = p;
    }
  });

  it('sets the factor at once, follows the heap as it changes, only when the factor changes, and stops', async () => {
    let heap = { used: 13 * MiB, limit: 4096 * MiB };
    const applied: number[] = [];
    const stop = keepHeapSlack(HEAP_SLACK_BYTES, () => heap, (p) => applied.push(p));
    try {
      expect(applied).toEqual([MAX_GROWING_PERCENT]);
      // The catalogue grew: the next tune (every second) hands a big heap back to V8.
      heap = { used: 300 * MiB, limit: 4096 * MiB };
      await new Promise((r) => setTimeout(r, 1_300));
      expect(applied).toEqual([MAX_GROWING_PERCENT, 0]);
      // Unchanged: not set again.
      await new Promise((r) => setTimeout(r, 1_100));
      expect(applied).toEqual([MAX_GROWING_PERCENT, 0]);
    } finally {
      stop();
    }
    heap = { used: 13 * MiB, limit: 4096 * MiB };
    await new Promise((r) => setTimeout(r, 1_200));
    expect(applied).toEqual([MAX_GROWING_PERCENT, 0]);
  });
});
