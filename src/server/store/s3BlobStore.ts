/**
 * Blobs in an S3-compatible object store with Object Lock (Ceph RGW is the one tested): the
 * agency-scale BlobStore (issue 13). Key `blobs/<aa>/<sha256>`, one object per distinct segment.
 *
 * - Nothing unverified reaches the bucket. A body is spooled to a local scratch file while its
 *   SHA-256 (ours: RGW ignores x-amz-checksum-sha256) and MD5 are computed in the same pass; only
 *   bytes of the planned length and digest are PUT, in one request with Content-MD5 (the engine
 *   checks it: a byte changed on the way is BadDigest), so memory stays flat and a PUT is atomic
 *   (a segment is 64 MiB at most; one PUT takes up to 5 GiB, so no multipart upload is needed).
 * - Write-once. A blob that is there and reads back intact is never written again. Of N writers
 *   racing on one new blob (N servers), exactly one reports `created`: the one whose version is the
 *   oldest live version of the key (ListObjectVersions after the PUT). `If-None-Match: *` is sent
 *   too, but RGW (16.2) ignores it on a versioned bucket, and Object Lock makes every bucket
 *   versioned: a race's losers leave one more locked version of the same verified bytes (storage
 *   for a rare race, never other bytes). Versions are told apart by id, never by timestamp.
 * - Evidence is locked: every blob is PUT with COMPLIANCE retention (`retention`, 7 years by
 *   default) into a bucket created with Object Lock, so no credentials of the S3 API (the
 *   server's own included) can delete or overwrite a blob's bytes before it expires. The storage
 *   admin (radosgw-admin) is inside the trust boundary: docs/reliability.md.
 * - Damage (a later version with other bytes, written past the store by anyone with PutObject
 *   rights): a verified read that finds it puts a delete marker on the key, so the blob counts as
 *   missing and the dock sends it again; the damaged version stays in the bucket (versions are
 *   never deleted) for the operator, as damaged/ does in the filesystem store.
 * - The engine away (connection refused, timeout, 5xx): EnvironmentError E_STORE_UNAVAILABLE,
 *   which the server answers as 503 store_unavailable with Retry-After; nothing half-done is kept.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  CreateBucketCommand, DeleteObjectCommand, GetObjectCommand, GetObjectLockConfigurationCommand, HeadBucketCommand,
  HeadObjectCommand, ListObjectVersionsCommand, ListObjectsV2Command, PutObjectCommand, S3Client, type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { EnvironmentError, IntegrityError } from '../../errors.js';
import { SHA256_HEX } from '../../protocol/digest.js';
import { assertSha256, insideRoot } from '../paths.js';
import { makePrivateDir, PRIVATE_FILE_MODE } from '../privateFiles.js';
import type { BlobStore, BlobWriteResult } from './store.js';
import { BLOB_DAMAGED, BLOB_MISSING, readsBackIntact, verifiedBlobRead } from './verifiedRead.js';
import { verifiedBody } from './verifiedWrite.js';
import { classifyS3Error, isNotFound, isPreconditionFailed, STORE_UNAVAILABLE } from './s3Errors.js';
import { retainUntil, type Retention } from './s3Config.js';
import { SERVER_ERROR_CODES } from '../errorCodes.js';

export interface S3BlobStoreOptions {
  bucket: string;
  /** How long every blob (and locked export) is kept under COMPLIANCE retention. */
  retention: Retention;
  /** A local folder for bodies being verified (nothing in it outlives a request). */
  scratchDir: string;
  /** S3 client settings (endpoint, region, credentials); path style and checksum modes are fixed here. */
  client: S3ClientConfig;
  /** Create the bucket (with Object Lock) when it is not there (default); the operator's tools only read one that is. */
  createBucket?: boolean;
}

const USAGE_KEY = 'state/usage.json';
/** Keys a caller may lock through putLockedObject (custody exports): one or more safe path parts. */
const LOCKED_KEY = /^custody\/[A-Za-z0-9._-]{1,128}(\/[A-Za-z0-9._-]{1,128}){0,4}$/;

