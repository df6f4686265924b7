/**
 * The ingest rules of protocol v1, independent of HTTP: who may touch what,
 * when a manifest is the same recording or a conflict, which segments are
 * missing, and how a receipt is earned. Routes (routes.ts) only translate.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { IntegrityError } from '../errors.js';
import { merkleRoot } from '../protocol/merkle.js';
import { signObject, verifyObject } from '../protocol/signing.js';
import { PROTOCOL_VERSION, isValidId, type AttachmentEntry, type CreateRecordingResponse, type MissingAttachmentSegment, type PossessionAnswer, type PossessionChallenge, type Receipt, type RecordingListEntry, type RecordingManifest, type SegmentPlanEntry } from '../protocol/types.js';
import type { Logger } from '../log.js';
import type { CustodyEntry } from './custody/custodyLog.js';
import { checkAttachments, checkDockSignature, checkSegmentPlan, checkSidecarBytes, checkWellFormedText, planProblems, sameContent } from './manifestCheck.js';
import type { ServerMetrics } from './metrics.js';
import { ProblemError } from './problem.js';
import type { ServerKey } from './trust/serverKey.js';
import type { CustodyChain, DockKeyStore, PossessionStore, RecordingLocks, RecordingStore } from './state.js';
import type { BlobStore, ScannedBlob, StoredRecording } from './store/store.js';
import { drainVerified, isBlobIntegrityError } from './store/verifiedRead.js';
import { SERVER_ERROR_CODES } from './errorCodes.js';

export interface IngestLimits {
  /** Largest segment body accepted (default 64 MiB). */
  maxSegmentBytes: number;
  /** Largest manifest body accepted (default 4 MiB: room for a 1 MiB sidecar in base64 beside its parsed copy and a long plan). */
  maxManifestBytes: number;
  /** Store quota in bytes; above it writes get 507 and reads still work. */
  maxStoreBytes?: number;
  /** Whole-request limit (default 10 min). */
  requestTimeoutMs: number;
  /** A segment body that sends nothing for this long is abandoned (default 30 s). */
  bodyIdleTimeoutMs: number;
  /** In-flight segment uploads per dock before 429 (default 32). */
  maxConcurrentUploadsPerDock: number;
  /** Requests in flight on the whole server before 429 (default 256; /healthz, /metrics, /v1/keys not counted). */
  maxConcurrentRequests: number;
  /** Requests in flight for one dock before 429 (default 32). */
  maxConcurrentRequestsPerDock: number;
  /** JSON body bytes buffered across all requests before 429 (default 32 MiB). */
  maxManifestBytesInFlight: number;
  /** JSON body bytes buffered for one dock before 429 (default 8 MiB). */
  maxManifestBytesInFlightPerDock: number;
  /** A JSON body (manifest, challenge) not in full after this long is cut with 408 (default 2 min). */
  manifestTimeoutMs: number;
}

export const DEFAULT_LIMITS: IngestLimits = {
  maxSegmentBytes: 64 * 1024 * 1024,
  maxManifestBytes: 4 * 1024 * 1024,
  requestTimeoutMs: 10 * 60_000,
  bodyIdleTimeoutMs: 30_000,
  maxConcurrentUploadsPerDock: 32,
  maxConcurrentRequests: 256,
  maxConcurrentRequestsPerDock: 32,
  maxManifestBytesInFlight: 32 * 1024 * 1024,
  maxManifestBytesInFlightPerDock: 8 * 1024 * 1024,
  manifestTimeoutMs: 2 * 60_000,
};

/** Locks are per (dock, recording), like the records they guard. */
const lockKey = (dockId: string, id: string) => `${dockId}/${id}`;

const INDEX_TEXT = /^(0|[1-9][0-9]{0,8})$/;
/** Records a segment PUT keeps parsed (per dock and id, with their stamp); a dock uploads a few recordings at a time. */
const PUT_RECORD_CACHE = 64;
const RETRY_FULL_SECONDS = 60;

export interface SegmentUpload {
  digestHex: string | undefined;
  contentLength: number | undefined;
  body: Readable | AsyncIterable<Buffer | Uint8Array>;
}

export class IngestService {
  private readonly uploadsInFlight = new Map<string, number>();
  /** Blobs being written in this process, until their custody entry is appended (by SHA-256). */
  private readonly storing = new Map<string, Promise<unknown>>();
  private reservedBytes = 0;
  /** The record a segment PUT parsed, by lockKey, valid while the store's stamp of it is the same. */
  private readonly putRecords = new Map<string, { stamp: string; record: StoredRecording }>();

  constructor(private readonly deps: {
    store: BlobStore;
    recordings: RecordingStore;
    dockKeys: DockKeyStore;
    locks: RecordingLocks;
    custody: CustodyChain;
    serverKey: ServerKey;
    metrics: ServerMetrics;
    limits: IngestLimits;
    log: Logger;
    possession: PossessionStore;
  }) {}

  // ---- POST /v1/recordings ----------------------------------------------------

