/**
 * Just enough ISO BMFF reading to cut a fragmented MP4 at fragment boundaries:
 * the top-level box list (read header by header, never the whole file), the
 * video track's timescale from moov, and each moof's decode time from tfdt.
 */
import type { WindowReader } from '../util/chunkReader.js';
import { childBoxes as children, type Mp4Box } from '../media/mp4Samples.js';

export interface TopBox {
  type: string;
  offset: number;
  /** Total size including header; for a box cut short by power loss, the declared size. */
  size: number;
  /** The box claims more bytes than the file has (power-loss cut). */
  truncated: boolean;
}

const CONTAINER_TYPES = new Set(['moov', 'trak', 'mdia', 'minf', 'stbl', 'moof', 'traf', 'mvex', 'edts', 'dinf']);

function isBoxType(text: string): boolean {
  return /^[A-Za-z0-9 ©_-]{4}$/.test(text);
}

/**
 * Top-level boxes in order; stops at the first unreadable header (garbage or a cut). `onBox` sees
 * each box as it is found, with the list so far (its bytes are then in the reader's window).
 */
export async function topLevelBoxes(file: WindowReader, fileSize: number, onBox?: (box: TopBox, boxes: readonly TopBox[]) => Promise<void>): Promise<TopBox[]> {
  const boxes: TopBox[] = [];
  let offset = 0;
  while (offset + 8 <= fileSize) {
    const header = await file.read(offset, 16);
    if (header.length < 8) break;
    let size = header.readUInt32BE(0);
    const type = header.toString('latin1', 4, 8);
    if (!isBoxType(type)) break;
    let headerSize = 8;
    if (size === 1) {
      if (header.length < 16) break;
      size = Number(header.readBigUInt64BE(8));
      headerSize = 16;
    } else if (size === 0) {
      size = fileSize - offset;
    }
    if (size < headerSize) break;
    const truncated = offset + size > fileSize;
    const box = { type, offset, size, truncated };
    boxes.push(box);
    await onBox?.(box, boxes);
    if (truncated) break;
    offset += size;
  }
  return boxes;
}

type ChildBox = Mp4Box;

function find(buf: Buffer, start: number, end: number, type: string): ChildBox | undefined {
  return children(buf, start, end).find((c) => c.type === type);
}

export interface TrackInfo { trackId: number; timescale: number; handler: string; defaultSampleDuration?: number }

/** Tracks of a moov box (given as its bytes). */
export function parseMoovTracks(moov: Buffer): TrackInfo[] {
  const tracks: TrackInfo[] = [];
  for (const trak of children(moov, 8, moov.length).filter((c) => c.type === 'trak')) {
    const tkhd = find(moov, trak.body, trak.end, 'tkhd');
    const mdia = find(moov, trak.body, trak.end, 'mdia');
    if (!tkhd || !mdia) continue;
    const tkhdVersion = moov[tkhd.body]!;
    const trackId = moov.readUInt32BE(tkhd.body + 4 + (tkhdVersion === 1 ? 16 : 8));
    const mdhd = find(moov, mdia.body, mdia.end, 'mdhd');
    const hdlr = find(moov, mdia.body, mdia.end, 'hdlr');
    if (!mdhd) continue;
    const mdhdVersion = moov[mdhd.body]!;
    const timescale = moov.readUInt32BE(mdhd.body + 4 + (mdhdVersion === 1 ? 16 : 8));
    const handler = hdlr ? moov.toString('latin1', hdlr.body + 8, hdlr.body + 12) : '';
    tracks.push({ trackId, timescale, handler });
  }
  // mvex/trex: the per-track sample duration a fragment may leave out.
  const mvex = find(moov, 8, moov.length, 'mvex');
  if (mvex) {
    for (const trex of children(moov, mvex.body, mvex.end).filter((c) => c.type === 'trex')) {
      if (trex.end - trex.body < 20) continue;
      const track = tracks.find((t) => t.trackId === moov.readUInt32BE(trex.body + 4));
      if (track) track.defaultSampleDuration = moov.readUInt32BE(trex.body + 12);
    }
  }
  return tracks;
}

/**
 * The trafs of a moof that can be timed: with a tfhd and a tfdt, of a known track with a
 * timescale; with the tfdt's base decode time (track clock, version 0 or 1).
 */
