/**
 * Bandwidth cap shared by every upload: a token bucket refilled at `rate`
 * bytes/s. Body streams take tokens for each chunk before it is sent, so the
 * cap holds whatever the number of uploads in flight. A chunk larger than the
 * bucket is let through by going into debt, which later takers then wait out.
 */
export class TokenBucket {
  private tokens: number;
  private last = Date.now();
  private queue: Promise<void> = Promise.resolve();

  constructor(private readonly rate: number, private readonly capacity: number = Math.max(16 * 1024, Math.floor(rate / 10))) {
    this.tokens = this.capacity;
  }

  get unlimited(): boolean {
    return !(this.rate > 0);
  }

  /** Resolves when `bytes` may be sent; callers are served in order. */
  take(bytes: number, signal?: AbortSignal): Promise<void> {
    if (this.unlimited) return Promise.resolve();
    const turn = this.queue.then(() => this.waitFor(bytes, signal));
    this.queue = turn.catch(() => {});
    return turn;
  }

  private refill(): void {
    const now = Date.now();
    this.tokens = Math.min(this.capacity, this.tokens + ((now - this.last) / 1000) * this.rate);
    this.last = now;
  }

  private async waitFor(bytes: number, signal?: AbortSignal): Promise<void> {
    this.refill();
    const want = Math.min(bytes, this.capacity);
    while (this.tokens < want) {
      if (signal?.aborted) throw signal.reason ?? new Error('aborted');
      const waitMs = Math.max(5, Math.ceil(((want - this.tokens) / this.rate) * 1000));
      await new Promise((resolve) => setTimeout(resolve, Math.min(waitMs, 250)));
      this.refill();
    }
    this.tokens -= bytes;
  }
}
