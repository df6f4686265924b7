/**
 * The steps a recording walks, one function per state: probe, plan, hash
 * (+ manifest), upload (+ receipt), wipe. Each step commits its transition to
 * the journal before the action it allows, so a crash anywhere resumes from
 * the last committed state.
 */
import { lstat, open } from 'node:fs/promises';
import { dirname, extname, join } from 'node:path';
import { EnvironmentError, IntegrityError, InputError, isFileGone } from '../errors.js';
import type { Logger } from '../log.js';
import { fingerprintFromSamples, streamFingerprints, type FingerprintResult } from '../media/fingerprint.js';
import { mp4StreamPlan, type StreamPlan } from '../media/mp4Samples.js';
import { mediaSummary, probe } from '../media/probe.js';
import { attachmentKindOf, isMediaExtension } from '../protocol/fileKinds.js';
import { keyIdOf, signObject } from '../protocol/signing.js';
import { recordingSourceOf } from '../protocol/cardLayouts.js';
import { ATTACHMENTS_MAX, PROTOCOL_VERSION, type AttachmentEntry, type IntegrityStatus, type MissingAttachmentSegment, type MediaSummary, type Receipt, type RecordingManifest, type SegmentPlanEntry } from '../protocol/types.js';
import { ATTENTION_CODES, type DockAttention } from './attention.js';
import type { IngestClient } from './client.js';
import type { DockConfig } from './config.js';
import { sanitizeId } from './config.js';
import { FileGrowingError, NotThisFileError, PausedError, ProblemError, QUARANTINE_CODES, TransportError } from './errors.js';
import { hashFileOffThread } from './hasher.js';
import { checkIntegrity, isFlagged } from './integrity.js';
import type { Journal, RecordingRow, StatSnapshot } from './journal.js';
import { UNKNOWN_BAY, type DockMetrics } from './metrics.js';
import { fixedPlan, planSegments } from './planner.js';
import type { PrioritySlots, Priority } from './slots.js';
import { clockOffsetMsOf, NO_SERIAL, type CompanionFile, type DeviceInfo } from '../protocol/cameraStorage/index.js';
import { readSidecar } from './storage.js';
import { receiptExpectationOf, sha256Of, verifyReceipt, wipeRecording } from './wipe.js';
import { UNSENT_STATES } from './states.js';
import { rewrittenSinceHash } from './identity.js';
import { resendLostParts } from './resend.js';

export { verifyReceipt } from './wipe.js';

/** Where a recording is right now (it moves with its camera from bay to bay). */
export interface Location {
  bay: string;
  cameraRoot: string;
  absPath: string;
  sidecarPath?: string;
  /** Files beside the recording that travel with it as attachments (the scan's listing). */
  companions?: CompanionFile[];
  device?: DeviceInfo;
  deviceProblem?: string;
}

export interface StepContext {
  config: DockConfig;
  journal: Journal;
  client: IngestClient;
  slots: PrioritySlots;
  metrics: DockMetrics;
  logger: Logger;
  dockKey: { publicKeyPem: string; privateKeyPem: string };
  serverKey: (signal: AbortSignal) => Promise<string>;
  /** The server key confirmed out of band (serverKey file or trust-server), or undefined: no wipe then. */
  trustedServerKey: () => string | undefined;
  /** True once the agent is stopping: no new segment is started. */
  stopping: () => boolean;
  /** Dock-level problems shown at once (src/dock/attention.ts): a receipt signed by another key raises one, a verified one clears it. */
  attention?: DockAttention;
}

/**
 * One recording per file on the card (docs/dock.md, "Identity"): the row's own uid is part of
 * the id, so two files with the same bytes (two names, two bays, two cameras) are two
 * recordings, each with its own receipt; the server still stores the bytes once.
 */
export function recordingIdOf(serial: string, sha256: string, rowUid: string): string {
  return `${sanitizeId(serial).slice(0, 60)}-${sha256.slice(0, 32)}-${rowUid.slice(0, 16)}`;
}

export function priorityOf(row: RecordingRow): Priority {
  const recordedAt = typeof row.info.recordedAt === 'number' ? row.info.recordedAt : row.mtimeMs;
  return [row.critical ? 0 : 1, recordedAt];
}

