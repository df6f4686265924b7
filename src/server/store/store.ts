/**
 * What the ingest server needs from storage: content-addressed blobs (one per
 * distinct segment SHA-256) and one metadata record per recording. The
 * filesystem store is the embedded default; any other backend must pass
 * test/server/storeConformance.ts.
 *
 * Recordings are namespaced per dock: a record is keyed by (dockId, recordingId),
 * so an id another dock created (a squatter, or the same camera docked at another
 * office first) is a different record and never blocks this dock. Blobs are not
 * namespaced (the same bytes are stored once); who may count a blob as held is
 * decided per dock outside the store (possession.ts).
 */
import type { Readable } from 'node:stream';
import type { IntegrityError } from '../../errors.js';
import type { Receipt, RecordingManifest } from '../../protocol/types.js';
import type { RecordingStore } from '../state.js';

export interface StoredRecording {
  manifest: RecordingManifest;
  /** When the server first accepted the manifest (server clock, ISO 8601 UTC). */
  createdAt: string;
  receipt?: Receipt;
  completedAt?: string;
}

export interface RecordingKey {
  dockId: string;
  recordingId: string;
}

export interface BlobWriteResult {
  /** False when the blob already existed (duplicate or concurrent PUT): nothing was stored twice. */
  created: boolean;
  size: number;
}

/**
 * The blob half: what an object-store backend (S3) implements. Recordings are state
 * (state.ts RecordingStore): the filesystem store holds both, PostgreSQL holds them otherwise.
 */
/** One blob of a scanBlobs pass: its size, or why its verified read failed (missing, damaged). */
export type ScannedBlob = { size: number; error?: undefined } | { size?: undefined; error: IntegrityError };

export interface BlobStore {
  /** Prepare the store; removes temp files left by a crash (cheap: one folder listing). */
  open(): Promise<void>;
  /**
   * Stream `body` into the blob named `sha256`. The bytes become visible only when
   * exactly `expectedLength` bytes arrived, their SHA-256 equals `sha256` and the bytes are
   * on stable storage (the name may become durable only at syncBlobs).
   * Throws IntegrityError with code `length_mismatch` or `digest_mismatch`
   * (nothing kept), or the body's own error. `onBytes` is told the size of each chunk as it is
   * read (the bytes-received metric), through src/server/verifiedWrite.ts like the checks.
   */
  putBlob(sha256: string, body: Readable | AsyncIterable<Buffer | Uint8Array>, expectedLength: number, options?: { onBytes?: (bytes: number) => void }): Promise<BlobWriteResult>;
  /** Make these blobs durable (file and name) before a receipt is issued for them. */
  syncBlobs(sha256s: readonly string[]): Promise<void>;
  /**
   * Also true for a held blob whose damage no read has found yet (a check must not cost a read);
   * false once a verified read found it damaged.
   */
  hasBlob(sha256: string): Promise<boolean>;
  /**
   * Optional: the held blob's size in bytes (the same look as hasBlob: a stat, no read), undefined
   * when it is not held. Lets a check without a read see a blob truncated or grown at rest
   * (operator/heldNow.ts); a blob of the right size may still be damaged (only a read tells).
   */
  blobSize?(sha256: string): Promise<number | undefined>;
  /**
   * Optional: a short string that changes whenever the stored version of the blob does (the
   * filesystem: device, inode, size, times), or undefined when the blob is not held. Lets a cached
   * verification result be re-used until the bytes behind it change (console/contentChecks.ts);
   * never a substitute for the verified read.
   */
  blobIdentity?(sha256: string): Promise<string | undefined>;
  /**
   * Bytes [start, endInclusive] of a blob (the whole blob by default), VERIFIED: the whole blob
   * is hashed on every read (for a range too) and the last chunk is held back until its SHA-256
   * is confirmed, so a consumer never sees `end` after wrong bytes (src/server/verifiedRead.ts).
   * When the bytes do not match, the blob is first marked damaged (hasBlob false from then on;
   * a putBlob of the right bytes stores them again) and the stream is destroyed with
   * IntegrityError `E_BLOB_DAMAGED`; a blob that is not there fails with `E_BLOB_MISSING`.
   * Throws at once for a name that is not a SHA-256.
   * putBlob of a name that exists keeps the existing blob only if it reads back intact.
   * `length`: the size a plan gives the blob; an intact blob of another size fails with
   * `E_STORED_LENGTH` before the last chunk (and is not marked damaged).
   */
  readBlob(sha256: string, start?: number, endInclusive?: number, length?: number): Readable;
  /**
   * Optional: the verified read of several whole blobs in order, each chunk lent to `onChunk` for
   * the call only (its buffer is reused), for consumers that hash (complete's re-hash). Same checks
   * and the same marking of damage as readBlob; one result per blob, its size or the
   * IntegrityError readBlob would have failed with. A backend without it is read with readBlob.
   * `wholeCheckedByCaller`: no SHA-256 of each blob against its name (a missing blob, a link or
   * not a file still fail as above), for a caller that checks the concatenation of the blobs
   * against a SHA-256 it holds and, on a mismatch, reads them again without the option to find
   * which blob is damaged (complete: ingest.ts). Never for bytes handed on to anyone.
   */
  scanBlobs?(sha256s: readonly string[], onChunk: (chunk: Buffer, blob: number) => void, options?: { wholeCheckedByCaller?: boolean }): Promise<ScannedBlob[]>;
  /** Names of the blobs held (for `bodycam server scrub`), streamed, in no particular order. */
  listBlobs(): AsyncIterable<string>;
  /** Bytes held in blobs, as far as the store knows without scanning. */
  usedBytes(): number;
  close(): Promise<void>;
}

/** The embedded default: blobs and recording records in one data dir (fsStore.ts). */
export interface Store extends BlobStore, RecordingStore {}
