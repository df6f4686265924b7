import { describe, it, expect, afterAll } from '@jest/globals';
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

  it('keeps the event log bounded', () => {
    const journal = Journal.open(tmp.path);
    for (let i = 0; i < EVENTS_KEPT + 500; i++) journal.event(null, 'tick', String(i));
    expect(journal.eventCount()).toBeLessThanOrEqual(EVENTS_KEPT + 100);
    journal.close();
  });
});
