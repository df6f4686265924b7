/**
 * Ed25519 signatures over the JCS form of a JSON object without its `signature`
 * field. Public keys travel as PEM (SPKI), signatures as base64. A court expert
 * can check any signed object with a JCS tool and
 * `openssl pkeyutl -verify -pubin -inkey key.pem -rawin -in canonical.json -sigfile sig.bin`.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { canonicalize } from './jcs.js';

export interface KeyPairPem {
  publicKeyPem: string;
  privateKeyPem: string;
}

export function generateSigningKeyPair(): KeyPairPem {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  return {
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}

/** Stable id of a public key: hex SHA-256 of its SPKI DER encoding. */
export function keyIdOf(publicKeyPem: string): string {
  const der = createPublicKey(publicKeyPem).export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('hex');
}

/** The exact bytes that are signed: JCS of the object with `signature` removed. */
export function signedBytes(object: Record<string, unknown>): Buffer {
  const { signature: _ignored, ...rest } = object;
  return Buffer.from(canonicalize(rest), 'utf8');
}

export function signObject<T extends Record<string, unknown>>(object: T, privateKeyPem: string | KeyObject): T & { signature: string } {
  const key = typeof privateKeyPem === 'string' ? createPrivateKey(privateKeyPem) : privateKeyPem;
  const signature = sign(null, signedBytes(object), key).toString('base64');
  return { ...object, signature };
}

/** True only when `signature` is a valid Ed25519 signature by this key; never throws on bad input. */
export function verifyObject(object: Record<string, unknown>, publicKeyPem: string): boolean {
  try {
    const signature = object.signature;
    if (typeof signature !== 'string' || signature.length === 0) return false;
    const key = createPublicKey(publicKeyPem);
    if (key.asymmetricKeyType !== 'ed25519') return false;
    return verify(null, signedBytes(object), key, Buffer.from(signature, 'base64'));
  } catch {
    return false;
  }
}

export function isEd25519PublicKeyPem(pem: unknown): pem is string {
  if (typeof pem !== 'string') return false;
  try {
    return createPublicKey(pem).asymmetricKeyType === 'ed25519';
  } catch {
    return false;
  }
}
