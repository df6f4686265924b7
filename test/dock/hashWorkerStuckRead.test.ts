/**
 * A wipe's re-hash abandoned while the worker's read is stuck in the kernel (a card reader that
 * never answers): Worker.terminate() does not return until that read does, so the job must settle
 * at once anyway (the recording is not held in `running`, the agent can stop), and the descriptor
 * must stay open until the worker is gone (closed under the read, its number could be the next
 * open's). The stuck read is real: a FUSE file system that never answers reads past 1 MiB
 * (test/helpers/stuckReadFs.py; needs root and /dev/fuse, as on the CI machine; it fails without them unless BODYCAM_TEST_NO_FUSE=1).
 */
import { describe, it, expect, afterAll } from '@jest/globals';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { closeWhenUnread, hashThroughDescriptorOffThread } from '../../src/dock/hasher.js';
import { PausedError } from '../../src/dock/errors.js';
import { holdsHashedBytes } from '../../src/dock/identity.js';
import { fuseSuitesWanted, mountStuck, unmountStuck } from '../helpers/stuckFs.js';
import { makeTempDir } from '../helpers/tmp.js';

const waitFor = async (what: () => boolean, ms: number): Promise<boolean> => {
  const until = Date.now() + ms;
  while (Date.now() < until) { if (what()) return true; await new Promise((r) => setTimeout(r, 20)); }
  return what();
};

(fuseSuitesWanted ? describe : describe.skip)('hash job abandoned during a read stuck in the kernel', () => {
  const tmp = makeTempDir('bodycam-stuck-read-');
  const mnt = join(tmp.path, 'mnt');
  let fs: ChildProcess | undefined;
  afterAll(() => {
    unmountStuck(fs, mnt);
    tmp.cleanup();
  });

  it('a comparison with an open upload (identity.ts holdsHashedBytes) stuck in a read ends with the PausedError when the bay is undocked', async () => {
    fs ??= await mountStuck(mnt);
    const row = { manifestJson: JSON.stringify({ segments: [{ index: 0, offset: 0, length: 4 << 20, sha256: '0'.repeat(64) }] }) };
    const controller = new AbortController();
    const started = Date.now();
    setTimeout(() => controller.abort(new Error('camera undocked')), 300);
    const outcome = await holdsHashedBytes(row, join(mnt, 'big.bin'), controller.signal).then((same) => same, (error: unknown) => error);
    expect(outcome).toBeInstanceOf(PausedError);
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it('settles with the PausedError at once, and closes the descriptor only once the worker is gone', async () => {
    fs ??= await mountStuck(mnt);
    const handle = await open(join(mnt, 'big.bin'), 'r');
    const controller = new AbortController();
    const segments = Array.from({ length: 8 }, (_, index) => ({ index, offset: index << 20, length: 1 << 20 }));
    const started = Date.now();
    const pending = hashThroughDescriptorOffThread(handle, segments, randomBytes(32), new Set([2]), controller.signal);
    setTimeout(() => controller.abort(new Error('camera undocked')), 300);
    const outcome = await pending.then(() => 'finished', (error: unknown) => error);
    expect(outcome).toBeInstanceOf(PausedError);
    expect(Date.now() - started).toBeLessThan(3000);
    // The worker is still in the read: the descriptor stays open, whatever the caller does.
    await closeWhenUnread(handle);
    await new Promise((r) => setTimeout(r, 300));
    expect(handle.fd).toBeGreaterThanOrEqual(0);
    // The reader answers at last (here: its file system goes away): the worker ends, then the descriptor closes.
    fs.kill('SIGKILL');
    expect(await waitFor(() => handle.fd === -1, 10_000)).toBe(true);
  });
});
