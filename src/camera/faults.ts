/**
 * What each fault leaves on the card, applied to the last file of a `record`
 * invocation, the way a real device would leave it (docs/camera-storage.md).
 */
import { closeSync, openSync, readSync, statSync, truncateSync, writeSync } from 'node:fs';
import { keyframeIndex } from '../media/keyframes.js';
import type { Fault, FaultName } from './options.js';

export function hasFault(faults: readonly Fault[], name: FaultName): boolean {
  return faults.some((f) => f.name === name);
}

export interface PowerLossCut {
  /** Bytes kept. */
  cutAtByte: number;
  /** Media time of the last keyframe before the cut: what survives, roughly. */
  cutAtSeconds: number;
}

/**
 * Cut the file in the middle of the media, between two keyframes about 60% of
 * the way in, as power failing mid-write would: the last fragment is partial.
 */
export async function cutForPowerLoss(path: string, durationSeconds: number): Promise<PowerLossCut> {
  const size = statSync(path).size;
  // A keyframe index that cannot be read (ffprobe failed on the file) leaves a plain byte fraction.
  const keyframes = (await keyframeIndex(path).catch(() => [])).filter((k) => k.pos > 0).sort((a, b) => a.pos - b.pos);
  let cutAtByte = Math.floor(size * 0.6);
  let cutAtSeconds = durationSeconds * 0.6;
  if (keyframes.length >= 3) {
    const index = Math.min(keyframes.length - 2, Math.max(1, Math.floor(keyframes.length * 0.6)));
    const here = keyframes[index]!;
    const next = keyframes[index + 1]!;
    cutAtByte = here.pos + Math.max(1, Math.floor((next.pos - here.pos) / 2));
    cutAtSeconds = here.time;
  }
  // Power fails at any byte, not at a packet boundary: a transport stream (188, 192 or 204-byte
  // packets) is left mid-packet, as the dock must be able to tell.
  if (/\.(ts|mts|m2ts)$/i.test(path)) while (cutAtByte % 188 === 0 || cutAtByte % 192 === 0 || cutAtByte % 204 === 0) cutAtByte++;
  truncateSync(path, cutAtByte);
  return { cutAtByte, cutAtSeconds };
}

/** Flip bits in a few bytes in the middle of the file (after the sidecar was signed). */
export function flipBits(path: string, seedByte: number): { offset: number; length: number } {
  const size = statSync(path).size;
  const length = Math.min(8, size);
  const offset = Math.max(0, Math.floor(size / 2) - (seedByte % 64));
  const fd = openSync(path, 'r+');
  try {
    const bytes = Buffer.alloc(length);
    readSync(fd, bytes, 0, length, offset);
    for (let i = 0; i < length; i++) bytes[i] = bytes[i]! ^ 0x5a;
    writeSync(fd, bytes, 0, length, offset);
  } finally {
    closeSync(fd);
  }
  return { offset, length };
}

/** A signature that is well-formed base64 of the right length but does not verify. */
export function spoilSignature(signature: string): string {
  const bytes = Buffer.from(signature, 'base64');
  bytes[0] = bytes[0]! ^ 0x01;
  return bytes.toString('base64');
}
