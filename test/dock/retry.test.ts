import { describe, it, expect } from '@jest/globals';
import { jobRetryPolicy, parseRetryAfter, REQUEST_RETRY_POLICY, retryDelayMs, isRetryableStatus } from '../../src/dock/retry.js';
import { PrioritySlots } from '../../src/dock/slots.js';

describe('retry delay', () => {
  it('grows exponentially and is capped, without jitter', () => {
    const policy = { ...REQUEST_RETRY_POLICY, jitter: 'none' as const, baseMs: 100, maxMs: 1000 };
    expect([1, 2, 3, 4, 5, 50].map((a) => retryDelayMs(policy, a))).toEqual([100, 200, 400, 800, 1000, 1000]);
  });

  it('uses full jitter: uniform in [0, exponential)', () => {
    const policy = jobRetryPolicy(300);
    expect(retryDelayMs(policy, 4, undefined, () => 0)).toBe(0);
    expect(retryDelayMs(policy, 4, undefined, () => 0.5)).toBe(4000);
    expect(retryDelayMs(policy, 4, undefined, () => 0.999999)).toBeLessThan(8000);
    expect(retryDelayMs(policy, 40, undefined, () => 0.999999)).toBeLessThan(300_000);
  });

  it('lets Retry-After win, within its own cap', () => {
    expect(retryDelayMs(REQUEST_RETRY_POLICY, 1, 3000, () => 0)).toBe(3000);
    expect(retryDelayMs(jobRetryPolicy(5), 1, 3_600_000)).toBe(5000);
  });

  it('reads Retry-After as seconds or an HTTP date', () => {
    expect(parseRetryAfter('7')).toBe(7000);
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter(undefined)).toBeUndefined();
  });

  it('retries 408/429/5xx only', () => {
    expect([400, 401, 404, 408, 409, 422, 429, 500, 503].filter(isRetryableStatus)).toEqual([408, 429, 500, 503]);
  });
});

describe('priority slots', () => {
  it('serves critical, then oldest, waiters first', async () => {
    const slots = new PrioritySlots(1);
    const release = await slots.acquire([1, 0]);
    const order: string[] = [];
    const waits = [
      slots.acquire([1, 200]).then((r) => { order.push('normal-new'); r(); }),
      slots.acquire([1, 100]).then((r) => { order.push('normal-old'); r(); }),
      slots.acquire([0, 300]).then((r) => { order.push('critical'); r(); }),
    ];
    release();
    await Promise.all(waits);
    expect(order).toEqual(['critical', 'normal-old', 'normal-new']);
  });
});
