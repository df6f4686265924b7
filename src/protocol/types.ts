/**
 * The shapes dock and server exchange (ingest protocol v1, docs/protocol.md).
 * Hashes are lowercase hex; signatures base64; public keys PEM (SPKI); times ISO 8601 UTC.
 */
import type { RecordingSource } from './cardLayouts.js';

export const PROTOCOL_VERSION = 'bodycam-ingest/1';

/**
 * Optional request header: the dock id the caller believes its token belongs to. A server whose
 * token table says otherwise answers 403 forbidden (after looking for newer tokens) instead of
 * looking in the other dock's namespace, where the caller's recordings are not (docs/protocol.md).
 */
export const DOCK_ID_HEADER = 'bodycam-dock-id';

/** Recording ids and dock ids: what the server will ever use as a path component. */
export const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export function isValidId(value: unknown): value is string {
  return typeof value === 'string' && ID_PATTERN.test(value) && !value.includes('..');
}

export interface MediaSummary {
  container: string;            // ffprobe format_name, e.g. "mov,mp4,m4a,3gp,3g2,mj2" or "mpegts"
  durationSeconds?: number;
  startTimeSeconds?: number;
  streams: Array<{ index: number; type: string; codec?: string; width?: number; height?: number; fps?: number; sampleRate?: number; channels?: number }>;
  /** MPEG-TS packet size read from the bytes: 188, 192 (M2TS: 4-byte timestamp prefix, cuts at the prefix) or 204. */
  packetSize?: number;
  /**
   * The one clock of segments[].startTime/endTime: container presentation time (s) of the
   * file's first video frame, which segment times count from (docs/protocol.md, "Media times").
   */
  timeOrigin?: number;
}

/** One stream's media fingerprint, or why it has none. */
export type StreamFingerprintEntry =
  | { index: number; type: string; codec?: string; hash: string }
  | { index: number; type: string; codec?: string; error: string };

export interface SegmentPlanEntry {
  index: number;
  offset: number;                // byte offset in the original file
  length: number;                // bytes; segments tile the file exactly
  sha256: string;
  /**
   * Media time range, when the cut came from the media itself: presentation time of the video
   * keyframe the segment starts with, in seconds from the file's first video frame; endTime is
   * the next segment's startTime (last segment: the end of the last video frame).
   */
  startTime?: number;
  endTime?: number;
}

/**
 * The one list of integrity statuses (the manifest schema, replay's expectations and the dock's
 * checks all use it). Why the dock flags a recording: evidence is uploaded anyway, never withheld.
 */
export const INTEGRITY_STATUSES = [
  'verified',                   // sidecar hash and camera signature both check out
  'unsigned',                   // no sidecar (foreign camera or power-loss cut)
  'hash-mismatch',              // file's SHA-256 differs from the signed sidecar's
  'signature-invalid',          // sidecar signature does not verify with DEVICE.json's key
  'sidecar-invalid',            // sidecar unreadable or malformed
] as const;
export type IntegrityStatus = typeof INTEGRITY_STATUSES[number];

/** A status that says the evidence does not hold up (not merely unsigned): flagged, never wiped. */
export function isIntegrityProblem(status: string | null | undefined): boolean {
  return !!status && status !== 'verified' && status !== 'unsigned';
}

/** What an attachment is, by its extension (docs/protocol.md, "Attachments"): informative only. */
export type AttachmentKind = 'metadata-json' | 'thumbnail' | 'proxy-video' | 'gps' | 'xml' | 'subtitles' | 'other';

/**
 * A file beside the recording on the card (another maker's metadata: a thumbnail, a low-res proxy,
 * a GPS log, XML, subtitles, a JSON that is not our sidecar), uploaded with it byte-exact in its
 * own fixed, size-capped segments, receipted and proved before the wipe deletes it.
 */
export interface AttachmentEntry {
  /** Position in `attachments` (0..n-1, in order): the `{a}` of its URLs. */
  index: number;
  /** File name on the card (no folder), unique within the recording. */
  name: string;
  size: number;
  sha256: string;
  kind: AttachmentKind;
  /** Fixed byte ranges tiling [0, size) exactly (no media times). */
  segments: SegmentPlanEntry[];
}

/** Most attachments one manifest may carry. */
export const ATTACHMENTS_MAX = 64;

/** An attachment segment the server lacks. */
export interface MissingAttachmentSegment { attachment: number; index: number }

