/**
 * Issue 11 item 4, hostile cases: the card changes at the exact moment a race would
 * (BODYCAM_WIPE_PAUSE_FILE holds the wipe after its re-hash; a capped uplink holds an upload):
 * an attachment changed between upload and wipe, replaced by a symlink, or gone mid-upload.
 * Whatever happens, nothing leaves the card that the server does not provably hold.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import Database from 'better-sqlite3';
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { makeTempDir } from '../helpers/tmp.js';
import { sha256, startRig, type DockRig } from '../helpers/cards.js';
import { heldAsAttachment, onceWithPause, receipted, view } from '../helpers/attachments.js';
import { makePlainMp4 } from '../helpers/dock.js';
import { startHookProxy } from '../helpers/hookProxy.js';

describe('issue 11 item 4: attachments under attack', () => {
  const scratch = makeTempDir('bodycam-attach-hostile-src-');
  let clip: Buffer;
  let rig: DockRig | undefined;

  beforeAll(async () => {
    await makePlainMp4(join(scratch.path, 'a.mp4'), 2);
    clip = readFileSync(join(scratch.path, 'a.mp4'));
  }, 60_000);
  afterEach(async () => { await rig?.close(); rig = undefined; });
  afterAll(() => scratch.cleanup());

  it('an attachment changed between upload and wipe is not deleted on the old receipt: kept, and its new bytes are ingested as a new version', async () => {
    rig = await startRig('bodycam-attach-d-');
    const dir = join(rig.bays, 'bay-chg', 'DCIM');
    mkdirSync(dir, { recursive: true });
    const gps = Buffer.from('$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47\n');
    const forged = Buffer.from(gps);
    forged[20] = 0x39;
    writeFileSync(join(dir, 'R1.mp4'), clip);
    writeFileSync(join(dir, 'R1.nmea'), gps);
    const result = await onceWithPause(rig, () => writeFileSync(join(dir, 'R1.nmea'), forged));
    // The old bytes are held under the first receipt, the new ones under a new version, or still on the card.
    expect(await heldAsAttachment(rig, 'R1.nmea', gps)).toBe(true);
    const onCard = existsSync(join(dir, 'R1.nmea'));
    if (onCard) {
      expect(readFileSync(join(dir, 'R1.nmea')).equals(forged)).toBe(true);
      expect(result.code).not.toBe(0);
    } else {
      expect(await heldAsAttachment(rig, 'R1.nmea', forged)).toBe(true);
    }
    const first = (await receipted(rig)).find((r) => r.view.manifest.attachments?.[0]?.sha256 === sha256(gps))!;
    expect(first.state).toBe('completed');
  }, 90_000);

  it('an attachment replaced by a symlink at the moment of the wipe: the link is never followed or deleted, its target untouched', async () => {
    rig = await startRig('bodycam-attach-e-');
    const dir = join(rig.bays, 'bay-link', 'DCIM');
    mkdirSync(dir, { recursive: true });
    const outside = join(rig.root, 'outside-secret.xml');
    writeFileSync(outside, '<secret/>');
    const xml = Buffer.from('<clip><lens>wide</lens></clip>');
    writeFileSync(join(dir, 'S1.mp4'), clip);
    writeFileSync(join(dir, 'S1.xml'), xml);
    const result = await onceWithPause(rig, () => { rmSync(join(dir, 'S1.xml')); symlinkSync(outside, join(dir, 'S1.xml')); });
    expect(readFileSync(outside, 'utf8')).toBe('<secret/>');
    expect(existsSync(join(dir, 'S1.xml'))).toBe(true); // the symlink stays, listed
    expect(result.code).toBe(3);
    expect(result.stderr).toMatch(/S1\.xml: symlink/);
    // The companion's real bytes were proved held before anything was deleted.
    expect(await heldAsAttachment(rig, 'S1.xml', xml)).toBe(true);
    const kept = rig.rows().find((r) => r.relPath === 'DCIM/S1.mp4' && r.state === 'completed');
    expect(kept).toBeDefined();
  }, 90_000);

  /**
   * The dock uploads through a proxy that deletes the companion when the PUT of its segment 3
   * arrives (before the server sees it): no poll to overrun. Whether the dock's next read of it is
   * the check before segment 4, or the open of segment 3's own body (the delete fell between the
   * check and the open), is timing: both end the same way, every time.
   */
  it.each([['capped (a read stream through the bandwidth bucket)', ['--max-rate', '200MB/s']], ['uncapped (reused buffers)', []]])('a companion that vanishes mid-upload, %s: that upload is closed file_changed, the recording arrives as a new version without it, nothing is lost', async (_how, rate) => {
    rig = await startRig('bodycam-attach-f-');
    const dir = join(rig.bays, 'bay-gone', 'DCIM');
    mkdirSync(dir, { recursive: true });
    const lrv = Buffer.alloc(4 * 1024 * 1024);
    for (let i = 0; i < lrv.length; i += 4096) lrv.writeUInt32BE(i, i);
    writeFileSync(join(dir, 'G1.mp4'), clip);
    writeFileSync(join(dir, 'G1.LRV'), lrv);
    const proxy = await startHookProxy(rig.server.url, (req) => {
      if (req.method === 'PUT' && /\/attachments\/0\/segments\/3$/.test(req.url ?? '')) rmSync(join(dir, 'G1.LRV'), { force: true });
    });
    const server = rig.server.url;
    const args = rig.dockArgs(['--once', '--wipe-after-ingest', '--segment-max-bytes', '512KiB', ...rate]).map((a) => (a === server ? proxy.url : a));
    const result = await runCli(args, { timeoutMs: 90_000 }).finally(() => proxy.close());
    expect(proxy.seen.some((r) => /^PUT .*\/attachments\/0\/segments\/3$/.test(r))).toBe(true);
    const rows = rig.rows().filter((r) => r.relPath === 'DCIM/G1.mp4');
    expect(rows.map((r) => r.state).sort()).toEqual(['quarantined', 'wiped']);
    const wiped = rows.find((r) => r.state === 'wiped')!;
    expect(sha256((await rig.serverBytes(wiped.recordingId!))!)).toBe(sha256(clip));
    expect((await view(rig, wiped.recordingId!)).manifest.attachments).toBeUndefined();
    // The card holds nothing the server lacks (the companion was deleted by someone else, not lost by
    // the dock): exit 0; the closed upload says why, in the journal and the log.
    expect(result.code).toBe(0);
    const db = new Database(join(rig.stateDir, 'journal.sqlite'), { readonly: true });
    const closed = db.prepare("SELECT reason, reason_code AS code FROM recordings WHERE state = 'quarantined'").get() as { reason: string; code: string };
    db.close();
    expect(closed).toEqual({ code: 'file_changed', reason: expect.stringMatching(/companion G1\.LRV vanished after it was hashed/) });
  }, 90_000);

});
