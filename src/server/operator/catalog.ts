/**
 * What the operator and the console look at: one small summary per recording, read from the
 * Store (any backend) and kept in memory, so a page on a server with 100 000 recordings is a
 * slice of a kept order, not 100 000 record reads. Built in the background from the server's
 * start (a page asked meanwhile says so: refreshWithin), from the summaries saved last time
 * (catalogSnapshot.ts, trusted only for the same backend and chain) plus the records changed
 * since, or from every record when there is no such file; then refreshed with the store's
 * `listRecordingsChangedSince` when it has one (a full re-list otherwise, at most every
 * `fullRelistMs`); receiving recordings are re-read on every refresh because their segments
 * arrive without the record changing. Records are never deleted.
 *
 * Every page is bounded by what it shows, not by the history: the orders (newest first, overall,
 * per camera and per dock; dock then id for the API) are kept and new summaries inserted into
 * them; each dock's and camera's figures (recordings, bytes, bytes today, sequence gaps) are
 * tallied as summaries arrive; in progress and stale come from the receiving set. Strings that
 * repeat (docks, cameras, officers, categories…) are held once.
 */
import type { IntegrityStatus, RecordingManifest, RecordingState } from '../../protocol/types.js';
import { readRecordings, type RecordingStore } from '../state.js';
import type { RecordingKey, StoredRecording } from '../store/store.js';
import { keyIdOf } from '../../protocol/signing.js';
import { boundCardText } from './cardText.js';
import { loadSnapshot, saveSnapshot, type ChainPosition, type Snapshot } from './catalogSnapshot.js';
import { sequenceNumberOf, SequenceTally, type SequenceGaps } from './sequence.js';

export interface RecordingSummary {
  dockId: string;
  id: string;
  deviceSerial: string;
  fileName: string;
  size: number;
  sha256: string;
  state: RecordingState;
  segmentCount: number;
  segmentsReceived: number;
  integrity: IntegrityStatus;
  createdAt: string;
  completedAt?: string;
  durationSeconds?: number;
  videoCodec?: string;
  category?: string;
  trigger?: string;
  officerId?: string;
  /** Camera clock, from the sidecar. */
  startedAt?: string;
  /** The camera's sequence number (sequence.ts). */
  seq?: number;
  /** Receiving, and created longer than the stale age ago. */
  stale: boolean;
  /** keyIdOf the camera key the card presented (DEVICE.json), when it is one. */
  cameraKeyId?: string;
  /** The card's texts cut to CARD_TEXT_MAX characters (cardText.ts): each one's full length. */
  textLengths?: Partial<Record<CardTextField, number>>;
}

/** The summary's fields the card wrote as free text, each held at most CARD_TEXT_MAX characters. */
export const CARD_TEXT_FIELDS = ['category', 'trigger', 'officerId', 'startedAt'] as const;
export type CardTextField = typeof CARD_TEXT_FIELDS[number];

export interface DockSummary {
  dockId: string;
  /** Last authenticated request seen by this process, or the newest record of the dock. */
  lastSeen?: string;
  keyId?: string;
  recordings: number;
  bytes: number;
  /** Bytes of recordings created since 00:00 UTC today. */
  bytesToday: number;
  inProgress: number;
  stale: number;
}

export interface CameraSummary {
  serial: string;
  recordings: number;
  bytes: number;
  docks: string[];
  lastArrival: string;
  sequence?: SequenceGaps;
  /** Recordings without a sequence number (no sidecar, foreign file names). */
  unnumbered: number;
  /** The camera keys its cards presented, first seen first: more than one is a changed key (a re-keyed card: ATTACK-s6 B2). */
  keys: CameraKeySeen[];
}

export interface CameraKeySeen { keyId: string; firstSeen: string; recordings: number }

export interface RecordingFilter {
  dock?: string;
  device?: string;
  state?: string;
  integrity?: string;
  category?: string;
  /** YYYY-MM-DD (UTC) of arrival. */
  day?: string;
}

export interface Facets { devices: string[]; docks: string[]; integrity: string[]; categories: string[] }

export interface Page<T> { items: T[]; next?: string; total: number }

