/**
 * Segment plan: byte ranges of the original that tile [0, size) exactly, cut
 * where the media allows a reviewer to start playing — before a moof in fMP4,
 * at the start of the TS packet carrying a video keyframe in MPEG-TS / M2TS
 * (packet size 188, 192 or 204 read from the bytes) — grouped to about
 * `segmentSeconds` and capped at `maxBytes` (a cap cut inside a group still
 * lands on a packet start). Anything else: fixed-size ranges.
 *
 * Times (startTime/endTime) are one clock per file: the presentation time of
 * the video stream, in seconds from the file's first video frame. A segment's
 * startTime is the presentation time of the keyframe it starts with; endTime
 * is the next segment's startTime, and for the last one the end of the last
 * video frame. Container durations are never used.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { videoTimeline } from '../media/keyframes.js';
import { fragmentTimes, parseMoovTracks, readBox, topLevelBoxes, type TopBox } from './mp4boxes.js';
import { WindowReader } from '../util/chunkReader.js';

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
  /** The last MP4 box claims more bytes than the file holds, or a TS ends mid-packet / mid-PES (a cut). */
  truncatedTail: boolean;
  /** Why truncatedTail is set, in words for the manifest notes. */
  truncatedWhy?: string;
  /** MPEG-TS packet size read from the bytes: 188, 192 (M2TS, 4-byte timestamp prefix) or 204. */
  packetSize?: number;
  /** Container presentation time (s) of the file's first video frame: segment times count from it. */
  timeOrigin?: number;
}

export interface PlanOptions {
  segmentSeconds: number;
  maxBytes: number;
  /** ffprobe's format name; 'mpegts' selects keyframe cuts. */
  formatName?: string;
  /** Unused for times (container durations lie); kept for callers. */
  durationSeconds?: number;
  startTimeSeconds?: number;
  signal?: AbortSignal;
}

/** A cut candidate: where a segment may begin, with the media time there when known. */
interface Cut { offset: number; time?: number }

/** Fixed-size ranges covering [from, to). */
function fixedRanges(from: number, to: number, maxBytes: number, grid?: { unit: number; first: number }): Array<{ offset: number; length: number }> {
  // With a grid (TS packets), a cap cut lands on a packet start: first + k * unit.
  const out: Array<{ offset: number; length: number }> = [];
  for (let offset = from; offset < to;) {
    let end = Math.min(to, offset + maxBytes);
    if (grid && end < to && end > grid.first) {
      const aligned = grid.first + Math.floor((end - grid.first) / grid.unit) * grid.unit;
      if (aligned > offset) end = aligned;
    }
    out.push({ offset, length: end - offset });
    offset = end;
  }
  return out;
}

/**
 * Group cut candidates (sorted, first at 0) into segments of about `segmentSeconds`,
 * never above `maxBytes` (an oversized group is split into fixed pieces).
 */
