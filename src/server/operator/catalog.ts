/**
 * What the operator and the console look at: one small summary per recording, read from the
 * Store (any backend) and kept in memory, so a page on a server with 10 000 recordings is a
 * filter over an array, not 10 000 record reads. Loaded on first use (startup stays flat),
 * then refreshed with the store's `listRecordingsChangedSince` when it has one (a full re-list
 * otherwise, at most every `fullRelistMs`); receiving recordings are re-read on every refresh
 * because their segments arrive without the record changing. Records are never deleted.
 * Memory: about 0.5 KB per recording (no manifests, no segment plans).
 */
import type { IntegrityStatus, RecordingManifest, RecordingState } from '../../protocol/types.js';
import type { RecordingStore } from '../state.js';
import type { RecordingKey, StoredRecording } from '../store.js';
import { loadSnapshot, saveSnapshot } from './catalogSnapshot.js';
import { sequenceGaps, sequenceNumberOf, type SequenceGaps } from './sequence.js';

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
}

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
}

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
  /** Refreshes closer together than this reuse the last one (default 500 ms). */
  minRefreshMs?: number;
  fullRelistMs?: number;
}

export const DEFAULT_STALE_AFTER_MS = 24 * 3600_000;
const SNAPSHOT_CLOCK_MARGIN_MS = 60_000;
const keyOf = (dockId: string, id: string) => `${dockId}\u0000${id}`;

export class Catalog {
  private readonly byKey = new Map<string, RecordingSummary>();
  private readonly receiving = new Set<string>();
  private readonly seenAt = new Map<string, number>();
  private sortedByKey: RecordingSummary[] | undefined;
  private sortedNewest: RecordingSummary[] | undefined;
  private facetValues: Facets | undefined;
  private loadedAt: number | undefined;
  private fullListAt = 0;
  private inFlight: Promise<void> | undefined;
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
  refresh(): Promise<void> {
    const since = this.loadedAt;
    if (since !== undefined && this.now() - since < (this.deps.minRefreshMs ?? 500) && this.pendingTouch.length === 0) return Promise.resolve();
    return this.inFlight ??= this.load().finally(() => { this.inFlight = undefined; });
  }

  private async load(): Promise<void> {
    const started = this.now();
    const store = this.deps.recordings;
    let keys: RecordingKey[];
    const full = this.loadedAt === undefined || !store.listRecordingsChangedSince;
    const snapshot = this.loadedAt === undefined && this.deps.snapshotPath && store.listRecordingsChangedSince ? await loadSnapshot(this.deps.snapshotPath) : undefined;
    if (snapshot) {
      for (const s of snapshot.summaries) {
        const k = keyOf(s.dockId, s.id);
        this.byKey.set(k, s);
        if (s.state === 'receiving') this.receiving.add(k);
      }
      this.sortedByKey = undefined;
      this.sortedNewest = undefined;
      this.facetValues = undefined;
      // A margin back: the database's clock (updated_at) need not be this server's.
      keys = await store.listRecordingsChangedSince!(new Date(snapshot.savedAt - (this.deps.snapshotClockMarginMs ?? SNAPSHOT_CLOCK_MARGIN_MS)));
      this.fullListAt = started;
    } else if (this.loadedAt !== undefined && this.deps.seesEveryChange) {
      keys = [];
    } else if (full && this.loadedAt !== undefined && started - this.fullListAt < (this.deps.fullRelistMs ?? 10_000)) {
      keys = [];
    } else if (full) {
      keys = await store.listRecordings();
      this.fullListAt = started;
    } else {
      keys = await store.listRecordingsChangedSince!(new Date(this.loadedAt!));
    }
    const wanted = new Map<string, RecordingKey>();
    for (const key of keys) wanted.set(keyOf(key.dockId, key.recordingId), key);
    for (const key of this.pendingTouch.splice(0)) wanted.set(keyOf(key.dockId, key.recordingId), key);
    for (const k of this.receiving) {
      const s = this.byKey.get(k);
      if (s) wanted.set(k, { dockId: s.dockId, recordingId: s.id });
    }
    const list = [...wanted.values()];
    const width = 32;
    for (let i = 0; i < list.length; i += width) {
      const slice = list.slice(i, i + width);
      const records = await Promise.all(slice.map((key) => store.getRecording(key.dockId, key.recordingId)));
      const summaries = await Promise.all(records.map((record, j) => record ? this.summarize(slice[j]!.dockId, record) : undefined));
      for (const [j, summary] of summaries.entries()) {
        // A touched id with no record (a refused create) is not followed further.
        if (!summary) { this.receiving.delete(keyOf(slice[j]!.dockId, slice[j]!.recordingId)); continue; }
        const k = keyOf(summary.dockId, summary.id);
        const existing = this.byKey.get(k);
        // In place: the sorted array holds the same objects.
        if (existing) Object.assign(existing, summary);
        else {
          this.byKey.set(k, summary);
          this.sortedByKey = undefined;
          this.sortedNewest = undefined;
          this.facetValues = undefined;
        }
        if (summary.state === 'receiving') this.receiving.add(k); else this.receiving.delete(k);
      }
    }
    this.loadedAt = started;
  }

