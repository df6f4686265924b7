import { describe, it, expect } from '@jest/globals';
import { REUSED_MAX_AGE_MS, reusedWhileCheap } from '../../src/util/costBounded.js';

describe('reusedWhileCheap', () => {
  it('serves the last value again until factor times its cost has passed, then computes afresh', () => {
    let t = 0;
    let computed = 0;
    // Each computation takes 200 ms of the injected clock (a status of 20,000 docked files).
    const read = reusedWhileCheap(() => { computed++; t += 200; return computed; }, 20, () => t);
    expect(read()).toBe(1);
    t += 3_000;
    expect(read()).toBe(1); // 3 s after: still within 20 x 200 ms
    t += 999;
    expect(read()).toBe(1);
    t += 1;
    expect(read()).toBe(2); // 4 s after the last one ended
    expect(computed).toBe(2);
  });

  it('never serves a value older than maxAgeMs, however long it took to compute', () => {
    let t = 0;
    let computed = 0;
    // A 2 s computation (a huge card on a slow box): 20x would keep it for 40 s.
    const read = reusedWhileCheap(() => { computed++; t += 2_000; return computed; }, 20, () => t);
    read();
    t += REUSED_MAX_AGE_MS - 1;
    expect(read()).toBe(1);
    t += 1;
    expect(read()).toBe(2);
  });

  it('a cheap read is computed again on every call a few milliseconds apart', () => {
    let t = 0;
    let computed = 0;
    const read = reusedWhileCheap(() => { computed++; t += 1; return computed; }, 20, () => t);
    for (let i = 0; i < 10; i++) { read(); t += 25; }
    expect(computed).toBe(10);
  });

  it('an error is not kept: the next call computes again', () => {
    let t = 0;
    let fail = true;
    const read = reusedWhileCheap(() => { t += 100; if (fail) throw new Error('journal busy'); return 'ok'; }, 20, () => t);
    expect(() => read()).toThrow('journal busy');
    fail = false;
    expect(read()).toBe('ok');
  });
});
