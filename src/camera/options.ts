/** What `recordCamera` accepts, its defaults, and the checks that turn bad input into one clear line. */
import { UsageError } from '../errors.js';
import { parseBytes } from '../util/units.js';
import { SERIAL_PATTERN } from './identity.js';
import { layoutNamed, type CameraLayout, type LayoutName } from './layouts.js';
import type { Codec, Container } from '../protocol/cameraStorage/index.js';

export type FaultName = 'power-loss' | 'bitflip' | 'zero-byte' | 'missing-sidecar' | 'bad-signature' | 'clock-skew' | 'storage-full';
export const FAULT_NAMES: readonly FaultName[] = ['power-loss', 'bitflip', 'zero-byte', 'missing-sidecar', 'bad-signature', 'clock-skew', 'storage-full'];

export interface Fault {
  name: FaultName;
  /** clock-skew: seconds the camera clock runs ahead (negative: behind). */
  skewSeconds?: number;
  /** storage-full: bytes left on the card when recording starts (default: half of the file). */
  quotaBytes?: number;
}

export interface RecordOptions {
  /** Camera root folder; created on first boot. */
  storage: string;
  /** Card layout of the maker simulated (default bodycam); an existing camera keeps its own. */
  layout?: LayoutName;
  serial?: string;
  /** Number of recordings (each possibly rolled over into several files). */
  count?: number;
  durationSeconds?: number;
  container?: Container;
  codec?: Codec;
  width?: number;
  height?: number;
  fps?: number;
  /** Video bitrate; default scales with resolution and frame rate (about 0.06 bit per pixel). */
  videoKbps?: number;
  audioKbps?: number;
  keyframeIntervalSeconds?: number;
  seed?: number | string;
  realtime?: boolean;
  /** Split longer recordings into files of at most this length that share a group id. */
  maxFileDurationSeconds?: number;
  preEventSeconds?: number;
  trigger?: string;
  category?: string;
  critical?: boolean;
  faults?: Array<Fault | string>;
  signal?: AbortSignal;
}

export interface ResolvedRecordOptions {
  storage: string;
  /** Asked for explicitly (an existing camera of another layout is then refused). */
  layoutAsked: boolean;
  layout: CameraLayout;
  serial?: string;
  count: number;
  durationSeconds: number;
  container: Container;
  codec: Codec;
  width: number;
  height: number;
  fps: number;
  videoKbps: number;
  audioKbps: number;
  audioSampleRate: number;
  keyframeIntervalSeconds: number;
  seed?: string;
  realtime: boolean;
  maxFileDurationSeconds?: number;
  preEventSeconds: number;
  trigger: string;
  category: string;
  critical: boolean;
  faults: Fault[];
  signal?: AbortSignal;
}

const CONTAINERS: readonly Container[] = ['fmp4', 'mpegts', 'mp4', 'm2ts'];
const CODECS: readonly Codec[] = ['h264', 'hevc'];
const WORD = /^[A-Za-z0-9][A-Za-z0-9 _.-]{0,63}$/;

/** "power-loss", "clock-skew=3600", "storage-full=2MiB" → Fault. */
export function parseFault(text: string): Fault {
  const [rawName, value] = text.split('=', 2) as [string, string | undefined];
  const name = rawName.trim() as FaultName;
  if (!FAULT_NAMES.includes(name)) {
    throw new UsageError(`unknown fault "${text}": expected one of ${FAULT_NAMES.join(', ')}`, { code: 'E_CAMERA_FAULT' });
  }
  if (name === 'clock-skew') {
    if (value === undefined || !/^-?\d+(\.\d+)?$/.test(value.trim())) {
      throw new UsageError(`fault clock-skew needs seconds, e.g. clock-skew=3600 (got "${text}")`, { code: 'E_CAMERA_FAULT' });
    }
    return { name, skewSeconds: Number(value) };
  }
  if (name === 'storage-full') {
    if (value === undefined) return { name };
    const quotaBytes = parseBytes(value, 'storage-full quota');
    if (quotaBytes <= 0) throw new UsageError(`fault storage-full needs a positive quota (got "${text}")`, { code: 'E_CAMERA_FAULT' });
    return { name, quotaBytes };
  }
  if (value !== undefined) throw new UsageError(`fault ${name} takes no value (got "${text}")`, { code: 'E_CAMERA_FAULT' });
  return { name };
}

function positive(value: number, what: string, options: { integer?: boolean; max?: number } = {}): number {
  if (!Number.isFinite(value) || value <= 0 || (options.integer && !Number.isInteger(value)) || (options.max !== undefined && value > options.max)) {
    const kind = options.integer ? 'a positive whole number' : 'a positive number';
    throw new UsageError(`invalid ${what} ${value}: expected ${kind}${options.max !== undefined ? ` up to ${options.max}` : ''}`);
  }
  return value;
}

export function defaultVideoKbps(width: number, height: number, fps: number): number {
  return Math.max(64, Math.round((width * height * fps * 0.06) / 1000));
}

