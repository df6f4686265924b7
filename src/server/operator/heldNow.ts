/**
 * Whether the store holds a recording's stored bytes now: one hasBlob (a stat on the filesystem,
 * a HEAD on S3) per segment and attachment segment, never a read. A blob deleted or moved away, or
 * one a verified read found damaged (moved aside by the store), is not held, nor one of another
 * size than the manifest's (truncated or grown at rest; stores with blobSize); a blob damaged in
 * place with its size unchanged and not read since still counts as held: the recording page's content check and
 * `bodycam server scrub` re-hash the bytes (docs/operations.md "What is checked when").
 */
import type { RecordingManifest } from '../../protocol/types.js';
import type { BlobStore } from '../store/store.js';

/** A segment (of an attachment when `attachment` is set) whose blob the store does not hold; `size` when one is there of the wrong size. */
export interface SegmentNotHeld { index: number; attachment?: number; sha256: string; size?: number; length?: number }

export interface HeldNow {
  /** Segments of the recording itself (attachments not counted). */
  segments: number;
  held: number;
  /** Every segment not held, attachments' included (at most `keep` listed; `notHeldCount` is all of them). */
  notHeld: SegmentNotHeld[];
  notHeldCount: number;
}

/** The stat of every stored segment of `manifest`, 16 at a time. */
export async function heldNow(manifest: RecordingManifest, blobs: Pick<BlobStore, 'hasBlob' | 'blobSize'>, keep = 20): Promise<HeldNow> {
  const parts: Array<{ attachment?: number; segments: RecordingManifest['segments'] }> = [
    { segments: manifest.segments },
    ...(manifest.attachments ?? []).map((a) => ({ attachment: a.index, segments: a.segments })),
  ];
  const out: HeldNow = { segments: manifest.segments.length, held: manifest.segments.length, notHeld: [], notHeldCount: 0 };
  const width = 16;
  for (const part of parts) {
    for (let i = 0; i < part.segments.length; i += width) {
      const slice = part.segments.slice(i, i + width);
      // The size when the store can say it (a stat either way): undefined is not held.
      const sizes = await Promise.all(slice.map(async (s) => (blobs.blobSize ? blobs.blobSize(s.sha256) : (await blobs.hasBlob(s.sha256)) ? s.length : undefined)));
      sizes.forEach((size, j) => {
        const s = slice[j]!;
        if (size === s.length) return;
        out.notHeldCount++;
        if (part.attachment === undefined) out.held--;
        if (out.notHeld.length < keep) {
          out.notHeld.push({ index: s.index, ...(part.attachment === undefined ? {} : { attachment: part.attachment }), sha256: s.sha256, ...(size !== undefined ? { size, length: s.length } : {}) });
        }
      });
    }
  }
  return out;
}

/** "segment 0", "segments 0, 3 and attachment 1 segment 2" … of what is not held (at most the listed ones). */
export function describeNotHeld(notHeld: readonly SegmentNotHeld[], count: number): string {
  const names = notHeld.map((s) => `${s.attachment === undefined ? `segment ${s.index}` : `attachment ${s.attachment} segment ${s.index}`}${s.size !== undefined ? ` (${s.size} bytes stored of ${s.length ?? '?'}: damaged at rest)` : ''}`);
  return `${names.join(', ')}${count > notHeld.length ? ` and ${count - notHeld.length} more` : ''}`;
}
