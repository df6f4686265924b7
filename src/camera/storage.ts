/**
 * The camera's storage: DEVICE.json, DCIM/100BWC/ and the private system area
 * (.system/: key and counters). Files are written the way firmware must write
 * evidence: JSON atomically (temp + fsync + rename + directory fsync), media
 * never over an existing file.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { InputError, UsageError } from '../errors.js';
import { DEVICE_FILE, DEVICE_FORMAT, RECORDINGS_DIR, SYSTEM_DIR, type DeviceInfo } from './types.js';

export const KEY_FILE = 'camera-key.pem';
export const STATE_FILE = 'state.json';

/** Counters the firmware keeps between recordings (camera-internal). */
export interface CameraState {
  /** Sequence number of the next file. */
  nextSeq: number;
  /** True (simulated) time, ms since epoch, at which the next recording may start. */
  nextStartMs: number;
  /** The seed this camera was made from, if any: later recordings stay reproducible. */
  seed?: string;
}

export function recordingsDir(root: string): string { return join(root, RECORDINGS_DIR); }
export function systemDir(root: string): string { return join(root, SYSTEM_DIR); }

function fsyncDir(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    try { fsyncSync(fd); } finally { closeSync(fd); }
  } catch {
    // Some filesystems refuse to fsync a directory; the rename is still atomic.
  }
}

/** Write bytes so that a reader sees either the old file or the whole new one, never a part. */
export function writeFileAtomic(path: string, data: string | Buffer, mode = 0o644): void {
  const temp = join(dirname(path), `.${path.split('/').pop()}.${process.pid}.tmp`);
  const fd = openSync(temp, 'w', mode);
  try {
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    let written = 0;
    while (written < bytes.length) written += writeSync(fd, bytes, written, bytes.length - written);
    fsyncSync(fd);
  } catch (error) {
    closeSync(fd);
    rmSync(temp, { force: true });
    throw error;
  }
  closeSync(fd);
  renameSync(temp, path);
  fsyncDir(dirname(path));
}

export function writeJsonAtomic(path: string, value: unknown, mode = 0o644): void {
  writeFileAtomic(path, JSON.stringify(value, null, 2) + '\n', mode);
}

/** DEVICE.json of a camera root; InputError when it is missing or malformed. */
export function readDevice(root: string): DeviceInfo {
  const path = join(root, DEVICE_FILE);
  let device: DeviceInfo;
  try {
    device = JSON.parse(readFileSync(path, 'utf8')) as DeviceInfo;
  } catch (cause) {
    throw new InputError('E_CAMERA_NO_DEVICE', `no readable ${DEVICE_FILE} in ${root}`, { cause });
  }
  if (device.format !== DEVICE_FORMAT || typeof device.serial !== 'string' || typeof device.publicKeyPem !== 'string') {
    throw new InputError('E_CAMERA_BAD_DEVICE', `${path} is not a ${DEVICE_FORMAT} document`);
  }
  return device;
}

export function writeDevice(root: string, device: DeviceInfo): void {
  writeJsonAtomic(join(root, DEVICE_FILE), device);
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

const NAME_PATTERN = /^(\d{8})_(\d{6})_(.+)_(\d{4,})\.(mp4|ts)$/;

/** Highest sequence number among the files already on the card (0 when none). */
export function highestSeqOnCard(root: string): number {
  const dir = recordingsDir(root);
  if (!existsSync(dir)) return 0;
  let highest = 0;
  for (const name of readdirSync(dir)) {
    const match = NAME_PATTERN.exec(name);
    if (match) highest = Math.max(highest, Number(match[4]));
  }
  return highest;
}

/** <YYYYMMDD>_<HHMMSS>_<serial>_<seq 4 digits><ext>, date and time on the camera clock (UTC). */
export function recordingFileName(cameraStartMs: number, serial: string, seq: number, ext: string): string {
  const iso = new Date(cameraStartMs).toISOString(); // 2025-03-14T09:26:53.000Z
  const date = iso.slice(0, 10).replace(/-/g, '');
  const time = iso.slice(11, 19).replace(/:/g, '');
  return `${date}_${time}_${serial}_${String(seq).padStart(4, '0')}${ext}`;
}

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
export function prepareStorage(root: string): void {
  try {
    mkdirChain(recordingsDir(root));
    const probe = join(root, `.write-test-${process.pid}`);
    writeFileAtomic(probe, '');
    rmSync(probe, { force: true });
  } catch (cause) {
    throw new UsageError(`camera storage ${root} cannot be written (${(cause as NodeJS.ErrnoException).code ?? 'error'}): choose a writable folder`, { cause, code: 'E_CAMERA_STORAGE' });
  }
}
