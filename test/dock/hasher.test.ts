import { describe, it, expect, afterAll } from '@jest/globals';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { hashFile } from '../../src/dock/hasher.js';
import { sha256Hex } from '../../src/protocol/digest.js';
import { merkleRoot } from '../../src/protocol/merkle.js';
import { makeTempDir } from '../helpers/tmp.js';

describe('one-read hasher', () => {
  const tmp = makeTempDir('bodycam-dock-hash-');
  afterAll(() => tmp.cleanup());

  it('gives the same file, segment and Merkle hashes as hashing each part separately', async () => {
    const data = randomBytes(3 * 1024 * 1024 + 123);
    const path = join(tmp.path, 'f.bin');
    writeFileSync(path, data);
    // Uneven ranges that straddle the read chunks.
    const lengths = [1, 70_000, 1024 * 1024 + 5, 999, data.length - (1 + 70_000 + 1024 * 1024 + 5 + 999)];
    const ranges: Array<{ offset: number; length: number }> = [];
    let offset = 0;
    for (const length of lengths) { ranges.push({ offset, length }); offset += length; }
    const result = await hashFile(path, ranges, data.length, { chunkBytes: 64 * 1024 });
    const separate = ranges.map((r) => sha256Hex(data.subarray(r.offset, r.offset + r.length)));
    expect(result.sha256).toBe(sha256Hex(data));
    expect(result.size).toBe(data.length);
    expect(result.segmentSha256).toEqual(separate);
    expect(result.merkleRoot).toBe(merkleRoot(separate));
  });

  it('refuses a plan that does not tile the file, and a file that changed size', async () => {
    const path = join(tmp.path, 'g.bin');
    writeFileSync(path, randomBytes(1000));
    await expect(hashFile(path, [{ offset: 0, length: 500 }, { offset: 600, length: 400 }], 1000)).rejects.toMatchObject({ code: 'E_PLAN_GAP' });
    await expect(hashFile(path, [{ offset: 0, length: 900 }], 900)).rejects.toMatchObject({ code: 'E_FILE_GREW' });
  });
});
