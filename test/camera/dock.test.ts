import { describe, it, expect, afterAll } from '@jest/globals';
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { dockCamera, loadDevice, recordCamera, undockCamera } from '../../src/camera/index.js';
import { UsageError } from '../../src/errors.js';
import { makeTempDir } from '../helpers/tmp.js';

const tmp = makeTempDir('bodycam-camera-dock-');
const at = (name: string): string => join(tmp.path, name);
afterAll(() => tmp.cleanup());

describe('dockCamera / undockCamera', () => {
  it('refreshes the clock block at docking, keeping the camera offset, and treats an empty bay folder as free', async () => {
    const storage = at('skewed');
    await recordCamera({ storage, width: 160, height: 120, fps: 10, durationSeconds: 1, seed: 30, faults: ['clock-skew=-90'] });
    const bays = at('bays');
    mkdirSync(join(bays, 'bay-01'), { recursive: true }); // an empty bay folder, as a dock may create
    const before = Date.now();
    const bayPath = await dockCamera({ storage, bays, bay: 'bay-01' });
    expect(bayPath).toBe(join(bays, 'bay-01'));
    const { clock } = (await loadDevice(bayPath));
    expect(clock.offsetMs).toBe(-90_000);
    expect(Date.parse(clock.trueTime)).toBeGreaterThanOrEqual(before - 1000);
    expect(Date.parse(clock.cameraTime) - Date.parse(clock.trueTime)).toBe(-90_000);
  });

  it('refuses bad bay names, a bay without a camera and an occupied destination, changing nothing', async () => {
    const bays = at('bays');
    await expect(dockCamera({ storage: at('whatever'), bays, bay: '../escape' })).rejects.toBeInstanceOf(UsageError);
    await expect(undockCamera({ bays, bay: 'bay-09', to: at('out') })).rejects.toThrow(/holds no camera/);
    mkdirSync(at('occupied'));
    mkdirSync(join(at('occupied'), 'keep'));
    await expect(undockCamera({ bays, bay: 'bay-01', to: at('occupied') })).rejects.toThrow(/not empty/);
    expect(existsSync(join(bays, 'bay-01', 'DEVICE.json'))).toBe(true);
    await undockCamera({ bays, bay: 'bay-01', to: at('out') });
    expect(readdirSync(bays)).toEqual([]);
    expect((await loadDevice(at('out'))).clock.offsetMs).toBe(-90_000);
  });
});
