/** Helpers of the camera tests: probe, decode, hash. */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { probe, type ProbeResult } from '../../src/media/probe.js';
import { runTool } from '../../src/media/run.js';

/** ffprobe of any recording, MPEG-TS included (src/media guards the bundled build's TS crash). */
export function probeAny(path: string): Promise<ProbeResult> {
  return probe(path);
}

/** Decode every frame; returns the last decoded time reported by ffmpeg and its stderr. */
export async function decodeAll(path: string): Promise<{ seconds: number; stderr: string }> {
  const { stderrTail } = await runTool('ffmpeg', ['-nostdin', '-v', 'info', '-stats', '-i', path, '-map', '0:v', '-f', 'null', '-']);
  const times = [...stderrTail.matchAll(/time=(\d+):(\d+):(\d+(?:\.\d+)?)/g)];
  const last = times.at(-1);
  const seconds = last ? Number(last[1]) * 3600 + Number(last[2]) * 60 + Number(last[3]) : 0;
  return { seconds, stderr: stderrTail };
}

export function sha256Of(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}
