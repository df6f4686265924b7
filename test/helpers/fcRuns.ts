/**
 * How many cases a fast-check property runs: its own count, times FC_RUNS_FACTOR when that is set
 * (test/fcSetup.ts scales the default of 100 the same way). One CI run draws fresh seeds each time;
 * FC_RUNS_FACTOR=50 finds in minutes what one run in a hundred would (npm run soak uses it).
 */
export const runsFactor = ((): number => {
  const factor = Number(process.env.FC_RUNS_FACTOR);
  return Number.isFinite(factor) && factor > 1 ? factor : 1;
})();

export const runs = (numRuns: number): number => Math.max(1, Math.round(numRuns * runsFactor));
