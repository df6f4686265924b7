/**
 * The corpus check (`npm run corpus [DIR]`, test/media/corpus.test.ts): run the dock's
 * probe → plan → hash → fingerprint over every file under a folder, upload each to a real
 * ingest server, read it back, and check every cut the plan made by re-probing it:
 *
 * - fMP4: every segment but the first starts at a fragment (moof, or the styp/sidx/prft/emsg
 *   in front of it); TS/M2TS: every segment starts at a packet start on the detected grid
 *   (for 192-byte M2TS, the 4-byte timestamp prefix), with the sync byte where it belongs.
 * - Where a segment claims a startTime: the segment's bytes, probed on their own by ffprobe
 *   (for fMP4 behind the file's ftyp+moov, for TS behind the file's PAT/PMT), start with a
 *   video keyframe, and ffprobe's packet list of the whole file has a keyframe at that place
 *   whose presentation time, counted from the file's first video frame, is that startTime.
 * - Segment times never go back and the last end is the end of the video, not the container's.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, openSync, readSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { streamFingerprints } from '../media/fingerprint.js';
import { probe, mediaSummary } from '../media/probe.js';
import { videoPackets, type VideoPacket } from '../media/keyframes.js';
import { formatDigestHeader, sha256Hex } from '../protocol/digest.js';
import { merkleRoot } from '../protocol/merkle.js';
import { generateSigningKeyPair, signObject, verifyObject, type KeyPairPem } from '../protocol/signing.js';
import { PROTOCOL_VERSION, type Receipt, type RecordingListEntry, type RecordingManifest, type SegmentPlanEntry } from '../protocol/types.js';
import { streamLogger } from '../log.js';
import { loadDockConfig } from './config.js';
import { hashFile } from './hasher.js';
import { isFlagged } from './integrity.js';
import { runOnce } from './index.js';
import { detectTsLayoutIn, planSegments, type SegmentPlan } from './planner.js';

export interface CorpusServer { url: string; token: string; publicKeyPem: string; dockId: string }

export interface CorpusOptions {
  segmentSeconds: number;
  maxBytes: number;
  server?: CorpusServer;
  /** Compute the per-stream media fingerprints (the dock's default). */
  fingerprint?: boolean;
}

export interface CorpusRow {
  file: string;
  size: number;
  container: string;
  kind: SegmentPlan['kind'];
  packetSize?: number;
  segments: number;
  timedSegments: number;
  planMs: number;
  /** The server signed a receipt for it (undefined: no server). */
  arrived?: boolean;
  /** The server's bytes hash to the file's SHA-256. */
  byteExact?: boolean;
  /** Cuts checked and the problems found (empty = every cut is right). */
  cutsChecked: number;
  cutProblems: string[];
  /** Cuts that are as good as the file allows but not at a media boundary (a cap inside one huge fragment). */
  cutNotes: string[];
  flags: string[];
  lastEndTime?: number;
  containerDuration?: number;
}

type Packet = VideoPacket;

