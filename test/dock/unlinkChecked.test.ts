/**
 * The wipe's delete (src/dock/wipe.ts unlinkChecked) removes the checked inode and nothing else:
 * a file that took the path after the last check is put back under its name, or, when the name
 * was taken once more, left beside it under a media name the next scan ingests.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { lstatSnapshot, unlinkChecked } from '../../src/dock/wipe.js';
import { makeTempDir } from '../helpers/tmp.js';

const tmp = makeTempDir('bodycam-unlinkchecked-');
afterAll(() => tmp.cleanup());
let n = 0;
const dir = (): string => { const d = join(tmp.path, `c${n++}`); mkdirSync(d); return d; };

describe('unlinkChecked', () => {
  it('deletes the checked file and leaves nothing aside', async () => {
    const d = dir();
    const path = join(d, 'REC_0001.mp4');
    writeFileSync(path, 'evidence');
    const checked = (await lstatSnapshot(path))!;
    expect(await unlinkChecked(path, checked)).toBe(true);
    expect(readdirSync(d)).toEqual([]);
  });

  it('keeps a file renamed over the path after the check, under its own name', async () => {
    const d = dir();
    const path = join(d, 'REC_0001.mp4');
    writeFileSync(path, 'checked bytes');
    const checked = (await lstatSnapshot(path))!;
    writeFileSync(join(d, 'new.tmp'), 'newer evidence');
    renameSync(join(d, 'new.tmp'), path);
    expect(await unlinkChecked(path, checked)).toBe(false);
    expect(readFileSync(path, 'utf8')).toBe('newer evidence');
    expect(readdirSync(d)).toEqual(['REC_0001.mp4']);
  });

  it('never deletes a file it did not check, even when the path is gone or is a folder', async () => {
    const d = dir();
    const path = join(d, 'REC_0002.mp4');
    writeFileSync(path, 'a');
    const checked = (await lstatSnapshot(path))!;
    const other = join(d, 'other.mp4');
    writeFileSync(other, 'b');
    const otherSnap = (await lstatSnapshot(other))!;
    expect(await unlinkChecked(other, checked)).toBe(false);
    expect(readFileSync(other, 'utf8')).toBe('b');
    expect(await unlinkChecked(path, otherSnap)).toBe(false);
    expect(existsSync(path)).toBe(true);
    await expect(unlinkChecked(join(d, 'missing.mp4'), checked)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
