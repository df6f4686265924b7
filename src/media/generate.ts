/**
 * Synthetic camera footage from ffmpeg's lavfi sources (testsrc2 + sine), with
 * the camera's identity and clock burned in by drawtext.
 *
 * Long recordings are not encoded frame by frame: a unique, keyframe-aligned
 * head (identity + clock burned in) is encoded per file and followed by a cached
 * filler tile repeated by stream copy through the concat demuxer. The head makes
 * every recording's bytes distinct; the tile makes an hour cost seconds
 * (docs/camera-storage.md, "How footage is generated").
 *
 * Output is reproducible: single-threaded encoders, bitexact muxing, no metadata.
 */
import { createHash } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { toolPath } from './binaries.js';
import { runTool, type RunOptions } from './run.js';

export type GenContainer = 'fmp4' | 'mpegts' | 'mp4' | 'm2ts';
export type GenCodec = 'h264' | 'hevc';

export interface ClipSpec {
  container: GenContainer;
  codec: GenCodec;
  width: number;
  height: number;
  fps: number;
  videoKbps: number;
  audioKbps: number;
  audioSampleRate: number;
  keyframeIntervalSeconds: number;
  durationSeconds: number;
  /** Lines burned into the picture (letters, digits, '-', '.', '_' and spaces only). */
  label: string;
  /** Camera clock at the first frame, Unix seconds: burned in as a running clock. */
  clockEpochSeconds: number;
  /** Tone of the audio track, so clips differ in sound too. */
  toneHz: number;
  /** Throttle to 1x: the file grows while it is written. */
  realtime: boolean;
}

/** Recordings up to this long are encoded in full, every frame carrying the clock. */
export const DIRECT_ENCODE_MAX_SECONDS = 20;
/** Filler tile length: 8 s is a whole number of AAC frames at 48 kHz (375). */
const TILE_BASE_SECONDS = 8;
const HEAD_BASE_SECONDS = 2;
/**
 * AAC encoder priming: each piece's first audio packet sits one frame before
 * zero. Pieces that are joined end their audio one frame early, so the next
 * piece's priming packet fills that frame instead of overlapping the last one
 * (timestamps stay strictly increasing; the join carries 21 ms of priming sound).
 */
const AAC_FRAME_SAMPLES = 1024;

const FONT_CANDIDATES = [
  '/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf',
  '/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf',
  '/usr/share/fonts/dejavu/DejaVuSansMono.ttf',
  '/usr/share/fonts/dejavu/DejaVuSans.ttf',
  '/usr/share/fonts/TTF/DejaVuSansMono.ttf',
  '/System/Library/Fonts/Supplemental/Courier New.ttf',
];

/** A font for the overlay, or undefined when none exists (the caller records without overlay). */
export function overlayFont(): string | undefined {
  const fromEnv = process.env.BODYCAM_FONT;
  if (fromEnv !== undefined) return fromEnv && existsSync(fromEnv) ? fromEnv : undefined;
  return FONT_CANDIDATES.find((path) => existsSync(path));
}

export function extensionFor(container: GenContainer): string {
  return container === 'mpegts' ? '.ts' : container === 'm2ts' ? '.m2ts' : '.mp4';
}

function safeText(text: string): string {
  // drawtext's own escaping rules nest inside the filtergraph's; keeping to a
  // plain alphabet avoids both.
  return text.replace(/[^A-Za-z0-9 ._-]/g, '_');
}

function videoCodecArgs(spec: ClipSpec): string[] {
  const gop = Math.max(1, Math.round(spec.fps * spec.keyframeIntervalSeconds));
  const rate = [`-b:v`, `${spec.videoKbps}k`, '-maxrate', `${spec.videoKbps}k`, '-bufsize', `${spec.videoKbps * 2}k`];
  if (spec.codec === 'hevc') {
    return ['-c:v', 'libx265', '-preset', 'ultrafast', ...rate,
      '-x265-params', `pools=none:frame-threads=1:keyint=${gop}:min-keyint=${gop}:scenecut=0:bframes=0:log-level=none`,
      ...(spec.container === 'mpegts' || spec.container === 'm2ts' ? [] : ['-tag:v', 'hvc1']), '-pix_fmt', 'yuv420p'];
  }
  return ['-c:v', 'libx264', '-threads', '1', '-preset', 'ultrafast', ...rate,
    '-g', String(gop), '-keyint_min', String(gop), '-sc_threshold', '0', '-bf', '0', '-pix_fmt', 'yuv420p'];
}

