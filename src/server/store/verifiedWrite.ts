/**
 * A segment body on its way into a store: counted and hashed in the one pass that writes it, so
 * that a store publishes a blob only if exactly the planned bytes arrived and they hash to the
 * blob's name. Every BlobStore's putBlob streams its body through this (the S3 store through the
 * Transform into its scratch spool, with the MD5 the engine checks; the filesystem store calls
 * bodyCheck from its file sink, verifiedFileSink.ts).
 *
 * A stage per chunk costs CPU on the server's one thread (an async generator in between cost
 * ≈ 0.2 CPU s per GB received, docs/benchmarks.md): at most one Transform, none where the sink can check.
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

/**
 * The count and hash of a body, chunk by chunk, for a stage that is already in the byte path
 * (the filesystem store's file sink): `take` each chunk before it is written, `check` at the end.
 */
export interface BodyCheck {
  /** Throws IntegrityError `length_mismatch` as soon as the body runs past `expectedLength`. */
  take(chunk: Buffer): void;
  check(): { size: number; md5?: Buffer };
}

export function bodyCheck(sha256: string, expectedLength: number, options: { md5?: boolean; onBytes?: (bytes: number) => void } = {}): BodyCheck {
  const hash = createHash('sha256');
  const md5 = options.md5 ? createHash('md5') : undefined;
  const { onBytes } = options;
  let received = 0;
  return {
    take(chunk) {
      received += chunk.length;
      onBytes?.(chunk.length);
      if (received > expectedLength) {
        throw new IntegrityError(SERVER_ERROR_CODES.bodyLength, `body is longer than the planned ${expectedLength} bytes`, { details: { expectedLength } });
      }
      hash.update(chunk);
      md5?.update(chunk);
    },
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

export function verifiedBody(sha256: string, expectedLength: number, options: { md5?: boolean; onBytes?: (bytes: number) => void } = {}): VerifiedBody {
  const counted = bodyCheck(sha256, expectedLength, options);
  const transform = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      try {
        counted.take(chunk);
      } catch (error) {
        callback(error as Error);
        return;
      }
      callback(null, chunk);
    },
  });
  return { transform, check: () => counted.check() };
}
