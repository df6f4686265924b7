import { afterAll, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileRangeChunks } from '../../src/dock/client.js';
import { makeTempDir } from '../helpers/tmp.js';

describe('upload body from reused buffers', () => {
  const tmp = makeTempDir('bodycam-dock-body-');
  afterAll(() => tmp.cleanup());
  const data = randomBytes(300_000);
  const path = join(tmp.path, 'f.bin');
  writeFileSync(path, data);

  it('yields exactly the bytes of the range, across many chunks', async () => {
    const sent: Buffer[] = [];
    // Copy each chunk when it is taken, as the socket does before asking for the next one.
    for await (const chunk of fileRangeChunks(path, 1234, 250_001, 64 * 1024)) sent.push(Buffer.from(chunk));
    expect(sent.length).toBe(4);
    expect(Buffer.concat(sent).equals(data.subarray(1234, 1234 + 250_001))).toBe(true);
  });

  it('fails when the file holds less than the range (it changed since it was planned)', async () => {
    const read = async (): Promise<void> => { for await (const chunk of fileRangeChunks(path, 299_000, 5000, 1024)) void chunk; };
    await expect(read()).rejects.toMatchObject({ code: 'E_FILE_CHANGED' });
  });
});
