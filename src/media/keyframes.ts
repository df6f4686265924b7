/**
 * The video keyframe index: byte position and time of every keyframe packet
 * of the first video stream. Parsed line by line as ffprobe streams it, so a
 * long recording does not need its whole packet list in memory at once.
 */
import { runTool, type RunOptions } from './run.js';

export interface Keyframe {
  /** Byte offset of the packet in the file (where a segment may be cut). */
  pos: number;
  /** Presentation time in seconds. */
  time: number;
}

export async function keyframeIndex(path: string, options: RunOptions = {}): Promise<Keyframe[]> {
  const keyframes: Keyframe[] = [];
  let pending = '';
  const takeLine = (line: string): void => {
    // csv=p=0 with entries pts_time,pos,flags
    const [ptsTime, pos, flags] = line.split(',');
    if (!flags || !flags.includes('K')) return;
    const position = Number(pos);
    const time = Number(ptsTime);
    if (Number.isFinite(position) && position >= 0 && Number.isFinite(time)) keyframes.push({ pos: position, time });
  };
  await runTool('ffprobe', [
    '-v', 'error', '-select_streams', 'v:0',
    '-show_entries', 'packet=pts_time,pos,flags', '-of', 'csv=p=0', path,
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
  return keyframes;
}