function audioCodecArgs(spec: ClipSpec): string[] {
  return ['-c:a', 'aac', '-ac', '1', '-ar', String(spec.audioSampleRate), '-b:a', `${spec.audioKbps}k`];
}

function muxArgs(container: GenContainer | 'piece'): string[] {
  const common = ['-fflags', '+bitexact', '-flags', '+bitexact', '-map_metadata', '-1'];
  switch (container) {
    case 'fmp4': return [...common, '-movflags', '+frag_keyframe+empty_moov+default_base_moof', '-f', 'mp4'];
    case 'mp4': return [...common, '-f', 'mp4'];
    case 'mpegts': return [...common, '-f', 'mpegts'];
    case 'm2ts': throw new Error('m2ts muxing needs the stream bitrate: use m2tsMuxArgs');
    case 'piece': return [...common, '-f', 'mp4'];
  }
}

/**
 * 192-byte packets: a 4-byte TP_extra_header (2 copy-permission bits, a 30-bit arrival time stamp
 * on the 27 MHz clock) before each 188-byte packet, as AVCHD and Blu-ray store them. ffmpeg derives
 * the stamp from the byte position and the mux rate, so without a constant mux rate (VBR) the
 * stamps jump by ~25 s per packet: the stream is padded to a constant rate above the encoders' caps.
 */
function m2tsMuxArgs(spec: Pick<ClipSpec, 'videoKbps' | 'audioKbps'>): string[] {
  const muxKbps = Math.ceil((spec.videoKbps + spec.audioKbps) * 1.5 + 100);
  return ['-fflags', '+bitexact', '-flags', '+bitexact', '-map_metadata', '-1', '-f', 'mpegts', '-mpegts_m2ts_mode', '1', '-muxrate', `${muxKbps}k`];
}

function containerMuxArgs(format: GenContainer | 'piece', spec: Pick<ClipSpec, 'videoKbps' | 'audioKbps'>): string[] {
  return format === 'm2ts' ? m2tsMuxArgs(spec) : muxArgs(format);
}

function overlayFilter(font: string | undefined, label: string, clockEpochSeconds: number | undefined, height: number): string {
  if (!font) return 'null';
  const size = Math.max(10, Math.round(height / 20));
  const style = `fontfile=${font}:fontsize=${size}:fontcolor=white:box=1:boxcolor=black@0.6:x=8`;
  const parts = [`drawtext=${style}:y=h-${size * 3}:text='${safeText(label)}'`];
  if (clockEpochSeconds !== undefined) {
    parts.push(`drawtext=${style}:y=h-${Math.round(size * 1.6)}:text='%{pts\\:gmtime\\:${Math.floor(clockEpochSeconds)}}'`);
  }
  return parts.join(',');
}

interface EncodeJob {
  spec: ClipSpec;
  durationSeconds: number;
  label: string;
  clockEpochSeconds?: number;
  toneHz: number;
  /** Cut the audio this many samples short of the video (pieces that are concatenated, see below). */
  audioShortBySamples?: number;
  output: string;
  format: GenContainer | 'piece';
  realtime: boolean;
  overwrite: boolean;
}

