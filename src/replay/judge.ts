/**
 * Replay's verdict on one recording, as a pure function: given the expectation, what the judge
 * remembers from earlier poll rounds, and what was seen in this round (server list entry, dock
 * entry, the files on the camera, whether the dock is still busy, the time), decide passed,
 * failed, or not yet. The runner does the looking (HTTP, the dock's journal, the camera's folder)
 * and owns the clock; everything that decides lives here, so every rule has a unit test
 * (test/replay/judge.test.ts) without a server, a dock or a sleep.
 */
import type { RecordingListEntry } from '../protocol/types.js';
import type { DockRecordingView } from './observe.js';
import type { Expectation } from './schema.js';

/** A "kept" file must still be there this long after the dock went idle. */
export const KEPT_GRACE_MS = 1000;

/** The recording as the fixture holds it (what the server must return byte for byte). */
export interface JudgedRecording {
  ref: string;
  sha256: string;
  size: number;
}

/** What replay saw of one recording in one poll round. */
export interface Sighting {
  server?: RecordingListEntry;
  dock?: DockRecordingView;
  /** Whether the media file and its sidecar (the media itself when there is none) are on the camera now. */
  onCamera: { media: boolean; sidecar: boolean };
  /** The dock still has work (steps pending, jobs open): "kept" and "not ingested" wait for it. */
  dockBusy: boolean;
  /** Milliseconds on the runner's clock. */
  now: number;
  /** The server's digest of the content, when the judge asked for it (`needs: 'content'`). */
  content?: { sha256: string; size: number } | { error: string };
}

/** What the judge remembers of a recording between rounds (the runner stores it, untouched). */
export interface CaseProgress {
  /** What was last seen, in words (the "actual" column). */
  actual: string;
  /** The server/dock part passed; only the camera part is left. */
  mainPassed?: boolean;
  /** The server's content was read back and matched. */
  contentChecked?: boolean;
  /** When the dock was first seen idle with a "kept" file still on the camera. */
  idleSince?: number;
  /** Where the camera part stands while undecided (for the timeout message). */
  cameraNote?: string;
}

export type Judgement =
  | { verdict: 'pending'; progress: CaseProgress; needs?: 'content' }
  | { verdict: 'passed' | 'failed'; actual: string; message?: string };

/** The expectation in words (the "expected" column). */
export function describeExpected(e: Expectation): string {
  const parts: string[] = [e.outcome];
  if (e.integrity) parts.push(e.integrity);
  if (e.truncated !== undefined) parts.push(e.truncated ? 'truncated' : 'not truncated');
  if (e.reasonCode) parts.push(e.reasonCode);
  if (e.reason) parts.push(`reason ${e.reason}`);
  if (e.camera) parts.push(e.camera === 'wiped' ? 'wiped on camera' : 'kept on camera');
  return parts.join(', ');
}

export const initialProgress = (): CaseProgress => ({ actual: 'not seen' });

function failed(recording: JudgedRecording, expectation: Expectation, actual: string, message?: string): Judgement {
  return { verdict: 'failed', actual, message: message ?? `${recording.ref}: expected ${describeExpected(expectation)}, got ${actual}` };
}

const pending = (progress: CaseProgress, actual: string = progress.actual): Judgement => ({ verdict: 'pending', progress: { ...progress, actual } });

/** The server/dock part: a verdict, or the progress to carry on with the camera part. */
function judgeMain(expectation: Expectation, recording: JudgedRecording, progress: CaseProgress, seen: Sighting): Judgement | CaseProgress {
  const { server, dock } = seen;
  const complete = server?.state === 'complete';
  if (expectation.outcome === 'ingested') {
    if (dock?.state === 'quarantined') return failed(recording, expectation, `quarantined ${dock.reasonCode ?? '(no code)'} (${dock.reason ?? 'no reason'})`);
    if (!complete) return pending(progress, server ? `receiving ${server.segmentsReceived}/${server.segmentCount}` : dock ? `dock: ${dock.state}` : 'not seen');
    let contentChecked = progress.contentChecked;
    if (!contentChecked) {
      if (!seen.content) return { verdict: 'pending', progress, needs: 'content' };
      if ('error' in seen.content) return pending(progress, seen.content.error);
      contentChecked = true;
      if (seen.content.sha256 !== recording.sha256 || seen.content.size !== recording.size) {
        return failed(recording, expectation, `content differs (sha256 ${seen.content.sha256.slice(0, 12)}…, ${seen.content.size} bytes)`);
      }
    }
    if (expectation.integrity && server.integrity !== expectation.integrity) return failed(recording, expectation, `ingested, ${server.integrity}`);
    const truncated = dock?.truncated ? ', truncated' : '';
    if (expectation.truncated !== undefined && Boolean(dock?.truncated) !== expectation.truncated) {
      return failed(recording, expectation, `ingested, ${server.integrity}${truncated || ', not truncated'}`);
    }
    return { ...progress, contentChecked, mainPassed: true, actual: `ingested, ${server.integrity}${truncated}` };
  }
  if (dock?.state !== 'quarantined') {
    const actual = complete ? `ingested, ${server.integrity} (dock: ${dock?.state ?? 'unknown'})` : dock ? `dock: ${dock.state}` : 'not seen';
    // Ingested although a quarantine was expected: final once the dock has nothing left to do.
    if (complete && !seen.dockBusy && dock) return failed(recording, expectation, actual);
    return pending(progress, actual);
  }
  const reason = dock.reason ?? '';
  const actual = `quarantined ${dock.reasonCode ?? '(no code)'} (${reason || 'no reason'})`;
  if (expectation.reasonCode && dock.reasonCode !== expectation.reasonCode) return failed(recording, expectation, actual);
  if (expectation.reason && !reason.toLowerCase().includes(expectation.reason.toLowerCase())) return failed(recording, expectation, actual);
  return { ...progress, mainPassed: true, actual };
}

