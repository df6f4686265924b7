/**
 * Segment plan: byte ranges of the original that tile [0, size) exactly, cut
 * where the media allows a reviewer to start playing — before a moof in fMP4,
 * at a keyframe packet (188-byte aligned) in MPEG-TS — grouped to about
 * `segmentSeconds` and capped at `maxBytes`. Anything else: fixed-size ranges.
 */
import { open } from 'node:fs/promises';
import { keyframeIndex } from '../media/keyframes.js';
import { moofDecodeTime, parseMoovTracks, readBox, topLevelBoxes } from './mp4boxes.js';

export type PlanKind = 'fmp4' | 'mpegts' | 'mp4' | 'fixed';

export interface PlannedSegment {
  index: number;
  offset: number;
  length: number;
  startTime?: number;
  endTime?: number;
}

export interface SegmentPlan {
  kind: PlanKind;
  segments: PlannedSegment[];
  /** The last MP4 box claims more bytes than the file holds (power-loss cut). */
  truncatedTail: boolean;
}

export interface PlanOptions {
  segmentSeconds: number;
  maxBytes: number;
  /** ffprobe's format name; 'mpegts' selects keyframe cuts. */
  formatName?: string;
  durationSeconds?: number;
  startTimeSeconds?: number;
  signal?: AbortSignal;
}

/** A cut candidate: where a segment may begin, with the media time there when known. */
interface Cut { offset: number; time?: number }

const TS_PACKET = 188;

/** Fixed-size ranges covering [from, to). */
function fixedRanges(from: number, to: number, maxBytes: number): Array<{ offset: number; length: number }> {
  const out: Array<{ offset: number; length: number }> = [];
  for (let offset = from; offset < to; offset += maxBytes) out.push({ offset, length: Math.min(maxBytes, to - offset) });
  return out;
}

/**
 * Group cut candidates (sorted, first at 0) into segments of about `segmentSeconds`,
 * never above `maxBytes` (an oversized group is split into fixed pieces).
 */
export function groupCuts(cuts: Cut[], size: number, options: { segmentSeconds: number; maxBytes: number; endTime?: number }): PlannedSegment[] {
  const bounds: Cut[] = [];
  const sorted = [...cuts].filter((c) => c.offset > 0 && c.offset < size).sort((a, b) => a.offset - b.offset);
  bounds.push({ offset: 0, time: cuts.find((c) => c.offset === 0)?.time ?? sorted[0]?.time });
  let groupStart = bounds[0]!;
  for (let i = 0; i < sorted.length; i++) {
    const cut = sorted[i]!;
    if (cut.offset <= groupStart.offset) continue;
    const next = sorted[i + 1];
    const bytesIfExtended = (next ? next.offset : size) - groupStart.offset;
    const reachedTime = cut.time !== undefined && groupStart.time !== undefined && cut.time - groupStart.time >= options.segmentSeconds - 1e-6;
    // Without times, cut only when the size cap forces it (fragment count is no proxy for duration).
    const wouldExceed = bytesIfExtended > options.maxBytes;
    if (reachedTime || wouldExceed) {
      bounds.push(cut);
      groupStart = cut;
    }
  }
  const segments: PlannedSegment[] = [];
  for (let i = 0; i < bounds.length; i++) {
    const start = bounds[i]!;
    const end = i + 1 < bounds.length ? bounds[i + 1]!.offset : size;
    const startTime = start.time;
    const endTime = i + 1 < bounds.length ? bounds[i + 1]!.time : options.endTime;
    const pieces = fixedRanges(start.offset, end, options.maxBytes);
    pieces.forEach((piece, p) => {
      const segment: PlannedSegment = { index: segments.length, offset: piece.offset, length: piece.length };
      if (p === 0 && startTime !== undefined) segment.startTime = round(startTime);
      if (p === pieces.length - 1 && endTime !== undefined && startTime !== undefined && endTime >= startTime) segment.endTime = round(endTime);
      segments.push(segment);
    });
  }
  return segments;
}

function round(seconds: number): number {
  return Math.round(seconds * 1e6) / 1e6;
}

