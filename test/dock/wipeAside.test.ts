/**
 * A dock SIGKILLed between the rename and the unlink of a wipe (unlinkChecked) leaves the checked
 * file under its aside name. The next scan must not take it for a new recording (it would be hashed,
 * sent and receipted a second time): it is put back under its own name, for its own row, and the
 * wipe starts again from its first check. Found by the crash loop (test/reliability/crashLoop).
 */
import { describe, it, expect, afterAll } from '@jest/globals';
import { existsSync, lstatSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { listCameraFiles } from '../../src/protocol/cameraStorage/index.js';
import { Journal, type StatSnapshot } from '../../src/dock/journal.js';
import { isAsideOfRunningWipe, nameBeforeWipe, restoreInterruptedWipes } from '../../src/dock/wipe.js';
import { makeTempDir } from '../helpers/tmp.js';

function snapshotOf(path: string): StatSnapshot {
  const s = lstatSync(path);
  return { size: s.size, mtimeMs: s.mtimeMs, ino: s.ino, dev: s.dev, ctimeMs: s.ctimeMs, sidecar: null };
}

/** A camera with one file whose journal row is completed (receipted, about to be wiped). */
function cameraWithCompletedRow(root: string, stateDir: string, name = 'FILE0001.MP4'): { journal: Journal; media: string; key: string } {
  mkdirSync(join(root, 'DCIM'), { recursive: true });
  const media = join(root, 'DCIM', name);
  writeFileSync(media, Buffer.alloc(4096, 7));
  const journal = Journal.open(stateDir);
  const stat = snapshotOf(media);
  const row = journal.insertDetected({ serial: 'CAM1', fileName: name, relPath: `DCIM/${name}`, bay: 'bay-1', size: stat.size, mtimeMs: stat.mtimeMs, critical: false, stat });
  for (const state of ['probed', 'planned', 'hashed', 'uploading', 'completed'] as const) {
    if (state === 'planned') { journal.setPlan(row.key, [{ index: 0, offset: 0, length: 4096 }], {}); continue; }
    journal.transition(row.key, state, state === 'hashed' ? { recordingId: 'rec-1', sha256: 'ab'.repeat(32), manifestJson: '{}' } : state === 'completed' ? { receiptJson: '{}' } : {});
  }
  return { journal, media, key: row.key };
}

describe('a wipe interrupted between its rename and its unlink', () => {
  const tmp = makeTempDir('bodycam-wipe-aside-');
  afterAll(() => tmp.cleanup());

  it('names the aside file of unlinkChecked and nothing else', () => {
    expect(nameBeforeWipe('FILE0001.wipe-0123456789ab.MP4')).toBe('FILE0001.MP4');
    expect(nameBeforeWipe('a.b.wipe-0123456789ab.mp4')).toBe('a.b.mp4');
    expect(nameBeforeWipe('NOEXT.wipe-0123456789ab')).toBe('NOEXT');
    for (const other of ['FILE0001.MP4', 'FILE.wipe-0123.MP4', 'FILE.wipe-0123456789AB.MP4', 'FILE.wipe-0123456789abc.MP4', '.wipe-0123456789ab.MP4']) expect(nameBeforeWipe(other)).toBeUndefined();
  });

  it('puts the checked file back under its name for its completed row, so the next scan finds one recording, not two', async () => {
    const root = join(tmp.path, 'cam-a');
    const { journal, media, key } = cameraWithCompletedRow(root, join(tmp.path, 'state-a'));
    const bytes = readFileSync(media);
    renameSync(media, join(root, 'DCIM', 'FILE0001.wipe-00112233aabb.MP4')); // the kill landed here
    const warned: string[] = [];
    const restored = await restoreInterruptedWipes(journal, 'CAM1', (await listCameraFiles(root)).files, { warn: (m) => warned.push(m) });
    expect(restored).toBe(1);
    expect(warned).toHaveLength(1);
    const after = (await listCameraFiles(root)).files.map((f) => f.relPath);
    expect(after).toEqual(['DCIM/FILE0001.MP4']);
    expect(readFileSync(media).equals(bytes)).toBe(true);
    expect(journal.listByPath('CAM1', 'DCIM/FILE0001.MP4').map((r) => r.key)).toEqual([key]);
    journal.close();
  });

  it('leaves alone the aside file of a wipe at work (its row has a running job): that wipe unlinks it itself', async () => {
    const root = join(tmp.path, 'cam-c');
    const { journal, media, key } = cameraWithCompletedRow(root, join(tmp.path, 'state-c'));
    const aside = join(root, 'DCIM', 'FILE0001.wipe-aabbccddeeff.MP4');
    renameSync(media, aside); // a live wipe between its rename and its unlink
    const files = (await listCameraFiles(root)).files;
    expect(await restoreInterruptedWipes(journal, 'CAM1', files, undefined, (k) => k === key)).toBe(0);
    expect(existsSync(aside)).toBe(true);
    expect(existsSync(media)).toBe(false);
    // The scan passes over it too (not a recording to settle and then find vanished).
    expect(files.map((f) => isAsideOfRunningWipe(journal, 'CAM1', f, (k) => k === key))).toEqual([true]);
    expect(files.map((f) => isAsideOfRunningWipe(journal, 'CAM1', f, () => false))).toEqual([false]);
    // The same file once no job holds the row (the dock was killed there): put back.
    expect(await restoreInterruptedWipes(journal, 'CAM1', files, undefined, () => false)).toBe(1);
    expect(existsSync(media)).toBe(true);
    journal.close();
  });

  it('leaves alone an aside-looking file no completed row of this camera vouches for, and never overwrites a file that took the name', async () => {
    const root = join(tmp.path, 'cam-b');
    const { journal, media } = cameraWithCompletedRow(root, join(tmp.path, 'state-b'));
    // Another camera's row does not count; a different inode at the aside name does not count.
    const foreign = join(root, 'DCIM', 'OTHER.wipe-00112233aabb.MP4');
    writeFileSync(foreign, 'not ours');
    const aside = join(root, 'DCIM', 'FILE0001.wipe-445566778899.MP4');
    renameSync(media, aside);
    expect(await restoreInterruptedWipes(journal, 'CAM2', (await listCameraFiles(root)).files)).toBe(0);
    // The name was taken again meanwhile (a new recording): both stay, nothing overwritten.
    writeFileSync(media, 'a new recording under the old name');
    expect(await restoreInterruptedWipes(journal, 'CAM1', (await listCameraFiles(root)).files)).toBe(0);
    expect(readFileSync(media, 'utf8')).toBe('a new recording under the old name');
    expect(existsSync(aside)).toBe(true);
    expect(existsSync(foreign)).toBe(true);
    journal.close();
  });
});
