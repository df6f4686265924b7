/**
 * Each track's sample bytes of an MP4 / fragmented MP4, read from its sample
 * tables (moov stbl, then every moof's trun in file order): what ffmpeg's mov
 * demuxer hands the hash muxer on a stream copy, so that the media fingerprint
 * can be computed in the same read as the file hash instead of by ffmpeg.
 *
 * The hash muxer (libavformat/hashenc.c, per-stream "hash" format) updates each
 * stream's hash with pkt->data only, and it asks for no bitstream filter, so the
 * digest is SHA-256 over the concatenated samples in decode order whatever the
 * packet boundaries are. Where ffmpeg would hand over other bytes than "every
 * sample, in table order" this module refuses (returns a reason) and the caller
 * keeps ffmpeg: an edit list that drops samples, a first sample that is not a
 * keyframe (stream copy drops leading non-keyframes), zero-size or cut samples,
 * samples out of file order or overlapping, several sample descriptions, a codec
 * outside the proven list, a track count ffmpeg would not map 1:1 to streams.
 */
import { open } from 'node:fs/promises';
import { WindowReader } from '../util/chunkReader.js';

/** Sample entry → ffprobe codec name: the codecs whose equality with the hash muxer is proven (test/media/mp4Fingerprint.test.ts). */
const PROVEN_CODECS: Record<string, string> = { avc1: 'h264', avc3: 'h264', hvc1: 'hevc', hev1: 'hevc', mp4a: 'aac' };

/** A moov bigger than this is left to ffmpeg (an hour of 1080p30 with audio is ~3 MB). */
const MOOV_CAP = 64 * 1024 * 1024;
const MOOF_CAP = 16 * 1024 * 1024;

export interface Mp4Track {
  /** Position among the moov's trak boxes = ffmpeg's stream index. */
  index: number;
  trackId: number;
  handler: string;
  /** ffprobe's codec name for the proven sample entries; undefined for any other. */
  codec?: string;
  sampleEntry: string;
  /** Byte runs [offset, length, offset, length, …] in decode order, adjacent samples merged. */
  runs: number[];
  samples: number;
  /** Why ffmpeg's packets may differ from `runs` for this track (only audio/video tracks are checked). */
  problem?: string;
}

export type Mp4SampleTables = { ok: true; tracks: Mp4Track[] } | { ok: false; reason: string };

/** A box inside a buffer: header at `start`, payload from `body` to `end`. */
export interface Mp4Box { type: string; start: number; end: number; body: number }
type Box = Mp4Box;

/** The boxes in buf[start, end), stopping at the first that does not fit. */
export function childBoxes(buf: Buffer, start: number, end: number): Box[] {
  const out: Box[] = [];
  let pos = start;
  while (pos + 8 <= end) {
    let size = buf.readUInt32BE(pos);
    const type = buf.toString('latin1', pos + 4, pos + 8);
    let header = 8;
    if (size === 1 && pos + 16 <= end) { size = Number(buf.readBigUInt64BE(pos + 8)); header = 16; }
    if (size === 0) size = end - pos;
    if (size < header || pos + size > end) break;
    out.push({ type, start: pos, end: pos + size, body: pos + header });
    pos += size;
  }
  return out;
}

const child = (buf: Buffer, box: Box | undefined, type: string): Box | undefined => (box ? childBoxes(buf, box.body, box.end).find((c) => c.type === type) : undefined);
const path = (buf: Buffer, box: Box | undefined, ...types: string[]): Box | undefined => types.reduce<Box | undefined>((b, t) => child(buf, b, t), box);

interface TopBox { type: string; offset: number; size: number }

