import { describe, expect, it } from '@jest/globals';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FsStore } from '../../src/server/fsStore.js';
import { makeTempDir } from '../helpers/tmp.js';
import { runStoreConformance } from './storeConformance.js';

runStoreConformance('filesystem', async () => {
  const dir = makeTempDir('bodycam-fsstore-');
  return { store: new FsStore(dir.path), reopen: async () => new FsStore(dir.path), cleanup: dir.cleanup };
});

describe('FsStore specifics', () => {
  it('removes temp files a crash left behind, at open', async () => {
    const dir = makeTempDir('bodycam-fsstore-');
    try {
      mkdirSync(join(dir.path, 'tmp'), { recursive: true });
      writeFileSync(join(dir.path, 'tmp', '123-abc.part'), 'half a segment');
      const store = new FsStore(dir.path);
      await store.open();
      expect(readdirSync(join(dir.path, 'tmp'))).toEqual([]);
      expect(existsSync(join(dir.path, 'blobs'))).toBe(true);
      await store.close();
    } finally {
      dir.cleanup();
    }
  });
});
