import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli, spawnCli } from '../helpers/cli.js';
import { makeTempDir } from '../helpers/tmp.js';

// These run the built CLI (dist/): `npx tsc -p tsconfig.json` first.
const tmp = makeTempDir('bodycam-camera-cli-');
const at = (name: string): string => join(tmp.path, name);
const small = ['--size', '320x240', '--fps', '15', '--bitrate', '120k'];

afterAll(() => tmp.cleanup());

function oneLine(stderr: string): void {
  const lines = stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^bodycam: /);
  expect(stderr).not.toMatch(/\n\s+at /); // no stack trace
}

describe('bad input gets one clear line, a non-zero exit and nothing half-written', () => {
  beforeAll(() => writeFileSync(at('a-file'), 'not a folder'));

  it.each([
    ['unknown container', ['--container', 'avi'], /unknown container "avi"/],
    ['negative duration', ['--duration', '-5s'], /duration/],
    ['unknown fault', ['--fault', 'gremlins'], /unknown fault/],
  ])('%s', async (_what, extra, message) => {
    const storage = at(`bad-${extra[1]}`);
    const result = await runCli(['camera', 'record', '--storage', storage, ...small, ...extra]);
    expect(result.code).toBe(2);
    oneLine(result.stderr);
    expect(result.stderr).toMatch(message);
    expect(existsSync(storage)).toBe(false);
  });

  it('unwritable storage folder', async () => {
    const result = await runCli(['camera', 'record', '--storage', join(at('a-file'), 'cam'), ...small, '--duration', '1']);
    expect(result.code).toBe(2);
    oneLine(result.stderr);
    expect(result.stderr).toMatch(/cannot be written/);
  });

  it('bays root missing', async () => {
    const storage = at('cam-for-missing-bays');
    expect((await runCli(['camera', 'record', '--storage', storage, ...small, '--duration', '1', '--seed', '1'])).code).toBe(0);
    const result = await runCli(['camera', 'dock', '--storage', storage, '--bays', at('no-such-bays'), '--bay', 'bay-01']);
    expect(result.code).toBe(2);
    oneLine(result.stderr);
    expect(result.stderr).toMatch(/bays root .* does not exist/);
    expect(existsSync(join(storage, 'DEVICE.json'))).toBe(true);
  });
});

describe('docking', () => {
  it('dock and undock move the whole storage with one rename, and refuse an occupied bay', async () => {
    const bays = at('bays');
    mkdirSync(bays);
    const storage = at('cam-dock');
    expect((await runCli(['camera', 'record', '--storage', storage, ...small, '--duration', '1', '--seed', '2'])).code).toBe(0);
    const before = readdirSync(join(storage, 'DCIM/100BWC')).sort();
    const docked = await runCli(['camera', 'dock', '--storage', storage, '--bays', bays, '--bay', 'bay-01']);
    expect(docked.code).toBe(0);
    expect(existsSync(storage)).toBe(false);
    expect(readdirSync(join(bays, 'bay-01', 'DCIM/100BWC')).sort()).toEqual(before);

    const other = at('cam-other');
    expect((await runCli(['camera', 'record', '--storage', other, ...small, '--duration', '1', '--seed', '3'])).code).toBe(0);
    const refused = await runCli(['camera', 'dock', '--storage', other, '--bays', bays, '--bay', 'bay-01']);
    expect(refused.code).toBe(2);
    oneLine(refused.stderr);
    expect(refused.stderr).toMatch(/occupied/);
    expect(existsSync(join(other, 'DEVICE.json'))).toBe(true);

    const back = at('cam-back');
    expect((await runCli(['camera', 'undock', '--bays', bays, '--bay', 'bay-01', '--to', back])).code).toBe(0);
    expect(existsSync(join(bays, 'bay-01'))).toBe(false);
    expect(readdirSync(join(back, 'DCIM/100BWC')).sort()).toEqual(before);
  });

  it('fleet records N cameras and docks them into bay-01..bay-N', async () => {
    const bays = at('fleet-bays');
    mkdirSync(bays);
    const result = await runCli(['camera', 'fleet', '--cameras', '2', '--bays', bays, ...small, '--duration', '1', '--seed', '4']);
    expect(result.code).toBe(0);
    expect(readdirSync(bays).sort()).toEqual(['bay-01', 'bay-02']);
    for (const bay of ['bay-01', 'bay-02']) expect(readdirSync(join(bays, bay, 'DCIM/100BWC')).length).toBe(2);
  });
});

describe('--realtime', () => {
  it('shows a growing file before its sidecar exists', async () => {
    const storage = at('realtime');
    const child = spawnCli(['camera', 'record', '--storage', storage, ...small, '--duration', '4', '--realtime', '--seed', '5']);
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    const dir = join(storage, 'DCIM/100BWC');
    const sizes: number[] = [];
    let sidecarSeenEarly = false;
    while (sizes.length < 40) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      const names = existsSync(dir) ? readdirSync(dir) : [];
      const media = names.find((n) => n.endsWith('.mp4'));
      if (!media) continue;
      if (names.some((n) => n.endsWith('.json'))) break;
      sizes.push(statSync(join(dir, media)).size);
      if (sizes.length >= 2 && sizes.at(-1)! > sizes[0]! && sizes[0]! > 0) break;
    }
    sidecarSeenEarly = sizes.length === 0;
    expect(sidecarSeenEarly).toBe(false);
    expect(sizes.at(-1)!).toBeGreaterThan(sizes[0]!);
    expect(await exited).toBe(0);
    expect(readdirSync(dir).filter((n) => n.endsWith('.json'))).toHaveLength(1);
  });

  it('a camera killed with SIGKILL stops writing at once and leaves no sidecar, like a battery pull', async () => {
    const storage = at('killed');
    const child = spawnCli(['camera', 'record', '--storage', storage, ...small, '--duration', '120', '--realtime', '--seed', '6']);
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('close', (_code, signal) => resolve(signal)));
    const dir = join(storage, 'DCIM/100BWC');
    const mediaSize = (): number => {
      const media = existsSync(dir) ? readdirSync(dir).find((n) => n.endsWith('.mp4')) : undefined;
      return media ? statSync(join(dir, media)).size : 0;
    };
    // Wait for the first bytes on the card, however long ffmpeg takes to start on a loaded machine; the
    // recording is long enough (120 s of real time) that it cannot finish and sign before the kill.
    const deadline = Date.now() + 90_000;
    while (mediaSize() === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');
    await new Promise((resolve) => setTimeout(resolve, 300));
    const afterKill = mediaSize();
    await new Promise((resolve) => setTimeout(resolve, 2000));
    expect(afterKill).toBeGreaterThan(0);
    expect(mediaSize()).toBe(afterKill);
    expect(readdirSync(dir).filter((n) => n.endsWith('.json'))).toEqual([]);
  });
});
