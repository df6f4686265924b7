/**
 * Other makers' card layouts (docs/dock.md, "Card layouts"): recognised from the paths (any case),
 * reported per bay and in the manifest, vendor index files listed with a reason instead of uploaded,
 * nothing on a card left unaccounted for; end to end through the real server on cards the
 * simulator writes and on hand-made variants (lower case, unknown folders, a second AVCHD stream,
 * an M2TS cut mid-packet).
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, lstatSync, truncateSync, writeFileSync, copyFileSync, existsSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import fc from 'fast-check';
import { runs } from '../helpers/fcRuns.js';
import { recordCamera, type LayoutName, type RecordOptions } from '../../src/camera/index.js';
import { startDockAgent, type DockAgent, type DockStatus } from '../../src/dock/index.js';
import { listCameraFiles } from '../../src/protocol/cameraStorage/index.js';
import { renderStatus } from '../../src/cli/status.js';
import { cardLayoutsOf, cardPathRole, recordingSourceOf } from '../../src/protocol/cardLayouts.js';
import type { RecordingManifest } from '../../src/protocol/types.js';
import { makeTempDir } from '../helpers/tmp.js';
import { dockConfig, serverContent, serverKeyFile, serverRecording, startLoggedServer, type LoggedServer } from '../helpers/dock.js';

const sha = (data: Buffer): string => createHash('sha256').update(data).digest('hex');
const small = { width: 160, height: 120, fps: 10, videoKbps: 60, audioKbps: 32, durationSeconds: 2 } satisfies Partial<RecordOptions>;

/** Every regular file under root, '/'-separated (the .system area of the simulator left out). */
function regularFiles(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const abs = join(dir, name);
      const stats = lstatSync(abs);
      if (stats.isDirectory()) { if (name !== '.system') walk(abs); } else if (stats.isFile()) out.push(relative(root, abs).split(sep).join('/'));
    }
  };
  walk(root);
  return out.sort();
}

function touch(root: string, relPath: string, bytes: string | Buffer = 'x'): void {
  mkdirSync(dirname(join(root, relPath)), { recursive: true });
  writeFileSync(join(root, relPath), bytes);
}