/** The file must still be what was detected; a vanished file pauses the job (camera undocked). */
async function checkUnchanged(row: RecordingRow, location: Location): Promise<void> {
  let stats;
  try {
    stats = await lstat(location.absPath);
  } catch (error) {
    if (isFileGone(error)) throw new PausedError(`${row.fileName} is not on the camera right now`, { cause: error });
    throw error;
  }
  if (!stats.isFile()) throw new InputError('E_FILE_REPLACED', `${row.relPath} is no longer a regular file`);
  if (stats.size !== row.size && !location.sidecarPath && UNSENT_STATES.includes(row.state)) {
    throw new FileGrowingError(`${row.relPath} changed size after it had settled (${row.size} → ${stats.size} bytes): waiting for it to settle again`);
  }
  // A camera without a serial, and the file there is on another device (another card mounted in
  // the bay): it may be another such camera's file, for the scan to tell (identity.ts matchRow).
  if (row.serial === NO_SERIAL && row.stat !== null && stats.dev !== row.stat.dev && (stats.size !== row.size || rewrittenSinceHash(row, stats))) {
    throw new NotThisFileError(`${row.relPath} holds other bytes than the ones hashed: another camera without a serial may be docked; the scan compares the file`);
  }
  if (stats.size !== row.size) throw new InputError('E_FILE_CHANGED', `${row.relPath} changed size after detection (${row.size} → ${stats.size} bytes)`);
  // Replaced or rewritten in place with its size kept: the next segment would be read from other
  // bytes (the server answers digest_mismatch, a transient problem, every attempt). The scan's rule.
  if (rewrittenSinceHash(row, stats)) throw new InputError('E_FILE_CHANGED', `${row.relPath} was rewritten on the camera after it was hashed (inode, mtime or ctime changed): the bytes now on the card are a new version`);
}

/** Subtitle and playlist text ffprobe reads as a stream: left to ffprobe. */
const TEXT_MEDIA_EXTENSIONS = new Set(['.srt', '.vtt', '.ass', '.ssa', '.sub', '.m3u', '.m3u8', '.sdp']);

/**
 * A cheap reject before ffprobe (docs/dock.md, "Fairness"): no container or codec ffprobe reads as
 * evidence is plain text, and every one has a NUL byte in its first 4 KiB. Junk cards are mostly
 * text (logs, notes, config): rejecting those without a process start keeps the prepare slots free.
 */
export async function looksLikePlainText(absPath: string, fileName: string): Promise<boolean> {
  if (TEXT_MEDIA_EXTENSIONS.has(extname(fileName).toLowerCase())) return false;
  const handle = await open(absPath, 'r');
  try {
    const buffer = Buffer.alloc(4096);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    if (bytesRead === 0) return false;
    const head = buffer.subarray(0, bytesRead);
    if (head.includes(0)) return false;
    // Valid UTF-8 (a multi-byte character cut at the 4 KiB edge is allowed).
    try { new TextDecoder('utf-8', { fatal: true }).decode(head, { stream: true }); } catch { return false; }
    return true;
  } finally {
    await handle.close();
  }
}

/**
 * ffprobe's last words on a file it could not read, for the manifest and the bay: its last
 * distinct lines (the reason, e.g. "moov atom not found", comes before the generic "Invalid
 * data"), without the demuxer's address prefix and with the dock's path cut to the file name.
 * Bounded (the schema allows 2048 characters).
 */
function probeWords(error: unknown, absPath: string, fileName: string): string {
  const tail = (error as { stderrTail?: string }).stderrTail;
  const lines = (tail ?? '').split('\n').map((l) => l.replace(/^\[[^\]]*@ 0x[0-9a-f]+\]\s*/i, '').split(absPath).join(fileName).trim()).filter(Boolean);
  const distinct = [...new Set(lines)].slice(-3);
  return (distinct.length ? distinct.join('; ') : (error as Error).message.split(absPath).join(fileName)).slice(0, 1024);
}