  /** `manifest` has passed the JSON Schema already. */
  async create(dockId: string, manifest: RecordingManifest): Promise<{ created: boolean; response: CreateRecordingResponse }> {
    if (manifest.dock.id !== dockId) throw new ProblemError('forbidden', `this token belongs to dock ${dockId}, the manifest is from dock ${manifest.dock.id}`);
    if (!isValidId(manifest.recordingId)) throw new ProblemError('invalid_id', 'recordingId is not a valid id');
    checkWellFormedText(manifest);
    checkDockSignature(manifest);
    checkSidecarBytes(manifest);
    checkSegmentPlan(manifest, this.deps.limits.maxSegmentBytes);
    checkAttachments(manifest, this.deps.limits.maxSegmentBytes);
    if (await this.deps.dockKeys.check(dockId, manifest.dock.publicKeyPem) === 'mismatch') {
      throw new ProblemError('dock_key_mismatch', `dock ${dockId} signed with a key other than the one pinned on first use; an operator must run \`bodycam server reset-dock-key\` if the dock was legitimately re-keyed`);
    }
    // Recordings are namespaced per dock (store.ts): the same id from another dock is another recording.
    return this.deps.locks.run(lockKey(dockId, manifest.recordingId), async () => {
      const existing = await this.deps.recordings.getRecording(dockId, manifest.recordingId);
      if (existing) return { created: false, response: await this.sameRecordingAgain(existing, manifest) };
      this.assertRoomFor(0);
      const record: StoredRecording = { manifest, createdAt: new Date().toISOString() };
      if (!(await this.deps.recordings.createRecording(dockId, manifest.recordingId, record))) {
        // Another server process sharing the data dir won the race.
        const winner = (await this.deps.recordings.getRecording(dockId, manifest.recordingId))!;
        return { created: false, response: await this.sameRecordingAgain(winner, manifest) };
      }
      await this.recordCreated(record, false);
      await this.expectPossession(manifest);
      return { created: true, response: { recordingId: manifest.recordingId, state: 'receiving', missing: await this.missing(manifest), ...(await this.missingOfAttachments(manifest)) } };
    });
  }

  /** A repeated create also closes a custody gap a crash left after the recording was stored. */
  private async sameRecordingAgain(existing: StoredRecording, manifest: RecordingManifest): Promise<CreateRecordingResponse> {
    const response = await this.sameOrConflict(existing, manifest);
    await this.recordCreated(existing, true);
    // Again (idempotent): a crash after the store write, or a recording created before expectations were kept.
    if (!existing.receipt) await this.expectPossession(existing.manifest);
    return response;
  }

  /**
   * The `recording-created` entry, unless the log has it. `reconciled`: the recording was found
   * stored without its entry (a crash between the store write and the append), so the entry says
   * so and gives the stored creation time; its own `time` is when the gap was closed.
   */
  private async recordCreated(record: StoredRecording, reconciled: boolean): Promise<void> {
    const { manifest } = record;
    await this.deps.custody.appendUnlessMentioned({ event: 'recording-created', recordingId: manifest.recordingId, dockId: manifest.dock.id, sha256: manifest.file.sha256 },
      { size: manifest.file.size, segmentCount: manifest.segments.length, merkleRoot: manifest.merkleRoot, ...(reconciled ? { reconciled: true, createdAt: record.createdAt } : {}) });
  }

  /**
   * The recording's `segment-stored` entry for a held blob, unless the log has it (see recordCreated).
   * `how`: `stored` these bytes were written now; `alreadyHeld` the segment arrived (or the dock proved
   * it holds it) while the server held the bytes already (stored for another recording, or by a
   * request a crash cut short); `reconciled` none of these: the receipt's check found it held without
   * an entry (a crash between the store write and the append).
   */
  private async recordSegment(id: string, dockId: string, segment: SegmentPlanEntry, how: 'stored' | 'alreadyHeld' | 'reconciled', attachment?: number): Promise<void> {
    await this.deps.custody.appendUnlessMentioned({ event: 'segment-stored', recordingId: id, dockId, sha256: segment.sha256 },
      { index: segment.index, length: segment.length, ...(attachment !== undefined ? { attachment } : {}), ...(how !== 'stored' ? { [how]: true } : {}) });
  }

  /** A held blob with no entry of this recording yet: wait for a write of it in progress here, whose entry comes first; then this recording's. */
  private async reconcileSegment(id: string, dockId: string, segment: SegmentPlanEntry, how: 'alreadyHeld' | 'reconciled', attachment?: number): Promise<void> {
    await this.storing.get(segment.sha256)?.catch(() => {});
    await this.recordSegment(id, dockId, segment, how, attachment);
  }

  private async sameOrConflict(existing: StoredRecording, manifest: RecordingManifest): Promise<CreateRecordingResponse> {
    if (!sameContent(existing.manifest, manifest)) {
      throw new ProblemError('conflict', 'a recording with this id exists with a different file SHA-256, size or segment plan; it is never overwritten',
        { extension: { recordingId: manifest.recordingId, existingSha256: existing.manifest.file.sha256 } });
    }
    return this.describe(existing);
  }

  // ---- PUT /v1/recordings/{id}/segments/{index} ------------------------------

