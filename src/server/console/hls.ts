/**
 * Playback from the original bytes: an HLS playlist whose entries are byte ranges of the original
 * file, nothing transcoded or re-muxed. fMP4: EXT-X-MAP is the header (ftyp+moov, the bytes before
 * the first fragment), each entry a segment of the manifest's plan (the first without the header);
 * MPEG-TS: each entry a segment. Only the segments held so far, from the start without a hole, are
 * listed; ENDLIST only once the recording is complete, so a player keeps reloading while it uploads.
 */
import type { RecordingManifest, SegmentPlanEntry } from '../../protocol/types.js';

export type PlaybackKind = 'fmp4' | 'mp4' | 'ts' | 'm2ts' | 'none';

const FRAGMENT_START = new Set(['moof', 'styp', 'sidx', 'prft', 'emsg']);

/** Bytes before the first fragment of a fragmented MP4 (its header), or undefined when not fragmented. */
export function fmp4HeaderLength(firstSegment: Buffer): number | undefined {
  let offset = 0;
  let sawMoov = false;
  while (offset + 8 <= firstSegment.length) {
    let size = firstSegment.readUInt32BE(offset);
    const type = firstSegment.toString('latin1', offset + 4, offset + 8);
    if (size === 1 && offset + 16 <= firstSegment.length) size = Number(firstSegment.readBigUInt64BE(offset + 8));
    if (FRAGMENT_START.has(type)) return sawMoov && offset > 0 ? offset : undefined;
    if (type === 'moov') sawMoov = true;
    if (type === 'mdat' || size < 8) return undefined;
    offset += size;
  }
  return undefined;
}

export function playbackKind(manifest: RecordingManifest, headerLength: number | undefined): PlaybackKind {
  const format = manifest.file.media?.container ?? '';
  if (format.includes('mpegts')) return manifest.file.media?.packetSize === 192 ? 'm2ts' : 'ts';
  if (format.includes('mp4') || format.includes('mov')) return headerLength !== undefined ? 'fmp4' : 'mp4';
  return 'none';
}

/** Segments held from index 0 without a hole (what a player can play in order). */
export function heldPrefix(segments: readonly SegmentPlanEntry[], missing: readonly number[]): SegmentPlanEntry[] {
  const gone = new Set(missing);
  const out: SegmentPlanEntry[] = [];
  for (const s of segments) {
    if (gone.has(s.index)) break;
    out.push(s);
  }
  return out;
}

function durationOf(segment: SegmentPlanEntry, manifest: RecordingManifest): number {
  if (segment.startTime !== undefined && segment.endTime !== undefined && segment.endTime > segment.startTime) return segment.endTime - segment.startTime;
  const total = manifest.file.media?.durationSeconds ?? 0;
  return manifest.file.size > 0 ? (total * segment.length) / manifest.file.size : 0;
}

export function buildPlaylist(options: { manifest: RecordingManifest; kind: 'fmp4' | 'ts'; headerLength?: number; held: SegmentPlanEntry[]; complete: boolean; mediaUrl: string }): string {
  const { manifest, kind, held, complete, mediaUrl } = options;
  const durations = held.map((s) => durationOf(s, manifest));
  const target = Math.max(1, Math.ceil(Math.max(0, ...manifest.segments.map((s) => durationOf(s, manifest)))));
  const lines = ['#EXTM3U', `#EXT-X-VERSION:${kind === 'fmp4' ? 7 : 4}`, `#EXT-X-TARGETDURATION:${target}`, '#EXT-X-MEDIA-SEQUENCE:0',
    `#EXT-X-PLAYLIST-TYPE:${complete ? 'VOD' : 'EVENT'}`, '#EXT-X-INDEPENDENT-SEGMENTS'];
  const header = kind === 'fmp4' ? options.headerLength ?? 0 : 0;
  if (kind === 'fmp4') lines.push(`#EXT-X-MAP:URI="${mediaUrl}",BYTERANGE="${header}@0"`);
  held.forEach((segment, i) => {
    const start = i === 0 ? segment.offset + header : segment.offset;
    const length = segment.offset + segment.length - start;
    if (length <= 0) return;
    lines.push(`#EXTINF:${durations[i]!.toFixed(3)},`, `#EXT-X-BYTERANGE:${length}@${start}`, mediaUrl);
  });
  if (complete && held.length === manifest.segments.length) lines.push('#EXT-X-ENDLIST');
  return lines.join('\n') + '\n';
}
