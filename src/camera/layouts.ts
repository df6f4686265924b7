/**
 * Card layouts the simulator can write (`--layout`): where each maker puts a
 * recording, what it calls it, and which files it leaves beside it
 * (docs/camera-storage.md, "Other makers' layouts"). The names follow what
 * those cameras write; the vendor metadata files are shaped like theirs
 * (magic bytes, the fields a reader looks at), not byte-valid copies.
 *
 * `bodycam` and `dated` are this project's body camera (DEVICE.json, signed
 * sidecars); the others are foreign makers and write neither.
 */
import { UsageError } from '../errors.js';
import type { Codec, Container } from '../protocol/cameraStorage/index.js';

export type LayoutName = 'bodycam' | 'gopro' | 'avchd' | 'sony-xavc' | 'dashcam' | 'dated';
export const LAYOUT_NAMES: readonly LayoutName[] = ['bodycam', 'gopro', 'avchd', 'sony-xavc', 'dashcam', 'dated'];

/** What a companion file is, so the recorder knows how to make it. */
export type CompanionKind = 'proxy' | 'thumbnail' | 'clip-xml' | 'clip-info' | 'gps-log';

export interface CompanionFile { relPath: string; kind: CompanionKind }

/** Everything one file of a recording needs to be named. */
export interface PlaceContext {
  /** The camera's counter for this file (per file, or per recording for makers that number recordings). */
  number: number;
  /** 1-based part of a rolled-over recording (GoPro: chapter). */
  part: number;
  cameraStartMs: number;
  serial: string;
  container: Container;
  codec: Codec;
  trigger: string;
  critical: boolean;
}

export interface FilePlace {
  /** The recording, relative to the camera root. */
  media: string;
  /** Our signed sidecar (signed layouts only). */
  sidecar?: string;
  /** Files the maker writes beside the recording, each belonging to it. */
  companions: CompanionFile[];
}

export interface CameraLayout {
  name: LayoutName;
  /** Writes DEVICE.json and signed sidecars (this project's camera). */
  signed: boolean;
  /** Model a new camera of this layout reports (foreign makers keep it in their own metadata files). */
  model?: string;
  containers: readonly Container[];
  defaultContainer: Container;
  /** 'recording': parts of one recording share the number (GoPro chapters); 'file': every file has its own. */
  numbering: 'file' | 'recording';
  /** First number on a fresh card. */
  firstNumber: number;
  place(context: PlaceContext): FilePlace;
  /** The camera's number in a file name this layout wrote, if it is one. */
  numberOf(relPath: string): number | undefined;
}

function pad(value: number, width: number): string {
  return String(value).padStart(width, '0');
}

/** Date and time parts of the camera clock (UTC). */
function clockParts(ms: number): { y: string; mo: string; d: string; h: string; mi: string; s: string } {
  const iso = new Date(ms).toISOString();
  return { y: iso.slice(0, 4), mo: iso.slice(5, 7), d: iso.slice(8, 10), h: iso.slice(11, 13), mi: iso.slice(14, 16), s: iso.slice(17, 19) };
}

function extensionOf(container: Container): string {
  return container === 'mpegts' ? '.ts' : container === 'm2ts' ? '.m2ts' : '.mp4';
}

/** <YYYYMMDD>_<HHMMSS>_<serial>_<seq 4 digits><ext>, date and time on the camera clock (UTC). */
export function bodycamFileName(cameraStartMs: number, serial: string, seq: number, ext: string): string {
  const c = clockParts(cameraStartMs);
  return `${c.y}${c.mo}${c.d}_${c.h}${c.mi}${c.s}_${serial}_${pad(seq, 4)}${ext}`;
}

const BODYCAM_NAME = /^\d{8}_\d{6}_.+_(\d{4,})\.(mp4|ts|m2ts)$/;

const bodycam: CameraLayout = {
  name: 'bodycam', signed: true, containers: ['fmp4', 'mpegts', 'mp4', 'm2ts'], defaultContainer: 'fmp4', numbering: 'file', firstNumber: 1,
  place(c) {
    const media = `DCIM/100BWC/${bodycamFileName(c.cameraStartMs, c.serial, c.number, extensionOf(c.container))}`;
    return { media, sidecar: media.replace(/\.[^./]+$/, '.json'), companions: [] };
  },
  numberOf(relPath) {
    if (!relPath.startsWith('DCIM/100BWC/')) return undefined;
    const match = BODYCAM_NAME.exec(relPath.slice('DCIM/100BWC/'.length));
    return match ? Number(match[1]) : undefined;
  },
};