export async function stepProbe(ctx: StepContext, row: RecordingRow, location: Location, signal: AbortSignal): Promise<RecordingRow> {
  await checkUnchanged(row, location);
  // Junk is quarantined without an fsync of its own (Journal.transitionLazy): a card of thousands
  // of junk files must not cost thousands of fsyncs on the event loop other bays share.
  if (row.size === 0) return ctx.journal.transitionLazy(row.key, 'quarantined', { reason: 'zero-byte file: nothing to ingest', reasonCode: QUARANTINE_CODES.zeroByte });
  const hasSidecar = Boolean(location.sidecarPath);
  // A recording by its name (or by its camera's signature) is evidence whatever ffprobe says:
  // uploaded as opaque bytes, flagged `unreadable` with ffprobe's words, never wiped (docs/dock.md).
  const evidenceByName = hasSidecar || isMediaExtension(row.fileName);
  const opaque = (why: string): RecordingRow => ctx.journal.transition(row.key, 'probed', { info: { unreadable: why, hasSidecar } });
  if (!hasSidecar && await looksLikePlainText(location.absPath, row.fileName).catch(() => false)) {
    if (evidenceByName) return opaque('plain text, not a media container (rejected without ffprobe)');
    return ctx.journal.transitionLazy(row.key, 'quarantined', { reason: 'not a media file (plain text; rejected without ffprobe)', reasonCode: QUARANTINE_CODES.notMedia });
  }
  try {
    const result = await probe(location.absPath, { signal });
    if (result.streams.length === 0) throw new InputError('E_NOT_MEDIA', 'no media streams');
    return ctx.journal.transition(row.key, 'probed', {
      info: { media: mediaSummary(result), formatName: result.formatName, durationSeconds: result.durationSeconds, startTimeSeconds: result.startTimeSeconds, hasSidecar },
    });
  } catch (error) {
    if (signal.aborted) throw new PausedError('probe abandoned', { cause: error });
    if (isFileGone(error)) throw new PausedError('file went away during probe', { cause: error });
    // ffprobe missing or broken, or it was too slow or could not start: not the file's fault,
    // so the job is retried (the reason says what to fix) instead of branding evidence "not media".
    const mediaCode = (error as { code?: string }).code;
    if (error instanceof EnvironmentError || mediaCode === 'E_MEDIA_TIMEOUT' || mediaCode === 'E_MEDIA_SPAWN') throw error;
    const why = probeWords(error, location.absPath, row.fileName);
    if (evidenceByName) return opaque(`ffprobe: ${why}`);
    return ctx.journal.transitionLazy(row.key, 'quarantined', { reason: `not a media file (ffprobe: ${why})`, reasonCode: QUARANTINE_CODES.notMedia });
  }
}

export async function stepPlan(ctx: StepContext, row: RecordingRow, location: Location, signal: AbortSignal): Promise<RecordingRow> {
  await checkUnchanged(row, location);
  // Opaque bytes get no media plan (nothing in them was understood): fixed, size-capped ranges.
  if (typeof row.info.unreadable === 'string') {
    return ctx.journal.setPlan(row.key, fixedPlan(row.size, ctx.config.segmentMaxBytes), { planKind: 'fixed', truncatedTail: false });
  }
  const plan = await planSegments(location.absPath, row.size, {
    segmentSeconds: ctx.config.segmentSeconds,
    maxBytes: ctx.config.segmentMaxBytes,
    formatName: typeof row.info.formatName === 'string' ? row.info.formatName : undefined,
    durationSeconds: typeof row.info.durationSeconds === 'number' ? row.info.durationSeconds : undefined,
    startTimeSeconds: typeof row.info.startTimeSeconds === 'number' ? row.info.startTimeSeconds : undefined,
    signal,
  });
  return ctx.journal.setPlan(row.key, plan.segments, {
    planKind: plan.kind, truncatedTail: plan.truncatedTail, truncatedWhy: plan.truncatedWhy, packetSize: plan.packetSize, timeOrigin: plan.timeOrigin,
  });
}

/** The file's, its sidecar's and its companions' lstat now, as the journal keeps it (undefined if any is gone). */
async function snapshotOf(location: Location): Promise<StatSnapshot | undefined> {
  try {
    const f = await lstat(location.absPath);
    const c = location.sidecarPath ? await lstat(location.sidecarPath) : undefined;
    const companions = [];
    for (const companion of location.companions ?? []) {
      const l = await lstat(companion.absPath);
      companions.push({ name: companion.fileName, size: l.size, mtimeMs: l.mtimeMs, ino: l.ino, dev: l.dev, ctimeMs: l.ctimeMs });
    }
    return {
      size: f.size, mtimeMs: f.mtimeMs, ino: f.ino, dev: f.dev, ctimeMs: f.ctimeMs,
      sidecar: c ? { size: c.size, mtimeMs: c.mtimeMs, ino: c.ino, dev: c.dev, ctimeMs: c.ctimeMs } : null,
      ...(companions.length ? { companions } : {}),
    };
  } catch {
    return undefined;
  }
}

