/**
 * The simulator writes each maker's card layout (docs/camera-storage.md, "Other makers' layouts"):
 * folders, names, companion files, card files; and real M2TS (192-byte packets) with --container m2ts.
 */
import { describe, it, expect, afterAll } from '@jest/globals';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { recordCamera, dockCamera, undockCamera, type RecordOptions } from '../../src/camera/index.js';
import { detectTsLayoutIn, planSegments } from '../../src/dock/planner.js';
import { makeTempDir } from '../helpers/tmp.js';
import { decodeAll, probeAny, sha256Of } from '../helpers/media.js';

const small = { width: 160, height: 120, fps: 10, videoKbps: 60, audioKbps: 32, keyframeIntervalSeconds: 1 } satisfies Partial<RecordOptions>;
const tmp = makeTempDir('bodycam-layouts-');
afterAll(() => tmp.cleanup());

/** Every file under root except the simulator's own .system area, '/'-separated, sorted. */
function tree(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const abs = join(dir, name);
      if (statSync(abs).isDirectory()) { if (name !== '.system') walk(abs); } else out.push(relative(root, abs).split(sep).join('/'));
    }
  };
  walk(root);
  return out.sort();
}

/** Packet size, and whether every packet of the file starts with the sync byte after its prefix. */
function packetsOf(path: string): { size: number; whole: boolean; synced: boolean; timestamps: number[] } {
  const bytes = readFileSync(path);
  const layout = detectTsLayoutIn(bytes.subarray(0, 192 * 8));
  const size = layout?.packetSize ?? 0;
  let synced = size > 0;
  const timestamps: number[] = [];
  for (let at = 0; size > 0 && at + size <= bytes.length; at += size) {
    if (bytes[at + (layout!.syncOffset)] !== 0x47) synced = false;
    if (size === 192) timestamps.push(bytes.readUInt32BE(at) & 0x3fffffff);
  }
  return { size, whole: size > 0 && bytes.length % size === 0, synced, timestamps };
}

