/**
 * A file renamed or deleted on a card between two dock runs (docs/dock.md, "Vanished files"): the
 * first `--once` run cannot reach the server, so the rows stay uploading (work in hand); the camera
 * then renames one recording and deletes another; the second run, with the server up, finds
 * neither at its path. Both rows are closed `file_vanished` with the reason (never queued for
 * ever), the renamed file is receipted as its own recording, nothing else is touched.
 * (A rename or delete during one run, at a chosen request, is test/dock/changedMidUpload.test.ts.)
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import Database from 'better-sqlite3';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli, type CliResult } from '../helpers/cli.js';
import { sha256, startRig, type DockRig } from '../helpers/cards.js';
import { startHookProxy } from '../helpers/hookProxy.js';

/** Plain text under a media name: uploaded as opaque bytes, no ffprobe. */
const textOf = (label: string): Buffer => Buffer.from(Array.from({ length: 4000 }, (_, i) => `${label} line ${i}\n`).join(''));

describe('renamed and deleted on the card between two dock runs', () => {
  let rig: DockRig;
  let first: CliResult;
  let second: CliResult;
  let afterFirst: string[] = [];
  const dcim = (): string => join(rig.bays, 'bay-1', 'DCIM');
  const kept = textOf('kept');
  const renamed = textOf('renamed');

  beforeAll(async () => {
    rig = await startRig('bodycam-vanished-');
    mkdirSync(join(rig.bays, 'bay-1', 'DCIM'), { recursive: true });
    writeFileSync(join(rig.bays, 'bay-1', 'DEVICE.json'), JSON.stringify({ format: 'bodycam-device/1', serial: 'CAM-V1', model: 'm' }));
    writeFileSync(join(dcim(), 'K1.MP4'), kept);
    writeFileSync(join(dcim(), 'R1.MP4'), renamed);
    writeFileSync(join(dcim(), 'D1.MP4'), textOf('deleted'));
    // A proxy that drops every request (a transient failure): the rows stay uploading.
    const dropAll = await startHookProxy(rig.server.url, () => { throw new Error('server unreachable'); });
    const down = rig.dockArgs(['--once', '--request-retries', '0', '--once-attempts', '1']).map((a) => (a === rig.server.url ? dropAll.url : a));
    first = await runCli(down, { timeoutMs: 90_000 }).finally(() => dropAll.close());
    afterFirst = rig.rows().map((r) => r.state);
    renameSync(join(dcim(), 'R1.MP4'), join(dcim(), 'RN_R1.MP4'));
    rmSync(join(dcim(), 'D1.MP4'));
    second = await rig.once();
  }, 120_000);
  afterAll(async () => { await rig?.close(); });

  it('the first run could not send anything: exit 1, every row still work in hand', () => {
    expect(first.code).toBe(1);
    expect(afterFirst).toEqual(['uploading', 'uploading', 'uploading']);
  });

  it('the second run: the rows of the renamed and the deleted file closed file_vanished with the reason, the others receipted', async () => {
    // 3: the text files are flagged opaque uploads (kept on the camera), and each closed row is said.
    expect(second.code).toBe(3);
    const lines = second.stderr.trim().split('\n');
    expect(lines.map((l) => l.split(' ').slice(0, 2).join(' ')).sort()).toEqual(['flagged: DCIM/K1.MP4', 'flagged: DCIM/RN_R1.MP4', 'quarantined: DCIM/D1.MP4:', 'quarantined: DCIM/R1.MP4:']);
    expect(lines.find((l) => l.startsWith('quarantined: DCIM/R1.MP4:'))).toBe('quarantined: DCIM/R1.MP4: file_vanished: DCIM/R1.MP4 is no longer on camera CAM-V1 in bay-1 (renamed, moved or deleted on the card) while it was uploading, not receipted: a file under another name is ingested as a recording of its own');
    const byPath = new Map(rig.rows().map((r) => [r.relPath, r]));
    expect([...byPath.keys()].sort()).toEqual(['DCIM/D1.MP4', 'DCIM/K1.MP4', 'DCIM/R1.MP4', 'DCIM/RN_R1.MP4']);
    const db = new Database(join(rig.stateDir, 'journal.sqlite'), { readonly: true });
    try {
      const closed = db.prepare("SELECT rel_path AS path, state, reason_code AS code, reason FROM recordings WHERE reason_code IS NOT NULL ORDER BY rel_path").all() as Array<{ path: string; state: string; code: string; reason: string }>;
      expect(closed.map((r) => [r.path, r.state, r.code])).toEqual([['DCIM/D1.MP4', 'quarantined', 'file_vanished'], ['DCIM/R1.MP4', 'quarantined', 'file_vanished']]);
      for (const r of closed) expect(r.reason).toBe(`${r.path} is no longer on camera CAM-V1 in bay-1 (renamed, moved or deleted on the card) while it was uploading, not receipted: a file under another name is ingested as a recording of its own`);
    } finally { db.close(); }
    for (const [path, bytes] of [['DCIM/K1.MP4', kept], ['DCIM/RN_R1.MP4', renamed]] as const) {
      const row = byPath.get(path)!;
      expect(row.state).toBe('completed');
      expect(sha256((await rig.serverBytes(row.recordingId!))!)).toBe(sha256(bytes));
      expect(readFileSync(join(rig.bays, 'bay-1', path)).equals(bytes)).toBe(true);
    }
  });
});
