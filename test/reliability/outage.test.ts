/**
 * A long outage: the server is gone for a whole compressed "night" while
 * cameras wait in their bays. The dock (`bodycam dock`, a child process) must
 * keep its memory flat, its journal small and its CPU idle, then drain the
 * backlog byte-exact when the server returns.
 * npm test: a 20 s night; `npm run soak`: RELIABILITY_NIGHT_SECONDS.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { dockCamera, recordCamera } from '../../src/camera/index.js';
import { makeTempDir } from '../helpers/tmp.js';
import { DockProcess, journalBytes, knob, originalsIn, procSample, readJournal, ServerProcess, sleep, verifyServer, waitFor, writeReport, type OriginalFile } from '../helpers/reliability.js';

const NIGHT_SECONDS = knob('NIGHT_SECONDS', 20);
const CAMERAS = knob('OUTAGE_CAMERAS', 3);
const CLOCK_TICKS_PER_SECOND = 100;

describe('long outage: the server is gone all night', () => {
  const tmp = makeTempDir('bodycam-outage-');
  const bays = join(tmp.path, 'bays');
  let server: ServerProcess;
  let dock: DockProcess;
  const originals: OriginalFile[] = [];

  beforeAll(async () => {
    mkdirSync(bays, { recursive: true });
    for (let c = 0; c < CAMERAS; c++) {
      const storage = join(tmp.path, `cam${c}`);
      const recorded = await recordCamera({ storage, count: 2, seed: `outage-${c}`, durationSeconds: 4, width: 320, height: 240, fps: 15 });
      const bayPath = await dockCamera({ storage, bays, bay: `bay-${c + 1}` });
      originals.push(...originalsIn(bayPath, recorded.serial, recorded.files.map((f) => f.mediaPath.slice(storage.length + 1))));
    }
    server = new ServerProcess(join(tmp.path, 'server-data'));
    await server.start();   // learn a port, then take the server away for the night
    await server.stop();
    dock = new DockProcess({
      root: tmp.path, endpoint: server.url, bays,
      extraArgs: ['--wipe-after-ingest', '--server-key', join(server.dataDir, 'server-key.pub.pem'), '--settle', '0.3s', '--segment-seconds', '1s', '--max-backoff', '2s', '--rescan-interval', '1s', '--log-level', 'warn'],
    });
  }, 120_000);

  afterAll(async () => {
    await dock?.stop().catch(() => {});
    await server?.stop().catch(() => {});
    tmp.cleanup();
  });

  it(`stays flat in memory, journal and CPU through a ${NIGHT_SECONDS} s outage, then drains the backlog byte-exact`, async () => {
    dock.start();
    const pid = dock.pid!;
    // Warm-up: the dock probes, plans and hashes everything; only the uploads must wait.
    await waitFor('every recording hashed and waiting for the server', () => {
      const rows = readJournal(dock.stateDir).rows;
      return rows.length === originals.length && rows.every((r) => r.state === 'hashed' || r.state === 'uploading');
    }, 60_000, 250);
    await sleep(1000);
    const samples: Array<{ t: number; rssKiB: number; cpuTicks: number; journal: number }> = [];
    const nightStart = Date.now();
    while (Date.now() - nightStart < NIGHT_SECONDS * 1000) {
      const s = procSample(pid);
      if (!s) throw new Error('the dock died during the outage');
      samples.push({ t: Date.now() - nightStart, ...s, journal: journalBytes(dock.stateDir) });
      await sleep(500);
    }
    const first = samples[0]!;
    const last = samples[samples.length - 1]!;
    const half = Math.floor(samples.length / 2);
    const peak = (xs: typeof samples) => Math.max(...xs.map((s) => s.rssKiB));
    const rssGrowthKiB = peak(samples.slice(half)) - peak(samples.slice(0, half));
    const cpuSeconds = (last.cpuTicks - first.cpuTicks) / CLOCK_TICKS_PER_SECOND;
    const cpuShare = cpuSeconds / ((last.t - first.t) / 1000);
    const stillOnCameras = originals.every((f) => existsSync(f.path));

    await server.start();
    const drainStart = Date.now();
    await waitFor('backlog drained after the outage', () => originals.every((f) => !existsSync(f.path)), 120_000, 250);
    const drainSeconds = (Date.now() - drainStart) / 1000;
    const verdict = await verifyServer(server, originals);
    writeReport('outage', {
      nightSeconds: NIGHT_SECONDS, recordings: originals.length, bytes: verdict.bytes, samples: samples.length,
      rssStartKiB: first.rssKiB, rssEndKiB: last.rssKiB, peakRssKiB: peak(samples), rssGrowthSecondHalfKiB: rssGrowthKiB,
      journalStartBytes: first.journal, journalEndBytes: last.journal, cpuSeconds, cpuShare: Math.round(cpuShare * 10000) / 10000,
      rssTimelineKiB: samples.filter((_, i) => i % Math.max(1, Math.floor(samples.length / 20)) === 0).map((x) => [Math.round(x.t / 1000), x.rssKiB, x.journal]),
      drainSeconds, lost: verdict.lost.length, altered: verdict.altered.length, duplicated: verdict.duplicated.length,
    });

    expect(stillOnCameras).toBe(true);
    // Bounded: far below what a leak per retry would reach. The heap settles within about a minute
    // (measured: ~120 MiB from 50 s on), so flatness is asserted on nights of 2 minutes or more (the soak).
    expect(peak(samples)).toBeLessThan(256 * 1024);
    if (NIGHT_SECONDS >= 120) expect(rssGrowthKiB).toBeLessThan(16 * 1024);
    // The journal: events are pruned to a fixed count and the WAL is checkpointed at ~4 MiB, so it levels off.
    expect(last.journal).toBeLessThan(8 * 1024 * 1024);
    // Idle, not spinning: measured 7-8 % of a core with the compressed 2 s backoff; a spin would be ~100 %.
    expect(cpuShare).toBeLessThan(0.25);
    expect({ lost: verdict.lost, altered: verdict.altered, duplicated: verdict.duplicated }).toEqual({ lost: [], altered: [], duplicated: [] });
    expect(verdict.receiptsVerified).toBe(originals.length);
  }, 600_000);
});