/** lstat facts of a companion that must not move between its listing, its hash and its upload. */
function sameFile(a: { size: number; mtimeMs: number; ino: number; dev: number; ctimeMs: number }, b: { size: number; mtimeMs: number; ino: number; dev: number; ctimeMs: number }): boolean {
  return a.size === b.size && a.mtimeMs === b.mtimeMs && a.ino === b.ino && a.dev === b.dev && a.ctimeMs === b.ctimeMs;
}

/**
 * Hash every companion as the scan listed it (docs/dock.md, "Attachments"): fixed size-capped
 * segments, one sequential read each, bounded memory however large. A companion that is gone
 * (or no longer a regular file) is not attached; one that changes meanwhile makes the job wait
 * for the next scan, so the manifest never vouches for bytes the card does not have.
 */
async function hashCompanions(ctx: StepContext, row: RecordingRow, location: Location, signal: AbortSignal): Promise<{ attachments: AttachmentEntry[]; paths: string[]; notes: string[] }> {
  const attachments: AttachmentEntry[] = [];
  const paths: string[] = [];
  const notes: string[] = [];
  let over = 0;
  for (const companion of location.companions ?? []) {
    // A manifest carries at most ATTACHMENTS_MAX: the rest stay on the card, said in a note (and
    // listed on their own at the next scan once the recording is gone).
    if (attachments.length >= ATTACHMENTS_MAX) { over++; continue; }
    const before = await lstat(companion.absPath).catch((error: unknown) => { if (isFileGone(error)) return undefined; throw error; });
    if (!before || !before.isFile()) {
      notes.push(`companion ${companion.fileName} ${before ? 'is no longer a regular file' : 'vanished before it was hashed'}: not attached`);
      continue;
    }
    if (!sameFile(before, companion.stat)) throw new FileGrowingError(`${row.relPath}: companion ${companion.fileName} changed since it was listed: waiting for it to settle`);
    const plan = fixedPlan(before.size, ctx.config.segmentMaxBytes);
    const hash = await hashFileOffThread(companion.absPath, plan, before.size, { signal }).catch((error: unknown) => {
      const code = (error as { code?: string }).code;
      if (code === 'E_FILE_GREW' || code === 'E_FILE_CHANGED') throw new FileGrowingError(`${row.relPath}: companion ${companion.fileName} changed while it was hashed`);
      throw error;
    });
    const after = await lstat(companion.absPath).catch(() => undefined);
    if (!after || !after.isFile() || !sameFile(before, after)) throw new FileGrowingError(`${row.relPath}: companion ${companion.fileName} changed while it was hashed`);
    paths.push(companion.relPath);
    attachments.push({
      index: attachments.length, name: companion.fileName, size: hash.size, sha256: hash.sha256, kind: attachmentKindOf(companion.fileName),
      segments: plan.map((p, i) => ({ index: p.index, offset: p.offset, length: p.length, sha256: hash.segmentSha256[i]! })),
    });
  }
  if (over) notes.push(`${over} more companion(s) not attached: a manifest carries at most ${ATTACHMENTS_MAX}; they stay on the card`);
  return { attachments, paths, notes };
}

function stripUndefined<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

/** The probe's media summary with what the planner read from the bytes (TS packet size, the clock's origin). */
function mediaOf(row: RecordingRow): MediaSummary | undefined {
  const media = row.info.media as MediaSummary | undefined;
  if (!media) return undefined;
  return {
    ...media,
    packetSize: typeof row.info.packetSize === 'number' ? row.info.packetSize : undefined,
    timeOrigin: typeof row.info.timeOrigin === 'number' ? row.info.timeOrigin : undefined,
  };
}