/** The top-level boxes in order; `onBox` sees each as it is found (its bytes are then in the reader's window). */
async function topBoxes(file: WindowReader, fileSize: number, onBox?: (box: TopBox) => Promise<void>): Promise<TopBox[] | string> {
  const boxes: TopBox[] = [];
  let offset = 0;
  while (offset < fileSize) {
    if (offset + 8 > fileSize) return `${fileSize - offset} stray bytes at the end`;
    const header = await file.read(offset, 16);
    let size = header.readUInt32BE(0);
    const type = header.toString('latin1', 4, 8);
    let headerSize = 8;
    if (size === 1) { if (header.length < 16) return 'cut box header'; size = Number(header.readBigUInt64BE(8)); headerSize = 16; }
    else if (size === 0) size = fileSize - offset;
    if (size < headerSize || !/^[A-Za-z0-9 ©_-]{4}$/.test(type)) return `unreadable box header at byte ${offset}`;
    if (offset + size > fileSize) return `box ${type} at byte ${offset} is cut short`;
    const box = { type, offset, size };
    boxes.push(box);
    await onBox?.(box);
    offset += size;
  }
  return boxes;
}

class RunBuilder {
  runs: number[] = [];
  samples = 0;
  zeroSize = false;
  push(offset: number, length: number): void {
    this.samples++;
    if (length === 0) { this.zeroSize = true; return; }
    const n = this.runs.length;
    if (n && this.runs[n - 2]! + this.runs[n - 1]! === offset) this.runs[n - 1]! += length;
    else this.runs.push(offset, length);
  }
}

interface TrackState {
  track: Mp4Track; builder: RunBuilder; firstSyncKnown?: boolean; trex?: { size: number; flags: number };
  editEnd?: { editEnd: number; mediaDuration: number; slack: number }; mediaTime?: number;
}

function u32(buf: Buffer, at: number): number { return buf.readUInt32BE(at); }

