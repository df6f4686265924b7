/** Helpers of the camera tests: probe, decode, hash. */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { decodeVideo, probe, type ProbeResult } from '../../src/media/probe.js';

/** ffprobe of any recording, MPEG-TS included (src/media guards the bundled build's TS crash). */
export function probeAny(path: string): Promise<ProbeResult> {
  return probe(path);
}

/** Decode every frame (src/media): the last decoded time ffmpeg reported, and its stderr. */
export const decodeAll = decodeVideo;

export function sha256Of(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}
