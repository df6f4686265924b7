/**
 * The bad-input matrix, camera side: every odd thing a camera (or a person) can
 * leave on the storage gets a clear, logged outcome from one `bodycam dock --once`
 * run — quarantined with a reason, or uploaded byte-exact but flagged and not
 * wiped — and the good recordings docked alongside still arrive byte-exact.
 *
 * What stays on the card (issue 11 item 2): only zero-byte files, files that are not media by
 * their extension, and sparse files (a FAT/exFAT card has no holes: a file whose allocated
 * blocks are far below its size was not written by a camera, and uploading 20 GB of holes would
 * be no evidence). Anything with a media extension that ffprobe cannot read — a GoPro MP4 cut by
 * power loss before its `moov`, a text file named .mp4 — is evidence of unknown kind: uploaded
 * byte-exact as opaque bytes, flagged `unreadable` with ffprobe's words, never wiped.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dockCamera, recordCamera, type RecordedFile } from '../../src/camera/index.js';
import type { RecordingListEntry, RecordingManifest } from '../../src/protocol/types.js';
import { BIN } from '../helpers/cli.js';
import { makeTempDir } from '../helpers/tmp.js';
import { countBlobs, DOCK_ID, procSample, readJournal, ServerProcess, sha256Of, TOKENS, writeReport, type JournalView } from '../helpers/reliability.js';

const small = { durationSeconds: 3, width: 320, height: 240, fps: 15 };
const THREE_YEARS_S = 3 * 365 * 86_400;

interface Case {
  name: string;
  bay: string;
  /** Media path in the bay (after docking) and the sha256 of its bytes. */
  path: string;
  sha256: string;
  /** When the same bytes are on two cameras: the one meant. */
  serial?: string;
}

