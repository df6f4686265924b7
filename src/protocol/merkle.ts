/**
 * Merkle tree hash over segment SHA-256 digests, as in RFC 6962 §2.1:
 * leaf = SHA-256(0x00 || segment digest), node = SHA-256(0x01 || left || right),
 * splitting at the largest power of two below n. The domain-separation bytes
 * stop a leaf from being passed off as an inner node.
 */
import { createHash } from 'node:crypto';

function hash(...parts: Buffer[]): Buffer {
  const h = createHash('sha256');
  for (const part of parts) h.update(part);
  return h.digest();
}

function treeHash(leaves: Buffer[]): Buffer {
  if (leaves.length === 0) return hash();
  if (leaves.length === 1) return hash(Buffer.from([0]), leaves[0]!);
  let split = 1;
  while (split * 2 < leaves.length) split *= 2;
  return hash(Buffer.from([1]), treeHash(leaves.slice(0, split)), treeHash(leaves.slice(split)));
}

/** Merkle root (hex) of the given segment digests (hex), in order. */
export function merkleRoot(segmentSha256Hex: readonly string[]): string {
  return treeHash(segmentSha256Hex.map((hex) => Buffer.from(hex, 'hex'))).toString('hex');
}