export async function stepHash(ctx: StepContext, row: RecordingRow, location: Location, signal: AbortSignal): Promise<RecordingRow> {
  await checkUnchanged(row, location);
  const segments = ctx.journal.segments(row.key);
  const probeOk = row.info.media !== undefined;
  // The stat snapshot the hashed bytes go with (the hasher fails if the file changes while it reads).
  const statNow = await snapshotOf(location);
  const fingerprintNotes: string[] = [];
  const media = row.info.media as MediaSummary | undefined;
  // MP4 / fMP4: the streams' fingerprints from the sample tables, hashed in the file read
  // (src/media/mp4Samples.ts says which files qualify); ffmpeg's hash muxer for the rest.
  const samplePlan: StreamPlan | undefined = ctx.config.fingerprint && media && /\bmp4\b|\bmov\b/.test(media.container)
    ? await mp4StreamPlan(location.absPath, media.streams).catch((error: unknown) => ({ ok: false as const, reason: (error as Error).message }))
    : undefined;
  if (samplePlan && !samplePlan.ok) ctx.logger.debug('fingerprint by ffmpeg', { file: row.relPath, why: samplePlan.reason });
  const native = samplePlan?.ok ? samplePlan : undefined;
  const [hash, ffmpegFingerprint] = await Promise.all([
    hashFileOffThread(location.absPath, segments, row.size, { signal, streamRuns: native?.streams.map((s) => s.runs) }).catch((error: unknown) => {
      const code = (error as { code?: string }).code;
      if (!location.sidecarPath && (code === 'E_FILE_GREW' || code === 'E_FILE_CHANGED')) throw new FileGrowingError(`${row.relPath} changed while it was hashed`);
      throw error;
    }),
    ctx.config.fingerprint && probeOk && !native
      // The streams from our own probe spare ffmpeg's fingerprint a second ffprobe.
      ? streamFingerprints(location.absPath, { signal, streams: (row.info.media as MediaSummary).streams }).then((result) => {
        // Named per stream in the manifest; an audio/video stream without one is also a note.
        for (const s of result.streams) if ('error' in s && (s.type === 'audio' || s.type === 'video')) fingerprintNotes.push(`media fingerprint of ${s.type} stream ${s.index} not computed: ${s.error}`);
        return result;
      }, (error: unknown) => {
        if (signal.aborted) throw error;
        fingerprintNotes.push(`media fingerprint not computed: ${(error as Error).message}`);
        return undefined;
      })
      : Promise.resolve(undefined),
  ]);
  const fingerprint: FingerprintResult | undefined = native ? fingerprintFromSamples(native, hash.streamSha256 ?? []) : ffmpegFingerprint;
  const companions = await hashCompanions(ctx, row, location, signal);
  const sidecar = location.sidecarPath ? await readSidecar(location.sidecarPath) : undefined;
  // A camera that writes sidecars but left none: the recording was cut (power loss).
  const truncated = Boolean(row.info.truncatedTail) || (!sidecar && Boolean(location.device));
  const verdict = checkIntegrity({
    sidecar, device: location.device, deviceProblem: location.deviceProblem,
    fileSha256: hash.sha256, fileSize: hash.size, fileName: row.fileName, truncated, mediaCut: Boolean(row.info.truncatedTail),
  });
  const notes = [...verdict.notes, ...fingerprintNotes, ...companions.notes];
  if (companions.attachments.length) notes.push(`${companions.attachments.length} attachment(s) from beside the file: ${companions.attachments.map((a) => a.name).join(', ').slice(0, 500)}`);
  const unreadable = unreadableOf(row);
  if (unreadable) notes.push(`unreadable: uploaded as opaque bytes (${unreadable})`);
  if (typeof row.info.truncatedWhy === 'string') notes.push(`cut short: ${row.info.truncatedWhy}`);
  const recordingId = recordingIdOf(row.serial, hash.sha256, row.uid);
  const device = location.device;
  const planned: SegmentPlanEntry[] = segments.map((s, i) => {
    const entry: SegmentPlanEntry = { index: s.index, offset: s.offset, length: s.length, sha256: hash.segmentSha256[i]! };
    if (s.startTime !== null) entry.startTime = s.startTime;
    if (s.endTime !== null) entry.endTime = s.endTime;
    return entry;
  });
  const unsigned: Omit<RecordingManifest, 'signature'> = stripUndefined({
    protocol: PROTOCOL_VERSION,
    recordingId,
    device: {
      serial: row.serial,
      model: device?.model,
      firmware: device?.firmware,
      publicKeyPem: device?.publicKeyPem,
      sidecar: sidecar?.kind === 'ok' ? sidecar.sidecar : undefined,
      // The exact bytes and their hash: the server keeps them, and the wipe deletes only these bytes.
      sidecarSha256: sidecar?.bytes ? sha256Of(sidecar.bytes) : undefined,
      sidecarBase64: sidecar?.bytes ? sidecar.bytes.toString('base64') : undefined,
      clockOffsetMs: clockOffsetMsOf(device),
    },
    dock: { id: ctx.config.dockId, publicKeyPem: ctx.dockKey.publicKeyPem, bay: location.bay },
    file: {
      name: row.fileName,
      size: hash.size,
      sha256: hash.sha256,
      media: mediaOf(row),
      mediaFingerprint: fingerprint?.summary,
      mediaFingerprints: fingerprint?.streams,
      truncated: truncated || undefined,
      unreadable,
      source: recordingSourceOf(row.relPath),
    },
    integrity: { status: verdict.status, notes },
    segments: planned,
    merkleRoot: hash.merkleRoot,
    attachments: companions.attachments.length ? companions.attachments : undefined,
    createdAt: new Date().toISOString(),
  });
  const manifest = signObject(unsigned as unknown as Record<string, unknown>, ctx.dockKey.privateKeyPem) as unknown as RecordingManifest;
  ctx.journal.setSegmentHashes(row.key, hash.segmentSha256);
  if (isFlagged(verdict.status, truncated, unreadable)) ctx.logger.warn('integrity flag', { recordingId, file: row.relPath, integrity: verdict.status, ...(unreadable ? { unreadable } : {}), notes });
  return ctx.journal.transition(row.key, 'hashed', {
    recordingId, sha256: hash.sha256, manifestJson: JSON.stringify(manifest), ...(statNow ? { stat: statNow } : {}),
    info: {
      integrity: verdict.status, integrityNotes: notes, truncated, unreadable, mediaFingerprint: fingerprint?.summary,
      ...(companions.paths.length ? { attachmentPaths: companions.paths } : {}),
    },
  });
}

