/**
 * The bays as the agent sees them: a watch on the bays folder (chokidar) and
 * scans of each bay that turn the files on a docked card into journal rows
 * (via identity.ts), wait for sidecar-less files to settle, and notice undocks.
 * Scans of one bay never overlap; bays are scanned side by side.
 */
import { basename, join } from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import { errnoCode } from '../errors.js';
import { isIncidentPath } from '../protocol/cardLayouts.js';
import { ATTENTION_SKIPS, clockOffsetMsOf, INCOMPLETE_SKIPS, listCameraFiles, SKIP_CODES, type SkippedPath } from '../protocol/cameraStorage/index.js';
import type { AgentState, BayInfo } from './agentState.js';
import { listBaysFolder, openBay, type BayEntry } from './bays.js';
import { PausedError, reasonOf } from './errors.js';
import { claimable, matchRow, settleWhoseFile, verifyAgainst, type ScanMatch } from './identity.js';
import { sameSnapshot, workableRowOf, type RecordingRow, type StatSnapshot, type WorkableRow } from './journal.js';
import { PrioritySlots } from './slots.js';
import { statesOfPhase } from './states.js';
import { isOurSidecar, readSidecar } from './storage.js';
import { closeVanishedRows, hasVanishedRows } from './vanished.js';
import { isAsideOfRunningWipe, restoreInterruptedWipes } from './wipe.js';

/** What the watcher tells the scheduler. */
export interface WatcherEvents {
  /** A scan ended: there may be work to start, or the agent may be idle now. */
  scanned(): void;
  /** A row newly found on a bay, or found on another one: it may want a prepare slot. */
  rowFound(row: WorkableRow, bay: string): void;
}

/** Bays scanned at once (each scan yields every 200 files, so a huge card holds one of these, not all). */
const PARALLEL_SCANS = 8;

/**
 * The periodic rescan waits at least this many times what the last scan of every bay took: a card
 * of 20,000 files takes about a second of CPU to list and match, and the 10 s safety net alone kept
 * a fifth of a core busy for as long as it stayed docked (docs/benchmarks.md).
 */
export const RESCAN_COST_FACTOR = 20;

/**
 * The longest the gate holds the safety net back, whatever the last scan cost; also how long one
 * bay's scan may run (a card reader stuck in a read) before scans of every bay stop waiting for it.
 */
export const RESCAN_MAX_WAIT_MS = 5 * 60_000;

/**
 * When the last scan of every bay ended and how long it took, and when each one running now
 * started (performance.now() ms).
 */
export interface ScanAllTiming { endedAt: number; tookMs: number; runningSince: number[] }

/**
 * Whether the periodic rescan may run at `now`: RESCAN_COST_FACTOR times the last one's time (at
 * most RESCAN_MAX_WAIT_MS) gone by since it ended, and none running that started less than
 * RESCAN_MAX_WAIT_MS ago (one that hangs must not switch the safety net off for every bay).
 */
export function rescanDue(last: ScanAllTiming, now: number): boolean {
  if (last.runningSince.some((startedAt) => now - startedAt < RESCAN_MAX_WAIT_MS)) return false;
  return now - last.endedAt >= Math.min(RESCAN_COST_FACTOR * last.tookMs, RESCAN_MAX_WAIT_MS);
}

/** States before the hash: the row follows the file's stat (the hash will read what is there then). */
const BEFORE_HASH = statesOfPhase('prepare', false);

