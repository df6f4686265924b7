/**
 * Runs one scenario: fixture cameras copied to temporary storage, the reference
 * server (or an existing endpoint), the fault proxy between dock and server, the
 * dock agent on loopback; then the timeline of steps, and the expectations
 * decided one by one until all are or the timeout passes.
 */
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { UsageError } from '../errors.js';
import { quietLogger } from '../log.js';
import type { RecordingListEntry } from '../protocol/types.js';
import { installDockKey, readTokenFile, trustServer, type DockProblem, type DockStatus } from '../dock/index.js';
import { startIngestServer, type IngestServer } from '../server/index.js';
import { dockCameraInto, undockCameraFrom } from './cameraAdapter.js';
import { startReplayDock, type ReplayDock } from './dockAdapter.js';
import { isWorkingLink, startFaultProxy, type FaultProxy } from '../faultproxy/faultProxy.js';
import { recordingsOf, refMatches, type FixtureRecording } from './fixtures.js';
import { recordCamera } from '../camera/index.js';
import { recordOptionsOf } from './schema.js';
import { dockEntryFor, ServerObserver, serverEntryFor, type DockRecordingView } from './observe.js';
import { describeExpected, initialProgress, judge, refusedBy, timedOut, type CaseProgress, type Judgement, type Sighting } from './judge.js';
import type { CaseResult, ScenarioResult } from './report.js';
import type { Condition, Expectation, LoadedScenario, Step } from './schema.js';

export interface ReplayOptions {
  /** Replay against this ingest server instead of starting the reference one. */
  endpoint?: string;
  tokenFile?: string;
  /** With endpoint: the dock id that token belongs to on that server. */
  dockId?: string;
  /**
   * With endpoint: folder keeping the replay dock's key pair between runs (the server pins a
   * dock's key on first contact). Default .bodycam/replay-dock-key/<dock id> under the cwd.
   */
  dockKeyDir?: string;
  /** With endpoint: PEM file of that server's receipt key (a scenario that wipes needs it or serverFingerprint). */
  serverKey?: string;
  /** With endpoint: that server's keyId, confirmed against its GET /v1/keys before the dock starts. */
  serverFingerprint?: string;
  /** Seconds; overrides the scenario's own timeout. */
  timeout?: number;
  /** Keep the temporary folder (printed) for a post-mortem. */
  keep?: boolean;
  /** Progress lines for a person (steps as they run). */
  onProgress?: (line: string) => void;
}

const DEFAULT_TIMEOUT_SECONDS = 120;
const POLL_MS = 100;

interface Tracked {
  recording: FixtureRecording;
  expectation: Expectation;
  expected: string;
  /** Set once decided. */
  result?: CaseResult;
  /** What the judge (judge.ts) carries from one poll round to the next. */
  progress: CaseProgress;
}

interface CameraPlace {
  /** Where the camera's storage is now: its own folder, or the bay it is docked in. */
  root: string;
  bay?: string;
}

/** Pair every fixture recording with the one expectation that names it. */
function expand(loaded: LoadedScenario, recordings: FixtureRecording[]): { tracked: Tracked[]; problems: string[] } {
  const problems: string[] = [];
  const tracked: Tracked[] = [];
  const claimed = new Map<string, number>();
  loaded.scenario.expect.forEach((expectation, i) => {
    const matched = recordings.filter((r) => refMatches(expectation.recording, r));
    if (matched.length === 0) problems.push(`expect[${i}]: "${expectation.recording}" matches no recording (have: ${recordings.map((r) => r.ref).join(', ') || 'none'})`);
    for (const recording of matched) {
      const earlier = claimed.get(recording.ref);
      if (earlier !== undefined) {
        problems.push(`expect[${i}]: ${recording.ref} is already expected by expect[${earlier}]`);
        continue;
      }
      claimed.set(recording.ref, i);
      tracked.push({ recording, expectation, expected: describeExpected(expectation), progress: initialProgress() });
    }
  });
  for (const recording of recordings) {
    if (!claimed.has(recording.ref)) problems.push(`${recording.ref} has no expectation: every recording needs one`);
  }
  return { tracked, problems };
}

/**
 * A dock-level problem the server itself gave, or none. One the scenario injected (the fault
 * proxy's own answers of that status, code proxy_fault) is part of the scenario: it passes.
 */