export function fixedPlan(size: number, maxBytes: number): PlannedSegment[] {
  return fixedRanges(0, size, maxBytes).map((r, index) => ({ index, ...r }));
}

async function planIsoBmff(path: string, size: number, options: PlanOptions): Promise<SegmentPlan | undefined> {
  const file = await open(path, 'r');
  try {
    const boxes = await topLevelBoxes(file, size);
    if (boxes.length === 0 || !['ftyp', 'styp', 'moov', 'free', 'skip', 'wide', 'mdat'].includes(boxes[0]!.type)) return undefined;
    const truncatedTail = boxes[boxes.length - 1]!.truncated;
    const moofs = boxes.filter((b) => b.type === 'moof');
    if (moofs.length === 0) return { kind: 'mp4', segments: fixedPlan(size, options.maxBytes), truncatedTail };
    const moovBox = boxes.find((b) => b.type === 'moov');
    const moov = moovBox ? await readBox(file, moovBox, 64 * 1024 * 1024) : undefined;
    const tracks = moov ? parseMoovTracks(moov) : [];
    const video = tracks.find((t) => t.handler === 'vide');
    const cuts: Cut[] = [];
    for (let i = 0; i < boxes.length; i++) {
      const box = boxes[i]!;
      if (box.type !== 'moof') continue;
      if (options.signal?.aborted) throw options.signal.reason;
      const moof = await readBox(file, box, 16 * 1024 * 1024);
      const time = moof && tracks.length ? moofDecodeTime(moof, tracks, video?.trackId) : undefined;
      // A styp/sidx/prft right before the moof belongs to that fragment.
      let offset = box.offset;
      for (let j = i - 1; j >= 0 && ['styp', 'sidx', 'prft', 'emsg'].includes(boxes[j]!.type); j--) offset = boxes[j]!.offset;
      cuts.push({ offset, time });
    }
    const firstTime = cuts[0]?.time;
    const lastTime = cuts[cuts.length - 1]?.time;
    const endTime = options.durationSeconds !== undefined && firstTime !== undefined
      ? Math.max(lastTime ?? firstTime, (options.startTimeSeconds ?? firstTime) + options.durationSeconds)
      : undefined;
    // The header (ftyp+moov) rides with the first fragment: the first cut becomes offset 0.
    const withHeader = [{ offset: 0, time: firstTime }, ...cuts.slice(1)];
    return { kind: 'fmp4', segments: groupCuts(withHeader, size, { segmentSeconds: options.segmentSeconds, maxBytes: options.maxBytes, endTime }), truncatedTail };
  } finally {
    await file.close();
  }
}

async function planTransportStream(path: string, size: number, options: PlanOptions): Promise<SegmentPlan> {
  const keyframes = await keyframeIndex(path, { signal: options.signal });
  const cuts: Cut[] = keyframes.map((k) => ({ offset: k.pos - (k.pos % TS_PACKET), time: k.time }));
  const unique = new Map<number, Cut>();
  for (const cut of cuts) if (!unique.has(cut.offset)) unique.set(cut.offset, cut);
  const list = [...unique.values()];
  const first = list.find((c) => c.time !== undefined)?.time;
  const head = { offset: 0, time: first };
  const endTime = options.durationSeconds !== undefined && options.startTimeSeconds !== undefined
    ? options.startTimeSeconds + options.durationSeconds : undefined;
  return { kind: 'mpegts', segments: groupCuts([head, ...list], size, { segmentSeconds: options.segmentSeconds, maxBytes: options.maxBytes, endTime }), truncatedTail: false };
}

export async function planSegments(path: string, size: number, options: PlanOptions): Promise<SegmentPlan> {
  if (size === 0) return { kind: 'fixed', segments: [], truncatedTail: false };
  const format = options.formatName ?? '';
  if (format.split(',').includes('mpegts')) return planTransportStream(path, size, options);
  const iso = await planIsoBmff(path, size, options);
  if (iso) return iso;
  return { kind: 'fixed', segments: fixedPlan(size, options.maxBytes), truncatedTail: false };
}
