/**
 * Reading a sidecar off a docked camera without trusting it: one descriptor
 * that does not follow a symlink, size-capped, parsed defensively. The walk
 * of the card itself is the shared contract's (src/protocol/cameraStorage).
 */
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { isFileGone } from '../errors.js';
import { SIDECAR_FORMAT, type DeviceInfo } from '../protocol/cameraStorage/index.js';
import { SIDECAR_MAX_BYTES } from '../protocol/types.js';
import { PausedError } from './errors.js';

export type SidecarReading =
  | { kind: 'ok'; sidecar: Record<string, unknown>; bytes: Buffer }
  | { kind: 'invalid'; reason: string; bytes?: Buffer };

/**
 * A sidecar that cannot be read because the camera left the bay is not an
 * integrity finding: flagging it would brand good evidence for good and forbid
 * its wipe. That case pauses the job (PausedError) until the camera is back.
 * The bytes are read once, through one descriptor that does not follow a symlink, and
 * parsed from that very buffer: the manifest carries them and their hash (the wipe's proof).
 */
export async function readSidecar(path: string): Promise<SidecarReading> {
  let handle;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (error) {
    if (isFileGone(error)) throw new PausedError('sidecar not on the camera right now (undocked?)', { cause: error });
    const code = (error as NodeJS.ErrnoException).code;
    return { kind: 'invalid', reason: code === 'ELOOP' ? 'sidecar is not a regular file' : `sidecar unreadable: ${(error as Error).message}` };
  }
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) return { kind: 'invalid', reason: 'sidecar is not a regular file' };
    if (stats.size > SIDECAR_MAX_BYTES) return { kind: 'invalid', reason: `sidecar is implausibly large (over ${SIDECAR_MAX_BYTES} bytes)` };
    const bytes = await handle.readFile();
    if (bytes.length > SIDECAR_MAX_BYTES) return { kind: 'invalid', reason: `sidecar is implausibly large (over ${SIDECAR_MAX_BYTES} bytes)` };
    let parsed: unknown;
    try {
      parsed = JSON.parse(bytes.toString('utf8')) as unknown;
    } catch (error) {
      return { kind: 'invalid', reason: `sidecar unreadable: ${(error as Error).message}`, bytes };
    }
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) return { kind: 'invalid', reason: 'sidecar is not a JSON object', bytes };
    return { kind: 'ok', sidecar: parsed as Record<string, unknown>, bytes };
  } catch (error) {
    if (isFileGone(error)) throw new PausedError('sidecar not on the camera right now (undocked?)', { cause: error });
    return { kind: 'invalid', reason: `sidecar unreadable: ${(error as Error).message}` };
  } finally {
    await handle.close().catch(() => {});
  }
}

/**
 * Is this `<name>.json` our sidecar (docs/camera-storage.md)? Only if it says so: a JSON object
 * whose `format` is `bodycam-sidecar/…`. On a camera that signs its sidecars (DEVICE.json with a
 * public key) a `.json` beside a recording can only be its sidecar, so a damaged one stays one
 * (flagged sidecar-invalid, never wiped). Anywhere else, another maker's JSON is an attachment.
 */
export function isOurSidecar(reading: SidecarReading, device: DeviceInfo | undefined): boolean {
  if (reading.kind === 'ok' && typeof reading.sidecar.format === 'string' && reading.sidecar.format.startsWith(SIDECAR_FORMAT_PREFIX)) return true;
  return typeof device?.publicKeyPem === 'string' && device.publicKeyPem.length > 0;
}

const SIDECAR_FORMAT_PREFIX = SIDECAR_FORMAT.slice(0, SIDECAR_FORMAT.indexOf('/') + 1);
