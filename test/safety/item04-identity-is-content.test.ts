/**
 * Issue 9 item 4: identity is content, not a name. A journal row in a final state never hides a
 * file that is on the card now: after a wipe, a different file at the same path with the same size
 * and mtime (restored with `touch -r`) is ingested; on a kept camera an in-place overwrite (size and
 * mtime kept) becomes a new version; a touch alone (same bytes) is not a new recording; a camera
 * without DEVICE.json (serial "unknown") behaves the same. Built CLI, real server, real files.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { closeSync, copyFileSync, existsSync, mkdirSync, openSync, readFileSync, readSync, renameSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { recordCamera } from '../../src/camera/index.js';
import { makePlainMp4 } from '../helpers/dock.js';
import { notOnServer, sha256, startRig, type DockRig } from '../helpers/cards.js';

/** Flip one byte in the middle of the file in place: same size, different bytes. */
function overwriteInPlace(path: string, keepMtimeFrom: string): void {
  const size = statSync(path).size;
  const fd = openSync(path, 'r+');
  const byte = Buffer.alloc(1);
  readSync(fd, byte, 0, 1, Math.floor(size / 2));
  writeSync(fd, Buffer.from([byte[0]! ^ 0x5a]), 0, 1, Math.floor(size / 2));
  closeSync(fd);
  execFileSync('touch', ['-r', keepMtimeFrom, path]);
}

describe('item 4: a final journal row never hides a file that is on the card now', () => {
  let rig: DockRig;
  const foreignRel = join('DCIM', '100MEDIA', 'CLIP0001.MP4');
  let reference: string;

  beforeAll(async () => {
    rig = await startRig('bodycam-item04-');
    // A camera of another make: no DEVICE.json, no sidecar (serial "unknown").
    mkdirSync(join(rig.bays, 'bay-foreign', 'DCIM', '100MEDIA'), { recursive: true });
    await makePlainMp4(join(rig.bays, 'bay-foreign', foreignRel), 2);
    reference = join(rig.root, 'mtime-reference');
    copyFileSync(join(rig.bays, 'bay-foreign', foreignRel), reference);
    execFileSync('touch', ['-r', join(rig.bays, 'bay-foreign', foreignRel), reference]);
  });
  afterAll(async () => { await rig.close(); });

  it('ingests a different file written after the wipe at the same path, size and mtime (no DEVICE.json)', async () => {
    const media = join(rig.bays, 'bay-foreign', foreignRel);
    const original = readFileSync(media);
    const first = await rig.once(['--wipe-after-ingest']);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(existsSync(media)).toBe(false);
    const wiped = rig.rows().filter((r) => r.relPath === foreignRel);
    expect(wiped.map((r) => r.state)).toEqual(['wiped']);
    expect(wiped[0]!.recordingId).toMatch(/^unknown-[0-9a-f]{32}-[0-9a-f]{16}$/);

    // Another recording, same size, same name, mtime restored: the old key serial|path|size|mtime.
    copyFileSync(reference, media);
    overwriteInPlace(media, reference);
    const replacement = readFileSync(media);
    expect(replacement.length).toBe(original.length);
    expect(statSync(media).mtimeMs).toBe(statSync(reference).mtimeMs);
    expect(sha256(replacement)).not.toBe(sha256(original));
    // Keep the camera this time: the file must be on the server and the card both.
    const second = await rig.once();
    expect(second.code).toBe(0);
    expect(await notOnServer(rig, 'bay-foreign')).toEqual([]);
    const rows = rig.rows().filter((r) => r.relPath === foreignRel);
    expect(rows.map((r) => r.state)).toEqual(['wiped', 'completed']);
    expect(rows[1]!.recordingId).not.toBe(rows[0]!.recordingId);
    expect(sha256((await rig.serverBytes(rows[1]!.recordingId!))!)).toBe(sha256(replacement));
    // The first recording is still what it was.
    expect(sha256((await rig.serverBytes(rows[0]!.recordingId!))!)).toBe(sha256(original));
  }, 120_000);

  it('ingests an in-place overwrite of a kept file (size and mtime kept) as a new version, and --once does not claim success before', async () => {
    const media = join(rig.bays, 'bay-foreign', foreignRel);
    overwriteInPlace(media, reference);
    const bytes = readFileSync(media);
    const third = await rig.once();
    expect(third.code).toBe(0);
    expect(await notOnServer(rig, 'bay-foreign')).toEqual([]);
    const rows = rig.rows().filter((r) => r.relPath === foreignRel);
    expect(rows).toHaveLength(3);
    expect(rows[2]!.sha256).toBe(sha256(bytes));
  }, 120_000);

  it('a touch alone (same bytes, new mtime and ctime) is re-hashed but is not a new recording', async () => {
    const media = join(rig.bays, 'bay-foreign', foreignRel);
    execFileSync('touch', [media]);
    const before = rig.rows().length;
    const again = await rig.once();
    expect(again.code).toBe(0);
    expect(rig.rows()).toHaveLength(before);
    expect(await notOnServer(rig, 'bay-foreign')).toEqual([]);
  }, 120_000);

  it('a camera with DEVICE.json and sidecars: an overwrite in place is a new version (flagged: the sidecar vouches for other bytes), never hidden by the receipted row', async () => {
    const cam = join(rig.bays, 'bay-bwc');
    const recorded = await recordCamera({ storage: cam, count: 1, seed: 'item04-bwc', durationSeconds: 2, width: 160, height: 120, fps: 10 });
    const media = recorded.files[0]!.mediaPath;
    const rel = media.slice(cam.length + 1);
    const first = await rig.once();
    expect(first.code).toBe(0);
    const ref = join(rig.root, 'bwc-ref');
    copyFileSync(media, ref);
    execFileSync('touch', ['-r', media, ref]);
    overwriteInPlace(media, ref);
    const second = await rig.once();
    // Exit 3: the new bytes do not match the camera's signed sidecar (flagged), but they are on the server.
    expect(second.code).toBe(3);
    expect(second.stderr).toMatch(/flagged: /);
    const rows = rig.rows().filter((r) => r.relPath === rel);
    expect(rows.map((r) => r.state)).toEqual(['completed', 'completed']);
    expect(rows[1]!.sha256).toBe(sha256(readFileSync(media)));
    expect(sha256((await rig.serverBytes(rows[1]!.recordingId!))!)).toBe(sha256(readFileSync(media)));
    // A renamed file is a file at a new path: its own recording.
    const renamed = join(cam, rel.replace(/(\.\w+)$/, '-renamed$1'));
    renameSync(media, renamed);
    renameSync(recorded.files[0]!.sidecarPath!, renamed.replace(/\.\w+$/, '.json'));
    const third = await rig.once();
    expect([0, 3]).toContain(third.code);
    const renamedRows = rig.rows().filter((r) => r.relPath === renamed.slice(cam.length + 1));
    expect(renamedRows.map((r) => r.state)).toEqual(['completed']);
    expect(sha256((await rig.serverBytes(renamedRows[0]!.recordingId!))!)).toBe(sha256(readFileSync(renamed)));
  }, 120_000);
});
