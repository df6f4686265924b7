/** The oldest a reused value may be, whatever computing it cost. */
export const REUSED_MAX_AGE_MS = 5000;

/**
 * A read whose cost grows with the work in hand (the dock's status: every row of the cameras
 * docked now), asked for on a timer by something that cannot know that cost (a browser refreshing
 * the status page every 2 s, a Prometheus scrape, the TTY progress line every 500 ms). The last
 * value is served again until `factor` times what computing it took has passed, and never once
 * `maxAgeMs` has: the reads of one such reader cost at most 1/factor of a core while a value costs
 * under maxAgeMs/factor (250 ms), and one costlier at most its cost every maxAgeMs (a card of
 * 20,000 files: 0.28 s every 5 s, docs/benchmarks.md). Nothing for a dock with a few cameras (a 2
 * ms status is reused for 40 ms). Each reader (the status server, the TTY progress line) keeps its
 * own; what is reused says when it was made (the dock's status carries `generatedAt`).
 */
export function reusedWhileCheap<T>(compute: () => T, factor = 20, now: () => number = () => performance.now(), maxAgeMs = REUSED_MAX_AGE_MS): () => T {
  let last: { value: T; at: number; costMs: number } | undefined;
  return () => {
    const started = now();
    if (last && started - last.at < Math.min(factor * last.costMs, maxAgeMs)) return last.value;
    const value = compute();
    const ended = now();
    last = { value, at: ended, costMs: ended - started };
    return value;
  };
}
