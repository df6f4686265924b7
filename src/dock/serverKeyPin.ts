/**
 * The server's receipt key, as the dock holds it (docs/dock.md, "TLS"): pinned
 * out of band (the `serverKey` PEM file, or `bodycam dock trust-server`, which
 * confirms it in the journal), or learned from GET /v1/keys on first contact.
 * Only a key pinned out of band may authorise a wipe (src/dock/trust.ts).
 */
import { UsageError } from '../errors.js';
import { readPrivateFile } from '../util/privateFile.js';
import type { Logger } from '../log.js';
import { isEd25519PublicKeyPem, keyIdOf } from '../protocol/signing.js';
import type { IngestClient } from './client.js';
import { TransportError } from './errors.js';
import type { Journal } from './journal.js';
import { CONFIRMED_SERVER_KEY_META, LEARNED_SERVER_KEY_META } from './trust.js';

/**
 * The operator's server key file (serverKey): a public key, but the one that authorises wiping
 * evidence, so under the rule for authorising files (src/util/privateFile.ts): writable by group or
 * others (or owned by another user), anyone on this host could pin their own server.
 */
/** `label` names the file as the person gave it (`--server-key` in replay's flag checks). */
export function readServerKeyFile(serverKeyFile: string, label = 'server key'): string {
  const pem = readPrivateFile(serverKeyFile, {
    kind: 'authorising', label, why: 'it authorises wiping cards', maxBytes: 64 * 1024,
    unreadable: { message: (cause) => `cannot read ${label} ${serverKeyFile}: ${(cause as Error).message}` },
  }).text;
  if (!isEd25519PublicKeyPem(pem)) throw new UsageError(`${label} ${serverKeyFile} is not an Ed25519 public key (PEM)`);
  return pem;
}

export class ServerKeyPin {
  private fetching?: Promise<string>;

  private constructor(
    private readonly journal: Journal,
    private readonly logger: Logger,
    private pem: string | undefined,
    /** True only for a key pinned out of band: serverKey, or confirmed by trust-server. */
    readonly confirmed: boolean,
  ) {}

  /** The pin of this dock: the serverKey file when given (a UsageError when unreadable or not Ed25519), else the journal's. */
  static async load(serverKeyFile: string | undefined, journal: Journal, logger: Logger): Promise<ServerKeyPin> {
    if (serverKeyFile) {
      const pem = readServerKeyFile(serverKeyFile);
      return new ServerKeyPin(journal, logger, pem, true);
    }
    // A pin confirmed by `bodycam dock trust-server` beats the one learned on first contact.
    const confirmed = journal.getMeta(CONFIRMED_SERVER_KEY_META);
    return new ServerKeyPin(journal, logger, confirmed ?? journal.getMeta(LEARNED_SERVER_KEY_META), confirmed !== undefined && isEd25519PublicKeyPem(confirmed));
  }

  /** The key confirmed out of band, or undefined: no wipe then. */
  trusted(): string | undefined {
    return this.confirmed ? this.pem : undefined;
  }

  /** The key receipts are verified with; learned (and pinned) from the server when there is none yet. */
  async get(client: IngestClient, signal: AbortSignal): Promise<string> {
    if (this.pem) return this.pem;
    // Many jobs may ask at once on first contact: one request serves them all.
    this.fetching ??= this.learn(client, signal).finally(() => { this.fetching = undefined; });
    return this.fetching;
  }

  private async learn(client: IngestClient, signal: AbortSignal): Promise<string> {
    const keys = await client.getKeys(signal);
    if (!isEd25519PublicKeyPem(keys.publicKeyPem)) throw new TransportError('server key from GET /v1/keys is not an Ed25519 public key (PEM)');
    if (!this.pem) {
      this.pem = keys.publicKeyPem;
      this.journal.setMeta(LEARNED_SERVER_KEY_META, keys.publicKeyPem);
      this.logger.info('pinned the server receipt key from GET /v1/keys (trust on first use; pass --server-key to pin it yourself)', { keyId: keyIdOf(keys.publicKeyPem) });
    }
    return this.pem;
  }
}
