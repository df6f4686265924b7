import { describe, expect, it } from '@jest/globals';
import { appendFileSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { CustodyLog, custodyLogPath, verifyCustodyLog } from '../../../src/server/custody/custodyLog.js';
import { verifyCustody } from '../../../src/server/custody/custodyVerify.js';
import { withOpen, withTempDir } from '../../helpers/tmp.js';

const fields = (i: number) => ({ event: 'recording-created' as const, recordingId: `R${i}`, dockId: 'dock-1', sha256: 'a'.repeat(64) });

describe('custody log', () => {
  it('chains concurrent appends with consecutive seqs and continues the chain after a reopen', async () => {
    await withTempDir('bodycam-test-', async (dir) => {
      await withOpen(new CustodyLog(custodyLogPath(dir)), async (log) => {
        const seqs = await Promise.all(Array.from({ length: 20 }, (_, i) => log.append(fields(i)).then((r) => r.seq)));
        expect([...seqs].sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
      });
      await withOpen(new CustodyLog(custodyLogPath(dir)), async (again) => {
        expect((await again.append(fields(99))).seq).toBe(21);
      });
      expect(await verifyCustodyLog(dir)).toEqual({ ok: true, entries: 21 });
    });
  });

  it('a torn last line (crash mid-append) is set aside at open and the chain stays valid', async () => {
    await withTempDir('bodycam-test-', async (dir) => {
      const path = custodyLogPath(dir);
      await withOpen(new CustodyLog(path), async (log) => {
        await log.append(fields(1));
        await log.append(fields(2));
      });
      appendFileSync(path, '{"seq":3,"time":"2026-');
      await withOpen(new CustodyLog(path), async (reopened) => {
        expect((await reopened.append(fields(3))).seq).toBe(3);
      });
      expect(await verifyCustodyLog(dir)).toEqual({ ok: true, entries: 3 });
      const torn = readdirSync(dir).filter((f) => f.startsWith('custody.log.torn-'));
      expect(torn).toHaveLength(1);
      expect(readFileSync(join(dir, torn[0]!), 'utf8')).toBe('{"seq":3,"time":"2026-');
    });
  });

  it('appendUnlessMentioned writes one entry per subject, also for concurrent callers and after a reopen', async () => {
    await withTempDir('bodycam-test-', async (dir) => {
      const blob = { event: 'segment-stored' as const, recordingId: 'R1', dockId: 'dock-1', sha256: 'b'.repeat(64) };
      await withOpen(new CustodyLog(custodyLogPath(dir)), async (log) => {
        const seqs = await Promise.all([log.appendUnlessMentioned(blob), log.appendUnlessMentioned({ ...blob, recordingId: 'R2' }), log.appendUnlessMentioned(fields(1))]);
        // The blob once per recording (R1's and R2's: the same bytes, two recordings received), R1's creation once.
        const twice = await Promise.all([log.appendUnlessMentioned(blob), log.appendUnlessMentioned({ ...blob, recordingId: 'R2' })]);
        expect(seqs.filter((seq) => seq > 0)).toHaveLength(3);
        expect(twice).toEqual([0, 0]);
      });
      await withOpen(new CustodyLog(custodyLogPath(dir)), async (again) => {
        expect(await again.appendUnlessMentioned(blob)).toBe(0);
        expect(await again.appendUnlessMentioned(fields(2))).toBe(4);
      });
      expect(await verifyCustodyLog(dir)).toEqual({ ok: true, entries: 4 });
    });
  });

  it('an index lost, behind or ahead of the log is rebuilt from the log at open (no duplicate, no gap)', async () => {
    await withTempDir('bodycam-test-', async (dir) => {
      const path = custodyLogPath(dir);
      await withOpen(new CustodyLog(path), async (log) => {
        for (let i = 0; i < 3; i++) await log.append(fields(i));
      });
      const indexAtSeq3 = readFileSync(join(dir, 'custody-index.sqlite'));
      await withOpen(new CustodyLog(path), async (more) => {
        for (let i = 3; i < 5; i++) await more.append(fields(i));
      });
      writeFileSync(join(dir, 'custody-index.sqlite'), indexAtSeq3); // behind: a crash fell between the log's fsync and the index's commit
      await withOpen(new CustodyLog(path), async (caughtUp) => {
        expect(await caughtUp.appendUnlessMentioned(fields(3))).toBe(0);
      });
      const dropIndex = () => readdirSync(dir).filter((f) => f.startsWith('custody-index.sqlite')).forEach((f) => rmSync(join(dir, f)));
      dropIndex(); // lost: read again from the log
      await withOpen(new CustodyLog(path), async (rebuilt) => {
        expect(await rebuilt.appendUnlessMentioned(fields(4))).toBe(0);
      });
      // Ahead: the log was cut back to 3 entries (as a restore from a backup would), the index still knows R3 and R4.
      writeFileSync(path, readFileSync(path, 'utf8').split('\n').slice(0, 3).join('\n') + '\n');
      await withOpen(new CustodyLog(path), async (cut) => {
        expect(await cut.appendUnlessMentioned(fields(4))).toBe(4);
        expect(await cut.appendUnlessMentioned(fields(2))).toBe(0);
      });
      expect(await verifyCustodyLog(dir)).toEqual({ ok: true, entries: 4 });
    });
  });

  it('names the first broken entry when a line is removed', async () => {
    await withTempDir('bodycam-test-', async (dir) => {
      const path = custodyLogPath(dir);
      await withOpen(new CustodyLog(path), async (log) => {
        for (let i = 0; i < 5; i++) await log.append(fields(i));
      });
      const lines = readFileSync(path, 'utf8').trim().split('\n');
      writeFileSync(path, [...lines.slice(0, 2), ...lines.slice(3)].join('\n') + '\n');
      expect(await verifyCustodyLog(dir)).toMatchObject({ ok: false, entries: 2, firstBroken: { line: 3, seq: 4 } });
    });
  });

  it('verify-log --receipts fails (usage, exit 2) when the path holds no dock receipt or is not a regular file: checking nothing is not ok', async () => {
    await withTempDir('bodycam-test-', async (dir) => {
      await withOpen(new CustodyLog(custodyLogPath(dir)), async (log) => {
        await log.append(fields(1));
      });
      const empty = join(dir, 'empty');
      mkdirSync(empty);
      const config = join(dir, 'dock.json');
      writeFileSync(config, JSON.stringify({ bays: '/srv/bays', stateDir: '/var/lib/bodycam-dock' }));
      const fifo = join(dir, 'fifo');
      execFileSync('mkfifo', [fifo]);
      for (const source of [empty, config]) {
        await expect(verifyCustody({ dataDir: dir, receipts: [source] })).rejects.toMatchObject({ exitCode: 2, code: 'E_NO_DOCK_RECEIPTS', message: expect.stringContaining(`no dock receipts in ${source}`) });
      }
      // The server's own data dir given by mistake: refused too (its log holds entries, not receipts).
      await expect(verifyCustody({ dataDir: dir, receipts: [dir] })).rejects.toMatchObject({ exitCode: 2, message: expect.stringMatching(/^--receipts: /) });
      for (const source of [fifo, '/dev/zero']) {
        await expect(verifyCustody({ dataDir: dir, receipts: [source] })).rejects.toMatchObject({ exitCode: 2, message: `--receipts: ${source} is neither a regular file nor a folder` });
      }
      const report = await verifyCustody({ dataDir: dir });
      expect(report).toMatchObject({ ok: true, entries: 1, dockReceipts: 0, dockReceiptsMatched: 0 });
    });
  });
});
