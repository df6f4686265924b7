/**
 * Room for the garbage a streaming server makes before V8 runs a full collection.
 *
 * With the server's small live heap (≈13 MB) V8's own limit left ≈20 MB of room, and receiving
 * 1 GB cost ≈49 full mark-compacts that each freed ≈1 MB: ≈20% of the server's CPU in concurrent
 * marking and sweeping (docs/benchmarks.md, "The ingest server's side, session 9"; the likeliest
 * cause is the body buffers, memory outside the heap, counted against that limit). A bare
 * node:http server, its heap under V8's 8 MB threshold for marking, ran one (at start-up). V8 sets
 * the next limit as live size × a growing factor, and `--heap-growing-percent` fixes that factor;
 * it is read at each collection, so it can be steered while the process runs (it also overrides
 * V8's slower growth under memory pressure: hence MIN_HEAP_LIMIT_BYTES). The rule: give a small
 * heap up to HEAP_SLACK_BYTES of room (at most 5× its live size), and leave a large one (whose own
 * factor already gives that much) to V8.
 */
import { PerformanceObserver, constants } from 'node:perf_hooks';
import { getHeapStatistics, setFlagsFromString } from 'node:v8';

/** Room sought before the next full collection (a 13 MB heap gets 52 MB at the cap, against V8's ≈20 MB). */
export const HEAP_SLACK_BYTES = 96 * 1024 * 1024;
/**
 * The factor's cap (5× the live size). The factor is read when a collection ends, so a heap that
 * grew fast since the last tune (a catalogue build) gets its next limit at the factor set for the
 * smaller heap: capped at 5×, that is never far from what V8 itself allows a small heap on a host
 * with memory to spare (up to 4×).
 */
export const MAX_GROWING_PERCENT = 400;
/** At or below this the rule would give no more room than V8's own factor (1.1–4×): 0 hands it back to V8. */
const V8_OWN_PERCENT = 150;
const TUNE_EVERY_MS = 1_000;

/**
 * Below this heap limit (a small host or a container, `--max-old-space-size`) V8's own rules stay:
 * there it holds a small heap to 1.3–2× and grows slower under memory pressure, which a fixed
 * factor would override.
 */
export const MIN_HEAP_LIMIT_BYTES = 1024 * 1024 * 1024;

/** The `--heap-growing-percent` for a heap of `usedBytes` live under a limit of `limitBytes`: 0 means V8's own rule. Pure. */
export function growingPercentFor(usedBytes: number, slackBytes = HEAP_SLACK_BYTES, limitBytes = Infinity): number {
  if (limitBytes < MIN_HEAP_LIMIT_BYTES) return 0;
  if (!(usedBytes > 0)) return MAX_GROWING_PERCENT;
  const percent = Math.ceil((100 * slackBytes) / usedBytes);
  return percent <= V8_OWN_PERCENT ? 0 : Math.min(MAX_GROWING_PERCENT, percent);
}

/**
 * Steer this process's heap growth by growingPercentFor: now, after every full collection (the
 * heap is then about its live size) and every second (the live size changes with the catalogue
 * and the connections). For the process that runs the server (the `bodycam server` command, the
 * benches), never for a library caller: it is process-wide. Returns a stop function; neither the
 * timer nor the observer keeps the process alive.
 */
export function keepHeapSlack(slackBytes = HEAP_SLACK_BYTES, readHeap: () => { used: number; limit: number } = heapNow, apply: (percent: number) => void = setGrowingPercent): () => void {
  let set = -1;
  const tune = (): void => {
    const { used, limit } = readHeap();
    const percent = growingPercentFor(used, slackBytes, limit);
    if (percent === set) return;
    apply(percent);
    set = percent;
  };
  tune();
  const timer = setInterval(tune, TUNE_EVERY_MS);
  timer.unref();
  const collections = new PerformanceObserver((list) => {
    if (list.getEntries().some((e) => (e.detail as { kind?: number } | undefined)?.kind === constants.NODE_PERFORMANCE_GC_MAJOR)) tune();
  });
  collections.observe({ entryTypes: ['gc'] });
  return () => { clearInterval(timer); collections.disconnect(); };
}

function setGrowingPercent(percent: number): void {
  setFlagsFromString(`--heap-growing-percent=${percent}`);
}

function heapNow(): { used: number; limit: number } {
  const stats = getHeapStatistics();
  return { used: stats.used_heap_size, limit: stats.heap_size_limit };
}
