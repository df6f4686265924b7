/**
 * The S3 settings of `bodycam server`: `--store s3://BUCKET`, the endpoint, the credentials
 * (flags, config file or the AWS_* environment) and `--retention` (how long every blob stays under
 * COMPLIANCE lock). Parsed and checked here, once, into what the store needs.
 */
import { UsageError } from '../../errors.js';

export interface Retention {
  /** Whole days (a year is 365 days; S3 retention has a one-day grain on most engines). */
  days: number;
  /** As given, for logs and messages. */
  text: string;
}

export const DEFAULT_RETENTION = '7y';
const RETENTION = /^([1-9][0-9]{0,4})([yd])$/;
/** S3 bucket names: 3-63 of a-z 0-9 . -, starting and ending with a letter or digit. */
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

export function parseRetention(text: string): Retention {
  const match = RETENTION.exec(text.trim());
  if (!match) throw new UsageError(`--retention must be a number of years or days like 7y or 30d, not ${JSON.stringify(text)}`);
  const days = Number(match[1]) * (match[2] === 'y' ? 365 : 1);
  if (days > 365 * 100) throw new UsageError(`--retention ${text} is more than 100 years`);
  return { days, text: text.trim() };
}

export function retainUntil(retention: Retention, now = Date.now()): Date {
  return new Date(now + retention.days * 86_400_000);
}

/** `s3://BUCKET` → the bucket name; undefined for anything that is not an s3:// URL (a folder). */
export function parseS3StoreUrl(value: string): string | undefined {
  if (!value.startsWith('s3://')) return undefined;
  const bucket = value.slice('s3://'.length).replace(/\/$/, '');
  if (!BUCKET.test(bucket) || bucket.includes('..')) {
    throw new UsageError(`--store ${value}: the bucket name must be 3-63 of a-z 0-9 . - (an S3 bucket name), e.g. s3://evidence`);
  }
  return bucket;
}

export function parseEndpoint(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new UsageError(`--s3-endpoint must be an http:// or https:// URL, not ${JSON.stringify(value)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`--s3-endpoint must be an http:// or https:// URL, not ${JSON.stringify(value)}`);
  if (url.pathname !== '/' || url.search) throw new UsageError(`--s3-endpoint is the engine's base URL without a path (path-style requests add /BUCKET), not ${value}`);
  return url.origin;
}
