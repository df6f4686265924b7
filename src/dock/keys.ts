/** The dock's own Ed25519 key pair, made on first start and kept in the state folder. */
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EnvironmentError } from '../errors.js';
import { writeFileAtomic } from '../util/atomicFile.js';
import { generateSigningKeyPair, keyIdOf, type KeyPairPem } from '../protocol/signing.js';

export const DOCK_PRIVATE_KEY_FILE = 'dock-key.pem';
export const DOCK_PUBLIC_KEY_FILE = 'dock-key.pub.pem';

export function loadOrCreateDockKey(stateDir: string): KeyPairPem & { keyId: string; created: boolean } {
  const privatePath = join(stateDir, DOCK_PRIVATE_KEY_FILE);
  const publicPath = join(stateDir, DOCK_PUBLIC_KEY_FILE);
  try {
    if (existsSync(privatePath) && existsSync(publicPath)) {
      // Keys written by an older build (or copied in) may be readable by others: owner only.
      chmodSync(privatePath, 0o600);
      chmodSync(publicPath, 0o600);
      const pair = { privateKeyPem: readFileSync(privatePath, 'utf8'), publicKeyPem: readFileSync(publicPath, 'utf8') };
      return { ...pair, keyId: keyIdOf(pair.publicKeyPem), created: false };
    }
    const pair = generateSigningKeyPair();
    // Whole or not at all (temp, fsync, rename, fsync of the folder): a crash never leaves half a key.
    // The private half last: its presence with the public one is what says the pair is complete.
    writeFileAtomic(publicPath, pair.publicKeyPem, 0o600);
    writeFileAtomic(privatePath, pair.privateKeyPem, 0o600);
    return { ...pair, keyId: keyIdOf(pair.publicKeyPem), created: true };
  } catch (cause) {
    throw new EnvironmentError('E_DOCK_KEY', `cannot read or create the dock key pair in ${stateDir}: ${(cause as Error).message}`, { cause });
  }
}

/**
 * Give a state folder the dock key kept in `keyDir` (made there on first use): a dock that
 * starts from a fresh state folder every run (replay against a real server) keeps one identity,
 * which the server pinned on first contact.
 */
export function installDockKey(keyDir: string, stateDir: string): void {
  mkdirSync(keyDir, { recursive: true });
  loadOrCreateDockKey(keyDir);
  mkdirSync(stateDir, { recursive: true });
  for (const file of [DOCK_PRIVATE_KEY_FILE, DOCK_PUBLIC_KEY_FILE]) copyFileSync(join(keyDir, file), join(stateDir, file));
}