function readRange(path: string, offset: number, length: number): Buffer {
  const fd = openSync(path, 'r');
  try {
    const buffer = Buffer.alloc(length);
    const n = readSync(fd, buffer, 0, length, offset);
    return buffer.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

function boxAt(path: string, offset: number): string {
  return readRange(path, offset, 8).toString('latin1', 4, 8);
}

/** PAT and PMT packets from the head of a TS, to put in front of a segment probed on its own. */
function tsTables(head: Buffer, packetSize: number, syncOffset: number, firstPacket: number): Buffer {
  const out: Buffer[] = [];
  let pmtPids = new Set<number>();
  for (let p = firstPacket; p + packetSize <= head.length; p += packetSize) {
    const q = p + syncOffset;
    if (head[q] !== 0x47 || !(head[q + 1]! & 0x40)) continue;
    const pid = ((head[q + 1]! & 0x1f) << 8) | head[q + 2]!;
    const afc = (head[q + 3]! >> 4) & 3;
    let payload = q + 4 + (afc & 2 ? 1 + head[q + 4]! : 0);
    payload += 1 + head[payload]!; // pointer field
    const table = head[payload];
    if (pid === 0 && table === 0x00) {
      const sectionLength = ((head[payload + 1]! & 0x0f) << 8) | head[payload + 2]!;
      const pids = new Set<number>();
      for (let e = payload + 8; e + 4 <= payload + 3 + sectionLength - 4; e += 4) {
        if (head.readUInt16BE(e) !== 0) pids.add(((head[e + 2]! & 0x1f) << 8) | head[e + 3]!);
      }
      pmtPids = pids;
      out.push(head.subarray(p, p + packetSize));
    } else if (table === 0x02 && pmtPids.has(pid)) {
      out.push(head.subarray(p, p + packetSize));
      if (out.length >= 2) break;
    }
  }
  return Buffer.concat(out);
}

async function firstVideoPacketOf(bytes: Buffer, ext: string): Promise<Packet | undefined> {
  const dir = mkdtempSync(join(tmpdir(), 'bodycam-corpus-cut-'));
  try {
    const file = join(dir, `cut${ext}`);
    writeFileSync(file, bytes);
    return (await videoPackets(file, { firstOnly: true }))[0];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const near = (a: number, b: number): boolean => Math.abs(a - b) <= 0.0015;

/** Check every cut of a plan against the bytes and against ffprobe. */
export async function checkCuts(path: string, size: number, plan: SegmentPlan, segments: Array<{ index: number; offset: number; length: number; startTime?: number; endTime?: number }>): Promise<{ checked: number; problems: string[]; notes: string[] }> {
  const problems: string[] = [];
  const notes: string[] = [];
  let checked = 0;
  if (plan.kind !== 'fmp4' && plan.kind !== 'mpegts') return { checked, problems, notes };
  const packets = segments.some((s) => s.startTime !== undefined) ? await videoPackets(path) : [];
  const origin = packets.length ? Math.min(...packets.map((p) => p.pts)) : undefined;
  const head = readRange(path, 0, Math.min(size, 64 * 1024));
  const layout = plan.kind === 'mpegts' ? detectTsLayoutIn(head) : undefined;
  const tables = layout ? tsTables(head, layout.packetSize, layout.syncOffset, layout.firstPacket) : Buffer.alloc(0);
  const firstCut = segments[1]?.offset ?? size;
  const fmp4Header = plan.kind === 'fmp4' ? (() => {
    // ftyp+moov: the top-level boxes before the first fragment.
    let end = 0;
    while (end + 8 <= size) {
      const type = boxAt(path, end);
      if (['moof', 'styp', 'sidx', 'prft', 'emsg'].includes(type)) break;
      const sz = readRange(path, end, 8).readUInt32BE(0);
      if (sz < 8) break;
      end += sz;
    }
    return readRange(path, 0, Math.min(end, firstCut));
  })() : Buffer.alloc(0);
  const boxes: Array<{ type: string; offset: number; size: number }> = [];
  if (plan.kind === 'fmp4') {
    for (let at = 0; at + 8 <= size;) {
      const header = readRange(path, at, 16);
      let sz = header.readUInt32BE(0);
      if (sz === 1 && header.length >= 16) sz = Number(header.readBigUInt64BE(8));
      if (sz === 0) sz = size - at;
      if (sz < 8) break;
      boxes.push({ type: header.toString('latin1', 4, 8), offset: at, size: sz });
      at += sz;
    }
  }
  let lastStart = -Infinity;
  for (const s of segments) {
    checked++;
    const where = `segment ${s.index} @${s.offset}`;
    if (s.offset > 0) {
      if (plan.kind === 'fmp4') {
        const type = boxAt(path, s.offset);
        if (!['moof', 'styp', 'sidx', 'prft', 'emsg'].includes(type)) {
          // A size-cap piece inside one fragment larger than the cap cannot start at a fragment:
          // it claims no time, and the note says so; anything else is a wrong cut.
          const box = boxes.find((b) => b.offset < s.offset && b.offset + b.size > s.offset);
          const capPiece = s.startTime === undefined && box !== undefined && box.type === 'mdat' && box.size > s.length;
          if (capPiece) notes.push(`${where}: size-cap cut inside a fragment larger than the cap`);
          else problems.push(`${where}: starts inside a box (${JSON.stringify(type)}), not at a fragment`);
        }
      } else if (layout) {
        if ((s.offset - layout.firstPacket) % layout.packetSize !== 0) problems.push(`${where}: not on the ${layout.packetSize}-byte packet grid`);
        else if (readRange(path, s.offset + layout.syncOffset, 1)[0] !== 0x47) problems.push(`${where}: no sync byte at the packet start`);
      }
    }
    if (s.startTime !== undefined && origin !== undefined) {
      if (s.startTime < lastStart) problems.push(`${where}: startTime ${s.startTime} goes back`);
      lastStart = s.startTime;
      const end = s.offset + s.length;
      // ffprobe's whole-file packet list: the first keyframe in the segment has that time.
      const inside = packets.filter((p) => p.pos >= s.offset && p.pos < end).sort((a, b) => a.pos - b.pos);
      const key = s.index === 0 ? inside.find((p) => p.key) : inside[0];
      if (!key) problems.push(`${where}: claims startTime ${s.startTime} but holds no video packet`);
      else if (!key.key) problems.push(`${where}: claims startTime ${s.startTime} but its first video packet is not a keyframe`);
      else if (!near(key.pts - origin, s.startTime)) problems.push(`${where}: claims startTime ${s.startTime}, ffprobe says its keyframe is at ${(key.pts - origin).toFixed(6)}`);
      // The segment on its own (behind the header it needs) starts with a keyframe.
      if (s.index > 0) {
        const bytes = readRange(path, s.offset, s.length);
        const alone = plan.kind === 'fmp4' ? Buffer.concat([fmp4Header, bytes]) : Buffer.concat([tables, bytes]);
        const first = await firstVideoPacketOf(alone, plan.kind === 'fmp4' ? '.mp4' : '.ts').catch(() => undefined);
        if (!first) problems.push(`${where}: ffprobe finds no video packet in the segment on its own`);
        else if (!first.key) problems.push(`${where}: the segment on its own does not start with a keyframe`);
        else if (plan.kind === 'mpegts' && !near(first.pts - origin, s.startTime) && !near(first.pts - origin + 2 ** 33 / 90000, s.startTime)) {
          problems.push(`${where}: the segment on its own starts at ${(first.pts - origin).toFixed(6)}, the plan says ${s.startTime}`);
        }
      }
    }
  }
  const last = segments[segments.length - 1];
  if (last?.endTime !== undefined && origin !== undefined) {
    const videoEnd = Math.max(...packets.map((p) => p.pts)) - origin;
    // The end of the last frame: at most a few frame durations past the last frame's start.
    if (last.endTime < videoEnd - 0.0015 || last.endTime > videoEnd + 1) problems.push(`last endTime ${last.endTime} is not the end of the video (last frame at ${videoEnd.toFixed(3)})`);
  }
  return { checked, problems, notes };
}

async function upload(server: CorpusServer, keys: KeyPairPem, path: string, name: string, size: number, sha256: string, plan: SegmentPlanEntry[], extra: Partial<RecordingManifest['file']>): Promise<{ arrived: boolean; byteExact: boolean; why?: string }> {
  const unsigned: Omit<RecordingManifest, 'signature'> = JSON.parse(JSON.stringify({
    protocol: PROTOCOL_VERSION,
    recordingId: `corpus-${sha256.slice(0, 32)}-${createHash('sha256').update(name).digest('hex').slice(0, 16)}`,
    device: { serial: 'corpus' },
    dock: { id: server.dockId, publicKeyPem: keys.publicKeyPem, bay: 'corpus' },
    file: { name: name.split('/').pop()!, size, sha256, ...extra },
    integrity: { status: 'unsigned', notes: [] },
    segments: plan,
    merkleRoot: merkleRoot(plan.map((p) => p.sha256)),
    createdAt: new Date().toISOString(),
  })) as Omit<RecordingManifest, 'signature'>;
  const manifest = signObject(unsigned as unknown as Record<string, unknown>, keys.privateKeyPem);
  const auth = { authorization: `Bearer ${server.token}` };
  const created = await fetch(`${server.url}/v1/recordings`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify(manifest) });
  if (!created.ok) return { arrived: false, byteExact: false, why: `create: ${created.status} ${await created.text()}` };
  for (const s of plan) {
    const body = readRange(path, s.offset, s.length);
    const put = await fetch(`${server.url}/v1/recordings/${unsigned.recordingId}/segments/${s.index}`, {
      method: 'PUT', headers: { ...auth, 'content-type': 'application/octet-stream', 'content-digest': formatDigestHeader(s.sha256) }, body,
    });
    if (!put.ok) return { arrived: false, byteExact: false, why: `segment ${s.index}: ${put.status} ${await put.text()}` };
  }
  const done = await fetch(`${server.url}/v1/recordings/${unsigned.recordingId}/complete`, { method: 'POST', headers: auth });
  if (!done.ok) return { arrived: false, byteExact: false, why: `complete: ${done.status} ${await done.text()}` };
  const receipt = await done.json() as Receipt;
  const arrived = verifyObject(receipt as unknown as Record<string, unknown>, server.publicKeyPem) && receipt.sha256 === sha256 && receipt.size === size;
  const content = await fetch(`${server.url}/v1/recordings/${unsigned.recordingId}/content`, { headers: auth });
  const bytes = Buffer.from(await content.arrayBuffer());
  return { arrived, byteExact: content.ok && bytes.length === size && sha256Hex(bytes) === sha256 };
}

/** One file through the dock's probe, plan, hash and fingerprint, the upload and the cut check. */
export async function checkFile(path: string, name: string, options: CorpusOptions, keys: KeyPairPem = generateSigningKeyPair()): Promise<CorpusRow> {
  const size = statSync(path).size;
  const flags: string[] = [];
  let info: Awaited<ReturnType<typeof probe>> | undefined;
  try {
    info = await probe(path);
  } catch (error) {
    const why = (error as { stderrTail?: string }).stderrTail?.split('\n').pop() || (error as Error).message;
    flags.push(`unreadable (ffprobe: ${why.slice(0, 120)})`);
  }
  const started = performance.now();
  const plan = await planSegments(path, size, { segmentSeconds: options.segmentSeconds, maxBytes: options.maxBytes, formatName: info?.formatName });
  const planMs = performance.now() - started;
  if (plan.truncatedTail) flags.push(`truncated (${plan.truncatedWhy ?? 'cut'})`);
  const hash = await hashFile(path, plan.segments, size);
  const entries: SegmentPlanEntry[] = plan.segments.map((s, i) => ({ ...s, sha256: hash.segmentSha256[i]! }));
  let fingerprints: Awaited<ReturnType<typeof streamFingerprints>> | undefined;
  if (info && options.fingerprint !== false && info.streams.length) {
    fingerprints = await streamFingerprints(path, { streams: info.streams });
    for (const s of fingerprints.streams) if ('error' in s && (s.type === 'audio' || s.type === 'video')) flags.push(`no fingerprint for ${s.type} ${s.index}`);
    if (!fingerprints.summary) flags.push('no media fingerprint');
  }
  const cuts = await checkCuts(path, size, plan, plan.segments);
  const row: CorpusRow = {
    file: name, size, container: info?.formatName ?? '-', kind: plan.kind, packetSize: plan.packetSize,
    segments: plan.segments.length, timedSegments: plan.segments.filter((s) => s.startTime !== undefined).length,
    planMs, cutsChecked: cuts.checked, cutProblems: cuts.problems, cutNotes: cuts.notes, flags,
    lastEndTime: plan.segments[plan.segments.length - 1]?.endTime, containerDuration: info?.durationSeconds,
  };
  if (options.server) {
    const media = info ? { ...mediaSummary(info), packetSize: plan.packetSize, timeOrigin: plan.timeOrigin } : undefined;
    const result = await upload(options.server, keys, path, name, size, hash.sha256, entries, {
      media, mediaFingerprint: fingerprints?.summary, mediaFingerprints: fingerprints?.streams, truncated: plan.truncatedTail || undefined,
    });
    row.arrived = result.arrived;
    row.byteExact = result.byteExact;
    if (result.why) flags.push(`upload failed: ${result.why.slice(0, 200)}`);
  }
  return row;
}

/** Every regular file under `dir` (sorted, dot files and *.md skipped). */
export function corpusFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const entry of readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      if (entry.name.startsWith('.')) continue;
      const full = join(d, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.isFile() && !/\.(md|txt|json)$/i.test(entry.name)) out.push(full);
    }
  };
  walk(dir);
  return out.map((f) => relative(dir, f));
}