  /**
   * A segment of the recording, or (with `attachmentText`) of one of its attachments: the same
   * rules, the same content-addressed blobs, verified on write and on every read.
   */
  async putSegment(dockId: string, id: string, indexText: string, upload: SegmentUpload, attachmentText?: string): Promise<{ created: boolean; segment: SegmentPlanEntry }> {
    const record = await this.ownedForPut(dockId, id);
    if (!INDEX_TEXT.test(indexText)) throw new ProblemError('invalid_id', 'segment index must be a non-negative decimal integer');
    // A dock sending an attachment the held manifest does not list has another plan: no retry brings them together.
    const attachment = attachmentText === undefined ? undefined : attachmentOf(record.manifest, attachmentText, 'attachment_out_of_plan');
    const plan = attachment ? attachment.segments : record.manifest.segments;
    const segment = plan[Number(indexText)];
    if (!segment) throw new ProblemError('segment_out_of_plan', `segment ${indexText} is outside the plan${attachment ? ` of attachment ${attachment.index}` : ''} (0..${plan.length - 1})`, { extension: { segmentCount: plan.length } });
    if (upload.digestHex === undefined) throw new ProblemError('missing_digest', 'send Content-Digest: sha-256=:<base64>: (RFC 9530)');
    if (upload.digestHex !== segment.sha256) {
      this.deps.metrics.digestFailure();
      throw new ProblemError('digest_mismatch', `Content-Digest differs from the plan's sha256 for segment ${segment.index}`, { extension: { index: segment.index } });
    }
    if (upload.contentLength !== undefined) {
      if (upload.contentLength > this.deps.limits.maxSegmentBytes) throw new ProblemError('payload_too_large', `segment bodies are limited to ${this.deps.limits.maxSegmentBytes} bytes`);
      if (upload.contentLength !== segment.length) throw new ProblemError('length_mismatch', `Content-Length ${upload.contentLength} differs from the plan's ${segment.length} bytes`, { extension: { index: segment.index, expectedLength: segment.length } });
    }
    // Held bytes are skipped only for a dock that has proved it holds them (possession.ts);
    // any other dock sends the body, which is verified and then dropped as a duplicate.
    // The held blob is re-read (verified) first: a damaged one is marked missing and these bytes replace it.
    if (await this.deps.possession.has(dockId, segment.sha256) && await this.deps.store.hasBlob(segment.sha256) && await this.blobIntact(segment.sha256, { recordingId: id, index: segment.index })) {
      await this.reconcileSegment(id, record.manifest.dock.id, segment, 'alreadyHeld', attachment?.index);
      return { created: false, segment };
    }

    const inFlight = this.uploadsInFlight.get(dockId) ?? 0;
    if (inFlight >= this.deps.limits.maxConcurrentUploadsPerDock) throw new ProblemError('rate_limited', `at most ${this.deps.limits.maxConcurrentUploadsPerDock} concurrent uploads per dock`, { retryAfter: 1 });
    this.assertRoomFor(segment.length);
    this.uploadsInFlight.set(dockId, inFlight + 1);
    this.reservedBytes += segment.length;
    const write = (async () => {
      const { created } = await this.deps.store.putBlob(segment.sha256, upload.body, segment.length, { onBytes: (n) => this.deps.metrics.segmentBytes(n) });
      if (created) await this.recordSegment(id, dockId, segment, 'stored', attachment?.index);
      return created;
    })();
    const firstWriter = !this.storing.has(segment.sha256);
    if (firstWriter) this.storing.set(segment.sha256, write);
    try {
      const created = await write;
      // Another writer published these bytes first (a concurrent PUT here, or one a crash cut short).
      if (!created) await this.reconcileSegment(id, dockId, segment, 'alreadyHeld', attachment?.index);
      await this.deps.possession.add(dockId, segment.sha256);
      return { created, segment };
    } catch (error) {
      if (error instanceof IntegrityError && error.code === SERVER_ERROR_CODES.bodyDigest) {
        this.deps.metrics.digestFailure();
        throw new ProblemError('digest_mismatch', error.message, { cause: error, extension: { index: segment.index } });
      }
      if (error instanceof IntegrityError && error.code === SERVER_ERROR_CODES.bodyLength) {
        throw new ProblemError('length_mismatch', error.message, { cause: error, extension: { index: segment.index, expectedLength: segment.length } });
      }
      throw error;
    } finally {
      if (firstWriter) this.storing.delete(segment.sha256);
      this.reservedBytes -= segment.length;
      const left = (this.uploadsInFlight.get(dockId) ?? 1) - 1;
      if (left === 0) this.uploadsInFlight.delete(dockId); else this.uploadsInFlight.set(dockId, left);
    }
  }

  private assertRoomFor(bytes: number): void {
    const quota = this.deps.limits.maxStoreBytes;
    if (quota === undefined) return;
    const used = this.deps.store.usedBytes() + this.reservedBytes;
    if (used + bytes > quota || used >= quota) {
      throw new ProblemError('insufficient_storage', `the store holds ${used} of its ${quota} bytes`, { retryAfter: RETRY_FULL_SECONDS });
    }
  }

  // ---- POST /v1/recordings/{id}/complete -------------------------------------

