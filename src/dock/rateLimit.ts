import { limitAt, parseTimetable } from './bwTimetable.js';
import { systemClock, type Clock } from '../util/clock.js';

/** How the bucket waits for tokens: a timer by default; a test's manual clock moves time instead. */
export type Sleep = (ms: number) => Promise<void>;
const timerSleep: Sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
/**
 * Bandwidth cap shared by every upload: a token bucket refilled at `rate`
 * bytes/s. Body streams take tokens for each chunk before it is sent, so the
 * cap holds whatever the number of uploads in flight. A chunk larger than the
 * bucket is let through by going into debt, which later takers then wait out.
 *
 * The rate may be a function (a bandwidth timetable, bwTimetable.ts): it is read at every refill,
 * so 18:00's `off` frees the uploads waiting at 17:59 within one wait step, and 08:00's cap
 * throttles the next chunk. 0 (or less) = unlimited.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;
  private queue: Promise<void> = Promise.resolve();
  private readonly rateOf: () => number;

  constructor(
    rate: number | (() => number),
    private readonly fixedCapacity?: number,
    private readonly clock: Clock = systemClock,
    private readonly sleep: Sleep = timerSleep,
  ) {
    this.rateOf = typeof rate === 'function' ? rate : () => rate;
    this.tokens = this.capacity();
    this.last = clock.now();
  }

  private capacity(): number {
    return this.fixedCapacity ?? Math.max(16 * 1024, Math.floor(this.rateOf() / 10));
  }

  get unlimited(): boolean {
    return !(this.rateOf() > 0);
  }

  /** Resolves when `bytes` may be sent; callers are served in order. */
  take(bytes: number, signal?: AbortSignal): Promise<void> {
    if (this.unlimited) return Promise.resolve();
    const turn = this.queue.then(() => this.waitFor(bytes, signal));
    this.queue = turn.catch(() => {});
    return turn;
  }

  private refill(): void {
    const now = this.clock.now();
    this.tokens = Math.min(this.capacity(), this.tokens + ((now - this.last) / 1000) * Math.max(0, this.rateOf()));
    this.last = now;
  }

  private async waitFor(bytes: number, signal?: AbortSignal): Promise<void> {
    this.refill();
    for (;;) {
      const rate = this.rateOf();
      if (!(rate > 0)) return; // the timetable turned the cap off meanwhile
      const want = Math.min(bytes, this.capacity());
      if (this.tokens >= want) break;
      if (signal?.aborted) throw signal.reason ?? new Error('aborted');
      const waitMs = Math.max(5, Math.ceil(((want - this.tokens) / rate) * 1000));
      await this.sleep(Math.min(waitMs, 250));
      this.refill();
    }
    this.tokens -= bytes;
  }
}

/** The dock's one bucket: the timetable's rate at each moment when there is one, else maxRate. */
export function bucketFor(config: { maxRate: number; bwLimit?: string }, clock: () => Date = () => new Date()): TokenBucket {
  if (config.bwLimit === undefined) return new TokenBucket(config.maxRate);
  const table = parseTimetable(config.bwLimit);
  return new TokenBucket(() => limitAt(table, clock()));
}