export interface RecordingManifest {
  protocol: typeof PROTOCOL_VERSION;
  recordingId: string;
  device: {
    serial: string;             // "unknown" for a foreign camera without DEVICE.json
    model?: string;
    firmware?: string;
    publicKeyPem?: string;      // camera's Ed25519 key from DEVICE.json
    /** The camera's own sidecar, exactly as read, with its camera signature. */
    sidecar?: Record<string, unknown>;
    /** Hex SHA-256 of the sidecar file's exact bytes (the wipe deletes a sidecar only with these bytes on the server). */
    sidecarSha256?: string;
    /** The sidecar file's exact bytes, base64 (at most SIDECAR_MAX_BYTES before encoding). */
    sidecarBase64?: string;
    /** Camera clock minus true time when docked, in ms (times in evidence are never rewritten). */
    clockOffsetMs?: number;
  };
  dock: {
    id: string;
    publicKeyPem: string;
    bay?: string;
  };
  file: {
    name: string;
    size: number;
    sha256: string;
    media?: MediaSummary;
    /**
     * ffmpeg hash muxer over stream-copied packets: survives a remux. `sha256:v0=…,a1=…` over the
     * streams that could be fingerprinted; mediaFingerprints says which could not and why.
     */
    mediaFingerprint?: string;
    /** Per stream: a hash for every readable audio/video stream, an error naming any other. */
    mediaFingerprints?: StreamFingerprintEntry[];
    truncated?: boolean;        // power-loss cut detected
    /**
     * Where the recording was on the card and what a known maker's layout says about it
     * (docs/dock.md, "Card layouts"): e.g. a dashcam Event file has trigger `event`, category `incident`.
     */
    source?: RecordingSource;
    /**
     * ffprobe could not read the file (its words): uploaded byte-exact as opaque bytes in fixed
     * size-capped ranges, no `media` section, never wiped automatically.
     */
    unreadable?: string;
  };
  integrity: {
    status: IntegrityStatus;
    notes: string[];
  };
  segments: SegmentPlanEntry[];
  merkleRoot: string;
  /** Companion files uploaded with the recording (absent: none). */
  attachments?: AttachmentEntry[];
  createdAt: string;
  signature: string;            // dock's Ed25519 over JCS(manifest without signature)
}

export interface Receipt {
  protocol: typeof PROTOCOL_VERSION;
  type: 'receipt';
  recordingId: string;
  dockId: string;
  sha256: string;
  size: number;
  segmentCount: number;
  merkleRoot: string;
  receivedAt: string;
  serverKeyId: string;
  /** Sequence number of the custody-log entry that records this receipt. */
  custodySeq: number;
  /**
   * SHA-256 (hex) of custody-log line custodySeq-1 (64 zeros for seq 1): the chain head this
   * receipt's entry extends, so a dock holds signed evidence of the log's length and content.
   * Absent only in receipts from servers before it was added.
   */
  custodyPrevHash?: string;
  /** The manifest's attachments the server holds (name, size, SHA-256), present iff it has any. */
  attachments?: Array<{ name: string; size: number; sha256: string }>;
  signature: string;
}

/** Largest sidecar file the dock reads and carries in a manifest (bytes, before base64). */
export const SIDECAR_MAX_BYTES = 1024 * 1024;

/** Most segments one proof-of-possession challenge may name. */
export const POSSESSION_MAX_SEGMENTS = 8;

/** Body of POST /v1/recordings/{id}/possession (docs/protocol.md, Proof of possession). */
export interface PossessionChallenge {
  /** 64 lowercase hex = 32 random bytes, fresh for every challenge. */
  nonce: string;
  /** 1..8 distinct segment indexes of the recording's plan. */
  segments: number[];
  /** Also prove the sidecar bytes (answer sidecarSha256). */
  sidecar?: boolean;
  /** Also prove every attachment: answer attachments[] = SHA-256(nonce ‖ the attachment's bytes). */
  attachments?: boolean;
}

/** Answer to a possession challenge: per segment, hex SHA-256(nonce bytes ‖ stored segment bytes). */
export interface PossessionAnswer {
  recordingId: string;
  nonce: string;
  answers: Array<{ index: number; sha256: string }>;
  sidecarSha256?: string;
  attachments?: Array<{ index: number; sha256: string }>;
}

/** Answer to POST /v1/recordings. */
export interface CreateRecordingResponse {
  recordingId: string;
  state: RecordingState;
  missing: number[];
  /** Attachment segments the server lacks (present when the manifest has attachments). */
  missingAttachments?: MissingAttachmentSegment[];
  receipt?: Receipt;
}

export type RecordingState = 'receiving' | 'complete';

export interface RecordingListEntry {
  id: string;
  state: RecordingState;
  deviceSerial: string;
  dockId: string;
  fileName: string;
  size: number;
  sha256: string;
  segmentCount: number;
  segmentsReceived: number;
  integrity: IntegrityStatus;
  createdAt: string;
  completedAt?: string;
}