  async complete(dockId: string, id: string): Promise<Receipt> {
    await this.owned(dockId, id);
    return this.deps.locks.run(lockKey(dockId, id), async () => {
      const record = (await this.deps.recordings.getRecording(dockId, id))!;
      if (record.receipt) return record.receipt;
      const { manifest } = record;
      // One recording, one receipt: a failure (a full disk, a crash) between the custody entry of a
      // receipt and this record's update leaves the entry; the retry answers the receipt it records.
      const earlier = await this.deps.custody.findReceiptEntry(dockId, id);
      const again = earlier ? this.receiptFromEntry(earlier, manifest) : undefined;
      if (again) {
        await this.deps.recordings.updateRecording(dockId, id, { ...record, receipt: again, completedAt: again.receivedAt });
        this.deps.log.info('receipt issued again after a failure', { recordingId: id, dockId, custodySeq: again.custodySeq });
        return again;
      }
      const missing = await this.missing(manifest);
      const attachmentsMissing = await this.missingOfAttachments(manifest);
      if (missing.length || attachmentsMissing.missingAttachments?.length) {
        const what = [missing.length ? `segments ${missing.join(', ')}` : '', attachmentsMissing.missingAttachments?.length ? `${attachmentsMissing.missingAttachments.length} attachment segment(s)` : ''].filter(Boolean).join(' and ');
        throw new ProblemError('incomplete', `${what} are missing`, { extension: { missing, ...attachmentsMissing } });
      }
      if (!(await this.rehash(manifest)) || !(await this.rehashAttachments(manifest))) {
        // A blob failed its verified read and is now missing: the dock re-sends it, never a receipt on it.
        const now = await this.missing(manifest);
        throw new ProblemError('incomplete', `stored segments were damaged and are missing again; send them again`, { extension: { missing: now, ...(await this.missingOfAttachments(manifest)) } });
      }
      await this.deps.store.syncBlobs([...manifest.segments, ...(manifest.attachments ?? []).flatMap((a) => a.segments)].map((s) => s.sha256));
      // No receipt before the log mentions the recording and every one of its blobs: a crash may
      // have cut an earlier request between the store write and its custody entry.
      await this.recordCreated(record, true);
      const firstOfEachBlob = [...new Map(manifest.segments.map((s) => [s.sha256, s])).values()];
      await Promise.all(firstOfEachBlob.map((segment) => this.reconcileSegment(id, manifest.dock.id, segment, 'reconciled')));
      for (const attachment of manifest.attachments ?? []) {
        for (const segment of new Map(attachment.segments.map((x) => [x.sha256, x])).values()) await this.reconcileSegment(id, manifest.dock.id, segment, 'reconciled', attachment.index);
      }
      const serverKey = this.deps.serverKey;
      let receipt: Receipt | undefined;
      try {
        ({ value: receipt } = await this.deps.custody.append(
          { event: 'receipt-issued', recordingId: id, dockId, sha256: manifest.file.sha256 },
          (seq, prevHash) => {
            const signed = signObject(unsignedReceipt(manifest, dockId, new Date().toISOString(), serverKey.keyId, seq, prevHash), serverKey.privateKey) as Receipt;
            // Enough to give the same receipt again from the entry (with the stored manifest), should this update fail.
            return { extra: { receiptSignature: signed.signature, receivedAt: signed.receivedAt, serverKeyId: signed.serverKeyId, ...(earlier ? { supersedesSeq: earlier.seq } : {}) }, value: signed };
          }));
      } catch (error) {
        // A shared chain refuses a second receipt for one recording (another server issued it
        // meanwhile): answer that one.
        if ((error as { code?: unknown }).code !== 'E_RECEIPT_EXISTS') throw error;
        const entry = await this.deps.custody.findReceiptEntry(dockId, id);
        const theirs = entry ? this.receiptFromEntry(entry, manifest) : undefined;
        if (!theirs) throw error;
        await this.deps.recordings.updateRecording(dockId, id, { ...record, receipt: theirs, completedAt: theirs.receivedAt });
        return theirs;
      }
      const done: StoredRecording = { ...record, receipt: receipt!, completedAt: receipt!.receivedAt };
      await this.deps.recordings.updateRecording(dockId, id, done);
      await this.forgetPossession(dockId, manifest);
      this.deps.metrics.receiptIssued();
      this.deps.log.info('receipt issued', { recordingId: id, dockId, sha256: manifest.file.sha256, custodySeq: receipt!.custodySeq });
      return receipt!;
    });
  }

  /**
   * The receipt a `receipt-issued` entry records, rebuilt from the entry and the manifest, if its
   * signature verifies with this server's key (an entry written before entries carried
   * receivedAt and serverKeyId cannot be rebuilt: a new receipt supersedes it).
   */
  private receiptFromEntry(entry: CustodyEntry, manifest: RecordingManifest): Receipt | undefined {
    const { receivedAt, serverKeyId, receiptSignature } = entry as { receivedAt?: unknown; serverKeyId?: unknown; receiptSignature?: unknown };
    if (typeof receivedAt !== 'string' || typeof serverKeyId !== 'string' || typeof receiptSignature !== 'string') return undefined;
    if (entry.sha256 !== manifest.file.sha256) return undefined;
    const receipt = { ...unsignedReceipt(manifest, entry.dockId, receivedAt, serverKeyId, entry.seq, entry.prev), signature: receiptSignature } as Receipt;
    if (serverKeyId !== this.deps.serverKey.keyId || !verifyObject(receipt as unknown as Record<string, unknown>, this.deps.serverKey.publicKeyPem)) return undefined;
    return receipt;
  }

  /**
   * The stored blobs of the recording, in order, hash to the manifest's file SHA-256 and size, and
   * the plan's hashes give its Merkle root; false when a blob's read found it damaged or gone (it
   * is marked missing: the dock sends it again, never a receipt on it).
   */
  private async rehash(manifest: RecordingManifest): Promise<boolean> {
    const held = await this.storedWholeMatches(manifest.segments, manifest.file, { recordingId: manifest.recordingId }, 'the assembled file');
    if (!held) return false;
    // Every blob holds the bytes it was verified as when it was stored (storedWholeMatches), so
    // each segment's bytes hash to the plan's SHA-256: the root of the plan's hashes is theirs.
    if (merkleRoot(manifest.segments.map((s) => s.sha256)) !== manifest.merkleRoot) throw new ProblemError('whole_digest_mismatch', 'the stored segments do not give the manifest Merkle root');
    return true;
  }

  /** Each attachment's stored bytes are its manifest size and SHA-256 (false: a blob was damaged and is now missing). */
  private async rehashAttachments(manifest: RecordingManifest): Promise<boolean> {
    let damaged = false;
    for (const attachment of manifest.attachments ?? []) {
      const held = await this.storedWholeMatches(attachment.segments, attachment, { recordingId: manifest.recordingId, attachment: attachment.index }, `attachment ${attachment.index}`);
      if (!held) damaged = true;
    }
    return !damaged;
  }

