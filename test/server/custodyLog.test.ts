import { describe, expect, it } from '@jest/globals';
import { appendFileSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CustodyLog, custodyLogPath, verifyCustodyLog } from '../../src/server/custodyLog.js';
import { makeTempDir } from '../helpers/tmp.js';

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
});
