/**
 * A counting semaphore whose waiters are served by priority (lower sorts
 * first), so critical recordings get the next free upload slot, then the oldest.
 */
export type Priority = [number, number];

interface Waiter { priority: Priority; seq: number; resolve: () => void; reject: (e: unknown) => void; signal?: AbortSignal; onAbort?: () => void }

function before(a: Waiter, b: Waiter): boolean {
  if (a.priority[0] !== b.priority[0]) return a.priority[0] < b.priority[0];
  if (a.priority[1] !== b.priority[1]) return a.priority[1] < b.priority[1];
  return a.seq < b.seq;
}

export class PrioritySlots {
  private used = 0;
  private seq = 0;
  private readonly waiters: Waiter[] = [];

  constructor(private readonly size: number) {}

  get inUse(): number { return this.used; }
  get waiting(): number { return this.waiters.length; }

  acquire(priority: Priority, signal?: AbortSignal): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.used < this.size && this.waiters.length === 0) {
      this.used++;
      return Promise.resolve(this.releaser());
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = { priority, seq: this.seq++, resolve: () => resolve(this.releaser()), reject, signal };
      if (signal) {
        waiter.onAbort = () => {
          const at = this.waiters.indexOf(waiter);
          if (at >= 0) this.waiters.splice(at, 1);
          reject(signal.reason);
        };
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      let at = this.waiters.findIndex((w) => before(waiter, w));
      if (at < 0) at = this.waiters.length;
      this.waiters.splice(at, 0, waiter);
    });
  }

  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.used--;
      this.dispatch();
    };
  }

  private dispatch(): void {
    while (this.used < this.size && this.waiters.length) {
      const next = this.waiters.shift()!;
      if (next.signal && next.onAbort) next.signal.removeEventListener('abort', next.onAbort);
      this.used++;
      next.resolve();
    }
  }
}