export function resolveRecordOptions(options: RecordOptions): ResolvedRecordOptions {
  if (!options.storage) throw new UsageError('camera storage folder is required (--storage DIR)');
  const layout = layoutNamed(options.layout ?? 'bodycam');
  const container = options.container ?? layout.defaultContainer;
  if (!CONTAINERS.includes(container)) throw new UsageError(`unknown container "${container}": expected one of ${CONTAINERS.join(', ')}`);
  if (!layout.containers.includes(container)) {
    throw new UsageError(`layout ${layout.name} does not write ${container}: use ${layout.containers.join(' or ')}`, { code: 'E_CAMERA_LAYOUT' });
  }
  const codec = options.codec ?? 'h264';
  if (!CODECS.includes(codec)) throw new UsageError(`unknown codec "${codec}": expected one of ${CODECS.join(', ')}`);
  if (options.serial !== undefined && !SERIAL_PATTERN.test(options.serial)) {
    throw new UsageError(`invalid serial "${options.serial}": use 2-32 letters, digits or '-'`);
  }
  const width = positive(options.width ?? 1280, 'width', { integer: true, max: 7680 });
  const height = positive(options.height ?? 720, 'height', { integer: true, max: 4320 });
  if (width % 2 || height % 2) throw new UsageError(`invalid size ${width}x${height}: width and height must be even`);
  const fps = positive(options.fps ?? 30, 'fps', { integer: true, max: 120 });
  const durationSeconds = positive(options.durationSeconds ?? 30, 'duration', { max: 24 * 3600 });
  const keyframeIntervalSeconds = positive(options.keyframeIntervalSeconds ?? 1, 'keyframe interval', { max: 10 });
  if (keyframeIntervalSeconds * fps < 1 || !Number.isInteger(Math.round(keyframeIntervalSeconds * fps * 1000) / 1000)) {
    throw new UsageError(`keyframe interval ${keyframeIntervalSeconds}s is not a whole number of frames at ${fps} fps`);
  }
  const maxFileDurationSeconds = options.maxFileDurationSeconds === undefined
    ? undefined : positive(options.maxFileDurationSeconds, 'max file duration');
  if (maxFileDurationSeconds !== undefined && maxFileDurationSeconds < keyframeIntervalSeconds) {
    throw new UsageError(`max file duration ${maxFileDurationSeconds}s is shorter than the keyframe interval (${keyframeIntervalSeconds}s)`);
  }
  const preEventSeconds = options.preEventSeconds ?? 0;
  if (!Number.isFinite(preEventSeconds) || preEventSeconds < 0 || preEventSeconds > 120) {
    throw new UsageError(`invalid pre-event buffer ${preEventSeconds}s: expected 0 to 120 seconds`);
  }
  const trigger = options.trigger ?? 'manual';
  const category = options.category ?? 'uncategorized';
  for (const [what, value] of [['trigger', trigger], ['category', category]] as const) {
    if (!WORD.test(value)) throw new UsageError(`invalid ${what} "${value}": use letters, digits, spaces, '.', '_' or '-'`);
  }
  const seed = options.seed === undefined ? undefined : String(options.seed);
  if (seed !== undefined && !/^[A-Za-z0-9._/-]{1,64}$/.test(seed)) throw new UsageError(`invalid seed "${seed}": use a number`);
  const faults = (options.faults ?? []).map((f) => (typeof f === 'string' ? parseFault(f) : parseFault(faultText(f))));
  const needsSidecar = faults.find((f) => f.name === 'missing-sidecar' || f.name === 'bad-signature');
  if (needsSidecar && !layout.signed) {
    throw new UsageError(`fault ${needsSidecar.name} needs a camera that signs its recordings (layout bodycam or dated), not ${layout.name}`, { code: 'E_CAMERA_FAULT' });
  }
  return {
    storage: options.storage,
    layoutAsked: options.layout !== undefined,
    layout,
    serial: options.serial,
    count: positive(options.count ?? 1, 'count', { integer: true, max: 10_000 }),
    durationSeconds,
    container,
    codec,
    width,
    height,
    fps,
    videoKbps: positive(options.videoKbps ?? defaultVideoKbps(width, height, fps), 'video bitrate', { integer: true }),
    audioKbps: positive(options.audioKbps ?? 48, 'audio bitrate', { integer: true }),
    audioSampleRate: 48_000,
    keyframeIntervalSeconds,
    seed,
    realtime: options.realtime ?? false,
    maxFileDurationSeconds,
    preEventSeconds,
    trigger,
    category,
    critical: options.critical ?? false,
    faults,
    signal: options.signal,
  };
}

function faultText(fault: Fault): string {
  if (fault.name === 'clock-skew') return `clock-skew=${fault.skewSeconds ?? ''}`;
  if (fault.name === 'storage-full' && fault.quotaBytes !== undefined) return `storage-full=${fault.quotaBytes}`;
  return fault.name;
}