  /**
   * Whether the bytes a plan tiles, as the store holds them now, are `expected` (size, SHA-256):
   * `complete`'s proof that a receipt covers what is held, in one SHA-256 pass. Why one pass is
   * enough: every blob was stored only after its bytes hashed to its name (putBlob), and these
   * bytes, in plan order, hash to the manifest's file SHA-256; a blob changed at rest since its
   * store (a flipped byte, truncated, replaced) makes that whole differ, whatever the blob (SHA-256
   * is collision resistant). Only then are the blobs read again with each one checked against its
   * name, which finds and marks the damaged ones (false: they are missing) or, if every blob is
   * intact, shows that the plan itself does not give the file (whole_digest_mismatch). The reads
   * are verified either way: against the whole, or blob by blob.
   */
  private async storedWholeMatches(segments: readonly SegmentPlanEntry[], expected: { sha256: string; size: number }, context: Record<string, unknown>, what: string): Promise<boolean> {
    const quick = await this.hashStored(segments, context, { wholeCheckedByCaller: true });
    if (quick && !quick.wrongLength && quick.size === expected.size && quick.sha256 === expected.sha256) return true;
    const checked = await this.hashStored(segments, context);
    if (!checked) return false;
    // A plan may name a held blob with a length it does not have: the receipt's size and the
    // served content (cut to the planned lengths) would then disagree with the signed hash.
    if (checked.wrongLength) throw new ProblemError('whole_digest_mismatch', `segment ${checked.wrongLength.index}${context.attachment !== undefined ? ` of attachment ${String(context.attachment)}` : ''} is ${checked.wrongLength.size} bytes in the store, the plan says ${checked.wrongLength.length}`);
    if (checked.size !== expected.size) throw new ProblemError('whole_digest_mismatch', `${what} is ${checked.size} bytes in the store, the manifest says ${expected.size}`);
    if (checked.sha256 !== expected.sha256) throw new ProblemError('whole_digest_mismatch', `${what} hashes to ${checked.sha256}, the manifest says ${expected.sha256}`);
    // The quick pass saw other bytes than this checked one (a repair replaced a blob in between).
    return true;
  }

  /**
   * SHA-256 (after `prefix`, a nonce for possession) and size of the bytes a plan tiles, read from
   * the store in order, with the first blob whose length is not the planned one; undefined when a
   * blob failed its read (each damaged one is marked missing and, unless `wholeCheckedByCaller`,
   * counted and logged; the pass goes on, so every damaged blob is found in one go).
   */
  private async hashStored(segments: readonly SegmentPlanEntry[], context: Record<string, unknown>, options: { prefix?: Buffer; wholeCheckedByCaller?: boolean } = {}): Promise<{ sha256: string; size: number; wrongLength?: { index: number; size: number; length: number } } | undefined> {
    const hash = createHash('sha256');
    if (options.prefix) hash.update(options.prefix);
    const results = await this.scanBlobs(segments.map((s) => s.sha256), (chunk) => { hash.update(chunk); }, options.wholeCheckedByCaller);
    let size = 0;
    let damaged = false;
    let wrongLength: { index: number; size: number; length: number } | undefined;
    for (const [i, segment] of segments.entries()) {
      const result = results[i]!;
      if (result.error) {
        damaged = true;
        if (options.wholeCheckedByCaller) break;
        this.noteDamage(result.error, { during: 'complete', ...context, index: segment.index, sha256: segment.sha256 });
        continue;
      }
      if (result.size !== segment.length) wrongLength ??= { index: segment.index, size: result.size, length: segment.length };
      size += result.size;
    }
    if (damaged) return undefined;
    return { sha256: hash.digest('hex'), size, ...(wrongLength ? { wrongLength } : {}) };
  }

  /**
   * Reads of whole blobs in order, each chunk lent to `onChunk` (for hashing): the store's
   * scanBlobs where it has one (no memory allocated per chunk), else its verified readBlob one
   * after the other (which checks each blob whatever `wholeCheckedByCaller` says). One result per
   * blob: its size, or the integrity error its read failed with (marked missing).
   */
  private async scanBlobs(sha256s: readonly string[], onChunk: (chunk: Buffer, blob: number) => void, wholeCheckedByCaller = false): Promise<ScannedBlob[]> {
    const store = this.deps.store;
    if (store.scanBlobs) return store.scanBlobs(sha256s, onChunk, { wholeCheckedByCaller });
    const results: ScannedBlob[] = [];
    for (const [blob, sha256] of sha256s.entries()) {
      let size = 0;
      try {
        for await (const chunk of store.readBlob(sha256) as AsyncIterable<Buffer>) {
          onChunk(chunk, blob);
          size += chunk.length;
        }
        results.push({ size });
      } catch (error) {
        if (!isBlobIntegrityError(error)) throw error;
        results.push({ error });
      }
    }
    return results;
  }

  /** Count and log damage a verified read found (the store has marked the blob missing already). */
  private noteDamage(error: unknown, context: Record<string, unknown>): void {
    this.deps.metrics.blobDamaged();
    this.deps.log.error('stored blob failed its verified read; marked missing until a verified upload replaces it', { ...context, err: error });
  }

  /** Whether a held blob reads back intact (a full verified read); a damaged one is marked missing on the way. */
  private async blobIntact(sha256: string, context: Record<string, unknown>): Promise<boolean> {
    try {
      await drainVerified(this.deps.store.readBlob(sha256));
      return true;
    } catch (error) {
      if (!isBlobIntegrityError(error)) throw error;
      this.noteDamage(error, { ...context, sha256, during: 'upload' });
      return false;
    }
  }

  // ---- POST /v1/recordings/{id}/possession -------------------------------------

