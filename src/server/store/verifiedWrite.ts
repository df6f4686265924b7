/**
 * A segment body on its way into a store: counted and hashed in the one pass that writes it, so
 * that a store publishes a blob only if exactly the planned bytes arrived and they hash to the
 * blob's name. Every BlobStore's putBlob streams its body through this (the filesystem store into
 * its temp file, the S3 store into its scratch spool, with the MD5 the engine checks).
 *
 * One Transform between the request and the file: a stage per chunk costs CPU on the server's one
 * thread (an async generator in between cost ≈ 0.2 CPU s per GB received, docs/benchmarks.md).
 */
import { createHash } from 'node:crypto';
import { Transform } from 'node:stream';
import { IntegrityError } from '../../errors.js';
import { SERVER_ERROR_CODES } from '../errorCodes.js';

export interface VerifiedBody {
  /** Put it between the body and the file: it fails as soon as the body runs past `expectedLength`. */
  readonly transform: Transform;
  /**
   * Once the body has ended: the size and (with `md5`) the MD5 of what arrived, or IntegrityError
   * `length_mismatch` (other than the planned length) or `digest_mismatch` (other than `sha256`).
   */
  check(): { size: number; md5?: Buffer };
}

export function verifiedBody(sha256: string, expectedLength: number, options: { md5?: boolean; onBytes?: (bytes: number) => void } = {}): VerifiedBody {
  const hash = createHash('sha256');
  const md5 = options.md5 ? createHash('md5') : undefined;
  const { onBytes } = options;
  let received = 0;
  const transform = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      received += chunk.length;
      onBytes?.(chunk.length);
      if (received > expectedLength) {
        callback(new IntegrityError(SERVER_ERROR_CODES.bodyLength, `body is longer than the planned ${expectedLength} bytes`, { details: { expectedLength } }));
        return;
      }
      hash.update(chunk);
      md5?.update(chunk);
      callback(null, chunk);
    },
  });
  return {
    transform,
    check() {
      if (received !== expectedLength) {
        throw new IntegrityError(SERVER_ERROR_CODES.bodyLength, `body has ${received} bytes, the plan says ${expectedLength}`, { details: { expectedLength, received } });
      }
      const actual = hash.digest('hex');
      if (actual !== sha256) {
        throw new IntegrityError(SERVER_ERROR_CODES.bodyDigest, `body SHA-256 ${actual} differs from ${sha256}`, { details: { expected: sha256, actual } });
      }
      return { size: received, ...(md5 ? { md5: md5.digest() } : {}) };
    },
  };
}
