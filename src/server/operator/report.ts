/**
 * `bodycam server report --data-dir DIR`: docks, recordings per camera, stale uploads, the
 * gaps in each camera's sequence numbers and the complete recordings whose stored bytes are not
 * all held (lost), read from a data dir (safe beside a running server:
 * nothing is written, the store is not opened, possession.sqlite is opened read-only).
 */
import Database from 'better-sqlite3';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { errnoCode, UsageError } from '../../errors.js';
import type { RecordingManifest } from '../../protocol/types.js';
import { pinnedDockKeyId } from '../trust/dockKeys.js';
import { FsStore } from '../store/fsStore.js';
import { readRecordings, type RecordingStore } from '../state.js';
import type { BlobStore, Store } from '../store/store.js';
import { CATALOG_SNAPSHOT, embeddedBackendId } from './catalogSnapshot.js';
import { Catalog, type CameraSummary, type DockSummary, type RecordingSummary } from './catalog.js';
import { heldNow, type SegmentNotHeld } from './heldNow.js';

/** Lost recordings listed at most (`lostCount` counts them all). */
export const MAX_LOST_LISTED = 1000;

/** A complete recording (its receipt issued, its card maybe wiped) whose stored bytes are not all held now. */
export interface LostRecording {
  dockId: string;
  recordingId: string;
  deviceSerial: string;
  fileName: string;
  segments: number;
  held: number;
  /** The first 20 segments not held; `notHeldCount` all of them. */
  notHeld: SegmentNotHeld[];
  notHeldCount: number;
}

export interface ServerReport {
  dataDir: string;
  generatedAt: string;
  staleAfterSeconds: number;
  docks: DockSummary[];
  cameras: CameraSummary[];
  stale: RecordingSummary[];
  /** Cameras with at least one sequence number missing. */
  camerasWithGaps: number;
  /** Complete recordings whose stored bytes are not all held (a blob deleted, moved away or found damaged): at most MAX_LOST_LISTED. */
  lost: LostRecording[];
  lostCount: number;
  /** Complete recordings whose every segment was looked for (a stat each, no re-hash: `server scrub` re-hashes). */
  recordingsChecked: number;
}

export async function serverReport(options: { dataDir: string; store?: Store; staleAfterMs?: number; now?: () => number }): Promise<ServerReport> {
  const { dataDir } = options;
  try {
    if (!(await stat(dataDir)).isDirectory()) throw new UsageError(`--data-dir ${dataDir} is not a folder`);
    if (!options.store) await stat(join(dataDir, 'recordings'));
  } catch (error) {
    if (error instanceof UsageError) throw error;
    const code = errnoCode(error);
    throw new UsageError(code === 'ENOENT' ? `--data-dir ${dataDir} is not a server data dir (no such folder, or no recordings/ in it)` : `--data-dir ${dataDir}: ${code ?? String(error)}`, { cause: error });
  }
  const held = openPossessionReadOnly(join(dataDir, 'possession.sqlite'));
  // Not opened on purpose: open() would clear tmp/, which a running server is writing to.
  const store = options.store ?? new FsStore(dataDir);
  try {
    return await reportOf({
      where: dataDir, recordings: store, blobs: store, held: async (dockId, sha256) => held?.(dockId, sha256) ?? true,
      dockKeyId: (dockId) => pinnedDockKeyId(dataDir, dockId),
      // The summaries the server saved at its last stop, and the records changed since (read-only: never saved here).
      snapshotPath: join(dataDir, CATALOG_SNAPSHOT), snapshotClockMarginMs: 0, backendId: await embeddedBackendId(dataDir).catch(() => 'embedded:?'),
      ...(options.staleAfterMs !== undefined ? { staleAfterMs: options.staleAfterMs } : {}), ...(options.now ? { now: options.now } : {}),
    });
  } finally {
    held?.close();
  }
}

