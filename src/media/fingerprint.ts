/**
 * Media fingerprint: ffmpeg's hash muxer over the stream-copied packets of all
 * streams. Unlike the file's SHA-256 it survives a remux into another
 * container, so the content can be re-proved after an evidence system converts it.
 */
import { MediaError } from '../errors.js';
import { runTool, type RunOptions } from './run.js';

export async function mediaFingerprint(path: string, options: RunOptions = {}): Promise<string> {
  const { stdout, stderrTail } = await runTool('ffmpeg', [
    '-nostdin', '-v', 'error', '-i', path, '-map', '0:v?', '-map', '0:a?', '-c', 'copy', '-f', 'hash', '-hash', 'sha256', '-',
  ], { timeoutMs: 600_000, ...options });
  const match = /SHA256=([0-9a-f]{64})/i.exec(stdout.toString('utf8'));
  if (!match) throw new MediaError('E_MEDIA_FINGERPRINT', `ffmpeg hash muxer gave no digest for ${path}`, { stderrTail });
  return `sha256:${match[1]!.toLowerCase()}`;
}
