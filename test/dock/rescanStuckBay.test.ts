/**
 * One bay whose scan never ends (a card reader stuck in a read) must not switch the safety-net
 * rescan off for every bay, and scans of every bay must not pile up behind it. A read that hangs
 * cannot be made on a real file here (no FUSE), so the bay module's openBay is replaced by one
 * that never answers for the bay named "stuck"; everything else is the real watcher.
 */
import { describe, it, expect, jest, afterAll } from '@jest/globals';

let listed = 0;
let bayNames = ['bay1', 'stuck'];
const opened: string[] = [];
jest.unstable_mockModule('../../src/dock/bays.js', () => ({
  listBaysFolder: async () => { listed++; return bayNames.map((name) => ({ kind: 'bay', name, root: `/bays/${name}` })); },
  openBay: (root: string) => { opened.push(root); return root.endsWith('/stuck') ? new Promise(() => {}) : Promise.resolve({ kind: 'noCamera' }); },
}));
const { BayWatcher, RESCAN_MAX_WAIT_MS } = await import('../../src/dock/watcher.js');

const tick = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 5));
afterAll(() => { jest.restoreAllMocks(); });

describe('rescan with a bay whose scan never ends', () => {
  it('keeps finding new bays, logs the stuck bay once, and does not pile up scans', async () => {
    const warnings: Array<{ message: string; fields: unknown }> = [];
    const logger = { warn: (message: string, fields: unknown) => warnings.push({ message, fields }), info() {}, debug() {}, error() {} };
    const state = { stopping: false, scanning: 0, config: { bays: '/bays' }, logger, bays: new Map(), located: new Map(), candidates: new Map(), running: new Map() };
    const watcher = new BayWatcher(state as never, { scanned() {} } as never);
    let clock = 1_000;
    jest.spyOn(performance, 'now').mockImplementation(() => clock);
    watcher.rescanIfDue(); // the first periodic rescan: hangs on bay "stuck"
    await tick();
    expect(opened).toEqual(['/bays/bay1', '/bays/stuck']);
    // Within the cap the hung scan holds the next periodic one back (it may just be a slow card).
    clock += 60_000;
    watcher.rescanIfDue();
    await tick();
    expect(listed).toBe(1);
    clock += RESCAN_MAX_WAIT_MS;
    bayNames = ['bay1', 'newbay', 'stuck']; // a camera docked in a new bay, its chokidar event lost
    for (let i = 0; i < 10; i++) { watcher.rescanIfDue(); await tick(); clock += 10_000; }
    expect(opened).toContain('/bays/newbay');
    // Each rescan after the cap ended (it did not wait for the stuck bay), so they went on at the period.
    expect(listed).toBeGreaterThanOrEqual(10);
    const running = (watcher as unknown as { lastScanAll: { runningSince: number[] } }).lastScanAll.runningSince;
    expect(running).toHaveLength(1); // only the first one, still waiting for the stuck bay
    // The stuck bay was opened once: its queued scan waits behind it, and is joined, not repeated.
    expect(opened.filter((root) => root === '/bays/stuck')).toHaveLength(1);
    expect(warnings.filter((w) => w.message.startsWith('bay scan has not finished'))).toHaveLength(1);
    state.stopping = true;
  });
});