export interface CatalogDeps {
  recordings: RecordingStore;
  /** Indexes the server does not hold for this recording (IngestService.missing); all held when absent. */
  missing?: (manifest: RecordingManifest) => Promise<number[]>;
  /** Key id of the key pinned for a dock. */
  dockKeyId?: (dockId: string) => Promise<string | undefined>;
  /** Dock ids that have a token (listed even before their first recording). */
  knownDocks?: () => string[];
  now?: () => number;
  /** A receiving recording older than this is stale (default 24 h). */
  staleAfterMs?: number;
  /**
   * Every change to a recording is made by this process (the embedded backend: one server per
   * data dir) and reaches the catalog through touch(): a refresh then re-reads only what was
   * touched and what is receiving, never lists the store again.
   */
  seesEveryChange?: boolean;
  /**
   * Where the summaries are saved at a clean stop (catalogSnapshot.ts) and read at the first load,
   * with only the records changed since read from the store (needs listRecordingsChangedSince).
   */
  snapshotPath?: string;
  /** Records changed this long before the snapshot was saved are read again (clock skew with a database; default 60 000 ms). */
  snapshotClockMarginMs?: number;
  /** Which backend the summaries describe (catalogSnapshot.ts backendIdOf…): a snapshot of another is not read. */
  backendId?: string;
  /** Where the custody chain stands (its newest checkpoint): a snapshot from further along the chain than the backend is, or from another chain, is not read. */
  chainPosition?: () => ChainPosition | undefined;
  /** Save the summaries this often while they change (so an unclean stop re-reads only what changed since); never when absent. */
  saveEveryMs?: number;
  /**
   * While a first build reads every record, save its progress this often (a partial snapshot:
   * a start after an unclean stop mid-build reads only what it had not reached; default 30 000 ms).
   */
  buildCheckpointMs?: number;
  /** A background save failed (the next start then reads more records). */
  onSaveError?: (error: unknown) => void;
  /** Refreshes closer together than this reuse the last one (default 500 ms). */
  minRefreshMs?: number;
  fullRelistMs?: number;
}

export const DEFAULT_STALE_AFTER_MS = 24 * 3600_000;
const SNAPSHOT_CLOCK_MARGIN_MS = 60_000;
const BUILD_CHECKPOINT_MS = 30_000;
/** Missing ranges listed per camera at most (a hostile camera numbering 1, 3, 5… has one per recording). */
export const MAX_GAP_RANGES = 100;
const keyOf = (dockId: string, id: string) => `${dockId}\u0000${id}`;

export interface BuildProgress { read: number; total: number }

interface DockTally { recordings: number; bytes: number; day: string; dayBytes: number; newest: string }
interface CameraTally { recordings: number; bytes: number; docks: Set<string>; lastArrival: string; seq: SequenceTally; unnumbered: number; keys: Map<string, CameraKeySeen> }

/** Summaries kept in one order; a few new ones are inserted, many are sorted in at once. */
class SortedSummaries {
  private list: RecordingSummary[] = [];
  private pending: RecordingSummary[] = [];
  constructor(private readonly compare: (a: RecordingSummary, b: RecordingSummary) => number) {}
  add(s: RecordingSummary): void { this.pending.push(s); }
  items(): RecordingSummary[] {
    if (this.pending.length > 64) {
      this.list = this.list.concat(this.pending).sort(this.compare);
    } else {
      for (const s of this.pending) this.list.splice(firstIndex(this.list, (x) => this.compare(x, s) > 0), 0, s);
    }
    this.pending = [];
    return this.list;
  }
}

const byKey = (a: RecordingSummary, b: RecordingSummary) => compareKey(a.dockId, a.id, b.dockId, b.id);
const byNewest = (a: RecordingSummary, b: RecordingSummary) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : byKey(a, b));

export class Catalog {
  /** dock → id → summary (the id string is the summary's own: no key string per recording). */
  private readonly byDock = new Map<string, Map<string, RecordingSummary>>();
  private count = 0;
  private readonly receiving = new Set<string>();
  private readonly seenAt = new Map<string, number>();
  private keyOrder = new SortedSummaries(byKey);
  private newestOrder = new SortedSummaries(byNewest);
  private newestOfDevice = new Map<string, SortedSummaries>();
  private newestOfDock = new Map<string, SortedSummaries>();
  private dockTallies = new Map<string, DockTally>();
  private cameraTallies = new Map<string, CameraTally>();
  private sortedCameras: string[] | undefined;
  /** A summary changed a field the orders or tallies are keyed on: rebuild them (never in practice). */
  private rebuild = false;
  private readonly facetSets = { devices: new Set<string>(), docks: new Set<string>(), integrity: new Set<string>(), categories: new Set<string>() };
  private facetValues: Facets | undefined;
  private readonly strings = new Map<string, string>();
  private loadedAt: number | undefined;
  private fullListAt = 0;
  private inFlight: Promise<void> | undefined;
  private progress: BuildProgress | undefined;
  private changedSinceSave = 0;
  private lastSaveAt = 0;
  private saving: Promise<void> = Promise.resolve();
  private readonly now: () => number;

