/**
 * Issue 11 item 4: a JSON beside a recording is our sidecar only if it says so; every other file
 * beside a recording (another maker's .json, .THM, .LRV, .xml, .SRT, GPS logs) is uploaded WITH it
 * as an attachment: hashed, listed in the signed manifest, stored and verified by the server,
 * named by the receipt, proved before the wipe deletes it, downloadable. Built CLI
 * (`bodycam dock --once`), the real server on 127.0.0.1, real files, real ffprobe.
 * The hostile cases are in attachmentsHostile.test.ts.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { BIN } from '../helpers/cli.js';
import { makeTempDir } from '../helpers/tmp.js';
import { procSample } from '../helpers/reliability.js';
import { sha256, startRig, type DockRig } from '../helpers/cards.js';
import { attachmentBytes, receipted } from '../helpers/attachments.js';
import { makePlainMp4 } from '../helpers/dock.js';

/** Size of the large companion (MiB): 128 in `npm test`; BODYCAM_BIG_COMPANION_MB=2048 for the 2 GB run (docs/benchmarks.md). */
const BIG_MB = Number(process.env.BODYCAM_BIG_COMPANION_MB ?? 128);

describe('issue 11 item 4: companions travel with their recording as attachments', () => {
  const scratch = makeTempDir('bodycam-attach-src-');
  let clip: Buffer;
  let other: Buffer;
  let rig: DockRig | undefined;

  beforeAll(async () => {
    await makePlainMp4(join(scratch.path, 'a.mp4'), 2);
    await makePlainMp4(join(scratch.path, 'b.mp4'), 3);
    clip = readFileSync(join(scratch.path, 'a.mp4'));
    other = readFileSync(join(scratch.path, 'b.mp4'));
  });
  afterEach(async () => { await rig?.close(); rig = undefined; });
  afterAll(() => scratch.cleanup());

  it('a foreign camera\'s .json, .THM, .SRT and .gpx arrive with the recording: manifest, receipt, byte-exact download; then all are wiped; exit 0, no sidecar-invalid', async () => {
    rig = await startRig('bodycam-attach-a-');
    const dir = join(rig.bays, 'bay-gopro', 'DCIM', '100GOPRO');
    mkdirSync(dir, { recursive: true });
    const companions: Record<string, Buffer> = {
      'GOPR0001.json': Buffer.from(JSON.stringify({ vendor: 'acme', schema: 'acme-meta/3', gps: [[52.1, 4.3]] })),
      'GOPR0001.THM': Buffer.from(Array.from({ length: 9000 }, (_, i) => (i * 31) % 256)),
      'GOPR0001.SRT': Buffer.from('1\n00:00:00,000 --> 00:00:01,000\n52.1N 4.3E\n'),
      'GOPR0001.gpx': Buffer.from('<gpx><trk><trkseg><trkpt lat="52.1" lon="4.3"/></trkseg></trk></gpx>\n'),
    };
    writeFileSync(join(dir, 'GOPR0001.MP4'), clip);
    for (const [name, bytes] of Object.entries(companions)) writeFileSync(join(dir, name), bytes);
    const result = await rig.once(['--wipe-after-ingest']);
    expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: expect.not.stringMatching(/sidecar-invalid|json_not_sidecar/) });
    const [rec] = await receipted(rig);
    expect(rec!.relPath).toBe('DCIM/100GOPRO/GOPR0001.MP4');
    expect(rec!.state).toBe('wiped');
    const { manifest, receipt } = rec!.view;
    expect(manifest.integrity.status).toBe('unsigned');
    expect(manifest.device.sidecarSha256).toBeUndefined();
    const expected = Object.entries(companions).sort(([a], [b]) => (a < b ? -1 : 1));
    expect(manifest.attachments!.map((a) => [a.name, a.size, a.sha256]).sort()).toEqual(expected.map(([n, b]) => [n, b.length, sha256(b)]).sort());
    expect(Object.fromEntries(manifest.attachments!.map((a) => [a.name, a.kind]))).toEqual({ 'GOPR0001.json': 'metadata-json', 'GOPR0001.THM': 'thumbnail', 'GOPR0001.SRT': 'subtitles', 'GOPR0001.gpx': 'gps' });
    // The receipt names them: the server signed for the attachments too.
    expect(receipt!.attachments).toEqual(manifest.attachments!.map((a) => ({ name: a.name, size: a.size, sha256: a.sha256 })));
    for (const a of manifest.attachments!) {
      const got = await attachmentBytes(rig, manifest.recordingId, a.index);
      expect(got.status).toBe(200);
      expect(got.bytes.equals(companions[a.name]!)).toBe(true);
      expect(got.digest).toBe(`sha-256=:${Buffer.from(a.sha256, 'hex').toString('base64')}:`);
    }
    expect(sha256((await rig.serverBytes(manifest.recordingId))!)).toBe(sha256(clip));
    // Wiped after proof: the recording and every companion.
    for (const name of ['GOPR0001.MP4', ...Object.keys(companions)]) expect(existsSync(join(dir, name))).toBe(false);
  });

  it('our own sidecar (format bodycam-sidecar/…) is still the sidecar; the same JSON names on a foreign card are attachments', async () => {
    rig = await startRig('bodycam-attach-b-');
    const dir = join(rig.bays, 'bay-x', 'DCIM');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'V1.mp4'), clip);
    // Says it is ours (but no camera key to check it: signature-invalid, flagged, kept).
    writeFileSync(join(dir, 'V1.json'), JSON.stringify({ format: 'bodycam-sidecar/1', sha256: sha256(clip), signature: 'AAAA' }));
    writeFileSync(join(dir, 'V2.mp4'), other);
    writeFileSync(join(dir, 'V2.json'), '{"format": "acme/2", "sha256": "nope"');
    const result = await rig.once(['--wipe-after-ingest']);
    expect(result.code).toBe(3);
    const all = await receipted(rig);
    const v1 = all.find((r) => r.relPath === 'DCIM/V1.mp4')!.view.manifest;
    const v2 = all.find((r) => r.relPath === 'DCIM/V2.mp4')!;
    expect(v1.device.sidecarSha256).toBeDefined();
    expect(v1.integrity.status).toBe('signature-invalid');
    expect(v1.attachments).toBeUndefined();
    // Not even valid JSON, and not ours: an attachment, byte-exact; the recording is wiped with it.
    expect(v2.view.manifest.integrity.status).toBe('unsigned');
    expect(v2.view.manifest.attachments!.map((a) => a.name)).toEqual(['V2.json']);
    expect(v2.state).toBe('wiped');
    expect(existsSync(join(dir, 'V2.json'))).toBe(false);
    expect(existsSync(join(dir, 'V1.json')) && existsSync(join(dir, 'V1.mp4'))).toBe(true);
  });

  it('two recordings claiming one companion: both carry it; it is deleted only with the last of them', async () => {
    rig = await startRig('bodycam-attach-c-');
    const dir = join(rig.bays, 'bay-two', 'CLIPS');
    mkdirSync(dir, { recursive: true });
    const thumb = Buffer.from('shared thumbnail bytes '.repeat(100));
    writeFileSync(join(dir, 'CLIP.MP4'), clip);
    writeFileSync(join(dir, 'CLIP.MOV'), other);
    writeFileSync(join(dir, 'CLIP.THM'), thumb);
    const result = await rig.once(['--wipe-after-ingest']);
    expect(result.code).toBe(0);
    const all = await receipted(rig);
    expect(all.map((r) => r.relPath).sort()).toEqual(['CLIPS/CLIP.MOV', 'CLIPS/CLIP.MP4']);
    for (const r of all) {
      expect(r.state).toBe('wiped');
      expect(r.view.manifest.attachments!.map((a) => [a.name, a.sha256])).toEqual([['CLIP.THM', sha256(thumb)]]);
      expect((await attachmentBytes(rig, r.view.manifest.recordingId, 0)).bytes.equals(thumb)).toBe(true);
    }
    expect(existsSync(join(dir, 'CLIP.THM'))).toBe(false);
  });

  it(`a ${BIG_MB} MiB companion is hashed, uploaded, proved and wiped in bounded memory`, async () => {
    rig = await startRig('bodycam-attach-g-');
    const dir = join(rig.bays, 'bay-big', 'DCIM');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'BIG.mp4'), clip);
    // Written, not sparse (a sparse file is not a camera's): 1 MiB blocks that differ.
    const fd = openSync(join(dir, 'BIG.LRV'), 'w');
    const block = Buffer.alloc(1024 * 1024, 7);
    for (let i = 0; i < BIG_MB; i++) { block.writeUInt32BE(i, 0); writeSync(fd, block); }
    closeSync(fd);
    const started = Date.now();
    const child = spawn(process.execPath, [BIN, ...rig.dockArgs(['--once', '--wipe-after-ingest'])], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
    let peakKiB = 0;
    const sampler = setInterval(() => { const s = child.pid ? procSample(child.pid) : undefined; if (s) peakKiB = Math.max(peakKiB, s.rssKiB); }, 50);
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    clearInterval(sampler);
    process.stdout.write(`attachments: ${BIG_MB} MiB companion offloaded and wiped in ${((Date.now() - started) / 1000).toFixed(1)} s, dock peak RSS ${(peakKiB / 1024).toFixed(0)} MiB\n`);
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    const [rec] = await receipted(rig);
    expect(rec!.view.manifest.attachments![0]!.size).toBe(BIG_MB * 1024 * 1024);
    expect(rec!.view.manifest.attachments![0]!.segments.length).toBe(Math.ceil(BIG_MB / 16));
    expect(existsSync(join(dir, 'BIG.LRV'))).toBe(false);
    // Far below the companion's size: memory does not grow with it.
    expect(peakKiB).toBeLessThan(250 * 1024);
  }, 300_000);

});
