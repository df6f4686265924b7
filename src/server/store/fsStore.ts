/**
 * Filesystem store: blobs/<aa>/<sha256> (content-addressed segments),
 * recordings/<dockId>/<id>.json (metadata, namespaced per dock; a data dir from
 * before the namespacing, recordings/<id>.json, is moved into it by open()),
 * tmp/ (writes in progress; same filesystem so that link/rename are atomic),
 * damaged/<sha256>-<ms>-<rand> (blobs a verified read found damaged, kept for the
 * operator, no longer served). A blob is published with link(2), which fails if
 * the name exists, so two concurrent writers of one segment leave one blob and
 * exactly one of them reports `created` (unless the existing one is damaged: then
 * the verified new bytes replace it). Folders are 0700, files 0600.
 */
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, constants, fstatSync, openSync, readFileSync, type Stats } from 'node:fs';
import { once } from 'node:events';
import { chmod, link, lstat, open, opendir, readdir, readFile, rename, rm, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { EnvironmentError, errnoCode, IntegrityError } from '../../errors.js';
import { isValidId } from '../../protocol/types.js';
import { CHUNK_BYTES, readChunks } from '../../util/chunkReader.js';
import { SHA256_HEX } from '../../protocol/digest.js';
import { assertSha256, insideRoot } from '../paths.js';
import { makePrivateDir, PRIVATE_FILE_MODE } from '../privateFiles.js';
import { writeTempFile } from '../../util/atomicFile.js';
import type { BlobWriteResult, RecordingKey, ScannedBlob, Store, StoredRecording } from './store.js';
import { SERVER_ERROR_CODES } from '../errorCodes.js';
import { BLOB_DAMAGED, BLOB_MISSING, isBlobIntegrityError, readsBackIntact, verifiedBlobRead } from './verifiedRead.js';
import { bodyCheck } from './verifiedWrite.js';
import { VerifiedFileSink } from './verifiedFileSink.js';

const USAGE_FILE = 'store-usage.json';
/** In a shared folder, a temp file this old is a write whose server died (a write lasts at most the request timeout). */
const SHARED_TMP_MAX_AGE_MS = 60 * 60_000;

export class FsStore implements Store {
  private readonly blobRoot: string;
  private readonly recordingRoot: string;
  private readonly tmpRoot: string;
  private readonly damagedRoot: string;
  private used = 0;
  /** Usage is only tracked (and saved) by a store that was opened: a scrub beside a running server must not overwrite its figure. */
  private opened = false;
  private usageWrite: Promise<void> = Promise.resolve();

  /**
   * `shared`: other server processes use this folder at the same time (--store): open() then
   * leaves their writes in progress alone and removes only temp files older than an hour.
   */
  constructor(readonly root: string, private readonly options: { shared?: boolean } = {}) {
    this.blobRoot = insideRoot(root, 'blobs');
    this.recordingRoot = insideRoot(root, 'recordings');
    this.tmpRoot = insideRoot(root, 'tmp');
    this.damagedRoot = insideRoot(root, 'damaged');
  }

  async open(): Promise<void> {
    await makePrivateDir(this.root);
    await Promise.all([this.blobRoot, this.recordingRoot, this.tmpRoot, this.damagedRoot].map((dir) => makePrivateDir(dir)));
    // Anything in tmp/ is a write that never completed: it was never visible, so it can go.
    let stale = await readdir(this.tmpRoot);
    if (this.options.shared) {
      const cutoff = Date.now() - SHARED_TMP_MAX_AGE_MS;
      stale = (await Promise.all(stale.map(async (name) => ((await lstat(insideRoot(this.tmpRoot, name)).catch(() => undefined))?.mtimeMs ?? Infinity) < cutoff ? name : undefined)))
        .filter((name): name is string => name !== undefined);
    }
    await Promise.all(stale.map((name) => rm(insideRoot(this.tmpRoot, name), { force: true, recursive: true })));
    try {
      const saved = JSON.parse(await readFile(insideRoot(this.root, USAGE_FILE), 'utf8')) as { bytes?: unknown };
      this.used = typeof saved.bytes === 'number' && saved.bytes >= 0 ? saved.bytes : 0;
    } catch (error) {
      if (errnoCode(error) !== 'ENOENT') throw error;
    }
    await this.migrateFlatRecordings();
    this.opened = true;
  }

  /**
   * Before recordings were namespaced per dock they lived at recordings/<id>.json. Each such
   * file moves to recordings/<its manifest's dock id>/<id>.json: link then unlink, so a crash
   * leaves the record in one place or in both with the same bytes (the next open finishes it).
   * A clash with different bytes is never resolved by guessing: the server refuses to start.
   */
  private async migrateFlatRecordings(): Promise<void> {
    const entries = await readdir(this.recordingRoot, { withFileTypes: true });
    const flat = entries.filter((e) => e.isFile() && e.name.endsWith('.json') && isValidId(e.name.slice(0, -5)));
    if (!flat.length) return;
    const touched = new Set<string>();
    for (const entry of flat) {
      const id = entry.name.slice(0, -5);
      const oldPath = insideRoot(this.recordingRoot, entry.name);
      const text = await readFile(oldPath, 'utf8');
      let dockId: unknown;
      try {
        dockId = (JSON.parse(text) as StoredRecording).manifest?.dock?.id;
      } catch (error) {
        throw new EnvironmentError('E_STORE_MIGRATION', `${oldPath} is not valid JSON, so it cannot be moved under its dock; have it examined, then move or remove it by hand`, { cause: error });
      }
      if (typeof dockId !== 'string' || !isValidId(dockId)) {
        throw new EnvironmentError('E_STORE_MIGRATION', `${oldPath} names no valid dock id, so it cannot be moved under its dock; have it examined, then move or remove it by hand`);
      }
      const newPath = this.recordingPath(dockId, id);
      await makePrivateDir(dirname(newPath));
      try {
        await link(oldPath, newPath);
      } catch (error) {
        if (errnoCode(error) !== 'EEXIST') throw error;
        if (await readFile(newPath, 'utf8') !== text) {
          throw new EnvironmentError('E_STORE_MIGRATION', `both ${oldPath} and ${newPath} exist with different contents; have them examined, keep the right one and remove the other`);
        }
      }
      touched.add(dirname(newPath));
    }
    for (const dir of touched) await syncDir(dir);
    await syncDir(this.recordingRoot); // the new dock folders are durable before the old names go
    for (const entry of flat) await unlink(insideRoot(this.recordingRoot, entry.name));
    await syncDir(this.recordingRoot);
  }

  private blobPath(sha256: string): string {
    assertSha256(sha256);
    return insideRoot(this.blobRoot, sha256.slice(0, 2), sha256);
  }

  private dockDir(dockId: string): string {
    if (!isValidId(dockId)) throw new IntegrityError(SERVER_ERROR_CODES.invalidId, `invalid dock id: ${JSON.stringify(dockId)}`);
    return insideRoot(this.recordingRoot, dockId);
  }

  private recordingPath(dockId: string, id: string): string {
    if (!isValidId(id)) throw new IntegrityError(SERVER_ERROR_CODES.invalidId, `invalid recording id: ${JSON.stringify(id)}`);
    return insideRoot(this.dockDir(dockId), `${id}.json`);
  }

  private tempPath(): string {
    return insideRoot(this.tmpRoot, `${Date.now()}-${randomBytes(8).toString('hex')}.part`);
  }

  async putBlob(sha256: string, body: Readable | AsyncIterable<Buffer | Uint8Array>, expectedLength: number, options: { onBytes?: (bytes: number) => void } = {}): Promise<BlobWriteResult> {
    const finalPath = this.blobPath(sha256);
    const tempPath = this.tempPath();
    // Hash and count in the same pass that writes: one read of the body, no buffering of it.
    const verify = bodyCheck(sha256, expectedLength, options);
    // The sink fsyncs the bytes before it closes the file, hence before it is published.
    const out = new VerifiedFileSink(tempPath, PRIVATE_FILE_MODE, verify);
    try {
      await pipeline(body, out);
      if (!out.closed) await once(out, 'close');
      if (!out.synced) throw new Error('the temp file of a segment was not synced and closed'); // pipeline resolves after _final: never
      const { size: received } = verify.check();
      await chmod(tempPath, PRIVATE_FILE_MODE);
      await makePrivateDir(dirname(finalPath));
      let created = true;
      try {
        await link(tempPath, finalPath);
      } catch (error) {
        if (errnoCode(error) !== 'EEXIST') throw error;
        // Someone stored the same name first: keep theirs if it is intact. If it is not, the
        // verified read moved it to damaged/, and these verified bytes take its place.
        created = !(await this.intact(sha256));
        if (created) {
          try {
            await link(tempPath, finalPath);
          } catch (again) {
            if (errnoCode(again) !== 'EEXIST') throw again;
            created = false; // a concurrent repair won; it was verified as these bytes were
          }
        }
      }
      await unlink(tempPath);
      if (created) {
        // The directory entry is made durable by syncBlobs() before any receipt relies on it;
        // a crash before that only makes the segment "missing" again, and the dock re-sends it.
        this.used += received;
        this.saveUsage();
      }
      return { created, size: received };
    } catch (error) {
      if (!out.closed) { out.destroy(); await once(out, 'close').catch(() => {}); }
      await rm(tempPath, { force: true });
      throw error;
    }
  }

  async syncBlobs(sha256s: readonly string[]): Promise<void> {
    const dirs = new Set(sha256s.map((sha) => dirname(this.blobPath(sha))));
    for (const dir of dirs) await syncDir(dir);
  }

  async hasBlob(sha256: string): Promise<boolean> {
    try {
      // Only a regular file is a blob: a symbolic link (or anything else) there is not held.
      return (await lstat(this.blobPath(sha256))).isFile();
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return false;
      throw error;
    }
  }

  async blobSize(sha256: string): Promise<number | undefined> {
    try {
      const info = await lstat(this.blobPath(sha256));
      return info.isFile() ? info.size : undefined;
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return undefined;
      throw error;
    }
  }

  async blobIdentity(sha256: string): Promise<string | undefined> {
    try {
      const info = await lstat(this.blobPath(sha256), { bigint: true });
      return info.isFile() ? `${info.dev}:${info.ino}:${info.size}:${info.mtimeNs}:${info.ctimeNs}` : undefined;
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return undefined;
      throw error;
    }
  }

  readBlob(sha256: string, start?: number, endInclusive?: number, length?: number): Readable {
    const path = this.blobPath(sha256); // throws at once for a name that is not a SHA-256
    return verifiedBlobRead(sha256, async () => {
      const { handle, info } = await this.openBlob(sha256, path);
      const source = handle.createReadStream({ highWaterMark: 1 << 20 });
      return { source, onDamage: async () => { await this.markDamaged(sha256, info.ino, info.dev, info.size); } };
    }, start, endInclusive, length);
  }

  /**
   * The blob's descriptor, opened O_NOFOLLOW (a symbolic link planted in blobs/ is never followed
   * out of the store) and O_NONBLOCK (nor a FIFO waited on), or IntegrityError: missing, or damaged (a link or not a regular file,
   * moved aside first) exactly as a verified read reports them.
   */
  private async openBlob(sha256: string, path = this.blobPath(sha256)): Promise<{ handle: FileHandle; info: Stats }> {
    let handle;
    try {
      // O_NONBLOCK: a FIFO planted in blobs/ would hold the open (and a thread of the pool) until a
      // writer came; a regular file's reads are unaffected by it.
      handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    } catch (error) {
      const code = errnoCode(error);
      if (code === 'ENOENT') throw new IntegrityError(BLOB_MISSING, `blob ${sha256} is not in the store`, { cause: error, details: { sha256 } });
      if (code === 'ELOOP') {
        const entry = await lstat(path).catch(() => undefined);
        const damage = new IntegrityError(BLOB_DAMAGED, `blob ${sha256} is a symbolic link, not stored bytes`, { cause: error, details: { sha256 } });
        if (entry) await this.markDamaged(sha256, entry.ino, entry.dev, 0);
        throw damage;
      }
      throw error;
    }
    const info = await handle.stat();
    if (!info.isFile()) {
      await handle.close();
      await this.markDamaged(sha256, info.ino, info.dev, 0);
      throw new IntegrityError(BLOB_DAMAGED, `blob ${sha256} is not a regular file`, { details: { sha256 } });
    }
    return { handle, info };
  }

  /**
   * The verified read of several whole blobs in order, for a consumer that is done with each chunk
   * when `onChunk` returns (a hash): read into two buffers reused throughout, so no memory is
   * allocated per chunk. A read stream's fresh 1 MiB buffer per chunk made V8 run a full
   * mark-compact every 64 MB read to account for it, which cost `complete` more CPU than hashing
   * (docs/benchmarks.md). Every blob is hashed against its name as in readBlob, a damaged one is
   * moved aside the same way; the chunks of a blob reach `onChunk` before its check, so a consumer
   * must drop what it made of them when that blob's result is an error. `wholeCheckedByCaller`:
   * the blobs are not hashed here (store.ts says when that is allowed).
   */
  async scanBlobs(sha256s: readonly string[], onChunk: (chunk: Buffer, blob: number) => void, options: { wholeCheckedByCaller?: boolean } = {}): Promise<ScannedBlob[]> {
    const checkEach = !options.wholeCheckedByCaller;
    const buffers = [Buffer.allocUnsafeSlow(CHUNK_BYTES), Buffer.allocUnsafeSlow(CHUNK_BYTES)] as const;
    const results: ScannedBlob[] = [];
    for (const [blob, sha256] of sha256s.entries()) {
      let opened;
      try {
        opened = await this.openBlob(sha256);
      } catch (error) {
        if (!isBlobIntegrityError(error)) throw error;
        results.push({ error });
        continue;
      }
      const { handle, info } = opened;
      const hash = checkEach ? createHash('sha256') : undefined;
      let size = 0;
      try {
        for await (const chunk of readChunks(handle, { buffers })) {
          hash?.update(chunk);
          onChunk(chunk, blob);
          size += chunk.length;
        }
      } finally {
        await handle.close();
      }
      const actual = hash?.digest('hex') ?? sha256;
      if (actual === sha256) {
        results.push({ size });
        continue;
      }
      const error = new IntegrityError(BLOB_DAMAGED, `stored blob ${sha256} is damaged: its ${size} bytes hash to ${actual}`, { details: { sha256, actual, size } });
      await this.markDamaged(sha256, info.ino, info.dev, info.size);
      results.push({ error });
    }
    return results;
  }

  /** True when the blob is there and hashes to its name (a damaged one is moved aside on the way). */
  private async intact(sha256: string): Promise<boolean> {
    return readsBackIntact(this.readBlob(sha256));
  }

  /**
   * Move a damaged blob out of blobs/ (to damaged/<sha>-<ms>): it then counts as missing and a
   * verified upload replaces it. Only the very file that was read is moved (same inode): a
   * repair that replaced it meanwhile is left alone.
   */
  private async markDamaged(sha256: string, ino: number, dev: number, size: number): Promise<void> {
    const path = this.blobPath(sha256);
    const now = await lstat(path).catch(() => undefined);
    if (!now || now.ino !== ino || now.dev !== dev) return;
    await makePrivateDir(this.damagedRoot);
    try {
      await rename(path, insideRoot(this.damagedRoot, `${sha256}-${Date.now()}-${randomBytes(3).toString('hex')}`));
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return; // another reader moved it first
      throw error;
    }
    if (this.opened && size > 0) {
      this.used = Math.max(0, this.used - size);
      this.saveUsage();
    }
  }

  async *listBlobs(): AsyncIterable<string> {
    let shards;
    try {
      shards = await opendir(this.blobRoot);
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return;
      throw error;
    }
    for await (const shard of shards) {
      if (!/^[0-9a-f]{2}$/.test(shard.name) || !shard.isDirectory()) continue;
      for await (const entry of await opendir(insideRoot(this.blobRoot, shard.name))) {
        if (SHA256_HEX.test(entry.name) && entry.name.startsWith(shard.name)) yield entry.name;
      }
    }
  }

  async getRecording(dockId: string, id: string): Promise<StoredRecording | undefined> {
    try {
      return JSON.parse(await readFile(this.recordingPath(dockId, id), 'utf8')) as StoredRecording;
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return undefined;
      throw error;
    }
  }

  /**
   * Many records at once, for the passes over the whole history (the catalog's first build, the
   * highest receipt at start). Blocking reads, one batch per call: an asynchronous readFile is four
   * thread-pool round trips (open, fstat, read, close), which on a loaded 2-core machine cost more
   * than the read itself (docs/benchmarks.md, "Catalog first build"). A caller passes batches of
   * a few dozen small files (about a millisecond of the event loop each) and yields between them.
   */
  async getRecordings(keys: readonly RecordingKey[]): Promise<Array<StoredRecording | undefined>> {
    return keys.map((key) => {
      const path = this.recordingPath(key.dockId, key.recordingId);
      let fd: number;
      try {
        // Non-blocking open: a FIFO or device put in the place of a record must not hang the event loop.
        fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
      } catch (error) {
        if (errnoCode(error) === 'ENOENT') return undefined;
        throw error;
      }
      try {
        if (!fstatSync(fd).isFile()) throw new EnvironmentError('E_RECORD_NOT_A_FILE', `${path} is not a regular file`);
        return JSON.parse(readFileSync(fd, 'utf8')) as StoredRecording;
      } finally {
        closeSync(fd);
      }
    });
  }

  async recordingStamp(dockId: string, id: string): Promise<string | undefined> {
    try {
      const info = await lstat(this.recordingPath(dockId, id), { bigint: true });
      return info.isFile() ? `${info.dev}:${info.ino}:${info.size}:${info.mtimeNs}:${info.ctimeNs}` : undefined;
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return undefined;
      throw error;
    }
  }

  async createRecording(dockId: string, id: string, record: StoredRecording): Promise<boolean> {
    const finalPath = this.recordingPath(dockId, id);
    const dir = dirname(finalPath);
    const newDir = await makePrivateDir(dir);
    if (newDir) await syncDir(this.recordingRoot);
    const tempPath = await this.writeTemp(JSON.stringify(record));
    try {
      await link(tempPath, finalPath);
      await syncDir(dir);
      return true;
    } catch (error) {
      if (errnoCode(error) === 'EEXIST') return false;
      throw error;
    } finally {
      await rm(tempPath, { force: true });
    }
  }

  async updateRecording(dockId: string, id: string, record: StoredRecording): Promise<void> {
    const finalPath = this.recordingPath(dockId, id);
    const tempPath = await this.writeTemp(JSON.stringify(record));
    try {
      await rename(tempPath, finalPath);
    } catch (error) {
      await rm(tempPath, { force: true });
      throw error;
    }
    await syncDir(dirname(finalPath));
  }

  async listRecordingIds(dockId: string): Promise<string[]> {
    let names: string[];
    try {
      names = await readdir(this.dockDir(dockId));
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return [];
      throw error;
    }
    return names.filter((n) => n.endsWith('.json')).map((n) => n.slice(0, -5)).filter(isValidId).sort();
  }

  async listRecordings(): Promise<RecordingKey[]> {
    const docks = (await readdir(this.recordingRoot, { withFileTypes: true }))
      .filter((e) => e.isDirectory() && isValidId(e.name)).map((e) => e.name).sort();
    const keys: RecordingKey[] = [];
    for (const dockId of docks) {
      for (const recordingId of await this.listRecordingIds(dockId)) keys.push({ dockId, recordingId });
    }
    return keys;
  }

  /**
   * Recordings whose record may have been created or replaced at or after `since`: a dock folder
   * whose mtime is older changed no entry since (every create and update is a link or rename
   * into it), so only the folders touched since are read. Startup uses it to find receipts newer
   * than the custody log's newest checkpoint without reading every record.
   */
  async listRecordingsChangedSince(since: Date): Promise<RecordingKey[]> {
    const from = since.getTime() - 1000; // filesystem timestamps lag the clock by up to a tick
    const docks = (await readdir(this.recordingRoot, { withFileTypes: true }))
      .filter((e) => e.isDirectory() && isValidId(e.name)).map((e) => e.name).sort();
    const keys: RecordingKey[] = [];
    for (const dockId of docks) {
      const dir = this.dockDir(dockId);
      if ((await lstat(dir)).mtimeMs < from) continue;
      const ids = await this.listRecordingIds(dockId);
      for (let i = 0; i < ids.length; i += 64) {
        const times = await Promise.all(ids.slice(i, i + 64).map((id) => lstat(this.recordingPath(dockId, id)).then((st) => st.mtimeMs, (error: unknown) => {
          if (errnoCode(error) === 'ENOENT') return 0;
          throw error;
        })));
        times.forEach((mtime, j) => { if (mtime >= from) keys.push({ dockId, recordingId: ids[i + j]! }); });
      }
    }
    return keys;
  }

  usedBytes(): number {
    return this.used;
  }

  async close(): Promise<void> {
    await this.usageWrite;
  }

  private async writeTemp(text: string): Promise<string> {
    const tempPath = this.tempPath();
    await writeTempFile(tempPath, (handle) => handle.writeFile(text), PRIVATE_FILE_MODE);
    return tempPath;
  }

  /**
   * The usage figure is kept in a small file so startup never scans blobs. A crash
   * between publishing a blob and saving the figure under-counts by that blob;
   * the quota is a safety margin, not an accounting ledger (docs/protocol.md).
   */
  private saveUsage(): void {
    this.usageWrite = this.usageWrite.then(async () => {
      const tempPath = this.tempPath();
      await writeFile(tempPath, JSON.stringify({ bytes: this.used }), { mode: PRIVATE_FILE_MODE });
      await rename(tempPath, insideRoot(this.root, USAGE_FILE));
    }).catch(() => { /* a stale figure is retried on the next write */ });
  }
}

async function syncDir(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
