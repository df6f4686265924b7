/**
 * The camera's storage: DEVICE.json, DCIM/100BWC/ and the private system area
 * (.system/: key and counters). Files are written the way firmware must write
 * evidence: JSON atomically (temp + fsync + rename + directory fsync), media
 * never over an existing file.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { InputError, UsageError } from '../errors.js';
import { writeFileAtomic } from '../util/atomicFile.js';

export { writeFileAtomic } from '../util/atomicFile.js';
import type { CameraLayout, LayoutName } from './layouts.js';
import { DEVICE_FILE, DEVICE_FORMAT, readDeviceAt, RECORDINGS_DIR, SYSTEM_DIR, type DeviceInfo } from '../protocol/cameraStorage/index.js';

export const KEY_FILE = 'camera-key.pem';
export const STATE_FILE = 'state.json';
/** Where a camera of a foreign layout (no DEVICE.json on its card) keeps its identity: camera-internal. */
export const INTERNAL_DEVICE_FILE = 'device.json';

/** Counters the firmware keeps between recordings (camera-internal). */
export interface CameraState {
  /** Sequence number of the next file. */
  nextSeq: number;
  /** True (simulated) time, ms since epoch, at which the next recording may start. */
  nextStartMs: number;
  /** The seed this camera was made from, if any: later recordings stay reproducible. */
  seed?: string;
  /** The card layout this camera writes (absent: bodycam). */
  layout?: LayoutName;
}

export function recordingsDir(root: string): string { return join(root, RECORDINGS_DIR); }
export function systemDir(root: string): string { return join(root, SYSTEM_DIR); }

export function writeJsonAtomic(path: string, value: unknown, mode = 0o644): void {
  writeFileAtomic(path, JSON.stringify(value, null, 2) + '\n', mode);
}

/** Where the camera's identity is kept: DEVICE.json on the card, or camera-internal for a foreign layout. */
export function devicePath(root: string, layout: Pick<CameraLayout, 'signed'>): string {
  return layout.signed ? join(root, DEVICE_FILE) : join(systemDir(root), INTERNAL_DEVICE_FILE);
}

/** Where the camera on this storage keeps its identity, whichever layout it writes; undefined when none is there. */
export function existingDevicePath(root: string): string | undefined {
  const candidates = [join(root, DEVICE_FILE), join(systemDir(root), INTERNAL_DEVICE_FILE)];
  return candidates.find((path) => existsSync(path));
}

/**
 * The identity of the camera on this storage (DEVICE.json, or the identity at `path`), for the
 * firmware itself: the shared tolerant reading, made strict (the camera needs its format and key).
 */
export async function loadDevice(root: string, path = join(root, DEVICE_FILE)): Promise<DeviceInfo> {
  const reading = await readDeviceAt(path);
  if (reading.kind === 'none') throw new InputError('E_CAMERA_NO_DEVICE', `no readable ${DEVICE_FILE} in ${root}`);
  if (reading.kind === 'invalid') throw new InputError('E_CAMERA_BAD_DEVICE', `${path}: ${reading.reason}`);
  const device = reading.device;
  if (device.format !== DEVICE_FORMAT || typeof device.publicKeyPem !== 'string' || !device.clock || typeof device.clock !== 'object') {
    throw new InputError('E_CAMERA_BAD_DEVICE', `${path} is not a ${DEVICE_FORMAT} document`);
  }
  return device;
}

export function writeDevice(root: string, device: DeviceInfo, path = join(root, DEVICE_FILE)): void {
  if (dirname(path) === systemDir(root)) mkdirSync(systemDir(root), { recursive: true, mode: 0o700 });
  writeJsonAtomic(path, device);
}

export function readPrivateKey(root: string): string | undefined {
  const path = join(systemDir(root), KEY_FILE);
  return existsSync(path) ? readFileSync(path, 'utf8') : undefined;
}

export function writePrivateKey(root: string, pem: string): void {
  mkdirSync(systemDir(root), { recursive: true, mode: 0o700 });
  writeFileAtomic(join(systemDir(root), KEY_FILE), pem, 0o600);
}

export function readState(root: string): CameraState | undefined {
  const path = join(systemDir(root), STATE_FILE);
  if (!existsSync(path)) return undefined;
  return JSON.parse(readFileSync(path, 'utf8')) as CameraState;
}

export function writeState(root: string, state: CameraState): void {
  mkdirSync(systemDir(root), { recursive: true, mode: 0o700 });
  writeJsonAtomic(join(systemDir(root), STATE_FILE), state);
}

/** Highest number among the recordings of this layout already on the card (-1 when none). */
export function highestNumberOnCard(root: string, layout: CameraLayout): number {
  let highest = -1;
  const walk = (dir: string, rel: string, depth: number): void => {
    let names: string[];
    try { names = readdirSync(dir); } catch { return; }
    for (const name of names) {
      if (name.startsWith('.')) continue;
      const childRel = rel ? `${rel}/${name}` : name;
      const number = layout.numberOf(childRel);
      if (number !== undefined) { highest = Math.max(highest, number); continue; }
      if (depth < 6 && !name.includes('.')) walk(join(dir, name), childRel, depth + 1);
    }
  };
  walk(root, '', 0);
  return highest;
}

/** <YYYYMMDD>_<HHMMSS>_<serial>_<seq 4 digits><ext>, date and time on the camera clock (UTC). */
export { bodycamFileName as recordingFileName } from './layouts.js';

/**
 * mkdir -p one level at a time: Node's recursive mkdirSync can spin forever on
 * pseudo-filesystems such as /proc, where a plain mkdir fails at once.
 */
function mkdirChain(dir: string): void {
  const missing: string[] = [];
  let current = resolve(dir);
  while (!existsSync(current)) {
    missing.unshift(current);
    const parent = dirname(current);
    if (parent === current) break;
    current = parent;
  }
  for (const path of missing) mkdirSync(path);
}

/** Make sure the storage folder exists and can be written, before anything is recorded. */
export function prepareStorage(root: string, layout?: Pick<CameraLayout, 'signed'>): void {
  try {
    mkdirChain(layout && !layout.signed ? root : recordingsDir(root));
    const probe = join(root, `.write-test-${process.pid}`);
    writeFileAtomic(probe, '');
    rmSync(probe, { force: true });
  } catch (cause) {
    throw new UsageError(`camera storage ${root} cannot be written (${(cause as NodeJS.ErrnoException).code ?? 'error'}): choose a writable folder`, { cause, code: 'E_CAMERA_STORAGE' });
  }
}