/** A body camera that files by date: DCIM/<YYYY>/<MM>/<DD>/<HHMMSS>_<serial>_<seq>.<ext>, signed sidecars beside. */
const dated: CameraLayout = {
  name: 'dated', signed: true, containers: ['fmp4', 'mpegts', 'mp4', 'm2ts'], defaultContainer: 'fmp4', numbering: 'file', firstNumber: 1,
  place(c) {
    const t = clockParts(c.cameraStartMs);
    const media = `DCIM/${t.y}/${t.mo}/${t.d}/${t.h}${t.mi}${t.s}_${c.serial}_${pad(c.number, 4)}${extensionOf(c.container)}`;
    return { media, sidecar: media.replace(/\.[^./]+$/, '.json'), companions: [] };
  },
  numberOf(relPath) {
    const match = /^DCIM\/\d{4}\/\d{2}\/\d{2}\/\d{6}_.+_(\d{4,})\.(mp4|ts|m2ts)$/.exec(relPath);
    return match ? Number(match[1]) : undefined;
  },
};

/**
 * GoPro HERO6 and later: DCIM/100GOPRO/GH<chapter 2><file 4>.MP4 (GX for HEVC), a low-resolution
 * proxy GL<chapter><file>.LRV and a thumbnail GH<chapter><file>.THM beside it. Chapters of one
 * recording share the file number: GH010007.MP4, GH020007.MP4, ...
 */
const gopro: CameraLayout = {
  name: 'gopro', signed: false, model: 'HERO6 Black (simulated)', containers: ['mp4', 'fmp4'], defaultContainer: 'mp4', numbering: 'recording', firstNumber: 1,
  place(c) {
    if (c.part > 99) throw new UsageError('a GoPro recording has at most 99 chapters: use a longer --max-file-duration', { code: 'E_CAMERA_LAYOUT' });
    const id = `${pad(c.part, 2)}${pad(c.number, 4)}`;
    const prefix = c.codec === 'hevc' ? 'GX' : 'GH';
    const dir = 'DCIM/100GOPRO';
    return {
      media: `${dir}/${prefix}${id}.MP4`,
      companions: [{ relPath: `${dir}/GL${id}.LRV`, kind: 'proxy' }, { relPath: `${dir}/${prefix}${id}.THM`, kind: 'thumbnail' }],
    };
  },
  numberOf(relPath) {
    const match = /^DCIM\/100GOPRO\/G[HX]\d{2}(\d{4})\.MP4$/.exec(relPath);
    return match ? Number(match[1]) : undefined;
  },
};

/**
 * AVCHD camcorders: PRIVATE/AVCHD/BDMV/STREAM/<5 digits>.MTS (M2TS, 192-byte packets) with its clip
 * information BDMV/CLIPINF/<same>.CPI; a playlist BDMV/PLAYLIST/<first clip>.MPL per recording and
 * the card's BDMV/INDEX.BDM and MOVIEOBJ.BDM (written by the recorder, see cardFiles).
 */
export const AVCHD_BDMV = 'PRIVATE/AVCHD/BDMV';
const avchd: CameraLayout = {
  name: 'avchd', signed: false, model: 'HDR-CX405 (simulated)', containers: ['m2ts'], defaultContainer: 'm2ts', numbering: 'file', firstNumber: 0,
  place(c) {
    if (c.number > 99_999) throw new UsageError('an AVCHD card holds clips 00000 to 99999 only', { code: 'E_CAMERA_LAYOUT' });
    const id = pad(c.number, 5);
    return { media: `${AVCHD_BDMV}/STREAM/${id}.MTS`, companions: [{ relPath: `${AVCHD_BDMV}/CLIPINF/${id}.CPI`, kind: 'clip-info' }] };
  },
  numberOf(relPath) {
    const match = /^PRIVATE\/AVCHD\/BDMV\/STREAM\/(\d{5})\.MTS$/.exec(relPath);
    return match ? Number(match[1]) : undefined;
  },
};