describe('cardPathRole: a path says which maker\'s card it is on and what it is there', () => {
  const table: Array<[string, Partial<ReturnType<typeof cardPathRole>> | undefined]> = [
    ['DCIM/100BWC/20250101_000000_BWC1_0001.mp4', { layout: 'bodycam', role: 'recording' }],
    ['DCIM/100GOPRO/GH010001.MP4', { layout: 'gopro', role: 'recording', chapter: { recording: 'DCIM/100GOPRO/0001', index: 1 } }],
    ['DCIM/100GOPRO/GX020042.MP4', { layout: 'gopro', role: 'recording', chapter: { recording: 'DCIM/100GOPRO/0042', index: 2 } }],
    ['DCIM/101GOPRO/GOPR0007.MP4', { layout: 'gopro', role: 'recording', chapter: { recording: 'DCIM/101GOPRO/0007', index: 1 } }],
    ['DCIM/101GOPRO/GP010007.MP4', { layout: 'gopro', role: 'recording', chapter: { recording: 'DCIM/101GOPRO/0007', index: 2 } }],
    ['DCIM/100GOPRO/GL010001.LRV', { layout: 'gopro', role: 'companion', owners: ['DCIM/100GOPRO/GH010001.MP4', 'DCIM/100GOPRO/GX010001.MP4'] }],
    ['DCIM/100GOPRO/GH010001.THM', { layout: 'gopro', role: 'companion', owners: ['DCIM/100GOPRO/GH010001.MP4'] }],
    ['DCIM/100MEDIA/GH010003.MP4', { layout: 'gopro', role: 'recording' }],
    ['DCIM/100MEDIA/DJI_0001.MP4', undefined], // 100MEDIA is not GoPro's alone
    ['MISC/version.txt', { layout: 'gopro', role: 'card-metadata' }],
    ['PRIVATE/AVCHD/BDMV/STREAM/00000.MTS', { layout: 'avchd', role: 'recording' }],
    ['PRIVATE/AVCHD/BDMV/CLIPINF/00001.CPI', { layout: 'avchd', role: 'companion', owners: ['PRIVATE/AVCHD/BDMV/STREAM/00001.MTS', 'PRIVATE/AVCHD/BDMV/STREAM/00001.M2TS'] }],
    ['PRIVATE/AVCHD/BDMV/PLAYLIST/00000.MPL', { layout: 'avchd', role: 'card-metadata' }],
    ['PRIVATE/AVCHD/BDMV/INDEX.BDM', { layout: 'avchd', role: 'card-metadata' }],
    ['PRIVATE/AVCHD/BDMV/MOVIEOBJ.BDM', { layout: 'avchd', role: 'card-metadata' }],
    ['PRIVATE/AVCHD/BDMV/BACKUP/INDEX.BDM', { layout: 'avchd', role: 'card-metadata' }],
    ['AVCHD/BDMV/STREAM/00002.MTS', { layout: 'avchd', role: 'recording' }], // a copy without PRIVATE/
    ['BDMV/STREAM/00000.m2ts', { layout: 'avchd', role: 'recording' }],
    ['PRIVATE/M4ROOT/CLIP/C0001.MP4', { layout: 'sony-xavc', role: 'recording' }],
    ['PRIVATE/M4ROOT/CLIP/C0001M01.XML', { layout: 'sony-xavc', role: 'companion', owners: ['PRIVATE/M4ROOT/CLIP/C0001.MP4'] }],
    ['PRIVATE/M4ROOT/THMBNL/C0001T01.JPG', { layout: 'sony-xavc', role: 'companion', owners: ['PRIVATE/M4ROOT/CLIP/C0001.MP4'] }],
    ['PRIVATE/M4ROOT/SUB/C0001S03.MP4', { layout: 'sony-xavc', role: 'companion', owners: ['PRIVATE/M4ROOT/CLIP/C0001.MP4'] }],
    ['PRIVATE/M4ROOT/MEDIAPRO.XML', { layout: 'sony-xavc', role: 'card-metadata' }],
    ['PRIVATE/M4ROOT/STATUS.BIN', { layout: 'sony-xavc', role: 'card-metadata' }],
    ['Normal/20250101-120000_NOR_0001.MP4', { layout: 'dashcam', role: 'recording', folder: 'normal' }],
    ['Event/20250101-120100_EVT_0002.MP4', { layout: 'dashcam', role: 'recording', folder: 'event' }],
    ['Parking/20250101-120200_PRK_0003.TS', { layout: 'dashcam', role: 'recording', folder: 'parking' }],
    ['DCIM/Emergency/clip.mp4', { layout: 'dashcam', role: 'recording', folder: 'event' }],
    ['Event/notes.txt', undefined],
    ['DCIM/2026/12/01/120000_X_0001.mp4', { layout: 'dated', role: 'recording' }],
    ['Record/2025/05/10/EVT0001/x.mp4', { layout: 'dated', role: 'recording' }],
    ['Videos/2026-12-01/a.mov', { layout: 'dated', role: 'recording' }],
    ['DCIM/2026/13/01/a.mp4', undefined], // month 13 is no date
    ['DCIM/100CANON/MVI_0001.MP4', undefined],
    // A recording hidden under a maker's index folder is still a recording.
    ['PRIVATE/AVCHD/BDMV/BACKUP/00009.MTS', { layout: 'avchd', role: 'recording' }],
    ['PRIVATE/M4ROOT/GENERAL/hidden.mp4', { layout: 'sony-xavc', role: 'recording' }],
    ['PRIVATE/AVCHD/AVCHDTN/x.m2ts', { layout: 'avchd', role: 'recording' }],
  ];
  it.each(table)('%s', (path, expected) => {
    const role = cardPathRole(path);
    if (expected === undefined) expect(role).toBeUndefined();
    else expect(role).toMatchObject(expected);
  });

  it('any mix of upper and lower case means the same (FAT is case-blind; copies change case)', () => {
    const known = table.filter(([, expected]) => expected !== undefined).map(([path]) => path);
    fc.assert(fc.property(fc.constantFrom(...known), fc.array(fc.boolean(), { minLength: 64, maxLength: 64 }), (path, flips) => {
      const mixed = [...path].map((ch, i) => (flips[i % flips.length] ? ch.toLowerCase() : ch.toUpperCase())).join('');
      const a = cardPathRole(path)!;
      const b = cardPathRole(mixed);
      expect(b).toBeDefined();
      expect({ layout: b!.layout, role: b!.role, folder: b!.folder }).toEqual({ layout: a.layout, role: a.role, folder: a.folder });
      expect(b!.owners?.map((o) => o.toLowerCase())).toEqual(a.owners?.map((o) => o.toLowerCase()));
    }), { numRuns: runs(300) });
  });

  it('the card\'s layouts: most recordings first; dashcam folders give trigger and category to the manifest', () => {
    expect(cardLayoutsOf(['PRIVATE/M4ROOT/CLIP/C0001.MP4', 'PRIVATE/AVCHD/BDMV/STREAM/00000.MTS', 'PRIVATE/AVCHD/BDMV/STREAM/00001.MTS', 'PRIVATE/M4ROOT/MEDIAPRO.XML'])).toEqual(['avchd', 'sony-xavc']);
    expect(cardLayoutsOf(['DCIM/100CANON/MVI_0001.MP4'])).toEqual([]);
    expect(recordingSourceOf('Event/a.MP4')).toEqual({ path: 'Event/a.MP4', layout: 'dashcam', folder: 'event', trigger: 'event', category: 'incident' });
    expect(recordingSourceOf('Manual/a.MP4')).toMatchObject({ folder: 'event', trigger: 'manual', category: 'incident' });
    expect(recordingSourceOf('Parking/a.MP4')).toMatchObject({ folder: 'parking', trigger: 'parking' });
    expect(recordingSourceOf('PRIVATE/M4ROOT/MEDIAPRO.XML')).toBeUndefined();
  });
});

