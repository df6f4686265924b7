/**
 * Seeded randomness: the same seed gives the same serials, keys, clock and
 * metadata. Without a seed the camera draws from the system's randomness.
 */
import { createHash, randomBytes } from 'node:crypto';

/** 32 bytes derived from a seed and a purpose, so each use gets independent values. */
export function derive(seed: string, purpose: string): Buffer {
  return createHash('sha256').update(`bodycam-camera/1\0${seed}\0${purpose}`).digest();
}

/** A deterministic stream of numbers in [0, 1) (SHA-256 in counter mode). */
export class SeededRandom {
  private counter = 0;
  private buffer: Buffer = Buffer.alloc(0);
  private offset = 0;

  constructor(private readonly seed: string, private readonly purpose: string) {}

  /** A stream from the operating system's randomness (unseeded cameras). */
  static unseeded(purpose: string): SeededRandom {
    return new SeededRandom(randomBytes(16).toString('hex'), purpose);
  }

  next(): number {
    if (this.offset + 4 > this.buffer.length) {
      this.buffer = derive(this.seed, `${this.purpose}#${this.counter++}`);
      this.offset = 0;
    }
    const value = this.buffer.readUInt32BE(this.offset);
    this.offset += 4;
    return value / 0x1_0000_0000;
  }

  int(min: number, maxInclusive: number): number {
    return min + Math.floor(this.next() * (maxInclusive - min + 1));
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }
}
