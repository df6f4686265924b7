/**
 * The dock's own Ed25519 key pair, made on first start and kept in the state folder. The private
 * half is the identity: the public file is derived from it, and a public file that is not its
 * half is refused, never replaced (the server pinned one of them; which one is for a person to say).
 */
import { closeSync, constants, copyFileSync, existsSync, fchmodSync, fstatSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { join } from 'node:path';
import { EnvironmentError } from '../errors.js';
import { writeFileAtomic, writeFileOnce } from '../util/atomicFile.js';
import { generateSigningKeyPair, keyIdOf, type KeyPairPem } from '../protocol/signing.js';

export const DOCK_PRIVATE_KEY_FILE = 'dock-key.pem';
export const DOCK_PUBLIC_KEY_FILE = 'dock-key.pub.pem';

/**
 * A key file of the state folder, read from one fd opened without following a link: a symlink or a
 * device planted there is refused, never read and never chmod-ed (a chmod through a link to
 * /dev/zero would change the device). A key written by an older build (or copied in) that others
 * may read is made owner-only on that same fd.
 */
function readKeyFile(path: string): string {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ELOOP') throw new EnvironmentError('E_DOCK_KEY', `${path} is a symbolic link: a dock key is a file of the state folder itself`, { cause });
    throw cause;
  }
  try {
    const stats = fstatSync(fd);
    if (!stats.isFile()) throw new EnvironmentError('E_DOCK_KEY', `${path} is not a regular file`);
    if ((stats.mode & 0o077) !== 0) fchmodSync(fd, 0o600);
    return readFileSync(fd, 'utf8');
  } finally {
    closeSync(fd);
  }
}

function publicHalfOf(privateKeyPem: string): string {
  return createPublicKey(createPrivateKey(privateKeyPem)).export({ type: 'spki', format: 'pem' }).toString();
}

/** The state folder's two key files are not one pair: no restart mends it (exit 2, as a configuration error). */
export class DockKeyMismatchError extends EnvironmentError {
  override readonly exitCode = 2;
}

/** The public half of this private key; throws when the public file given is not it. */
function checkedPublicHalf(stateDir: string, privateKeyPem: string, publicKeyPem: string | undefined): string {
  const derived = publicHalfOf(privateKeyPem);
  if (publicKeyPem !== undefined && keyIdOf(publicKeyPem) !== keyIdOf(derived)) {
    throw new DockKeyMismatchError('E_DOCK_KEY_MISMATCH',
      `${join(stateDir, DOCK_PUBLIC_KEY_FILE)} (key ${keyIdOf(publicKeyPem).slice(0, 16)}…) is not the public half of ${join(stateDir, DOCK_PRIVATE_KEY_FILE)} (key ${keyIdOf(derived).slice(0, 16)}…): `
      + 'restore the pair from a backup, or remove both files to make a new identity (the server\'s operator then runs `bodycam server reset-dock-key`)');
  }
  return derived;
}

export function loadOrCreateDockKey(stateDir: string): KeyPairPem & { keyId: string; created: boolean } {
  const privatePath = join(stateDir, DOCK_PRIVATE_KEY_FILE);
  const publicPath = join(stateDir, DOCK_PUBLIC_KEY_FILE);
  let created = false;
  let privateKeyPem: string;
  let publicKeyPem: string;
  try {
    // Write-once (link(2)): of two processes making the key at once, one wins and both use its pair.
    if (!existsSync(privatePath)) created = writeFileOnce(privatePath, generateSigningKeyPair().privateKeyPem, 0o600);
    privateKeyPem = readKeyFile(privatePath);
    // A public file with no private key beside it was never signed with: an older build wrote the
    // public half first, and a crash before the private half left it alone. The new pair replaces it.
    if (existsSync(publicPath) && !created) {
      publicKeyPem = readKeyFile(publicPath);
      checkedPublicHalf(stateDir, privateKeyPem, publicKeyPem);
    } else {
      const derived = publicHalfOf(privateKeyPem);
      // Derived, so every writer writes the same bytes: no race to lose.
      writeFileAtomic(publicPath, derived, 0o600);
      publicKeyPem = derived;
    }
  } catch (cause) {
    if (cause instanceof EnvironmentError) throw cause;
    throw new EnvironmentError('E_DOCK_KEY', `cannot read or create the dock key pair in ${stateDir}: ${(cause as Error).message}`, { cause });
  }
  return { privateKeyPem, publicKeyPem, keyId: keyIdOf(publicKeyPem), created };
}

/**
 * The key id this state folder's dock signs with, without making a key: undefined when it holds
 * no private key. Throws E_DOCK_KEY_MISMATCH when its two files are not one pair (what the dock would refuse).
 */
export function dockKeyIdIn(stateDir: string): string | undefined {
  const privatePath = join(stateDir, DOCK_PRIVATE_KEY_FILE);
  const publicPath = join(stateDir, DOCK_PUBLIC_KEY_FILE);
  // No private key: the dock makes a new pair at its start (a lone public file is replaced).
  if (!existsSync(privatePath)) return undefined;
  const publicKeyPem = existsSync(publicPath) ? readKeyFile(publicPath) : undefined;
  return keyIdOf(checkedPublicHalf(stateDir, readKeyFile(privatePath), publicKeyPem));
}

/**
 * Give a state folder the dock key kept in `keyDir` (made there on first use): a dock that
 * starts from a fresh state folder every run (replay against a real server) keeps one identity,
 * which the server pinned on first contact.
 */
export function installDockKey(keyDir: string, stateDir: string): void {
  mkdirSync(keyDir, { recursive: true, mode: 0o700 });
  loadOrCreateDockKey(keyDir);
  mkdirSync(stateDir, { recursive: true });
  for (const file of [DOCK_PRIVATE_KEY_FILE, DOCK_PUBLIC_KEY_FILE]) copyFileSync(join(keyDir, file), join(stateDir, file));
}