export function serverRefusal(status: Pick<DockStatus, 'attention' | 'serverProblems'>): DockProblem | undefined {
  const injected = (p: DockProblem): boolean => (status.serverProblems ?? []).some((t) => t.code === 'proxy_fault' && t.status === p.status);
  return status.attention.find((p) => p.endpoint !== undefined && !injected(p));
}

export async function runScenario(loaded: LoadedScenario, options: ReplayOptions = {}): Promise<ScenarioResult> {
  const { scenario } = loaded;
  const started = Date.now();
  const elapsed = (): number => (Date.now() - started) / 1000;
  const progress = options.onProgress ?? (() => {});
  const work = mkdtempSync(join(tmpdir(), `bodycam-replay-${scenario.name}-`));
  const result: ScenarioResult = { scenario: scenario.name, file: loaded.file, cases: [], seconds: 0 };
  let server: IngestServer | undefined;
  let proxy: FaultProxy | undefined;
  let dock: ReplayDock | undefined;
  const timers = new Set<NodeJS.Timeout>();
  try {
    // Fixtures are copied, never touched in place: a replay must leave the repository as it found it.
    const places = new Map<string, CameraPlace>();
    const recordings: FixtureRecording[] = [];
    for (const [camera, fixture] of Object.entries(loaded.fixtures)) {
      if (!existsSync(fixture)) throw new UsageError(`fixture for camera "${camera}" not found: ${fixture}`, { code: 'E_SCENARIO_FIXTURE' });
      const root = join(work, 'cameras', camera);
      cpSync(fixture, root, { recursive: true });
      places.set(camera, { root });
      recordings.push(...await recordingsOf(camera, root));
    }
    // Cameras the scenario asks the simulator for (any maker's layout): recorded now, seeded, so every run has the same bytes.
    for (const [camera, record] of Object.entries(loaded.recorded ?? {})) {
      const root = join(work, 'cameras', camera);
      await recordCamera(recordOptionsOf(record, root, camera));
      places.set(camera, { root });
      recordings.push(...await recordingsOf(camera, root));
    }
    const { tracked, problems } = expand(loaded, recordings);
    if (problems.length > 0) throw new UsageError(`scenario ${scenario.name}: ${problems.join('; ')}`, { code: 'E_SCENARIO' });

    const baysRoot = join(work, 'bays');
    for (const bay of scenario.dock.bays) mkdirSync(join(baysRoot, bay), { recursive: true });
    let dockId = `replay-${randomBytes(4).toString('hex')}`;
    const stateDir = join(work, 'dock');
    let endpoint: string;
    let token: string;
    let serverKey: string | undefined;
    const tokenFile = join(work, 'dock.token');
    if (options.endpoint) {
      if (!options.tokenFile) throw new UsageError('--endpoint needs --token-file (the dock token the server accepts)');
      if (!options.dockId) throw new UsageError('--endpoint needs --dock-id (the dock id that token belongs to on that server)');
      dockId = options.dockId;
      endpoint = options.endpoint.replace(/\/+$/, '');
      // The same key on every run: the server pins a dock's key on first contact.
      const keyDir = resolve(options.dockKeyDir ?? join('.bodycam', 'replay-dock-key', dockId));
      installDockKey(keyDir, stateDir);
      token = readTokenFile(options.tokenFile);
      // A wipe needs the server key confirmed out of band: a key file, or the fingerprint checked now.
      if (options.serverKey) serverKey = resolve(options.serverKey);
      else if (options.serverFingerprint) await trustServer({ stateDir, endpoint, fingerprint: options.serverFingerprint });
      else if (scenario.dock.wipeAfterIngest ?? true) throw new UsageError('replay --endpoint with a scenario that wipes needs the server\'s key confirmed: --server-key <PEM file> or --server-fingerprint <keyId> (a key learned on first contact never authorises a wipe)');
    } else {
      token = randomBytes(24).toString('hex');
      server = await startIngestServer({ dataDir: join(work, 'server'), tokens: { [dockId]: token }, host: '127.0.0.1', port: 0, logger: quietLogger() });
      endpoint = server.url;
      // Replay started this server: its public key is known first-hand, not learned over the wire.
      serverKey = join(work, 'server', 'server-key.pub.pem');
    }
    writeFileSync(tokenFile, token + '\n', { mode: 0o600 });
    const target = new URL(endpoint);
    if (target.protocol !== 'http:') throw new UsageError(`replay puts its fault proxy in front of the endpoint and speaks plain HTTP to it: use an http:// endpoint (got ${endpoint})`);
    proxy = await startFaultProxy({ target: { host: target.hostname, port: Number(target.port || 80) } });
    const observer = new ServerObserver(endpoint, token);
    const dockConfig = {
      bays: baysRoot, endpoint: proxy.url, token, tokenFile, stateDir, dockId,
      wipeAfterIngest: scenario.dock.wipeAfterIngest ?? true, settings: scenario.dock.settings ?? {},
      ...(serverKey ? { serverKey } : {}),
    };
    dock = await startReplayDock(dockConfig);
    progress(`${scenario.name}: server ${endpoint}, proxy ${proxy.url}, ${tracked.length} recording(s), ${scenario.steps.length} step(s)`);

    const timeoutSeconds = options.timeout ?? scenario.timeout ?? DEFAULT_TIMEOUT_SECONDS;
    let stepIndex = 0;
    let previousStepAt = 0;
    let serverEntries: RecordingListEntry[] = [];
    let dockEntries: DockRecordingView[] = [];

    const conditionHolds = (condition: Condition): boolean => {
      const matching = (ref: string): FixtureRecording[] => recordings.filter((r) => refMatches(ref, r));
      if ('seconds' in condition) return elapsed() - previousStepAt >= condition.seconds;
      if ('segmentsUploaded' in condition) {
        // Only this scenario's recordings count: an existing server may hold others of this dock.
        const scope = condition.recording ? matching(condition.recording) : recordings;
        const entries = scope.map((r) => serverEntryFor(r, serverEntries)).filter((e): e is RecordingListEntry => !!e);
        return entries.reduce((n, e) => n + e.segmentsReceived, 0) >= condition.segmentsUploaded;
      }
      if ('uploading' in condition) return matching(condition.uploading).some((r) => serverEntryFor(r, serverEntries)?.state === 'receiving');
      if ('ingested' in condition) return matching(condition.ingested).some((r) => serverEntryFor(r, serverEntries)?.state === 'complete');
      if ('linkRestored' in condition) return timers.size === 0 && isWorkingLink(proxy!.mode);
      return matching(condition.quarantined).some((r) => dockEntryFor(r, dockEntries)?.state === 'quarantined');
    };

    const runStep = async (step: Step): Promise<void> => {
      if ('dock' in step) {
        const place = places.get(step.dock)!;
        if (place.bay) throw new UsageError(`step docks ${step.dock} into ${step.bay}, but it is already in ${place.bay}`, { code: 'E_SCENARIO' });
        const bayDir = join(baysRoot, step.bay);
        await dockCameraInto(place.root, bayDir);
        places.set(step.dock, { root: bayDir, bay: step.bay });
        progress(`  ${elapsed().toFixed(1)}s dock ${step.dock} → ${step.bay}`);
      } else if ('undock' in step) {
        const place = places.get(step.undock)!;
        if (!place.bay) throw new UsageError(`step undocks ${step.undock}, which is not docked`, { code: 'E_SCENARIO' });
        const home = join(work, 'cameras', step.undock);
        await undockCameraFrom(place.root, home);
        places.set(step.undock, { root: home });
        progress(`  ${elapsed().toFixed(1)}s undock ${step.undock} from ${place.bay}`);
      } else if ('restartDock' in step) {
        await dock!.stop();
        dock = await startReplayDock(dockConfig);
        progress(`  ${elapsed().toFixed(1)}s dock agent restarted on its journal`);
      } else {
        const before = proxy!.mode;
        await proxy!.setMode(step.network);
        progress(`  ${elapsed().toFixed(1)}s network ${step.network.kind}${step.for ? ` for ${step.for}s` : ''}`);
        if (step.for) {
          // Back to what the link was doing before (a bandwidth cap stays a bandwidth cap).
          const timer = setTimeout(() => {
            timers.delete(timer);
            void proxy?.setMode(before).then(() => progress(`  ${elapsed().toFixed(1)}s network ${before.kind}`));
          }, step.for * 1000);
          timers.add(timer);
        }
      }
    };

    const onCameraNow = new Map<Tracked, { media: boolean; sidecar: boolean }>();
    /** Whether the media file and its sidecar (when the camera wrote one) are on the camera now. */
    const fileOnCamera = (recording: FixtureRecording): { media: boolean; sidecar: boolean } => {
      const place = places.get(recording.camera)!;
      const media = existsSync(join(place.root, recording.relPath));
      return { media, sidecar: recording.sidecarRelPath ? existsSync(join(place.root, recording.sidecarRelPath)) : media };
    };

    /** Record a final verdict; a pending one only updates what the judge carries. */
    const apply = (t: Tracked, judgement: Judgement): void => {
      if (judgement.verdict === 'pending') { t.progress = judgement.progress; return; }
      const passed = judgement.verdict === 'passed';
      t.progress = { ...t.progress, actual: judgement.actual };
      t.result = {
        scenario: scenario.name, recording: t.recording.ref, expected: t.expected, actual: judgement.actual, passed,
        seconds: elapsed(), ...(passed ? {} : { message: judgement.message! }),
      };
    };

    const evaluate = async (t: Tracked, dockBusy: boolean): Promise<void> => {
      const seen: Sighting = {
        server: serverEntryFor(t.recording, serverEntries), dock: dockEntryFor(t.recording, dockEntries),
        onCamera: onCameraNow.get(t)!, dockBusy, now: Date.now(),
      };
      let judgement = judge(t.expectation, t.recording, t.progress, seen);
      // The judge asks for the server's bytes only once the recording is complete there.
      if (judgement.verdict === 'pending' && judgement.needs === 'content') {
        judgement = judge(t.expectation, t.recording, t.progress, { ...seen, content: await observer.contentDigest(seen.server!.id) });
      }
      apply(t, judgement);
    };

    for (;;) {
      const now = elapsed();
      // Camera first, then dock, then server: a file seen gone here was gone before the server
      // list was read, so "gone without a complete recording" is a real wipe-before-receipt.
      for (const t of tracked) onCameraNow.set(t, fileOnCamera(t.recording));
      dockEntries = await dock.recordings();
      const listed = await observer.list();
      if (listed) serverEntries = listed;
      // Steps run in order; each waits for its own trigger.
      while (stepIndex < scenario.steps.length) {
        const step = scenario.steps[stepIndex]!;
        const ready = step.at !== undefined ? now >= step.at : step.after ? conditionHolds(step.after) : true;
        if (!ready) break;
        await runStep(step);
        previousStepAt = elapsed();
        stepIndex++;
      }
      const dockBusy = stepIndex < scenario.steps.length || await dock.busy();
      // Without a fresh server list this round, nothing is judged (a stale list could blame a wipe).
      if (listed) for (const t of tracked) if (!t.result) await evaluate(t, dockBusy);
      if (tracked.every((t) => t.result)) break;
      // The server refuses the dock itself (token, dock key, protocol, path): known at the first
      // answer, and no retry or waiting changes it. Undecided recordings fail now, with the code.
      const refusal = serverRefusal(dock.agent.status());
      if (refusal) {
        for (const t of tracked) if (!t.result) apply(t, refusedBy(t.expectation, t.recording, refusal));
        break;
      }
      if (now >= timeoutSeconds) {
        const pendingStep = stepIndex < scenario.steps.length ? stepIndex : undefined;
        for (const t of tracked) if (!t.result) apply(t, timedOut(t.expectation, t.recording, t.progress, timeoutSeconds, pendingStep));
        break;
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
    result.cases = tracked.map((t) => t.result!);
    const n = proxy.stats;
    result.network = { ...n };
    progress(`${scenario.name}: done in ${elapsed().toFixed(1)}s; proxy saw ${n.connections} connection(s), ${n.requests} request(s); injected ${n.resets} reset(s) mid-stream, ${n.severed} severed by an outage, ${n.refused} refusal(s), ${n.statusAnswers} status answer(s), ${n.halfClosed} half-close(s), ${n.blackholed} black hole(s)`);
  } catch (error) {
    result.error = error instanceof Error ? error.message : String(error);
    if (error instanceof UsageError && error.code.startsWith('E_SCENARIO')) result.invalid = true;
  } finally {
    for (const timer of timers) clearTimeout(timer);
    const answered = dock?.agent.status().serverProblems;
    if (answered?.length) result.serverProblems = answered;
    await dock?.stop().catch(() => {});
    await proxy?.close().catch(() => {});
    await server?.close().catch(() => {});
    if (options.keep) progress(`${scenario.name}: kept ${work}`);
    else rmSync(work, { recursive: true, force: true });
    result.seconds = elapsed();
  }
  return result;
}


