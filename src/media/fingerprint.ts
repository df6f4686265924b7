/**
 * Media fingerprint: ffmpeg's hash muxer over the stream-copied packets of each
 * audio and video stream. Unlike the file's SHA-256 it survives a remux into
 * another MP4 layout (fragmented or not), so the content can be re-proved after
 * an evidence system converts the file. Each stream is hashed on its own:
 * one hash over all streams would depend on how the muxer interleaved them.
 *
 * Per stream: every audio/video stream ffmpeg can read gets a hash; one it
 * cannot (an AAC stream with sample rate 0, a codec the build lacks) is named
 * with ffmpeg's words, and any other stream (data, subtitle, attachment) is
 * named as not fingerprinted. One bad stream never voids the others.
 *
 * Summary string: `sha256:v0=<hex>,a1=<hex>` over the streams that have a hash
 * (stream type initial + stream index); a stream missing from it is listed in
 * the per-stream list with its reason.
 */
import { MediaError } from '../errors.js';
import { probe, type ProbeStream } from './probe.js';
import { runTool, type RunOptions } from './run.js';

export type StreamFingerprint =
  | { index: number; type: string; codec?: string; hash: string }
  | { index: number; type: string; codec?: string; error: string };

export interface FingerprintResult {
  /** `sha256:v0=…,a1=…` over the fingerprinted streams; undefined when none could be. */
  summary?: string;
  streams: StreamFingerprint[];
}

type Stream = Pick<ProbeStream, 'index' | 'type' | 'codec'> & { sampleRate?: number };

async function hashStreams(path: string, streams: Stream[], options: RunOptions): Promise<string[]> {
  const args = ['-nostdin', '-v', 'error', '-i', path];
  // One output per stream, all to stdout: the hash muxer writes its line at the
  // trailer, and trailers are written in output order.
  for (const stream of streams) args.push('-map', `0:${stream.index}`, '-c', 'copy', '-f', 'hash', '-hash', 'sha256', '-');
  const { stdout, stderrTail } = await runTool('ffmpeg', args, { timeoutMs: 600_000, ...options });
  const digests = [...stdout.toString('utf8').matchAll(/SHA256=([0-9a-f]{64})/gi)].map((m) => m[1]!.toLowerCase());
  if (digests.length !== streams.length) {
    throw new MediaError('E_MEDIA_FINGERPRINT', `ffmpeg hash muxer gave ${digests.length} digests for ${streams.length} streams of ${path}`, { stderrTail });
  }
  return digests;
}

function reasonOf(error: unknown): string {
  const tail = (error as { stderrTail?: string }).stderrTail?.trim().split('\n').filter(Boolean).pop();
  return (tail || (error as Error).message || String(error)).slice(0, 300);
}

export async function streamFingerprints(path: string, options: RunOptions & { streams?: Stream[] } = {}): Promise<FingerprintResult> {
  const all = options.streams ?? (await probe(path, options)).streams;
  const out = new Map<number, StreamFingerprint>();
  const readable: Stream[] = [];
  for (const s of all) {
    if (s.type !== 'video' && s.type !== 'audio') out.set(s.index, notFingerprinted(s));
    else readable.push(s);
  }
  if (readable.length) {
    try {
      // The common case: one ffmpeg run for all streams.
      const digests = await hashStreams(path, readable, options);
      readable.forEach((s, i) => out.set(s.index, { index: s.index, type: s.type, codec: s.codec, hash: digests[i]! }));
    } catch (error) {
      if (options.signal?.aborted || (error as { code?: string }).code === 'E_MEDIA_SPAWN') throw error;
      // Something in there is unreadable: hash stream by stream and name the ones that fail.
      for (const s of readable) {
        try {
          const [digest] = await hashStreams(path, [s], options);
          out.set(s.index, { index: s.index, type: s.type, codec: s.codec, hash: digest! });
        } catch (one) {
          if (options.signal?.aborted) throw one;
          out.set(s.index, { index: s.index, type: s.type, codec: s.codec, error: reasonOf(one) });
        }
      }
    }
  }
  return resultOf(out);
}

function resultOf(out: Map<number, StreamFingerprint>): FingerprintResult {
  const streams = [...out.values()].sort((a, b) => a.index - b.index).map((s) => (s.codec === undefined ? (({ codec: _c, ...rest }) => rest)(s) as StreamFingerprint : s));
  const hashed = streams.filter((s): s is Extract<StreamFingerprint, { hash: string }> => 'hash' in s);
  return { summary: hashed.length ? 'sha256:' + hashed.map((s) => `${s.type[0]}${s.index}=${s.hash}`).join(',') : undefined, streams };
}

const notFingerprinted = (s: Stream): StreamFingerprint => ({ index: s.index, type: s.type, codec: s.codec, error: `${s.type} stream: not fingerprinted (audio and video only)` });

/**
 * The same result as streamFingerprints from digests computed elsewhere: an MP4's per-stream
 * SHA-256 over its samples (src/media/mp4Samples.ts, hashed in the dock's file read), which
 * is what the hash muxer digests. `digests[i]` belongs to `plan.streams[i]`.
 */
export function fingerprintFromSamples(plan: { streams: ReadonlyArray<Stream>; others: ReadonlyArray<Stream> }, digests: ReadonlyArray<string>): FingerprintResult {
  if (digests.length !== plan.streams.length) throw new MediaError('E_MEDIA_FINGERPRINT', `${digests.length} digests for ${plan.streams.length} streams`);
  const out = new Map<number, StreamFingerprint>();
  for (const s of plan.others) out.set(s.index, notFingerprinted(s));
  plan.streams.forEach((s, i) => out.set(s.index, { index: s.index, type: s.type, codec: s.codec, hash: digests[i]! }));
  return resultOf(out);
}

/** The summary string; throws when no audio/video stream could be fingerprinted. */
export async function mediaFingerprint(path: string, options: RunOptions & { streams?: Stream[] } = {}): Promise<string> {
  const result = await streamFingerprints(path, options);
  if (!result.summary) {
    const why = result.streams.map((s) => ('error' in s ? `${s.type}${s.index}: ${s.error}` : '')).filter(Boolean).join('; ');
    throw new MediaError('E_MEDIA_FINGERPRINT', `no audio or video stream to fingerprint in ${path}${why ? ` (${why})` : ''}`);
  }
  return result.summary;
}
