/**
 * The recording's own file changed while it is uploaded, at a chosen request: the dock talks to the
 * server through a proxy that changes the card when the PUT of a file's segment 3 arrives, before
 * the server sees it (test/helpers/hookProxy.ts; no sleep, no poll). Whether the dock then notices
 * at the check before segment 4 or while it reads segment 3's body is timing; the outcome is not
 * (docs/dock.md, "Upload"): cut short, grown, replaced or reached through a folder swapped for a
 * symlink, that upload is closed `file_changed` and what the card holds now is a new version, in the
 * same `--once` run; deleted or renamed on the still docked card, the row is closed `file_vanished`
 * (src/dock/vanished.ts: never queued work for ever) and a renamed file is a recording of its own
 * (renamed back: a third row; the request failing as it is renamed: the same). Never bytes the hash did not cover.
 * One dock run, one bay per case (the cases run side by side).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import Database from 'better-sqlite3';
import { appendFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli, type CliResult } from '../helpers/cli.js';
import { sha256, startRig, type DockRig } from '../helpers/cards.js';
import { startHookProxy } from '../helpers/hookProxy.js';

const KiB = 1024;
const SEGMENT = 512 * KiB;
const SIZE = 8 * SEGMENT;

/** Plain text under a media name: uploaded as opaque bytes in fixed 512 KiB ranges, no ffprobe. */
function textOf(label: string, size = SIZE): Buffer {
  const line = (i: number): string => `${label} line ${String(i).padStart(9, '0')}\n`;
  const parts: string[] = [];
  let length = 0;
  for (let i = 0; length < size; i++) { const l = line(i); parts.push(l); length += l.length; }
  return Buffer.from(parts.join('')).subarray(0, size);
}

/** `change` runs at the first PUT of segment 3 of the case's bytes; `again`, if given, when another recording id of them (the renamed file's row) asks for its receipt. */
interface Case { bay: string; name: string; bytes: Buffer; change: (path: string) => void; again?: () => void; fired?: string; firedAgain?: boolean; now?: Buffer }

