/**
 * Everything the server keeps besides blob bytes, behind one interface per concern, so that the
 * same ingest rules run on the embedded backend (files + SQLite in the data dir, the default)
 * and on PostgreSQL (src/server/pg/, shared by any number of server processes). Each interface
 * has a conformance suite in test/server/stateConformance.ts that both backends pass.
 *
 *  - RecordingStore: one record per (dock, recording): manifest, creation time, receipt.
 *  - PossessionStore: which dock proved it holds which blob (possession.ts explains why).
 *  - DockKeyStore: trust-on-first-use pins of dock public keys (dockKeys.ts).
 *  - CustodyChain: the append-only, hash-chained custody log with its signed checkpoints.
 *  - RecordingLocks: mutual exclusion per (dock, recording) across every server sharing the state.
 *
 * Tokens: the embedded server reads its --tokens file (SIGHUP re-reads it); with PostgreSQL their
 * SHA-256 digests are shared state (pg/pgTokens.ts), so every server accepts the same docks. The
 * receipt signing key is not state: every server is started with the same --server-key file; the
 * PostgreSQL backend records its key id and refuses a server with another.
 */
import type { Logger } from '../log.js';
import type { TokenTable } from './auth.js';
import type { CustodyCheckpoint } from './custody/custodyAnchor.js';
import type { TokenFollower } from './pg/pgTokens.js';
import type { CustodyEntry, CustodyFields } from './custody/custodyLog.js';
import type { RecordingKey, StoredRecording } from './store/store.js';

export interface RecordingStore {
  /** The record of recording `id` of dock `dockId`; another dock's recording of the same id is never returned. */
  getRecording(dockId: string, id: string): Promise<StoredRecording | undefined>;
  /** Create atomically; returns false (and changes nothing) if this dock already has the id. */
  createRecording(dockId: string, id: string, record: StoredRecording): Promise<boolean>;
  /** Replace atomically (a crash leaves the old or the new record, never a mix). */
  updateRecording(dockId: string, id: string, record: StoredRecording): Promise<void>;
  /** The ids of one dock's recordings, sorted. */
  listRecordingIds(dockId: string): Promise<string[]>;
  /** Every (dockId, recordingId), sorted by dock then id (for scrub, verify-log). */
  listRecordings(): Promise<RecordingKey[]>;
  /** Optional: the records of many keys in one call (passes over the whole history); getRecording of each otherwise (readRecordings). */
  getRecordings?(keys: readonly RecordingKey[]): Promise<Array<StoredRecording | undefined>>;
  /** Optional: a superset of the recordings created or updated at or after `since`. */
  listRecordingsChangedSince?(since: Date): Promise<RecordingKey[]>;
  /**
   * Optional: a value that changes whenever the record is replaced or altered (the filesystem's
   * device, inode, size and times), undefined when there is none. Lets a segment PUT reuse the
   * record it parsed last time instead of reading and parsing it again (ingest.ts).
   */
  recordingStamp?(dockId: string, id: string): Promise<string | undefined>;
}

export interface PossessionStore {
  has(dockId: string, sha256: string): Promise<boolean>;
  /** Idempotent. */
  add(dockId: string, sha256: string): Promise<void>;
  /**
   * The hashes a receiving recording's plan needs (noted at its create): while it is receiving,
   * another recording's completion does not forget that the dock holds them. Idempotent.
   */
  expect(dockId: string, recordingId: string, sha256s: readonly string[]): Promise<void>;
  /**
   * A recording completed (its receipt proves the dock held its bytes): drop what it expected, and
   * the rows of `sha256s` that no other receiving recording of the dock expects, so the table stays
   * bounded by what is in flight, not by history. Idempotent.
   */
  forget(dockId: string, recordingId: string, sha256s: readonly string[]): Promise<void>;
  close(): Promise<void>;
}

export type PinResult = 'pinned' | 'match' | 'mismatch';

export interface DockKeyStore {
  /** 'pinned' on first use, 'match' afterwards, 'mismatch' when the key changed. Concurrent first uses pin one key. */
  check(dockId: string, publicKeyPem: string): Promise<PinResult>;
  /** Operator action: forget a dock's pin. Returns whether there was one. */
  reset(dockId: string): Promise<boolean>;
  /** Key id (SHA-256 of the SPKI DER, hex) of the pinned key, for the operator (GET /v1/docks). */
  keyId?(dockId: string): Promise<string | undefined>;
}

export interface CustodyChain {
  open(): Promise<void>;
  /**
   * Append one entry. `build` sees the seq the entry gets and the hash of the entry before it,
   * and may add fields. A `receipt-issued` entry resolves only once a signed checkpoint covers it.
   */
  append<T>(fields: CustodyFields, build?: (seq: number, prevHash: string) => { extra?: Record<string, unknown>; value: T }): Promise<{ seq: number; value: T | undefined }>;
  /** Append only if the chain does not mention the subject yet (decided atomically with the write). Resolves 0 when mentioned. */
  appendUnlessMentioned(fields: CustodyFields, extra?: Record<string, unknown>): Promise<number>;
  /** The recording's `receipt-issued` entry, if the chain has one (covered by a checkpoint when returned). */
  findReceiptEntry(dockId: string, recordingId: string): Promise<CustodyEntry | undefined>;
  /** The newest signed checkpoint known to this process. */
  lastCheckpoint(): CustodyCheckpoint | undefined;
  /**
   * The entries about one recording, in chain order (its own entries, and `segment-stored` entries of
   * its segments' blobs), at most `limit` (the console's custody timeline; a scan of the chain).
   */
  entriesAbout?(dockId: string, recordingId: string, segmentSha256s: readonly string[], limit: number): Promise<CustodyEntry[]>;
  close(): Promise<void>;
}

export interface RecordingLocks {
  /** Run `fn` while no other holder (in this process or, for a shared backend, any server) runs under `key`. */
  run<T>(key: string, fn: () => Promise<T>): Promise<T>;
}

export interface ServerState {
  /** 'embedded' (data dir) or 'postgres'. */
  kind: 'embedded' | 'postgres';
  /** PostgreSQL: dock tokens (their digests) shared by every server; this server's table follows them (pg/pgTokens.ts). */
  followTokens?: (table: TokenTable, log?: Logger) => TokenFollower;
  recordings: RecordingStore;
  possession: PossessionStore;
  dockKeys: DockKeyStore;
  custody: CustodyChain;
  locks: RecordingLocks;
  close(): Promise<void>;
}

/** The records of `keys` (a batch of a few dozen), in order: by the store's batch read when it has one. */
export function readRecordings(store: RecordingStore, keys: readonly RecordingKey[]): Promise<Array<StoredRecording | undefined>> {
  return store.getRecordings ? store.getRecordings(keys) : Promise.all(keys.map((key) => store.getRecording(key.dockId, key.recordingId)));
}
