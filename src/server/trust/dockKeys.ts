/**
 * Trust on first use for dock keys: the first manifest a dock id sends pins its
 * public key in <data dir>/docks/<dock id>.pub.pem. A later manifest from that
 * dock id with another key is refused (dock_key_mismatch) until an operator
 * removes the pin (`bodycam server reset-dock-key`).
 */
import { readFile, rm, unlink } from 'node:fs/promises';
import { createPublicKey } from 'node:crypto';
import { errnoCode, InputError } from '../../errors.js';
import { keyIdOf } from '../../protocol/signing.js';
import { isValidId } from '../../protocol/types.js';
import { insideRoot } from '../paths.js';
import { makePrivateDir, publishOnce } from '../privateFiles.js';
import type { DockKeyStore, PinResult } from '../state.js';
import { SERVER_ERROR_CODES } from '../errorCodes.js';

function pinPath(dataDir: string, dockId: string): string {
  if (!isValidId(dockId)) throw new InputError(SERVER_ERROR_CODES.invalidId, `invalid dock id: ${JSON.stringify(dockId)}`);
  return insideRoot(dataDir, 'docks', `${dockId}.pub.pem`);
}

export function sameKey(a: string, b: string): boolean {
  const der = (pem: string) => createPublicKey(pem).export({ type: 'spki', format: 'der' });
  return der(a).equals(der(b));
}

/** The pinned key, or undefined when there is none. An empty file is a write a full disk cut short in an older build: no pin. */
async function readPin(path: string): Promise<string | undefined> {
  try {
    const pem = await readFile(path, 'utf8');
    if (pem.trim() === '') {
      await unlink(path).catch(() => {});
      return undefined;
    }
    return pem;
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return undefined;
    throw error;
  }
}

/** 'pinned' on first use, 'match' afterwards, 'mismatch' when the key changed. */
export async function checkDockKey(dataDir: string, dockId: string, publicKeyPem: string): Promise<'pinned' | 'match' | 'mismatch'> {
  const path = pinPath(dataDir, dockId);
  const pinned = await readPin(path);
  if (pinned !== undefined) return sameKey(pinned, publicKeyPem) ? 'match' : 'mismatch';
  await makePrivateDir(insideRoot(dataDir, 'docks'));
  if (await publishOnce(path, publicKeyPem)) return 'pinned';
  const winner = await readPin(path);
  if (winner === undefined) throw new InputError(SERVER_ERROR_CODES.dockKeyPinRace, `the pin of dock ${dockId} changed while it was being written; retry`);
  return sameKey(winner, publicKeyPem) ? 'match' : 'mismatch';
}

/** Operator action: forget a dock's pinned key. Returns whether there was one. */
export async function resetDockKey(dataDir: string, dockId: string): Promise<boolean> {
  const path = pinPath(dataDir, dockId);
  try {
    await readFile(path);
  } catch (error) {
    if (errnoCode(error) === 'ENOENT') return false;
    throw error;
  }
  await rm(path);
  return true;
}

/** The embedded backend: one pin file per dock in <data dir>/docks/. */
export class FsDockKeys implements DockKeyStore {
  constructor(private readonly dataDir: string) {}
  check(dockId: string, publicKeyPem: string): Promise<PinResult> { return checkDockKey(this.dataDir, dockId, publicKeyPem); }
  reset(dockId: string): Promise<boolean> { return resetDockKey(this.dataDir, dockId); }
  keyId(dockId: string): Promise<string | undefined> { return pinnedDockKeyId(this.dataDir, dockId); }
}

/** Key id (SHA-256 of the SPKI DER, hex) of the key pinned for a dock, or undefined without a pin. */
export async function pinnedDockKeyId(dataDir: string, dockId: string): Promise<string | undefined> {
  const pem = await readPin(pinPath(dataDir, dockId));
  return pem === undefined ? undefined : keyIdOf(pem);
}