  constructor(private readonly deps: CatalogDeps) {
    this.now = deps.now ?? Date.now;
  }

  get staleAfterMs(): number { return this.deps.staleAfterMs ?? DEFAULT_STALE_AFTER_MS; }

  /** A dock made an authenticated request now. */
  seen(dockId: string): void { this.seenAt.set(dockId, this.now()); }

  /** A recording changed in this process: re-read it on the next refresh, whatever the interval. */
  touch(dockId: string, id: string): void {
    this.receiving.add(keyOf(dockId, id));
    this.pendingTouch.push({ dockId, recordingId: id });
  }
  private pendingTouch: RecordingKey[] = [];

  /** Bring the summaries up to date with the store (coalesced; cheap when nothing changed). */
  refresh(options: { force?: boolean } = {}): Promise<void> {
    const since = this.loadedAt;
    if (!options.force && since !== undefined && this.now() - since < (this.deps.minRefreshMs ?? 500) && this.pendingTouch.length === 0) return Promise.resolve();
    return this.inFlight ??= this.load().finally(() => { this.inFlight = undefined; });
  }

  /**
   * Refresh, but while the catalog is first being built wait at most `waitMs`: false when it is
   * still being built (`building` says how far), true when up to date. Later refreshes are
   * always awaited (they read only what changed).
   */
  async refreshWithin(waitMs: number): Promise<boolean> {
    const refreshed = this.refresh();
    if (this.loadedAt !== undefined) { await refreshed; return true; }
    const done = refreshed.then(() => true);
    done.catch(() => {}); // a failure after the wait is the next page's to report
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([done, new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(false), waitMs); })]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** How far the first build is (records read of those to read), or undefined once built. */
  get building(): BuildProgress | undefined { return this.loadedAt === undefined ? { ...(this.progress ?? { read: 0, total: 0 }) } : undefined; }

  private async load(): Promise<void> {
    const started = this.now();
    const store = this.deps.recordings;
    let keys: RecordingKey[];
    const first = this.loadedAt === undefined;
    const full = first || !store.listRecordingsChangedSince;
    if (first) this.progress = { read: 0, total: 0 };
    const snapshot = first && this.deps.snapshotPath && store.listRecordingsChangedSince ? await loadSnapshot(this.deps.snapshotPath) : undefined;
    // A first build over every record saves partial snapshots as of this time (when its reads began).
    let checkpointAsOf: number | undefined;
    if (snapshot && this.trusted(snapshot, started)) {
      for (const s of snapshot.summaries) this.insert(this.interned(s));
      // A margin back: the database's clock (updated_at) need not be this server's.
      keys = await store.listRecordingsChangedSince!(new Date(snapshot.savedAt - (this.deps.snapshotClockMarginMs ?? SNAPSHOT_CLOCK_MARGIN_MS)));
      if (snapshot.partial) {
        // An interrupted first build: what it did not reach is read now (and what changed since it began, above).
        for (const key of await store.listRecordings()) if (!this.lookup(key.dockId, key.recordingId)) keys.push(key);
        checkpointAsOf = snapshot.savedAt;
        this.changedSinceSave++; // replaced by a whole snapshot once this build is done
      }
      this.fullListAt = started;
    } else if (!first && this.deps.seesEveryChange) {
      keys = [];
    } else if (full && !first && started - this.fullListAt < (this.deps.fullRelistMs ?? 10_000)) {
      keys = [];
    } else if (full) {
      keys = await store.listRecordings();
      this.fullListAt = started;
      if (first) checkpointAsOf = started;
    } else {
      keys = await store.listRecordingsChangedSince!(new Date(this.loadedAt!));
    }
    const wanted = new Map<string, RecordingKey>();
    for (const key of keys) wanted.set(keyOf(key.dockId, key.recordingId), key);
    for (const key of this.pendingTouch.splice(0)) wanted.set(keyOf(key.dockId, key.recordingId), key);
    for (const k of this.receiving) {
      const [dockId, id] = k.split('\u0000') as [string, string];
      if (this.lookup(dockId, id)) wanted.set(k, { dockId, recordingId: id });
    }
    const list = [...wanted.values()];
    if (this.progress) this.progress.total = list.length;
    const width = 32;
    let lastCheckpoint = started;
    for (let i = 0; i < list.length; i += width) {
      const slice = list.slice(i, i + width);
      const records = await readRecordings(store, slice);
      await new Promise<void>((resolve) => setImmediate(resolve)); // a batch read may block: let requests in between
      const summaries = await Promise.all(records.map((record, j) => record ? this.summarize(slice[j]!.dockId, record) : undefined));
      for (const [j, summary] of summaries.entries()) {
        // A touched id with no record (a refused create) is not followed further.
        if (!summary) { this.receiving.delete(keyOf(slice[j]!.dockId, slice[j]!.recordingId)); continue; }
        this.upsert(summary);
      }
      if (this.progress) this.progress.read += slice.length;
      if (checkpointAsOf !== undefined && i + width < list.length && this.now() - lastCheckpoint >= (this.deps.buildCheckpointMs ?? BUILD_CHECKPOINT_MS)) {
        await this.checkpoint(checkpointAsOf);
        lastCheckpoint = this.now();
      }
    }
    this.loadedAt = started;
    this.progress = undefined;
    this.saveInBackground();
  }

  /** A saved snapshot describes this backend, as far along its chain as it is now, and no later than now. */
  private trusted(snapshot: Snapshot, now: number): boolean {
    if ((snapshot.backend ?? '') !== (this.deps.backendId ?? '')) return false;
    if (snapshot.savedAt > now + 1000) return false; // from the future: the changes since would never be read
    if (this.deps.chainPosition && snapshot.chain) {
      const here = this.deps.chainPosition();
      if (!here || here.seq < snapshot.chain.seq || (here.seq === snapshot.chain.seq && here.hash !== snapshot.chain.hash)) return false;
    }
    return true;
  }

  private lookup(dockId: string, id: string): RecordingSummary | undefined { return this.byDock.get(dockId)?.get(id); }

  /** A new summary, or a re-read one (changed in place: the orders hold the same object). */
  private upsert(summary: RecordingSummary): void {
    const k = keyOf(summary.dockId, summary.id);
    const existing = this.lookup(summary.dockId, summary.id);
    if (existing) {
      if (existing.createdAt !== summary.createdAt || existing.deviceSerial !== summary.deviceSerial || existing.size !== summary.size || existing.seq !== summary.seq) this.rebuild = true;
      Object.assign(existing, summary);
      this.noteFacets(existing);
      const dock = this.dockTallies.get(existing.dockId);
      const t = arrivalOf(existing);
      if (dock && t > dock.newest) dock.newest = t;
    } else {
      this.insert(summary);
    }
    if (summary.state === 'receiving') this.receiving.add(k); else this.receiving.delete(k);
    this.changedSinceSave++;
  }

  private insert(s: RecordingSummary): void {
    let ids = this.byDock.get(s.dockId);
    if (!ids) { ids = new Map(); this.byDock.set(s.dockId, ids); }
    if (ids.has(s.id)) { this.upsert(s); return; }
    ids.set(s.id, s);
    this.count++;
    if (s.state === 'receiving') this.receiving.add(keyOf(s.dockId, s.id));
    this.index(s);
    this.noteFacets(s);
  }

  /** Into the orders and the tallies. */
  private index(s: RecordingSummary): void {
    this.keyOrder.add(s);
    this.newestOrder.add(s);
    mapGet(this.newestOfDevice, s.deviceSerial, () => new SortedSummaries(byNewest)).add(s);
    mapGet(this.newestOfDock, s.dockId, () => new SortedSummaries(byNewest)).add(s);
    const day = s.createdAt.slice(0, 10);
    const dock = mapGet(this.dockTallies, s.dockId, () => ({ recordings: 0, bytes: 0, day, dayBytes: 0, newest: '' }));
    dock.recordings++;
    dock.bytes += s.size;
    if (day > dock.day) { dock.day = day; dock.dayBytes = 0; }
    if (day === dock.day) dock.dayBytes += s.size;
    const t = arrivalOf(s);
    if (t > dock.newest) dock.newest = t;
    const camera = mapGet(this.cameraTallies, s.deviceSerial, () => {
      this.sortedCameras = undefined;
      return { recordings: 0, bytes: 0, docks: new Set<string>(), lastArrival: s.createdAt, seq: new SequenceTally(), unnumbered: 0, keys: new Map<string, CameraKeySeen>() };
    });
    camera.recordings++;
    camera.bytes += s.size;
    camera.docks.add(s.dockId);
    if (s.createdAt > camera.lastArrival) camera.lastArrival = s.createdAt;
    if (s.seq !== undefined) camera.seq.add(s.seq); else camera.unnumbered++;
    if (s.cameraKeyId !== undefined) {
      const key = mapGet(camera.keys, s.cameraKeyId, () => ({ keyId: s.cameraKeyId!, firstSeen: s.createdAt, recordings: 0 }));
      key.recordings++;
      if (s.createdAt < key.firstSeen) key.firstSeen = s.createdAt;
    }
  }

  private ensureIndexes(): void {
    if (!this.rebuild) return;
    this.rebuild = false;
    this.keyOrder = new SortedSummaries(byKey);
    this.newestOrder = new SortedSummaries(byNewest);
    this.newestOfDevice = new Map();
    this.newestOfDock = new Map();
    this.dockTallies = new Map();
    this.cameraTallies = new Map();
    this.sortedCameras = undefined;
    for (const s of this.summaries()) this.index(s);
  }

  private noteFacets(s: RecordingSummary): void {
    const sets = this.facetSets;
    const grew = [sets.devices.size, sets.docks.size, sets.integrity.size, sets.categories.size].join();
    sets.devices.add(s.deviceSerial); sets.docks.add(s.dockId); sets.integrity.add(s.integrity);
    // A cut category is no filter value: it names no recording's category exactly.
    if (s.category !== undefined && s.textLengths?.category === undefined) sets.categories.add(s.category);
    if ([sets.devices.size, sets.docks.size, sets.integrity.size, sets.categories.size].join() !== grew) this.facetValues = undefined;
  }

  private *summaries(): Iterable<RecordingSummary> {
    for (const ids of this.byDock.values()) yield* ids.values();
  }

  /** The one copy of a string that repeats across summaries (docks, cameras, officers, categories, codecs). */
  private intern(value: string): string;
  private intern(value: string | undefined): string | undefined;
  private intern(value: string | undefined): string | undefined {
    if (value === undefined) return undefined;
    const held = this.strings.get(value);
    if (held !== undefined) return held;
    if (this.strings.size < 200_000 && value.length <= 200) this.strings.set(value, value);
    return value;
  }

  private interned(s: RecordingSummary): RecordingSummary {
    const out: RecordingSummary = {
      dockId: this.intern(s.dockId), id: s.id, deviceSerial: this.intern(s.deviceSerial), fileName: s.fileName, size: s.size, sha256: s.sha256,
      state: s.state === 'complete' ? 'complete' : 'receiving', segmentCount: s.segmentCount, segmentsReceived: s.segmentsReceived,
      integrity: this.intern(s.integrity) as IntegrityStatus, createdAt: s.createdAt, stale: false,
    };
    if (s.completedAt !== undefined) out.completedAt = s.completedAt;
    if (s.durationSeconds !== undefined) out.durationSeconds = s.durationSeconds;
    if (typeof s.videoCodec === 'string') out.videoCodec = this.intern(boundCardText(s.videoCodec).text);
    // Bounded here, so a summary from an older snapshot is cut as well as one just read.
    for (const field of CARD_TEXT_FIELDS) {
      const value = s[field];
      if (typeof value !== 'string') continue;
      const bounded = boundCardText(value);
      out[field] = this.intern(bounded.text);
      const saved = s.textLengths?.[field];
      const fullLength = typeof saved === 'number' && Number.isSafeInteger(saved) && saved > value.length ? saved : bounded.fullLength;
      if (fullLength !== undefined) (out.textLengths ??= {})[field] = fullLength;
    }
    if (s.seq !== undefined) out.seq = s.seq;
    if (typeof s.cameraKeyId === 'string' && /^[0-9a-f]{64}$/.test(s.cameraKeyId)) out.cameraKeyId = this.intern(s.cameraKeyId);
    return out;
  }

  /** Save the summaries for the next start (server close); nothing when this run never loaded them. */
  async save(): Promise<void> {
    if (!this.deps.snapshotPath || this.loadedAt === undefined) return;
    // Not the coalesced refresh: a change of the last half second would be missing from the summaries
    // and read again at the next start. One that is in flight may have begun before that change.
    await this.inFlight;
    await this.refresh({ force: true });
    await this.saveNow();
  }

  private saveNow(): Promise<void> {
    const path = this.deps.snapshotPath!;
    const savedAt = this.loadedAt!;
    const changed = this.changedSinceSave;
    const header = { savedAt, ...this.headerBase() };
    const run = this.saving.catch(() => {}).then(async () => {
      await saveSnapshot(path, header, this.summaries());
      this.changedSinceSave -= changed;
      this.lastSaveAt = this.now();
    });
    this.saving = run;
    return run;
  }

  /** The first build's progress (a partial snapshot as of `asOf`); a failure is reported, the build goes on. */
  private async checkpoint(asOf: number): Promise<void> {
    if (!this.deps.snapshotPath || !this.deps.recordings.listRecordingsChangedSince) return; // never read back without it
    const header = { savedAt: asOf, partial: true, ...this.headerBase() };
    const run = this.saving.catch(() => {}).then(() => saveSnapshot(this.deps.snapshotPath!, header, this.summaries()));
    this.saving = run;
    await run.catch((error: unknown) => this.deps.onSaveError?.(error));
  }

  private headerBase(): { backend?: string; chain?: ChainPosition } {
    const chain = this.deps.chainPosition?.();
    return { ...(this.deps.backendId !== undefined ? { backend: this.deps.backendId } : {}), ...(chain ? { chain } : {}) };
  }

  /** While they change, at most every saveEveryMs (the first build at once). */
  private saveInBackground(): void {
    const every = this.deps.saveEveryMs;
    if (every === undefined || !this.deps.snapshotPath || this.changedSinceSave === 0 || this.now() - this.lastSaveAt < every) return;
    this.lastSaveAt = this.now();
    this.saveNow().catch((error: unknown) => this.deps.onSaveError?.(error));
  }

  private async summarize(dockId: string, record: StoredRecording): Promise<RecordingSummary> {
    const { manifest } = record;
    const sidecar = manifest.device.sidecar;
    const text = (name: string) => (typeof sidecar?.[name] === 'string' ? sidecar[name] as string : undefined);
    const missing = record.receipt ? [] : this.deps.missing ? await this.deps.missing(manifest) : [];
    const video = manifest.file.media?.streams.find((s) => s.type === 'video');
    const seq = sequenceNumberOf(sidecar, manifest.file.name);
    const summary: RecordingSummary = {
      dockId, id: manifest.recordingId, deviceSerial: manifest.device.serial, fileName: manifest.file.name,
      size: manifest.file.size, sha256: manifest.file.sha256, state: record.receipt ? 'complete' : 'receiving',
      segmentCount: manifest.segments.length, segmentsReceived: manifest.segments.length - missing.length,
      integrity: manifest.integrity.status, createdAt: record.createdAt, stale: false,
    };
    if (record.completedAt) summary.completedAt = record.completedAt;
    if (manifest.file.media?.durationSeconds !== undefined) summary.durationSeconds = manifest.file.media.durationSeconds;
    if (video?.codec) summary.videoCodec = video.codec;
    for (const field of CARD_TEXT_FIELDS) {
      const value = text(field);
      if (value !== undefined) summary[field] = value; // bounded by interned()
    }
    if (seq !== undefined) summary.seq = seq;
    const cameraKeyId = cameraKeyIdOf(manifest.device.publicKeyPem);
    if (cameraKeyId) summary.cameraKeyId = cameraKeyId;
    return this.interned(summary);
  }

  private isStale(s: RecordingSummary, now: number): boolean {
    return s.state === 'receiving' && now - Date.parse(s.createdAt) > this.staleAfterMs;
  }

  /** Only a receiving recording can be stale: the others keep stale false (set by summarize). */
  private markStale(): RecordingSummary[] {
    const now = this.now();
    const out: RecordingSummary[] = [];
    for (const k of this.receiving) {
      const [dockId, id] = k.split('\u0000') as [string, string];
      const s = this.lookup(dockId, id);
      if (s) { s.stale = this.isStale(s, now); out.push(s); }
    }
    return out;
  }

  /** The receiving recordings older than the stale age (a pass over the receiving ones only). */
  staleRecordings(): RecordingSummary[] {
    return this.markStale().filter((s) => s.stale).sort(byKey);
  }

  /**
   * One page of the summaries matching `filter`, newest arrival first (the console's list), and how
   * many match. The orders are kept (an arrival time never changes): the base is the camera's or the
   * dock's own order when one is asked for, a day is a block of it found by bisection, and only the
   * other filters (state, integrity, category) are a pass over that block.
   */
  newest(filter: RecordingFilter, offset: number, limit: number): { items: RecordingSummary[]; total: number } {
    this.ensureIndexes();
    this.markStale();
    let list: RecordingSummary[];
    if (filter.device !== undefined) list = this.newestOfDevice.get(filter.device)?.items() ?? [];
    else if (filter.dock !== undefined) list = this.newestOfDock.get(filter.dock)?.items() ?? [];
    else list = this.newestOrder.items();
    let from = 0;
    let to = list.length;
    if (filter.day !== undefined) {
      const day = filter.day;
      from = firstIndex(list, (s) => s.createdAt < day + '\uffff');
      to = firstIndex(list, (s) => s.createdAt < day);
    }
    const rest: RecordingFilter = { ...filter };
    delete rest.day;
    if (filter.device !== undefined) delete rest.device; else delete rest.dock;
    if (Object.keys(rest).length === 0) return { items: list.slice(from + offset, Math.min(to, from + offset + limit)), total: Math.max(0, to - from) };
    const items: RecordingSummary[] = [];
    let total = 0;
    for (let i = from; i < to; i++) {
      const s = list[i]!;
      if (!matches(s, rest)) continue;
      if (total >= offset && items.length < limit) items.push(s);
      total++;
    }
    return { items, total };
  }

  /** The values the console's filters offer (at most 500 each), kept until a new value arrives. */
  facets(): Facets {
    if (!this.facetValues) {
      const sorted = (set: Set<string>) => [...set].sort().slice(0, 500);
      const sets = this.facetSets;
      this.facetValues = { devices: sorted(sets.devices), docks: sorted(sets.docks), integrity: sorted(sets.integrity), categories: sorted(sets.categories) };
    }
    return this.facetValues;
  }

  get size(): number { return this.count; }

  get(dockId: string, id: string): RecordingSummary | undefined {
    const s = this.lookup(dockId, id);
    if (s) s.stale = this.isStale(s, this.now());
    return s;
  }

  /** A bounded page in (dock, id) order after `cursor` (an opaque token from the previous page); a dock is a block found by bisection. */
  page(filter: RecordingFilter, limit: number, cursor?: string): Page<RecordingSummary> {
    this.ensureIndexes();
    this.markStale();
    const all = this.keyOrder.items();
    let from = 0;
    let to = all.length;
    if (filter.dock !== undefined) {
      const dock = filter.dock;
      from = firstIndex(all, (s) => s.dockId >= dock);
      to = firstIndex(all, (s) => s.dockId > dock);
    }
    let start = from;
    if (cursor !== undefined) {
      const after = decodeCursor(cursor);
      start = Math.max(from, firstIndex(all, (s) => compareKey(s.dockId, s.id, after[0], after[1]) > 0));
    }
    const rest: RecordingFilter = { ...filter };
    delete rest.dock;
    let items: RecordingSummary[];
    let total: number;
    let more: boolean;
    if (Object.keys(rest).length === 0) {
      items = all.slice(start, Math.min(to, start + limit));
      total = to - from;
      more = start + limit < to;
    } else {
      items = [];
      total = 0;
      more = false;
      for (let i = from; i < to; i++) {
        const s = all[i]!;
        if (!matches(s, rest)) continue;
        total++;
        if (i < start) continue;
        if (items.length < limit) items.push(s); else more = true;
      }
    }
    const last = items[items.length - 1];
    return { items, total, ...(more && last ? { next: encodeCursor(last.dockId, last.id) } : {}) };
  }

  /** Every dock: its tally, with in progress and stale from the receiving recordings. */
  async docks(): Promise<DockSummary[]> {
    this.ensureIndexes();
    const today = new Date(this.now()).toISOString().slice(0, 10);
    const ids = new Set<string>(this.deps.knownDocks?.() ?? []);
    for (const id of this.dockTallies.keys()) ids.add(id);
    const docks = new Map<string, DockSummary>();
    for (const dockId of [...ids].sort()) {
      const t = this.dockTallies.get(dockId);
      docks.set(dockId, { dockId, recordings: t?.recordings ?? 0, bytes: t?.bytes ?? 0, bytesToday: t && t.day === today ? t.dayBytes : 0, inProgress: 0, stale: 0 });
    }
    for (const s of this.markStale()) {
      const d = docks.get(s.dockId);
      if (!d) continue;
      d.inProgress++;
      if (s.stale) d.stale++;
    }
    const out = [...docks.values()];
    await Promise.all(out.map(async (d) => {
      const seen = this.seenAt.get(d.dockId);
      const fromRecords = this.dockTallies.get(d.dockId)?.newest || undefined;
      const seenIso = seen !== undefined ? new Date(seen).toISOString() : undefined;
      const last = [seenIso, fromRecords].filter((t): t is string => t !== undefined).sort().pop();
      if (last) d.lastSeen = last;
      const keyId = await this.deps.dockKeyId?.(d.dockId).catch(() => undefined);
      if (keyId) d.keyId = keyId;
    }));
    return out;
  }

  /** One camera's keys seen (first seen first), or [] for a serial not seen. */
  cameraKeys(serial: string): CameraKeySeen[] {
    this.ensureIndexes();
    const t = this.cameraTallies.get(serial);
    return t ? [...t.keys.values()].sort((a, b) => (a.firstSeen < b.firstSeen ? -1 : a.firstSeen > b.firstSeen ? 1 : 0)).map((k) => ({ ...k })) : [];
  }

  /** Every camera, from its tally (at most MAX_GAP_RANGES missing ranges each, `moreRanges` says how many more). */
  cameras(): CameraSummary[] {
    this.ensureIndexes();
    this.sortedCameras ??= [...this.cameraTallies.keys()].sort();
    return this.sortedCameras.map((serial) => {
      const t = this.cameraTallies.get(serial)!;
      const gaps = t.seq.gaps(MAX_GAP_RANGES);
      const keys = [...t.keys.values()].sort((a, b) => (a.firstSeen < b.firstSeen ? -1 : a.firstSeen > b.firstSeen ? 1 : 0)).map((k) => ({ ...k }));
      return { serial, recordings: t.recordings, bytes: t.bytes, docks: [...t.docks].sort(), lastArrival: t.lastArrival, unnumbered: t.unnumbered, keys, ...(gaps ? { sequence: gaps } : {}) };
    });
  }
}