/** Sample-table runs of a moov trak, plus the checks that only moov can answer. */
function moovTrack(moov: Buffer, trak: Box, index: number, state: Partial<TrackState>, fileSize: number): TrackState {
  const tkhd = child(moov, trak, 'tkhd');
  const trackId = tkhd ? u32(moov, tkhd.body + 4 + (moov[tkhd.body] === 1 ? 16 : 8)) : 0;
  const hdlr = path(moov, trak, 'mdia', 'hdlr');
  const handler = hdlr ? moov.toString('latin1', hdlr.body + 8, hdlr.body + 12) : '';
  const stbl = path(moov, trak, 'mdia', 'minf', 'stbl');
  const stsd = child(moov, stbl, 'stsd');
  const entries = stsd ? u32(moov, stsd.body + 4) : 0;
  const sampleEntry = stsd && entries >= 1 ? moov.toString('latin1', stsd.body + 12, stsd.body + 16) : '';
  const track: Mp4Track = { index, trackId, handler, codec: PROVEN_CODECS[sampleEntry], sampleEntry, runs: [], samples: 0 };
  const builder = new RunBuilder();
  const problems: string[] = [];
  if (entries !== 1) problems.push(`${entries} sample descriptions`);
  if (!track.codec) problems.push(`sample entry ${JSON.stringify(sampleEntry)} not proven equal to ffmpeg's packets`);

  // Edit list: one edit (after any empty ones) at rate 1 that runs to the end keeps every sample
  // (mov_fix_index keeps the keyframe at the edit start); anything else may drop samples.
  const elst = path(moov, trak, 'edts', 'elst');
  if (elst) {
    const version = moov[elst.body]!;
    const count = u32(moov, elst.body + 4);
    const stride = version === 1 ? 20 : 12;
    const edits: Array<{ duration: number; mediaTime: number; rate: number }> = [];
    for (let i = 0, p = elst.body + 8; i < count && p + stride <= elst.end; i++, p += stride) {
      const duration = version === 1 ? Number(moov.readBigUInt64BE(p)) : u32(moov, p);
      const mediaTime = version === 1 ? Number(moov.readBigInt64BE(p + 8)) : moov.readInt32BE(p + 4);
      edits.push({ duration, mediaTime, rate: moov.readInt16BE(p + stride - 4) });
    }
    const real = edits.filter((e) => e.mediaTime !== -1);
    const emptyFirst = edits.slice(0, edits.length - real.length).every((e) => e.mediaTime === -1);
    if (real.length > 1 || !emptyFirst || real.some((e) => e.rate !== 1)) problems.push('edit list with more than one edit');
    else if (real[0]) {
      // The edit must run to the media's end (ffmpeg drops samples past it); fragmented files carry
      // duration 0 or the moov-time length, which does not bound the fragments ffmpeg reads.
      const mvhd = child(moov, { type: 'moov', start: 0, end: moov.length, body: 8 }, 'mvhd');
      const mdhd = path(moov, trak, 'mdia', 'mdhd');
      if (mvhd && mdhd && real[0].duration !== 0) {
        const movieScale = u32(moov, mvhd.body + 4 + (moov[mvhd.body] === 1 ? 16 : 8));
        const v1 = moov[mdhd.body] === 1;
        const mediaScale = u32(moov, mdhd.body + 4 + (v1 ? 16 : 8));
        const mediaDuration = v1 ? Number(moov.readBigUInt64BE(mdhd.body + 24)) : u32(moov, mdhd.body + 16);
        const editEnd = real[0].mediaTime + (real[0].duration * mediaScale) / movieScale;
        // 10 ms of rounding slack: every audio/video sample lasts longer than that.
        state.editEnd = { editEnd, mediaDuration, slack: mediaScale / 100 };
      }
      state.mediaTime = real[0].mediaTime;
    }
  }
  // An edit that starts late: mov_fix_index starts the track at the last keyframe at or before the
  // edit start (for audio, one second before it) and drops every sample ahead of that keyframe
  // (samples after it that are before the edit start are kept, marked discard, and stream copy
  // passes them on). All samples stay only when that keyframe is the first sample.
  const mediaTime = state.mediaTime ?? 0;
  if (mediaTime > 0) {
    const mdhd = path(moov, trak, 'mdia', 'mdhd');
    const mediaScale = mdhd ? u32(moov, mdhd.body + 4 + (moov[mdhd.body] === 1 ? 16 : 8)) : 0;
    const stts = child(moov, path(moov, trak, 'mdia', 'minf', 'stbl'), 'stts');
    const stssBox = child(moov, path(moov, trak, 'mdia', 'minf', 'stbl'), 'stss');
    const search = handler === 'soun' ? mediaTime - mediaScale : mediaTime;
    if (search > 0) {
      // dts of the second keyframe (every sample is one without stss).
      const second = stssBox ? (u32(moov, stssBox.body + 4) >= 2 ? u32(moov, stssBox.body + 12) : undefined) : 2;
      let dts: number | undefined;
      if (second !== undefined && stts) {
        let sample = 1;
        dts = 0;
        for (let e = 0, n = u32(moov, stts.body + 4); e < n && sample < second; e++) {
          const count = u32(moov, stts.body + 8 + e * 8);
          const delta = u32(moov, stts.body + 12 + e * 8);
          const take = Math.min(count, second - sample);
          dts += take * delta;
          sample += take;
        }
        if (sample < second) dts = undefined;
      }
      const fragmentedOnly = !stts || u32(moov, stts.body + 4) === 0;
      if (fragmentedOnly) problems.push(`edit list starts at media time ${mediaTime} in a fragmented track`);
      else if (second !== undefined && (dts === undefined || dts <= search)) problems.push(`edit list starts at media time ${mediaTime}, after the second keyframe: ffmpeg drops the samples before it`);
    }
  }

  const stsz = child(moov, stbl, 'stsz');
  const stco = child(moov, stbl, 'stco') ?? child(moov, stbl, 'co64');
  const stsc = child(moov, stbl, 'stsc');
  const stss = child(moov, stbl, 'stss');
  if (!stsz) problems.push(child(moov, stbl, 'stz2') ? 'compact sample sizes (stz2)' : 'no sample size table');
  if (stsz && stco && stsc) {
    const fixed = u32(moov, stsz.body + 4);
    let sampleCount = u32(moov, stsz.body + 8);
    const co64 = stco.type === 'co64';
    const chunkCount = u32(moov, stco.body + 4);
    const stscCount = u32(moov, stsc.body + 4);
    let sample = 0;
    // Hostile counts would spin here for minutes: a table cannot hold more than the file does.
    if ((fixed ? fixed * sampleCount > fileSize : 12 + sampleCount * 4 > stsz.end - stsz.body) || 8 + chunkCount * (co64 ? 8 : 4) > stco.end - stco.body || 8 + stscCount * 12 > stsc.end - stsc.body) {
      problems.push('sample table larger than the file');
      sample = sampleCount = 0;
    }
    for (let e = 0; e < stscCount && sample < sampleCount; e++) {
      const firstChunk = u32(moov, stsc.body + 8 + e * 12);
      const perChunk = u32(moov, stsc.body + 12 + e * 12);
      const nextFirst = e + 1 < stscCount ? u32(moov, stsc.body + 8 + (e + 1) * 12) : chunkCount + 1;
      for (let c = firstChunk; c < nextFirst && c <= chunkCount && sample < sampleCount; c++) {
        let offset = co64 ? Number(moov.readBigUInt64BE(stco.body + 8 + (c - 1) * 8)) : u32(moov, stco.body + 8 + (c - 1) * 4);
        for (let k = 0; k < perChunk && sample < sampleCount; k++, sample++) {
          const size = fixed || u32(moov, stsz.body + 12 + sample * 4);
          builder.push(offset, size);
          offset += size;
        }
      }
    }
    if (sample !== sampleCount) problems.push(`sample table maps ${sample} of ${sampleCount} samples to chunks`);
    if (sampleCount > 0 && stss && (u32(moov, stss.body + 4) === 0 || u32(moov, stss.body + 8) !== 1)) problems.push('first sample is not a keyframe');
    if (sampleCount > 0) state.firstSyncKnown = true;
  } else if (stsz && u32(moov, stsz.body + 8) > 0) problems.push('sample table without chunk offsets');
  if (problems.length) track.problem = problems.join('; ');
  return { ...state, track, builder } as TrackState;
}

