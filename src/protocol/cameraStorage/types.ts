/**
 * What a camera leaves on its storage (docs/camera-storage.md): the contract
 * between the simulated firmware and the dock. Real cameras of other makes
 * leave none of this; the dock must cope with that too.
 */
export const DEVICE_FORMAT = 'bodycam-device/1';
export const SIDECAR_FORMAT = 'bodycam-sidecar/1';

export const DEVICE_FILE = 'DEVICE.json';
export const RECORDINGS_DIR = 'DCIM/100BWC';
/** Camera-internal area (keys, counters): never exposed as evidence, never read by the dock. */
export const SYSTEM_DIR = '.system';

/** m2ts: MPEG-TS in 192-byte packets (4-byte arrival timestamp first), as AVCHD and many camcorders write. */
export type Container = 'fmp4' | 'mpegts' | 'mp4' | 'm2ts';
export type Codec = 'h264' | 'hevc';

/** <camera root>/DEVICE.json */
export interface DeviceInfo {
  format: typeof DEVICE_FORMAT;
  serial: string;
  model: string;
  firmware: string;
  officerId: string;
  agency: string;
  publicKeyPem: string;
  /** Camera clock against true time, refreshed at the moment of docking. */
  clock: {
    cameraTime: string;   // ISO 8601, what the camera's RTC says
    trueTime: string;     // ISO 8601, what the host clock says
    offsetMs: number;     // cameraTime - trueTime
  };
}

export interface GpsPoint { t: number; lat: number; lon: number; }
export interface EventMarker { t: number; label: string; }

/** <camera root>/DCIM/100BWC/<name>.json, written atomically when the recording closes. */
export interface Sidecar {
  format: typeof SIDECAR_FORMAT;
  recordingId: string;            // camera-unique: <serial>-<seq>
  groupId: string;                // shared by the files of one rolled-over recording
  part: number;                   // 1-based index within the group
  serial: string;
  model: string;
  firmware: string;
  officerId: string;
  agency: string;
  fileName: string;
  container: Container;
  startedAt: string;              // camera clock, ISO 8601
  endedAt: string;                // camera clock, ISO 8601
  preEventSeconds: number;
  trigger: string;                // manual | holster | lightbar | taser | ...
  category: string;
  critical: boolean;              // offloaded first
  gps: GpsPoint[];
  markers: EventMarker[];
  media: {
    durationSeconds: number;
    codec: Codec;
    width: number;
    height: number;
    fps: number;
    keyframeIntervalSeconds: number;
    audio: { codec: 'aac'; channels: 1; sampleRate: number };
  };
  /** Why recording stopped early, when it did (e.g. "storage-full"). */
  stopReason?: string;
  size: number;
  sha256: string;                 // of the media file
  signature: string;              // camera Ed25519 over JCS(sidecar without signature)
}