async function sendMissing(ctx: StepContext, row: RecordingRow, location: Location, signal: AbortSignal): Promise<void> {
  const pending = ctx.journal.segments(row.key).filter((s) => !s.acked);
  const priority = priorityOf(row);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < pending.length) {
      if (ctx.stopping()) throw new PausedError('dock is stopping');
      const release = await ctx.slots.acquire(priority, signal).catch((cause: unknown) => { throw new PausedError('abandoned while queued', { cause }); });
      try {
        if (next >= pending.length) return;
        if (ctx.stopping()) throw new PausedError('dock is stopping');
        const segment = pending[next++]!;
        await checkUnchanged(row, location);
        const started = Date.now();
        await ctx.client.putSegment(row.recordingId!, location.absPath, { index: segment.index, offset: segment.offset, length: segment.length, sha256: segment.sha256! }, signal);
        ctx.journal.ackSegment(row.key, segment.index);
        ctx.logger.debug('segment acknowledged', { recordingId: row.recordingId, index: segment.index, bytes: segment.length, ms: Date.now() - started });
        ctx.metrics.segmentSent(location.bay, segment.length);
      } finally {
        release();
      }
    }
  };
  const workers = Math.max(1, Math.min(ctx.config.concurrency, pending.length));
  const results = await Promise.allSettled(Array.from({ length: workers }, worker));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

/**
 * The attachment segments the server lacks (its list is the truth: they are not journaled), each
 * re-read from its companion, which must still be the file that was hashed (same inode, size,
 * mtime, ctime). One that changed or vanished while the recording is on the card can never be
 * sent: the upload is closed `file_changed` and the next scan ingests what the card holds now as
 * a new version (docs/dock.md, "Attachments").
 */
async function sendMissingAttachments(ctx: StepContext, row: RecordingRow, manifest: RecordingManifest, location: Location, missing: readonly MissingAttachmentSegment[], signal: AbortSignal): Promise<void> {
  const attachments = manifest.attachments ?? [];
  for (const item of missing) {
    if (ctx.stopping()) throw new PausedError('dock is stopping');
    const attachment = attachments[item.attachment];
    const segment = attachment?.segments[item.index];
    if (!attachment || !segment) throw new InputError('E_PLAN_GAP', `the server asks for attachment segment ${item.attachment}/${item.index}, which is not in the manifest`);
    const companion = location.companions?.find((c) => c.fileName === attachment.name);
    const held = row.stat?.companions?.find((c) => c.name === attachment.name);
    const now = companion ? await lstat(companion.absPath).catch((error: unknown) => { if (isFileGone(error)) return undefined; throw error; }) : undefined;
    if (!companion || !held || !now || !now.isFile() || !sameFile(now, held)) {
      await checkUnchanged(row, location); // the camera went away (undock): wait for it instead
      throw new InputError('E_FILE_CHANGED', `companion ${attachment.name} ${!now ? 'vanished' : !now.isFile() ? 'is no longer a regular file' : 'changed'} after it was hashed: the card now holds a new version of ${row.fileName}`);
    }
    const release = await ctx.slots.acquire(priorityOf(row), signal).catch((cause: unknown) => { throw new PausedError('abandoned while queued', { cause }); });
    try {
      await ctx.client.putSegment(row.recordingId!, companion.absPath, { index: segment.index, offset: segment.offset, length: segment.length, sha256: segment.sha256 }, signal, attachment.index);
      ctx.metrics.segmentSent(location.bay, segment.length);
    } catch (error) {
      // The companion can vanish between the check above and the read of its range: the client then
      // reports its source gone (paused, as for an undock). With the recording itself still on the card
      // that is the same new version as a vanish caught by the check, not an undock to wait out.
      if (!(error instanceof PausedError) || ctx.stopping()) throw error;
      const after = await lstat(companion.absPath).catch((cause: unknown) => { if (isFileGone(cause)) return undefined; throw cause; });
      if (after && after.isFile() && sameFile(after, held)) throw error;
      await checkUnchanged(row, location);
      // The same reason as the check's above: where the vanish fell is timing, not a second outcome.
      throw new InputError('E_FILE_CHANGED', `companion ${attachment.name} ${!after ? 'vanished' : !after.isFile() ? 'is no longer a regular file' : 'changed'} after it was hashed (while it was sent): the card now holds a new version of ${row.fileName}`, { cause: error });
    } finally {
      release();
    }
  }
}

