import { afterAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { runs } from '../helpers/fcRuns.js';
import { writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { readLastLineBefore } from '../../src/util/lastLine.js';
import { makeTempDir } from '../helpers/tmp.js';

/** What the last line is by the plain definition: split the whole prefix on newlines. */
function expected(text: string, end: number): { line: string | undefined; torn: number } {
  const prefix = Buffer.from(text, 'utf8').subarray(0, end);
  const last = prefix.lastIndexOf(0x0a);
  if (last < 0) return { line: undefined, torn: end };
  const before = last === 0 ? -1 : prefix.lastIndexOf(0x0a, last - 1);
  return { line: prefix.subarray(before + 1, last).toString('utf8'), torn: end - last - 1 };
}

describe('readLastLineBefore: the last whole line, read from the end', () => {
  const tmp = makeTempDir('bodycam-last-line-');
  afterAll(() => tmp.cleanup());
  let n = 0;
  const read = async (text: string, end: number, window?: number) => {
    const path = join(tmp.path, `f${n++}.txt`);
    writeFileSync(path, text);
    const handle = await open(path, 'r');
    try { return await readLastLineBefore(handle, end, window); } finally { await handle.close(); }
  };

  it('finds a last line longer than the first window (the window grows until the line starts inside it)', async () => {
    const long = 'x'.repeat(300_000);
    expect(await read(`a\n${long}\n`, 300_003)).toEqual({ line: long, torn: 0 });
    expect(await read(`${long}\n`, 300_001)).toEqual({ line: long, torn: 0 });
  });

  it('reports a file without a trailing newline as a torn tail after the last whole line', async () => {
    expect(await read('one\ntwo\nthr', 11)).toEqual({ line: 'two', torn: 3 });
    expect(await read('no newline at all', 17)).toEqual({ line: undefined, torn: 17 });
    expect(await read(`first\n${'y'.repeat(200_000)}`, 200_006)).toEqual({ line: 'first', torn: 200_000 });
    expect(await read('', 0)).toEqual({ line: undefined, torn: 0 });
  });

  it('an empty last line and a newline at the window edge give the line, not a guess', async () => {
    expect(await read('a\n\n', 3)).toEqual({ line: '', torn: 0 });
    // The window (4 bytes) begins exactly at the last newline: the line before it starts further back.
    expect(await read('abcdefgh\n123', 12, 4)).toEqual({ line: 'abcdefgh', torn: 3 });
  });

  it('is undefined when the file ends before `end` (cut short since its size was taken)', async () => {
    expect(await read('abc\n', 10)).toBeUndefined();
  });

  it('agrees with splitting the whole file for any text, end and window', async () => {
    await fc.assert(fc.asyncProperty(
      fc.array(fc.oneof(fc.constant('\n'), fc.string({ maxLength: 12 }), fc.constant('é')), { maxLength: 30 }),
      fc.integer({ min: 1, max: 9 }), fc.nat(),
      async (parts, window, cut) => {
        const text = parts.join('');
        const size = Buffer.byteLength(text);
        const end = size === 0 ? 0 : cut % (size + 1);
        expect(await read(text, end, window)).toEqual(expected(text, end));
      }), { numRuns: runs(150) });
  });
});
