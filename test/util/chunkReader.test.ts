import { afterAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { runs } from '../helpers/fcRuns.js';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { readChunks, WindowReader } from '../../src/util/chunkReader.js';
import { makeTempDir } from '../helpers/tmp.js';

describe('readChunks: two reused buffers, one read ahead', () => {
  const tmp = makeTempDir('bodycam-chunk-reader-');
  afterAll(() => tmp.cleanup());
  const data = randomBytes(40_003);
  const path = join(tmp.path, 'f.bin');
  writeFileSync(path, data);

  it('gives exactly the bytes of any range, or of the rest of the file, in chunks no larger than the buffers', async () => {
    const handle = await open(path, 'r');
    try {
      await fc.assert(fc.asyncProperty(
        fc.integer({ min: 0, max: data.length }), fc.option(fc.integer({ min: 0, max: data.length }), { nil: undefined }), fc.integer({ min: 97, max: 15_000 }),
        async (position, wanted, chunkBytes) => {
          const length = wanted === undefined ? undefined : Math.min(wanted, data.length - position);
          const got: Buffer[] = [];
          for await (const chunk of readChunks(handle, { position, length, chunkBytes })) {
            expect(chunk.length).toBeGreaterThan(0);
            expect(chunk.length).toBeLessThanOrEqual(chunkBytes);
            got.push(Buffer.from(chunk));
          }
          expect(Buffer.concat(got).equals(data.subarray(position, length === undefined ? data.length : position + length))).toBe(true);
        },
      ), { numRuns: runs(40) });
    } finally {
      await handle.close();
    }
  });

  it('hands out views of the two given buffers only, alternating', async () => {
    const handle = await open(path, 'r');
    const buffers: [Buffer, Buffer] = [Buffer.alloc(10_000), Buffer.alloc(10_000)];
    const seen: number[] = [];
    try {
      for await (const chunk of readChunks(handle, { buffers })) seen.push(buffers.findIndex((b) => b.buffer === chunk.buffer && b.byteOffset === chunk.byteOffset));
    } finally {
      await handle.close();
    }
    expect(seen).toEqual([0, 1, 0, 1, 0]);
  });

  it('a range the file no longer holds is E_FILE_CHANGED, naming the file', async () => {
    const handle = await open(path, 'r');
    try {
      const read = async (): Promise<void> => { for await (const chunk of readChunks(handle, { position: data.length - 10, length: 11, name: path })) void chunk; };
      await expect(read()).rejects.toMatchObject({ code: 'E_FILE_CHANGED', message: expect.stringContaining(path) as unknown as string });
    } finally {
      await handle.close();
    }
  });

  it('a loop left early ends cleanly with what it read, and the handle closes at once', async () => {
    const handle = await open(path, 'r');
    const got: Buffer[] = [];
    for await (const chunk of readChunks(handle, { chunkBytes: 1000 })) { got.push(Buffer.from(chunk)); if (got.length === 3) break; }
    await handle.close();
    expect(Buffer.concat(got).equals(data.subarray(0, 3000))).toBe(true);
  });

  it('an aborted signal stops the read before the next chunk', async () => {
    const handle = await open(path, 'r');
    const controller = new AbortController();
    let chunks = 0;
    const read = async (): Promise<void> => {
      for await (const chunk of readChunks(handle, { chunkBytes: 1000, signal: controller.signal })) { void chunk; if (++chunks === 2) controller.abort(new Error('stop')); }
    };
    try {
      await expect(read()).rejects.toThrow('stop');
      expect(chunks).toBe(2);
    } finally {
      await handle.close();
    }
  });

  it('WindowReader: any sequence of small and large reads gives the file bytes, kept buffers stay intact', async () => {
    const handle = await open(path, 'r');
    try {
      await fc.assert(fc.asyncProperty(
        fc.array(fc.tuple(fc.integer({ min: 0, max: data.length + 100 }), fc.integer({ min: 0, max: 3000 })), { minLength: 1, maxLength: 40 }),
        async (reads) => {
          const reader = new WindowReader(handle, 1024);
          const kept: Array<[number, number, Buffer]> = [];
          for (const [offset, length] of reads) kept.push([offset, length, await reader.read(offset, length)]);
          // Checked after all reads: a returned buffer must not be a view the next read overwrites.
          for (const [offset, length, got] of kept) expect(got.equals(data.subarray(offset, Math.min(data.length, offset + length)))).toBe(true);
        },
      ), { numRuns: runs(40) });
    } finally {
      await handle.close();
    }
  });
});
