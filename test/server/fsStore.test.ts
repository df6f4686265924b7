import { describe, expect, it } from '@jest/globals';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FsStore } from '../../src/server/fsStore.js';
import { buildRecording, testBytes } from '../helpers/manifest.js';
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

  it('moves recordings of the flat layout (before per-dock namespacing) under their dock at open', async () => {
    const dir = makeTempDir('bodycam-fsstore-');
    try {
      const a = buildRecording(testBytes(500, 1), { dockId: 'dock-a', recordingId: 'old-a' }).manifest;
      const b = buildRecording(testBytes(500, 2), { dockId: 'dock-b', recordingId: 'old-b' }).manifest;
      mkdirSync(join(dir.path, 'recordings'), { recursive: true });
      writeFileSync(join(dir.path, 'recordings', 'old-a.json'), JSON.stringify({ manifest: a, createdAt: 'then', completedAt: 'done' }));
      writeFileSync(join(dir.path, 'recordings', 'old-b.json'), JSON.stringify({ manifest: b, createdAt: 'then' }));
      // A crash half-way through an earlier migration: the new name exists with the same bytes.
      mkdirSync(join(dir.path, 'recordings', 'dock-b'));
      writeFileSync(join(dir.path, 'recordings', 'dock-b', 'old-b.json'), JSON.stringify({ manifest: b, createdAt: 'then' }));
      const store = new FsStore(dir.path);
      await store.open();
      expect(readdirSync(join(dir.path, 'recordings')).sort()).toEqual(['dock-a', 'dock-b']);
      expect((await store.getRecording('dock-a', 'old-a'))?.completedAt).toBe('done');
      expect((await store.getRecording('dock-b', 'old-b'))?.createdAt).toBe('then');
      expect(await store.getRecording('dock-b', 'old-a')).toBeUndefined();
      expect(await store.listRecordings()).toEqual([{ dockId: 'dock-a', recordingId: 'old-a' }, { dockId: 'dock-b', recordingId: 'old-b' }]);
      await store.close();
      // A clash with different bytes is not guessed at: open refuses.
      writeFileSync(join(dir.path, 'recordings', 'old-a.json'), JSON.stringify({ manifest: a, createdAt: 'other' }));
      await expect(new FsStore(dir.path).open()).rejects.toMatchObject({ code: 'E_STORE_MIGRATION' });
    } finally {
      dir.cleanup();
    }
  });
});
