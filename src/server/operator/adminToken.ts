/**
 * The server operator's bearer token: separate from every dock token, it reads across docks
 * (GET /v1/docks, GET /v1/recordings?dock=…) and can never upload. Compared in constant time,
 * by SHA-256 digest, like the dock tokens (auth.ts).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { errnoCode, UsageError } from '../../errors.js';
import { tokenWeakness } from '../auth.js';
import { readPrivateFile } from '../../util/privateFile.js';

export class AdminToken {
  private readonly digest: Buffer;

  constructor(token: string) {
    const weakness = tokenWeakness(token);
    if (weakness) throw new UsageError(`the admin token ${weakness}; make one with \`bodycam server token new\``, { code: 'E_ADMIN_TOKEN_WEAK' });
    this.digest = digestOf(token);
  }

  /** True when the Authorization header carries the admin token. */
  matches(header: string | undefined): boolean {
    const match = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
    return match ? timingSafeEqual(digestOf(match[1]!), this.digest) : false;
  }

  /** The admin token must not also be a dock's (that dock would read every other dock's evidence). */
  assertNotADockToken(dockTokens: Record<string, string>): void {
    for (const [dockId, token] of Object.entries(dockTokens)) {
      if (timingSafeEqual(digestOf(token), this.digest)) throw new UsageError(`the admin token is also the token of dock ${dockId}: give the operator a token of its own (bodycam server token new)`, { code: 'E_ADMIN_TOKEN_REUSED' });
    }
  }
}

/** The token in a file of its own (mode 0600, one line), as `--admin-token-file` names it. */
export function loadAdminTokenFile(path: string): string {
  const text = readPrivateFile(path, {
    kind: 'secret', label: '--admin-token-file', why: 'it reads every dock\'s records', code: 'E_ADMIN_TOKEN_MODE',
    unreadable: { message: (cause) => `--admin-token-file: cannot read ${path} (${errnoCode(cause) ?? String(cause)})` },
  }).text;
  const token = text.trim();
  if (token === '' || /\s/.test(token)) throw new UsageError(`--admin-token-file ${path} must hold one token on one line`);
  return token;
}

function digestOf(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}