export class BayWatcher {
  private watcher?: FSWatcher;
  /** Oddities found directly in the bays folder (e.g. a bay that is a symlink), reported once. */
  private readonly reportedAtRoot = new Set<string>();
  private readonly scanQueue = new Map<string, NodeJS.Timeout>();
  private readonly bayScans = new Map<string, Promise<void>>();
  /** scanBay calls of each bay not ended (counted in state.scanning too): the running one and one waiting behind it. */
  private readonly scanCalls = new Map<string, number>();
  private readonly bayScansWaiting = new Map<string, Promise<void>>();
  private readonly scanSlots = new PrioritySlots(PARALLEL_SCANS);
  private readonly lastScanAll: ScanAllTiming = { endedAt: -Infinity, tookMs: 0, runningSince: [] };
  /** When each bay's running scan started (performance.now() ms): one past slowAfterMs is not waited for by scanAll. */
  private readonly bayScanStartedAt = new Map<string, number>();
  /** Scans past slowAfterMs that gave their scan slot back (at most PARALLEL_SCANS). */
  private slotsGivenBack = 0;
  /** Bays whose slow scan was logged (once per scan). */
  private readonly reportedStuck = new Set<string>();

  /**
   * `slowAfterMs`: how long one bay's scan may run before scans of every bay stop waiting for it and
   * it gives its scan slot back (RESCAN_MAX_WAIT_MS; tests make it short).
   */
  constructor(private readonly state: AgentState, private readonly events: WatcherEvents, private readonly slowAfterMs = RESCAN_MAX_WAIT_MS) {}

  /** Watch the bays folder for changes (not in --once mode, which scans once). */
  watch(): void {
    const { config, logger } = this.state;
    // chokidar 5 loses the events under a folder that is removed and recreated (a bay's card
    // re-mounted, the bays folder itself recreated): the periodic rescan (rescanInterval) and the
    // rescan after each job are the safety net, so a lost event costs a delay, never a file.
    this.watcher = watch(config.bays, { depth: 3, followSymlinks: false, ignoreInitial: true, ignorePermissionErrors: true });
    this.watcher.on('all', (_event, path) => this.onFsEvent(path));
    this.watcher.on('error', (error) => logger.warn('watcher error', { err: error }));
  }

  async close(): Promise<void> {
    for (const timer of this.scanQueue.values()) { clearTimeout(timer); this.state.scanning--; }
    this.scanQueue.clear();
    await this.watcher?.close().catch(() => {});
  }

  private onFsEvent(path: string): void {
    const rel = path.slice(this.state.config.bays.length + 1);
    const bay = rel.split('/')[0];
    if (bay) this.scheduleScan(bay, 150);
    else this.scheduleScan('*', 150);
  }

  /** Scan a bay ('*': all of them) after a delay; a scan already scheduled for it serves. */
  scheduleScan(bay: string, delayMs: number): void {
    if (this.state.stopping || this.scanQueue.has(bay)) return;
    // A scan asked for is work in hand: the agent is not idle until it ran. A paused job asks for
    // one to find its file again; counted only once it started, `--once` saw no running job, no
    // scan and the row not located in the gap, and exited with the recording unfinished.
    this.state.scanning++;
    const timer = setTimeout(() => {
      this.scanQueue.delete(bay);
      // The scan counts itself from its first (synchronous) step on: no gap between the two counts.
      void (bay === '*' ? this.scanAll() : this.scanBay(bay));
      this.state.scanning--;
    }, delayMs);
    this.scanQueue.set(bay, timer);
  }

  /**
   * The safety-net rescan (rescanInterval): skipped while a scan of every bay runs, and until
   * RESCAN_COST_FACTOR times what the last one took has passed since it ended. Scans asked for by
   * events, jobs and settle timers are not held back.
   */
  rescanIfDue(): void {
    if (rescanDue(this.lastScanAll, performance.now())) void this.scanAll();
  }

