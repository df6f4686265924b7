/**
 * Docking as the dock sees it: a camera's storage appears in a bay folder all
 * at once, as a USB mount does, and disappears on undock. Simulated cameras go
 * through the camera's own dock/undock (which also stamps the clock block of
 * DEVICE.json); a foreign camera has no DEVICE.json, so its storage is simply
 * renamed into the bay, which is what a mount of it looks like.
 */
import { existsSync, mkdirSync, readdirSync, renameSync, rmdirSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { UsageError } from '../errors.js';
import { dockCamera, undockCamera } from '../camera/index.js';
import { DEVICE_FILE } from '../protocol/cameraStorage/index.js';

export async function dockCameraInto(cameraRoot: string, bayDir: string): Promise<void> {
  if (existsSync(join(cameraRoot, DEVICE_FILE))) {
    await dockCamera({ storage: cameraRoot, bays: dirname(bayDir), bay: basename(bayDir) });
    return;
  }
  if (existsSync(bayDir) && readdirSync(bayDir).length > 0) {
    throw new UsageError(`bay ${bayDir} is occupied: undock its camera first`, { code: 'E_BAY_OCCUPIED' });
  }
  if (existsSync(bayDir)) rmdirSync(bayDir);
  renameSync(cameraRoot, bayDir);
}

/** Take the storage out of the bay back to `cameraRoot`; the bay is left as an empty folder. */
export async function undockCameraFrom(bayDir: string, cameraRoot: string): Promise<void> {
  if (existsSync(join(bayDir, DEVICE_FILE))) await undockCamera({ bays: dirname(bayDir), bay: basename(bayDir), to: cameraRoot });
  else renameSync(bayDir, cameraRoot);
  mkdirSync(bayDir, { recursive: true });
}
