/**
 * Per-dock bearer tokens. Every configured token is compared (in constant time,
 * over fixed-length digests) so that neither the match nor its position leaks
 * through timing.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { UsageError } from '../errors.js';
import { isValidId } from '../protocol/types.js';

export class TokenTable {
  private readonly entries: Array<{ dockId: string; digest: Buffer }>;

  constructor(tokens: Record<string, string>) {
    this.entries = Object.entries(tokens).map(([dockId, token]) => {
      if (!isValidId(dockId)) throw new UsageError(`tokens: ${JSON.stringify(dockId)} is not a valid dock id`);
      if (typeof token !== 'string' || token.length < 8) throw new UsageError(`tokens: the token of dock ${dockId} must be a string of at least 8 characters`);
      return { dockId, digest: digestOf(token) };
    });
  }

  /** The dock id an Authorization header authenticates, or undefined. */
  authenticate(header: string | undefined): string | undefined {
    const match = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    if (!match) return undefined;
    const presented = digestOf(match[1]!);
    let found: string | undefined;
    for (const entry of this.entries) {
      if (timingSafeEqual(entry.digest, presented) && found === undefined) found = entry.dockId;
    }
    return found;
  }
}

function digestOf(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}