describe('--layout: each maker\'s folders, names and companions', () => {
  it('bodycam (the default) is unchanged: DCIM/100BWC, DEVICE.json, signed sidecars, nothing else', async () => {
    const storage = join(tmp.path, 'bodycam');
    const result = await recordCamera({ storage, ...small, durationSeconds: 2, seed: 3 });
    expect(result.layout).toBe('bodycam');
    const files = tree(storage);
    expect(files).toEqual(['DCIM/100BWC/' + result.files[0]!.mediaPath.split('/').pop(), 'DCIM/100BWC/' + result.files[0]!.sidecarPath!.split('/').pop(), 'DEVICE.json'].sort());
    expect(result.files[0]!.companionPaths).toEqual([]);
  });

  it('gopro: DCIM/100GOPRO GH<chapter><number>.MP4 + GL….LRV + GH….THM; chapters of one recording share the number; MISC/version.txt; no DEVICE.json, no sidecars', async () => {
    const storage = join(tmp.path, 'gopro');
    const result = await recordCamera({ storage, ...small, layout: 'gopro', durationSeconds: 3, maxFileDurationSeconds: 2, count: 2, seed: 4 });
    expect(tree(storage)).toEqual([
      'DCIM/100GOPRO/GH010001.MP4', 'DCIM/100GOPRO/GH010001.THM', 'DCIM/100GOPRO/GH010002.MP4', 'DCIM/100GOPRO/GH010002.THM',
      'DCIM/100GOPRO/GH020001.MP4', 'DCIM/100GOPRO/GH020001.THM', 'DCIM/100GOPRO/GH020002.MP4', 'DCIM/100GOPRO/GH020002.THM',
      'DCIM/100GOPRO/GL010001.LRV', 'DCIM/100GOPRO/GL010002.LRV', 'DCIM/100GOPRO/GL020001.LRV', 'DCIM/100GOPRO/GL020002.LRV',
      'MISC/version.txt',
    ]);
    expect(result.files.map((f) => f.groupId)).toEqual([result.files[0]!.recordingId, result.files[0]!.recordingId, result.files[2]!.recordingId, result.files[2]!.recordingId]);
    // The main file is a plain MP4 at the asked size; the LRV is a real low-resolution MP4; the THM a JPEG.
    const main = await probeAny(join(storage, 'DCIM/100GOPRO/GH010001.MP4'));
    expect(main.streams.find((s) => s.type === 'video')).toMatchObject({ codec: 'h264', width: 160, height: 120 });
    const lrv = await probeAny(join(storage, 'DCIM/100GOPRO/GL010001.LRV'));
    expect(lrv.formatName).toContain('mp4');
    expect(lrv.streams.map((s) => s.type).sort()).toEqual(['audio', 'video']);
    expect(readFileSync(join(storage, 'DCIM/100GOPRO/GH010001.THM')).subarray(0, 2).toString('hex')).toBe('ffd8');
    expect(JSON.parse(readFileSync(join(storage, 'MISC/version.txt'), 'utf8'))).toMatchObject({ 'camera serial number': result.serial });
    // Recording again continues the numbers (and keeps the layout without being told).
    const again = await recordCamera({ storage, ...small, durationSeconds: 1, seed: 4 });
    expect(again.files.map((f) => f.mediaPath.split('/').pop())).toEqual(['GH010003.MP4']);
  });

  it('gopro with HEVC names its files GX…, the proxy stays GL…', async () => {
    const storage = join(tmp.path, 'gopro-hevc');
    await recordCamera({ storage, ...small, layout: 'gopro', codec: 'hevc', durationSeconds: 1, seed: 5 });
    expect(tree(storage).filter((p) => p.startsWith('DCIM/'))).toEqual(['DCIM/100GOPRO/GL010001.LRV', 'DCIM/100GOPRO/GX010001.MP4', 'DCIM/100GOPRO/GX010001.THM']);
  });

  it('avchd: PRIVATE/AVCHD/BDMV/STREAM/00000.MTS (M2TS) + CLIPINF/00000.CPI, a playlist per recording, INDEX.BDM and MOVIEOBJ.BDM', async () => {
    const storage = join(tmp.path, 'avchd');
    const result = await recordCamera({ storage, ...small, layout: 'avchd', durationSeconds: 3, maxFileDurationSeconds: 2, count: 2, seed: 6 });
    const b = 'PRIVATE/AVCHD/BDMV';
    expect(tree(storage)).toEqual([
      `${b}/CLIPINF/00000.CPI`, `${b}/CLIPINF/00001.CPI`, `${b}/CLIPINF/00002.CPI`, `${b}/CLIPINF/00003.CPI`,
      `${b}/INDEX.BDM`, `${b}/MOVIEOBJ.BDM`, `${b}/PLAYLIST/00000.MPL`, `${b}/PLAYLIST/00002.MPL`,
      `${b}/STREAM/00000.MTS`, `${b}/STREAM/00001.MTS`, `${b}/STREAM/00002.MTS`, `${b}/STREAM/00003.MTS`,
    ]);
    expect(readFileSync(join(storage, b, 'CLIPINF/00000.CPI')).subarray(0, 8).toString('ascii')).toBe('HDMV0100');
    const playlist = readFileSync(join(storage, b, 'PLAYLIST/00002.MPL'));
    expect(playlist.subarray(0, 8).toString('ascii')).toBe('MPLS0100');
    expect(playlist.toString('latin1')).toContain('00002MTS');
    expect(playlist.toString('latin1')).toContain('00003MTS');
    for (const file of result.files) expect(packetsOf(file.mediaPath)).toMatchObject({ size: 192, whole: true, synced: true });
  });

  it('sony-xavc: PRIVATE/M4ROOT/CLIP/C0001.MP4 + C0001M01.XML, THMBNL/C0001T01.JPG, SUB/C0001S03.MP4, MEDIAPRO.XML listing every clip', async () => {
    const storage = join(tmp.path, 'sony');
    const result = await recordCamera({ storage, ...small, layout: 'sony-xavc', durationSeconds: 1, count: 2, seed: 7 });
    const m = 'PRIVATE/M4ROOT';
    expect(tree(storage)).toEqual([
      `${m}/CLIP/C0001.MP4`, `${m}/CLIP/C0001M01.XML`, `${m}/CLIP/C0002.MP4`, `${m}/CLIP/C0002M01.XML`, `${m}/MEDIAPRO.XML`, `${m}/STATUS.BIN`,
      `${m}/SUB/C0001S03.MP4`, `${m}/SUB/C0002S03.MP4`, `${m}/THMBNL/C0001T01.JPG`, `${m}/THMBNL/C0002T01.JPG`,
    ]);
    expect(readFileSync(join(storage, m, 'CLIP/C0002M01.XML'), 'utf8')).toContain(`serialNo="${result.serial}"`);
    const mediapro = readFileSync(join(storage, m, 'MEDIAPRO.XML'), 'utf8');
    expect(mediapro).toContain('uri="./CLIP/C0001.MP4"');
    expect(mediapro).toContain('uri="./CLIP/C0002M01.XML"');
    expect(result.files[1]!.companionPaths.map((p) => p.split('/').slice(-2).join('/'))).toEqual(['CLIP/C0002M01.XML', 'THMBNL/C0002T01.JPG', 'SUB/C0002S03.MP4']);
  });

  it('dashcam: Normal/, Event/ (incident triggers and critical) and Parking/, each recording with its NMEA GPS log', async () => {
    const storage = join(tmp.path, 'dashcam');
    await recordCamera({ storage, ...small, layout: 'dashcam', durationSeconds: 1, seed: 8 });
    await recordCamera({ storage, ...small, durationSeconds: 1, trigger: 'impact' });
    await recordCamera({ storage, ...small, durationSeconds: 1, trigger: 'parking' });
    await recordCamera({ storage, ...small, durationSeconds: 1, critical: true });
    const files = tree(storage);
    expect(files.map((p) => p.replace(/\d{8}-\d{6}/, 'DATE-TIME'))).toEqual([
      'Event/DATE-TIME_EVT_0002.MP4', 'Event/DATE-TIME_EVT_0002.NMEA', 'Event/DATE-TIME_EVT_0004.MP4', 'Event/DATE-TIME_EVT_0004.NMEA',
      'Normal/DATE-TIME_NOR_0001.MP4', 'Normal/DATE-TIME_NOR_0001.NMEA', 'Parking/DATE-TIME_PRK_0003.MP4', 'Parking/DATE-TIME_PRK_0003.NMEA',
    ]);
    const log = readFileSync(join(storage, files[1]!), 'utf8').trim().split('\r\n');
    for (const line of log) {
      expect(line).toMatch(/^\$GPRMC,\d{6}\.00,A,\d{4}\.\d{4},[NS],\d{5}\.\d{4},[EW],.*\*[0-9A-F]{2}$/);
      const body = line.slice(1, line.indexOf('*'));
      let sum = 0;
      for (const ch of Buffer.from(body)) sum ^= ch;
      expect(line.slice(-2)).toBe(sum.toString(16).toUpperCase().padStart(2, '0'));
    }
  });

  it('dated: DCIM/<YYYY>/<MM>/<DD>/<HHMMSS>_<serial>_<seq>.mp4 with a signed sidecar, DEVICE.json at the root', async () => {
    const storage = join(tmp.path, 'dated');
    const result = await recordCamera({ storage, ...small, layout: 'dated', durationSeconds: 1, count: 2, seed: 9 });
    const files = tree(storage);
    expect(files).toContain('DEVICE.json');
    for (const file of result.files) {
      const rel = relative(storage, file.mediaPath);
      expect(rel).toMatch(new RegExp(`^DCIM/\\d{4}/\\d{2}/\\d{2}/\\d{6}_${result.serial}_\\d{4}\\.mp4$`));
      expect(existsSync(file.sidecarPath!)).toBe(true);
      const sidecar = JSON.parse(readFileSync(file.sidecarPath!, 'utf8')) as { sha256: string; startedAt: string };
      expect(sidecar.sha256).toBe(sha256Of(file.mediaPath));
      expect(rel.slice(5, 15).replace(/\//g, '-')).toBe(sidecar.startedAt.slice(0, 10)); // the folders are the camera's date
    }
  });

  it('a foreign layout docks and undocks like our camera (its identity stays camera-internal, no DEVICE.json appears)', async () => {
    const storage = join(tmp.path, 'dock-sony');
    await recordCamera({ storage, ...small, layout: 'sony-xavc', durationSeconds: 1, seed: 10 });
    const bays = join(tmp.path, 'bays');
    mkdirSync(bays);
    await dockCamera({ storage, bays, bay: 'bay-01' });
    expect(existsSync(join(bays, 'bay-01', 'DEVICE.json'))).toBe(false);
    expect(existsSync(join(bays, 'bay-01', 'PRIVATE/M4ROOT/CLIP/C0001.MP4'))).toBe(true);
    await undockCamera({ bays, bay: 'bay-01', to: storage });
    expect(existsSync(join(storage, 'PRIVATE/M4ROOT/CLIP/C0001.MP4'))).toBe(true);
  });
});

describe('--container m2ts: 192-byte packets with a 4-byte arrival timestamp', () => {
  it('every packet is 4 bytes of TP_extra_header then a 188-byte TS packet; timestamps rise; ffprobe reads it as MPEG-TS; the planner sees 192', async () => {
    const storage = join(tmp.path, 'm2ts');
    const result = await recordCamera({ storage, ...small, container: 'm2ts', durationSeconds: 3, seed: 12 });
    const file = result.files[0]!;
    expect(file.mediaPath.endsWith('.m2ts')).toBe(true);
    const packets = packetsOf(file.mediaPath);
    expect(packets).toMatchObject({ size: 192, whole: true, synced: true });
    // Arrival timestamps count a 27 MHz clock in 30 bits (ffmpeg wraps them modulo 0x3fffffff): each
    // packet arrives after the one before it, well within a second, and the clock moves over the file.
    const wrap = 0x3fffffff;
    let moved = 0;
    for (let i = 1; i < packets.timestamps.length; i++) {
      const delta = (packets.timestamps[i]! - packets.timestamps[i - 1]! + wrap) % wrap;
      expect(delta).toBeLessThan(27_000_000);
      moved += delta;
    }
    expect(moved / 27_000_000).toBeGreaterThan(1);
    const probed = await probeAny(file.mediaPath);
    expect(probed.formatName).toBe('mpegts');
    expect(probed.streams.map((s) => s.codec).sort()).toEqual(['aac', 'h264']);
    // ffmpeg's demuxer takes the 192-byte packets apart: every frame decodes, nothing is reported lost.
    const decoded = await decodeAll(file.mediaPath);
    expect(decoded.seconds).toBeGreaterThan(2.5);
    expect(decoded.stderr).not.toMatch(/corrupt|error|Packet corrupt|PES packet size mismatch/i);
    const plan = await planSegments(file.mediaPath, statSync(file.mediaPath).size, { segmentSeconds: 1, maxBytes: 1 << 24, formatName: 'mpegts' });
    expect(plan.packetSize).toBe(192);
    expect(plan.segments.length).toBeGreaterThan(1);
    for (const segment of plan.segments) expect(segment.offset % 192).toBe(0);
    const sidecar = JSON.parse(readFileSync(file.sidecarPath!, 'utf8')) as { container: string; sha256: string };
    expect(sidecar).toMatchObject({ container: 'm2ts', sha256: sha256Of(file.mediaPath) });
  });

  it('same seed, same bytes (M2TS and the vendor companions)', async () => {
    const a = await recordCamera({ storage: join(tmp.path, 'same-a'), ...small, layout: 'avchd', durationSeconds: 1, seed: 13 });
    const b = await recordCamera({ storage: join(tmp.path, 'same-b'), ...small, layout: 'avchd', durationSeconds: 1, seed: 13 });
    expect(a.files[0]!.sha256).toBe(b.files[0]!.sha256);
    expect(sha256Of(a.files[0]!.companionPaths[0]!)).toBe(sha256Of(b.files[0]!.companionPaths[0]!));
  });
});

describe('bad combinations are one clear line, before anything is written', () => {
  it.each([
    [{ layout: 'nokia' }, /unknown layout "nokia"/],
    [{ layout: 'gopro', container: 'mpegts' }, /layout gopro does not write mpegts/],
    [{ layout: 'avchd', container: 'mp4' }, /layout avchd does not write mp4/],
    [{ layout: 'dashcam', faults: ['missing-sidecar'] }, /needs a camera that signs/],
    [{ layout: 'sony-xavc', faults: ['bad-signature'] }, /needs a camera that signs/],
  ] as Array<[Partial<RecordOptions> & { layout?: string }, RegExp]>)('%j', async (options, message) => {
    const storage = join(tmp.path, `bad-${Math.random().toString(36).slice(2)}`);
    await expect(recordCamera({ storage, ...small, durationSeconds: 1, ...(options as Partial<RecordOptions>) })).rejects.toThrow(message);
    expect(existsSync(storage)).toBe(false);
  });

  it('an existing camera keeps its layout: asking for another is refused', async () => {
    const storage = join(tmp.path, 'keeps');
    await recordCamera({ storage, ...small, layout: 'dashcam', durationSeconds: 1, seed: 14 });
    await expect(recordCamera({ storage, ...small, layout: 'gopro', durationSeconds: 1 })).rejects.toThrow(/holds a camera of layout dashcam/);
    await expect(recordCamera({ storage, ...small, layout: 'bodycam', durationSeconds: 1 })).rejects.toThrow(/holds a camera of layout dashcam/);
  });
});
