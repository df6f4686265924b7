/**
 * Issue 9 item 6: one recording per file on the card. Two files with identical bytes (two names on
 * one card; the same card in two bays at once; a camera with and one without DEVICE.json) become
 * as many server recordings, each with its own receipt and custody entry, and each file is wiped only
 * on its own receipt. Built CLI, real server, real files.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { recordCamera } from '../../src/camera/index.js';
import { makePlainMp4 } from '../helpers/dock.js';
import { sha256, startRig, type DockRig } from '../helpers/cards.js';

describe('item 6: identical bytes in two files are two recordings', () => {
  let rig: DockRig;
  const bytes: Record<string, string> = {};

  beforeAll(async () => {
    rig = await startRig('bodycam-item06-');
    // A card without DEVICE.json holding the same clip under two names.
    const foreign = join(rig.bays, 'bay-1');
    mkdirSync(join(foreign, 'DCIM', '100MEDIA'), { recursive: true });
    await makePlainMp4(join(foreign, 'DCIM', '100MEDIA', 'CLIP0001.MP4'), 2);
    copyFileSync(join(foreign, 'DCIM', '100MEDIA', 'CLIP0001.MP4'), join(foreign, 'DCIM', '100MEDIA', 'COPY0001.MP4'));
    bytes.foreign = sha256(readFileSync(join(foreign, 'DCIM', '100MEDIA', 'CLIP0001.MP4')));
    // The same card (a copy of it, same serial, same names, same bytes) in another bay at once.
    execFileSync('cp', ['-a', foreign, join(rig.bays, 'bay-2')]);
    // A body camera with DEVICE.json and sidecars, and its copy in a fourth bay.
    const bwc = join(rig.bays, 'bay-3');
    const recorded = await recordCamera({ storage: bwc, count: 1, seed: 'item06', durationSeconds: 2, width: 160, height: 120, fps: 10 });
    bytes.bwc = sha256(readFileSync(recorded.files[0]!.mediaPath));
    execFileSync('cp', ['-a', bwc, join(rig.bays, 'bay-4')]);
  });
  afterAll(async () => { await rig.close(); });

  it('gives each file its own recording, receipt and custody entry, and wipes each on its own receipt', async () => {
    const result = await rig.once(['--wipe-after-ingest']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const rows = rig.rows();
    expect(rows).toHaveLength(6);
    expect(rows.every((r) => r.state === 'wiped')).toBe(true);
    // Six files, six recordings: no file stands in for another.
    expect(new Set(rows.map((r) => r.recordingId)).size).toBe(6);
    expect(new Set(rows.map((r) => `${r.bay}/${r.relPath}`)).size).toBe(6);
    const seqs = new Set<number>();
    for (const row of rows) {
      const receipt = JSON.parse(row.receiptJson!) as { recordingId: string; sha256: string; custodySeq: number };
      expect(receipt.recordingId).toBe(row.recordingId);
      seqs.add(receipt.custodySeq);
      const held = await rig.serverBytes(row.recordingId!);
      expect(held && sha256(held)).toBe(row.sha256);
      // The server's record names this file: its bay and its file name.
      const record = await (await rig.server.request(`/v1/recordings/${row.recordingId}`)).json() as { state: string; manifest: { dock: { bay: string }; file: { name: string } } };
      expect([record.state, record.manifest.dock.bay, record.manifest.file.name]).toEqual(['complete', row.bay, row.relPath.split('/').pop()]);
    }
    expect(seqs.size).toBe(6);
    const foreignIds = rows.filter((r) => r.serial === 'unknown').map((r) => r.recordingId!);
    expect(foreignIds).toHaveLength(4);
    for (const id of foreignIds) expect(id).toMatch(new RegExp(`^unknown-${bytes.foreign!.slice(0, 32)}-[0-9a-f]{16}$`));
    for (const bay of ['bay-1', 'bay-2']) {
      for (const name of ['CLIP0001.MP4', 'COPY0001.MP4']) expect(existsSync(join(rig.bays, bay, 'DCIM', '100MEDIA', name))).toBe(false);
    }
    expect(rows.filter((r) => r.serial !== 'unknown').map((r) => r.sha256)).toEqual([bytes.bwc, bytes.bwc]);
  }, 120_000);
});
