/**
 * `bodycam server scrub`: re-hash every stored blob through the store's verified read.
 * A damaged blob is marked damaged on the way (moved to damaged/, so it counts as
 * missing and the next verified upload of its bytes replaces it); the report names
 * every recording and segment index that used it. A complete recording whose blob is
 * gone altogether (deleted, or found damaged earlier and not sent again) is reported
 * too: its receipt promises bytes the store does not hold.
 *
 * Memory stays bounded: blobs are streamed one at a time (1 MiB chunks), recordings are
 * loaded one at a time (only their keys are listed up front); only the damaged names are kept. Safe beside a running server
 * on the same data dir (it never touches tmp/, and only moves the very file it found
 * damaged). It also sets every file under the data dir to 0600 and folder to 0700.
 */
import { stat } from 'node:fs/promises';
import { errnoCode, UsageError } from '../errors.js';
import { FsStore } from './store/fsStore.js';
import { tightenTree } from './privateFiles.js';
import type { RecordingStore } from './state.js';
import type { BlobStore, Store } from './store/store.js';
import { drainVerified, isBlobIntegrityError } from './store/verifiedRead.js';

/** A segment of a recording, or (with `attachment`) of one of its attachments. */
export interface ScrubSegmentRef { dockId: string; recordingId: string; index: number; attachment?: number; complete: boolean }

export interface ScrubReport {
  ok: boolean;
  dataDir: string;
  blobsChecked: number;
  bytesChecked: number;
  /** Blobs whose bytes did not hash to their name; now in damaged/. */
  damaged: { sha256: string; reason: string; usedBy: ScrubSegmentRef[] }[];
  /** Segments of complete recordings whose blob is not in the store (deleted, or damaged before). */
  missing: { dockId: string; recordingId: string; index: number; attachment?: number; sha256: string }[];
  recordingsChecked: number;
  modesTightened: number;
  ms: number;
}

export async function scrubDataDir(dataDir: string, options: { store?: Store; onBlob?: (sha256: string, ok: boolean) => void } = {}): Promise<ScrubReport> {
  try {
    if (!(await stat(dataDir)).isDirectory()) throw new UsageError(`--data-dir ${dataDir} is not a folder`);
    await stat(`${dataDir}/blobs`);
  } catch (error) {
    if (error instanceof UsageError) throw error;
    const code = errnoCode(error);
    throw new UsageError(code === 'ENOENT' ? `--data-dir ${dataDir} is not a server data dir (no such folder, or no blobs/ in it)` : `--data-dir ${dataDir}: ${code ?? String(error)}`, { cause: error });
  }
  // Not opened on purpose: open() would clear tmp/, which a running server is writing to.
  const store = options.store ?? new FsStore(dataDir);
  const report = await scrubStores({ blobs: store, recordings: store, where: dataDir, ...(options.onBlob ? { onBlob: options.onBlob } : {}) });
  report.modesTightened = await tightenTree(dataDir);
  return report;
}

/**
 * The scrub of any blob store and recording store (`--store s3://… --db …`: the bucket and
 * PostgreSQL; a shared `--store DIR` with --db). `where` names them in the report.
 */
export async function scrubStores(options: { blobs: BlobStore; recordings: RecordingStore; where: string; onBlob?: (sha256: string, ok: boolean) => void }): Promise<ScrubReport> {
  const { blobs: store, recordings } = options;
  const started = Date.now();
  const damagedReason = new Map<string, string>();
  let blobsChecked = 0;
  let bytesChecked = 0;
  for await (const sha256 of store.listBlobs()) {
    blobsChecked++;
    try {
      bytesChecked += await drainVerified(store.readBlob(sha256));
      options.onBlob?.(sha256, true);
    } catch (error) {
      if (!isBlobIntegrityError(error)) throw error;
      if (error.code === 'E_BLOB_MISSING') { blobsChecked--; continue; } // removed meanwhile (a repair in progress): nothing to judge
      damagedReason.set(sha256, error.message);
      options.onBlob?.(sha256, false);
    }
  }
  const usedBy = new Map<string, ScrubSegmentRef[]>([...damagedReason.keys()].map((sha) => [sha, []]));
  const missing: ScrubReport['missing'] = [];
  let recordingsChecked = 0;
  for (const { dockId, recordingId: id } of await recordings.listRecordings()) {
    const record = await recordings.getRecording(dockId, id);
    if (!record) continue;
    recordingsChecked++;
    const complete = record.receipt !== undefined;
    const parts: Array<{ attachment?: number; segments: typeof record.manifest.segments }> = [
      { segments: record.manifest.segments },
      ...(record.manifest.attachments ?? []).map((a) => ({ attachment: a.index, segments: a.segments })),
    ];
    for (const part of parts) {
      const where = part.attachment === undefined ? {} : { attachment: part.attachment };
      for (const segment of part.segments) {
        const refs = usedBy.get(segment.sha256);
        if (refs) refs.push({ dockId, recordingId: id, index: segment.index, ...where, complete });
        else if (complete && !(await store.hasBlob(segment.sha256))) missing.push({ dockId, recordingId: id, index: segment.index, ...where, sha256: segment.sha256 });
      }
    }
  }
  const damaged = [...damagedReason].map(([sha256, reason]) => ({ sha256, reason, usedBy: usedBy.get(sha256) ?? [] }));
  return { ok: damaged.length === 0 && missing.length === 0, dataDir: options.where, blobsChecked, bytesChecked, damaged, missing, recordingsChecked, modesTightened: 0, ms: Date.now() - started };
}