describe('the recording changed mid-upload (at the PUT of its segment 3)', () => {
  let rig: DockRig;
  let result: CliResult;
  const outside = { dir: '', file: '' };
  const cases: Record<string, Case> = {};

  beforeAll(async () => {
    rig = await startRig('bodycam-midupload-');
    const add = (key: string, name: string, change: (path: string) => void): void => {
      const bytes = textOf(key);
      const dir = join(rig.bays, `bay-${key}`, 'DCIM');
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, name), bytes);
      cases[key] = { bay: `bay-${key}`, name, bytes, change };
    };
    add('cut', 'C1.MP4', (path) => truncateSync(path, 3 * SEGMENT + 100 * KiB));
    add('grow', 'G1.MP4', (path) => appendFileSync(path, 'more lines the camera wrote\n'));
    add('swap', 'S1.MP4', (path) => { rmSync(path); writeFileSync(path, cases.swap!.now = textOf('swapped')); });
    add('gone', 'D1.MP4', (path) => rmSync(path));
    const renamed = (bay: string, name: string): string => join(rig.bays, bay, 'DCIM', name);
    add('rename', 'R1.MP4', (path) => renameSync(path, renamed('bay-rename', 'RN_R1.MP4')));
    add('back', 'B1.MP4', (path) => renameSync(path, renamed('bay-back', 'RN_B1.MP4')));
    cases.back!.again = () => renameSync(renamed('bay-back', 'RN_B1.MP4'), renamed('bay-back', 'B1.MP4'));
    // Renamed as its request fails (the proxy drops it): the dock's retry finds the file gone.
    add('reset', 'T1.MP4', (path) => { renameSync(path, renamed('bay-reset', 'RN_T1.MP4')); throw new Error('request dropped'); });
    outside.dir = join(rig.root, 'elsewhere');
    outside.file = join(outside.dir, 'L1.MP4');
    add('link', 'L1.MP4', () => {
      // The camera's folder moved away and a symlink to another folder, holding a file of the same
      // name and size, put in its place.
      mkdirSync(outside.dir);
      writeFileSync(outside.file, textOf('outside'));
      const dcim = join(rig.bays, 'bay-link', 'DCIM');
      renameSync(dcim, join(rig.root, 'moved-DCIM'));
      symlinkSync(outside.dir, dcim);
    });
    const bySha = new Map(Object.values(cases).map((c) => [sha256(c.bytes).slice(0, 32), c]));
    const proxy = await startHookProxy(rig.server.url, (req) => {
      const hit = /^\/v1\/recordings\/([^/]*-([0-9a-f]{32})-[0-9a-f]+)\/(segments\/3|complete)$/.exec(req.url ?? '');
      const c = hit ? bySha.get(hit[2]!) : undefined;
      if (!c) return;
      if (!c.fired && req.method === 'PUT' && hit![3] !== 'complete') { c.fired = hit![1]!; c.change(join(rig.bays, c.bay, 'DCIM', c.name)); return; }
      // The renamed file's row asks for its receipt (it reads no file any more): renamed back now.
      if (c.fired && c.again && !c.firedAgain && hit![3] === 'complete' && hit![1] !== c.fired) { c.firedAgain = true; c.again(); }
    });
    const server = rig.server.url;
    const args = rig.dockArgs(['--once', '--segment-max-bytes', '512KiB']).map((a) => (a === server ? proxy.url : a));
    result = await runCli(args, { timeoutMs: 90_000 }).finally(() => proxy.close());
  }, 120_000);
  afterAll(async () => { await rig?.close(); });

  const rowsOf = (c: Case): Array<{ state: string; reasonCode: string | null; reason: string | null; sha256: string | null; recordingId: string | null; file: string }> => {
    const db = new Database(join(rig.stateDir, 'journal.sqlite'), { readonly: true });
    try {
      return db.prepare('SELECT state, reason_code AS reasonCode, reason, sha256, recording_id AS recordingId, file_name AS file FROM recordings WHERE bay = ? ORDER BY detected_at, rowid').all(c.bay) as never;
    } finally { db.close(); }
  };

  /** The old upload closed file_changed; the bytes on the card now receipted as a new version. */
  async function closedAndNewVersion(c: Case, now: Buffer): Promise<void> {
    const rows = rowsOf(c);
    expect(rows.map((r) => r.state).sort()).toEqual(['completed', 'quarantined']);
    const closed = rows.find((r) => r.state === 'quarantined')!;
    expect(closed.reasonCode).toBe('file_changed');
    expect(closed.sha256).toBe(sha256(c.bytes));
    const fresh = rows.find((r) => r.state === 'completed')!;
    expect(fresh.sha256).toBe(sha256(now));
    expect(sha256((await rig.serverBytes(fresh.recordingId!))!)).toBe(sha256(now));
    // The closed upload never completed: the server holds no file under its id.
    expect(await rig.serverBytes(closed.recordingId!)).toBeUndefined();
  }

  it('every case reached its segment 3; the run ends 3 (flagged opaque uploads, the symlink skipped)', () => {
    for (const c of Object.values(cases)) expect(c.fired).toEqual(expect.any(String));
    expect(result.code).toBe(3);
    expect(result.stderr).toMatch(/skipped: bay-link\/DCIM: symlink/);
    // Each row closed because its file left the card is said, never dropped from the report.
    for (const name of ['D1', 'R1', 'T1']) expect(result.stderr).toMatch(new RegExp(`^quarantined: DCIM/${name}\\.MP4: file_vanished: `, 'm'));
  });

  it('cut short: file_changed, the shorter file a new version', async () => {
    const c = cases.cut!;
    await closedAndNewVersion(c, c.bytes.subarray(0, 3 * SEGMENT + 100 * KiB));
  });

  it('grown: file_changed, the longer file a new version', async () => {
    const c = cases.grow!;
    await closedAndNewVersion(c, Buffer.concat([c.bytes, Buffer.from('more lines the camera wrote\n')]));
  });

  it('replaced by another file of the same size: file_changed (not a digest mismatch retried), the new file a new version', async () => {
    const c = cases.swap!;
    await closedAndNewVersion(c, c.now!);
  });

  it('deleted on the docked card: the row is closed file_vanished with the reason (not queued for ever), nothing else made of it', async () => {
    const rows = rowsOf(cases.gone!);
    expect(rows.map((r) => [r.state, r.reasonCode])).toEqual([['quarantined', 'file_vanished']]);
    expect(rows[0]!.reason).toMatch(/DCIM\/D1\.MP4 is no longer on camera unknown in bay-gone \(renamed, moved or deleted on the card\) while it was uploading/);
    expect(await rig.serverBytes(rows[0]!.recordingId!)).toBeUndefined();
  });

  /** The bay's rows by file name: the ones closed file_vanished, and the one receipted (the file on the card now). */
  async function vanishedAndReceipted(c: Case, closed: string[], receipted: string): Promise<void> {
    const rows = rowsOf(c);
    expect(rows.filter((r) => r.state === 'quarantined').map((r) => [r.file, r.reasonCode])).toEqual(closed.map((f) => [f, 'file_vanished']));
    const held = rows.filter((r) => r.state === 'completed');
    expect(held.map((r) => r.file)).toEqual([receipted]);
    expect(held[0]!.sha256).toBe(sha256(c.bytes));
    expect(sha256((await rig.serverBytes(held[0]!.recordingId!))!)).toBe(sha256(c.bytes));
    expect(readFileSync(join(rig.bays, c.bay, 'DCIM', receipted)).equals(c.bytes)).toBe(true);
  }

  it('renamed on the docked card mid-upload: the old row closed file_vanished, the renamed file receipted as its own recording', async () => {
    await vanishedAndReceipted(cases.rename!, ['R1.MP4'], 'RN_R1.MP4');
  });

  it('renamed, then renamed back as the renamed file is receipted: the closed row never matches the file again, which is a third row, receipted', async () => {
    const c = cases.back!;
    expect(c.firedAgain).toBe(true);
    const rows = rowsOf(c);
    expect(rows.map((r) => [r.file, r.state, r.reasonCode])).toEqual([['B1.MP4', 'quarantined', 'file_vanished'], ['RN_B1.MP4', 'completed', null], ['B1.MP4', 'completed', null]]);
    for (const r of rows.filter((x) => x.state === 'completed')) expect(sha256((await rig.serverBytes(r.recordingId!))!)).toBe(sha256(c.bytes));
    expect(readFileSync(join(rig.bays, c.bay, 'DCIM', 'B1.MP4')).equals(c.bytes)).toBe(true);
  });

  it('renamed while its request failed: the retry finds it gone; closed file_vanished, the renamed file receipted', async () => {
    await vanishedAndReceipted(cases.reset!, ['T1.MP4'], 'RN_T1.MP4');
  });

  it('its folder replaced by a symlink to another folder: file_changed, the other folder never read as the recording nor touched', async () => {
    const rows = rowsOf(cases.link!);
    expect(rows.map((r) => [r.state, r.reasonCode])).toEqual([['quarantined', 'file_changed']]);
    expect(await rig.serverBytes(rows[0]!.recordingId!)).toBeUndefined();
    expect(readFileSync(outside.file).equals(textOf('outside'))).toBe(true);
    expect(existsSync(join(rig.root, 'moved-DCIM', 'L1.MP4'))).toBe(true);
  });
});