describe('the walker on hand-made cards: layouts recognised, vendor index files listed with a reason, nothing unaccounted for', () => {
  const tmp = makeTempDir('bodycam-layout-walk-');
  afterAll(() => tmp.cleanup());

  /** Every regular file is a candidate, a sidecar of one, or listed as skipped: none vanishes. */
  async function accounted(root: string): Promise<Awaited<ReturnType<typeof listCameraFiles>>> {
    const listing = await listCameraFiles(root);
    // Companions are accounted for too: they travel with their recording as attachments (issue 11 item 4).
    const seen = new Set([...listing.files.map((f) => f.relPath), ...listing.files.flatMap((f) => (f.sidecarPath ? [relative(root, f.sidecarPath)] : [])), ...listing.files.flatMap((f) => f.companions.map((c) => c.relPath)), ...listing.skipped.map((s) => s.path)]);
    for (const path of regularFiles(root)) expect([path, seen.has(path)]).toEqual([path, true]);
    return listing;
  }

  it('a lower-case GoPro card with extra unknown folders', async () => {
    const root = join(tmp.path, 'gopro-lower');
    for (const p of ['dcim/100gopro/gh010001.mp4', 'dcim/100gopro/gl010001.lrv', 'dcim/100gopro/gh010001.thm', 'dcim/100gopro/gh020001.mp4',
      'misc/version.txt', 'LOST.DIR/0001', 'Android/data/x.bin', 'dcim/100gopro/notes/extra.mp4']) touch(root, p);
    const listing = await accounted(root);
    expect(listing.layouts).toEqual(['gopro']);
    expect(listing.skipped.find((s) => s.path === 'misc/version.txt')).toMatchObject({ code: 'vendor_metadata', reason: expect.stringMatching(/GoPro camera information.*not uploaded/) });
    expect(listing.files.map((f) => f.relPath)).toEqual(expect.arrayContaining(['dcim/100gopro/gh010001.mp4', 'dcim/100gopro/gh020001.mp4', 'LOST.DIR/0001', 'dcim/100gopro/notes/extra.mp4']));
  });

  it('an AVCHD card with a second STREAM file, its index files and a backup folder', async () => {
    const root = join(tmp.path, 'avchd');
    const b = 'PRIVATE/AVCHD/BDMV';
    for (const p of [`${b}/STREAM/00000.MTS`, `${b}/STREAM/00001.MTS`, `${b}/CLIPINF/00000.CPI`, `${b}/CLIPINF/00001.CPI`, `${b}/PLAYLIST/00000.MPL`,
      `${b}/INDEX.BDM`, `${b}/MOVIEOBJ.BDM`, `${b}/BACKUP/INDEX.BDM`, `${b}/BACKUP/PLAYLIST/00000.MPL`, 'PRIVATE/AVCHD/AVCHDTN/THUMB.TDT']) touch(root, p);
    const listing = await accounted(root);
    expect(listing.layouts).toEqual(['avchd']);
    const vendor = listing.skipped.filter((s) => s.code === 'vendor_metadata').map((s) => s.path).sort();
    expect(vendor).toEqual([`${b}/BACKUP/INDEX.BDM`, `${b}/BACKUP/PLAYLIST/00000.MPL`, `${b}/INDEX.BDM`, `${b}/MOVIEOBJ.BDM`, `${b}/PLAYLIST/00000.MPL`, 'PRIVATE/AVCHD/AVCHDTN/THUMB.TDT'].sort());
    expect(listing.files.map((f) => f.relPath)).toEqual(expect.arrayContaining([`${b}/STREAM/00000.MTS`, `${b}/STREAM/00001.MTS`]));
    expect(listing.skippedByCode.vendor_metadata).toBe(6);
  });

  it('a large file under an index name is not taken for one (a recording renamed INDEX.BDM is read like any file)', async () => {
    const root = join(tmp.path, 'hidden');
    touch(root, 'PRIVATE/AVCHD/BDMV/STREAM/00000.MTS');
    touch(root, 'PRIVATE/AVCHD/BDMV/MOVIEOBJ.BDM', Buffer.alloc(64));
    touch(root, 'PRIVATE/AVCHD/BDMV/INDEX.BDM', Buffer.alloc(9 * 1024 * 1024, 0x47));
    const listing = await accounted(root);
    expect(listing.files.map((f) => f.relPath)).toContain('PRIVATE/AVCHD/BDMV/INDEX.BDM');
    expect(listing.skipped.map((s) => s.path)).toEqual(['PRIVATE/AVCHD/BDMV/MOVIEOBJ.BDM']);
  });

  it('a card holding two layouts (a camcorder writing AVCHD and XAVC S) names both', async () => {
    const root = join(tmp.path, 'both');
    for (const p of ['PRIVATE/AVCHD/BDMV/STREAM/00000.MTS', 'PRIVATE/M4ROOT/CLIP/C0001.MP4', 'PRIVATE/M4ROOT/CLIP/C0002.MP4', 'PRIVATE/M4ROOT/MEDIAPRO.XML']) touch(root, p);
    const listing = await accounted(root);
    expect(listing.layouts).toEqual(['sony-xavc', 'avchd']);
  });
});

