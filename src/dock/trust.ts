/**
 * Which server key may authorise a wipe. A signature proves who signed, not that anyone holds
 * the bytes, and a key learned from GET /v1/keys on first contact proves nothing about who
 * answers: such a key verifies receipts but never authorises a wipe. A wipe needs a key pinned
 * out of band: the `serverKey` PEM file from the operator, or a pin confirmed with
 * `bodycam dock trust-server --fingerprint <keyId>`, which this module records in the journal.
 */
import { BodycamError, UsageError } from '../errors.js';
import { isEd25519PublicKeyPem, keyIdOf } from '../protocol/signing.js';
import { Journal } from './journal.js';
import { parseEndpoints } from './config.js';

/** Journal meta key of the confirmed server key (PEM). */
export const CONFIRMED_SERVER_KEY_META = 'serverKeyConfirmedPem';
/** Journal meta key of the key learned from GET /v1/keys on first contact (trust on first use). */
export const LEARNED_SERVER_KEY_META = 'serverPublicKeyPem';

export const UNCONFIRMED_KEY_LINE = '--wipe-after-ingest needs a confirmed server key: pass --server-key <PEM file from the server operator>, or confirm the key once with `bodycam dock trust-server --state-dir DIR --endpoint URL --fingerprint <keyId>` (a key learned on first contact never authorises a wipe)';

/** A refusal a person must act on: one line, exit 1. */
export class TrustError extends BodycamError {
  override readonly userFacing = true;
  constructor(code: string, message: string, options: ErrorOptions = {}) {
    super(code, message, options);
  }
}

export interface TrustResult { keyId: string; publicKeyPem: string }

const FINGERPRINT = /^[0-9a-f]{64}$/;

/** A keyId as a person gives it (any case, colons allowed), or a UsageError naming the flag it came with. */
export function normalizeFingerprint(text: string, flag = '--fingerprint'): string {
  const fingerprint = text.trim().toLowerCase().replace(/:/g, '');
  if (!FINGERPRINT.test(fingerprint)) throw new UsageError(`${flag} must be the server's keyId: 64 hex digits (SHA-256 of its public key's SPKI DER), got ${JSON.stringify(text)}`);
  return fingerprint;
}

/** The server's receipt key from GET <endpoint>/v1/keys (no token needed), checked to be Ed25519. */
export async function fetchServerKey(endpoint: string, timeoutMs = 15_000): Promise<TrustResult> {
  const url = endpoint.replace(/\/+$/, '') + '/v1/keys';
  let body: { publicKeyPem?: unknown; keyId?: unknown };
  try {
    // Loaded here, not at the top: every `bodycam dock` start imports this module, few run trust-server.
    const { default: got } = await import('got');
    const response = await got(url, { timeout: { request: timeoutMs }, retry: { limit: 1 }, responseType: 'text', throwHttpErrors: false });
    if (response.statusCode !== 200) throw new TrustError('E_TRUST_FETCH', `GET ${url} answered ${response.statusCode}: is --endpoint an ingest server?`);
    body = JSON.parse(response.body) as typeof body;
  } catch (cause) {
    if (cause instanceof TrustError) throw cause;
    throw new TrustError('E_TRUST_FETCH', `cannot fetch the server key from ${url}: ${(cause as Error).message}`, { cause });
  }
  const pem = body?.publicKeyPem;
  if (!isEd25519PublicKeyPem(pem)) throw new TrustError('E_TRUST_KEY', `GET ${url} answered no Ed25519 public key`);
  return { keyId: keyIdOf(pem), publicKeyPem: pem };
}

/**
 * Fetch GET /v1/keys, require its keyId (SHA-256 of the SPKI DER) to be `fingerprint`, and pin it as
 * confirmed. `endpoint` may be the dock's comma-separated list: every server of it must sign with that
 * key (they share one state and one key), or nothing is pinned.
 */
export async function trustServer(options: { stateDir: string; endpoint: string; fingerprint: string; timeoutMs?: number }): Promise<TrustResult> {
  const fingerprint = normalizeFingerprint(options.fingerprint);
  const endpoints = parseEndpoints(options.endpoint);
  let pem = '';
  const keyId = fingerprint;
  for (const endpoint of endpoints) {
    const found = await fetchServerKey(endpoint, options.timeoutMs);
    if (found.keyId !== fingerprint) {
      throw new TrustError('E_TRUST_MISMATCH', `the server at ${endpoint} has key ${found.keyId}, not the fingerprint ${fingerprint} you were given: nothing pinned (ask the server operator; never wipe against this server)`);
    }
    pem = found.publicKeyPem;
  }
  const journal = Journal.open(options.stateDir);
  try {
    const previous = journal.getMeta(CONFIRMED_SERVER_KEY_META);
    journal.setMeta(CONFIRMED_SERVER_KEY_META, pem);
    journal.setMeta(LEARNED_SERVER_KEY_META, pem);
    journal.setMeta('serverKeyConfirmedAt', new Date().toISOString());
    journal.event(null, 'server-key-confirmed', `${keyId} from ${endpoints.join(', ')}${previous && previous !== pem ? ` (replaces ${keyIdOf(previous)})` : ''}`);
  } finally {
    journal.close();
  }
  return { keyId, publicKeyPem: pem };
}
