import { afterAll, describe, expect, it } from '@jest/globals';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PausedError } from '../../src/dock/errors.js';
import { readSidecar } from '../../src/dock/storage.js';
import { makeTempDir } from '../helpers/tmp.js';

describe('reading a sidecar', () => {
  const dir = makeTempDir('bodycam-sidecar-');
  afterAll(() => dir.cleanup());

  it('pauses, not flags, when the sidecar vanished with an undocked camera', async () => {
    // Found by replay under load: an undock between hashing and the sidecar read
    // branded a good recording "sidecar-invalid" for good.
    await expect(readSidecar(join(dir.path, 'gone', 'REC_0001.json'))).rejects.toBeInstanceOf(PausedError);
  });

  it('flags a sidecar that is there but is not a JSON object', async () => {
    const path = join(dir.path, 'REC_0002.json');
    writeFileSync(path, '[1,2,3]');
    // The bytes come along even when they are not a sidecar: they are evidence and go in the manifest.
    expect(await readSidecar(path)).toEqual({ kind: 'invalid', reason: 'sidecar is not a JSON object', bytes: Buffer.from('[1,2,3]') });
    writeFileSync(path, '{"sha256": ');
    expect((await readSidecar(path)).kind).toBe('invalid');
  });
});