describe('end to end: each layout the simulator writes, and hand-made variants, through the real server', () => {
  const tmp = makeTempDir('bodycam-layout-e2e-');
  let server: LoggedServer;
  let agent: DockAgent;
  let status: DockStatus;
  const bays = join(tmp.path, 'bays');
  /** relPath on the card of every recording, per bay, with its bytes as recorded. */
  const originals = new Map<string, Map<string, Buffer>>();
  const layouts: Array<[string, LayoutName, Partial<RecordOptions>]> = [
    ['gopro', 'gopro', { maxFileDurationSeconds: 1 }],
    ['avchd', 'avchd', { count: 2 }],
    ['sony', 'sony-xavc', {}],
    ['dashcam', 'dashcam', {}],
    ['dated', 'dated', {}],
  ];

  beforeAll(async () => {
    server = await startLoggedServer();
    mkdirSync(bays, { recursive: true });
    for (const [bay, layout, extra] of layouts) {
      const storage = join(tmp.path, `cam-${bay}`);
      await recordCamera({ storage, layout, seed: `layout-${bay}`, ...small, ...extra });
      if (layout === 'dashcam') await recordCamera({ storage, ...small, trigger: 'impact' });
      renameSync(storage, join(bays, bay)); // a mount: the card appears whole
    }
    // Hand-made: an AVCHD card copied with lower-case names, a stray folder, and its second clip cut mid-packet.
    const cut = join(bays, 'avchd-cut');
    const source = join(bays, 'avchd', 'PRIVATE/AVCHD/BDMV');
    mkdirSync(join(cut, 'private/avchd/bdmv/stream'), { recursive: true });
    mkdirSync(join(cut, 'private/avchd/bdmv/clipinf'), { recursive: true });
    copyFileSync(join(source, 'STREAM/00000.MTS'), join(cut, 'private/avchd/bdmv/stream/00000.mts'));
    copyFileSync(join(source, 'STREAM/00001.MTS'), join(cut, 'private/avchd/bdmv/stream/00001.mts'));
    copyFileSync(join(source, 'CLIPINF/00000.CPI'), join(cut, 'private/avchd/bdmv/clipinf/00000.cpi'));
    copyFileSync(join(source, 'INDEX.BDM'), join(cut, 'private/avchd/bdmv/index.bdm'));
    touch(cut, 'Unknown Folder/readme.md', 'what the officer kept here\n');
    const second = join(cut, 'private/avchd/bdmv/stream/00001.mts');
    truncateSync(second, lstatSync(second).size - 192 * 3 - 77); // mid-packet
    for (const [bay] of [...layouts, ['avchd-cut']] as Array<[string]>) {
      const root = join(bays, bay);
      const media = new Map<string, Buffer>();
      for (const path of regularFiles(root)) if (/\.(mp4|mts|m2ts|ts)$/i.test(path)) media.set(path, readFileSync(join(root, path)));
      originals.set(bay, media);
    }
    agent = await startDockAgent(dockConfig(tmp.path, server.url, { wipeAfterIngest: true, serverKey: serverKeyFile(server), rescanInterval: '0.3s', segmentSeconds: '1s', settle: '0.3s' }));
    await agent.whenIdle();
    status = agent.status();
  }, 120_000);

  afterAll(async () => {
    await agent?.stop();
    await server?.close();
    tmp.cleanup();
  });

  const entryOf = (bay: string, relPath: string) => status.queue.recordings.find((r) => r.bay === bay && r.file === relPath)
    ?? status.queue.recordings.find((r) => r.bay === bay && relPath.endsWith(`/${r.file}`));

  async function manifestOf(bay: string, relPath: string): Promise<RecordingManifest> {
    const entry = entryOf(bay, relPath);
    expect([bay, relPath, entry?.recordingId !== undefined]).toEqual([bay, relPath, true]);
    return (await serverRecording(server, entry!.recordingId!)).manifest as RecordingManifest;
  }

  it('every recording of every card arrives byte-exact, and its manifest says where it was and on which layout', async () => {
    const expectLayout: Record<string, string> = { gopro: 'gopro', avchd: 'avchd', sony: 'sony-xavc', dashcam: 'dashcam', dated: 'dated', 'avchd-cut': 'avchd' };
    let checked = 0;
    for (const [bay, media] of originals) {
      for (const [relPath, bytes] of media) {
        const role = cardPathRole(relPath);
        // A companion that is media itself (Sony's SUB proxy) travels as an attachment of its owner when the
        // owner is on the card (issue 11 item 4): byte-exact in the owner's manifest and from the server.
        const owner = role?.role === 'companion'
          ? [...media.keys()].find((p) => role.owners?.some((o) => o.toLowerCase() === p.toLowerCase()))
          : undefined;
        if (owner !== undefined) {
          const ownerManifest = await manifestOf(bay, owner);
          const name = relPath.split('/').pop()!;
          const attachment = ownerManifest.attachments?.find((a) => a.name === name);
          expect([relPath, attachment?.sha256]).toEqual([relPath, sha(bytes)]);
          const response = await server.request(`/v1/recordings/${ownerManifest.recordingId}/attachments/${attachment!.index}`);
          expect(response.status).toBe(200);
          expect(sha(Buffer.from(await response.arrayBuffer()))).toBe(sha(bytes));
          continue;
        }
        const manifest = await manifestOf(bay, relPath);
        expect(sha(await serverContent(server, manifest.recordingId))).toBe(sha(bytes));
        if (role?.role === 'recording') {
          expect(manifest.file.source).toMatchObject({ path: relPath, layout: expectLayout[bay] });
          checked++;
        }
      }
    }
    expect(checked).toBe(10); // 2 GoPro chapters, 2 + 2 AVCHD clips, 1 Sony clip, 2 dashcam files, 1 dated
  });

  it('each bay reports its layout in status (still after its recordings were wiped)', () => {
    const layoutOf = (bay: string) => status.bays.find((b) => b.bay === bay)?.layouts;
    expect(layoutOf('gopro')).toEqual(['gopro']);
    expect(layoutOf('avchd')).toEqual(['avchd']);
    expect(layoutOf('sony')).toEqual(['sony-xavc']);
    expect(layoutOf('dashcam')).toEqual(['dashcam']);
    expect(layoutOf('dated')).toEqual(['dated']);
    expect(layoutOf('avchd-cut')).toEqual(['avchd']);
    // `bodycam status` shows it in the bay table too.
    const line = renderStatus(status).split('\n').find((l) => l.startsWith('sony '));
    expect(line).toMatch(/^sony\s+\S+\s+sony-xavc\s+/);
  });

  it('vendor index files are listed on the bay with their reason, not uploaded, and stay on the card', () => {
    const listed = (bay: string) => (status.bays.find((b) => b.bay === bay)?.skipped ?? []).filter((s) => s.code === 'vendor_metadata').map((s) => s.path).sort();
    expect(listed('avchd')).toEqual(['PRIVATE/AVCHD/BDMV/INDEX.BDM', 'PRIVATE/AVCHD/BDMV/MOVIEOBJ.BDM', 'PRIVATE/AVCHD/BDMV/PLAYLIST/00000.MPL', 'PRIVATE/AVCHD/BDMV/PLAYLIST/00001.MPL']);
    expect(listed('sony')).toEqual(['PRIVATE/M4ROOT/MEDIAPRO.XML', 'PRIVATE/M4ROOT/STATUS.BIN']);
    expect(listed('gopro')).toEqual(['MISC/version.txt']);
    expect(listed('avchd-cut')).toEqual(['private/avchd/bdmv/index.bdm']);
    for (const path of listed('avchd')) expect(existsSync(join(bays, 'avchd', path))).toBe(true);
    // A vendor index file is no job of the dock's: none of them is queued or quarantined.
    const queued = status.queue.recordings.filter((r) => r.bay === 'avchd').map((r) => r.file);
    expect(queued.filter((f) => /\.(BDM|MPL)$/i.test(f))).toEqual([]);
    expect(status.bays.find((b) => b.bay === 'avchd')?.reason ?? '').not.toMatch(/INDEX|MOVIEOBJ|MPL/);
  });

  it('M2TS from the AVCHD card is planned on 192-byte packets; the clip cut mid-packet is flagged truncated and kept', async () => {
    const whole = await manifestOf('avchd', 'PRIVATE/AVCHD/BDMV/STREAM/00000.MTS');
    expect(whole.file.media?.packetSize).toBe(192);
    for (const segment of whole.segments) expect(segment.offset % 192).toBe(0);
    const cut = await manifestOf('avchd-cut', 'private/avchd/bdmv/stream/00001.mts');
    expect(cut.file.truncated).toBe(true);
    expect(cut.file.source).toEqual({ path: 'private/avchd/bdmv/stream/00001.mts', layout: 'avchd' });
    expect(existsSync(join(bays, 'avchd-cut', 'private/avchd/bdmv/stream/00001.mts'))).toBe(true);
    expect(existsSync(join(bays, 'avchd-cut', 'private/avchd/bdmv/stream/00000.mts'))).toBe(false); // whole, receipted, wiped
  });

  it('a dashcam Event file is an incident: trigger event, category incident, offloaded as critical', async () => {
    const media = [...originals.get('dashcam')!.keys()];
    const event = media.find((p) => p.startsWith('Event/'))!;
    const normal = media.find((p) => p.startsWith('Normal/'))!;
    expect((await manifestOf('dashcam', event)).file.source).toMatchObject({ layout: 'dashcam', folder: 'event', trigger: 'event', category: 'incident' });
    expect((await manifestOf('dashcam', normal)).file.source).toMatchObject({ layout: 'dashcam', folder: 'normal', trigger: 'continuous' });
    expect(entryOf('dashcam', event)?.critical).toBe(true);
    expect(entryOf('dashcam', normal)?.critical).toBeFalsy();
  });

  it('GoPro chapters name the recording they belong to', async () => {
    const chapters = [...originals.get('gopro')!.keys()].filter((p) => /GH\d{6}\.MP4$/.test(p)).sort();
    expect(chapters).toEqual(['DCIM/100GOPRO/GH010001.MP4', 'DCIM/100GOPRO/GH020001.MP4']);
    expect((await manifestOf('gopro', chapters[0]!)).file.source?.chapter).toEqual({ recording: 'DCIM/100GOPRO/0001', index: 1 });
    expect((await manifestOf('gopro', chapters[1]!)).file.source?.chapter).toEqual({ recording: 'DCIM/100GOPRO/0001', index: 2 });
  });
});
