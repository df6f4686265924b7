/**
 * A fleet: N cameras recorded and docked into bays bay-01..bay-N. Each camera
 * records in a staging folder beside the bays root (same filesystem, so docking
 * stays one rename) and appears in its bay only when complete.
 */
import { existsSync, mkdirSync, readdirSync, rmdirSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { UsageError } from '../errors.js';
import { dockCamera } from './docking.js';
import { serialFromSeed } from './identity.js';
import { recordCamera, type RecordResult } from './recorder.js';
import type { RecordOptions } from './options.js';

export interface FleetOptions extends Omit<RecordOptions, 'storage' | 'serial'> {
  cameras: number;
  bays: string;
  /** Where cameras record before docking; default `<parent of bays>/.<bays name>-staging`. */
  staging?: string;
}

export interface FleetCamera extends RecordResult { bay: string; bayPath: string; }

export function bayName(index: number, total: number): string {
  return `bay-${String(index + 1).padStart(Math.max(2, String(total).length), '0')}`;
}

export async function recordFleet(options: FleetOptions): Promise<FleetCamera[]> {
  if (!Number.isInteger(options.cameras) || options.cameras <= 0 || options.cameras > 999) {
    throw new UsageError(`invalid camera count ${options.cameras}: expected 1 to 999`);
  }
  if (!existsSync(options.bays)) throw new UsageError(`bays root ${options.bays} does not exist: create it first`, { code: 'E_BAYS_MISSING' });
  const bays = Array.from({ length: options.cameras }, (_, i) => bayName(i, options.cameras));
  for (const bay of bays) {
    const path = join(options.bays, bay);
    if (existsSync(path) && readdirSync(path).length > 0) throw new UsageError(`bay ${bay} in ${options.bays} is occupied: undock its camera first`, { code: 'E_BAY_OCCUPIED' });
  }
  const staging = options.staging ?? join(dirname(options.bays), `.${basename(options.bays)}-staging`);
  mkdirSync(staging, { recursive: true });
  const { cameras: _n, bays: _b, staging: _s, ...recordOptions } = options;
  const one = async (i: number): Promise<FleetCamera> => {
    const seed = options.seed === undefined ? undefined : `${options.seed}/${i + 1}`;
    const serial = seed === undefined ? undefined : serialFromSeed(seed);
    const storage = join(staging, serial ?? `camera-${process.pid}-${i + 1}`);
    rmSync(storage, { recursive: true, force: true });
    const recorded = await recordCamera({ ...recordOptions, seed, serial, storage });
    const bayPath = await dockCamera({ storage, bays: options.bays, bay: bays[i]! });
    return { ...recorded, root: bayPath, files: recorded.files.map((f) => rebase(f, storage, bayPath)), bay: bays[i]!, bayPath };
  };
  // Batch cameras one after another (encoding is CPU-bound); real-time cameras all at once, as a shift would.
  const indexes = Array.from({ length: options.cameras }, (_, i) => i);
  const results: FleetCamera[] = [];
  if (options.realtime) results.push(...await Promise.all(indexes.map(one)));
  else for (const i of indexes) results.push(await one(i));
  try { rmdirSync(staging); } catch { /* other cameras may still be staged there */ }
  return results;
}

function rebase<T extends { mediaPath: string; sidecarPath?: string }>(file: T, from: string, to: string): T {
  return {
    ...file,
    mediaPath: to + file.mediaPath.slice(from.length),
    ...(file.sidecarPath ? { sidecarPath: to + file.sidecarPath.slice(from.length) } : {}),
  };
}
