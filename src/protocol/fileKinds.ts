/**
 * What a file on a card is, by its name and its allocation alone (docs/dock.md, "What is
 * evidence"): the walker and the pipeline share these rules so that a card is read one way.
 *
 * A file with a media extension is a recording: evidence even when ffprobe cannot read it (a
 * GoPro file cut by power loss has no `moov`), so it is uploaded as opaque bytes, flagged
 * `unreadable`. A file with any other extension must prove to ffprobe that it is media, else it
 * stays on the card, listed (`not_media`). Companions (same base name as a recording, or a
 * vendor pairing) travel with their recording as attachments.
 */
import { extname } from 'node:path';
import type { AttachmentKind } from './types.js';

/** Containers cameras, camcorders, phones and dashcams write (lower case, with the dot). */
export const MEDIA_EXTENSIONS: ReadonlySet<string> = new Set([
  '.mp4', '.m4v', '.mov', '.qt', '.3gp', '.3g2', '.mkv', '.webm', '.avi', '.wmv', '.asf', '.flv', '.mxf',
  '.ts', '.mts', '.m2ts', '.m2t', '.trp', '.tp', '.mpg', '.mpeg', '.vob', '.dav', '.h264', '.h265', '.264', '.265',
  '.insv', '.360', '.wav', '.m4a', '.aac', '.mp3', '.amr', '.opus',
]);

/** True when the name's extension is one a recording is written under. */
export function isMediaExtension(fileName: string): boolean {
  return MEDIA_EXTENSIONS.has(extname(fileName).toLowerCase());
}

/**
 * A card is FAT/exFAT: it has no sparse files, so every byte of a file a camera wrote is
 * allocated. A file whose allocated blocks are far below its size (a `truncate -s 20G`, a
 * hole-punched copy) was not written by a camera; uploading its holes would send gigabytes of
 * zeros as "evidence". It stays on the card, listed with this reason (attention).
 * Small differences are ignored (metadata blocks, filesystems that report blocks lazily).
 */
export function isSparse(stats: { size: number; blocks?: number }): boolean {
  if (typeof stats.blocks !== 'number' || stats.size < 16 * 1024 * 1024) return false;
  const allocated = stats.blocks * 512;
  return allocated < stats.size / 2;
}

/** What an attachment is, by its extension (informative: every companion is uploaded alike). */
export function attachmentKindOf(fileName: string): AttachmentKind {
  const ext = extname(fileName).toLowerCase();
  if (ext === '.json') return 'metadata-json';
  if (ext === '.thm' || ext === '.jpg' || ext === '.jpeg' || ext === '.png') return 'thumbnail';
  if (ext === '.lrv') return 'proxy-video';
  if (['.gpx', '.nmea', '.kml', '.kmz', '.gps', '.log'].includes(ext)) return 'gps';
  if (ext === '.xml') return 'xml';
  if (['.srt', '.vtt', '.ass', '.ssa', '.sub'].includes(ext)) return 'subtitles';
  return 'other';
}

/**
 * The base names a file is a companion under, in lower case: its name without its last extension
 * (`VID_0001.THM` → `vid_0001`; `clip.mp4.srt` → `clip.mp4`, which matches the recording's full
 * name too). Makers' pairings whose names differ (a GoPro `GL010001.LRV` is `GX010001.MP4`'s
 * proxy, AVCHD `CLIPINF/00000.CPI` belongs to `STREAM/00000.MTS`) come from cardLayouts.ts.
 */
export function companionKeysOf(fileName: string): string[] {
  const lower = fileName.toLowerCase();
  const ext = extname(lower);
  return [ext ? lower.slice(0, -ext.length) : lower];
}

/** The keys a recording is found under by its companions: its name without extension, and its full name. */
export function recordingKeysOf(fileName: string): string[] {
  const lower = fileName.toLowerCase();
  const ext = extname(lower);
  return ext ? [lower.slice(0, -ext.length), lower] : [lower];
}