  /** Save the summaries for the next start (server close); nothing when this run never loaded them. */
  async save(): Promise<void> {
    if (!this.deps.snapshotPath || this.loadedAt === undefined) return;
    await this.refresh();
    await saveSnapshot(this.deps.snapshotPath, this.loadedAt, this.byKey.values());
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
    for (const [field, name] of [['category', 'category'], ['trigger', 'trigger'], ['officerId', 'officerId'], ['startedAt', 'startedAt']] as const) {
      const value = text(name);
      if (value !== undefined) summary[field] = value;
    }
    if (seq !== undefined) summary.seq = seq;
    return summary;
  }

  private isStale(s: RecordingSummary, now: number): boolean {
    return s.state === 'receiving' && now - Date.parse(s.createdAt) > this.staleAfterMs;
  }

  /** Every summary, sorted by dock then id (the API's cursor order), with `stale` as of now. */
  all(): RecordingSummary[] {
    if (!this.sortedByKey) {
      this.sortedByKey = [...this.byKey.values()].sort((a, b) => compareKey(a.dockId, a.id, b.dockId, b.id));
    }
    this.markStale();
    return this.sortedByKey;
  }

  /** Only a receiving recording can be stale: the others keep stale false (set by summarize). */
  private markStale(): void {
    const now = this.now();
    for (const k of this.receiving) {
      const s = this.byKey.get(k);
      if (s) s.stale = this.isStale(s, now);
    }
  }

  /**
   * One page of the summaries matching `filter`, newest arrival first (the console's list), and how
   * many match. The order is kept between requests (an arrival time never changes), so a page is a
   * slice when nothing is filtered and one pass otherwise, never a sort per request.
   */
  newest(filter: RecordingFilter, offset: number, limit: number): { items: RecordingSummary[]; total: number } {
    if (!this.sortedNewest) {
      this.sortedNewest = [...this.byKey.values()].sort((a, b) => (a.createdAt < b.createdAt ? 1 : a.createdAt > b.createdAt ? -1 : compareKey(a.dockId, a.id, b.dockId, b.id)));
    }
    this.markStale();
    const list = this.sortedNewest;
    if (Object.keys(filter).length === 0) return { items: list.slice(offset, offset + limit), total: list.length };
    const items: RecordingSummary[] = [];
    let total = 0;
    for (const s of list) {
      if (!matches(s, filter)) continue;
      if (total >= offset && items.length < limit) items.push(s);
      total++;
    }
    return { items, total };
  }

  /** The values the console's filters offer (at most 500 each), kept until a recording is added. */
  facets(): Facets {
    if (!this.facetValues) {
      const sets = { devices: new Set<string>(), docks: new Set<string>(), integrity: new Set<string>(), categories: new Set<string>() };
      for (const s of this.byKey.values()) {
        sets.devices.add(s.deviceSerial); sets.docks.add(s.dockId); sets.integrity.add(s.integrity);
        if (s.category !== undefined) sets.categories.add(s.category);
      }
      const sorted = (set: Set<string>) => [...set].sort().slice(0, 500);
      this.facetValues = { devices: sorted(sets.devices), docks: sorted(sets.docks), integrity: sorted(sets.integrity), categories: sorted(sets.categories) };
    }
    return this.facetValues;
  }

  get size(): number { return this.byKey.size; }

  get(dockId: string, id: string): RecordingSummary | undefined {
    const s = this.byKey.get(keyOf(dockId, id));
    if (s) s.stale = this.isStale(s, this.now());
    return s;
  }