function* timedTrafs(moof: Buffer, tracks: TrackInfo[]): Generator<{ traf: ChildBox; tfhd: ChildBox; trackId: number; track: TrackInfo; base: number }> {
  for (const traf of children(moof, 8, moof.length).filter((c) => c.type === 'traf')) {
    const tfhd = find(moof, traf.body, traf.end, 'tfhd');
    const tfdt = find(moof, traf.body, traf.end, 'tfdt');
    if (!tfhd || !tfdt) continue;
    const trackId = moof.readUInt32BE(tfhd.body + 4);
    const track = tracks.find((t) => t.trackId === trackId);
    if (!track || !track.timescale) continue;
    const version = moof[tfdt.body]!;
    const base = version === 1 ? Number(moof.readBigUInt64BE(tfdt.body + 4)) : moof.readUInt32BE(tfdt.body + 4);
    yield { traf, tfhd, trackId, track, base };
  }
}

/** Decode time (seconds) of a moof's fragment for the chosen track; undefined when it has none. */
export function moofDecodeTime(moof: Buffer, tracks: TrackInfo[], preferredTrackId?: number): number | undefined {
  let fallback: number | undefined;
  for (const { trackId, track, base } of timedTrafs(moof, tracks)) {
    const seconds = base / track.timescale;
    if (preferredTrackId === undefined || trackId === preferredTrackId) return seconds;
    fallback ??= seconds;
  }
  return fallback;
}

export async function readBox(file: WindowReader, box: TopBox, cap: number): Promise<Buffer | undefined> {
  if (box.truncated || box.size > cap) return undefined;
  return file.read(box.offset, box.size);
}

/** Presentation times (seconds, track clock) of one fragment's samples of one track. */
export interface FragmentTimes {
  trackId: number;
  /** Decode time of the fragment (tfdt). */
  decodeTime: number;
  /** Presentation time of the first sample in decode order (a keyframe for frag_keyframe files). */
  firstPts: number;
  /** Earliest / latest-ending presentation time of the fragment's samples. */
  minPts: number;
  endPts: number;
  samples: number;
}

/**
 * Times of a moof's fragment for the chosen track (else the first track with a tfdt):
 * tfdt + the trun sample durations and composition offsets, so that start and end are
 * both presentation times. Edit lists are left out: every time the dock writes is
 * relative to the file's first frame, where an edit-list shift cancels.
 */
export function fragmentTimes(moof: Buffer, tracks: TrackInfo[], preferredTrackId?: number): FragmentTimes | undefined {
  let fallback: FragmentTimes | undefined;
  for (const { traf, tfhd, trackId, track, base } of timedTrafs(moof, tracks)) {
    if (preferredTrackId !== undefined && trackId !== preferredTrackId && fallback) continue;
    const tfhdFlags = moof.readUInt32BE(tfhd.body) & 0xffffff;
    let p = tfhd.body + 8;
    if (tfhdFlags & 0x01) p += 8;
    if (tfhdFlags & 0x02) p += 4;
    const defaultDuration = tfhdFlags & 0x08 ? moof.readUInt32BE(p) : track.defaultSampleDuration ?? 0;
    let dts = base;
    let firstPts: number | undefined;
    let minPts = Infinity;
    let endPts = -Infinity;
    let samples = 0;
    for (const trun of children(moof, traf.body, traf.end).filter((c) => c.type === 'trun')) {
      const trunVersion = moof[trun.body]!;
      const flags = moof.readUInt32BE(trun.body) & 0xffffff;
      const count = moof.readUInt32BE(trun.body + 4);
      let q = trun.body + 8;
      if (flags & 0x01) q += 4;
      if (flags & 0x04) q += 4;
      const stride = ((flags & 0x100) ? 4 : 0) + ((flags & 0x200) ? 4 : 0) + ((flags & 0x400) ? 4 : 0) + ((flags & 0x800) ? 4 : 0);
      if (q + stride * count > trun.end) break;
      for (let i = 0; i < count; i++) {
        let duration = defaultDuration;
        let cts = 0;
        if (flags & 0x100) { duration = moof.readUInt32BE(q); q += 4; }
        if (flags & 0x200) q += 4;
        if (flags & 0x400) q += 4;
        if (flags & 0x800) { cts = trunVersion === 0 ? moof.readUInt32BE(q) : moof.readInt32BE(q); q += 4; }
        const pts = dts + cts;
        firstPts ??= pts;
        if (pts < minPts) minPts = pts;
        if (pts + duration > endPts) endPts = pts + duration;
        dts += duration;
        samples++;
      }
    }
    const scale = track.timescale;
    const result: FragmentTimes = samples === 0
      ? { trackId, decodeTime: base / scale, firstPts: base / scale, minPts: base / scale, endPts: base / scale, samples }
      : { trackId, decodeTime: base / scale, firstPts: firstPts! / scale, minPts: minPts / scale, endPts: endPts / scale, samples };
    if (preferredTrackId === undefined || trackId === preferredTrackId) return result;
    fallback ??= result;
  }
  return fallback;
}