/** Append one moof's samples to the tracks' runs. */
function moofSamples(moof: Buffer, moofOffset: number, byId: Map<number, TrackState>): string | undefined {
  let implicitBase = moofOffset;
  for (const traf of childBoxes(moof, 8, moof.length).filter((c) => c.type === 'traf')) {
    const tfhd = child(moof, traf, 'tfhd');
    if (!tfhd) return 'traf without tfhd';
    const flags = u32(moof, tfhd.body) & 0xffffff;
    const state = byId.get(u32(moof, tfhd.body + 4));
    if (!state) return `fragment of unknown track ${u32(moof, tfhd.body + 4)}`;
    let p = tfhd.body + 8;
    let base = flags & 0x020000 ? moofOffset : implicitBase;
    if (flags & 0x01) { base = Number(moof.readBigUInt64BE(p)); p += 8; }
    if (flags & 0x02) p += 4;
    if (flags & 0x08) p += 4;
    const defaultSize = flags & 0x10 ? u32(moof, (p += 4) - 4) : state.trex?.size ?? 0;
    const defaultFlags = flags & 0x20 ? u32(moof, p) : state.trex?.flags ?? 0;
    let next = base;
    for (const trun of childBoxes(moof, traf.body, traf.end).filter((c) => c.type === 'trun')) {
      const tflags = u32(moof, trun.body) & 0xffffff;
      const count = u32(moof, trun.body + 4);
      let q = trun.body + 8;
      if (tflags & 0x01) { next = base + moof.readInt32BE(q); q += 4; }
      let firstFlags: number | undefined;
      if (tflags & 0x04) { firstFlags = u32(moof, q); q += 4; }
      const stride = [0x100, 0x200, 0x400, 0x800].filter((f) => tflags & f).length * 4;
      if (q + stride * count > trun.end) return 'trun shorter than its sample count';
      if (count > 10_000_000) return `trun of ${count} samples`;
      for (let i = 0; i < count; i++) {
        if (tflags & 0x100) q += 4;
        const size = tflags & 0x200 ? u32(moof, (q += 4) - 4) : defaultSize;
        const sampleFlags = tflags & 0x400 ? u32(moof, (q += 4) - 4) : i === 0 && firstFlags !== undefined ? firstFlags : defaultFlags;
        if (tflags & 0x800) q += 4;
        if (!state.firstSyncKnown) {
          state.firstSyncKnown = true;
          if (sampleFlags & 0x10000) state.track.problem ??= 'first sample is not a keyframe';
        }
        state.builder.push(next, size);
        next += size;
      }
    }
    implicitBase = next;
  }
  return undefined;
}