export async function stepUpload(ctx: StepContext, row: RecordingRow, location: Location, signal: AbortSignal): Promise<RecordingRow> {
  const serverKeyPem = await ctx.serverKey(signal);
  const manifest = JSON.parse(row.manifestJson!) as RecordingManifest;
  let current = row.state === 'uploading' ? row : ctx.journal.transition(row.key, 'uploading');
  const created = await ctx.client.createRecording(manifest, signal);
  if (created.state === 'complete' && created.receipt) return finish(ctx, current, created.receipt, serverKeyPem);
  ctx.journal.reconcileMissing(row.key, created.missing ?? []);
  let attachmentsMissing = created.missingAttachments ?? [];
  for (let round = 0; round < 3; round++) {
    await sendMissing(ctx, current, location, signal);
    await sendMissingAttachments(ctx, current, manifest, location, attachmentsMissing, signal);
    const done = await ctx.client.complete(current.recordingId!, signal);
    if (done.receipt) return finish(ctx, current, done.receipt, serverKeyPem);
    ctx.logger.warn('server still misses segments', { recordingId: current.recordingId, missing: done.missing, missingAttachments: done.missingAttachments?.length ?? 0 });
    ctx.journal.reconcileMissing(row.key, done.missing ?? []);
    attachmentsMissing = done.missingAttachments ?? [];
    current = ctx.journal.get(row.key)!;
  }
  throw new TransportError(`server still reports missing segments for ${current.recordingId}`);
}

function finish(ctx: StepContext, row: RecordingRow, receipt: Receipt, serverKeyPem: string): RecordingRow {
  // A receipt naming another server key says the pin is wrong (or the server was re-keyed): every
  // receipt from now on will fail the same way, so the dock says so at once (it is quarantined below).
  const pinned = keyIdOrUndefined(serverKeyPem);
  if (receipt && typeof receipt === 'object' && receipt.serverKeyId !== pinned) {
    ctx.attention?.raise(ATTENTION_CODES.serverKeyMismatch, `receipt signed with key ${String(receipt.serverKeyId)}, pinned key ${String(pinned)}`);
  }
  verifyReceipt(receipt, receiptExpectationOf(row, JSON.parse(row.manifestJson!) as RecordingManifest, ctx.config.dockId), serverKeyPem);
  ctx.attention?.succeeded('receipt');
  ctx.metrics.receiptStored(row.bay ?? UNKNOWN_BAY);
  ctx.logger.info('receipt verified', { recordingId: row.recordingId, custodySeq: receipt.custodySeq, integrity: row.info.integrity });
  return ctx.journal.transition(row.key, 'completed', { receiptJson: JSON.stringify(receipt), reason: null });
}

function keyIdOrUndefined(pem: string): string | undefined {
  try { return keyIdOf(pem); } catch { return undefined; }
}

/** ffprobe's words for a recording uploaded as opaque bytes (or undefined). */
export function unreadableOf(row: Pick<RecordingRow, 'info'>): string | undefined {
  return typeof row.info.unreadable === 'string' ? row.info.unreadable : typeof row.info.probeError === 'string' ? `ffprobe: ${row.info.probeError}` : undefined;
}

export function wipeAllowed(row: RecordingRow): boolean {
  return row.state === 'completed' && row.receiptJson !== null && !row.info.wipeSkipped && !isFlagged(row.info.integrity as IntegrityStatus | undefined, Boolean(row.info.truncated), unreadableOf(row));
}

