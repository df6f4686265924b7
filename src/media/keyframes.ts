/**
 * The video keyframe index: byte position and presentation time of every
 * keyframe packet of the first video stream, plus the stream's first and last
 * presentation times (the clock the dock's segment times count from). Parsed
 * line by line as ffprobe streams it, so a long recording does not need its
 * whole packet list in memory at once.
 */
import { runTool, type RunOptions } from './run.js';

export interface Keyframe {
  /** Byte offset of the packet in the file (where a segment may be cut). */
  pos: number;
  /** Presentation time in seconds (container clock, 33-bit wraps unwrapped). */
  time: number;
}

export interface VideoTimeline {
  keyframes: Keyframe[];
  /** Earliest presentation time of any video packet: the file's first frame. */
  firstTime?: number;
  /** Latest presentation time + that packet's duration: the end of the last frame. */
  endTime?: number;
  /** Video packets seen (0: no video stream, or one ffprobe cannot read). */
  packets: number;
}

/** MPEG-TS timestamps are 33 bits of 90 kHz: they wrap every 95443.7 s. */
const TS_WRAP_SECONDS = 2 ** 33 / 90_000;

export async function videoTimeline(path: string, options: RunOptions = {}): Promise<VideoTimeline> {
  const keyframes: Keyframe[] = [];
  let firstTime: number | undefined;
  let endTime: number | undefined;
  let packets = 0;
  let lastRaw: number | undefined;
  let wraps = 0;
  let pending = '';
  const takeLine = (line: string): void => {
    // compact=p=0 with keys: pts_time=…|duration_time=…|pos=…|flags=…
    if (!line) return;
    let ptsText: string | undefined; let durText: string | undefined; let posText: string | undefined; let flags = '';
    for (const field of line.split('|')) {
      const eq = field.indexOf('=');
      const key = field.slice(0, eq);
      const value = field.slice(eq + 1);
      if (key === 'pts_time') ptsText = value;
      else if (key === 'duration_time') durText = value;
      else if (key === 'pos') posText = value;
      else if (key === 'flags') flags = value;
    }
    const raw = Number(ptsText);
    if (ptsText === undefined || ptsText === 'N/A' || !Number.isFinite(raw)) return;
    packets++;
    // A jump back of more than half the 33-bit range is a wrap, not a reorder.
    if (lastRaw !== undefined && raw < lastRaw - TS_WRAP_SECONDS / 2) wraps++;
    else if (lastRaw !== undefined && raw > lastRaw + TS_WRAP_SECONDS / 2 && wraps > 0) wraps--;
    lastRaw = raw;
    const time = raw + wraps * TS_WRAP_SECONDS;
    const duration = Number(durText);
    const end = time + (Number.isFinite(duration) && duration > 0 ? duration : 0);
    if (firstTime === undefined || time < firstTime) firstTime = time;
    if (endTime === undefined || end > endTime) endTime = end;
    if (!flags.includes('K')) return;
    const position = Number(posText);
    if (Number.isFinite(position) && position >= 0) keyframes.push({ pos: position, time });
  };
  await runTool('ffprobe', [
    '-v', 'error', '-select_streams', 'v:0',
    '-show_entries', 'packet=pts_time,duration_time,pos,flags', '-of', 'compact=p=0', path,
  ], {
    timeoutMs: 300_000,
    ...options,
    onStdout: (chunk) => {
      pending += chunk.toString('utf8');
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) takeLine(line.trim());
    },
  });
  if (pending.trim()) takeLine(pending.trim());
  return { keyframes, firstTime, endTime, packets };
}

export async function keyframeIndex(path: string, options: RunOptions = {}): Promise<Keyframe[]> {
  return (await videoTimeline(path, options)).keyframes;
}

/** One video packet as ffprobe lists it: presentation time, byte position, keyframe or not. */
export interface VideoPacket { pts: number; pos: number; key: boolean }

/**
 * Every packet of the first video stream (or only the first, `firstOnly`), in file order: the
 * corpus check compares a cut's first packet with the packets of the whole file.
 */
export async function videoPackets(path: string, options: RunOptions & { firstOnly?: boolean } = {}): Promise<VideoPacket[]> {
  const { firstOnly, ...run } = options;
  const { stdout } = await runTool('ffprobe', ['-v', 'error', '-select_streams', 'v:0', ...(firstOnly ? ['-read_intervals', '%+#1'] : []),
    '-show_entries', 'packet=pts_time,pos,flags', '-of', 'json', path], { timeoutMs: firstOnly ? 60_000 : 300_000, maxStdoutBytes: 512 * 1024 * 1024, ...run });
  const raw = JSON.parse(stdout.toString('utf8')) as { packets?: Array<{ pts_time?: string; pos?: string; flags?: string }> };
  const packets = (raw.packets ?? []).map((p) => ({ pts: Number(p.pts_time), pos: Number(p.pos), key: (p.flags ?? '').includes('K') }));
  return firstOnly ? packets.slice(0, 1) : packets.filter((p) => Number.isFinite(p.pts));
}