/** The sample runs of every track of `filePath`, or why they cannot stand for ffmpeg's packets. */
export async function mp4SampleTables(filePath: string): Promise<Mp4SampleTables> {
  const handle = await open(filePath, 'r');
  try {
    const file = new WindowReader(handle);
    const size = (await handle.stat()).size;
    // A moof is read as the walk reaches it (one read gives its header, its bytes and the mdat
    // header after it) once the moov before it is parsed; a file with a moof before its moov has
    // its moofs read after the walk, in file order.
    let tables: { states: TrackState[]; byId: Map<number, TrackState> } | string | undefined;
    let streamed = true;
    let moofWhy: string | undefined;
    const parseMoov = async (box: TopBox): Promise<void> => {
      if (box.size > MOOV_CAP) { tables = 'moov larger than 64 MiB'; return; }
      const moov = await file.read(box.offset, box.size);
      const moovBox: Box = { type: 'moov', start: 0, end: moov.length, body: 8 };
      const trex = new Map<number, { size: number; flags: number }>();
      for (const t of childBoxes(moov, path(moov, moovBox, 'mvex')?.body ?? 0, path(moov, moovBox, 'mvex')?.end ?? 0).filter((c) => c.type === 'trex')) {
        trex.set(u32(moov, t.body + 4), { size: u32(moov, t.body + 16), flags: u32(moov, t.body + 20) });
      }
      const states = childBoxes(moov, 8, moov.length).filter((c) => c.type === 'trak')
        .map((trak, index) => moovTrack(moov, trak, index, {}, size))
        .map((s) => ({ ...s, trex: trex.get(s.track.trackId) }));
      const byId = new Map(states.map((s) => [s.track.trackId, s]));
      tables = byId.size !== states.length ? 'two tracks with one track id' : { states, byId };
    };
    const readMoof = async (box: TopBox, byId: Map<number, TrackState>): Promise<void> => {
      if (moofWhy) return;
      if (box.size > MOOF_CAP) { moofWhy = 'moof larger than 16 MiB'; return; }
      moofWhy = moofSamples(await file.read(box.offset, box.size), box.offset, byId);
    };
    const boxes = await topBoxes(file, size, async (box) => {
      if (box.type === 'moov' && tables === undefined) await parseMoov(box);
      else if (box.type === 'moof') {
        if (tables === undefined) streamed = false;
        else if (streamed && typeof tables !== 'string') await readMoof(box, tables.byId);
      }
    });
    if (typeof boxes === 'string') return { ok: false, reason: boxes };
    const moovs = boxes.filter((b) => b.type === 'moov');
    if (moovs.length !== 1) return { ok: false, reason: `${moovs.length} moov boxes` };
    const parsed = tables as typeof tables;
    if (typeof parsed !== 'object') return { ok: false, reason: parsed ?? 'moov not read' };
    const { states, byId } = parsed;
    const fragmented = boxes.some((b) => b.type === 'moof');
    if (!streamed) for (const box of boxes.filter((b) => b.type === 'moof')) await readMoof(box, byId);
    if (moofWhy) return { ok: false, reason: moofWhy };
    for (const s of states) {
      const { track, builder } = s;
      track.runs = builder.runs;
      track.samples = builder.samples;
      if (builder.zeroSize) track.problem ??= 'zero-size samples';
      // An edit of fixed length: ffmpeg drops the samples past it unless it is a fragmented file
      // (whose moov-time durations do not bound the fragments ffmpeg reads).
      if (s.editEnd && !fragmented && s.editEnd.editEnd + s.editEnd.slack < s.editEnd.mediaDuration) track.problem ??= 'edit list ends before the media does';
      for (let i = 0; i < track.runs.length; i += 2) {
        if (track.runs[i]! + track.runs[i + 1]! > size) { track.problem ??= 'samples past the end of the file'; break; }
        if (i >= 2 && track.runs[i]! < track.runs[i - 2]! + track.runs[i - 1]!) { track.problem ??= 'samples out of file order'; break; }
      }
    }
    return { ok: true, tracks: states.map((s) => s.track) };
  } finally {
    await handle.close();
  }
}