  async scanAll(): Promise<void> {
    const { state } = this;
    if (state.stopping) return;
    state.scanning++;
    const startedAt = performance.now();
    this.lastScanAll.runningSince.push(startedAt);
    try {
      let entries: BayEntry[] = [];
      try { entries = await listBaysFolder(state.config.bays); } catch (error) { state.logger.warn('cannot read bays folder', { err: error }); }
      const present = new Set<string>();
      const scans: Array<Promise<void>> = [];
      for (const entry of entries) {
        const { name } = entry;
        if (entry.kind === 'ignored') { this.reportOnce('*', name, `left alone in the bays folder: ${entry.reason}`, 'info'); continue; }
        if (entry.kind === 'symlink') {
          // Not followed (it could lead anywhere), but never silent: the bay shows attention with the reason.
          this.reportOnce('*', name, 'bay is a symlink: not followed');
          const bay = this.bayInfo(name);
          if (bay.present && bay.keys.size > 0) this.undock(bay);
          bay.present = true;
          bay.serial = null;
          bay.skipped = [entry.skipped];
          bay.skippedCount = 1;
          bay.skippedByCode = { [entry.skipped.code]: 1 };
          present.add(name);
          continue;
        }
        present.add(name);
        // A bay whose scan has run past slowAfterMs (a card reader stuck in a read, or a very slow
        // one) gets no scan queued behind it: it would start the moment that one ends, back to
        // back for as long as the card is slow. What changed on the card since that scan listed
        // it is found by the next scan of every bay after it ends (or by a chokidar event's).
        const since = this.bayScanStartedAt.get(name);
        if (since !== undefined && startedAt - since >= this.slowAfterMs) { this.reportSlow(name, startedAt - since); continue; }
        // Bays are scanned side by side: a card with thousands of files must not hold up the next
        // bay's scan; and one that does not end by slowAfterMs is not waited for (at start-up too).
        scans.push(this.untilSlow(name, this.scanBay(name)));
      }
      await Promise.all(scans);
      // A bay gone from the listing above is undocked only if it is gone now too: a bay docked while
      // this scan waited for a slow one was not in that listing.
      // (A bays folder that cannot be read holds no camera, as above.)
      const gone = [...state.bays.values()].filter((bay) => bay.present && !present.has(bay.name));
      if (gone.length) {
        const presentNow = new Set((await listBaysFolder(state.config.bays).catch(() => [] as BayEntry[])).filter((e) => e.kind !== 'ignored').map((e) => e.name));
        for (const bay of gone) if (bay.present && !presentNow.has(bay.name)) this.undock(bay);
      }
    } finally {
      state.scanning--;
      const { runningSince } = this.lastScanAll;
      runningSince.splice(runningSince.indexOf(startedAt), 1);
      this.lastScanAll.endedAt = performance.now();
      this.lastScanAll.tookMs = this.lastScanAll.endedAt - startedAt;
    }
    this.events.scanned();
  }

