import { describe, it, expect, afterAll } from '@jest/globals';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { Journal, EVENTS_KEPT } from '../../src/dock/journal.js';
import { makeTempDir } from '../helpers/tmp.js';

describe('journal', () => {
  const tmp = makeTempDir('bodycam-dock-journal-');
  afterAll(() => tmp.cleanup());

  it('keeps states, plans, acks and pins across a reopen', () => {
    const journal = Journal.open(tmp.path);
    journal.upsertDetected({ key: 'CAM|a.mp4|x', serial: 'CAM', fileName: 'a.mp4', relPath: 'DCIM/100BWC/a.mp4', bay: 'bay1', size: 300, mtimeMs: 5, critical: true });
    journal.transition('CAM|a.mp4|x', 'probed', { info: { formatName: 'mpegts' } });
    journal.setPlan('CAM|a.mp4|x', [{ index: 0, offset: 0, length: 100, startTime: 0, endTime: 1 }, { index: 1, offset: 100, length: 200 }], { planKind: 'mpegts' });
    journal.setSegmentHashes('CAM|a.mp4|x', ['a'.repeat(64), 'b'.repeat(64)]);
    journal.transition('CAM|a.mp4|x', 'uploading', { recordingId: 'CAM-abc', sha256: 'c'.repeat(64) });
    journal.ackSegment('CAM|a.mp4|x', 1);
    journal.setMeta('serverPublicKeyPem', 'PEM');
    journal.close();

    const again = Journal.open(tmp.path);
    const row = again.get('CAM|a.mp4|x')!;
    expect(row.state).toBe('uploading');
    expect(row.recordingId).toBe('CAM-abc');
    expect(row.critical).toBe(true);
    expect(row.info).toMatchObject({ formatName: 'mpegts', planKind: 'mpegts' });
    expect(again.segments('CAM|a.mp4|x').map((s) => [s.index, s.acked, s.sha256?.[0], s.startTime])).toEqual([[0, false, 'a', 0], [1, true, 'b', null]]);
    expect(again.getMeta('serverPublicKeyPem')).toBe('PEM');
    // The server's list of missing segments wins both ways.
    again.reconcileMissing('CAM|a.mp4|x', [1]);
    expect(again.segments('CAM|a.mp4|x').map((s) => s.acked)).toEqual([true, false]);
    // Re-dock in another bay keeps the state and moves the location.
    const moved = again.upsertDetected({ key: 'CAM|a.mp4|x', serial: 'CAM', fileName: 'a.mp4', relPath: 'DCIM/100BWC/a.mp4', bay: 'bay7', size: 300, mtimeMs: 5, critical: true });
    expect([moved.bay, moved.state]).toEqual(['bay7', 'uploading']);
    again.close();
  });

  it('opens a journal written before reason codes existed, and codes quarantines from then on', () => {
    const dir = join(tmp.path, 'old');
    Journal.open(dir).close();
    const old = new Database(join(dir, 'journal.sqlite'));
    // Rebuild the table as the earlier build created it: no reason_code column.
    old.exec(`DROP TABLE recordings; CREATE TABLE recordings (
      key TEXT PRIMARY KEY, serial TEXT NOT NULL, file_name TEXT NOT NULL, rel_path TEXT NOT NULL, bay TEXT,
      size INTEGER NOT NULL, mtime_ms INTEGER NOT NULL, state TEXT NOT NULL, reason TEXT, recording_id TEXT, sha256 TEXT,
      critical INTEGER NOT NULL DEFAULT 0, detected_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
      attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at INTEGER NOT NULL DEFAULT 0, last_error TEXT,
      info_json TEXT NOT NULL DEFAULT '{}', manifest_json TEXT, receipt_json TEXT);
      INSERT INTO recordings (key, serial, file_name, rel_path, state, reason, size, mtime_ms, detected_at, updated_at)
      VALUES ('CAM|z.mp4|0', 'CAM', 'z.mp4', 'DCIM/z.mp4', 'quarantined', 'zero-byte file', 0, 1, 1, 1);`);
    old.close();

    const journal = Journal.open(dir);
    expect(journal.get('CAM|z.mp4|0')).toMatchObject({ state: 'quarantined', reason: 'zero-byte file', reasonCode: null });
    journal.upsertDetected({ key: 'CAM|n.txt|1', serial: 'CAM', fileName: 'n.txt', relPath: 'DCIM/n.txt', bay: 'bay1', size: 3, mtimeMs: 1, critical: false });
    journal.transition('CAM|n.txt|1', 'quarantined', { reason: 'not a media file', reasonCode: 'not_media' });
    journal.close();
    const reopened = Journal.open(dir);
    expect(reopened.get('CAM|n.txt|1')).toMatchObject({ reason: 'not a media file', reasonCode: 'not_media' });
    reopened.close();
  });

  it('keeps the event log bounded', () => {
    const journal = Journal.open(tmp.path);
    for (let i = 0; i < EVENTS_KEPT + 500; i++) journal.event(null, 'tick', String(i));
    expect(journal.eventCount()).toBeLessThanOrEqual(EVENTS_KEPT + 100);
    journal.close();
  });
});
