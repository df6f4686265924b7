/**
 * Media fingerprint: ffmpeg's hash muxer over the stream-copied packets of each
 * audio and video stream. Unlike the file's SHA-256 it survives a remux into
 * another MP4 layout (fragmented or not), so the content can be re-proved after
 * an evidence system converts the file. Each stream is hashed on its own:
 * one hash over all streams would depend on how the muxer interleaved them.
 *
 * Format: `sha256:v0=<hex>,a1=<hex>` (stream type initial + stream index).
 *
 * The value is exactly what `ffmpeg -i F -map 0:N -c copy -f hash -hash sha256 -`
 * prints for each stream (the hash muxer digests the concatenated packet
 * payloads), and anyone can re-derive it that way. Computing it here, ffmpeg
 * stream-copies each stream's packets unchanged (`-f data`, no decoding, no
 * bitstream filter) into its own pipe and node's SHA-256 digests them: ffmpeg's
 * own SHA-256 is plain C, about 4x the CPU of OpenSSL's on this hardware, and
 * was most of the dock's fingerprint cost (docs/benchmarks.md, Dock offload).
 */
import { createHash } from 'node:crypto';
import { MediaError } from '../errors.js';
import { probe, type ProbeStream } from './probe.js';
import { runTool, type RunOptions } from './run.js';

export async function mediaFingerprint(path: string, options: RunOptions & { streams?: ProbeStream[] } = {}): Promise<string> {
  const streams = (options.streams ?? (await probe(path, options)).streams)
    .filter((s) => s.type === 'video' || s.type === 'audio');
  if (streams.length === 0) throw new MediaError('E_MEDIA_FINGERPRINT', `no audio or video stream to fingerprint in ${path}`);
  const args = ['-nostdin', '-v', 'error', '-i', path];
  // One output per stream, each to its own pipe: one hash per stream, whatever the interleaving.
  streams.forEach((stream, i) => args.push('-map', `0:${stream.index}`, '-c', 'copy', '-f', 'data', `pipe:${3 + i}`));
  const hashes = streams.map(() => createHash('sha256'));
  await runTool('ffmpeg', args, {
    timeoutMs: 600_000, ...options,
    extraOutputs: hashes.map((hash) => (chunk: Buffer) => { hash.update(chunk); }),
  });
  return 'sha256:' + streams.map((s, i) => `${s.type[0]}${s.index}=${hashes[i]!.digest('hex')}`).join(',');
}
