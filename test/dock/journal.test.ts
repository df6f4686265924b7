import { describe, it, expect, afterAll } from '@jest/globals';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { Journal, EVENTS_KEPT } from '../../src/dock/journal.js';
import { makeTempDir } from '../helpers/tmp.js';

describe('journal', () => {
  const tmp = makeTempDir('bodycam-dock-journal-');
  afterAll(() => tmp.cleanup());

  it('lists the rows due at a moment: not those in backoff, but one whose retry time lies beyond the longest backoff (a clock set back)', () => {
    let t = 1_000_000;
    const journal = Journal.open(join(tmp.path, 'due'), { now: () => t });
    const keys: string[] = [];
    for (const [i, delay] of [0, 500, 5_000, 900_000].entries()) {
      const stat = { size: 10, mtimeMs: i, ino: 100 + i, dev: 1, ctimeMs: i, sidecar: null };
      const key = journal.insertDetected({ serial: 'CAM', fileName: `d${i}.mp4`, relPath: `DCIM/d${i}.mp4`, bay: 'bay1', size: 10, mtimeMs: i, critical: false, stat }).key;
      if (delay) journal.scheduleRetry(key, delay, 'down');
      keys.push(key);
    }
    const due = (now: number, maxDelay: number): string[] => journal.listDueWorkableLight(['detected'], now, now + maxDelay).map((r) => r.key).sort();
    // At t: the first is due, two wait, the last (900 s ahead, longer than any backoff of 60 s) is due.
    expect(due(t, 60_000)).toEqual([keys[0]!, keys[3]!].sort());
    // The same rows as listWorkableLight less those the scheduler's waiting() drops.
    const waiting = (at: number) => (r: { nextAttemptAt: number }) => r.nextAttemptAt > at && r.nextAttemptAt - at <= 60_000;
    expect(journal.listWorkableLight(['detected']).filter((r) => !waiting(t)(r)).map((r) => r.key).sort()).toEqual(due(t, 60_000));
    t += 1_000;
    expect(due(t, 60_000)).toEqual([keys[0]!, keys[1]!, keys[3]!].sort());
    expect(due(t + 10_000, 1_000_000)).toEqual([keys[0]!, keys[1]!, keys[2]!].sort());
    journal.close();
  });

  it('reads rows by key a page at a time, every known one once, in detection order (--once\'s report of a big card)', () => {
    let t = 5_000;
    const journal = Journal.open(join(tmp.path, 'paged'), { now: () => t });
    const keys: string[] = [];
    // Several rows per detection time, so the key breaks ties; inserted out of key order.
    for (let i = 0; i < 23; i++) {
      t = 5_000 + Math.floor(i / 4) * 10;
      const stat = { size: 10, mtimeMs: i, ino: 500 + i, dev: 1, ctimeMs: i, sidecar: null };
      keys.push(journal.insertDetected({ serial: 'CAM', fileName: `p${i}.mp4`, relPath: `DCIM/p${i}.mp4`, bay: 'bay1', size: 10, mtimeMs: i, critical: false, stat }).key);
    }
    const expected = journal.briefsOf(keys).map((r) => r.key);
    const asked = [...keys].reverse().concat(['0000000000000000', keys[3]!]);
    for (const page of [1, 4, 5, 23, 500]) expect([...journal.iterateManyInOrder(asked, page)].map((r) => r.key)).toEqual(expected);
    expect(new Set(expected)).toEqual(new Set(keys));
    expect([...journal.iterateManyInOrder([])]).toEqual([]);
    journal.close();
  });

  it('keeps states, plans, acks and pins across a reopen', () => {
    const journal = Journal.open(tmp.path);
    const stat = { size: 300, mtimeMs: 5, ino: 7, dev: 1, ctimeMs: 5, sidecar: null };
    const key = journal.insertDetected({ serial: 'CAM', fileName: 'a.mp4', relPath: 'DCIM/100BWC/a.mp4', bay: 'bay1', size: 300, mtimeMs: 5, critical: true, stat }).key;
    // Row keys are opaque random uids: one observation of one file, not a name.
    expect(key).toMatch(/^[0-9a-f]{16}$/);
    journal.transition(key, 'probed', { info: { formatName: 'mpegts' } });
    journal.setPlan(key, [{ index: 0, offset: 0, length: 100, startTime: 0, endTime: 1 }, { index: 1, offset: 100, length: 200 }], { planKind: 'mpegts' });
    journal.setSegmentHashes(key, ['a'.repeat(64), 'b'.repeat(64)]);
    journal.transition(key, 'hashed', { recordingId: 'CAM-abc', sha256: 'c'.repeat(64) });
    journal.transition(key, 'uploading');
    journal.ackSegment(key, 1);
    journal.setMeta('serverPublicKeyPem', 'PEM');
    journal.close();

    const again = Journal.open(tmp.path);
    const row = again.get(key)!;
    expect(row.state).toBe('uploading');
    expect(row.recordingId).toBe('CAM-abc');
    expect(row.critical).toBe(true);
    expect(row.info).toMatchObject({ formatName: 'mpegts', planKind: 'mpegts' });
    expect(again.segments(key).map((s) => [s.index, s.acked, s.sha256?.[0], s.startTime])).toEqual([[0, false, 'a', 0], [1, true, 'b', null]]);
    expect(again.getMeta('serverPublicKeyPem')).toBe('PEM');
    // The server's list of missing segments wins both ways.
    again.reconcileMissing(key, [1]);
    expect(again.segments(key).map((s) => s.acked)).toEqual([true, false]);
    // Re-dock in another bay keeps the state and moves the location.
    const moved = again.relocate(key, 'bay7', undefined);
    expect([moved.bay, moved.state, moved.stat]).toEqual(['bay7', 'uploading', stat]);
    expect(again.listByPath('CAM', 'DCIM/100BWC/a.mp4').map((r) => r.key)).toEqual([key]);
    again.close();
  });

  it('opens a journal written before reason codes and row uids existed, and codes quarantines from then on', () => {
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
    // The old row keeps its key, is found by serial + path, and gets a uid of its own.
    expect(journal.get('CAM|z.mp4|0')).toMatchObject({ state: 'quarantined', reason: 'zero-byte file', reasonCode: null, stat: null });
    expect(journal.get('CAM|z.mp4|0')!.uid).toMatch(/^[0-9a-f]{16}$/);
    expect(journal.listByPath('CAM', 'DCIM/z.mp4').map((r) => r.key)).toEqual(['CAM|z.mp4|0']);
    const n = journal.insertDetected({ serial: 'CAM', fileName: 'n.txt', relPath: 'DCIM/n.txt', bay: 'bay1', size: 3, mtimeMs: 1, critical: false, stat: { size: 3, mtimeMs: 1, ino: 2, dev: 1, ctimeMs: 1, sidecar: null } }).key;
    journal.transition(n, 'quarantined', { reason: 'not a media file', reasonCode: 'not_media' });
    journal.close();
    const reopened = Journal.open(dir);
    expect(reopened.get(n)).toMatchObject({ reason: 'not a media file', reasonCode: 'not_media' });
    reopened.close();
  });

  it('keeps the event log bounded', () => {
    const journal = Journal.open(tmp.path);
    for (let i = 0; i < EVENTS_KEPT + 500; i++) journal.event(null, 'tick', String(i));
    expect(journal.eventCount()).toBeLessThanOrEqual(EVENTS_KEPT + 100);
    journal.close();
  });

  it('takes its time from the clock it is given (stamps, retry times), so a test moves time instead of sleeping', () => {
    const dir = join(tmp.path, 'manual-clock');
    let now = 1_700_000_000_000;
    const journal = Journal.open(dir, { now: () => now });
    const stat = { size: 3, mtimeMs: 1, ino: 9, dev: 1, ctimeMs: 1, sidecar: null };
    const row = journal.insertDetected({ serial: 'CAM', fileName: 'c.mp4', relPath: 'DCIM/c.mp4', bay: 'bay1', size: 3, mtimeMs: 1, critical: false, stat });
    expect([row.detectedAt, row.updatedAt]).toEqual([now, now]);
    now += 5_000;
    const retried = journal.scheduleRetry(row.key, 60_000, 'HTTP 503');
    expect([retried.nextAttemptAt, retried.updatedAt, retried.attempts]).toEqual([now + 60_000, now, 1]);
    // Not due a millisecond early, and the next retry time is the one set.
    expect(journal.nextRetryAfter(['detected'], now + 59_999)).toBe(now + 60_000);
    expect(journal.nextRetryAfter(['detected'], now + 60_000)).toBeUndefined();
    now += 60_000;
    expect(journal.transition(row.key, 'probed').updatedAt).toBe(now);
    journal.close();
  });
});