describe('bad inputs on camera storage: a clear, logged outcome each, good recordings unharmed', () => {
  const tmp = makeTempDir('bodycam-badinputs-');
  const bays = join(tmp.path, 'bays');
  const outside = join(tmp.path, 'outside');
  let server: ServerProcess;
  const cases = new Map<string, Case>();
  let journal: JournalView;
  let onceExit: number | null = null;
  let onceStderr = '';
  let dockLog = '';
  let peakRssKiB = 0;
  let onceSeconds = 0;
  let list: RecordingListEntry[] = [];
  const outcomes: Array<Record<string, unknown>> = [];

  const addCase = (name: string, bay: string, relPath: string): void => {
    const path = join(bays, bay, relPath);
    cases.set(name, { name, bay, path, sha256: existsSync(path) ? sha256Of(readFileSync(path)) : '' });
  };
  const rel = (file: RecordedFile, storage: string): string => file.mediaPath.slice(storage.length + 1);
  const record = async (storage: string, seed: string, options: Record<string, unknown> = {}) => recordCamera({ storage, count: 1, seed, ...small, ...options });

  beforeAll(async () => {
    mkdirSync(bays, { recursive: true });
    mkdirSync(outside, { recursive: true });
    const cam = (name: string) => join(tmp.path, name);
    const docked: Array<[string, string]> = [];
    // DEVICE.json damage is done in the bay: the simulator's dock step itself refuses a camera without a readable one.
    const afterDock: Array<() => void> = [];

    // The good camera, docked beside the bad ones.
    const good = await recordCamera({ storage: cam('good'), count: 2, seed: 'bad-good', ...small });
    docked.push(['good', 'bay-good']);

    // One camera carrying most faults the simulator can leave, plus a good file among them.
    const f = cam('faulty');
    const fGood = await record(f, 'bad-faulty');
    const zero = await record(f, 'bad-faulty', { faults: ['zero-byte'] });
    const cut = await record(f, 'bad-faulty', { faults: ['power-loss'] });
    const flip = await record(f, 'bad-faulty', { faults: ['bitflip'] });
    const forged = await record(f, 'bad-faulty', { faults: ['bad-signature'] });
    writeFileSync(join(f, 'DCIM', '100BWC', 'NOTMEDIA_0001.mp4'), 'this is a shopping list, not a video\n'.repeat(50));
    // Not media by name: a binary blob ffprobe cannot read, and a text file.
    writeFileSync(join(f, 'DCIM', '100BWC', 'DUMP_0001.bin'), Buffer.from(Array.from({ length: 64 * 1024 }, (_, i) => (i * 7919) % 251)));
    writeFileSync(join(f, 'DCIM', '100BWC', 'README.txt'), 'camera notes\n');
    // 20 GB, sparse: must be judged without being read into memory.
    writeFileSync(join(f, 'DCIM', '100BWC', 'HUGE_0001.mp4'), '');
    truncateSync(join(f, 'DCIM', '100BWC', 'HUGE_0001.mp4'), 20 * 1024 ** 3);
    docked.push(['faulty', 'bay-faulty']);

    // A GoPro of sorts (no DEVICE.json): a plain MP4 (moov at the end) cut by power loss, so no moov.
    const gopro = await recordCamera({ storage: cam('gopro'), count: 1, seed: 'bad-gopro', container: 'mp4', ...small });
    rmSync(join(cam('gopro'), 'DEVICE.json'));
    rmSync(join(cam('gopro'), '.system'), { recursive: true, force: true });
    if (gopro.files[0]!.sidecarPath) rmSync(gopro.files[0]!.sidecarPath);
    const goproBytes = readFileSync(gopro.files[0]!.mediaPath);
    rmSync(gopro.files[0]!.mediaPath);
    mkdirSync(join(cam('gopro'), 'DCIM', '100GOPRO'), { recursive: true });
    writeFileSync(join(cam('gopro'), 'DCIM', '100GOPRO', 'GOPR0001.MP4'), goproBytes.subarray(0, Math.floor(goproBytes.length * 0.6)));
    docked.push(['gopro', 'bay-gopro']);

    const skew = await record(cam('skew'), 'bad-skew', { faults: [`clock-skew=${THREE_YEARS_S}`] });
    docked.push(['skew', 'bay-skew']);

    // A camera of another make: odd names, no DEVICE.json, no sidecars; symlinks out of the camera.
    const names = await recordCamera({ storage: cam('names'), count: 3, seed: 'bad-names', ...small });
    const namesDir = join(cam('names'), 'DCIM', '100BWC');
    rmSync(join(cam('names'), 'DEVICE.json'));
    rmSync(join(cam('names'), '.system'), { recursive: true, force: true });
    const odd = ['clip with spaces.mp4', 'unicodé_日本語_🚓.mp4', 'new\nline.mp4'];
    names.files.forEach((file, i) => {
      if (file.sidecarPath) rmSync(file.sidecarPath);
      renameSync(file.mediaPath, join(namesDir, odd[i]!));
    });
    const outsideFile = join(outside, 'secret.mp4');
    writeFileSync(outsideFile, Buffer.concat([readFileSync(good.files[0]!.mediaPath), Buffer.from('outside the camera')]));
    symlinkSync(outsideFile, join(namesDir, 'LINK_0001.mp4'));
    mkdirSync(join(outside, 'dir'));
    writeFileSync(join(outside, 'dir', 'INNER_0001.mp4'), Buffer.concat([readFileSync(good.files[1]!.mediaPath), Buffer.from('outside dir')]));
    symlinkSync(join(outside, 'dir'), join(cam('names'), 'DCIM', 'LINKDIR'));
    docked.push(['names', 'bay-names']);

    const devBad = await record(cam('devbad'), 'bad-devbad');
    afterDock.push(() => writeFileSync(join(bays, 'bay-devbad', 'DEVICE.json'), '{"serial": "BWC-BROKEN", "model": '));
    docked.push(['devbad', 'bay-devbad']);
    const devNone = await record(cam('devnone'), 'bad-devnone');
    rmSync(join(cam('devnone'), 'DEVICE.json'));
    docked.push(['devnone', 'bay-devnone']);
    const devHuge = await record(cam('devhuge'), 'bad-devhuge');
    afterDock.push(() => writeFileSync(join(bays, 'bay-devhuge', 'DEVICE.json'), `{"serial":"BWC-HUGE","pad":"${'x'.repeat(50 * 1024 * 1024)}"}`));
    docked.push(['devhuge', 'bay-devhuge']);
    const sideBad = await record(cam('sidebad'), 'bad-sidebad');
    writeFileSync(sideBad.files[0]!.sidecarPath!, '{"sha256": "abc", ');
    docked.push(['sidebad', 'bay-sidebad']);
    const sideHuge = await record(cam('sidehuge'), 'bad-sidehuge');
    writeFileSync(sideHuge.files[0]!.sidecarPath!, `{"pad":"${'y'.repeat(50 * 1024 * 1024)}"}`);
    docked.push(['sidehuge', 'bay-sidehuge']);
    const trav = await record(cam('traversal'), 'bad-traversal');
    afterDock.push(() => {
      const device = JSON.parse(readFileSync(join(bays, 'bay-traversal', 'DEVICE.json'), 'utf8')) as Record<string, unknown>;
      writeFileSync(join(bays, 'bay-traversal', 'DEVICE.json'), JSON.stringify({ ...device, serial: '../../etc' }));
    });
    docked.push(['traversal', 'bay-traversal']);
    // The same recording (file + sidecar) on a second camera.
    await record(cam('twin'), 'bad-twin');
    const twinDir = join(cam('twin'), 'DCIM', '100BWC');
    const copied = join(twinDir, good.files[0]!.mediaPath.split('/').pop()!);
    copyFileSync(good.files[0]!.mediaPath, copied);
    copyFileSync(good.files[0]!.sidecarPath!, copied.replace(/\.mp4$/, '.json'));
    docked.push(['twin', 'bay-twin']);

    // A camera without DEVICE.json is not one the simulator will dock: its storage appears in the bay as a mount would.
    for (const [name, bay] of docked) {
      if (existsSync(join(cam(name), 'DEVICE.json'))) await dockCamera({ storage: cam(name), bays, bay });
      else renameSync(cam(name), join(bays, bay));
    }
    for (const damage of afterDock) damage();
    addCase('good 1', 'bay-good', rel(good.files[0]!, cam('good')));
    cases.get('good 1')!.serial = good.serial;
    addCase('good 2', 'bay-good', rel(good.files[1]!, cam('good')));
    addCase('good beside faults', 'bay-faulty', rel(fGood.files[0]!, f));
    addCase('zero-byte', 'bay-faulty', rel(zero.files[0]!, f));
    addCase('truncated (power loss)', 'bay-faulty', rel(cut.files[0]!, f));
    addCase('bit-flipped', 'bay-faulty', rel(flip.files[0]!, f));
    addCase('forged signature', 'bay-faulty', rel(forged.files[0]!, f));
    addCase('text named .mp4', 'bay-faulty', 'DCIM/100BWC/NOTMEDIA_0001.mp4');
    addCase('binary named .bin', 'bay-faulty', 'DCIM/100BWC/DUMP_0001.bin');
    addCase('text named .txt', 'bay-faulty', 'DCIM/100BWC/README.txt');
    addCase('GoPro MP4 cut before its moov', 'bay-gopro', 'DCIM/100GOPRO/GOPR0001.MP4');
    cases.set('20 GB sparse', { name: '20 GB sparse', bay: 'bay-faulty', path: join(bays, 'bay-faulty', 'DCIM/100BWC/HUGE_0001.mp4'), sha256: '' });
    addCase('clock 3 years ahead', 'bay-skew', rel(skew.files[0]!, cam('skew')));
    odd.forEach((name, i) => addCase(`name ${JSON.stringify(name)}`, 'bay-names', `DCIM/100BWC/${name}`));
    cases.set('symlink to a file outside', { name: 'symlink to a file outside', bay: 'bay-names', path: outsideFile, sha256: sha256Of(readFileSync(outsideFile)) });
    cases.set('symlinked folder', { name: 'symlinked folder', bay: 'bay-names', path: join(outside, 'dir', 'INNER_0001.mp4'), sha256: sha256Of(readFileSync(join(outside, 'dir', 'INNER_0001.mp4'))) });
    addCase('DEVICE.json malformed', 'bay-devbad', rel(devBad.files[0]!, cam('devbad')));
    addCase('DEVICE.json missing', 'bay-devnone', rel(devNone.files[0]!, cam('devnone')));
    addCase('DEVICE.json 50 MB', 'bay-devhuge', rel(devHuge.files[0]!, cam('devhuge')));
    addCase('sidecar malformed', 'bay-sidebad', rel(sideBad.files[0]!, cam('sidebad')));
    addCase('sidecar 50 MB', 'bay-sidehuge', rel(sideHuge.files[0]!, cam('sidehuge')));
    addCase('serial ../../etc', 'bay-traversal', rel(trav.files[0]!, cam('traversal')));
    addCase('same recording on a second camera', 'bay-twin', copied.slice(cam('twin').length + 1));

    server = new ServerProcess(join(tmp.path, 'server-data'));
    await server.start();
    const tokenFile = join(tmp.path, 'token');
    writeFileSync(tokenFile, TOKENS[DOCK_ID]!, { mode: 0o600 });
    const started = Date.now();
    const child = spawn(process.execPath, [BIN, 'dock', '--once', '--bays', bays, '--endpoint', server.url, '--token-file', tokenFile,
      '--state-dir', join(tmp.path, 'dock-state'), '--dock-id', DOCK_ID, '--status-port', '0', '--wipe-after-ingest', '--server-key', join(server.dataDir, 'server-key.pub.pem'), '--settle', '0.3s',
      '--segment-seconds', '1s', '--max-backoff', '1s', '--log-level', 'info'], { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr!.on('data', (d: Buffer) => { onceStderr += d.toString(); });
    const sampler = setInterval(() => { const s = child.pid ? procSample(child.pid) : undefined; if (s) peakRssKiB = Math.max(peakRssKiB, s.rssKiB); }, 50);
    onceExit = await new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    clearInterval(sampler);
    onceSeconds = (Date.now() - started) / 1000;
    // stderr is not a terminal: it is all JSON (docs/operations.md#logs); the --once report is in the records' msg.
    const nonJson = onceStderr.split('\n').filter((l) => l !== '' && !l.startsWith('{'));
    expect(nonJson).toEqual([]);
    dockLog = onceStderr.split('\n').filter((l) => l.startsWith('{')).join('\n');
    onceStderr = dockLog.split('\n').map((l) => (JSON.parse(l) as { msg: string }).msg).join('\n');
    journal = readJournal(join(tmp.path, 'dock-state'));
    list = ((await (await server.request('/v1/recordings')).json()) as { recordings: RecordingListEntry[] }).recordings;
  }, 300_000);

  afterAll(async () => {
    writeReport('bad-inputs-camera', { onceExit, onceSeconds, peakRssKiB, recordingsOnServer: list.length, outcomes });
    await server?.stop();
    tmp.cleanup();
  });

  const rowOf = (c: Case) => journal.rows.find((r) => r.bay === c.bay && join(bays, c.bay, r.relPath) === c.path);
  const onServer = (c: Case) => list.filter((r) => r.sha256 === c.sha256 && (!c.serial || r.deviceSerial === c.serial));
  const contentSha = async (id: string): Promise<string> => sha256Of(Buffer.from(await (await server.request(`/v1/recordings/${id}/content`)).arrayBuffer()));
  const note = (c: Case, outcome: string, extra: Record<string, unknown> = {}) => outcomes.push({ input: c.name, outcome, ...extra });

  async function expectArrivedExact(c: Case): Promise<RecordingListEntry> {
    const entries = onServer(c);
    expect(entries.map((e) => e.state)).toEqual(['complete']);
    expect(await contentSha(entries[0]!.id)).toBe(c.sha256);
    return entries[0]!;
  }

  it('the run ends with exit 3 (attention needed) and one stderr line per quarantined or flagged file', () => {
    expect(onceExit).toBe(3);
    expect(onceStderr).toMatch(/quarantined: .*DUMP_0001\.bin: not_media: not a media file \(ffprobe: /);
    expect(onceStderr).toMatch(/flagged: .*NOTMEDIA_0001\.mp4 .*unreadable: uploaded as opaque bytes, kept on the camera \(plain text/);
    expect(onceStderr).toMatch(/flagged: .*GOPR0001\.MP4 .*unreadable: uploaded as opaque bytes, kept on the camera \(ffprobe: .*moov atom not found/);
    expect(onceStderr).toMatch(/skipped: bay-faulty\/DCIM\/100BWC\/HUGE_0001\.mp4: sparse: /);
    expect(onceStderr).toMatch(/flagged: /);
  });

  it('good recordings beside the bad ones arrive byte-exact and are wiped after their receipt', async () => {
    for (const name of ['good 1', 'good 2', 'good beside faults', 'clock 3 years ahead']) {
      const c = cases.get(name)!;
      await expectArrivedExact(c);
      expect(existsSync(c.path)).toBe(false);
      expect(rowOf(c)?.state).toBe('wiped');
      note(c, 'uploaded byte-exact, receipt verified, wiped');
    }
    const skewEntry = onServer(cases.get('clock 3 years ahead')!)[0]!;
    const detail = (await (await server.request(`/v1/recordings/${skewEntry.id}`)).json()) as { manifest: RecordingManifest };
    expect(Math.abs((detail.manifest.device.clockOffsetMs ?? 0) / 1000 - THREE_YEARS_S)).toBeLessThan(600);
  });

  it('zero-byte files and files not media by name are quarantined with a reason, kept on the camera', () => {
    for (const [name, pattern, code] of [['zero-byte', /zero-byte/, 'zero_byte'], ['binary named .bin', /not a media file \(ffprobe: /, 'not_media'], ['text named .txt', /not a media file \(plain text/, 'not_media']] as const) {
      const c = cases.get(name)!;
      const row = rowOf(c);
      expect({ name, state: row?.state, code: row?.reasonCode }).toEqual({ name, state: 'quarantined', code });
      expect(row!.reason).toMatch(pattern);
      expect(existsSync(c.path)).toBe(true);
      expect(onServer(c)).toEqual([]);
      note(c, `quarantined ${code}: ${row!.reason!.slice(0, 120)}`);
    }
  });

  it('a 20 GB sparse file is left on the card, listed as sparse (attention), never read, in bounded memory', async () => {
    const c = cases.get('20 GB sparse')!;
    expect(rowOf(c)).toBeUndefined();
    expect(existsSync(c.path)).toBe(true);
    expect(list.some((r) => r.size === 20 * 1024 ** 3)).toBe(false);
    // A 20 GB file read into memory would need 20 GB; the whole dock stays far below 400 MB.
    expect(peakRssKiB).toBeLessThan(400 * 1024);
    note(c, 'left on the card, listed: sparse');
  });

  it('a cut MP4 without moov and a text file named .mp4 are evidence: uploaded byte-exact as opaque bytes, flagged unreadable with ffprobe\'s words, never wiped', async () => {
    for (const [name, words] of [['GoPro MP4 cut before its moov', /^ffprobe: .*moov atom not found/], ['text named .mp4', /^plain text/]] as const) {
      const c = cases.get(name)!;
      const entry = await expectArrivedExact(c);
      const detail = (await (await server.request(`/v1/recordings/${entry.id}`)).json()) as { manifest: RecordingManifest };
      expect(detail.manifest.file.unreadable).toMatch(words);
      expect(detail.manifest.file.media).toBeUndefined();
      expect(detail.manifest.segments.every((s) => s.startTime === undefined)).toBe(true);
      expect(detail.manifest.integrity.notes.join(' ')).toMatch(/unreadable: uploaded as opaque bytes/);
      expect(existsSync(c.path)).toBe(true);
      expect(rowOf(c)?.state).toBe('completed');
      note(c, `uploaded byte-exact, flagged unreadable (${detail.manifest.file.unreadable!.slice(0, 80)}), not wiped`);
    }
  });

  it('truncated, bit-flipped and forged recordings are uploaded byte-exact as evidence, flagged, never wiped', async () => {
    for (const [name, integrity] of [['truncated (power loss)', undefined], ['bit-flipped', 'hash-mismatch'], ['forged signature', 'signature-invalid']] as const) {
      const c = cases.get(name)!;
      const entry = await expectArrivedExact(c);
      if (integrity) expect(entry.integrity).toBe(integrity);
      expect(existsSync(c.path)).toBe(true);
      expect(rowOf(c)?.state).toBe('completed');
      note(c, `uploaded byte-exact, flagged ${entry.integrity}${name.startsWith('truncated') ? ' + truncated' : ''}, not wiped`);
    }
  });

  it('odd file names (spaces, unicode, a newline) arrive byte-exact under their own names', async () => {
    for (const name of ['clip with spaces.mp4', 'unicodé_日本語_🚓.mp4', 'new\nline.mp4']) {
      const c = cases.get(`name ${JSON.stringify(name)}`)!;
      const entry = await expectArrivedExact(c);
      expect(entry.fileName).toBe(name);
      note(c, `uploaded byte-exact as ${JSON.stringify(entry.fileName)}, ${existsSync(c.path) ? 'kept' : 'wiped'}`);
    }
  });

  it('symlinks out of the camera (a file, a folder) are not followed: nothing of theirs is uploaded, the originals are untouched', () => {
    for (const name of ['symlink to a file outside', 'symlinked folder']) {
      const c = cases.get(name)!;
      expect(onServer(c)).toEqual([]);
      expect(existsSync(c.path)).toBe(true);
      note(c, 'not followed, reported on the bay, nothing uploaded');
    }
    expect(dockLog).toMatch(/symlink on camera storage: not followed/);
  });

  it('DEVICE.json malformed, missing or 50 MB; sidecar malformed or 50 MB: uploaded byte-exact, flagged, not wiped', async () => {
    for (const name of ['DEVICE.json malformed', 'DEVICE.json missing', 'DEVICE.json 50 MB', 'sidecar malformed', 'sidecar 50 MB']) {
      const c = cases.get(name)!;
      const entry = await expectArrivedExact(c);
      expect({ name, integrity: entry.integrity }).not.toEqual({ name, integrity: 'verified' });
      expect(existsSync(c.path)).toBe(true);
      note(c, `uploaded byte-exact, flagged ${entry.integrity}, not wiped`);
    }
  });

  it('a serial of "../../etc" cannot steer any path: the id is sanitised and the server data dir holds only its own layout', async () => {
    const c = cases.get('serial ../../etc')!;
    const entry = await expectArrivedExact(c);
    expect(entry.id).not.toMatch(/\.\.|\//);
    expect(readdirSync(server.dataDir).sort()).toEqual(expect.arrayContaining(['blobs', 'recordings']));
    // recordings/<dock id>/<recording id>.json (namespaced per dock, issue 9 item 10): nothing else, nowhere else.
    expect(readdirSync(join(server.dataDir, 'recordings'))).toEqual([DOCK_ID]);
    for (const name of readdirSync(join(server.dataDir, 'recordings', DOCK_ID))) expect(name).toMatch(/^[A-Za-z0-9._-]+\.json$/);
    note(c, `uploaded as ${entry.id} (serial kept in the manifest), ${existsSync(c.path) ? 'kept' : 'wiped'}`);
  });

  it('the same recording on two cameras: both arrive byte-exact, the bytes are stored once', async () => {
    const c = cases.get('same recording on a second camera')!;
    const entries = onServer(c);
    expect(entries.length).toBe(2);
    expect(new Set(entries.map((e) => e.deviceSerial)).size).toBe(2);
    for (const e of entries) expect(await contentSha(e.id)).toBe(c.sha256);
    const manifests = await Promise.all(list.map(async (r) => ((await (await server.request(`/v1/recordings/${r.id}`)).json()) as { manifest: RecordingManifest }).manifest));
    const distinct = new Set(manifests.flatMap((m) => m.segments.map((s) => s.sha256)));
    expect(countBlobs(join(server.dataDir, 'blobs'))).toBe(distinct.size);
    note(c, `two recordings (one per camera, ${entries.map((e) => e.integrity).join(' / ')}), blobs stored once`);
  });
});
