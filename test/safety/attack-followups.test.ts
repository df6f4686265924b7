/**
 * Variants found by an attacker's review of issue 9 (dock side), each through the built CLI:
 * a file changed or a sidecar added at the wipe's last moment is kept AND its new bytes are
 * ingested in the same `--once` run, which never claims a plain success; `CLIP.JSON` is the
 * sidecar of `CLIP.MP4`; a name that is not UTF-8 is listed (attention), never silently lost.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { existsSync, mkdirSync, readFileSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { listCameraFiles } from '../../src/protocol/cameraStorage/index.js';
import type { RecordingManifest } from '../../src/protocol/types.js';
import { runCli } from '../helpers/cli.js';
import { makePlainMp4, waitFor } from '../helpers/dock.js';
import { sha256, startRig, type DockRig } from '../helpers/cards.js';
import { releasePauses } from '../helpers/wipeKit.js';

describe('attack follow-ups on the wipe and the walk', () => {
  let rig: DockRig;
  let clip: Buffer;
  beforeAll(async () => {
    rig = await startRig('bodycam-attack-');
    const source = join(rig.root, 'src.mp4');
    await makePlainMp4(source, 2);
    clip = readFileSync(source);
  });
  afterAll(async () => { await rig.close(); });

  /** `--once` with the wipe's test pause: `act` runs on the camera path while the wipe waits. */
  async function onceWithPause(act: (absPath: string) => void): Promise<{ code: number | null; stderr: string }> {
    const pause = join(rig.root, `pause-${Date.now()}`);
    const run = runCli(rig.dockArgs(['--once', '--wipe-after-ingest']), { timeoutMs: 90_000, env: { ...process.env, BODYCAM_WIPE_PAUSE_FILE: pause } });
    let acted = false;
    const watcher = (async () => {
      const rel = await waitFor('the wipe to pause', () => (existsSync(pause) ? readFileSync(pause, 'utf8') : undefined), 60_000, 20);
      if (!acted) { acted = true; act(rel); }
      // Later wipes of the same run (the new version) pass straight through, until the run ends (however long it takes).
      await releasePauses(pause, run);
    })();
    const result = await run;
    await watcher.catch(() => {});
    return result;
  }

  it('a file overwritten (same size, mtime restored) at the last moment is kept, and its new bytes are ingested in the same run', async () => {
    const bay = join(rig.bays, 'bay-a');
    mkdirSync(join(bay, 'DCIM'), { recursive: true });
    const path = join(bay, 'DCIM', 'A_0001.mp4');
    writeFileSync(path, clip);
    const changed = Buffer.from(clip);
    changed[changed.length - 100] ^= 0xff;
    const result = await onceWithPause((rel) => {
      const abs = join(bay, rel);
      const { atime, mtime } = statSync(abs);
      writeFileSync(abs, changed);
      utimesSync(abs, atime, mtime);
    });
    // The same run ingests the new version; exit 0 only if the card then holds nothing unheld.
    const held = rig.rows().filter((r) => r.relPath === 'DCIM/A_0001.mp4' && r.receiptJson);
    expect(held.map((r) => r.sha256)).toEqual(expect.arrayContaining([sha256(clip), sha256(changed)]));
    const newest = held.find((r) => r.sha256 === sha256(changed))!;
    expect(sha256((await rig.serverBytes(newest.recordingId!))!)).toBe(sha256(changed));
    if (existsSync(path)) expect(result.code).not.toBe(0);
    else expect(rig.rows().some((r) => r.sha256 === sha256(changed) && r.state === 'wiped')).toBe(true);
  }, 120_000);

  it('a sidecar that appears beside a sidecar-less file during its wipe is never left behind unheld', async () => {
    const bay = join(rig.bays, 'bay-b');
    mkdirSync(join(bay, 'X'), { recursive: true });
    writeFileSync(join(bay, 'X', 'b.mp4'), clip);
    const late = Buffer.from('{"category":"added-late"}\n');
    const result = await onceWithPause((rel) => writeFileSync(join(bay, rel.replace(/\.mp4$/, '.json')), late));
    // Either still on the card beside its file, or its exact bytes are on the server in a manifest:
    // as the sidecar, or (a JSON that does not say it is our sidecar, issue 11 item 4) as an attachment.
    const onCard = existsSync(join(bay, 'X', 'b.json'));
    const rows = rig.rows().filter((r) => r.relPath === 'X/b.mp4' && r.recordingId);
    let onServer = false;
    for (const r of rows) {
      const got = await rig.server.request(`/v1/recordings/${r.recordingId}`);
      if (got.status !== 200) continue;
      const body = await got.json() as { state: string; manifest: RecordingManifest };
      if (body.manifest.device.sidecarBase64 && Buffer.from(body.manifest.device.sidecarBase64, 'base64').equals(late)) onServer = true;
      const a = body.manifest.attachments?.find((x) => x.name === 'b.json');
      if (a && body.state === 'complete' && (await rig.server.request(`/v1/recordings/${r.recordingId}/attachments/${a.index}`).then(async (res) => Buffer.from(await res.arrayBuffer()))).equals(late)) onServer = true;
    }
    expect(onCard || onServer).toBe(true);
    if (!onServer) expect(existsSync(join(bay, 'X', 'b.mp4'))).toBe(true);
    // Exit 0 only when the card holds nothing the server does not.
    if (onCard) expect(result.code).not.toBe(0);
  }, 120_000);

  it('CLIP.JSON is the sidecar of CLIP.MP4', async () => {
    const dir = join(rig.root, 'upper', 'DCIM');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'CLIP.MP4'), clip);
    writeFileSync(join(dir, 'CLIP.JSON'), '{}');
    const listing = await listCameraFiles(join(rig.root, 'upper'));
    expect(listing.files.map((f) => [f.fileName, f.sidecarPath])).toEqual([['CLIP.MP4', join(dir, 'CLIP.JSON')]]);
    expect(listing.skipped.filter((s) => s.code === 'json_not_sidecar')).toEqual([]);
  });

  it('a name that is not UTF-8 is listed with attention and --once does not claim success', async () => {
    const bay = join(rig.bays, 'bay-latin1');
    mkdirSync(bay);
    writeFileSync(Buffer.concat([Buffer.from(bay + '/clip'), Buffer.from([0xe9]), Buffer.from('.mp4')]), clip);
    const listing = await listCameraFiles(bay);
    expect(listing.skipped.map((s) => s.code)).toEqual(['undecodable_name']);
    const result = await rig.once();
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/skipped: bay-latin1\/.*undecodable_name/);
  }, 120_000);
});

describe('a bay folder that is a symlink', () => {
  it('is shown as attention with the reason, and --once does not claim success', async () => {
    const rig = await startRig('bodycam-attack-baylink-');
    try {
      const elsewhere = join(rig.root, 'elsewhere');
      mkdirSync(join(elsewhere, 'DCIM'), { recursive: true });
      await makePlainMp4(join(elsewhere, 'DCIM', 'L_0001.mp4'), 1);
      symlinkSync(elsewhere, join(rig.bays, 'bay-link'));
      const result = await rig.once();
      expect(result.code).toBe(3);
      expect(result.stderr).toMatch(/skipped: bay-link\/\.: symlink: the bay folder is a symbolic link/);
      expect(existsSync(join(elsewhere, 'DCIM', 'L_0001.mp4'))).toBe(true);
    } finally {
      await rig.close();
    }
  }, 120_000);
});