/**
 * Delete the camera's file and sidecar (src/dock/wipe.ts decides): only with a confirmed server
 * key, a verified receipt, the server's proof of possession, and the very inode that was checked.
 * Anything else keeps both, with the reason on the bay; the row stays completed, not wiped.
 */
export async function stepWipe(ctx: StepContext, row: RecordingRow, location: Location, signal?: AbortSignal): Promise<RecordingRow> {
  if (!wipeAllowed(row)) return row;
  const manifest = JSON.parse(row.manifestJson!) as RecordingManifest;
  const attachmentPaths = Array.isArray(row.info.attachmentPaths) ? row.info.attachmentPaths as string[] : undefined;
  // A part the server lost since the receipt (damaged at rest) is sent again from the card first:
  // the proof of possession challenges a few segments only, and the card is the last good copy.
  const heal = async (): Promise<void> => {
    const sent = await resendLostParts(ctx.client, manifest, location.absPath, {
      ...(signal ? { signal } : {}),
      attachmentPath: (index, name) => attachmentPaths?.[index] ? join(location.cameraRoot, attachmentPaths[index]!) : join(dirname(location.absPath), name),
    });
    if (sent.segments.length || sent.attachments.length) {
      ctx.logger.warn('the server had lost parts of a receipted recording: sent again from the camera', { recordingId: row.recordingId, file: row.relPath, segments: sent.segments, attachmentSegments: sent.attachments.length });
      ctx.journal.event(row.key, 'resent', `segment(s) ${sent.segments.join(', ') || '-'}, ${sent.attachments.length} attachment segment(s)`);
    }
  };
  // Best effort before the proof (which stays the gate): a server that will not say what it lacks is left to the proof.
  if (ctx.trustedServerKey() !== undefined) {
    await heal().catch((error: unknown) => {
      if (!(error instanceof ProblemError)) throw error;
      ctx.logger.debug('the server did not say what it lacks; the proof of possession decides', { recordingId: row.recordingId, code: error.problemCode });
    });
  }
  const outcome = await wipeRecording(row, manifest, JSON.parse(row.receiptJson!) as unknown, { ...location, ...(attachmentPaths ? { attachmentPaths } : {}) }, {
    trustedServerKeyPem: ctx.trustedServerKey(),
    dockId: ctx.config.dockId,
    possession: async (id, challenge, s) => {
      try {
        return await ctx.client.possession(id, challenge, s);
      } catch (error) {
        // The challenge found a damaged blob (the server marks it missing): heal, then ask once more.
        if (!(error instanceof ProblemError) || error.problemCode !== 'blob_damaged') throw error;
        await heal();
        return ctx.client.possession(id, challenge, s);
      }
    },
    onPossessionFailure: (problems) => {
      ctx.metrics.possessionFailed(location.bay);
      ctx.logger.error('integrity problem: the server did not prove it holds the bytes; the camera keeps the file', { integrity: 'possession-failed', recordingId: row.recordingId, file: row.relPath, problems });
      ctx.journal.event(row.key, 'possession-failed', problems.join('; ').slice(0, 2000));
    },
    ...(signal ? { signal } : {}),
  });
  if (!outcome.wiped) {
    ctx.logger.warn('not wiped', { recordingId: row.recordingId, file: row.relPath, code: outcome.keep.code, why: outcome.keep.reason });
    return ctx.journal.transition(row.key, 'completed', { reason: `not wiped: ${outcome.keep.reason}`, info: { wipeSkipped: true, wipeKeptCode: outcome.keep.code } });
  }
  if (outcome.sidecarKept) ctx.logger.warn('sidecar left on the camera after the wipe', { recordingId: row.recordingId, file: row.relPath, why: outcome.sidecarKept });
  if (outcome.attachmentsKept) ctx.logger.warn('attachments left on the camera after the wipe', { recordingId: row.recordingId, file: row.relPath, why: outcome.attachmentsKept });
  ctx.metrics.wiped(location.bay);
  ctx.logger.info('wiped after receipt and proof of possession', { recordingId: row.recordingId, file: row.relPath });
  const kept = [outcome.sidecarKept, ...(outcome.attachmentsKept ?? [])].filter((k): k is string => Boolean(k));
  return ctx.journal.transition(row.key, 'wiped', kept.length ? { reason: kept.join('; ') } : {});
}
