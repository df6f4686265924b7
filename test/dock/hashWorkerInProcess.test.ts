/**
 * Under jest the hash jobs run on the built worker (test/hashWorkerSetup.ts), the path the dock
 * takes: this suite proves the set-up took, and that an abandoned wipe's re-hash settles as the
 * wipe's PausedError and leaves the next job a working worker (a read stuck in the kernel:
 * hashWorkerStuckRead.test.ts).
 */
import { describe, it, expect, afterAll } from '@jest/globals';
import { createHash, randomBytes } from 'node:crypto';
import { open, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { closeWhenUnread, hashWorkerAvailable, hashFileOffThread, hashThroughDescriptorOffThread } from '../../src/dock/hasher.js';
import { PausedError } from '../../src/dock/errors.js';
import { makeTempDir } from '../helpers/tmp.js';

describe('hash worker in the jest process', () => {
  const tmp = makeTempDir('bodycam-hash-worker-in-');
  afterAll(() => tmp.cleanup());

  it('is the built worker, and hashes as the dock does', async () => {
    expect(await hashWorkerAvailable()).toBe(true);
    const data = randomBytes(2 * 1024 * 1024 + 17);
    const path = join(tmp.path, 'a.mp4');
    await writeFile(path, data);
    const result = await hashFileOffThread(path, [{ offset: 0, length: 1024 * 1024 }, { offset: 1024 * 1024, length: data.length - 1024 * 1024 }], data.length);
    expect(result.sha256).toBe(createHash('sha256').update(data).digest('hex'));
  });

  it('rejects an abandoned re-hash with the PausedError, and the next job runs on a fresh worker', async () => {
    const size = 96 * 1024 * 1024;
    const path = join(tmp.path, 'big.mp4');
    await writeFile(path, Buffer.alloc(size, 7));
    const segments = Array.from({ length: 96 }, (_, index) => ({ index, offset: index * 1024 * 1024, length: 1024 * 1024 }));
    for (const delayMs of [0, 1, 5, 20]) {
      const handle = await open(path, 'r');
      const controller = new AbortController();
      const pending = hashThroughDescriptorOffThread(handle, segments, randomBytes(32), new Set([3]), controller.signal);
      setTimeout(() => controller.abort(new Error('undocked')), delayMs);
      const outcome = await pending.then(() => 'finished', (error: unknown) => error);
      // A fast host may finish before the abort lands; an abort must surface as the wipe's PausedError.
      if (outcome !== 'finished') expect(outcome).toBeInstanceOf(PausedError);
      await closeWhenUnread(handle);
    }
    const handle = await open(path, 'r');
    try {
      const whole = await hashThroughDescriptorOffThread(handle, segments, randomBytes(32), new Set());
      expect(whole.size).toBe(size);
      expect(whole.sha256).toBe(createHash('sha256').update(Buffer.alloc(size, 7)).digest('hex'));
    } finally {
      await handle.close();
    }
  });
});
