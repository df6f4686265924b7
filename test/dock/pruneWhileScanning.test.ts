/**
 * The retention rule never runs while a bay is being scanned: a camera whose scan has not reached
 * its files yet (a slow card reader; start-up goes on without it after 5 minutes) has not put its
 * rows in `located`, and a completed row of it pruned then is uploaded again as a new recording.
 */
import { describe, it, expect, afterAll } from '@jest/globals';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { DockAgentCore } from '../../src/dock/agent.js';
import { Journal } from '../../src/dock/journal.js';
import { quietLogger } from '../../src/log.js';
import { dockConfig } from '../helpers/dock.js';
import { makeTempDir } from '../helpers/tmp.js';

describe('pruning and scans', () => {
  const tmp = makeTempDir('bodycam-prune-scan-');
  afterAll(() => tmp.cleanup());

  it('waits for every running scan to end, then prunes the finished row past retention', async () => {
    const config = dockConfig(tmp.path, 'http://127.0.0.1:9', { retainFinished: '1s' });
    const journal = Journal.open(config.stateDir);
    const stat = { size: 10, mtimeMs: 1, ino: 7, dev: 1, ctimeMs: 1, sidecar: null };
    const key = journal.insertDetected({ serial: 'CAM', fileName: 'a.mp4', relPath: 'DCIM/a.mp4', bay: 'bay1', size: 10, mtimeMs: 1, critical: false, stat }).key;
    for (const state of ['probed', 'planned', 'hashed', 'uploading', 'completed'] as const) {
      if (state === 'planned') { journal.setPlan(key, [{ index: 0, offset: 0, length: 10 }], {}); continue; }
      journal.transition(key, state, state === 'hashed' ? { recordingId: 'rec-a', sha256: 'ab'.repeat(32), manifestJson: '{}' } : state === 'completed' ? { receiptJson: JSON.stringify({ type: 'receipt', recordingId: 'rec-a', sha256: 'ab'.repeat(32) }) } : {});
    }
    journal.close();
    const db = new Database(join(config.stateDir, 'journal.sqlite'));
    db.prepare('UPDATE recordings SET updated_at = ?, detected_at = ?').run(Date.now() - 86_400_000, Date.now() - 86_400_000);
    db.close();
    const core = await DockAgentCore.open(config, { logger: quietLogger() });
    try {
      // A bay's scan in flight (its camera's rows not located yet), as the watcher holds it.
      const inFlight = (core as unknown as { watcher: { bayScans: Map<string, Promise<void>> } }).watcher.bayScans;
      inFlight.set('bay1', new Promise<void>(() => {}));
      let result: unknown = 'pending';
      void core.prune().then((r) => { result = r; });
      await new Promise((r) => setTimeout(r, 700));
      expect(result).toBe('pending');
      inFlight.delete('bay1');
      const deadline = Date.now() + 5000;
      while (result === 'pending' && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(result).toMatchObject({ pruned: 1 });
    } finally {
      await core.stop();
    }
  });
});
