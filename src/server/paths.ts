/**
 * The only way the server turns names into paths: every component is checked
 * against the id pattern, and the result is proven to stay inside its root, so
 * no request can ever address a file outside the data dir.
 */
import { resolve, sep } from 'node:path';
import { InputError } from '../errors.js';
import { SHA256_HEX } from '../protocol/digest.js';
import { SERVER_ERROR_CODES } from './errorCodes.js';

export function insideRoot(root: string, ...parts: string[]): string {
  const base = resolve(root);
  const full = resolve(base, ...parts);
  if (full !== base && !full.startsWith(base + sep)) {
    throw new InputError(SERVER_ERROR_CODES.invalidId, `path escapes its root: ${parts.join('/')}`);
  }
  return full;
}

export function assertSha256(value: string): string {
  if (!SHA256_HEX.test(value)) throw new InputError(SERVER_ERROR_CODES.invalidId, 'not a lowercase sha-256 hex digest');
  return value;
}
