/**
 * SHA-256 helpers and the RFC 9530 digest fields (`Content-Digest`,
 * `Repr-Digest`): a structured-field dictionary whose sha-256 member is a byte
 * sequence, e.g. `sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:`.
 */
import { createHash } from 'node:crypto';

export const SHA256_HEX = /^[0-9a-f]{64}$/;

export function sha256Hex(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

export function formatDigestHeader(sha256HexValue: string): string {
  return `sha-256=:${Buffer.from(sha256HexValue, 'hex').toString('base64')}:`;
}

/** The sha-256 member of a digest field as hex, or undefined if absent or malformed. */
export function parseDigestHeader(header: string | string[] | undefined): string | undefined {
  if (header === undefined) return undefined;
  const text = Array.isArray(header) ? header.join(',') : header;
  for (const member of text.split(',')) {
    const match = /^\s*sha-256\s*=\s*:([A-Za-z0-9+/]+={0,2}):\s*$/i.exec(member);
    if (match) {
      const bytes = Buffer.from(match[1]!, 'base64');
      if (bytes.length === 32) return bytes.toString('hex');
      return undefined;
    }
  }
  return undefined;
}
