/**
 * Camera identity made on first boot: serial, model, firmware, officer, agency
 * and an Ed25519 key pair. A seeded camera derives all of it from the seed
 * (the key from a 32-byte seed wrapped in a PKCS#8 DER prefix), so fixtures and
 * CI runs are reproducible.
 */
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { generateSigningKeyPair, type KeyPairPem } from '../protocol/signing.js';
import { derive, SeededRandom } from './random.js';

/** PKCS#8 DER header of an Ed25519 private key; the 32-byte seed follows it. */
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

export const SERIAL_PATTERN = /^[A-Za-z0-9][A-Za-z0-9-]{1,31}$/;

export const CAMERA_MODEL = 'BWC-Sim X1';
export const CAMERA_FIRMWARE = '2.3.1-sim';
const AGENCIES = ['Metro Police Department', 'County Sheriff Office', 'State Highway Patrol', 'Harbor Police', 'University Police'];

export interface Identity {
  serial: string;
  model: string;
  firmware: string;
  officerId: string;
  agency: string;
}

export function keyPairFromSeed(seed32: Buffer): KeyPairPem {
  const privateKey: KeyObject = createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, seed32]), format: 'der', type: 'pkcs8' });
  return {
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKeyPem: createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }).toString(),
  };
}

export function serialFromSeed(seed: string): string {
  return `BWC${String(derive(seed, 'serial').readUInt32BE(0) % 1_000_000).padStart(6, '0')}`;
}

export function newIdentity(serial: string | undefined, seed: string | undefined): Identity {
  const random = seed === undefined ? SeededRandom.unseeded('identity') : new SeededRandom(seed, 'identity');
  const chosenSerial = serial ?? (seed === undefined ? `BWC${String(random.int(0, 999_999)).padStart(6, '0')}` : serialFromSeed(seed));
  return {
    serial: chosenSerial,
    model: CAMERA_MODEL,
    firmware: CAMERA_FIRMWARE,
    officerId: `OFC-${String(random.int(1000, 99999)).padStart(5, '0')}`,
    agency: random.pick(AGENCIES),
  };
}

/** The camera's key pair: from the seed (and serial) when seeded, random otherwise. */
export function newKeyPair(serial: string, seed: string | undefined): KeyPairPem {
  return seed === undefined ? generateSigningKeyPair() : keyPairFromSeed(derive(seed, `key:${serial}`));
}
