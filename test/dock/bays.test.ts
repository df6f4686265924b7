import { afterAll, describe, expect, it } from '@jest/globals';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { listBaysFolder, openBay, SYMLINKED_BAY } from '../../src/dock/bays.js';
import { walkBays } from '../../src/dock/inventory.js';
import { makeTempDir } from '../helpers/tmp.js';

describe('the bays folder, read one way by the agent and the read-only walk', () => {
  const tmp = makeTempDir('bodycam-bays-');
  afterAll(() => tmp.cleanup());
  const bays = join(tmp.path, 'bays');
  mkdirSync(join(bays, 'cam1', 'DCIM', '100BWC'), { recursive: true });
  writeFileSync(join(bays, 'cam1', 'DEVICE.json'), JSON.stringify({ format: 'bodycam-device/1', serial: 'CAM1', model: 'm' }));
  writeFileSync(join(bays, 'cam1', 'DCIM', '100BWC', 'FILE0001.MP4'), 'not really media');
  mkdirSync(join(bays, 'nodevice'));
  writeFileSync(join(bays, 'nodevice', 'FILE0002.MP4'), 'x');
  mkdirSync(join(bays, 'empty'));
  mkdirSync(join(bays, '.Trash-1000'));
  writeFileSync(join(bays, 'README.txt'), 'a stray file');
  mkdirSync(join(tmp.path, 'elsewhere'));
  symlinkSync(join(tmp.path, 'elsewhere'), join(bays, 'linked'));

  it('names every entry: a bay, a symlinked bay, or left alone with its reason (nothing dropped silently)', async () => {
    const entries = await listBaysFolder(bays);
    expect(entries.map((e) => [e.name, e.kind])).toEqual([
      ['.Trash-1000', 'ignored'], ['README.txt', 'ignored'], ['cam1', 'bay'], ['empty', 'bay'], ['linked', 'symlink'], ['nodevice', 'bay'],
    ]);
    for (const entry of entries) if (entry.kind === 'ignored') expect(entry.reason).toMatch(/not a bay/);
    expect(entries.find((e) => e.kind === 'symlink')).toMatchObject({ skipped: SYMLINKED_BAY });
    await expect(listBaysFolder(join(tmp.path, 'missing'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('says whether a camera is docked, and which', async () => {
    expect(await openBay(join(bays, 'cam1'))).toMatchObject({ kind: 'camera', serial: 'CAM1', reading: { kind: 'ok' } });
    expect(await openBay(join(bays, 'nodevice'))).toMatchObject({ kind: 'camera', serial: 'unknown', reading: { kind: 'none' } });
    expect(await openBay(join(bays, 'empty'))).toEqual({ kind: 'noCamera' });
    expect(await openBay(join(bays, 'gone'))).toEqual({ kind: 'noCamera' });
    expect(await openBay(join(bays, 'README.txt'))).toEqual({ kind: 'noCamera' });
    expect(await openBay(join(bays, 'linked'))).toEqual({ kind: 'symlink' });
  });

  it("is what the read-only walk (--dry-run, check) lists: a listing per bay, the symlink's reason as the agent's", async () => {
    const inventory = await walkBays(bays);
    expect(inventory.bays.map((b) => [b.bay, b.serial])).toEqual([['cam1', 'CAM1'], ['empty', null], ['linked', null], ['nodevice', 'unknown']]);
    expect(inventory.bays.find((b) => b.bay === 'linked')!.skipped).toEqual([SYMLINKED_BAY]);
    expect(inventory.files.map((f) => [f.bay, f.file.relPath])).toEqual([['cam1', 'DCIM/100BWC/FILE0001.MP4'], ['nodevice', 'FILE0002.MP4']]);
  });
});