/** One round's verdict on one recording. Pure: the same arguments give the same answer. */
export function judge(expectation: Expectation, recording: JudgedRecording, progress: CaseProgress, seen: Sighting): Judgement {
  const onCamera = seen.onCamera.media;
  // Invariant 2 holds whatever the scenario expects: no file leaves the camera before its receipt.
  if (!onCamera && seen.server?.state !== 'complete') {
    return failed(recording, expectation, 'gone from the camera without a complete recording on the server', `${recording.ref}: wiped from the camera before the server held it complete`);
  }
  let now = progress;
  if (!now.mainPassed) {
    const main = judgeMain(expectation, recording, now, seen);
    if ('verdict' in main) return main;
    now = main;
  } else if (expectation.outcome === 'ingested' && seen.server?.state !== 'complete') {
    // A verdict stands on this round's sighting, not on an earlier one: a server that stops
    // listing the recording as complete no longer proves it holds it.
    if (seen.server) return failed(recording, expectation, `was complete on the server, now ${seen.server.state}`);
    return { verdict: 'pending', progress: { ...now, idleSince: undefined, cameraNote: 'no longer listed by the server' } };
  }
  const cameraPart = expectation.camera;
  if (!cameraPart) return { verdict: 'passed', actual: now.actual };
  if (cameraPart === 'wiped') {
    if (!seen.onCamera.media && !seen.onCamera.sidecar) return { verdict: 'passed', actual: `${now.actual}, wiped on camera` };
    return { verdict: 'pending', progress: { ...now, cameraNote: seen.onCamera.media ? 'still on camera' : 'media wiped but its sidecar left on the camera' } };
  }
  if (!onCamera) return failed(recording, expectation, `${now.actual}, wiped on camera`);
  if (!seen.onCamera.sidecar) return failed(recording, expectation, `${now.actual}, sidecar gone from the camera`);
  if (seen.dockBusy) return { verdict: 'pending', progress: { ...now, idleSince: undefined } };
  // "kept" can only be decided once the dock has nothing left to do with it, for a grace period.
  const idleSince = now.idleSince ?? seen.now;
  if (seen.now - idleSince >= KEPT_GRACE_MS) return { verdict: 'passed', actual: `${now.actual}, kept on camera` };
  return { verdict: 'pending', progress: { ...now, idleSince } };
}

/** The verdict on a recording still undecided when the scenario's time is up. */
export function timedOut(expectation: Expectation, recording: JudgedRecording, progress: CaseProgress, timeoutSeconds: number, pendingStep?: number): Judgement & { verdict: 'failed' } {
  const seen = progress.cameraNote ? `${progress.actual}, ${progress.cameraNote}` : progress.actual;
  const stepNote = pendingStep !== undefined ? ` (step ${pendingStep} never triggered)` : '';
  return {
    verdict: 'failed',
    actual: `${seen} after ${timeoutSeconds}s${stepNote}`,
    message: `${recording.ref}: not decided within ${timeoutSeconds}s: expected ${describeExpected(expectation)}, last seen ${seen}${stepNote}`,
  };
}

/** The verdict on a recording still undecided when the server refused the dock itself (src/dock/attention.ts). */
export function refusedBy(expectation: Expectation, recording: JudgedRecording, problem: { code: string; reason: string }): Judgement & { verdict: 'failed' } {
  return {
    verdict: 'failed',
    actual: `${problem.code}: the server refuses the dock`,
    message: `${recording.ref}: expected ${describeExpected(expectation)}, but the server refuses the dock (no retry can fix it): ${problem.reason}`,
  };
}
