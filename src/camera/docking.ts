/**
 * Docking as the PC sees it: a camera's storage appears under the bays root as
 * `<bays>/<bay>` (the bay folder IS the camera root, so a bay holds at most one
 * camera) and vanishes again on undock. Both are a single rename(2), so a
 * watcher never sees a half-mounted camera.
 */
import { existsSync, renameSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { errnoCode, UsageError } from '../errors.js';
import { existingDevicePath, loadDevice, writeDevice } from './storage.js';

export const BAY_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export interface DockOptions { storage: string; bays: string; bay: string; }
export interface UndockOptions { bays: string; bay: string; to: string; }

function checkBaysRoot(bays: string): void {
  if (!existsSync(bays) || !statSync(bays).isDirectory()) {
    throw new UsageError(`bays root ${bays} does not exist: create it first`, { code: 'E_BAYS_MISSING' });
  }
}

function checkBayName(bay: string): void {
  if (!BAY_NAME_PATTERN.test(bay) || bay.includes('..')) {
    throw new UsageError(`invalid bay name "${bay}": use letters, digits, '.', '_' or '-'`, { code: 'E_BAY_NAME' });
  }
}

function renameOrExplain(from: string, to: string, occupied: string): void {
  try {
    // rename(2) replaces an empty folder atomically and refuses a non-empty one: exactly "bay free or occupied".
    renameSync(from, to);
  } catch (cause) {
    const code = errnoCode(cause);
    if (code === 'ENOTEMPTY' || code === 'EEXIST' || code === 'ENOTDIR' || code === 'EISDIR') throw new UsageError(occupied, { cause, code: 'E_BAY_OCCUPIED' });
    if (code === 'EXDEV') throw new UsageError(`${from} and ${to} are on different filesystems: docking must be a rename on one filesystem`, { cause, code: 'E_DOCK_EXDEV' });
    throw new UsageError(`could not move ${from} to ${to} (${code ?? 'error'})`, { cause, code: 'E_DOCK_MOVE' });
  }
}

/** Move a camera's storage into a bay; the camera clock is read against the host clock first. Returns the bay path. */
export async function dockCamera(options: DockOptions): Promise<string> {
  checkBaysRoot(options.bays);
  checkBayName(options.bay);
  const identity = existingDevicePath(options.storage);
  if (!identity) {
    throw new UsageError(`${options.storage} is not a camera storage (no DEVICE.json, and no simulated camera of another layout)`, { code: 'E_DOCK_NOT_CAMERA' });
  }
  const bayPath = join(options.bays, options.bay);
  if (resolve(bayPath) === resolve(options.storage)) throw new UsageError(`camera is already docked in ${bayPath}`, { code: 'E_BAY_OCCUPIED' });
  if (existsSync(bayPath) && !statSync(bayPath).isDirectory()) throw new UsageError(`bay ${options.bay} is occupied by a file`, { code: 'E_BAY_OCCUPIED' });
  // The clock block is what the camera says at the moment of docking (its RTC keeps its offset).
  // A foreign layout keeps it camera-internal (its card has no DEVICE.json): the same refresh, out of the dock's sight.
  const device = await loadDevice(options.storage, identity);
  const now = Date.now();
  device.clock = { cameraTime: new Date(now + device.clock.offsetMs).toISOString(), trueTime: new Date(now).toISOString(), offsetMs: device.clock.offsetMs };
  writeDevice(options.storage, device, identity);
  renameOrExplain(options.storage, bayPath, `bay ${options.bay} in ${options.bays} is occupied: undock its camera first`);
  return bayPath;
}

/** Take the camera out of a bay and put its storage at `to` (which must not exist, or be an empty folder). */
export async function undockCamera(options: UndockOptions): Promise<void> {
  checkBaysRoot(options.bays);
  checkBayName(options.bay);
  const bayPath = join(options.bays, options.bay);
  if (!existingDevicePath(bayPath)) throw new UsageError(`bay ${options.bay} in ${options.bays} holds no camera`, { code: 'E_BAY_EMPTY' });
  if (!existsSync(dirname(resolve(options.to)))) throw new UsageError(`cannot undock to ${options.to}: its parent folder does not exist`, { code: 'E_UNDOCK_TARGET' });
  renameOrExplain(bayPath, options.to, `cannot undock to ${options.to}: it already exists and is not empty`);
}
