/**
 * Bays whose scan does not end (a card reader stuck in a read) or ends very late must not switch
 * the safety-net rescan off, hold up start-up, take every scan slot, get scans queued back to back
 * behind them, or make a late scan of every bay undock a bay docked since it listed the bays. A
 * read that hangs cannot be made on a folder here, so the bay module's openBay is replaced by one
 * that answers for "stuck…" bays only when the test says; the watcher, the journal and the camera
 * folders are real. slowAfterMs is 150 ms instead of 5 minutes.
 */
import { describe, it, expect, jest, afterAll } from '@jest/globals';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { watcherState } from '../helpers/watcherState.js';

const root = mkdtempSync(join(tmpdir(), 'bodycam-stuck-bay-'));
const baysDir = join(root, 'bays');
mkdirSync(baysDir);
let bayNames: string[] = [];
const opened: string[] = [];
const answer = new Map<string, () => void>();
let slowInFlight = 0;
let slowMaxInFlight = 0;
jest.unstable_mockModule('../../src/dock/bays.js', () => ({
  listBaysFolder: async () => bayNames.map((name) => ({ kind: 'bay', name, root: join(baysDir, name) })),
  openBay: (bayRoot: string) => {
    const name = bayRoot.slice(baysDir.length + 1);
    opened.push(name);
    if (name.startsWith('stuck')) return new Promise((resolve) => answer.set(name, () => resolve({ kind: 'noCamera' })));
    if (name.startsWith('slow')) {
      slowInFlight++;
      slowMaxInFlight = Math.max(slowMaxInFlight, slowInFlight);
      return new Promise((resolve) => setTimeout(() => { slowInFlight--; resolve({ kind: 'noCamera' }); }, 600));
    }
    return Promise.resolve({ kind: 'camera', serial: `SER-${name}`, reading: { kind: 'none' } });
  },
}));
const { BayWatcher } = await import('../../src/dock/watcher.js');
const { dockStatus } = await import('../../src/dock/status.js');

const SLOW_MS = 150;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const journals: Array<{ close(): void }> = [];
afterAll(() => { for (const answerNow of answer.values()) answerNow(); for (const j of journals) j.close(); rmSync(root, { recursive: true, force: true }); });

function watcherOf(names: string[]) {
  bayNames = names;
  for (const name of names) mkdirSync(join(baysDir, name), { recursive: true });
  const warnings: Array<{ message: string; bay?: string }> = [];
  const undocked: string[] = [];
  const logger = {
    warn: (message: string, fields?: { bay?: string }) => warnings.push({ message, bay: fields?.bay }),
    info: (message: string, fields?: { bay?: string }) => { if (message === 'camera undocked') undocked.push(fields!.bay!); },
    debug() {}, error() {},
  };
  const state = watcherState(baysDir, mkdtempSync(join(root, 'state-')), logger as never);
  journals.push(state.journal);
  const watcher = new BayWatcher(state as never, { scanned() {}, rowFound() {} } as never, SLOW_MS);
  const slowWarnings = (bay: string): number => warnings.filter((w) => w.bay === bay && w.message.startsWith('bay scan has not finished')).length;
  const running = (): number[] => (watcher as unknown as { lastScanAll: { runningSince: number[] } }).lastScanAll.runningSince;
  return { watcher, state, slowWarnings, running, undocked };
}

