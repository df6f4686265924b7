/**
 * Replay expects exactly what the dock takes up. A tricky card (companions by name and by a
 * maker's pairing, a foreign JSON beside a recording, hidden files and folders, temporary files, a
 * stray .json, odd and upper-case extensions, a zero-byte file, a file that is no media, a maker's
 * index small and large, a symlink) is read by replay's fixture reader and by the dock's own
 * `--dry-run` (the walk, the sidecars, ffprobe, as a run would): every path the dock does not leave
 * alone is a recording replay expects, and nothing else is.
 */
import { describe, it, expect, afterAll } from '@jest/globals';
import { copyFileSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { recordingsOf } from '../../src/replay/fixtures.js';
import { dryRun } from '../../src/dock/dryRun.js';
import { loadDockConfig } from '../../src/dock/config.js';
import { makeTempDir } from '../helpers/tmp.js';

const FIXTURE = fileURLToPath(new URL('../../fixtures/cameras/mp4-h264/', import.meta.url));
const MP4 = join(FIXTURE, 'DCIM/100BWC/20251204_122611_BWC196360_0001.mp4');

describe('replay fixtures and the dock agree on what a card holds', () => {
  const tmp = makeTempDir('bodycam-replay-fixtures-');
  afterAll(() => tmp.cleanup());

  it('on a tricky card, replay expects every file the dock takes up and nothing it leaves alone', async () => {
    const bays = join(tmp.path, 'bays');
    const card = join(bays, 'bay-01');
    const put = (rel: string, bytes: Buffer | string): void => { mkdirSync(dirname(join(card, rel)), { recursive: true }); writeFileSync(join(card, rel), bytes); };
    const copy = (rel: string): void => { mkdirSync(dirname(join(card, rel)), { recursive: true }); copyFileSync(MP4, join(card, rel)); };
    copyFileSync(join(FIXTURE, 'DEVICE.json'), (mkdirSync(card, { recursive: true }), join(card, 'DEVICE.json')));
    // Recordings with companions: same base name, the full name + extension, a maker's pairing.
    copy('DCIM/100BWC/CLIP0001.MP4');
    put('DCIM/100BWC/CLIP0001.THM', Buffer.alloc(64, 1));
    put('DCIM/100BWC/clip0001.mp4.srt', '1\n00:00:00,000 --> 00:00:01,000\nhello\n');
    put('DCIM/100BWC/CLIP0001.json', JSON.stringify({ vendor: 'someone else', note: 'not our sidecar format' }));
    copy('DCIM/100GOPRO/GX010002.MP4');
    put('DCIM/100GOPRO/GL010002.LRV', Buffer.alloc(128, 2));
    put('MISC/version.txt', '{"camera type":"HERO9 Black"}\n');
    copy('PRIVATE/M4ROOT/CLIP/C0003.MP4');
    put('PRIVATE/M4ROOT/CLIP/C0003M01.XML', '<xml/>');
    copy('PRIVATE/M4ROOT/SUB/C0003S03.MP4');
    put('PRIVATE/M4ROOT/MEDIAPRO.XML', '<MediaProfile/>');
    // A maker's index name too large for one: it may be a recording renamed to hide it, so it is read.
    put('PRIVATE/M4ROOT/STATUS.BIN', Buffer.alloc(9 * 1024 * 1024, 0x41));
    // Odd and upper-case extensions; a proxy whose recording is not on the card is a recording itself.
    copy('DCIM/100BWC/ODD.Mts');
    copy('PRIVATE/M4ROOT/SUB/C0009S03.MP4');
    put('DCIM/100BWC/notes.txt', 'radio check at 14:02\n');
    put('DCIM/100BWC/blob.xyz', Buffer.from([0, 1, 2, 3, 250, 251, 252, 253, 7, 7, 7, 7]));
    put('DCIM/100BWC/EMPTY.MP4', Buffer.alloc(0));
    // Left alone: hidden, temporary, a stray .json, a symlink, the camera-internal folder.
    copy('DCIM/100BWC/.hidden.mp4');
    copy('.Trashes/501/LOST.MP4');
    copy('DCIM/100BWC/NEXT.MP4.part');
    put('DCIM/100BWC/NEXT.MP4.tmp', 'x');
    put('DCIM/100BWC/orphan.json', '{}');
    symlinkSync(MP4, join(card, 'DCIM/100BWC/LINK.MP4'));
    copy('.system/INTERNAL.MP4');

    const expected = (await recordingsOf('bay-01', card)).map((r) => r.relPath).sort();
    const tokenFile = join(tmp.path, 'token');
    writeFileSync(tokenFile, 'tok-for-dry-run\n', { mode: 0o600 });
    const config = loadDockConfig({ flags: { bays, endpoint: 'http://127.0.0.1:9', tokenFile, stateDir: join(tmp.path, 'state'), dockId: 'dock-1', settle: '0s', logLevel: 'silent' }, env: {} });
    const run = await dryRun(config);
    const takenUp = run.entries.filter((e) => e.action !== 'skip').map((e) => e.path).sort();
    const leftAlone = run.entries.filter((e) => e.action === 'skip').map((e) => e.path);

    expect(expected).toEqual(takenUp);
    expect(expected).toEqual([
      'DCIM/100BWC/CLIP0001.MP4', 'DCIM/100BWC/EMPTY.MP4', 'DCIM/100BWC/ODD.Mts', 'DCIM/100BWC/blob.xyz', 'DCIM/100BWC/notes.txt',
      'DCIM/100GOPRO/GX010002.MP4', 'PRIVATE/M4ROOT/CLIP/C0003.MP4', 'PRIVATE/M4ROOT/STATUS.BIN', 'PRIVATE/M4ROOT/SUB/C0009S03.MP4',
    ]);
    // What the dock takes up and does not ingest (no media, empty) it quarantines: still a row replay expects.
    const action = (path: string): string | undefined => run.entries.find((e) => e.path === path)?.action;
    expect(['notes.txt', 'blob.xyz', 'EMPTY.MP4'].map((n) => action(`DCIM/100BWC/${n}`))).toEqual(['quarantine', 'quarantine', 'quarantine']);
    expect(action('DCIM/100BWC/CLIP0001.MP4')).toMatch(/^(upload|flag)$/);
    for (const path of ['DCIM/100BWC/.hidden.mp4', '.Trashes', 'DCIM/100BWC/NEXT.MP4.part', 'DCIM/100BWC/NEXT.MP4.tmp', 'DCIM/100BWC/orphan.json', 'DCIM/100BWC/LINK.MP4', '.system', 'MISC/version.txt', 'PRIVATE/M4ROOT/MEDIAPRO.XML']) {
      expect({ path, skipped: leftAlone.includes(path) }).toEqual({ path, skipped: true });
    }
    // Companions travel with their recording: never expected on their own.
    for (const path of ['DCIM/100BWC/CLIP0001.THM', 'DCIM/100BWC/clip0001.mp4.srt', 'DCIM/100BWC/CLIP0001.json', 'DCIM/100GOPRO/GL010002.LRV', 'PRIVATE/M4ROOT/CLIP/C0003M01.XML', 'PRIVATE/M4ROOT/SUB/C0003S03.MP4']) {
      expect({ path, expected: expected.includes(path), dock: run.entries.some((e) => e.path === path) }).toEqual({ path, expected: false, dock: false });
    }
  });
});