/**
 * The report of any recording store, blob store and possession (`--db … --store s3://…`): what
 * every server of one database shares. `where` names them in the report.
 */
export async function reportOf(options: {
  where: string; recordings: RecordingStore; blobs: Pick<BlobStore, 'hasBlob' | 'blobSize'>;
  held: (dockId: string, sha256: string) => Promise<boolean>; dockKeyId: (dockId: string) => Promise<string | undefined>;
  staleAfterMs?: number; now?: () => number; snapshotPath?: string; snapshotClockMarginMs?: number; backendId?: string;
}): Promise<ServerReport> {
  const missing = async (manifest: RecordingManifest) => {
    const out: number[] = [];
    for (const s of manifest.segments) {
      if (!(await options.held(manifest.dock.id, s.sha256)) || !(await options.blobs.hasBlob(s.sha256))) out.push(s.index);
    }
    return out;
  };
  const catalog = new Catalog({
    recordings: options.recordings, missing, dockKeyId: options.dockKeyId, ...(options.snapshotPath ? { snapshotPath: options.snapshotPath } : {}),
    ...(options.snapshotClockMarginMs !== undefined ? { snapshotClockMarginMs: options.snapshotClockMarginMs } : {}),
    ...(options.backendId !== undefined ? { backendId: options.backendId } : {}),
    ...(options.staleAfterMs !== undefined ? { staleAfterMs: options.staleAfterMs } : {}),
    ...(options.now ? { now: options.now } : {}),
  });
  await catalog.refresh();
  const cameras = catalog.cameras();
  const lost = await lostRecordings(options.recordings, options.blobs);
  return {
    dataDir: options.where, generatedAt: new Date((options.now ?? Date.now)()).toISOString(), staleAfterSeconds: Math.round(catalog.staleAfterMs / 1000),
    docks: await catalog.docks(), cameras, stale: catalog.staleRecordings(),
    camerasWithGaps: cameras.filter((c) => (c.sequence?.missingCount ?? 0) > 0).length,
    ...lost,
  };
}

/**
 * Every complete recording's segments looked for in the blob store (hasBlob: a stat, no read),
 * records read 32 at a time; only the lost ones are kept. A receiving recording's missing segments
 * have not arrived yet (stale uploads say those).
 */
async function lostRecordings(recordings: RecordingStore, blobs: Pick<BlobStore, 'hasBlob' | 'blobSize'>): Promise<Pick<ServerReport, 'lost' | 'lostCount' | 'recordingsChecked'>> {
  const keys = await recordings.listRecordings();
  const lost: LostRecording[] = [];
  let lostCount = 0;
  let recordingsChecked = 0;
  for (let i = 0; i < keys.length; i += 32) {
    for (const record of await readRecordings(recordings, keys.slice(i, i + 32))) {
      if (!record?.receipt) continue;
      recordingsChecked++;
      const { manifest } = record;
      const held = await heldNow(manifest, blobs);
      if (held.notHeldCount === 0) continue;
      lostCount++;
      if (lost.length < MAX_LOST_LISTED) {
        lost.push({ dockId: manifest.dock.id, recordingId: manifest.recordingId, deviceSerial: manifest.device.serial, fileName: manifest.file.name, ...held });
      }
    }
  }
  return { lost, lostCount, recordingsChecked };
}

type HeldLookup = ((dockId: string, sha256: string) => boolean) & { close(): void };

function openPossessionReadOnly(path: string): HeldLookup | undefined {
  let db: Database.Database;
  try {
    db = new Database(path, { readonly: true, fileMustExist: true });
  } catch {
    return undefined; // an old data dir without possession rows: judge by the blobs alone
  }
  const statement = db.prepare<[string, string]>('SELECT 1 FROM held WHERE dock_id = ? AND sha256 = ?');
  const lookup = ((dockId: string, sha256: string) => statement.get(dockId, sha256) !== undefined) as HeldLookup;
  lookup.close = () => db.close();
  return lookup;
}
