/**
 * The wipe's re-read on a hash worker (the built program: the worker exists only in dist/), run in
 * a child node as the dock runs it. The worker reads through the descriptor the caller holds: it
 * must hash the very file that was opened (not whatever the path names now), leave the descriptor
 * open for the caller, and fail the way the same-thread read fails.
 */
import { describe, it, expect, afterAll } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeTempDir } from '../helpers/tmp.js';

const hasherModule = fileURLToPath(new URL('../../dist/dock/hasher.js', import.meta.url));

/** Run `script` (with the built hasher as `m`) in a child node, from a file: a worker inherits the parent's flags, and `--input-type` would refuse the worker's own file. */
function runBuilt(dir: string, script: string): unknown {
  const file = join(dir, `script-${randomBytes(4).toString('hex')}.mjs`);
  writeFileSync(file, `const m = await import(${JSON.stringify(hasherModule)});\n${script}`);
  const out = execFileSync(process.execPath, [file], { encoding: 'utf8', timeout: 60_000 });
  return JSON.parse(out.trim().split('\n').pop()!);
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

describe('hashThroughDescriptorOffThread (built worker)', () => {
  const tmp = makeTempDir('bodycam-hash-worker-');
  afterAll(() => tmp.cleanup());

  it('hashes the descriptor it was given, answers the challenged segments, and leaves the descriptor open', () => {
    const data = randomBytes(3 * 1024 * 1024 + 4321);
    const path = join(tmp.path, 'clip.mp4');
    writeFileSync(path, data);
    const other = join(tmp.path, 'other.mp4');
    writeFileSync(other, randomBytes(data.length));
    const lengths = [700_001, 1024 * 1024, 1, data.length - 700_001 - 1024 * 1024 - 1];
    const segments: Array<{ index: number; offset: number; length: number }> = [];
    let offset = 0;
    for (const [index, length] of lengths.entries()) { segments.push({ index, offset, length }); offset += length; }
    const nonce = randomBytes(32);
    const result = runBuilt(tmp.path, `
      const { open, rename } = await import('node:fs/promises');
      const handle = await open(${JSON.stringify(path)}, 'r');
      // Another file takes the path after it was opened: the descriptor still reads the first one.
      await rename(${JSON.stringify(other)}, ${JSON.stringify(path)});
      const nonce = Buffer.from(${JSON.stringify(nonce.toString('hex'))}, 'hex');
      const off = await m.hashThroughDescriptorOffThread(handle, ${JSON.stringify(segments)}, nonce, new Set([0, 2, 3]));
      const here = await m.hashThroughDescriptor(handle, ${JSON.stringify(segments)}, nonce, new Set([0, 2, 3]));
      const stillOpen = (await handle.stat()).size;
      await handle.close();
      console.log(JSON.stringify({ off: { ...off, answers: [...off.answers] }, here: { ...here, answers: [...here.answers] }, stillOpen }));
    `) as { off: { sha256: string; size: number; answers: Array<[number, string]> }; here: unknown; stillOpen: number };
    const answer = (i: number): string => createHash('sha256').update(nonce).update(data.subarray(segments[i]!.offset, segments[i]!.offset + segments[i]!.length)).digest('hex');
    expect(result.off).toEqual({ sha256: sha(data), size: data.length, answers: [[0, answer(0)], [2, answer(2)], [3, answer(3)]] });
    expect(result.here).toEqual(result.off);
    expect(result.stillOpen).toBe(data.length);
  });

  it('fails as the same-thread read does: a plan gap, an abandoned wipe, a closed descriptor', () => {
    const path = join(tmp.path, 'short.mp4');
    writeFileSync(path, randomBytes(200_000));
    const result = runBuilt(tmp.path, `
      const { open } = await import('node:fs/promises');
      const handle = await open(${JSON.stringify(path)}, 'r');
      const outcome = (p) => p.then(() => 'resolved', (e) => e.code + ' ' + e.constructor.name);
      const gap = await outcome(m.hashThroughDescriptorOffThread(handle, [{ index: 0, offset: 0, length: 100 }, { index: 1, offset: 150, length: 50 }], Buffer.alloc(32), new Set()));
      const controller = new AbortController();
      const pending = outcome(m.hashThroughDescriptorOffThread(handle, [{ index: 0, offset: 0, length: 200000 }], Buffer.alloc(32), new Set([0]), controller.signal));
      controller.abort(new Error('undocked'));
      const aborted = await pending;
      const before = await outcome(m.hashThroughDescriptorOffThread(handle, [{ index: 0, offset: 0, length: 200000 }], Buffer.alloc(32), new Set([0]), AbortSignal.abort()));
      const fd = handle.fd;
      await handle.close();
      const closed = await outcome(m.hashThroughDescriptorOffThread({ fd }, [{ index: 0, offset: 0, length: 200000 }], Buffer.alloc(32), new Set([0])));
      console.log(JSON.stringify({ gap, aborted, before, closed }));
    `) as Record<string, string>;
    expect(result).toEqual({ gap: 'E_PLAN_GAP IntegrityError', aborted: 'E_DOCK_PAUSED PausedError', before: 'E_DOCK_PAUSED PausedError', closed: 'EBADF Error' });
  });
});