export async function runCorpus(dir: string, options: CorpusOptions, onRow?: (row: CorpusRow) => void): Promise<CorpusRow[]> {
  const keys = generateSigningKeyPair();
  const rows: CorpusRow[] = [];
  for (const name of corpusFiles(dir)) {
    const row = await checkFile(join(dir, name), name, options, keys);
    rows.push(row);
    onRow?.(row);
  }
  return rows;
}

const yes = (v: boolean | undefined): string => (v === undefined ? '-' : v ? 'yes' : 'NO');

export function formatRow(row: CorpusRow): string {
  const kind = row.packetSize ? `${row.kind}/${row.packetSize}` : row.kind;
  const cuts = row.cutProblems.length ? `FAIL ${row.cutProblems.length}/${row.cutsChecked}`
    : `ok ${row.cutsChecked}${row.cutNotes.length ? ` (${row.cutNotes.length} cap cut${row.cutNotes.length > 1 ? 's' : ''} inside an oversized fragment)` : ''}`;
  return `| ${row.file} | ${row.size} | ${kind} | ${yes(row.arrived)} | ${yes(row.byteExact)} | ${row.segments} (${row.timedSegments} timed) | ${cuts} | ${row.lastEndTime ?? '-'} / ${row.containerDuration ?? '-'} | ${row.flags.join('; ') || '-'} |`;
}

