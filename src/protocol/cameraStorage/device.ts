/**
 * DEVICE.json, read the one tolerant way: camera, dock and replay all get a
 * reading (none | invalid with the reason | ok) and decide for themselves what
 * an absent or broken identity means to them.
 */
import { lstat, readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { DEVICE_FILE, type DeviceInfo } from './types.js';

/** The serial the dock gives a camera without a readable DEVICE.json: every such card has it, so it names no one camera. */
export const NO_SERIAL = 'unknown';

export type DeviceReading = { kind: 'none' } | { kind: 'invalid'; reason: string } | { kind: 'ok'; device: DeviceInfo };

/** DEVICE.json, read only if it is a regular file (not a symlink) inside the camera root. */
export async function readDevice(cameraRoot: string): Promise<DeviceReading> {
  return readDeviceAt(join(cameraRoot, DEVICE_FILE));
}

/** A camera identity document at `path` (the simulator of a foreign layout keeps it camera-internal), read the same tolerant way. */
export async function readDeviceAt(path: string): Promise<DeviceReading> {
  const name = basename(path);
  let stats;
  try {
    stats = await lstat(path);
  } catch {
    return { kind: 'none' };
  }
  if (!stats.isFile()) return { kind: 'invalid', reason: `${name} is not a regular file` };
  if (stats.size > 1024 * 1024) return { kind: 'invalid', reason: `${name} is implausibly large` };
  try {
    const device = JSON.parse(await readFile(path, 'utf8')) as DeviceInfo;
    if (!device || typeof device !== 'object' || typeof device.serial !== 'string' || !device.serial) {
      return { kind: 'invalid', reason: `${name} has no serial` };
    }
    return { kind: 'ok', device };
  } catch (error) {
    return { kind: 'invalid', reason: `${name} is not valid JSON: ${(error as Error).message}` };
  }
}

/** Camera clock minus true time at docking, from DEVICE.json's clock block. */
export function clockOffsetMsOf(device: DeviceInfo | undefined): number | undefined {
  const clock = device?.clock;
  if (!clock) return undefined;
  if (typeof clock.offsetMs === 'number' && Number.isFinite(clock.offsetMs)) return Math.round(clock.offsetMs);
  const camera = Date.parse(clock.cameraTime);
  const truth = Date.parse(clock.trueTime);
  return Number.isNaN(camera) || Number.isNaN(truth) ? undefined : camera - truth;
}
