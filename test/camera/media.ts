/**
 * Probing for the camera tests. The bundled ffprobe build crashes (SIGSEGV) on
 * any MPEG-TS input on this machine's CPU, while the bundled ffmpeg reads TS
 * fine: a .ts is remuxed by stream copy to MP4 first, which keeps its streams
 * and duration.
 */
import { createHash } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { probe, type ProbeResult } from '../../src/media/probe.js';
import { runTool } from '../../src/media/run.js';

export async function probeAny(path: string): Promise<ProbeResult> {
  if (!path.endsWith('.ts')) return probe(path);
  const copy = `${path}.probe.mp4`;
  try {
    await runTool('ffmpeg', ['-nostdin', '-v', 'error', '-y', '-i', path, '-map', '0', '-c', 'copy', '-f', 'mp4', copy]);
    return await probe(copy);
  } finally {
    rmSync(copy, { force: true });
  }
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