export const TABLE_HEADER = '| file | bytes | plan | arrived | byte-exact | segments | cut-point check | last end / container duration (s) | flags |\n| --- | ---: | --- | --- | --- | --- | --- | --- | --- |';

export interface DockRunOptions {
  segmentSeconds: number;
  maxBytes: number;
  /** The server the dock uploads to and the dock's id and token there. */
  server: CorpusServer;
  /** Milliseconds the dock's run may take before the check gives up (rejects). */
  timeoutMs?: number;
}

export interface DockRun {
  rows: CorpusRow[];
  /** The run's exit code, as `bodycam dock --once` would exit (0, 1, or 3: something flagged or quarantined). */
  exitCode: 0 | 1 | 3;
  /** The dock's warnings and every recording the run did not finish, one per line (what to read when exitCode is not the expected). */
  stderr: string;
  seconds: number;
}

/**
 * The real dock over the corpus: every file copied into one bay (same relative paths), one run of
 * the dock's `--once` (runOnce, the library the CLI calls: in this process, so the check always
 * runs the source it is built from, never a stale dist/) uploading to `server`; then, per file, the
 * server's recording of those bytes: arrived (receipted), byte-exact (its content hashes to the
 * file), the signed manifest's segments re-probed (checkCuts) and its flags. No child process is
 * needed: the dock's ffmpeg/ffprobe children are its own (src/media, with their timeouts), and the
 * config is the one `bodycam dock` would load from the same flags.
 */