/**
 * Sony XAVC S: PRIVATE/M4ROOT/CLIP/C<4 digits>.MP4 with its non-real-time metadata C<n>M01.XML,
 * a thumbnail THMBNL/C<n>T01.JPG and a proxy SUB/C<n>S03.MP4; the card's M4ROOT/MEDIAPRO.XML lists them.
 */
export const SONY_ROOT = 'PRIVATE/M4ROOT';
const sonyXavc: CameraLayout = {
  name: 'sony-xavc', signed: false, model: 'ILCE-7M3 (simulated)', containers: ['mp4', 'fmp4'], defaultContainer: 'mp4', numbering: 'file', firstNumber: 1,
  place(c) {
    if (c.number > 9999) throw new UsageError('a Sony card holds clips C0001 to C9999 only', { code: 'E_CAMERA_LAYOUT' });
    const id = `C${pad(c.number, 4)}`;
    return {
      media: `${SONY_ROOT}/CLIP/${id}.MP4`,
      companions: [
        { relPath: `${SONY_ROOT}/CLIP/${id}M01.XML`, kind: 'clip-xml' },
        { relPath: `${SONY_ROOT}/THMBNL/${id}T01.JPG`, kind: 'thumbnail' },
        { relPath: `${SONY_ROOT}/SUB/${id}S03.MP4`, kind: 'proxy' },
      ],
    };
  },
  numberOf(relPath) {
    const match = /^PRIVATE\/M4ROOT\/CLIP\/C(\d{4})\.MP4$/.exec(relPath);
    return match ? Number(match[1]) : undefined;
  },
};

/** Which dashcam folder a recording goes to: Event for an incident (G-sensor, button, critical), Parking, else Normal. */
export const DASHCAM_EVENT_TRIGGERS: readonly string[] = ['event', 'impact', 'g-sensor', 'collision', 'emergency'];
export function dashcamFolder(trigger: string, critical: boolean): 'Normal' | 'Event' | 'Parking' {
  if (critical || DASHCAM_EVENT_TRIGGERS.includes(trigger.toLowerCase())) return 'Event';
  if (trigger.toLowerCase() === 'parking') return 'Parking';
  return 'Normal';
}
const DASHCAM_TAG = { Normal: 'NOR', Event: 'EVT', Parking: 'PRK' } as const;

/**
 * Dashcams: Normal/ (loop recording), Event/ (an incident, kept from the loop) and Parking/,
 * <YYYYMMDD>-<HHMMSS>_<NOR|EVT|PRK>_<4 digits>.MP4 with a GPS log of the same name (.NMEA).
 */
const dashcam: CameraLayout = {
  name: 'dashcam', signed: false, model: 'DC-Sim 2 (simulated)', containers: ['mp4', 'fmp4', 'mpegts'], defaultContainer: 'mp4', numbering: 'file', firstNumber: 1,
  place(c) {
    const folder = dashcamFolder(c.trigger, c.critical);
    const t = clockParts(c.cameraStartMs);
    const base = `${folder}/${t.y}${t.mo}${t.d}-${t.h}${t.mi}${t.s}_${DASHCAM_TAG[folder]}_${pad(c.number, 4)}`;
    return { media: `${base}${c.container === 'mpegts' ? '.TS' : '.MP4'}`, companions: [{ relPath: `${base}.NMEA`, kind: 'gps-log' }] };
  },
  numberOf(relPath) {
    const match = /^(Normal|Event|Parking)\/\d{8}-\d{6}_(NOR|EVT|PRK)_(\d{4,})\.(MP4|TS)$/.exec(relPath);
    return match ? Number(match[3]) : undefined;
  },
};

const LAYOUTS: Record<LayoutName, CameraLayout> = { bodycam, gopro, avchd, 'sony-xavc': sonyXavc, dashcam, dated };

export function layoutNamed(name: string): CameraLayout {
  const layout = (LAYOUTS as Record<string, CameraLayout | undefined>)[name];
  if (!layout) throw new UsageError(`unknown layout "${name}": expected one of ${LAYOUT_NAMES.join(', ')}`, { code: 'E_CAMERA_LAYOUT' });
  return layout;
}
