import { describe, expect, it } from '@jest/globals';
import { appendFileSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { CustodyLog, custodyLogPath, verifyCustodyLog } from '../../../src/server/custody/custodyLog.js';
import { verifyCustody } from '../../../src/server/custody/custodyVerify.js';
import { makeTempDir } from '../../helpers/tmp.js';

const fields = (i: number) => ({ event: 'recording-created' as const, recordingId: `R${i}`, dockId: 'dock-1', sha256: 'a'.repeat(64) });

describe('custody log', () => {
  it('chains concurrent appends with consecutive seqs and continues the chain after a reopen', async () => {
    const dir = makeTempDir();
    try {
      const log = new CustodyLog(custodyLogPath(dir.path));
      await log.open();
      const seqs = await Promise.all(Array.from({ length: 20 }, (_, i) => log.append(fields(i)).then((r) => r.seq)));
      expect([...seqs].sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
      await log.close();
      const again = new CustodyLog(custodyLogPath(dir.path));
      await again.open();
      expect((await again.append(fields(99))).seq).toBe(21);
      await again.close();
      expect(await verifyCustodyLog(dir.path)).toEqual({ ok: true, entries: 21 });
    } finally {
      dir.cleanup();
    }
  });

  it('a torn last line (crash mid-append) is set aside at open and the chain stays valid', async () => {
    const dir = makeTempDir();
    try {
      const path = custodyLogPath(dir.path);
      const log = new CustodyLog(path);
      await log.open();
      await log.append(fields(1));
      await log.append(fields(2));
      await log.close();
      appendFileSync(path, '{"seq":3,"time":"2026-');
      const reopened = new CustodyLog(path);
      await reopened.open();
      expect((await reopened.append(fields(3))).seq).toBe(3);
      await reopened.close();
      expect(await verifyCustodyLog(dir.path)).toEqual({ ok: true, entries: 3 });
      const torn = readdirSync(dir.path).filter((f) => f.startsWith('custody.log.torn-'));
      expect(torn).toHaveLength(1);
      expect(readFileSync(join(dir.path, torn[0]!), 'utf8')).toBe('{"seq":3,"time":"2026-');
    } finally {
      dir.cleanup();
    }
  });

  it('appendUnlessMentioned writes one entry per subject, also for concurrent callers and after a reopen', async () => {
    const dir = makeTempDir();
    try {
      const log = new CustodyLog(custodyLogPath(dir.path));
      await log.open();
      const blob = { event: 'segment-stored' as const, recordingId: 'R1', dockId: 'dock-1', sha256: 'b'.repeat(64) };
      const seqs = await Promise.all([log.appendUnlessMentioned(blob), log.appendUnlessMentioned({ ...blob, recordingId: 'R2' }), log.appendUnlessMentioned(fields(1))]);
      expect(seqs.filter((seq) => seq > 0)).toHaveLength(2); // the blob once (whichever recording asked first), R1 once
      await log.close();
      const again = new CustodyLog(custodyLogPath(dir.path));
      await again.open();
      expect(await again.appendUnlessMentioned(blob)).toBe(0);
      expect(await again.appendUnlessMentioned(fields(2))).toBe(3);
      await again.close();
      expect(await verifyCustodyLog(dir.path)).toEqual({ ok: true, entries: 3 });
    } finally {
      dir.cleanup();
    }
  });

  it('an index lost, behind or ahead of the log is rebuilt from the log at open (no duplicate, no gap)', async () => {
    const dir = makeTempDir();
    try {
      const path = custodyLogPath(dir.path);
      const log = new CustodyLog(path);
      await log.open();
      for (let i = 0; i < 3; i++) await log.append(fields(i));
      await log.close();
      const indexAtSeq3 = readFileSync(join(dir.path, 'custody-index.sqlite'));
      const more = new CustodyLog(path);
      await more.open();
      for (let i = 3; i < 5; i++) await more.append(fields(i));
      await more.close();
      writeFileSync(join(dir.path, 'custody-index.sqlite'), indexAtSeq3); // behind: a crash fell between the log's fsync and the index's commit
      const caughtUp = new CustodyLog(path);
      await caughtUp.open();
      expect(await caughtUp.appendUnlessMentioned(fields(3))).toBe(0);
      await caughtUp.close();
      const dropIndex = () => readdirSync(dir.path).filter((f) => f.startsWith('custody-index.sqlite')).forEach((f) => rmSync(join(dir.path, f)));
      dropIndex(); // lost: read again from the log
      const rebuilt = new CustodyLog(path);
      await rebuilt.open();
      expect(await rebuilt.appendUnlessMentioned(fields(4))).toBe(0);
      await rebuilt.close();
      // Ahead: the log was cut back to 3 entries (as a restore from a backup would), the index still knows R3 and R4.
      writeFileSync(path, readFileSync(path, 'utf8').split('\n').slice(0, 3).join('\n') + '\n');
      const cut = new CustodyLog(path);
      await cut.open();
      expect(await cut.appendUnlessMentioned(fields(4))).toBe(4);
      expect(await cut.appendUnlessMentioned(fields(2))).toBe(0);
      await cut.close();
      expect(await verifyCustodyLog(dir.path)).toEqual({ ok: true, entries: 4 });
    } finally {
      dir.cleanup();
    }
  });

  it('names the first broken entry when a line is removed', async () => {
    const dir = makeTempDir();
    try {
      const path = custodyLogPath(dir.path);
      const log = new CustodyLog(path);
      await log.open();
      for (let i = 0; i < 5; i++) await log.append(fields(i));
      await log.close();
      const lines = readFileSync(path, 'utf8').trim().split('\n');
      writeFileSync(path, [...lines.slice(0, 2), ...lines.slice(3)].join('\n') + '\n');
      expect(await verifyCustodyLog(dir.path)).toMatchObject({ ok: false, entries: 2, firstBroken: { line: 3, seq: 4 } });
    } finally {
      dir.cleanup();
    }
  });

  it('verify-log --receipts fails (usage, exit 2) when the path holds no dock receipt or is not a regular file: checking nothing is not ok', async () => {
    const dir = makeTempDir();
    try {
      const log = new CustodyLog(custodyLogPath(dir.path));
      await log.open();
      await log.append(fields(1));
      await log.close();
      const empty = join(dir.path, 'empty');
      mkdirSync(empty);
      const config = join(dir.path, 'dock.json');
      writeFileSync(config, JSON.stringify({ bays: '/srv/bays', stateDir: '/var/lib/bodycam-dock' }));
      const fifo = join(dir.path, 'fifo');
      execFileSync('mkfifo', [fifo]);
      for (const source of [empty, config]) {
        await expect(verifyCustody({ dataDir: dir.path, receipts: [source] })).rejects.toMatchObject({ exitCode: 2, code: 'E_NO_DOCK_RECEIPTS', message: expect.stringContaining(`no dock receipts in ${source}`) });
      }
      // The server's own data dir given by mistake: refused too (its log holds entries, not receipts).
      await expect(verifyCustody({ dataDir: dir.path, receipts: [dir.path] })).rejects.toMatchObject({ exitCode: 2, message: expect.stringMatching(/^--receipts: /) });
      for (const source of [fifo, '/dev/zero']) {
        await expect(verifyCustody({ dataDir: dir.path, receipts: [source] })).rejects.toMatchObject({ exitCode: 2, message: `--receipts: ${source} is neither a regular file nor a folder` });
      }
      const report = await verifyCustody({ dataDir: dir.path });
      expect(report).toMatchObject({ ok: true, entries: 1, dockReceipts: 0, dockReceiptsMatched: 0 });
    } finally {
      dir.cleanup();
    }
  });
});
