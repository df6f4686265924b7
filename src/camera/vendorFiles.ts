/**
 * The files other makers write beside their recordings and about the card
 * (docs/camera-storage.md, "Other makers' layouts"): shaped like theirs (magic
 * bytes, the fields a reader looks at), written atomically, never evidence of
 * their own. Pictures and proxies come from src/media (the only place that runs ffmpeg).
 */
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { generateClip, generateStill, type ClipSpec } from '../media/generate.js';
import type { RunOptions } from '../media/run.js';
import { AVCHD_BDMV, SONY_ROOT, type CameraLayout, type CompanionFile } from './layouts.js';
import { writeFileAtomic } from './storage.js';
import type { DeviceInfo, GpsPoint } from '../protocol/cameraStorage/index.js';

/** What a companion describes: the recording it belongs to. */
export interface CompanionContext {
  device: DeviceInfo;
  /** File name of the recording (e.g. C0001.MP4). */
  mediaName: string;
  cameraStartMs: number;
  durationSeconds: number;
  gps: GpsPoint[];
  clip: ClipSpec;
}

function xmlEscape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** NMEA 0183 checksum: XOR of the bytes between '$' and '*'. */
function nmea(body: string): string {
  let sum = 0;
  for (const ch of Buffer.from(body, 'ascii')) sum ^= ch;
  return `$${body}*${sum.toString(16).toUpperCase().padStart(2, '0')}`;
}

function nmeaCoordinate(value: number, degreeDigits: number): string {
  const abs = Math.abs(value);
  const degrees = Math.floor(abs);
  const minutes = (abs - degrees) * 60;
  return `${String(degrees).padStart(degreeDigits, '0')}${minutes.toFixed(4).padStart(7, '0')}`;
}

/** $GPRMC sentences of a GPS track, one per fix, time on the camera clock. */
export function nmeaLog(startMs: number, gps: GpsPoint[]): string {
  return gps.map((point) => {
    const iso = new Date(startMs + Math.round(point.t * 1000)).toISOString();
    const time = `${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}.00`;
    const date = `${iso.slice(8, 10)}${iso.slice(5, 7)}${iso.slice(2, 4)}`;
    return nmea(`GPRMC,${time},A,${nmeaCoordinate(point.lat, 2)},${point.lat >= 0 ? 'N' : 'S'},${nmeaCoordinate(point.lon, 3)},${point.lon >= 0 ? 'E' : 'W'},0.0,0.0,${date},,,A`);
  }).join('\r\n') + '\r\n';
}

/** Sony's per-clip NonRealTimeMeta (C0001M01.XML): duration, creation date, the device with its serial. */
function sonyClipXml(context: CompanionContext): string {
  const fps = context.clip.fps;
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<NonRealTimeMeta xmlns="urn:schemas-professionalDisc:nonRealTimeMeta:ver.2.00" lastUpdate="' + new Date(context.cameraStartMs).toISOString() + '">',
    `\t<TargetMaterial umidRef="${xmlEscape(context.device.serial)}-${xmlEscape(context.mediaName)}"/>`,
    `\t<Duration value="${Math.round(context.durationSeconds * fps)}"/>`,
    `\t<CreationDate value="${new Date(context.cameraStartMs).toISOString()}"/>`,
    `\t<VideoFormat><VideoFrame videoCodec="${context.clip.codec === 'hevc' ? 'HEVC' : 'AVC'}" captureFps="${fps}p" formatFps="${fps}p"/>`,
    `\t\t<VideoLayout pixel="${context.clip.width}" numOfVerticalLine="${context.clip.height}" aspectRatio="16:9"/></VideoFormat>`,
    `\t<Device manufacturer="Sony" modelName="${xmlEscape(context.device.model)}" serialNo="${xmlEscape(context.device.serial)}"/>`,
    '</NonRealTimeMeta>',
    '',
  ].join('\r\n');
}

/** AVCHD clip information (CLIPINF/<n>.CPI): "HDMV0100" magic, the stream's clip name and length. */
function avchdClipInfo(context: CompanionContext): Buffer {
  const header = Buffer.alloc(64);
  header.write('HDMV0100', 0, 'ascii');
  header.write(context.mediaName.replace('.', '').padEnd(9, ' ').slice(0, 9), 16, 'ascii'); // "00000MTS " like "00000M2TS"
  header.writeUInt32BE(Math.round(context.durationSeconds * 45_000), 32); // 45 kHz ticks, as BD timestamps count
  return header;
}