  /** The scan, or slowAfterMs, whichever ends first (the scan goes on; the bay is reported slow). */
  private untilSlow(name: string, scan: Promise<void>): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    // Not unref'd: start-up awaits this, and with every scan waiting on a promise only, an unref'd
    // timer would let the process end there instead of going on without the slow bay.
    const slow = new Promise<void>((resolve) => {
      timer = setTimeout(() => { this.reportSlow(name, this.slowAfterMs); resolve(); }, this.slowAfterMs);
    });
    return Promise.race([scan.finally(() => clearTimeout(timer)), slow]);
  }

  /** The bay's own scan (not its wait for a scan slot) has run past slowAfterMs: its status says so. */
  private markSlow(name: string, ownTimer = false): void {
    const bay = this.state.bays.get(name);
    const since = this.bayScanStartedAt.get(name);
    const runningMs = since === undefined ? 0 : performance.now() - since;
    // The scan's own timer is the limit itself (a timer may fire a fraction of a millisecond early).
    if (bay && since !== undefined && (ownTimer || runningMs >= this.slowAfterMs)) bay.slowScanSince ??= this.state.clock.now() - Math.round(runningMs);
  }

  /** Scans of a bay asked for and not ended (waiting for a slot or running; not those still on a timer). */
  bayScansInFlight(): number {
    return this.bayScans.size;
  }

  /** How many of the scans counted in `state.scanning` are of bays whose scan runs past slowAfterMs (running, or waiting behind it). */
  scansOfSlowBays(): number {
    let n = 0;
    for (const [name, calls] of this.scanCalls) if (this.state.bays.get(name)?.slowScanSince !== undefined) n += calls;
    return n;
  }

  /** Once per scan that runs past slowAfterMs: the other bays' scans go on without it. */
  private reportSlow(name: string, runningMs: number): void {
    // Shown on the bay's status only once its own scan runs (not while it waits for a scan slot).
    this.markSlow(name);
    if (this.reportedStuck.has(name)) return;
    this.reportedStuck.add(name);
    this.state.logger.warn('bay scan has not finished: a slow or stuck card reader? Scans of the other bays go on', { bay: name, runningMs: Math.round(runningMs) });
  }

  private reportOnce(bay: string, path: string, message: string, level: 'warn' | 'info' = 'warn'): void {
    const seen = this.state.bays.get(bay)?.reportedSymlinks ?? this.reportedAtRoot;
    if (seen.has(path)) return;
    seen.add(path);
    this.state.logger[level](message, { bay, path });
  }

  private bayInfo(name: string): BayInfo {
    let bay = this.state.bays.get(name);
    if (!bay) {
      bay = { name, root: join(this.state.config.bays, name), present: false, serial: null, controller: new AbortController(), keys: new Set(), sessionKeys: new Set(), reportedSymlinks: new Set(), skipped: [], skippedCount: 0, skippedByCode: {}, layouts: [] };
      this.state.bays.set(name, bay);
    }
    return bay;
  }

  private undock(bay: BayInfo): void {
    const { state } = this;
    if (!bay.present) return;
    bay.present = false;
    bay.controller.abort(new PausedError(`camera undocked from bay ${bay.name}`));
    for (const key of bay.keys) {
      if (state.located.get(key)?.bay === bay.name) state.located.delete(key);
    }
    bay.keys.clear();
    bay.sessionKeys.clear();
    bay.skipped = [];
    bay.skippedCount = 0;
    bay.skippedByCode = {};
    bay.layouts = [];
    for (const path of [...state.candidates.keys()]) if (path.startsWith(bay.root + '/')) state.candidates.delete(path);
    state.logger.info('camera undocked', { bay: bay.name, serial: bay.serial });
  }

  /** Scans of one bay never overlap (events, settle timers and the rescan can all ask at once). */
  async scanBay(name: string): Promise<void> {
    const { state } = this;
    if (state.stopping) return;
    // A scan already waiting its turn will see everything this one would: join it (a card with
    // thousands of files scans longer than the rescan period; scans must not pile up behind it).
    const waiting = this.bayScansWaiting.get(name);
    if (waiting) return waiting;
    state.scanning++;
    this.scanCalls.set(name, (this.scanCalls.get(name) ?? 0) + 1);
    const previous = this.bayScans.get(name) ?? Promise.resolve();
    const current = previous.then(async () => {
      this.bayScansWaiting.delete(name);
      if (state.stopping) return;
      // At most PARALLEL_SCANS bays at once: 128 cameras docked together would otherwise share the
      // disk and the thread pool evenly and all finish late, and the first job waits for a scan.
      const release = await this.scanSlots.acquire([0, 0]);
      this.bayScanStartedAt.set(name, performance.now());
      // A scan past slowAfterMs gives its slot back, up to PARALLEL_SCANS of them at once: eight
      // stuck card readers must not keep every other bay from being scanned, and slow scans that
      // do read still count (the slots bound disk contention: at most twice PARALLEL_SCANS run).
      let gaveBack = false;
      const slotTimer = setTimeout(() => {
        this.markSlow(name, true);
        if (this.slotsGivenBack >= PARALLEL_SCANS) return;
        this.slotsGivenBack++;
        gaveBack = true;
        release();
      }, this.slowAfterMs);
      slotTimer.unref?.();
      try {
        if (!state.stopping) await this.scanBayInner(name);
      } finally {
        clearTimeout(slotTimer);
        if (gaveBack) this.slotsGivenBack--;
        this.bayScanStartedAt.delete(name);
        this.reportedStuck.delete(name);
        const bay = state.bays.get(name);
        if (bay) delete bay.slowScanSince;
        release();
      }
    }).catch((error: unknown) => {
      state.logger.warn('bay scan failed', { bay: name, err: error });
    });
    this.bayScansWaiting.set(name, current);
    this.bayScans.set(name, current);
    try {
      await current;
    } finally {
      state.scanning--;
      const calls = (this.scanCalls.get(name) ?? 1) - 1;
      if (calls > 0) this.scanCalls.set(name, calls); else this.scanCalls.delete(name);
      if (this.bayScans.get(name) === current) this.bayScans.delete(name);
    }
    this.events.scanned();
  }

  private async scanBayInner(name: string): Promise<void> {
    const { state } = this;
    const { journal, config, clock } = state;
    const bay = this.bayInfo(name);
    const contents = await openBay(bay.root);
    if (contents.kind === 'symlink') return; // a symlinked bay is shown by scanAll (attention), never read
    if (contents.kind === 'noCamera') { this.undock(bay); return; }
    const { reading, device, serial } = contents;
    if (!bay.present || bay.serial !== serial) {
      if (bay.present) this.undock(bay);
      bay.present = true;
      bay.serial = serial;
      bay.controller = new AbortController();
      bay.reportedSymlinks.clear();
      bay.problem = reading.kind === 'invalid' ? reading.reason : undefined;
      state.logger.info('camera docked', { bay: name, serial, model: device?.model, clockOffsetMs: clockOffsetMsOf(device), deviceJson: reading.kind });
    }
    // This docking: an undock (and a card docked again in the bay) while the scan awaits ends the scan.
    const docking = bay.controller;
    const undockedSince = (): boolean => state.stopping || !bay.present || bay.serial !== serial || bay.controller !== docking;
    let listing = await listCameraFiles(bay.root);
    // A dock killed mid-delete leaves the checked file under its aside name: back under its own
    // name (and its row) before anything is matched, instead of a second recording of it.
    if (await restoreInterruptedWipes(journal, serial, listing.files, state.logger, (key) => state.running.has(key))) listing = await listCameraFiles(bay.root);
    for (const entry of listing.skipped) {
      if (!ATTENTION_SKIPS.has(entry.code)) continue;
      this.reportOnce(name, entry.path, entry.code === 'symlink' || entry.code === 'outside_camera'
        ? 'symlink on camera storage: not followed, not ingested' : `skipped on camera storage: ${entry.code}: ${entry.reason}`);
    }
    const skipped: SkippedPath[] = [...listing.skipped];
    let skippedCount = listing.skippedCount;
    const skippedByCode = { ...listing.skippedByCode };
    const now = clock.now();
    const seen = new Set<string>();
    const seenPaths = new Set<string>();
    let nextSettleCheck = Infinity;
    /** A file the scan could not decide on now: it waits like a settling one and is looked at again. */
    const waitAsSettling = (file: { absPath: string; size: number; mtimeMs: number }): void => {
      state.candidates.set(file.absPath, { size: file.size, mtimeMs: file.mtimeMs, stableSince: clock.now(), firstSeen: state.candidates.get(file.absPath)?.firstSeen ?? now });
      nextSettleCheck = Math.min(nextSettleCheck, clock.now() + Math.max(1000, config.settle * 1000));
    };
    let sinceYield = 0;
    // Detection writes of one scan are committed together (Journal.beginBatch), never across an await.
    try {
    for (const file of listing.files) {
      if (++sinceYield >= 200) {
        sinceYield = 0;
        journal.commitBatch();
        await new Promise<void>((resolve) => setImmediate(resolve)); // other bays' jobs get the event loop
      }
      if (undockedSince()) return;
      if (isAsideOfRunningWipe(journal, serial, file, (key) => state.running.has(key))) continue;
      seenPaths.add(file.absPath);
      // A dashcam's Event folder holds incidents: offloaded first, as a critical recording (a sidecar overrides).
      let critical = isIncidentPath(file.relPath);
      let recordedAt = file.mtimeMs;
      if (file.sidecarPath) {
        let sidecar;
        try {
          journal.commitBatch();
          sidecar = await readSidecar(file.sidecarPath);
        } catch (error) {
          // One unreadable sidecar must not stop the rest of the bay. Gone since the listing (a wipe
          // or an undock mid-scan) is no news: the next scan sees the truth. Anything else is shown.
          const code = errnoCode((error as { cause?: unknown }).cause);
          if (code !== 'ENOENT' && code !== 'ENOTDIR') {
            this.reportOnce(name, file.relPath, `sidecar unreadable right now: ${reasonOf(error)}`);
            skippedCount++;
            skippedByCode.sidecar_unreadable = (skippedByCode.sidecar_unreadable ?? 0) + 1;
            skipped.push({ path: file.relPath, code: SKIP_CODES.sidecarUnreadable, reason: `sidecar unreadable right now: ${reasonOf(error)}` });
          }
          continue;
        }
        if (!isOurSidecar(sidecar, device)) {
          // Another maker's JSON (its schema does not say it is ours): an attachment, not a sidecar.
          file.companions.unshift({ relPath: file.relPath.slice(0, file.relPath.length - file.fileName.length) + basename(file.sidecarPath), absPath: file.sidecarPath, fileName: basename(file.sidecarPath), stat: file.sidecarStat! });
          file.sidecarPath = undefined;
          file.sidecarStat = undefined;
        } else if (sidecar.kind === 'ok') {
          critical = sidecar.sidecar.critical === true;
          const started = Date.parse(String(sidecar.sidecar.startedAt ?? ''));
          if (!Number.isNaN(started)) recordedAt = started;
        }
      }
      const stat: StatSnapshot = {
        ...file.stat, sidecar: file.sidecarStat ?? null,
        ...(file.companions.length ? { companions: file.companions.map((c) => ({ name: c.fileName, size: c.stat.size, mtimeMs: c.stat.mtimeMs, ino: c.stat.ino, dev: c.stat.dev, ctimeMs: c.stat.ctimeMs })) } : {}),
      };
      let match: ScanMatch = matchRow(state, serial, file, stat, bay.sessionKeys);
      if (match.kind !== 'row' && !file.sidecarPath) {
        // A file with no sidecar is done only when it stops changing: it settles before anything reads it.
        const known = state.candidates.get(file.absPath);
        if (!known || known.size !== file.size || known.mtimeMs !== file.mtimeMs) {
          state.candidates.set(file.absPath, { size: file.size, mtimeMs: file.mtimeMs, stableSince: now, firstSeen: known?.firstSeen ?? now });
          nextSettleCheck = Math.min(nextSettleCheck, now + config.settle * 1000);
          continue;
        }
        const readyAt = known.stableSince + config.settle * 1000;
        if (now < readyAt) { nextSettleCheck = Math.min(nextSettleCheck, readyAt); continue; }
      }
      state.candidates.delete(file.absPath);
      if (match.kind === 'whoseFile') {
        journal.commitBatch();
        const settled = await settleWhoseFile(state, match.row, file, stat, docking.signal);
        if (undockedSince()) return;
        // Not read to the end (undocked, a read error): it waits like a settling file.
        if (settled === 'retry') { waitAsSettling(file); continue; }
        match = settled;
      }
      if (match.kind === 'verify') {
        journal.commitBatch();
        const verified = await verifyAgainst(state, match.rows, file, stat, name);
        if (undockedSince()) return;
        // Changed while it was re-hashed: it waits like a settling file (and --once does not claim it).
        if (verified === 'retry') { waitAsSettling(file); continue; }
        match = verified;
        // The scan awaited: another bay may have claimed the row meanwhile.
        if (match.kind === 'row' && !claimable(state, match.row, file.absPath)) match = { kind: 'new' };
      }
      let row: RecordingRow;
      journal.beginBatch();
      if (match.kind === 'row') {
        // Before the hash, the row follows the file (the hash reads what is there then); after it, the
        // snapshot stays what the manifest vouches for, so a later change is seen as one.
        const refresh = BEFORE_HASH.includes(match.row.state) || sameSnapshot(match.row.stat, stat) ? stat : undefined;
        row = journal.relocate(match.row, name, refresh);
        journal.markSeen(row, now);
      } else {
        row = journal.insertDetected({ serial, fileName: file.fileName, relPath: file.relPath, bay: name, size: file.size, mtimeMs: file.mtimeMs, critical, stat, recordedAt });
      }
      const key = row.key;
      // --once gives every run its own attempt budget (scheduler.ts, exhausted): a row's attempts when
      // this run first finds it on a card (no job runs on a row before that), never a read of all rows.
      if (config.once && !state.attemptsBeforeRun.has(key)) state.attemptsBeforeRun.set(key, row.attempts);
      if (row.info.recordedAt === undefined && row.state === 'detected') row = journal.transition(key, 'detected', { info: { recordedAt } });
      const previous = state.located.get(key);
      if (previous && previous.bay !== name) state.bays.get(previous.bay)?.keys.delete(key);
      // A row newly found (or found elsewhere) may want a prepare slot: it joins the scheduler's queue.
      if (!previous || previous.bay !== name) this.events.rowFound(workableRowOf(row), name);
      state.located.set(key, { bay: name, cameraRoot: bay.root, absPath: file.absPath, sidecarPath: file.sidecarPath, companions: file.companions, device, deviceProblem: bay.problem });
      bay.keys.add(key);
      bay.sessionKeys.add(key);
      seen.add(key);
    }
    } finally {
      journal.commitBatch();
    }
    bay.skipped = skipped;
    bay.skippedCount = skippedCount;
    bay.skippedByCode = skippedByCode;
    // What the card was stays known after its recordings are wiped (until it is undocked).
    bay.layouts = [...new Set([...bay.layouts, ...listing.layouts])];
    for (const path of [...state.candidates.keys()]) if (path.startsWith(bay.root + '/') && !seenPaths.has(path)) state.candidates.delete(path);
    for (const key of [...bay.keys]) {
      if (!seen.has(key)) {
        bay.keys.delete(key);
        if (state.located.get(key)?.bay === name) state.located.delete(key);
        state.running.get(key)?.controller.abort(new PausedError('file vanished from the camera'));
      }
    }
    // A row whose file the whole card no longer holds (renamed, moved, deleted on it) is closed with
    // the reason, never left counting as queued work for ever (src/dock/vanished.ts).
    const complete = !listing.changedDuringListing && skippedCount <= skipped.length && ![...INCOMPLETE_SKIPS].some((code) => (skippedByCode[code] ?? 0) > 0);
    const cardListing = { serial, files: new Set(listing.files.map((f) => f.relPath)), skipped, complete };
    if (complete && hasVanishedRows(state, bay, cardListing)) {
      // What the card lacks is judged only if the same camera is still there after the walk: a card
      // pulled or unmounted mid-walk (an empty mount point) lists nothing, which proves nothing.
      const after = await openBay(bay.root);
      if (after.kind === 'camera' && after.serial === serial && after.reading.kind === contents.reading.kind
        && !state.stopping && bay.present && bay.serial === serial) closeVanishedRows(state, bay, cardListing);
    }
    if (Number.isFinite(nextSettleCheck)) this.scheduleScan(name, Math.max(50, nextSettleCheck - clock.now() + 20));
  }
}
