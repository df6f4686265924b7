/** What ffprobe says about a file: format, streams, duration, start time. */
import { MediaError } from '../errors.js';
import type { MediaSummary } from '../protocol/types.js';
import { runTool, type RunOptions } from './run.js';

export interface ProbeStream {
  index: number;
  type: string;               // video | audio | data | subtitle | attachment
  codec?: string;
  width?: number;
  height?: number;
  fps?: number;
  sampleRate?: number;
  channels?: number;
  durationSeconds?: number;
}

export interface ProbeResult {
  formatName: string;
  durationSeconds?: number;
  startTimeSeconds?: number;
  sizeBytes?: number;
  bitRate?: number;
  streams: ProbeStream[];
}

interface RawStream {
  index: number; codec_type?: string; codec_name?: string; width?: number; height?: number;
  avg_frame_rate?: string; r_frame_rate?: string; sample_rate?: string; channels?: number; duration?: string;
}
interface RawProbe { format?: { format_name?: string; duration?: string; start_time?: string; size?: string; bit_rate?: string }; streams?: RawStream[] }

function num(text: string | undefined): number | undefined {
  if (text === undefined || text === 'N/A') return undefined;
  const value = Number(text);
  return Number.isFinite(value) ? value : undefined;
}

function rate(text: string | undefined): number | undefined {
  if (!text) return undefined;
  const [a, b] = text.split('/').map(Number);
  if (!a || !b) return undefined;
  return Math.round((a / b) * 1000) / 1000;
}

export async function probe(path: string, options: RunOptions = {}): Promise<ProbeResult> {
  const { stdout, stderrTail } = await runTool('ffprobe',
    ['-v', 'error', '-print_format', 'json', '-show_format', '-show_streams', path],
    { timeoutMs: 60_000, ...options });
  let raw: RawProbe;
  try {
    raw = JSON.parse(stdout.toString('utf8')) as RawProbe;
  } catch (cause) {
    throw new MediaError('E_MEDIA_PROBE', `ffprobe gave unreadable output for ${path}`, { cause, stderrTail });
  }
  if (!raw.format?.format_name || !raw.streams) {
    throw new MediaError('E_MEDIA_NOT_MEDIA', `ffprobe found no media format in ${path}`, { stderrTail });
  }
  return {
    formatName: raw.format.format_name,
    durationSeconds: num(raw.format.duration),
    startTimeSeconds: num(raw.format.start_time),
    sizeBytes: num(raw.format.size),
    bitRate: num(raw.format.bit_rate),
    streams: raw.streams.map((s) => ({
      index: s.index,
      type: s.codec_type ?? 'unknown',
      codec: s.codec_name,
      width: s.width,
      height: s.height,
      fps: s.codec_type === 'video' ? rate(s.avg_frame_rate) ?? rate(s.r_frame_rate) : undefined,
      sampleRate: num(s.sample_rate),
      channels: s.channels,
      durationSeconds: num(s.duration),
    })),
  };
}

/** The protocol's media summary of a probe. */
export function mediaSummary(result: ProbeResult): MediaSummary {
  return {
    container: result.formatName,
    durationSeconds: result.durationSeconds,
    startTimeSeconds: result.startTimeSeconds,
    streams: result.streams.map((s) => {
      const entry: MediaSummary['streams'][number] = { index: s.index, type: s.type };
      if (s.codec) entry.codec = s.codec;
      if (s.width) entry.width = s.width;
      if (s.height) entry.height = s.height;
      if (s.fps) entry.fps = s.fps;
      if (s.sampleRate) entry.sampleRate = s.sampleRate;
      if (s.channels) entry.channels = s.channels;
      return entry;
    }),
  };
}

/**
 * Decode every video frame (to nothing): the file plays to its end when this resolves (a fatal
 * decode error rejects). `seconds` is the last time ffmpeg reported, `stderr` its tail (warnings).
 */
export async function decodeVideo(path: string, options: RunOptions = {}): Promise<{ seconds: number; stderr: string }> {
  const { stderrTail } = await runTool('ffmpeg', ['-nostdin', '-v', 'info', '-stats', '-i', path, '-map', '0:v', '-f', 'null', '-'], options);
  const last = [...stderrTail.matchAll(/time=(\d+):(\d+):(\d+(?:\.\d+)?)/g)].at(-1);
  const seconds = last ? Number(last[1]) * 3600 + Number(last[2]) * 60 + Number(last[3]) : 0;
  return { seconds, stderr: stderrTail };
}
