/**
 * The server's Ed25519 identity. Made on first start; the private key is 0600
 * in the data dir, the public key is published beside it and at GET /v1/keys.
 */
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { errnoCode, UsageError } from '../../errors.js';
import { generateSigningKeyPair, keyIdOf } from '../../protocol/signing.js';
import { readPrivateFile } from '../../util/privateFile.js';
import { insideRoot } from '../paths.js';
import { publishOnce, replaceFile } from '../privateFiles.js';

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

/**
 * The key every server of one shared state is started with (--server-key): a PEM private key,
 * 0600 (it signs every receipt). Never created here: a second server making its own would sign
 * receipts the others cannot tell from forgeries.
 */
export async function loadServerKeyFile(path: string): Promise<ServerKey> {
  const pem = readPrivateFile(path, {
    kind: 'secret', label: '--server-key:', why: 'it signs every receipt', code: 'E_SERVER_KEY_MODE',
    unreadable: { message: (cause) => `--server-key: cannot read ${path} (${errnoCode(cause) ?? String(cause)}); make one with \`bodycam server key new > FILE\``, code: 'E_SERVER_KEY' },
  }).text;
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(pem);
  } catch (error) {
    throw new UsageError(`--server-key: ${path} is not a PEM private key`, { cause: error, code: 'E_SERVER_KEY' });
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new UsageError(`--server-key: ${path} is a ${String(privateKey.asymmetricKeyType)} key, an Ed25519 key is needed`, { code: 'E_SERVER_KEY' });
  const publicKeyPem = createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }).toString();
  return { privateKey, publicKeyPem, keyId: keyIdOf(publicKeyPem) };
}
