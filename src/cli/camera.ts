/**
 * `bodycam camera record|dock|undock|fleet`: the simulated camera's command
 * line, which scripts and CI rely on (docs/camera-storage.md).
 */
import type { Command } from 'commander';
import { UsageError } from '../errors.js';
import { dockCamera, recordCamera, recordFleet, undockCamera, type RecordOptions, type RecordResult } from '../camera/index.js';
import type { LayoutName } from '../camera/layouts.js';
import type { Codec, Container } from '../protocol/cameraStorage/index.js';
import { parseDuration, parsePositiveInt } from '../util/units.js';
import { action } from './handler.js';

interface RecordFlags {
  storage?: string; layout?: string; serial?: string; count?: string; duration?: string; container?: string; codec?: string; size?: string;
  fps?: string; bitrate?: string; keyframeInterval?: string; seed?: string; realtime?: boolean; maxFileDuration?: string;
  preEvent?: string; trigger?: string; category?: string; critical?: boolean; fault?: string[]; json?: boolean;
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

function parseSize(text: string): { width: number; height: number } {
  const match = /^(\d+)x(\d+)$/.exec(text.trim());
  if (!match) throw new UsageError(`invalid size "${text}": use WIDTHxHEIGHT, e.g. 1280x720`);
  return { width: Number(match[1]), height: Number(match[2]) };
}

function parseKbps(text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*(k|m)?(?:bit|bps|b)?$/i.exec(text.trim());
  if (!match) throw new UsageError(`invalid bitrate "${text}": use e.g. 800k or 4M`);
  const value = Number(match[1]) * ((match[2] ?? 'k').toLowerCase() === 'm' ? 1000 : 1);
  return Math.round(value);
}

function parseSeed(text: string): number {
  if (!/^\d{1,15}$/.test(text.trim())) throw new UsageError(`invalid seed "${text}": expected a whole number`);
  return Number(text);
}

function recordOptionsFrom(flags: RecordFlags): Omit<RecordOptions, 'storage'> {
  const size = flags.size === undefined ? undefined : parseSize(flags.size);
  if (flags.duration !== undefined && /^\s*-/.test(flags.duration)) throw new UsageError(`invalid duration "${flags.duration}": it cannot be negative`);
  return {
    layout: flags.layout as LayoutName | undefined,
    serial: flags.serial,
    count: flags.count === undefined ? undefined : parsePositiveInt(flags.count, 'count'),
    durationSeconds: flags.duration === undefined ? undefined : parseDuration(flags.duration),
    container: flags.container as Container | undefined,
    codec: flags.codec as Codec | undefined,
    width: size?.width,
    height: size?.height,
    fps: flags.fps === undefined ? undefined : parsePositiveInt(flags.fps, 'fps'),
    videoKbps: flags.bitrate === undefined ? undefined : parseKbps(flags.bitrate),
    keyframeIntervalSeconds: flags.keyframeInterval === undefined ? undefined : parseDuration(flags.keyframeInterval, 'keyframe interval'),
    seed: flags.seed === undefined ? undefined : parseSeed(flags.seed),
    realtime: flags.realtime ?? false,
    maxFileDurationSeconds: flags.maxFileDuration === undefined ? undefined : parseDuration(flags.maxFileDuration, 'max file duration'),
    preEventSeconds: flags.preEvent === undefined ? undefined : parseDuration(flags.preEvent, 'pre-event buffer'),
    trigger: flags.trigger,
    category: flags.category,
    critical: flags.critical ?? false,
    faults: flags.fault ?? [],
  };
}

function addRecordOptions(command: Command): Command {
  return command
    .option('--count <n>', 'number of recordings', undefined)
    .option('--duration <d>', 'length of each recording: seconds or 30s, 10m, 1h (default 30s)')
    .option('--layout <name>', 'card layout: bodycam (default) | gopro | avchd | sony-xavc | dashcam | dated (docs/camera-storage.md)')
    .option('--container <c>', 'fmp4 (bodycam default, power-loss safe) | mpegts | mp4 (moov at the end) | m2ts (192-byte packets); each layout allows its own')
    .option('--codec <c>', 'h264 (default) | hevc')
    .option('--size <WxH>', 'resolution (default 1280x720)')
    .option('--fps <n>', 'frames per second (default 30)')
    .option('--bitrate <kbps>', 'video bitrate, e.g. 800k or 4M (default about 0.06 bit per pixel)')
    .option('--keyframe-interval <d>', 'seconds between keyframes (default 1s)')
    .option('--seed <n>', 'make names, identities, metadata and bytes reproducible')
    .option('--realtime', 'write at 1x speed: the file grows while it records')
    .option('--max-file-duration <d>', 'roll longer recordings over into files sharing a group id')
    .option('--pre-event <d>', 'pre-event buffer at the start of each recording (default 0)')
    .option('--trigger <name>', 'what started the recording: manual, holster, lightbar, taser, ... (default manual)')
    .option('--category <name>', 'evidence category (default uncategorized)')
    .option('--critical', 'mark recordings critical (offloaded first)')
    .option('--fault <name>', 'leave a fault behind (repeatable): power-loss, bitflip, zero-byte, missing-sidecar, bad-signature, clock-skew=SECONDS, storage-full[=SIZE]', collect)
    .option('--json', 'print the result as JSON');
}

function printRecording(result: RecordResult, json: boolean): void {
  if (json) return;
  for (const file of result.files) {
    const faults = file.faults.length ? `  faults=${file.faults.join(',')}` : '';
    process.stdout.write(`${file.mediaPath}  ${file.durationSeconds}s  ${file.size} bytes  sha256=${file.sha256}${file.sidecarPath ? '' : '  (no sidecar)'}${faults}\n`);
  }
  if (!result.overlay) process.stderr.write('bodycam: note: no font found, recorded without the burned-in serial and clock (set BODYCAM_FONT)\n');
}

export function registerCamera(program: Command): void {
  const camera = program.command('camera')
    .description('Simulate a body-worn camera or a fleet: record, dock, undock')
    .addHelpText('after', `
Examples:
  $ bodycam camera record --storage cams/cam1 --count 2 --duration 10s
  $ bodycam camera dock --storage cams/cam1 --bays bays --bay bay-01
  $ bodycam camera fleet --cameras 4 --bays bays --duration 5s`);

  addRecordOptions(camera.command('record')
    .description('record into a camera storage folder (booting a new camera there on first use)')
    .requiredOption('--storage <dir>', 'camera root folder')
    .option('--serial <s>', 'serial of a new camera (default: from the seed, or random)')
    .addHelpText('after', `
Examples:
  $ bodycam camera record --storage cams/cam1 --count 3 --duration 30s
  $ bodycam camera record --storage cams/cam2 --duration 10s --container mpegts --fault power-loss --seed 7
  $ bodycam camera record --storage cams/gopro --layout gopro --duration 10s --max-file-duration 4s`))
    .action(action(async (flags: RecordFlags) => {
      const result = await recordCamera({ storage: flags.storage!, ...recordOptionsFrom(flags) });
      if (flags.json) process.stdout.write(JSON.stringify(result, null, 2) + '\n');
      printRecording(result, flags.json ?? false);
    }));

  camera.command('dock')
    .description('move a camera storage into a bay: <bays>/<bay> becomes the camera root (one atomic rename)')
    .requiredOption('--storage <dir>', 'camera root folder')
    .requiredOption('--bays <dir>', 'bays root (must exist, same filesystem)')
    .requiredOption('--bay <name>', 'bay name, e.g. bay-01')
    .addHelpText('after', `
Examples:
  $ mkdir -p bays && bodycam camera dock --storage cams/cam1 --bays bays --bay bay-01`)
    .action(action(async (flags: { storage: string; bays: string; bay: string }) => {
      const bayPath = await dockCamera(flags);
      process.stdout.write(`${bayPath}\n`);
    }));

  camera.command('undock')
    .description('take the camera out of a bay and put its storage at --to (one atomic rename)')
    .requiredOption('--bays <dir>', 'bays root')
    .requiredOption('--bay <name>', 'bay name')
    .requiredOption('--to <dir>', 'where the camera storage goes (must not exist)')
    .addHelpText('after', `
Examples:
  $ bodycam camera undock --bays bays --bay bay-01 --to cams/cam1`)
    .action(action(async (flags: { bays: string; bay: string; to: string }) => {
      await undockCamera(flags);
      process.stdout.write(`${flags.to}\n`);
    }));

  addRecordOptions(camera.command('fleet')
    .description('record N cameras and dock them into bays bay-01..bay-N')
    .requiredOption('--cameras <n>', 'number of cameras')
    .requiredOption('--bays <dir>', 'bays root (must exist)')
    .option('--staging <dir>', 'where cameras record before docking (default beside the bays root)')
    .addHelpText('after', `
Examples:
  $ mkdir -p bays && bodycam camera fleet --cameras 4 --bays bays --count 2 --duration 5s --size 320x240`))
    .action(action(async (flags: RecordFlags & { cameras: string; bays: string; staging?: string }) => {
      const fleet = await recordFleet({
        ...recordOptionsFrom(flags), cameras: parsePositiveInt(flags.cameras, 'camera count'), bays: flags.bays, staging: flags.staging,
      });
      if (flags.json) {
        process.stdout.write(JSON.stringify(fleet, null, 2) + '\n');
        return;
      }
      for (const docked of fleet) process.stdout.write(`${docked.bay}  ${docked.serial}  ${docked.files.length} file(s)  ${docked.bayPath}\n`);
    }));
}
