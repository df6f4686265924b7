/**
 * The recorder: boots the camera on first use (identity, keys), then writes
 * recordings where its layout puts them (DCIM/100BWC with signed sidecars by
 * default; other makers' folders, names and companion files with --layout),
 * continuing the camera's numbers and clock, and leaves the requested faults behind.
 */
import { sha256File } from '../util/sha256File.js';
import { existsSync, mkdirSync, statSync, truncateSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { UsageError } from '../errors.js';
import { generateClip, type ClipSpec } from '../media/generate.js';
import { signObject } from '../protocol/signing.js';
import { newIdentity, newKeyPair } from './identity.js';
import { hasFault, cutForPowerLoss, flipBits, spoilSignature } from './faults.js';
import { layoutNamed, type LayoutName } from './layouts.js';
import { resolveRecordOptions, type RecordOptions, type ResolvedRecordOptions } from './options.js';
import { derive, SeededRandom } from './random.js';
import {
  devicePath, existingDevicePath, highestNumberOnCard, prepareStorage, loadDevice, readPrivateKey, readState,
  writeDevice, writeJsonAtomic, writePrivateKey, writeState, type CameraState,
} from './storage.js';
import { writeCardFiles, writeCompanion } from './vendorFiles.js';
import { gpsTrack, markers, round } from './track.js';
import { DEVICE_FORMAT, SIDECAR_FORMAT, type DeviceInfo, type Sidecar } from '../protocol/cameraStorage/index.js';

export interface RecordedFile {
  mediaPath: string;
  /** Absent when a fault left no sidecar (power-loss, zero-byte, missing-sidecar), and for foreign layouts. */
  sidecarPath?: string;
  /** Files the maker writes beside this recording (GoPro .LRV/.THM, Sony M01.XML, ...), absolute paths. */
  companionPaths: string[];
  /** SHA-256 of the file as it is on the card now (after any fault). */
  sha256: string;
  size: number;
  durationSeconds: number;
  recordingId: string;
  groupId: string;
  part: number;
  /** Names of the faults this file carries. */
  faults: string[];
  /** power-loss: where the file was cut. */
  cutAtByte?: number;
  cutAtSeconds?: number;
}

export interface RecordResult {
  root: string;
  serial: string;
  layout: LayoutName;
  files: RecordedFile[];
  /** False when no font was found and the picture carries no burned-in text. */
  overlay: boolean;
}

/** Seeded cameras start their clock on a fixed day of 2025, so names are reproducible. */
function seededEpochMs(seed: string): number {
  const base = Date.UTC(2025, 0, 1);
  const day = derive(seed, 'clock').readUInt16BE(0) % 365;
  const second = 6 * 3600 + (derive(seed, 'clock').readUInt32BE(2) % (12 * 3600));
  return base + day * 86_400_000 + second * 1000;
}

function nowSecondsMs(): number {
  return Math.floor(Date.now() / 1000) * 1000;
}

interface Camera {
  root: string;
  device: DeviceInfo;
  privateKeyPem: string;
  state: CameraState;
  seed?: string;
}

/** Load the camera on this storage, or boot a new one (nothing is written yet). */
async function loadOrBoot(options: ResolvedRecordOptions): Promise<Camera & { isNew: boolean }> {
  const root = options.storage;
  if (existsSync(root) && !statSync(root).isDirectory()) {
    throw new UsageError(`camera storage ${root} is a file, not a folder`, { code: 'E_CAMERA_STORAGE' });
  }
  const identityPath = existingDevicePath(root);
  if (identityPath) {
    const device = await loadDevice(root, identityPath);
    if (options.serial !== undefined && options.serial !== device.serial) {
      throw new UsageError(`storage ${root} belongs to camera ${device.serial}, not ${options.serial}`, { code: 'E_CAMERA_SERIAL' });
    }
    const saved = readState(root);
    const seed = options.seed ?? saved?.seed;
    let privateKeyPem = readPrivateKey(root);
    if (!privateKeyPem && seed !== undefined) {
      const derived = newKeyPair(device.serial, seed);
      if (derived.publicKeyPem.trim() === device.publicKeyPem.trim()) privateKeyPem = derived.privateKeyPem;
    }
    if (!privateKeyPem) {
      throw new UsageError(`camera ${device.serial} at ${root} has no private key in .system/: it cannot sign new recordings`, { code: 'E_CAMERA_NO_KEY' });
    }
    const layout = options.layout;
    const nextSeq = Math.max(saved?.nextSeq ?? layout.firstNumber, highestNumberOnCard(root, layout) + 1);
    const trueTimeMs = Date.parse(device.clock.trueTime);
    const state: CameraState = {
      nextSeq, nextStartMs: saved?.nextStartMs ?? (Number.isFinite(trueTimeMs) ? trueTimeMs + 60_000 : nowSecondsMs()), ...(seed ? { seed } : {}),
      ...(layout.name === 'bodycam' ? {} : { layout: layout.name }),
    };
    return { root, device, privateKeyPem, state, seed, isNew: false };
  }
  const seed = options.seed;
  const identity = newIdentity(options.serial, seed);
  if (options.layout.model) identity.model = options.layout.model;
  const keys = newKeyPair(identity.serial, seed);
  const startMs = seed === undefined ? nowSecondsMs() : seededEpochMs(seed);
  const device: DeviceInfo = {
    format: DEVICE_FORMAT,
    ...identity,
    publicKeyPem: keys.publicKeyPem,
    clock: { cameraTime: new Date(startMs).toISOString(), trueTime: new Date(startMs).toISOString(), offsetMs: 0 },
  };
  const state: CameraState = { nextSeq: options.layout.firstNumber, nextStartMs: startMs, ...(seed ? { seed } : {}), ...(options.layout.name === 'bodycam' ? {} : { layout: options.layout.name }) };
  return { root, device, privateKeyPem: keys.privateKeyPem, state, seed, isNew: true };
}

/** Split one recording into files of at most `max` seconds (real cameras roll over at a size or time limit). */
function partLengths(total: number, max: number | undefined): number[] {
  if (max === undefined || total <= max + 1e-9) return [total];
  const parts: number[] = [];
  let left = total;
  while (left > 1e-9) {
    const length = Math.min(max, left);
    parts.push(round(length, 3));
    left = round(left - length, 3);
  }
  return parts;
}

/** Where storage-full stops the recording: at the quota, or at half the length by default. */
function storageFullStop(options: ResolvedRecordOptions, quotaBytes: number | undefined): number {
  const kf = options.keyframeIntervalSeconds;
  const bytesPerSecond = ((options.videoKbps + options.audioKbps) * 1000) / 8;
  const wanted = quotaBytes === undefined ? options.durationSeconds / 2 : quotaBytes / bytesPerSecond;
  const aligned = Math.floor(wanted / kf) * kf;
  return Math.min(options.durationSeconds, Math.max(kf, aligned));
}

/** The layout of the camera already on this storage, if any (a camera keeps the layout it was made with). */
function savedLayout(root: string): LayoutName | undefined {
  if (!existsSync(root) || !statSync(root).isDirectory() || !existingDevicePath(root)) return undefined;
  try {
    return readState(root)?.layout ?? 'bodycam';
  } catch {
    return undefined;
  }
}

export async function recordCamera(input: RecordOptions): Promise<RecordResult> {
  const saved = input.storage ? savedLayout(input.storage) : undefined;
  if (saved && input.layout && input.layout !== saved) {
    layoutNamed(input.layout); // an unknown name is reported as such first
    throw new UsageError(`storage ${input.storage} holds a camera of layout ${saved}: it cannot record as ${input.layout}`, { code: 'E_CAMERA_LAYOUT' });
  }
  const options = resolveRecordOptions({ ...input, layout: input.layout ?? saved });
  const { layout } = options;
  const camera = await loadOrBoot(options);
  prepareStorage(camera.root, layout);
  const identityPath = devicePath(camera.root, layout);
  if (camera.isNew) {
    writePrivateKey(camera.root, camera.privateKeyPem);
    writeDevice(camera.root, camera.device, identityPath);
    writeState(camera.root, camera.state);
  }
  const { device, state } = camera;
  const skew = options.faults.find((f) => f.name === 'clock-skew');
  const skewMs = skew ? Math.round((skew.skewSeconds ?? 0) * 1000) : device.clock.offsetMs;
  const files: RecordedFile[] = [];
  let overlay = true;

  for (let r = 0; r < options.count; r++) {
    const lastRecording = r === options.count - 1;
    const storageFull = lastRecording ? options.faults.find((f) => f.name === 'storage-full') : undefined;
    const total = storageFull ? storageFullStop(options, storageFull.quotaBytes) : options.durationSeconds;
    const parts = partLengths(total, options.maxFileDurationSeconds);
    if (camera.seed === undefined) state.nextStartMs = Math.max(state.nextStartMs, nowSecondsMs());
    let groupId = '';
    const recordingNumber = state.nextSeq;
    const mediaNames: string[] = [];
    for (let p = 0; p < parts.length; p++) {
      const length = parts[p]!;
      const lastFile = lastRecording && p === parts.length - 1;
      // Makers that number recordings (GoPro) give every chapter the recording's number.
      const perRecording = layout.numbering === 'recording';
      const seq = perRecording ? recordingNumber : state.nextSeq;
      const recordingId = `${device.serial}-${String(seq).padStart(4, '0')}${perRecording && parts.length > 1 ? `.${p + 1}` : ''}`;
      if (p === 0) groupId = recordingId;
      const trueStartMs = state.nextStartMs;
      const cameraStartMs = trueStartMs + skewMs;
      const place = layout.place({
        number: seq, part: p + 1, cameraStartMs, serial: device.serial, container: options.container, codec: options.codec,
        trigger: options.trigger, critical: options.critical,
      });
      const fileName = basename(place.media);
      const mediaPath = join(camera.root, place.media);
      const sidecarPath = layout.signed && place.sidecar ? join(camera.root, place.sidecar) : undefined;
      const companionPaths = place.companions.map((c) => join(camera.root, c.relPath));
      for (const path of [mediaPath, ...(sidecarPath ? [sidecarPath] : []), ...companionPaths]) {
        if (existsSync(path)) throw new UsageError(`refusing to overwrite ${path}: the camera's sequence is out of step with its card`, { code: 'E_CAMERA_EXISTS' });
      }
      mkdirSync(dirname(mediaPath), { recursive: true });
      // Reserve the sequence number and clock before writing, so a crash never reuses them.
      const random = camera.seed === undefined ? SeededRandom.unseeded('recording') : new SeededRandom(camera.seed, `recording:${device.serial}:${seq}${perRecording && p > 0 ? `:${p + 1}` : ''}`);
      const gapMs = (camera.seed === undefined ? 1 : random.int(120, 3600)) * 1000;
      state.nextSeq = perRecording ? recordingNumber + 1 : seq + 1;
      state.nextStartMs = trueStartMs + Math.ceil(length) * 1000 + (p === parts.length - 1 ? gapMs : 0);
      writeState(camera.root, state);

      const clip: ClipSpec = {
        container: options.container, codec: options.codec, width: options.width, height: options.height, fps: options.fps,
        videoKbps: options.videoKbps, audioKbps: options.audioKbps, audioSampleRate: options.audioSampleRate,
        keyframeIntervalSeconds: options.keyframeIntervalSeconds, durationSeconds: length,
        label: `${device.serial} REC ${recordingId}${parts.length > 1 ? ` PART ${p + 1} OF ${parts.length}` : ''}`,
        clockEpochSeconds: cameraStartMs / 1000, toneHz: random.int(300, 900), realtime: options.realtime,
      };
      const generated = await generateClip(mediaPath, clip, { signal: options.signal });
      overlay &&= generated.overlay;
      mediaNames.push(fileName);
      const origin = { lat: 38 + (derive(device.serial, 'beat').readUInt16BE(0) % 1400) / 100, lon: -122 + (derive(device.serial, 'beat').readUInt16BE(2) % 4600) / 100 };
      const gps = gpsTrack(random, length, origin);
      // The maker's files beside the recording are written when it closes, like the recording itself.
      for (const [i, companion] of place.companions.entries()) {
        await writeCompanion(companionPaths[i]!, companion, { device, mediaName: fileName, cameraStartMs, durationSeconds: length, gps, clip }, { signal: options.signal });
      }

      const fileFaults = lastFile ? options.faults.filter((f) => f.name !== 'clock-skew') : [];
      const applied = fileFaults.map((f) => f.name) as string[];
      if (skewMs !== 0) applied.unshift('clock-skew');
      const result: RecordedFile = { mediaPath, companionPaths, sha256: '', size: 0, durationSeconds: length, recordingId, groupId, part: p + 1, faults: applied };

      if (hasFault(fileFaults, 'power-loss')) {
        const cut = await cutForPowerLoss(mediaPath, length);
        result.cutAtByte = cut.cutAtByte;
        result.cutAtSeconds = cut.cutAtSeconds;
      } else if (hasFault(fileFaults, 'zero-byte')) {
        truncateSync(mediaPath, 0);
      }
      const noSidecar = hasFault(fileFaults, 'power-loss') || hasFault(fileFaults, 'zero-byte') || hasFault(fileFaults, 'missing-sidecar');
      const untouched = !hasFault(fileFaults, 'power-loss') && !hasFault(fileFaults, 'zero-byte');
      result.sha256 = untouched && generated.sha256 ? generated.sha256 : await sha256File(mediaPath);
      result.size = statSync(mediaPath).size;

      if (!noSidecar && sidecarPath) {
        const preEventSeconds = p === 0 ? round(Math.min(options.preEventSeconds, length), 3) : 0;
        const unsigned: Omit<Sidecar, 'signature'> = {
          format: SIDECAR_FORMAT,
          recordingId, groupId, part: p + 1,
          serial: device.serial, model: device.model, firmware: device.firmware, officerId: device.officerId, agency: device.agency,
          fileName, container: options.container,
          startedAt: new Date(cameraStartMs).toISOString(),
          endedAt: new Date(cameraStartMs + Math.round(length * 1000)).toISOString(),
          preEventSeconds,
          trigger: options.trigger, category: options.category, critical: options.critical,
          gps,
          markers: markers(random, length, { part: p + 1, preEventSeconds, trigger: options.trigger }),
          media: {
            durationSeconds: round(length, 3), codec: options.codec, width: options.width, height: options.height, fps: options.fps,
            keyframeIntervalSeconds: options.keyframeIntervalSeconds, audio: { codec: 'aac', channels: 1, sampleRate: options.audioSampleRate },
          },
          ...(storageFull && lastFile ? { stopReason: 'storage-full' } : {}),
          size: result.size,
          sha256: result.sha256,
        };
        const sidecar = signObject(unsigned as unknown as Record<string, unknown>, camera.privateKeyPem) as unknown as Sidecar;
        if (hasFault(fileFaults, 'bad-signature')) sidecar.signature = spoilSignature(sidecar.signature);
        writeJsonAtomic(sidecarPath, sidecar);
        result.sidecarPath = sidecarPath;
      }
      if (hasFault(fileFaults, 'bitflip') && !noSidecar) {
        flipBits(mediaPath, random.int(0, 255));
        result.sha256 = await sha256File(mediaPath);
      }
      files.push(result);
      const endTrueMs = trueStartMs + Math.round(length * 1000);
      device.clock = { cameraTime: new Date(endTrueMs + skewMs).toISOString(), trueTime: new Date(endTrueMs).toISOString(), offsetMs: skewMs };
      writeDevice(camera.root, device, identityPath);
    }
    writeCardFiles(camera.root, layout, device, { mediaNames, firstNumber: recordingNumber });
  }
  return { root: camera.root, serial: device.serial, layout: layout.name, files, overlay };
}
