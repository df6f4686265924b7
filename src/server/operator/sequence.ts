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