/** Write one companion of a recording at `path` (which must not exist). */
export async function writeCompanion(path: string, companion: CompanionFile, context: CompanionContext, options: RunOptions = {}): Promise<void> {
  mkdirSync(dirname(path), { recursive: true });
  switch (companion.kind) {
    case 'proxy': {
      // A low-resolution copy, as LRV and SUB proxies are: a real, smaller MP4 of the same length.
      const clip: ClipSpec = { ...context.clip, container: 'mp4', width: 160, height: 120, videoKbps: 64, audioKbps: 32, realtime: false };
      await generateClip(path, clip, options);
      return;
    }
    case 'thumbnail':
      await generateStill(path, { width: 160, height: 120, label: context.mediaName }, options);
      return;
    case 'clip-xml':
      writeFileAtomic(path, sonyClipXml(context));
      return;
    case 'clip-info':
      writeFileAtomic(path, avchdClipInfo(context));
      return;
    case 'gps-log':
      writeFileAtomic(path, nmeaLog(context.cameraStartMs, context.gps));
      return;
  }
}

function writeOnce(path: string, data: string | Buffer): void {
  if (existsSync(path)) return;
  mkdirSync(dirname(path), { recursive: true });
  writeFileAtomic(path, data);
}

/** Files about the card rather than one recording, after a recording's files are written. */
export function writeCardFiles(root: string, layout: CameraLayout, device: DeviceInfo, recording: { mediaNames: string[]; firstNumber: number }): void {
  switch (layout.name) {
    case 'gopro':
      // GoPro's MISC/version.txt names the camera and its serial.
      writeOnce(join(root, 'MISC', 'version.txt'), JSON.stringify({
        'info version': '1.1', 'firmware version': device.firmware, 'camera type': device.model, 'camera serial number': device.serial,
      }) + '\n');
      return;
    case 'avchd': {
      const bdmv = join(root, AVCHD_BDMV);
      writeOnce(join(bdmv, 'INDEX.BDM'), Buffer.concat([Buffer.from('INDX0100', 'ascii'), Buffer.alloc(56)]));
      writeOnce(join(bdmv, 'MOVIEOBJ.BDM'), Buffer.concat([Buffer.from('MOBJ0100', 'ascii'), Buffer.alloc(56)]));
      // One playlist per recording, listing its clips in order (a rolled-over recording is several clips).
      const items = recording.mediaNames.map((name) => Buffer.from(name.replace('.', '').padEnd(9, ' ').slice(0, 9), 'ascii'));
      const head = Buffer.alloc(16);
      head.write('MPLS0100', 0, 'ascii');
      head.writeUInt32BE(items.length, 8);
      mkdirSync(join(bdmv, 'PLAYLIST'), { recursive: true });
      writeFileAtomic(join(bdmv, 'PLAYLIST', `${String(recording.firstNumber).padStart(5, '0')}.MPL`), Buffer.concat([head, ...items]));
      return;
    }
    case 'sony-xavc': {
      const m4 = join(root, SONY_ROOT);
      writeOnce(join(m4, 'STATUS.BIN'), Buffer.concat([Buffer.from('M4ST', 'ascii'), Buffer.alloc(60)]));
      // MEDIAPRO.XML lists every clip on the card with its companions: rewritten after each recording.
      const clips = readdirSync(join(m4, 'CLIP')).filter((name) => /^C\d{4}\.MP4$/.test(name)).sort();
      writeFileAtomic(join(m4, 'MEDIAPRO.XML'), [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<MediaProfile xmlns="http://xmlns.sony.net/pro/metadata/mediaprofile" version="2.10">',
        `<Properties><System systemId="${xmlEscape(device.serial)}" systemKind="${xmlEscape(device.model)}"/></Properties>`,
        '<Contents>',
        ...clips.map((name) => {
          const id = name.slice(0, 5);
          return `<Material uri="./CLIP/${name}" type="MP4"><RelevantInfo uri="./CLIP/${id}M01.XML" type="XML"/><RelevantInfo uri="./THMBNL/${id}T01.JPG" type="JPG"/></Material>`;
        }),
        '</Contents>',
        '</MediaProfile>',
        '',
      ].join('\r\n'));
      return;
    }
    default:
  }
}