export async function runCorpusThroughDock(dir: string, options: DockRunOptions): Promise<DockRun> {
  const work = mkdtempSync(join(tmpdir(), 'bodycam-corpus-dock-'));
  try {
    const names = corpusFiles(dir);
    const bay = join(work, 'bays', 'corpus');
    for (const name of names) {
      mkdirSync(dirname(join(bay, name)), { recursive: true });
      copyFileSync(join(dir, name), join(bay, name));
    }
    const tokenFile = join(work, 'token');
    writeFileSync(tokenFile, options.server.token + '\n', { mode: 0o600 });
    const config = loadDockConfig({
      flags: { bays: join(work, 'bays'), endpoint: options.server.url, tokenFile, stateDir: join(work, 'state'), dockId: options.server.dockId, statusPort: 0,
        settle: '0.2s', maxBackoff: '1s', segmentSeconds: `${options.segmentSeconds}s`, segmentMaxBytes: String(options.maxBytes), logLevel: 'warn' },
      env: {},
    });
    const warnings: string[] = [];
    const logger = streamLogger({ write: (line) => { if (warnings.length < 200) warnings.push(line.trimEnd()); } }, 'warn');
    const started = performance.now();
    let timer: NodeJS.Timeout | undefined;
    const result = await Promise.race([
      runOnce(config, { logger }),
      new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`the dock's run over the corpus took more than ${options.timeoutMs ?? 300_000} ms:\n${warnings.slice(-12).join('\n')}`)), options.timeoutMs ?? 300_000);
        timer.unref?.();
      }),
    ]).finally(() => clearTimeout(timer));
    const unfinished = result.recordings.filter((r) => r.state !== 'completed' || isFlagged(r.integrity, Boolean(r.truncated), r.unreadable))
      .map((r) => `${r.file}: ${r.state}${r.reasonCode ? ` ${r.reasonCode}` : ''}${r.reason ? `: ${r.reason}` : ''}${r.truncated ? ' (truncated)' : ''}`);
    const code = result.exitCode;
    const stderr = [...warnings, ...unfinished].join('\n');
    const seconds = (performance.now() - started) / 1000;
    const auth = { authorization: `Bearer ${options.server.token}` };
    const listed = await (await fetch(`${options.server.url}/v1/recordings`, { headers: auth })).json() as RecordingListEntry[] | { recordings?: RecordingListEntry[] };
    const entries = Array.isArray(listed) ? listed : listed.recordings ?? [];
    const rows: CorpusRow[] = [];
    for (const name of names) {
      const path = join(dir, name);
      const size = statSync(path).size;
      const sha = sha256Hex(readFileSync(path));
      const entry = entries.find((e) => e.sha256 === sha && e.fileName === name.split('/').pop());
      const flags: string[] = [];
      const info = await probe(path).catch(() => undefined);
      const plan = await planSegments(path, size, { segmentSeconds: options.segmentSeconds, maxBytes: options.maxBytes, formatName: info?.formatName });
      const row: CorpusRow = {
        file: name, size, container: info?.formatName ?? '-', kind: plan.kind, packetSize: plan.packetSize, segments: 0, timedSegments: 0, planMs: 0,
        arrived: false, byteExact: false, cutsChecked: 0, cutProblems: [], cutNotes: [], flags, containerDuration: info?.durationSeconds,
      };
      rows.push(row);
      if (!entry) {
        flags.push('not on the server');
        continue;
      }
      const recording = await (await fetch(`${options.server.url}/v1/recordings/${entry.id}`, { headers: auth })).json() as { manifest: RecordingManifest };
      const manifest = recording.manifest;
      const content = await fetch(`${options.server.url}/v1/recordings/${entry.id}/content`, { headers: auth });
      const bytes = content.ok ? Buffer.from(await content.arrayBuffer()) : Buffer.alloc(0);
      row.arrived = entry.state === 'complete';
      row.byteExact = bytes.length === size && sha256Hex(bytes) === sha;
      row.segments = manifest.segments.length;
      row.timedSegments = manifest.segments.filter((s) => s.startTime !== undefined).length;
      row.packetSize = manifest.file.media?.packetSize;
      row.lastEndTime = manifest.segments[manifest.segments.length - 1]?.endTime;
      if (manifest.file.truncated) flags.push(`truncated (${manifest.integrity.notes.find((n) => n.startsWith('cut short'))?.slice(11) ?? 'cut'})`);
      for (const s of manifest.file.mediaFingerprints ?? []) if ('error' in s && (s.type === 'audio' || s.type === 'video')) flags.push(`no fingerprint for ${s.type} ${s.index}`);
      if (manifest.integrity.status !== 'unsigned' && manifest.integrity.status !== 'verified') flags.push(manifest.integrity.status);
      // The dock's signed plan is the one checked; it must also be the plan the planner makes here.
      if (JSON.stringify(manifest.segments.map(({ sha256: _h, ...rest }) => rest)) !== JSON.stringify(plan.segments)) flags.push('manifest plan differs from a fresh plan');
      const cuts = await checkCuts(path, size, plan, manifest.segments);
      row.cutsChecked = cuts.checked;
      row.cutProblems = cuts.problems;
      row.cutNotes = cuts.notes;
    }
    return { rows, exitCode: code, stderr, seconds };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
