/**
 * Room for the garbage a streaming server makes before V8 runs a full collection.
 *
 * With the server's small live heap (≈13 MB) V8's own limit left ≈20 MB of room, and receiving
 * 1 GB cost ≈49 full mark-compacts that each freed ≈1 MB: ≈20% of the server's CPU in concurrent
 * marking and sweeping (docs/benchmarks.md, "The ingest server's side, session 9"; the likeliest
 * cause is the body buffers, memory outside the heap, counted against that limit). A bare
 * node:http server with a heap under V8's 8 MB activation threshold runs none. V8 sets the next limit as live size × a growing factor, and
 * `--heap-growing-percent` fixes that factor; it is read at each collection, so it can be steered
 * while the process runs. The rule: give a small heap about HEAP_SLACK_BYTES of room, and leave a
 * large one (whose own factor already gives that much) to V8.
 */
import { getHeapStatistics, setFlagsFromString } from 'node:v8';

/** Room before the next full collection: about one full GC per 80 MB received, not per 20 MB. */
export const HEAP_SLACK_BYTES = 96 * 1024 * 1024;
/** The factor's cap (10×): a heap of 1 MB never gets 96 MB of room, only 10 MB. */
export const MAX_GROWING_PERCENT = 900;
/** At or below this the rule would give no more room than V8's own factor (1.1–4×): 0 hands it back to V8. */
const V8_OWN_PERCENT = 150;
const TUNE_EVERY_MS = 5_000;

/** The `--heap-growing-percent` for a heap of `usedBytes` live: 0 means V8's own rule. Pure. */
export function growingPercentFor(usedBytes: number, slackBytes = HEAP_SLACK_BYTES): number {
  if (!(usedBytes > 0)) return MAX_GROWING_PERCENT;
  const percent = Math.ceil((100 * slackBytes) / usedBytes);
  return percent <= V8_OWN_PERCENT ? 0 : Math.min(MAX_GROWING_PERCENT, percent);
}

/**
 * Steer this process's heap growth by growingPercentFor, now and every few seconds (the live size
 * changes with the catalogue and the connections). For the process that runs the server (the
 * `bodycam server` command, the benches), never for a library caller: it is process-wide.
 * Returns a stop function; the timer never keeps the process alive.
 */
export function keepHeapSlack(slackBytes = HEAP_SLACK_BYTES, readUsed: () => number = () => getHeapStatistics().used_heap_size): () => void {
  let set = -1;
  const tune = (): void => {
    const percent = growingPercentFor(readUsed(), slackBytes);
    if (percent === set) return;
    setFlagsFromString(`--heap-growing-percent=${percent}`);
    set = percent;
  };
  tune();
  const timer = setInterval(tune, TUNE_EVERY_MS);
  timer.unref();
  return () => clearInterval(timer);
}