  /**
   * Proof of possession (docs/protocol.md): per challenged segment, SHA-256(nonce ‖ the segment's
   * bytes as stored), read through the store's verified read; with `sidecar`, the same over the
   * stored sidecar bytes. Only a complete recording is answered. A blob that cannot be read, or
   * whose length differs from the plan, fails the request: the dock then keeps the camera's file.
   */
  /**
   * The stored record is read back too, not only the blobs: its segment plan must still give the
   * Merkle root and size that the server's own signed receipt names, and tile the file. Every
   * blob is verified against its SHA-256 as it streams, so a record edited at rest (segments
   * swapped, a hash replaced) can never make a complete answer of other bytes.
   */
  private assertRecordMatchesReceipt(dockId: string, id: string, record: StoredRecording): void {
    const { manifest } = record;
    const receipt = record.receipt!;
    const problems: string[] = [];
    if (!verifyObject(receipt as unknown as Record<string, unknown>, this.deps.serverKey.publicKeyPem)) problems.push('its receipt does not verify with the server key');
    if (receipt.recordingId !== id || receipt.dockId !== dockId) problems.push('its receipt is for another recording');
    if (receipt.sha256 !== manifest.file.sha256 || receipt.size !== manifest.file.size) problems.push('its file hash or size differs from the receipt');
    if (receipt.segmentCount !== manifest.segments.length || receipt.merkleRoot !== manifest.merkleRoot) problems.push('its segment count or Merkle root differs from the receipt');
    if (merkleRoot(manifest.segments.map((s) => s.sha256)) !== manifest.merkleRoot) problems.push('its segments do not give its Merkle root');
    let offset = 0;
    manifest.segments.forEach((s, i) => { if (s.index !== i || s.offset !== offset) problems.push(`segment ${i} is out of place`); offset += s.length; });
    if (offset !== manifest.file.size) problems.push('its segments do not add up to the file size');
    if (canonicalAttachments(receipt.attachments) !== canonicalAttachments(receiptAttachmentsOf(manifest))) problems.push('its attachments differ from the receipt');
    for (const a of manifest.attachments ?? []) if (planProblems(a.segments, a.size, Number.MAX_SAFE_INTEGER).length) problems.push(`attachment ${a.index}'s segments do not tile it`);
    if (problems.length === 0) return;
    this.deps.metrics.blobDamaged();
    this.deps.log.error('stored recording record damaged: not served', { recordingId: id, dockId, problems });
    throw new ProblemError('record_damaged', `the stored record of ${id} was altered: ${problems.slice(0, 3).join('; ')}; nothing is served from it`);
  }

  async possess(dockId: string, id: string, challenge: PossessionChallenge): Promise<PossessionAnswer> {
    const record = await this.owned(dockId, id);
    if (!record.receipt) throw new ProblemError('incomplete', 'possession is proved for complete recordings only', { extension: { missing: await this.missing(record.manifest) } });
    this.assertRecordMatchesReceipt(dockId, id, record);
    const { manifest } = record;
    const nonce = Buffer.from(challenge.nonce, 'hex');
    const answers: PossessionAnswer['answers'] = [];
    const challenged = challenge.segments.map((index) => {
      const segment = manifest.segments[index];
      if (!segment || segment.index !== index) throw new ProblemError('segment_out_of_plan', `segment ${index} is not in the plan of ${id} (0..${manifest.segments.length - 1})`);
      return segment;
    });
    const hashes = challenged.map(() => createHash('sha256').update(nonce));
    const results = await this.scanBlobs(challenged.map((s) => s.sha256), (chunk, blob) => { hashes[blob]!.update(chunk); });
    for (const [i, segment] of challenged.entries()) {
      const result = results[i]!;
      if (result.error) {
        // Damaged bytes prove nothing: no answer (the dock keeps the camera's file), the blob is marked missing.
        this.noteDamage(result.error, { recordingId: id, index: segment.index, sha256: segment.sha256, during: 'possession' });
        throw new ProblemError('blob_damaged', `segment ${segment.index} of ${id} failed its integrity check; possession not proved`, { cause: result.error, extension: { index: segment.index } });
      }
      if (result.size !== segment.length) throw new IntegrityError(SERVER_ERROR_CODES.storedLength, `segment ${segment.index} of ${id} is ${result.size} bytes in the store, the plan says ${segment.length}`);
      answers.push({ index: segment.index, sha256: hashes[i]!.digest('hex') });
    }
    let sidecarSha256: string | undefined;
    if (challenge.sidecar) {
      if (manifest.device.sidecarBase64 === undefined) throw new ProblemError('bad_request', `${id} was stored without sidecar bytes`);
      sidecarSha256 = createHash('sha256').update(nonce).update(Buffer.from(manifest.device.sidecarBase64, 'base64')).digest('hex');
    }
    let attachments: PossessionAnswer['attachments'];
    if (challenge.attachments) {
      attachments = [];
      for (const attachment of manifest.attachments ?? []) {
        const result = await this.hashStored(attachment.segments, { recordingId: id, attachment: attachment.index, during: 'possession' }, { prefix: nonce });
        if (!result) throw new ProblemError('blob_damaged', `attachment ${attachment.index} of ${id} failed its integrity check; possession not proved`, { extension: { attachment: attachment.index } });
        if (result.wrongLength) throw new ProblemError('whole_digest_mismatch', `segment ${result.wrongLength.index} of attachment ${attachment.index} is ${result.wrongLength.size} bytes in the store, the plan says ${result.wrongLength.length}`);
        if (result.size !== attachment.size) throw new IntegrityError(SERVER_ERROR_CODES.storedLength, `attachment ${attachment.index} of ${id} is ${result.size} bytes in the store, the manifest says ${attachment.size}`);
        attachments.push({ index: attachment.index, sha256: result.sha256 });
      }
    }
    this.deps.log.info('possession proved', { recordingId: id, dockId, segments: challenge.segments, sidecar: Boolean(challenge.sidecar), attachments: attachments?.length ?? 0 });
    return { recordingId: id, nonce: challenge.nonce, answers, ...(sidecarSha256 ? { sidecarSha256 } : {}), ...(attachments ? { attachments } : {}) };
  }

  // ---- reads ------------------------------------------------------------------

  async get(dockId: string, id: string): Promise<CreateRecordingResponse & { manifest: RecordingManifest; createdAt: string; completedAt?: string }> {
    const record = await this.owned(dockId, id);
    return { ...(await this.describe(record)), manifest: record.manifest, createdAt: record.createdAt, ...(record.completedAt ? { completedAt: record.completedAt } : {}) };
  }

