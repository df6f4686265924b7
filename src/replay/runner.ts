/**
 * Runs one scenario: fixture cameras copied to temporary storage, the reference
 * server (or an existing endpoint), the fault proxy between dock and server, the
 * dock agent on loopback; then the timeline of steps, and the expectations
 * decided one by one until all are or the timeout passes.
 */
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { UsageError } from '../errors.js';
import { quietLogger } from '../log.js';
import type { RecordingListEntry } from '../protocol/types.js';
import { installDockKey, trustServer } from '../dock/index.js';
import { startIngestServer, type IngestServer } from '../server/index.js';
import { dockCameraInto, undockCameraFrom } from './cameraAdapter.js';
import { startReplayDock, type ReplayDock } from './dockAdapter.js';
import { isWorkingLink, startFaultProxy, type FaultProxy } from '../faultproxy/faultProxy.js';
import { recordingsOf, refMatches, type FixtureRecording } from './fixtures.js';
import { recordCamera } from '../camera/index.js';
import { recordOptionsOf } from './schema.js';
import { dockEntryFor, ServerObserver, serverEntryFor, type DockRecordingView } from './observe.js';
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
/** A "kept" file must still be there this long after the dock went idle. */
const KEPT_GRACE_MS = 1000;

interface Tracked {
  recording: FixtureRecording;
  expectation: Expectation;
  expected: string;
  /** Set once decided. */
  result?: CaseResult;
  /** Server/dock part passed; only the camera part is left. */
  mainPassed?: boolean;
  actual: string;
  contentChecked?: boolean;
  idleSince?: number;
  /** Where the camera part stands while undecided (for the timeout message). */
  cameraNote?: string;
}

interface CameraPlace {
  /** Where the camera's storage is now: its own folder, or the bay it is docked in. */
  root: string;
  bay?: string;
}

