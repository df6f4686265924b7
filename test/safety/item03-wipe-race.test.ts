/**
 * Issue 9 item 3: check and delete the same file. The wipe opens the file, re-hashes it through
 * that descriptor, compares fstat before and after (dev, ino, size, mtime, ctime), requires the
 * path to still name that inode (lstat) and only then unlinks. The race is made deterministic
 * with the wipe's test pause (BODYCAM_WIPE_PAUSE_FILE): the dock stops after its re-hash, the test
 * changes the camera, then lets it go on. Real built CLI, real server, real files.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, statSync, symlinkSync, unlinkSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { makeTempDir } from '../helpers/tmp.js';
import { ServerProcess } from '../helpers/reliability.js';
import { dockOnce, journalRows, makeCamera, waitForPause, type Camera } from '../helpers/wipeKit.js';

const WHOLE_SECOND = 1_700_000_000;

describe('item 3: the wipe checks and deletes the same file', () => {
  const tmp = makeTempDir('bodycam-item03-');
  let server: ServerProcess;
  let serverKey: string;
  let n = 0;
  beforeAll(async () => {
    server = new ServerProcess(join(tmp.path, 'server-data'));
    await server.start();
    serverKey = join(server.dataDir, 'server-key.pub.pem');
  });
  afterAll(async () => { await server.stop(); tmp.cleanup(); });

  /** Record a camera, then run `dock --once --wipe-after-ingest`, doing `race` while the wipe is paused after its re-hash. */
  const raceTheWipe = async (seed: string, race: (camera: Camera) => void | Promise<void>) => {
    const root = join(tmp.path, `case-${++n}`);
    const bays = join(root, 'bays');
    mkdirSync(bays, { recursive: true });
    const camera = await makeCamera(bays, 'bay-1', seed);
    // A whole-second mtime, so that the attacker can restore it exactly.
    utimesSync(camera.media, WHOLE_SECOND, WHOLE_SECOND);
    const original = readFileSync(camera.media);
    const pauseFile = join(root, 'wipe-pause');
    const running = dockOnce({ bays, endpoint: server.url, stateDir: join(root, 'state'), tokenFile: join(root, 'token'), dockId: `dock-${n}`, wipe: true, serverKey, env: { BODYCAM_WIPE_PAUSE_FILE: pauseFile } });
    const pausedAt = await Promise.race([waitForPause(pauseFile), running.then((r) => { throw new Error(`dock ended before the wipe paused (exit ${r.code}): ${r.stderr}`); })]);
    try {
      expect(pausedAt).toBe(camera.media.slice(camera.root.length + 1));
      await race(camera);
    } finally {
      unlinkSync(pauseFile);
    }
    const run = await running;
    const [row] = journalRows(join(root, 'state'));
    return { camera, original, run, row: row! };
  };

  it('control: nothing changes during the pause, so the file and sidecar are wiped', async () => {
    const { camera, run, row } = await raceTheWipe('item03-control', () => {});
    expect(run.code).toBe(0);
    expect(row.state).toBe('wiped');
    expect(existsSync(camera.media)).toBe(false);
    expect(existsSync(camera.sidecar)).toBe(false);
  });

  it('a file overwritten in place (same size, mtime restored) while the re-hash ran is kept: its ctime moved', async () => {
    let written: Buffer | undefined;
    const { camera, original, row } = await raceTheWipe('item03-inplace', (cam) => {
      const before = statSync(cam.media);
      const fd = openSync(cam.media, 'r+');
      const middle = Math.floor(before.size / 2);
      const patch = Buffer.from(readFileSync(cam.media).subarray(middle, middle + 64).map((b) => b ^ 0x5a));
      writeSync(fd, patch, 0, patch.length, middle);
      closeSync(fd);
      utimesSync(cam.media, WHOLE_SECOND, WHOLE_SECOND);
      const after = statSync(cam.media);
      expect(after.size).toBe(before.size);
      expect(after.mtimeMs).toBe(before.mtimeMs);
      written = readFileSync(cam.media);
    });
    expect(row.state).toBe('completed');
    expect(row.info.wipeKeptCode).toBe('file_changed');
    expect(row.reason).toMatch(/changed while it was checked \(.*ctime/);
    // The final bytes are on the camera (they are on no server yet): never lost.
    expect(readFileSync(camera.media).equals(written!)).toBe(true);
    expect(written!.equals(original)).toBe(false);
    expect(existsSync(camera.sidecar)).toBe(true);
  });

  it('a file replaced by rename during the wipe (another inode at the path) is kept', async () => {
    let replacement: Buffer | undefined;
    const { camera, row } = await raceTheWipe('item03-rename', (cam) => {
      const bytes = readFileSync(cam.media);
      replacement = Buffer.from(bytes.map((b, i) => (i % 997 === 0 ? b ^ 1 : b)));
      const temp = join(dirname(cam.media), '.incoming');
      writeFileSync(temp, replacement);
      utimesSync(temp, WHOLE_SECOND, WHOLE_SECOND);
      renameSync(temp, cam.media);
    });
    expect(row.state).toBe('completed');
    expect(row.info.wipeKeptCode).toBe('file_replaced');
    expect(row.reason).toMatch(/another inode/);
    expect(readFileSync(camera.media).equals(replacement!)).toBe(true);
  });

  it('a file swapped for a symlink to a good copy (elsewhere) is kept, and the copy is not deleted', async () => {
    const elsewhere = join(tmp.path, 'elsewhere.mp4');
    const { camera, original, row } = await raceTheWipe('item03-symlink', (cam) => {
      writeFileSync(elsewhere, readFileSync(cam.media));
      unlinkSync(cam.media);
      symlinkSync(elsewhere, cam.media);
    });
    expect(row.state).toBe('completed');
    expect(row.info.wipeKeptCode).toBe('file_replaced');
    expect(readFileSync(elsewhere).equals(original)).toBe(true);
    expect(existsSync(camera.sidecar)).toBe(true);
  });
});