  async list(dockId: string, filter: { device?: string; state?: string }): Promise<RecordingListEntry[]> {
    const entries: RecordingListEntry[] = [];
    for (const id of await this.deps.recordings.listRecordingIds(dockId)) {
      const record = await this.deps.recordings.getRecording(dockId, id);
      if (!record || record.manifest.dock.id !== dockId) continue;
      const { manifest } = record;
      const state = record.receipt ? 'complete' : 'receiving';
      if (filter.device !== undefined && manifest.device.serial !== filter.device) continue;
      if (filter.state !== undefined && state !== filter.state) continue;
      const missing = record.receipt ? [] : await this.missing(manifest);
      entries.push({
        id, state, deviceSerial: manifest.device.serial, dockId: manifest.dock.id, fileName: manifest.file.name,
        size: manifest.file.size, sha256: manifest.file.sha256, segmentCount: manifest.segments.length,
        segmentsReceived: manifest.segments.length - missing.length, integrity: manifest.integrity.status,
        createdAt: record.createdAt, ...(record.completedAt ? { completedAt: record.completedAt } : {}),
      });
    }
    return entries;
  }

  /** The original bytes [start, end] (inclusive), streamed from the segment blobs in order. */
  async content(dockId: string, id: string): Promise<{ manifest: RecordingManifest; open: (start: number, end: number) => Readable }> {
    const record = await this.owned(dockId, id);
    if (!record.receipt) throw new ProblemError('incomplete', 'content is served once the recording is complete (has a receipt)', { extension: { missing: await this.missing(record.manifest) } });
    this.assertRecordMatchesReceipt(dockId, id, record);
    return { manifest: record.manifest, open: this.planReader(id, record.manifest.segments, '') };
  }

  /** An attachment's bytes, byte-exact (GET /v1/recordings/{id}/attachments/{a}), verified as they stream. */
  async attachmentContent(dockId: string, id: string, attachmentText: string): Promise<{ attachment: AttachmentEntry; open: (start: number, end: number) => Readable }> {
    const record = await this.owned(dockId, id);
    const attachment = attachmentOf(record.manifest, attachmentText);
    if (!record.receipt) throw new ProblemError('incomplete', 'attachments are served once the recording is complete (has a receipt)', { extension: await this.missingOfAttachments(record.manifest) });
    this.assertRecordMatchesReceipt(dockId, id, record);
    return { attachment, open: this.planReader(id, attachment.segments, ` of attachment ${attachment.index}`) };
  }

  /** Bytes [start, end] of the file a plan tiles, each blob through the store's verified read. */
  private planReader(id: string, segments: readonly SegmentPlanEntry[], what: string): (start: number, end: number) => Readable {
    const store = this.deps.store;
    const noteDamage = (error: unknown, context: Record<string, unknown>) => this.noteDamage(error, context);
    // Each segment comes through the store's verified read: a damaged blob destroys this stream
    // before its last chunk, so the HTTP response is cut short, never completed with wrong bytes.
    return (start: number, end: number) => Readable.from((async function* () {
      for (const segment of segments) {
        const segEnd = segment.offset + segment.length - 1;
        if (segEnd < start || segment.offset > end) continue;
        const from = Math.max(start, segment.offset) - segment.offset;
        const to = Math.min(end, segEnd) - segment.offset;
        try {
          // The planned length too: an intact blob sliced by a length it does not have would serve other bytes.
          yield* store.readBlob(segment.sha256, from, to, segment.length) as AsyncIterable<Buffer>;
        } catch (error) {
          if (error instanceof IntegrityError && error.code === SERVER_ERROR_CODES.storedLength) {
            throw new ProblemError('record_damaged', `segment ${segment.index}${what} of ${id}: ${error.message}; the stored record was altered, nothing more is served from it`, { cause: error });
          }
          if (isBlobIntegrityError(error)) {
            noteDamage(error, { recordingId: id, index: segment.index, sha256: segment.sha256, during: 'content' });
            throw new ProblemError('blob_damaged', `segment ${segment.index}${what} of ${id} failed its integrity check; it was not served and is marked missing`, { cause: error, extension: { index: segment.index } });
          }
          throw error;
        }
      }
    })(), { objectMode: false });
  }

  // ---- helpers ----------------------------------------------------------------

  private async owned(dockId: string, id: string): Promise<StoredRecording> {
    if (!isValidId(id)) throw new ProblemError('invalid_id', 'recording id must match [A-Za-z0-9][A-Za-z0-9._-]{0,127} without ".."');
    // Only this dock's namespace is looked in: another dock's recording of this id is not found, not forbidden.
    const record = await this.deps.recordings.getRecording(dockId, id);
    if (!record) throw new ProblemError('not_found', `dock ${dockId} has no recording ${id}`);
    return record;
  }

  /**
   * owned() for a segment PUT, which reads only the manifest: the record parsed last time while the
   * store's stamp of it is unchanged (the stamp is taken before the read, so a record replaced
   * meanwhile is read again next time). The record on disk stays the truth: every replace or
   * alteration changes the stamp; a store without stamps is read every time.
   */
  private async ownedForPut(dockId: string, id: string): Promise<StoredRecording> {
    const stampOf = this.deps.recordings.recordingStamp;
    if (!stampOf || !isValidId(id)) return this.owned(dockId, id);
    const key = lockKey(dockId, id);
    const stamp = await stampOf.call(this.deps.recordings, dockId, id);
    const cached = this.putRecords.get(key);
    if (stamp !== undefined && cached?.stamp === stamp) return cached.record;
    this.putRecords.delete(key);
    const record = await this.owned(dockId, id);
    if (stamp !== undefined) {
      if (this.putRecords.size >= PUT_RECORD_CACHE) this.putRecords.delete(this.putRecords.keys().next().value!);
      // Without the sidecar (up to 1 MiB parsed, and again as base64): a PUT reads only the plan, and 64 kept whole could be ~200 MB.
      const { sidecar: _sidecar, sidecarBase64: _bytes, ...device } = record.manifest.device;
      this.putRecords.set(key, { stamp, record: { ...record, manifest: { ...record.manifest, device } } });
    }
    return record;
  }