export function groupCuts(cuts: Cut[], size: number, options: { segmentSeconds: number; maxBytes: number; endTime?: number; grid?: { unit: number; first: number } }): PlannedSegment[] {
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
    const pieces = fixedRanges(start.offset, end, options.maxBytes, options.grid);
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

/** What an ISO BMFF file may start with. */
const ISO_FIRST_BOXES = ['ftyp', 'styp', 'moov', 'free', 'skip', 'wide', 'mdat'];

async function planIsoBmff(path: string, size: number, options: PlanOptions): Promise<SegmentPlan | undefined> {
  const handle = await open(path, 'r');
  try {
    const file = new WindowReader(handle);
    let moovBox: TopBox | undefined;
    let moovRead = false;
    let tracks: ReturnType<typeof parseMoovTracks> = [];
    let video: (typeof tracks)[number] | undefined;
    const cuts: Cut[] = [];
    let origin: number | undefined;
    let end: number | undefined;
    const fragment = async (boxes: readonly TopBox[], i: number): Promise<void> => {
      const box = boxes[i]!;
      if (options.signal?.aborted) throw options.signal.reason;
      const moof = await readBox(file, box, 16 * 1024 * 1024);
      const times = moof && video ? fragmentTimes(moof, tracks, video.trackId) : undefined;
      // Only the video track's clock is used: a fragment without video samples offers no time.
      const usable = times && times.trackId === video?.trackId && times.samples > 0 ? times : undefined;
      if (usable) {
        origin = origin === undefined ? usable.minPts : Math.min(origin, usable.minPts);
        end = end === undefined ? usable.endPts : Math.max(end, usable.endPts);
      }
      // A styp/sidx/prft right before the moof belongs to that fragment.
      let offset = box.offset;
      for (let j = i - 1; j >= 0 && ['styp', 'sidx', 'prft', 'emsg'].includes(boxes[j]!.type); j--) offset = boxes[j]!.offset;
      cuts.push({ offset, time: usable?.firstPts });
    };
    // A moof is read as the walk reaches it (one read gives its header, its bytes and the mdat
    // header after it) when the moov came before it, as in every fragmented file the dock has seen;
    // otherwise every moof is read after the walk, in file order.
    const readMoov = async (): Promise<void> => {
      if (moovRead || !moovBox) return;
      moovRead = true;
      const moov = await readBox(file, moovBox, 64 * 1024 * 1024);
      tracks = moov ? parseMoovTracks(moov) : [];
      video = tracks.find((t) => t.handler === 'vide');
    };
    let streamed = true;
    const boxes = await topLevelBoxes(file, size, async (box, sofar) => {
      if (box.type === 'moov') moovBox ??= box;
      else if (box.type === 'moof') {
        if (!moovBox) streamed = false;
        else if (streamed && ISO_FIRST_BOXES.includes(sofar[0]!.type)) { await readMoov(); await fragment(sofar, sofar.length - 1); }
      }
    });
    if (boxes.length === 0 || !ISO_FIRST_BOXES.includes(boxes[0]!.type)) return undefined;
    const last = boxes[boxes.length - 1]!;
    const spare = size - (last.offset + last.size);
    // A cut: the last box is longer than the file, the file ends inside the next box's 8-byte
    // header, or the last fragment's moof has no mdat after it.
    const truncatedWhy = last.truncated ? `the last MP4 box (${last.type}) claims more bytes than the file holds`
      : spare > 0 && spare < 8 ? `the file ends ${spare} bytes into the header of a box after ${last.type}`
        : last.type === 'moof' && boxes.some((b) => b.type === 'mdat') ? 'the last fragment (moof) has no mdat'
          : undefined;
    const truncatedTail = truncatedWhy !== undefined;
    const moofs = boxes.filter((b) => b.type === 'moof');
    if (moofs.length === 0) return { kind: 'mp4', segments: fixedPlan(size, options.maxBytes), truncatedTail, truncatedWhy };
    if (!streamed) {
      await readMoov();
      for (let i = 0; i < boxes.length; i++) if (boxes[i]!.type === 'moof') await fragment(boxes, i);
    }
    const relative = (t: number | undefined): number | undefined => (t === undefined || origin === undefined ? undefined : t - origin);
    const relCuts = cuts.map((c) => ({ offset: c.offset, time: relative(c.time) }));
    // The header (ftyp+moov) rides with the first fragment: the first cut becomes offset 0.
    const withHeader = [{ offset: 0, time: relCuts[0]?.time }, ...relCuts.slice(1)];
    return {
      kind: 'fmp4', truncatedTail, truncatedWhy, timeOrigin: origin === undefined ? undefined : round(origin),
      segments: groupCuts(withHeader, size, { segmentSeconds: options.segmentSeconds, maxBytes: options.maxBytes, endTime: relative(end) }),
    };
  } finally {
    await handle.close();
  }
}

/** Where the TS packets are: size, the sync byte's place in a packet, the first packet's offset. */
export interface TsLayout { packetSize: 188 | 192 | 204; syncOffset: 0 | 4; firstPacket: number }

const TS_CANDIDATES: Array<{ packetSize: 188 | 192 | 204; syncOffset: 0 | 4 }> = [
  { packetSize: 188, syncOffset: 0 }, { packetSize: 192, syncOffset: 4 }, { packetSize: 204, syncOffset: 0 },
];

async function readAt(file: FileHandle, offset: number, length: number): Promise<Buffer> {
  const buffer = Buffer.alloc(length);
  const { bytesRead } = await file.read(buffer, 0, length, offset);
  return buffer.subarray(0, bytesRead);
}

/**
 * Packet size from the bytes: the earliest offset from which a 0x47 sync byte
 * recurs at the packet stride over several consecutive packets (8, or every
 * packet of a smaller file). For 192-byte M2TS packets the packet starts at
 * the 4-byte timestamp prefix, 4 bytes before the sync.
 */
export function detectTsLayoutIn(head: Buffer): TsLayout | undefined {
  let best: TsLayout | undefined;
  for (const { packetSize, syncOffset } of TS_CANDIDATES) {
    const wanted = Math.max(2, Math.min(8, Math.floor(head.length / packetSize)));
    for (let start = 0; start + packetSize <= head.length && start < 4 * packetSize; start++) {
      let ok = 0;
      while (ok < wanted && start + ok * packetSize + syncOffset < head.length && head[start + ok * packetSize + syncOffset] === 0x47) ok++;
      if (ok >= wanted) {
        if (!best || start < best.firstPacket) best = { packetSize, syncOffset, firstPacket: start };
        break;
      }
    }
  }
  return best;
}

export async function detectTsLayout(file: FileHandle, size: number): Promise<TsLayout | undefined> {
  return detectTsLayoutIn(await readAt(file, 0, Math.min(size, 64 * 1024)));
}

/**
 * Is the stream cut? Its length is not a whole number of packets, or a PES
 * with a declared length (audio, data; video PES usually declare 0 = unbounded)
 * has fewer bytes than it declares when the file ends. Reads only the tail.
 */
export async function tsTailCut(file: FileHandle, size: number, layout: TsLayout): Promise<string | undefined> {
  const { packetSize, syncOffset, firstPacket } = layout;
  const spare = (size - firstPacket) % packetSize;
  if (spare !== 0) return `the stream ends ${spare} bytes into a ${packetSize}-byte packet`;
  const whole = (size - firstPacket) / packetSize;
  const tailPackets = Math.min(whole, Math.floor((2 * 1024 * 1024) / packetSize));
  const from = firstPacket + (whole - tailPackets) * packetSize;
  const tail = await readAt(file, from, tailPackets * packetSize);
  const open = new Map<number, { declared: number; got: number }>();
  for (let p = 0; p + packetSize <= tail.length; p += packetSize) {
    const q = p + syncOffset;
    if (tail[q] !== 0x47) continue;
    const pid = ((tail[q + 1]! & 0x1f) << 8) | tail[q + 2]!;
    if (pid === 0x1fff) continue;
    const pusi = (tail[q + 1]! & 0x40) !== 0;
    const afc = (tail[q + 3]! >> 4) & 0x3;
    if (!(afc & 0x1)) continue;
    let payload = q + 4;
    if (afc & 0x2) payload += 1 + tail[q + 4]!;
    const payloadEnd = q + 188;
    if (payload >= payloadEnd) continue;
    if (pusi) {
      if (tail[payload] === 0 && tail[payload + 1] === 0 && tail[payload + 2] === 1 && payload + 6 <= payloadEnd) {
        open.set(pid, { declared: tail.readUInt16BE(payload + 4), got: payloadEnd - payload });
      } else {
        open.delete(pid);
      }
    } else {
      const pes = open.get(pid);
      if (pes) pes.got += payloadEnd - payload;
    }
  }
  for (const [pid, pes] of open) {
    if (pes.declared > 0 && pes.got < pes.declared + 6) return `the last PES of PID ${pid} holds ${pes.got} of its ${pes.declared + 6} bytes`;
  }
  return undefined;
}

async function planTransportStream(path: string, size: number, options: PlanOptions): Promise<SegmentPlan> {
  const file = await open(path, 'r');
  let layout: TsLayout | undefined;
  let cutWhy: string | undefined;
  try {
    layout = await detectTsLayout(file, size);
    if (layout) cutWhy = await tsTailCut(file, size, layout);
  } finally {
    await file.close();
  }
  // ffprobe says TS but no packet grid is found: no cut could be trusted, so fixed ranges.
  if (!layout) return { kind: 'fixed', segments: fixedPlan(size, options.maxBytes), truncatedTail: false };
  const { packetSize, firstPacket } = layout;
  const timeline = await videoTimeline(path, { signal: options.signal });
  const origin = timeline.firstTime;
  const packetStart = (pos: number): number => (pos < firstPacket ? 0 : pos - ((pos - firstPacket) % packetSize));
  const unique = new Map<number, Cut>();
  for (const k of timeline.keyframes) {
    const offset = packetStart(k.pos);
    if (!unique.has(offset)) unique.set(offset, { offset, time: origin === undefined ? undefined : k.time - origin });
  }
  const list = [...unique.values()].filter((c) => c.offset >= firstPacket).sort((a, b) => a.offset - b.offset);
  // What comes before the first keyframe (PAT/PMT, any leading bytes) rides with the first
  // keyframe's segment, as the fMP4 header rides with the first fragment.
  const cuts: Cut[] = list.length ? [{ offset: 0, time: list[0]!.time }, ...list.slice(1)] : [{ offset: 0 }];
  const endTime = origin !== undefined && timeline.endTime !== undefined ? timeline.endTime - origin : undefined;
  const segments = groupCuts(cuts, size,
    { segmentSeconds: options.segmentSeconds, maxBytes: options.maxBytes, endTime, grid: { unit: packetSize, first: firstPacket } });
  return {
    kind: 'mpegts', segments, packetSize, truncatedTail: cutWhy !== undefined, truncatedWhy: cutWhy,
    timeOrigin: origin === undefined ? undefined : round(origin),
  };
}

export async function planSegments(path: string, size: number, options: PlanOptions): Promise<SegmentPlan> {
  if (size === 0) return { kind: 'fixed', segments: [], truncatedTail: false };
  const format = options.formatName ?? '';
  if (format.split(',').includes('mpegts')) return planTransportStream(path, size, options);
  const iso = await planIsoBmff(path, size, options);
  if (iso) return iso;
  return { kind: 'fixed', segments: fixedPlan(size, options.maxBytes), truncatedTail: false };
}
