/**
 * A poster frame (JPEG) of a recording the browser cannot play (HEVC in Chromium, M2TS): the first
 * video frame, decoded by ffmpeg from a file holding the recording's first bytes. Only for show:
 * the evidence itself is always served as its original bytes.
 */
import { runTool } from './run.js';

export async function posterFrame(inputPath: string, options: { timeoutMs?: number; width?: number } = {}): Promise<Buffer> {
  const width = options.width ?? 640;
  const { stdout } = await runTool('ffmpeg', [
    '-v', 'error', '-nostdin', '-i', inputPath, '-map', '0:v:0', '-frames:v', '1',
    '-vf', `scale='min(${width},iw)':-2`, '-f', 'image2', '-c:v', 'mjpeg', '-q:v', '4', 'pipe:1',
  ], { timeoutMs: options.timeoutMs ?? 20_000, maxStdoutBytes: 8 * 1024 * 1024 });
  return stdout;
}