async function encode(job: EncodeJob, options: RunOptions): Promise<string | undefined> {
  const { spec } = job;
  const font = overlayFont();
  const video = `[0:v]${overlayFilter(font, job.label, job.clockEpochSeconds, spec.height)}[v]`;
  const audioSamples = Math.round(job.durationSeconds * spec.audioSampleRate) - (job.audioShortBySamples ?? 0);
  const filter = job.audioShortBySamples ? `${video};[1:a]atrim=end_sample=${audioSamples}[a]` : video;
  const args = [
    '-nostdin', '-v', 'error', job.overwrite ? '-y' : '-n',
    ...(job.realtime ? ['-re'] : []),
    '-f', 'lavfi', '-i', `testsrc2=size=${spec.width}x${spec.height}:rate=${spec.fps}`,
    ...(job.realtime ? ['-re'] : []),
    '-f', 'lavfi', '-i', `sine=frequency=${job.toneHz}:sample_rate=${spec.audioSampleRate}`,
    '-t', job.durationSeconds.toFixed(3),
    '-filter_complex', filter, '-map', '[v]', '-map', job.audioShortBySamples ? '[a]' : '1:a',
    ...videoCodecArgs(spec), ...audioCodecArgs(spec), ...containerMuxArgs(job.format, spec), ...(job.realtime ? ['-flush_packets', '1'] : []),
  ];
  return runInto(args, job.output, job.format, { timeoutMs: Math.max(120_000, job.durationSeconds * 3000), ...options });
}

function writeAll(fd: number, chunk: Buffer): void {
  let written = 0;
  while (written < chunk.length) written += writeSync(fd, chunk, written, chunk.length - written);
}

/**
 * Run ffmpeg with `output` as its result. Streamable containers (fMP4, MPEG-TS, M2TS)
 * come through a pipe and are written and hashed here: the file is hashed
 * without a second read, and if this process dies (kill -9, as a battery
 * pull), ffmpeg dies with it on the broken pipe instead of finishing the file
 * behind the camera's back. Plain MP4 needs a seekable file, so ffmpeg writes it.
 * Returns the SHA-256 when the bytes went through here.
 */
async function runInto(args: string[], output: string, format: GenContainer | 'piece', options: RunOptions): Promise<string | undefined> {
  if (format !== 'fmp4' && format !== 'mpegts' && format !== 'm2ts') {
    await runTool('ffmpeg', [...args, output], options);
    return undefined;
  }
  const fd = openSync(output, 'wx'); // a camera never overwrites a file
  const hash = createHash('sha256');
  const stop = new AbortController();
  let writeError: unknown;
  try {
    await runTool('ffmpeg', [...args, 'pipe:1'], {
      ...options,
      signal: options.signal ? AbortSignal.any([options.signal, stop.signal]) : stop.signal,
      onStdout: (chunk) => {
        if (writeError) return;
        try {
          writeAll(fd, chunk);
          hash.update(chunk);
        } catch (error) {
          writeError = error; // e.g. ENOSPC: stop ffmpeg and report this, not the abort
          stop.abort();
        }
      },
    });
    fsyncSync(fd);
  } catch (error) {
    throw writeError ?? error;
  } finally {
    closeSync(fd);
  }
  if (writeError) throw writeError;
  return hash.digest('hex');
}

function tileCacheDir(): string {
  return process.env.BODYCAM_TILE_CACHE || join(tmpdir(), 'bodycam-tiles');
}

/** The filler tile for these encoding parameters, encoded once and reused by every camera. */
async function cachedTile(spec: ClipSpec, tileSeconds: number, options: RunOptions): Promise<string> {
  const key = createHash('sha256').update(JSON.stringify({
    v: 2, ffmpeg: toolPath('ffmpeg'), codec: spec.codec, w: spec.width, h: spec.height, fps: spec.fps, vk: spec.videoKbps, ak: spec.audioKbps,
    sr: spec.audioSampleRate, kf: spec.keyframeIntervalSeconds, tileSeconds, font: overlayFont() ?? '',
  })).digest('hex').slice(0, 24);
  const path = join(tileCacheDir(), `tile-${key}.mp4`);
  if (existsSync(path)) return path;
  mkdirSync(dirname(path), { recursive: true });
  const temp = `${path}.${process.pid}.${Date.now()}.tmp`;
  try {
    await encode({
      spec, durationSeconds: tileSeconds, label: 'LOOPED FILLER TILE', toneHz: 440, audioShortBySamples: AAC_FRAME_SAMPLES, output: temp,
      format: 'piece', realtime: false, overwrite: true,
    }, options);
    renameSync(temp, path); // several processes may race here: all write the same bytes
  } finally {
    rmSync(temp, { force: true });
  }
  return path;
}

function alignUp(seconds: number, step: number): number {
  return Math.ceil(seconds / step - 1e-9) * step;
}

