/**
 * Findings of an attacker's review of the dock (session 13), each through the real CLI:
 * - a name too long for the wipe's aside name (`<base>.wipe-<12 hex><ext>` over 255 bytes) made its
 *   rename fail for ever, reported as success; with a companion of such a name the recording was
 *   deleted and the companion left behind. Now the wipe checks every name before the first delete:
 *   everything is kept, `name_too_long`, exit 3;
 * - a hidden or temporary media file (`.X.mp4`, `X.mp4.part`: a file hidden on a PC, a write cut by
 *   power loss) was left alone with exit 0, while `bodycam dock check` said the card may hold
 *   evidence: `--once` now lists it and exits 3;
 * - a wipe that keeps failing (a write-protected card) read as success: now `not wiped:`, exit 1.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sha256, startRig, type DockRig } from '../helpers/cards.js';
import { makeFmp4 } from '../helpers/dock.js';

describe('dock wipe: review 70', () => {
  const rigs: DockRig[] = [];
  const mounts: string[] = [];
  afterAll(async () => {
    for (const m of mounts.reverse()) spawnSync('umount', [m]);
    for (const r of rigs) await r.close();
  });
  const rig = async (name: string): Promise<DockRig> => { const r = await startRig(`bodycam-w70-${name}-`); rigs.push(r); return r; };

  it('a name too long to set aside keeps the recording and its companion, name_too_long, exit 3', async () => {
    const r = await rig('long');
    const dir = join(r.bays, 'bay1', 'DCIM');
    mkdirSync(dir, { recursive: true });
    const long = join(dir, `${'x'.repeat(240)}.mp4`);
    await makeFmp4(long, 1);
    // A recording whose name fits, with a vendor companion (.json) whose aside name does not.
    const base = 'y'.repeat(233);
    const fits = join(dir, `${base}.mp4`);
    copyFileSync(long, fits);
    writeFileSync(join(dir, `${base}.json`), '{"vendor":"acme","gps":[1,2]}\n');
    const run = await r.once(['--wipe-after-ingest']);
    expect(run.code).toBe(3);
    expect((run.stdout + run.stderr).match(/kept: [^\n]*name_too_long/g)?.length).toBe(2);
    for (const file of [long, fits, join(dir, `${base}.json`)]) expect(existsSync(file)).toBe(true);
    const rows = r.rows();
    expect(rows.map((row) => row.state).sort()).toEqual(['completed', 'completed']);
    for (const row of rows) expect(sha256((await r.serverBytes(row.recordingId!))!)).toBe(sha256(readFileSync(join(r.bays, 'bay1', row.relPath))));
  }, 120_000);

  it('hidden and temporary media files left on the card are listed and the run exits 3', async () => {
    const r = await rig('hidden');
    const dir = join(r.bays, 'bay1', 'DCIM');
    mkdirSync(dir, { recursive: true });
    await makeFmp4(join(dir, 'FILE0001.MP4'), 1);
    copyFileSync(join(dir, 'FILE0001.MP4'), join(dir, '.FILE0002.MP4'));
    copyFileSync(join(dir, 'FILE0001.MP4'), join(dir, 'FILE0003.MP4.part'));
    // A host's AppleDouble resource fork is not video: alone, it would not stop a success.
    writeFileSync(join(dir, '._FILE0001.MP4'), Buffer.alloc(4096));
    const run = await r.once(['--wipe-after-ingest']);
    expect(run.code).toBe(3);
    expect(run.stdout + run.stderr).toMatch(/skipped: bay1\/DCIM\/\.FILE0002\.MP4: hidden/);
    expect(run.stdout + run.stderr).toMatch(/skipped: bay1\/DCIM\/FILE0003\.MP4\.part: temporary/);
    expect(run.stdout + run.stderr).not.toMatch(/skipped: .*\._FILE0001/);
    expect(existsSync(join(dir, 'FILE0001.MP4'))).toBe(false);
  }, 120_000);

  it('a wipe that keeps failing (write-protected card) is `not wiped:`, exit 1, and nothing is lost', async () => {
    const r = await rig('ro');
    const card = join(r.bays, 'bay1');
    const dir = join(card, 'DCIM');
    mkdirSync(dir, { recursive: true });
    await makeFmp4(join(dir, 'FILE0001.MP4'), 1);
    const bytes = readFileSync(join(dir, 'FILE0001.MP4'));
    // Read-only bind mount of the card (root, as on CI): a write-protect switch.
    for (const args of [['--bind', card, card], ['-o', 'remount,ro,bind', card]]) {
      const done = spawnSync('mount', args, { encoding: 'utf8' });
      if (done.status !== 0) throw new Error(`mount ${args.join(' ')}: ${done.stderr} (this case needs root, as on CI)`);
      if (args[0] === '--bind') mounts.push(card);
    }
    const run = await r.once(['--wipe-after-ingest']);
    expect(run.code).toBe(1);
    expect(run.stdout + run.stderr).toMatch(/not wiped: DCIM\/FILE0001\.MP4: /);
    expect(readFileSync(join(dir, 'FILE0001.MP4')).equals(bytes)).toBe(true);
    const [row] = r.rows();
    expect(row!.state).toBe('completed');
    expect(sha256((await r.serverBytes(row!.recordingId!))!)).toBe(sha256(bytes));
  }, 120_000);
});
