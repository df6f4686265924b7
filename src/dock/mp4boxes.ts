/**
 * Just enough ISO BMFF reading to cut a fragmented MP4 at fragment boundaries:
 * the top-level box list (read header by header, never the whole file), the
 * video track's timescale from moov, and each moof's decode time from tfdt.
 */
import { type FileHandle } from 'node:fs/promises';

export interface TopBox {
  type: string;
  offset: number;
  /** Total size including header; for a box cut short by power loss, the declared size. */
  size: number;
  /** The box claims more bytes than the file has (power-loss cut). */
  truncated: boolean;
}

const CONTAINER_TYPES = new Set(['moov', 'trak', 'mdia', 'minf', 'stbl', 'moof', 'traf', 'mvex', 'edts', 'dinf']);

async function readAt(file: FileHandle, offset: number, length: number): Promise<Buffer> {
  const buffer = Buffer.alloc(length);
  const { bytesRead } = await file.read(buffer, 0, length, offset);
  return buffer.subarray(0, bytesRead);
}

function isBoxType(text: string): boolean {
  return /^[A-Za-z0-9 ©_-]{4}$/.test(text);
}

/** Top-level boxes in order; stops at the first unreadable header (garbage or a cut). */
export async function topLevelBoxes(file: FileHandle, fileSize: number): Promise<TopBox[]> {
  const boxes: TopBox[] = [];
  let offset = 0;
  while (offset + 8 <= fileSize) {
    const header = await readAt(file, offset, 16);
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
    boxes.push({ type, offset, size, truncated });
    if (truncated) break;
    offset += size;
  }
  return boxes;
}

interface ChildBox { type: string; start: number; end: number; body: number }

function children(buf: Buffer, start: number, end: number): ChildBox[] {
  const out: ChildBox[] = [];
  let pos = start;
  while (pos + 8 <= end) {
    let size = buf.readUInt32BE(pos);
    const type = buf.toString('latin1', pos + 4, pos + 8);
    let header = 8;
    if (size === 1 && pos + 16 <= end) { size = Number(buf.readBigUInt64BE(pos + 8)); header = 16; }
    if (size === 0) size = end - pos;
    if (size < header || pos + size > end) break;
    out.push({ type, start: pos, end: pos + size, body: pos + header });
    pos += size;
  }
  return out;
}

function find(buf: Buffer, start: number, end: number, type: string): ChildBox | undefined {
  return children(buf, start, end).find((c) => c.type === type);
}

export interface TrackInfo { trackId: number; timescale: number; handler: string }

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
  return tracks;
}

/** Decode time (seconds) of a moof's fragment for the chosen track; undefined when it has none. */
export function moofDecodeTime(moof: Buffer, tracks: TrackInfo[], preferredTrackId?: number): number | undefined {
  let fallback: number | undefined;
  for (const traf of children(moof, 8, moof.length).filter((c) => c.type === 'traf')) {
    const tfhd = find(moof, traf.body, traf.end, 'tfhd');
    const tfdt = find(moof, traf.body, traf.end, 'tfdt');
    if (!tfhd || !tfdt) continue;
    const trackId = moof.readUInt32BE(tfhd.body + 4);
    const track = tracks.find((t) => t.trackId === trackId);
    if (!track || !track.timescale) continue;
    const version = moof[tfdt.body]!;
    const base = version === 1 ? Number(moof.readBigUInt64BE(tfdt.body + 4)) : moof.readUInt32BE(tfdt.body + 4);
    const seconds = base / track.timescale;
    if (preferredTrackId === undefined || trackId === preferredTrackId) return seconds;
    fallback ??= seconds;
  }
  return fallback;
}

export async function readBox(file: FileHandle, box: TopBox, cap: number): Promise<Buffer | undefined> {
  if (box.truncated || box.size > cap) return undefined;
  return readAt(file, box.offset, box.size);
}