function describeExpected(e: Expectation): string {
  const parts: string[] = [e.outcome];
  if (e.integrity) parts.push(e.integrity);
  if (e.truncated !== undefined) parts.push(e.truncated ? 'truncated' : 'not truncated');
  if (e.reasonCode) parts.push(e.reasonCode);
  if (e.reason) parts.push(`reason ${e.reason}`);
  if (e.camera) parts.push(e.camera === 'wiped' ? 'wiped on camera' : 'kept on camera');
  return parts.join(', ');
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
      tracked.push({ recording, expectation, expected: describeExpected(expectation), actual: 'not seen' });
    }
  });
  for (const recording of recordings) {
    if (!claimed.has(recording.ref)) problems.push(`${recording.ref} has no expectation: every recording needs one`);
  }
  return { tracked, problems };
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
      try {
        token = readFileSync(options.tokenFile, 'utf8').trim();
      } catch (cause) {
        throw new UsageError(`cannot read token file ${options.tokenFile}: ${(cause as Error).message}`, { cause });
      }
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

    const decide = (t: Tracked, passed: boolean, actual: string, message?: string): void => {
      t.actual = actual;
      t.result = {
        scenario: scenario.name, recording: t.recording.ref, expected: t.expected, actual, passed,
        seconds: elapsed(), ...(passed ? {} : { message: message ?? `${t.recording.ref}: expected ${t.expected}, got ${actual}` }),
      };
    };

    const evaluate = async (t: Tracked, dockBusy: boolean): Promise<void> => {
      const { recording, expectation } = t;
      const serverEntry = serverEntryFor(recording, serverEntries);
      const dockEntry = dockEntryFor(recording, dockEntries);
      // The media file decides "on the camera"; its sidecar must follow it (wiped together, kept together).
      const presence = onCameraNow.get(t)!;
      const onCamera = presence.media;
      const complete = serverEntry?.state === 'complete';
      // Invariant 2 holds whatever the scenario expects: no file leaves the camera before its receipt.
      if (!onCamera && !complete) {
        decide(t, false, 'gone from the camera without a complete recording on the server', `${recording.ref}: wiped from the camera before the server held it complete`);
        return;
      }
      if (!t.mainPassed) {
        if (expectation.outcome === 'ingested') {
          if (dockEntry?.state === 'quarantined') {
            decide(t, false, `quarantined ${dockEntry.reasonCode ?? '(no code)'} (${dockEntry.reason ?? 'no reason'})`);
            return;
          }
          if (!complete) {
            t.actual = serverEntry ? `receiving ${serverEntry.segmentsReceived}/${serverEntry.segmentCount}` : dockEntry ? `dock: ${dockEntry.state}` : 'not seen';
            return;
          }
          if (!t.contentChecked) {
            const digest = await observer.contentDigest(serverEntry.id);
            if ('error' in digest) { t.actual = digest.error; return; }
            t.contentChecked = true;
            if (digest.sha256 !== recording.sha256 || digest.size !== recording.size) {
              decide(t, false, `content differs (sha256 ${digest.sha256.slice(0, 12)}…, ${digest.size} bytes)`);
              return;
            }
          }
          if (expectation.integrity && serverEntry.integrity !== expectation.integrity) {
            decide(t, false, `ingested, ${serverEntry.integrity}`);
            return;
          }
          const truncated = dockEntry?.truncated ? ', truncated' : '';
          if (expectation.truncated !== undefined && Boolean(dockEntry?.truncated) !== expectation.truncated) {
            decide(t, false, `ingested, ${serverEntry.integrity}${truncated || ', not truncated'}`);
            return;
          }
          t.actual = `ingested, ${serverEntry.integrity}${truncated}`;
        } else {
          if (dockEntry?.state !== 'quarantined') {
            t.actual = complete ? `ingested, ${serverEntry.integrity} (dock: ${dockEntry?.state ?? 'unknown'})` : dockEntry ? `dock: ${dockEntry.state}` : 'not seen';
            if (complete && !dockBusy && dockEntry && dockEntry.state !== 'quarantined') decide(t, false, t.actual);
            return;
          }
          const reason = dockEntry.reason ?? '';
          const seen = `quarantined ${dockEntry.reasonCode ?? '(no code)'} (${reason || 'no reason'})`;
          if (expectation.reasonCode && dockEntry.reasonCode !== expectation.reasonCode) {
            decide(t, false, seen);
            return;
          }
          if (expectation.reason && !reason.toLowerCase().includes(expectation.reason.toLowerCase())) {
            decide(t, false, seen);
            return;
          }
          t.actual = seen;
        }
        t.mainPassed = true;
      }
      const cameraPart = expectation.camera;
      if (!cameraPart) {
        decide(t, true, t.actual);
      } else if (cameraPart === 'wiped') {
        if (!presence.media && !presence.sidecar) decide(t, true, `${t.actual}, wiped on camera`);
        else t.cameraNote = presence.media ? 'still on camera' : 'media wiped but its sidecar left on the camera';
      } else if (!onCamera) {
        decide(t, false, `${t.actual}, wiped on camera`);
      } else if (!presence.sidecar) {
        decide(t, false, `${t.actual}, sidecar gone from the camera`);
      } else if (!dockBusy) {
        // "kept" can only be decided once the dock has nothing left to do with it.
        t.idleSince ??= Date.now();
        if (Date.now() - t.idleSince >= KEPT_GRACE_MS) decide(t, true, `${t.actual}, kept on camera`);
      } else {
        t.idleSince = undefined;
      }
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
      if (now >= timeoutSeconds) {
        const pendingStep = stepIndex < scenario.steps.length ? ` (step ${stepIndex} never triggered)` : '';
        for (const t of tracked) {
          const seen = t.cameraNote ? `${t.actual}, ${t.cameraNote}` : t.actual;
          if (!t.result) decide(t, false, `${seen} after ${timeoutSeconds}s${pendingStep}`, `${t.recording.ref}: not decided within ${timeoutSeconds}s: expected ${t.expected}, last seen ${seen}${pendingStep}`);
        }
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
  } finally {
    for (const timer of timers) clearTimeout(timer);
    await dock?.stop().catch(() => {});
    await proxy?.close().catch(() => {});
    await server?.close().catch(() => {});
    if (options.keep) progress(`${scenario.name}: kept ${work}`);
    else rmSync(work, { recursive: true, force: true });
    result.seconds = elapsed();
  }
  return result;
}


