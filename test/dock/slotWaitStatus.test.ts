/**
 * A bay whose scan waited for a scan slot behind eight others and then ran briefly is not shown as
 * a slow scan (scan_slow): the slow-scan limit counts from when its own scan started, not from
 * when a scan of every bay asked for it (review of ab7e9e4). openBay is replaced by one that takes
 * 130 ms for the eight "hold" bays and 40 ms for the late one; the watcher and journal are real.
 */
import { describe, it, expect, jest, afterAll } from '@jest/globals';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { watcherState } from '../helpers/watcherState.js';

const root = mkdtempSync(join(tmpdir(), 'bodycam-slot-wait-'));
const baysDir = join(root, 'bays');
mkdirSync(baysDir);
let bayNames: string[] = [];
jest.unstable_mockModule('../../src/dock/bays.js', () => ({
  listBaysFolder: async () => bayNames.map((name) => ({ kind: 'bay', name, root: join(baysDir, name) })),
  openBay: (bayRoot: string) => {
    const name = bayRoot.slice(baysDir.length + 1);
    // hold*: 130 ms each (8 of them fill every slot); late: 40 ms, starts only after a slot frees.
    const ms = name.startsWith('hold') ? 130 : 40;
    return new Promise((resolve) => setTimeout(() => resolve({ kind: 'noCamera' }), ms));
  },
}));
const { BayWatcher } = await import('../../src/dock/watcher.js');
const { dockStatus } = await import('../../src/dock/status.js');
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const journals: Array<{ close(): void }> = [];
afterAll(() => { for (const j of journals) j.close(); rmSync(root, { recursive: true, force: true }); });

describe('slot wait', () => {
  it('a bay that waited for a scan slot is not shown scan_slow after running briefly', async () => {
    bayNames = [...Array.from({ length: 8 }, (_, i) => `hold${i}`), 'late'];
    for (const n of bayNames) mkdirSync(join(baysDir, n), { recursive: true });
    const state = watcherState(baysDir, mkdtempSync(join(root, 'state-')));
    journals.push(state.journal);
    const watcher = new BayWatcher(state as never, { scanned() {}, rowFound() {} } as never, 150);
    
    await watcher.scanAll();
    const late = dockStatus(state as never).bays.find((b) => b.bay === 'late');
    await sleep(200);
    expect(late?.reasonCode).not.toBe('scan_slow');
    expect(late?.state).toBe('empty');
  });
});