/** One audio/video stream to hash from the file's bytes: its runs in decode order. */
export interface StreamRuns { index: number; type: string; codec?: string; runs: number[] }

export type StreamPlan = { ok: true; streams: StreamRuns[]; others: Array<{ index: number; type: string; codec?: string }> } | { ok: false; reason: string };

type ProbedStream = { index: number; type: string; codec?: string; width?: number; height?: number; sampleRate?: number };

/**
 * Which streams' fingerprints the sample tables give, matched to ffprobe's streams.
 * All or nothing: one audio/video stream that cannot be proven leaves the whole file to ffmpeg
 * (one ffmpeg run costs the same for one stream as for all, near enough).
 */
export async function mp4StreamPlan(filePath: string, probed: ReadonlyArray<ProbedStream>): Promise<StreamPlan> {
  const tables = await mp4SampleTables(filePath);
  if (!tables.ok) return tables;
  if (tables.tracks.length !== probed.length) return { ok: false, reason: `${tables.tracks.length} tracks but ${probed.length} streams` };
  const streams: StreamRuns[] = [];
  const others: ProbedStream[] = [];
  for (const s of [...probed].sort((a, b) => a.index - b.index)) {
    const track = tables.tracks[s.index];
    if (!track) return { ok: false, reason: `stream ${s.index} has no track` };
    if (s.type !== 'video' && s.type !== 'audio') { others.push(s); continue; }
    const handler = s.type === 'video' ? 'vide' : 'soun';
    if (track.handler !== handler) return { ok: false, reason: `stream ${s.index} is ${s.type} but track handler is ${JSON.stringify(track.handler)}` };
    if (track.codec !== s.codec) return { ok: false, reason: `stream ${s.index}: ffprobe says ${s.codec}, sample entry ${track.sampleEntry}` };
    // ffmpeg refuses to write such a stream (sample rate / dimensions not set): it has no hash there.
    if (s.type === 'audio' ? !(s.sampleRate! > 0) : !(s.width! > 0 && s.height! > 0)) return { ok: false, reason: `stream ${s.index}: ffprobe gives no ${s.type === 'audio' ? 'sample rate' : 'dimensions'}` };
    if (track.problem) return { ok: false, reason: `stream ${s.index}: ${track.problem}` };
    if (!track.runs.length) return { ok: false, reason: `stream ${s.index} has no samples` };
    streams.push({ index: s.index, type: s.type, codec: s.codec, runs: track.runs });
  }
  const merged = interleavedRuns(streams.map((s) => s.runs));
  if (!merged) return { ok: false, reason: 'two tracks share sample bytes' };
  return { ok: true, streams, others };
}

/**
 * All streams' runs as one list in file order, [offset, length, stream slot, …], for a
 * single sequential read; undefined when two runs overlap (each track's runs are already
 * in file order, checked by mp4SampleTables).
 */
export function interleavedRuns(perStream: ReadonlyArray<ReadonlyArray<number>>): number[] | undefined {
  const all: Array<[number, number, number]> = [];
  perStream.forEach((runs, slot) => { for (let i = 0; i < runs.length; i += 2) all.push([runs[i]!, runs[i + 1]!, slot]); });
  all.sort((a, b) => a[0] - b[0]);
  const out: number[] = [];
  let end = 0;
  for (const [offset, length, slot] of all) {
    if (offset < end) return undefined;
    out.push(offset, length, slot);
    end = offset + length;
  }
  return out;
}