/** The key id of a camera key the card presented; undefined for none or one that is no key. */
export function cameraKeyIdOf(pem: string | undefined): string | undefined {
  if (typeof pem !== 'string' || pem === '') return undefined;
  try { return keyIdOf(pem); } catch { return undefined; }
}

function arrivalOf(s: RecordingSummary): string {
  return s.completedAt && s.completedAt > s.createdAt ? s.completedAt : s.createdAt;
}

function mapGet<K, V>(map: Map<K, V>, key: K, make: () => V): V {
  let value = map.get(key);
  if (value === undefined) { value = make(); map.set(key, value); }
  return value;
}

/** First index at which `pred` holds (it holds for every later index too). */
function firstIndex<T>(list: readonly T[], pred: (item: T) => boolean): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (pred(list[mid]!)) hi = mid; else lo = mid + 1;
  }
  return lo;
}

function matches(s: RecordingSummary, f: RecordingFilter): boolean {
  if (f.dock !== undefined && s.dockId !== f.dock) return false;
  if (f.device !== undefined && s.deviceSerial !== f.device) return false;
  if (f.state !== undefined && !(s.state === f.state || (f.state === 'stale' && s.stale))) return false;
  if (f.integrity !== undefined && s.integrity !== f.integrity) return false;
  if (f.category !== undefined && (s.category !== f.category || s.textLengths?.category !== undefined)) return false;
  if (f.day !== undefined && !s.createdAt.startsWith(f.day)) return false;
  return true;
}

function compareKey(ad: string, ai: string, bd: string, bi: string): number {
  if (ad !== bd) return ad < bd ? -1 : 1;
  return ai < bi ? -1 : ai > bi ? 1 : 0;
}

export class CursorError extends Error {
  readonly code = 'bad_cursor';
}

export function encodeCursor(dockId: string, id: string): string {
  return Buffer.from(JSON.stringify([dockId, id]), 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string): [string, string] {
  try {
    if (cursor.length > 800) throw new Error('too long');
    const value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
    if (Array.isArray(value) && value.length === 2 && typeof value[0] === 'string' && typeof value[1] === 'string') return [value[0], value[1]];
  } catch { /* below */ }
  throw new CursorError('cursor is not one this server handed out');
}
