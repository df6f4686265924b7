/**
 * A camera numbers its recordings 1, 2, 3…; the number is in every sidecar (its recordingId is
 * `<serial>-<seq>`, the file name ends `_<seq>.<ext>`). A number the server never received while
 * lower and higher ones arrived is a recording that is still on a card, lost, or withheld: the
 * operator must hear about it per camera.
 */

/** The camera's sequence number of a recording, from its sidecar (or its file name), or undefined. */
export function sequenceNumberOf(sidecar: Record<string, unknown> | undefined, fileName: string): number | undefined {
  const explicit = sidecar?.['seq'] ?? sidecar?.['sequence'];
  if (typeof explicit === 'number' && Number.isSafeInteger(explicit) && explicit >= 0) return explicit;
  const id = sidecar?.['recordingId'];
  const fromId = typeof id === 'string' ? /-(\d{1,9})$/.exec(id) : null;
  if (fromId) return Number(fromId[1]);
  const fromName = /_(\d{1,9})\.[A-Za-z0-9]{1,8}$/.exec(fileName);
  return fromName ? Number(fromName[1]) : undefined;
}

export interface SequenceGaps {
  lowest: number;
  highest: number;
  /** Numbers between lowest and highest that never arrived, as inclusive ranges. */
  missing: Array<[number, number]>;
  missingCount: number;
  /** Missing ranges not listed in `missing` (a page shows at most so many). */
  moreRanges?: number;
}

/** Gaps in a set of sequence numbers (any order, duplicates allowed); undefined for none. */
export function sequenceGaps(numbers: Iterable<number>): SequenceGaps | undefined {
  const sorted = [...new Set(numbers)].sort((a, b) => a - b);
  if (sorted.length === 0) return undefined;
  const missing: Array<[number, number]> = [];
  let missingCount = 0;
  for (let i = 1; i < sorted.length; i++) {
    const before = sorted[i - 1]!;
    const here = sorted[i]!;
    if (here - before > 1) {
      missing.push([before + 1, here - 1]);
      missingCount += here - before - 1;
    }
  }
  return { lowest: sorted[0]!, highest: sorted[sorted.length - 1]!, missing, missingCount };
}

/** "0005, 0009-0012" (4 digits, as cameras write them). */
export function formatRanges(ranges: ReadonlyArray<readonly [number, number]>): string {
  const pad = (n: number) => String(n).padStart(4, '0');
  return ranges.map(([a, b]) => (a === b ? pad(a) : `${pad(a)}-${pad(b)}`)).join(', ');
}

/**
 * The gaps of one camera kept as numbers arrive (the cameras page must not sort every number of
 * every camera per request): a number above the highest or below the lowest opens a gap, one
 * inside a gap splits it, one already there changes nothing. Only the ranges are held, never the
 * numbers. A number cannot be taken back: the catalog rebuilds its tallies instead (never in
 * practice: a record's sequence number comes from its signed manifest).
 */
export class SequenceTally {
  private lowest = 0;
  private highest = -1;
  /** Sorted, disjoint, each [a, b] with a <= b, all strictly inside (lowest, highest). */
  private readonly missing: Array<[number, number]> = [];
  private missingCount = 0;

  add(n: number): void {
    if (this.highest < this.lowest) { this.lowest = n; this.highest = n; return; }
    if (n > this.highest) {
      if (n > this.highest + 1) { this.missing.push([this.highest + 1, n - 1]); this.missingCount += n - this.highest - 1; }
      this.highest = n;
      return;
    }
    if (n < this.lowest) {
      if (n < this.lowest - 1) { this.missing.unshift([n + 1, this.lowest - 1]); this.missingCount += this.lowest - n - 1; }
      this.lowest = n;
      return;
    }
    // Inside: in a missing range, or already held.
    let lo = 0;
    let hi = this.missing.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.missing[mid]![1] < n) lo = mid + 1; else hi = mid;
    }
    const range = this.missing[lo];
    if (!range || range[0] > n) return;
    this.missingCount--;
    const [a, b] = range;
    if (a === b) this.missing.splice(lo, 1);
    else if (n === a) range[0] = a + 1;
    else if (n === b) range[1] = b - 1;
    else this.missing.splice(lo, 1, [a, n - 1], [n + 1, b]);
  }

  /** As sequenceGaps would answer for the numbers added (a copy of at most `maxRanges` ranges). */
  gaps(maxRanges = Infinity): SequenceGaps | undefined {
    if (this.highest < this.lowest) return undefined;
    const more = this.missing.length - maxRanges;
    return {
      lowest: this.lowest, highest: this.highest, missing: this.missing.slice(0, maxRanges).map(([a, b]) => [a, b]), missingCount: this.missingCount,
      ...(more > 0 ? { moreRanges: more } : {}),
    };
  }
}
