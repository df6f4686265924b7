/**
 * The server's Ed25519 identity. Made on first start; the private key is 0600
 * in the data dir, the public key is published beside it and at GET /v1/keys.
 */
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { errnoCode } from '../errors.js';
import { generateSigningKeyPair, keyIdOf } from '../protocol/signing.js';
import { insideRoot } from './paths.js';
import { publishOnce, replaceFile } from './privateFiles.js';

export interface ServerKey {
  privateKey: KeyObject;
  publicKeyPem: string;
  keyId: string;
}

export async function loadOrCreateServerKey(dataDir: string): Promise<ServerKey> {
  const privatePath = insideRoot(dataDir, 'server-key.pem');
  const publicPath = insideRoot(dataDir, 'server-key.pub.pem');
  let privatePem: string;
  try {
    privatePem = await readFile(privatePath, 'utf8');
  } catch (error) {
    if (errnoCode(error) !== 'ENOENT') throw error;
    const pair = generateSigningKeyPair();
    // Write-once and whole: a full disk at first start must not leave half a key that stops every later start.
    privatePem = await publishOnce(privatePath, pair.privateKeyPem) ? pair.privateKeyPem : await readFile(privatePath, 'utf8');
  }
  const privateKey = createPrivateKey(privatePem);
  const publicKeyPem = createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }).toString();
  // Always rewrite the public half from the private one: it can never disagree.
  await replaceFile(publicPath, publicKeyPem); // 0600: it is public, but the data dir is private as a whole
  return { privateKey, publicKeyPem, keyId: keyIdOf(publicKeyPem) };
}
