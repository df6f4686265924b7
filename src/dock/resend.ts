/**
 * Healing a server that lost part of a receipted recording (docs/reliability.md item 7): a blob
 * found damaged at rest is marked missing by the server's verified read, and the server then
 * lists it in `missing` / `missingAttachments` of the recording even though it is complete. The
 * card that still holds the recording re-sends exactly those segments; the server verifies every
 * body against the manifest's SHA-256 (Content-Digest), so bytes that are not the receipted ones
 * are refused and can never replace anything. Used by the wipe (before a proof of possession is
 * asked again) and by `bodycam check --resend`.
 */
import { dirname, join } from 'node:path';
import type { MissingAttachmentSegment, RecordingManifest } from '../protocol/types.js';
import type { IngestClient } from './client.js';

export interface ResendOutcome {
  /** Segment indexes of the recording sent again. */
  segments: number[];
  /** Attachment segments sent again. */
  attachments: MissingAttachmentSegment[];
}

/** Nothing lost: no segment and no attachment segment listed. */
export function nothingLost(held: { missing?: unknown; missingAttachments?: unknown }): boolean {
  return Array.isArray(held.missing) && held.missing.length === 0 && (!Array.isArray(held.missingAttachments) || held.missingAttachments.length === 0);
}

/**
 * Ask the server what it lacks of a complete recording and send those parts again from the card
 * (`absPath` the recording's file; `attachmentPath` where an attachment is, beside it by default).
 * Nothing is sent for a recording the server does not report complete (the upload step owns that).
 */
export async function resendLostParts(client: IngestClient, manifest: RecordingManifest, absPath: string, options: { signal?: AbortSignal; attachmentPath?: (index: number, name: string) => string } = {}): Promise<ResendOutcome> {
  const held = await client.getRecording(manifest.recordingId, options.signal);
  const outcome: ResendOutcome = { segments: [], attachments: [] };
  if (held.state !== 'complete') return outcome;
  for (const index of Array.isArray(held.missing) ? held.missing : []) {
    const segment = manifest.segments.find((s) => s.index === index);
    if (!segment) continue; // not in the plan: nothing the card can answer
    await client.putSegment(manifest.recordingId, absPath, segment, options.signal);
    outcome.segments.push(index);
  }
  for (const item of Array.isArray(held.missingAttachments) ? held.missingAttachments : []) {
    const attachment = manifest.attachments?.[item.attachment];
    const segment = attachment?.segments[item.index];
    if (!attachment || !segment) continue;
    const path = options.attachmentPath?.(attachment.index, attachment.name) ?? join(dirname(absPath), attachment.name);
    await client.putSegment(manifest.recordingId, path, segment, options.signal, attachment.index);
    outcome.attachments.push(item);
  }
  return outcome;
}