  /** A bounded page in (dock, id) order after `cursor` (an opaque token from the previous page). */
  page(filter: RecordingFilter, limit: number, cursor?: string): Page<RecordingSummary> {
    const all = this.all();
    const matching = all.filter((s) => matches(s, filter));
    let start = 0;
    if (cursor !== undefined) {
      const after = decodeCursor(cursor);
      start = lowerBound(matching, after);
    }
    const items = matching.slice(start, start + limit);
    const last = items[items.length - 1];
    return { items, total: matching.length, ...(start + limit < matching.length && last ? { next: encodeCursor(last.dockId, last.id) } : {}) };
  }

  async docks(): Promise<DockSummary[]> {
    const todayStart = new Date(this.now()).toISOString().slice(0, 10) + 'T00:00:00.000Z';
    const docks = new Map<string, DockSummary>();
    const newest = new Map<string, string>();
    const blank = (dockId: string): DockSummary => ({ dockId, recordings: 0, bytes: 0, bytesToday: 0, inProgress: 0, stale: 0 });
    for (const id of this.deps.knownDocks?.() ?? []) docks.set(id, blank(id));
    for (const s of this.all()) {
      const d = docks.get(s.dockId) ?? blank(s.dockId);
      docks.set(s.dockId, d);
      d.recordings++;
      d.bytes += s.size;
      if (s.createdAt >= todayStart) d.bytesToday += s.size;
      if (s.state === 'receiving') d.inProgress++;
      if (s.stale) d.stale++;
      const t = s.completedAt && s.completedAt > s.createdAt ? s.completedAt : s.createdAt;
      if (t > (newest.get(s.dockId) ?? '')) newest.set(s.dockId, t);
    }
    const out = [...docks.values()].sort((a, b) => (a.dockId < b.dockId ? -1 : a.dockId > b.dockId ? 1 : 0));
    await Promise.all(out.map(async (d) => {
      const seen = this.seenAt.get(d.dockId);
      const fromRecords = newest.get(d.dockId);
      const seenIso = seen !== undefined ? new Date(seen).toISOString() : undefined;
      const last = [seenIso, fromRecords].filter((t): t is string => t !== undefined).sort().pop();
      if (last) d.lastSeen = last;
      const keyId = await this.deps.dockKeyId?.(d.dockId).catch(() => undefined);
      if (keyId) d.keyId = keyId;
    }));
    return out;
  }

  cameras(): CameraSummary[] {
    const byCamera = new Map<string, { summary: CameraSummary; seqs: number[]; docks: Set<string> }>();
    for (const s of this.all()) {
      let c = byCamera.get(s.deviceSerial);
      if (!c) {
        c = { summary: { serial: s.deviceSerial, recordings: 0, bytes: 0, docks: [], lastArrival: s.createdAt, unnumbered: 0 }, seqs: [], docks: new Set() };
        byCamera.set(s.deviceSerial, c);
      }
      c.summary.recordings++;
      c.summary.bytes += s.size;
      c.docks.add(s.dockId);
      if (s.createdAt > c.summary.lastArrival) c.summary.lastArrival = s.createdAt;
      if (s.seq !== undefined) c.seqs.push(s.seq); else c.summary.unnumbered++;
    }
    return [...byCamera.values()].map(({ summary, seqs, docks }) => {
      const gaps = sequenceGaps(seqs);
      return { ...summary, docks: [...docks].sort(), ...(gaps ? { sequence: gaps } : {}) };
    }).sort((a, b) => (a.serial < b.serial ? -1 : a.serial > b.serial ? 1 : 0));
  }
}

function matches(s: RecordingSummary, f: RecordingFilter): boolean {
  if (f.dock !== undefined && s.dockId !== f.dock) return false;
  if (f.device !== undefined && s.deviceSerial !== f.device) return false;
  if (f.state !== undefined && !(s.state === f.state || (f.state === 'stale' && s.stale))) return false;
  if (f.integrity !== undefined && s.integrity !== f.integrity) return false;
  if (f.category !== undefined && s.category !== f.category) return false;
  if (f.day !== undefined && !s.createdAt.startsWith(f.day)) return false;
  return true;
}

function compareKey(ad: string, ai: string, bd: string, bi: string): number {
  if (ad !== bd) return ad < bd ? -1 : 1;
  return ai < bi ? -1 : ai > bi ? 1 : 0;
}

/** First index whose key is after `after`. */
function lowerBound(list: readonly RecordingSummary[], after: [string, string]): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (compareKey(list[mid]!.dockId, list[mid]!.id, after[0], after[1]) <= 0) lo = mid + 1; else hi = mid;
  }
  return lo;
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