describe('scans of every bay with a bay whose scan does not end', () => {
  it('start-up\'s scan of every bay ends after slowAfterMs, the other bays scanned; later ones find new bays and queue nothing behind the stuck one', async () => {
    const { watcher, state, slowWarnings, running } = watcherOf(['cam1', 'stuckA']);
    const started = Date.now();
    await watcher.scanAll(); // what start() awaits
    expect(Date.now() - started).toBeGreaterThanOrEqual(SLOW_MS - 5);
    expect(Date.now() - started).toBeLessThan(SLOW_MS + 2000);
    expect(state.bays.get('cam1')?.present).toBe(true);
    expect(slowWarnings('stuckA')).toBe(1);
    expect(running()).toEqual([]);
    // Its status says so: never "empty" while what its card holds is not known.
    const bayOf = (name: string) => dockStatus(state as never).bays.find((b) => b.bay === name);
    // (Marked once its own scan, begun a moment after the scan of every bay asked for it, is past the limit.)
    for (let i = 0; i < 100 && bayOf('stuckA')!.state !== 'attention'; i++) await sleep(10);
    expect(bayOf('stuckA')).toMatchObject({ state: 'attention', reasonCode: 'scan_slow' });
    expect(bayOf('stuckA')!.reason).toMatch(/^the scan of this bay has not finished after \d+ s/);
    expect(bayOf('cam1')!.state).not.toBe('attention');
    // A camera docked in a new bay, its chokidar event lost: the periodic scans find it, at once.
    mkdirSync(join(baysDir, 'cam2'));
    bayNames = ['cam1', 'cam2', 'stuckA'];
    for (let i = 0; i < 3; i++) await watcher.scanAll();
    expect(state.bays.get('cam2')?.present).toBe(true);
    expect(opened.filter((name) => name === 'stuckA')).toHaveLength(1); // no scan queued behind it
    expect(slowWarnings('stuckA')).toBe(1);
    // It answers at last: its scan ends, and the next scan of every bay scans it again.
    answer.get('stuckA')!();
    await sleep(20);
    expect(bayOf('stuckA')!.state).toBe('empty'); // it answered: no camera there
    await watcher.scanAll();
    expect(opened.filter((name) => name === 'stuckA')).toHaveLength(2);
    answer.get('stuckA')!();
    state.stopping = true;
  });

  it('eight stuck bays give their scan slots back: a camera docked beside them is still scanned', async () => {
    const stuck = Array.from({ length: 8 }, (_, i) => `stuckS${i}`);
    const { watcher, state } = watcherOf([...stuck, 'camS']);
    await watcher.scanAll();
    await sleep(SLOW_MS + 100);
    await watcher.scanAll();
    expect(state.bays.get('camS')?.present).toBe(true);
    for (const name of stuck) answer.get(name)!();
    state.stopping = true;
  });

  it('a bay that only waited for a scan slot is not shown as a slow scan', async () => {
    const held = Array.from({ length: 8 }, (_, i) => `stuckW${i}`);
    const { watcher, state } = watcherOf([...held, 'camW']);
    const first = watcher.scanAll(); // camW waits for a slot behind eight stuck bays
    await sleep(SLOW_MS + 60); // the stuck ones give their slots back: camW is scanned (quickly)
    await first;
    const camW = dockStatus(state as never).bays.find((b) => b.bay === 'camW')!;
    expect(camW.reasonCode).not.toBe('scan_slow');
    expect(state.bays.get('camW')?.slowScanSince).toBeUndefined();
    const stuckW0 = () => dockStatus(state as never).bays.find((b) => b.bay === 'stuckW0')!;
    for (let i = 0; i < 100 && stuckW0().state !== 'attention'; i++) await sleep(10);
    expect(stuckW0()).toMatchObject({ state: 'attention', reasonCode: 'scan_slow' });
    for (const name of held) answer.get(name)!();
    state.stopping = true;
  });

  it('slow scans that do read give back at most PARALLEL_SCANS slots: never more than twice that many at once', async () => {
    const slow = Array.from({ length: 24 }, (_, i) => `slowP${i}`);
    const { watcher, state } = watcherOf(slow);
    await watcher.scanAll();
    while (slowInFlight > 0) await sleep(50);
    expect(slowMaxInFlight).toBeGreaterThan(8); // eight gave their slots back after slowAfterMs
    expect(slowMaxInFlight).toBeLessThanOrEqual(16);
    expect(opened.filter((name) => name.startsWith('slowP'))).toHaveLength(24);
    state.stopping = true;
  });

  it('a scan of every bay that waited for a slow bay does not undock a bay docked since it listed them', async () => {
    const { watcher, state, undocked } = watcherOf(['stuckU']);
    const first = watcher.scanAll(); // lists only stuckU, and waits for it (up to slowAfterMs)
    await sleep(20);
    mkdirSync(join(baysDir, 'camU'));
    bayNames = ['camU', 'stuckU'];
    await watcher.scanBay('camU'); // its chokidar event
    expect(state.bays.get('camU')?.present).toBe(true);
    const controller = state.bays.get('camU')!.controller as AbortController;
    answer.get('stuckU')!();
    await first;
    expect(undocked).not.toContain('camU');
    expect(controller.signal.aborted).toBe(false);
    // A bay really gone is still undocked.
    bayNames = ['stuckU'];
    await watcher.scanAll();
    expect(undocked).toContain('camU');
    answer.get('stuckU')?.();
    state.stopping = true;
  });
});