export function makeS3Client(config: S3ClientConfig): S3Client {
  // The SDK warns on every start that its releases after early 2027 need Node >= 22; the version
  // here is pinned (package.json), so the warning says nothing to an operator.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  return new S3Client({
    region: 'us-east-1',
    ...config,
    forcePathStyle: true,
    // With a stream body the default checksum mode sends aws-chunked bodies without a length (RGW: 411).
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    // An engine that is away costs a request a few seconds, not minutes: the dock retries after our 503.
    maxAttempts: config.maxAttempts ?? 2,
    requestHandler: config.requestHandler ?? { connectionTimeout: 3000, requestTimeout: 60_000 },
  });
}

export class S3BlobStore implements BlobStore {
  readonly bucket: string;
  private readonly client: S3Client;
  private used = 0;
  private usageDirty = false;

  constructor(private readonly options: S3BlobStoreOptions) {
    this.bucket = options.bucket;
    this.client = makeS3Client(options.client);
  }

  private async send<T>(what: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      throw classifyS3Error(error, `${what} (bucket ${this.bucket})`);
    }
  }

  async open(): Promise<void> {
    await makePrivateDir(this.options.scratchDir);
    // Anything left in the scratch folder is a body a crash interrupted: never PUT, so it can go.
    for (const name of await readdir(this.options.scratchDir)) await rm(insideRoot(this.options.scratchDir, name), { force: true });
    await this.ensureLockedBucket().catch((error: unknown) => {
      if (error instanceof EnvironmentError) throw error;
      const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      const name = (error as { name?: string }).name ?? 'error';
      throw new EnvironmentError('E_STORE_REFUSED', `object store at ${String(this.options.client.endpoint)} refused bucket ${this.bucket}: ${name}${status ? ` (${status})` : ''}: check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY and the bucket name`, { cause: error });
    });
    try {
      const body = await this.getVersion(USAGE_KEY);
      const saved = body ? JSON.parse(body.toString('utf8')) as { bytes?: unknown } : {};
      this.used = typeof saved.bytes === 'number' && saved.bytes >= 0 ? saved.bytes : 0;
    } catch (error) {
      if (error instanceof SyntaxError) this.used = 0; else throw error;
    }
  }

  /** The bucket exists with Object Lock enabled (created so if it is not there); any other bucket is refused. */
  private async ensureLockedBucket(): Promise<void> {
    const exists = await this.send('HeadBucket', () => this.client.send(new HeadBucketCommand({ Bucket: this.bucket }))).then(() => true, (error: unknown) => {
      if (isNotFound(error)) return false;
      throw error;
    });
    if (!exists && this.options.createBucket === false) {
      throw new EnvironmentError('E_STORE_NO_BUCKET', `bucket ${this.bucket} does not exist at ${String(this.options.client.endpoint)}`);
    }
    if (!exists) {
      await this.send('CreateBucket', () => this.client.send(new CreateBucketCommand({ Bucket: this.bucket, ObjectLockEnabledForBucket: true }))).catch((error: unknown) => {
        // Another server created it first: the lock check below decides whether it is usable.
        const name = (error as { name?: string }).name;
        if (name !== 'BucketAlreadyOwnedByYou' && name !== 'BucketAlreadyExists') throw error;
      });
    }
    const lock = await this.send('GetObjectLockConfiguration', () => this.client.send(new GetObjectLockConfigurationCommand({ Bucket: this.bucket }))).catch((error: unknown) => {
      if (isNotFound(error)) return undefined; // ObjectLockConfigurationNotFoundError
      throw error;
    });
    if (lock?.ObjectLockConfiguration?.ObjectLockEnabled !== 'Enabled') {
      throw new EnvironmentError('E_STORE_NOT_LOCKED', `bucket ${this.bucket} was created without S3 Object Lock, so its blobs could be deleted or overwritten: give the server a new bucket name (it creates the bucket with Object Lock) or one created with --object-lock-enabled-for-bucket`);
    }
  }

  private key(sha256: string): string {
    assertSha256(sha256);
    return `blobs/${sha256.slice(0, 2)}/${sha256}`;
  }

  async putBlob(sha256: string, body: Readable | AsyncIterable<Buffer | Uint8Array>, expectedLength: number, options: { onBytes?: (bytes: number) => void } = {}): Promise<BlobWriteResult> {
    const key = this.key(sha256);
    const spool = insideRoot(this.options.scratchDir, `${Date.now()}-${randomBytes(8).toString('hex')}.part`);
    const verify = verifiedBody(sha256, expectedLength, { ...options, md5: true });
    try {
      await pipeline(body, verify.transform, createWriteStream(spool, { flags: 'wx', mode: PRIVATE_FILE_MODE, highWaterMark: 1 << 20 }));
      const { size: received, md5: contentMd5 } = verify.check();
      // Held and intact: nothing to write (a damaged one is hidden by the verified read, then replaced).
      const before = await this.versions(key);
      if (before.live && await this.intact(sha256)) return { created: false, size: received };
      const mine = await this.putVersion(key, spool, received, contentMd5!, sha256);
      // The creator is the writer of the oldest version that was not there before this writer looked.
      const fresh = mine === undefined ? [] : (await this.versions(key)).ids.filter((id) => !before.ids.includes(id));
      const created = mine !== undefined && fresh.at(-1) === mine;
      if (created) this.addUsage(received);
      return { created, size: received };
    } finally {
      await rm(spool, { force: true });
    }
  }

  /** One PUT of a verified spool file; its version id, or undefined when the engine honoured If-None-Match (412). */
  private async putVersion(key: string, spool: string, size: number, md5: Buffer, sha256: string): Promise<string | undefined> {
    try {
      const answer = await this.send(`PutObject ${key}`, () => this.client.send(new PutObjectCommand({
        Bucket: this.bucket, Key: key, Body: createReadStream(spool, { highWaterMark: 1 << 20 }), ContentLength: size,
        ContentMD5: md5.toString('base64'), IfNoneMatch: '*', ContentType: 'application/octet-stream',
        ObjectLockMode: 'COMPLIANCE', ObjectLockRetainUntilDate: retainUntil(this.options.retention),
        Metadata: { sha256 },
      })));
      // The engine checked Content-MD5; its ETag of a single PUT is that MD5 again: a cheap second look.
      const etag = answer.ETag?.replace(/"/g, '');
      if (etag && etag !== md5.toString('hex')) {
        throw new IntegrityError('E_STORE_ETAG', `object store answered ETag ${etag} for ${key}, not the MD5 sent (${md5.toString('hex')})`);
      }
      if (!answer.VersionId) throw new EnvironmentError('E_STORE_NOT_LOCKED', `bucket ${this.bucket} gave no version id for ${key}: versioning (and so Object Lock) is off`);
      return answer.VersionId;
    } catch (error) {
      if (isPreconditionFailed(error)) return undefined;
      throw error;
    }
  }

  /** A key's version ids, newest first (S3's order), and whether its current state is a version (not a delete marker or nothing). */
  private async versions(key: string): Promise<{ ids: string[]; live: boolean }> {
    const ids: string[] = [];
    let live = false;
    let keyMarker: string | undefined;
    let versionMarker: string | undefined;
    do {
      const page = await this.send(`ListObjectVersions ${key}`, () => this.client.send(new ListObjectVersionsCommand({
        Bucket: this.bucket, Prefix: key, ...(keyMarker ? { KeyMarker: keyMarker } : {}), ...(versionMarker ? { VersionIdMarker: versionMarker } : {}),
      })));
      for (const version of page.Versions ?? []) {
        if (version.Key !== key || !version.VersionId) continue;
        ids.push(version.VersionId);
        if (version.IsLatest) live = true;
      }
      keyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
      versionMarker = page.IsTruncated ? page.NextVersionIdMarker : undefined;
    } while (keyMarker);
    return { ids, live };
  }

  /** Whether the blob held under the name reads back as its name (the verified read marks it if not). */
  private async intact(sha256: string): Promise<boolean> {
    return readsBackIntact(this.readBlob(sha256));
  }

  async syncBlobs(): Promise<void> {
    // A PUT is durable when the engine answers 200: nothing more to flush.
  }

  async hasBlob(sha256: string): Promise<boolean> {
    const key = this.key(sha256);
    try {
      await this.send(`HeadObject ${key}`, () => this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key })));
      return true;
    } catch (error) {
      if (isNotFound(error)) return false;
      throw error;
    }
  }

  /**
   * The current version of the blob as the bucket names it (version id, ETag, length, time): a
   * repair, a damaged version hidden behind a delete marker or any new PUT makes another one.
   * (Versioning is on in every bucket this store opens: Object Lock needs it.)
   */
  async blobIdentity(sha256: string): Promise<string | undefined> {
    const key = this.key(sha256);
    try {
      const head = await this.send(`HeadObject ${key}`, () => this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key })));
      return `${head.VersionId ?? 'unversioned'}:${head.ETag ?? ''}:${head.ContentLength ?? ''}:${head.LastModified?.getTime() ?? ''}`;
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  readBlob(sha256: string, start?: number, endInclusive?: number, length?: number): Readable {
    const key = this.key(sha256);
    return verifiedBlobRead(sha256, async () => {
      let answer;
      try {
        answer = await this.send(`GetObject ${key}`, () => this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key })));
      } catch (error) {
        if (isNotFound(error)) throw new IntegrityError(BLOB_MISSING, `blob ${sha256} is not in the store`, { cause: error, details: { sha256 } });
        throw error;
      }
      const source = answer.Body as Readable | undefined;
      if (!source) throw new IntegrityError(BLOB_MISSING, `blob ${sha256} came back without a body`, { details: { sha256 } });
      const versionId = answer.VersionId;
      return {
        source: withStoreErrors(source, `GetObject ${key} (bucket ${this.bucket})`),
        onDamage: async () => { await this.markDamaged(key, versionId, answer.ContentLength ?? 0); },
      };
    }, start, endInclusive, length);
  }

  /**
   * Hide a damaged version behind a delete marker (the version itself is kept: it is locked, and
   * it is what the operator examines). Only the version that was read: if a repair already made
   * another version current, it stays. (HEAD then DELETE is not atomic: a repair in between is
   * hidden too, which costs the dock one more upload of that segment, never a byte.)
   */
  private async markDamaged(key: string, versionId: string | undefined, size: number): Promise<void> {
    const now = await this.send(`HeadObject ${key}`, () => this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }))).catch((error: unknown) => {
      if (isNotFound(error)) return undefined;
      throw error;
    });
    if (!now || now.VersionId !== versionId) return;
    await this.send(`DeleteObject ${key} (delete marker)`, () => this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key })));
    this.addUsage(-size);
  }

  async *listBlobs(): AsyncIterable<string> {
    let token: string | undefined;
    do {
      const page = await this.send('ListObjectsV2 blobs/', () => this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: 'blobs/', ...(token ? { ContinuationToken: token } : {}) })));
      for (const entry of page.Contents ?? []) {
        const name = entry.Key?.split('/').pop() ?? '';
        if (SHA256_HEX.test(name) && entry.Key === `blobs/${name.slice(0, 2)}/${name}`) yield name;
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  /** Keys under a prefix of the locked exports (`custody/…`), streamed in the bucket's order. */
  async *listObjectKeys(prefix: string): AsyncIterable<string> {
    if (!prefix.startsWith('custody/')) throw new IntegrityError(SERVER_ERROR_CODES.invalidId, `not a custody export prefix: ${JSON.stringify(prefix).slice(0, 200)}`);
    let token: string | undefined;
    do {
      const page = await this.send(`ListObjectsV2 ${prefix}`, () => this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ...(token ? { ContinuationToken: token } : {}) })));
      for (const entry of page.Contents ?? []) if (entry.Key) yield entry.Key;
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  usedBytes(): number {
    return this.used;
  }

  private addUsage(delta: number): void {
    this.used = Math.max(0, this.used + delta);
    this.usageDirty = true;
  }

  /**
   * Write a small object once, locked like the blobs: custody exports (g-pg's checkpoints). A key
   * that exists with the same bytes is `created: false`; with other bytes IntegrityError
   * E_LOCKED_OBJECT_EXISTS (a locked object is never replaced).
   */
  async putLockedObject(key: string, bytes: Buffer, options: { contentType?: string } = {}): Promise<{ created: boolean }> {
    if (!LOCKED_KEY.test(key) || key.split('/').some((part) => part === '.' || part === '..')) {
      throw new IntegrityError(SERVER_ERROR_CODES.invalidId, `not a custody export key: ${JSON.stringify(key).slice(0, 200)}`);
    }
    const before = await this.versions(key);
    let mine: string | undefined;
    if (!before.ids.length) {
      mine = await this.send(`PutObject ${key}`, () => this.client.send(new PutObjectCommand({
        Bucket: this.bucket, Key: key, Body: bytes, ContentLength: bytes.length, ContentMD5: createHash('md5').update(bytes).digest('base64'), IfNoneMatch: '*',
        ContentType: options.contentType ?? 'application/octet-stream',
        ObjectLockMode: 'COMPLIANCE', ObjectLockRetainUntilDate: retainUntil(this.options.retention),
      }))).then((answer) => answer.VersionId, (error: unknown) => { if (isPreconditionFailed(error)) return undefined; throw error; });
    }
    // Whoever wrote first (this call or a racing one), the first version is the export.
    const first = (await this.versions(key)).ids.at(-1);
    const held = first === undefined ? undefined : await this.getVersion(key, first);
    if (!held) throw new IntegrityError('E_LOCKED_OBJECT_READBACK', `${key} did not read back after it was written`);
    if (!held.equals(bytes)) throw new IntegrityError('E_LOCKED_OBJECT_EXISTS', `${key} is already locked in bucket ${this.bucket} with other bytes`);
    return { created: mine !== undefined && mine === first };
  }

  /**
   * The bytes of a small object as FIRST written (its oldest version: a locked export is never
   * replaced, and a newer version stacked on top by anyone with PutObject rights is not it), or
   * undefined if there is none.
   */
  async getObject(key: string): Promise<Buffer | undefined> {
    const first = (await this.versions(key)).ids.at(-1);
    return first === undefined ? undefined : this.getVersion(key, first);
  }

  /** One version's bytes (the current one without `versionId`); undefined if there is none. */
  private async getVersion(key: string, versionId?: string): Promise<Buffer | undefined> {
    try {
      const answer = await this.send(`GetObject ${key}`, () => this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key, ...(versionId ? { VersionId: versionId } : {}) })));
      return Buffer.from(await answer.Body!.transformToByteArray());
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  async close(): Promise<void> {
    try {
      if (this.usageDirty) {
        // Not evidence: a plain object (no lock), its older versions removed. With several servers the
        // last to close wins; the figure is a safety margin for the quota, not an accounting ledger.
        const body = Buffer.from(JSON.stringify({ bytes: this.used }));
        await (async () => {
          const written = await this.send(`PutObject ${USAGE_KEY}`, () => this.client.send(new PutObjectCommand({
            Bucket: this.bucket, Key: USAGE_KEY, Body: body, ContentMD5: createHash('md5').update(body).digest('base64'),
          })));
          for (const old of (await this.versions(USAGE_KEY)).ids.filter((id) => id !== written.VersionId)) {
            await this.send(`DeleteObject ${USAGE_KEY}`, () => this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: USAGE_KEY, VersionId: old })));
          }
        })().catch(() => { /* the engine is away: the figure is stale until the next close */ });
        this.usageDirty = false;
      }
    } finally {
      this.client.destroy();
    }
  }
}

/** A GetObject body whose socket errors (the engine gone mid-read) come out as E_STORE_UNAVAILABLE. */
function withStoreErrors(source: Readable, what: string): AsyncIterable<Buffer> & { destroy: () => void } {
  return {
    async *[Symbol.asyncIterator]() {
      try {
        for await (const chunk of source) yield chunk as Buffer;
      } catch (error) {
        throw classifyS3Error(error, what);
      }
    },
    destroy: () => source.destroy(),
  };
}

export { STORE_UNAVAILABLE, BLOB_DAMAGED };
