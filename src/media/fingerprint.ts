/**
 * Media fingerprint: ffmpeg's hash muxer over the stream-copied packets of each
 * audio and video stream. Unlike the file's SHA-256 it survives a remux into
 * another MP4 layout (fragmented or not), so the content can be re-proved after
 * an evidence system converts the file. Each stream is hashed on its own:
 * one hash over all streams would depend on how the muxer interleaved them.
 *
 * Format: `sha256:v0=<hex>,a1=<hex>` (stream type initial + stream index).
 */
import { MediaError } from '../errors.js';
import { probe, type ProbeStream } from './probe.js';
import { runTool, type RunOptions } from './run.js';

export async function mediaFingerprint(path: string, options: RunOptions & { streams?: ProbeStream[] } = {}): Promise<string> {
  const streams = (options.streams ?? (await probe(path, options)).streams)
    .filter((s) => s.type === 'video' || s.type === 'audio');
  if (streams.length === 0) throw new MediaError('E_MEDIA_FINGERPRINT', `no audio or video stream to fingerprint in ${path}`);
  const args = ['-nostdin', '-v', 'error', '-i', path];
  // One output per stream, all to stdout: the hash muxer writes its line at the
  // trailer, and trailers are written in output order.
  for (const stream of streams) args.push('-map', `0:${stream.index}`, '-c', 'copy', '-f', 'hash', '-hash', 'sha256', '-');
  const { stdout, stderrTail } = await runTool('ffmpeg', args, { timeoutMs: 600_000, ...options });
  const digests = [...stdout.toString('utf8').matchAll(/SHA256=([0-9a-f]{64})/gi)].map((m) => m[1]!.toLowerCase());
  if (digests.length !== streams.length) {
    throw new MediaError('E_MEDIA_FINGERPRINT', `ffmpeg hash muxer gave ${digests.length} digests for ${streams.length} streams of ${path}`, { stderrTail });
  }
  return 'sha256:' + streams.map((s, i) => `${s.type[0]}${s.index}=${digests[i]}`).join(',');
}