  private async describe(record: StoredRecording): Promise<CreateRecordingResponse> {
    return {
      recordingId: record.manifest.recordingId,
      state: record.receipt ? 'complete' : 'receiving',
      // For a complete recording too: a blob found damaged since is listed until it is sent again.
      missing: await this.missing(record.manifest, record.receipt !== undefined),
      ...(await this.missingOfAttachments(record.manifest, record.receipt !== undefined)),
      ...(record.receipt ? { receipt: record.receipt } : {}),
    };
  }

  /** Every blob hash of a recording's plan and its attachments'. */
  private static planHashes(manifest: RecordingManifest): string[] {
    return [...manifest.segments, ...(manifest.attachments ?? []).flatMap((a) => a.segments)].map((s) => s.sha256);
  }

  /**
   * A receiving recording's hashes, noted so that another recording of the dock with some of the
   * same bytes (a shared attachment, a copied file) completing first does not forget that the dock
   * holds them: this one would then miss segments the server holds, and the dock send them again.
   * A failure here only risks that re-send (the safe direction).
   */
  private async expectPossession(manifest: RecordingManifest): Promise<void> {
    await this.deps.possession.expect(manifest.dock.id, manifest.recordingId, IngestService.planHashes(manifest)).catch((error: unknown) => {
      this.deps.log.warn('possession expectations of a receiving recording not noted (a segment it shares may be sent again)', { recordingId: manifest.recordingId, err: error });
    });
  }

  /**
   * The possession rows of a recording that has its receipt are pruned (PossessionStore.forget),
   * except those another receiving recording of the dock expects: the receipt itself proves the
   * dock held every segment, so the table stays bounded by what is in flight. A later recording of
   * the same dock with the same bytes sends them once more (video never repeats in practice); a
   * failure here only leaves rows behind.
   */
  private async forgetPossession(dockId: string, manifest: RecordingManifest): Promise<void> {
    await this.deps.possession.forget(dockId, manifest.recordingId, IngestService.planHashes(manifest)).catch((error: unknown) => {
      this.deps.log.warn('possession rows of a completed recording not pruned (kept; harmless)', { dockId, recordingId: manifest.recordingId, err: error });
    });
  }

  /**
   * Indexes whose bytes the server does not hold for the recording's dock. Content-addressed:
   * bytes this dock proved once count for all its recordings; another dock's bytes do not.
   * `complete`: the recording has its receipt, which proves possession (its rows are pruned):
   * only the store is asked.
   */
  async missing(manifest: RecordingManifest, complete = false): Promise<number[]> {
    const missing: number[] = [];
    const batch = 64;
    const dockId = manifest.dock.id;
    for (let i = 0; i < manifest.segments.length; i += batch) {
      const slice = manifest.segments.slice(i, i + batch);
      const held = await Promise.all(slice.map(async (s) => (complete || await this.deps.possession.has(dockId, s.sha256)) && this.deps.store.hasBlob(s.sha256)));
      held.forEach((h, j) => { if (!h) missing.push(slice[j]!.index); });
    }
    return missing;
  }

  /** `{ missingAttachments }` for a manifest with attachments (held per dock, as segments), else `{}`. */
  async missingOfAttachments(manifest: RecordingManifest, complete = false): Promise<{ missingAttachments?: MissingAttachmentSegment[] }> {
    if (!manifest.attachments?.length) return {};
    const dockId = manifest.dock.id;
    const missingAttachments: MissingAttachmentSegment[] = [];
    for (const attachment of manifest.attachments) {
      for (const segment of attachment.segments) {
        if (!((complete || await this.deps.possession.has(dockId, segment.sha256)) && await this.deps.store.hasBlob(segment.sha256))) missingAttachments.push({ attachment: attachment.index, index: segment.index });
      }
    }
    return { missingAttachments };
  }
}

/** The attachment `{a}` of a URL, or the problem `missing` (not_found for a read, attachment_out_of_plan for an upload). */
function attachmentOf(manifest: RecordingManifest, text: string, missing: 'not_found' | 'attachment_out_of_plan' = 'not_found'): AttachmentEntry {
  const attachment = INDEX_TEXT.test(text) ? manifest.attachments?.[Number(text)] : undefined;
  if (!attachment) throw new ProblemError(missing, `recording ${manifest.recordingId} has no attachment ${text} (it has ${manifest.attachments?.length ?? 0})`);
  return attachment;
}

/** What a receipt says of the attachments (absent when the manifest has none). */
function receiptAttachmentsOf(manifest: RecordingManifest): Receipt['attachments'] {
  return manifest.attachments?.length ? manifest.attachments.map((a) => ({ name: a.name, size: a.size, sha256: a.sha256 })) : undefined;
}

function canonicalAttachments(list: Receipt['attachments']): string {
  return JSON.stringify((list ?? []).map((a) => [a.name, a.size, a.sha256]));
}

/** The fields of a receipt, in the order they are signed and sent. */
function unsignedReceipt(manifest: RecordingManifest, dockId: string, receivedAt: string, serverKeyId: string, custodySeq: number, custodyPrevHash: string) {
  return {
    protocol: PROTOCOL_VERSION, type: 'receipt' as const, recordingId: manifest.recordingId, dockId,
    sha256: manifest.file.sha256, size: manifest.file.size, segmentCount: manifest.segments.length,
    merkleRoot: manifest.merkleRoot, receivedAt, serverKeyId, custodySeq, custodyPrevHash,
    ...(receiptAttachmentsOf(manifest) ? { attachments: receiptAttachmentsOf(manifest) } : {}),
  };
}
