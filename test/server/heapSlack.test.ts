/**
 * The server's heap room (src/server/heapSlack.ts): the rule as a pure function, and its effect on
 * a real V8 heap in a child process. What it saves on the server itself (full collections per GB
 * received, CPU) is measured by `npm run bench server-recordings` (docs/benchmarks.md).
 */
import { describe, it, expect } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { growingPercentFor, HEAP_SLACK_BYTES, MAX_GROWING_PERCENT } from '../../src/server/heapSlack.js';

const MiB = 1024 * 1024;
const BUILT = fileURLToPath(new URL('../../dist/server/heapSlack.js', import.meta.url));

/**
 * Full collections in a child with a live heap the size of the server's (≈12 MB) while it makes
 * 400 batches of short-lived objects that live long enough to be promoted (as request state and
 * held body chunks are): V8 reads the growing factor at each collection, so a factor set while
 * the process runs must space them out.
 */
function fullCollections(withSlack: boolean): number {
  const script = `
    import { PerformanceObserver, constants } from 'node:perf_hooks';
    const { keepHeapSlack } = await import(${JSON.stringify(BUILT)});
    const live = [];
    for (let i = 0; i < 2400; i++) { const a = new Array(100); for (let k = 0; k < 100; k++) a[k] = { v: i + k }; live.push(a); }
    global.gc();
    if (${withSlack}) keepHeapSlack();
    let majors = 0;
    const seen = new PerformanceObserver((list) => { for (const e of list.getEntries()) if (e.detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) majors++; });
    seen.observe({ entryTypes: ['gc'] });
    const kept = [];
    for (let batch = 0; batch < 400; batch++) {
      const b = []; for (let i = 0; i < 20000; i++) b.push({ batch, i, t: [i, batch] });
      kept.push(b); if (kept.length > 4) kept.shift();
      await new Promise((r) => setImmediate(r));
    }
    await new Promise((r) => setTimeout(r, 50));
    seen.disconnect();
    process.stdout.write(JSON.stringify({ majors, live: live.length + kept.length }));
  `;
  const run = spawnSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000 });
  if (run.status !== 0) throw new Error(`child failed: ${run.stderr}`);
  return (JSON.parse(run.stdout) as { majors: number }).majors;
}

describe('heap slack for a streaming server', () => {
  it('gives a small heap about HEAP_SLACK_BYTES of room, a big one back to V8, and never more than the cap', () => {
    expect(growingPercentFor(16 * MiB)).toBe(600);
    expect(growingPercentFor(13 * MiB)).toBe(Math.ceil((100 * HEAP_SLACK_BYTES) / (13 * MiB)));
    // Small heaps: the cap, never 96 MB of room for 1 MB.
    expect(growingPercentFor(1 * MiB)).toBe(MAX_GROWING_PERCENT);
    expect(growingPercentFor(0)).toBe(MAX_GROWING_PERCENT);
    // From about 64 MB live V8's own factor gives that room: 0 hands the choice back.
    expect(growingPercentFor(64 * MiB)).toBe(0);
    expect(growingPercentFor(2048 * MiB)).toBe(0);
    // Monotonic: more live heap never gets a larger factor.
    let last = Infinity;
    for (let used = 1 * MiB; used < 200 * MiB; used += 3 * MiB) {
      const p = growingPercentFor(used);
      expect(p).toBeLessThanOrEqual(last);
      last = p;
    }
  });

  it('spaces out the full collections of a server-sized heap, steered while the process runs', () => {
    const without = fullCollections(false);
    const withSlack = fullCollections(true);
    expect(without).toBeGreaterThanOrEqual(6);
    expect(withSlack).toBeLessThan(without / 1.5);
  }, 120_000);
});