export interface GeneratedClip {
  /** False when no font was found and the picture carries no text. */
  overlay: boolean;
  /** True when built from a unique head and stream-copied tiles. */
  tiled: boolean;
  /** SHA-256 of the file when it was hashed while written (fMP4, MPEG-TS, M2TS). */
  sha256?: string;
}

/**
 * Write one recording at `output` (which must not exist: a camera never overwrites).
 * Short clips are encoded whole; long ones are a unique head plus stream-copied tiles.
 */
export async function generateClip(output: string, spec: ClipSpec, options: RunOptions = {}): Promise<GeneratedClip> {
  const overlay = overlayFont() !== undefined;
  if (spec.durationSeconds <= DIRECT_ENCODE_MAX_SECONDS) {
    const sha256 = await encode({
      spec, durationSeconds: spec.durationSeconds, label: spec.label, clockEpochSeconds: spec.clockEpochSeconds,
      toneHz: spec.toneHz, output, format: spec.container, realtime: spec.realtime, overwrite: false,
    }, options);
    return { overlay, tiled: false, sha256 };
  }
  const kf = spec.keyframeIntervalSeconds;
  const tileSeconds = alignUp(TILE_BASE_SECONDS, kf);
  const headSeconds = alignUp(HEAD_BASE_SECONDS, kf);
  const tile = await cachedTile(spec, tileSeconds, options);
  const workDir = join(dirname(tile), `work-${process.pid}-${createHash('sha256').update(output).digest('hex').slice(0, 12)}`);
  mkdirSync(workDir, { recursive: true });
  try {
    const head = join(workDir, 'head.mp4');
    await encode({
      spec, durationSeconds: headSeconds, label: spec.label, clockEpochSeconds: spec.clockEpochSeconds,
      toneHz: spec.toneHz, audioShortBySamples: AAC_FRAME_SAMPLES, output: head, format: 'piece', realtime: false, overwrite: true,
    }, options);
    // Explicit `duration` lines keep the concat demuxer from drifting by the AAC priming at every join.
    const lines = ['ffconcat version 1.0', `file '${head}'`, `duration ${headSeconds}`];
    let remaining = spec.durationSeconds - headSeconds;
    while (remaining > 1e-6) {
      lines.push(`file '${tile}'`);
      if (remaining >= tileSeconds - 1e-6) lines.push(`duration ${tileSeconds}`);
      else lines.push(`outpoint ${remaining.toFixed(3)}`);
      remaining -= tileSeconds;
    }
    const list = join(workDir, 'list.ffconcat');
    writeFileSync(list, lines.join('\n') + '\n');
    const sha256 = await runInto([
      '-nostdin', '-v', 'error', '-n', ...(spec.realtime ? ['-re'] : []),
      '-f', 'concat', '-safe', '0', '-i', list, '-map', '0', '-c', 'copy', ...containerMuxArgs(spec.container, spec),
      ...(spec.realtime ? ['-flush_packets', '1'] : []),
    ], output, spec.container, { timeoutMs: Math.max(300_000, spec.durationSeconds * (spec.realtime ? 1500 : 100)), ...options });
    return { overlay, tiled: true, sha256 };
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
}

export interface ForeignClipSpec {
  durationSeconds: number;
  width: number;
  height: number;
  fps: number;
  /** Also a timecode data track (tmcd), as some makers write. */
  timecode?: boolean;
}

/**
 * A recording as another make of camera might leave it: plain MP4 with a timed
 * text track beside video and audio, and vendor metadata. No sidecar, no DEVICE.json.
 */
export async function generateForeignClip(output: string, spec: ForeignClipSpec, options: RunOptions = {}): Promise<void> {
  const srt = `${output}.srt.tmp`;
  const cues: string[] = [];
  for (let t = 0, n = 1; t < spec.durationSeconds; t += 1, n++) {
    const stamp = (s: number): string => `00:00:${String(Math.floor(s)).padStart(2, '0')},000`;
    cues.push(`${n}\n${stamp(t)} --> ${stamp(Math.min(t + 1, spec.durationSeconds))}\nGPS 51.50${n} -0.12${n}\n`);
  }
  writeFileSync(srt, cues.join('\n'));
  try {
    await runTool('ffmpeg', [
      '-nostdin', '-v', 'error', '-n',
      '-f', 'lavfi', '-i', `testsrc=size=${spec.width}x${spec.height}:rate=${spec.fps}`,
      '-f', 'lavfi', '-i', 'sine=frequency=660:sample_rate=48000',
      '-i', srt,
      '-t', String(spec.durationSeconds), '-map', '0:v', '-map', '1:a', '-map', '2:s',
      '-c:v', 'libx264', '-threads', '1', '-preset', 'ultrafast', '-b:v', '150k', '-g', String(spec.fps), '-pix_fmt', 'yuv420p',
      '-c:a', 'aac', '-ac', '2', '-b:a', '48k', '-c:s', 'mov_text', ...(spec.timecode ? ['-timecode', '00:00:00:00'] : []),
      '-fflags', '+bitexact', '-flags', '+bitexact', '-map_metadata', '-1',
      '-metadata', 'make=OtherVendor', '-metadata', 'model=VX-100', '-f', 'mp4', output,
    ], { timeoutMs: 120_000, ...options });
  } finally {
    rmSync(srt, { force: true });
  }
}

/** A bare test pattern's containers: fMP4 with a fragment per keyframe, MPEG-TS, plain MP4. */
export type PatternContainer = 'fmp4' | 'mpegts' | 'mp4';

export interface PatternSpec {
  container: PatternContainer;
  durationSeconds: number;
  /** Default 320x240 at 15 fps, a keyframe every second. */
  width?: number;
  height?: number;
  fps?: number;
}

/**
 * The smallest useful recording: ffmpeg's testsrc in H.264, no audio, no overlay, a keyframe a
 * second; overwrites `output`. For tests and examples that need a real file of a container, not
 * a camera's recording (that is generateClip).
 */
export async function generatePattern(output: string, spec: PatternSpec, options: RunOptions = {}): Promise<void> {
  const { width = 320, height = 240, fps = 15 } = spec;
  const mux = spec.container === 'fmp4' ? ['-movflags', '+frag_keyframe+empty_moov+default_base_moof'] : spec.container === 'mpegts' ? ['-f', 'mpegts'] : [];
  await runTool('ffmpeg', [
    '-nostdin', '-v', 'error', '-y', '-f', 'lavfi', '-i', `testsrc=size=${width}x${height}:rate=${fps}`, '-t', String(spec.durationSeconds),
    '-c:v', 'libx264', '-g', String(fps), '-pix_fmt', 'yuv420p', ...mux, output,
  ], { timeoutMs: 120_000, ...options });
}

/** Stream-copy `input` into another container (no re-encode): M2TS is MPEG-TS in 192-byte packets. */
export async function remux(input: string, output: string, container: 'mpegts' | 'm2ts' | 'mp4', options: RunOptions = {}): Promise<void> {
  const format = container === 'mp4' ? ['-f', 'mp4'] : ['-f', 'mpegts', ...(container === 'm2ts' ? ['-mpegts_m2ts_mode', '1'] : [])];
  await runTool('ffmpeg', ['-nostdin', '-v', 'error', '-y', '-i', input, '-c', 'copy', ...format, output], { timeoutMs: 120_000, ...options });
}

export interface StillSpec { width: number; height: number; label: string }

/** A JPEG still (a camera's thumbnail of a recording): one testsrc2 frame with the label burned in. */
export async function generateStill(output: string, spec: StillSpec, options: RunOptions = {}): Promise<void> {
  await runTool('ffmpeg', [
    '-nostdin', '-v', 'error', '-n',
    '-f', 'lavfi', '-i', `testsrc2=size=${spec.width}x${spec.height}:rate=1`,
    '-frames:v', '1', '-vf', overlayFilter(overlayFont(), spec.label, undefined, spec.height),
    '-c:v', 'mjpeg', '-q:v', '5', '-pix_fmt', 'yuvj420p', '-fflags', '+bitexact', '-flags', '+bitexact', '-map_metadata', '-1',
    '-f', 'image2', output,
  ], { timeoutMs: 60_000, ...options });
}
