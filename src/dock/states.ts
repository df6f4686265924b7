/**
 * The dock's state machine in one table (docs/dock.md, "States"): for every
 * state of a recording's journal row, the states it may move to and the step
 * that runs in it. Journal.transition refuses a move the table does not list,
 * the job runner picks the step from here, and the scheduler the phase (which
 * pool of job slots the step waits for). A new state or move is a line here,
 * a line in docs/dock.md's drawing, and the walk in test/dock/states.test.ts.
 */
import { BodycamError } from '../errors.js';

export type JobState = 'detected' | 'probed' | 'planned' | 'hashed' | 'uploading' | 'completed' | 'wiped' | 'quarantined';

/** The work done in a state (src/dock/pipeline.ts has one function per step). */
export type StepName = 'probe' | 'plan' | 'hash' | 'upload' | 'wipe';

/**
 * prepare: probe/plan/hash, CPU and disk bound (a few at once, round robin over the bays);
 * upload: network bound (many at once, sharing the segment slots and the bandwidth bucket).
 */
export type Phase = 'prepare' | 'upload';

/**
 * What a row in a state holds of its file's evidence, and where the bytes are. Every list of
 * states below (hashed, unsent, receipted) and what `--dry-run` says of a known row are derived
 * from it, so a new state is classified where it is declared, or the table does not compile.
 * - unhashed: no hash yet, nothing sent;
 * - hashed: the file's hash and signed manifest, nothing sent yet;
 * - sending: hash and manifest, the upload has begun (the server may hold some segments);
 * - receipted: the server signed a receipt for it;
 * - setAside: quarantined, no step works it until an operator retries it.
 */
export type Evidence = 'unhashed' | 'hashed' | 'sending' | 'receipted' | 'setAside';

export interface StateRule {
  readonly evidence: Evidence;
  /** The states a step's transition from this one may go to (itself included only when listed). */
  readonly next: readonly JobState[];
  /**
   * The states an operator's retry may put a row in from this one: the row starts over (a fresh uid,
   * no plan, hash, manifest or receipt kept). Only `bodycam quarantine retry` makes this move
   * (Journal.requeueQuarantined); a step that tried it would be refused, as any move not in `next`.
   */
  readonly retryTo?: readonly JobState[];
  /** The step that moves a row on from this state; none for a final state. */
  readonly step?: StepName;
  readonly phase?: Phase;
  /** Still work to do (the queue, the stale alarm and --once count these). */
  readonly active: boolean;
  /** The step runs only when the dock is asked to wipe (wipeAfterIngest) and the row allows it. */
  readonly onlyWhenWiping?: true;
}

export const STATE_TABLE: Readonly<Record<JobState, StateRule>> = {
  // detected → detected: facts learned while detecting (when the recording began) are merged in.
  detected: { active: true, evidence: 'unhashed', step: 'probe', phase: 'prepare', next: ['detected', 'probed', 'quarantined'] },
  probed: { active: true, evidence: 'unhashed', step: 'plan', phase: 'prepare', next: ['planned', 'quarantined'] },
  planned: { active: true, evidence: 'unhashed', step: 'hash', phase: 'prepare', next: ['hashed', 'quarantined'] },
  // hashed/uploading → quarantined also when the file is rewritten on the card after its hash (file_changed).
  hashed: { active: true, evidence: 'hashed', step: 'upload', phase: 'upload', next: ['uploading', 'quarantined'] },
  uploading: { active: true, evidence: 'sending', step: 'upload', phase: 'upload', next: ['completed', 'quarantined'] },
  // completed → completed: the wipe kept the file (wipeSkipped, with the keep code).
  completed: { active: false, evidence: 'receipted', step: 'wipe', phase: 'upload', onlyWhenWiping: true, next: ['completed', 'wiped', 'quarantined'] },
  wiped: { active: false, evidence: 'receipted', next: [] },
  // quarantined → quarantined: a job that failed again while it was being quarantined keeps the newer reason.
  quarantined: { active: false, evidence: 'setAside', next: ['quarantined'], retryTo: ['detected'] },
};

export const JOB_STATES = Object.keys(STATE_TABLE) as JobState[];

/** States in which the job still has work to do. */
export const ACTIVE_STATES: readonly JobState[] = JOB_STATES.filter((s) => STATE_TABLE[s].active);

/** The states in which a step runs (completed's wipe only when wiping): what the scheduler may start or wait to retry. */
export function statesWithStep(wiping: boolean): JobState[] {
  return JOB_STATES.filter((s) => STATE_TABLE[s].step !== undefined && (!STATE_TABLE[s].onlyWhenWiping || wiping));
}

/** The states whose step runs in a phase (completed's wipe only when wiping). */
export function statesOfPhase(phase: Phase, wiping: boolean): JobState[] {
  return statesWithStep(wiping).filter((s) => STATE_TABLE[s].phase === phase);
}

function statesHolding(...evidence: Evidence[]): JobState[] {
  return JOB_STATES.filter((s) => evidence.includes(STATE_TABLE[s].evidence));
}

/** States whose row holds the file's hash and manifest (an integrity flag can only be on these). */
export const HASHED_STATES: readonly JobState[] = statesHolding('hashed', 'sending', 'receipted');

/** States whose work is over (no step runs in them unless the dock is asked to wipe). */
export const FINAL_STATES: readonly JobState[] = JOB_STATES.filter((s) => !STATE_TABLE[s].active);

/** States of a row the server gave a receipt for (what retention may prune, what `check` counts as held). */
export const RECEIPTED_STATES: readonly JobState[] = statesHolding('receipted');

/** States before any byte is sent: a sidecar-less file that grows here was not finished (detection starts over). */
export const UNSENT_STATES: readonly JobState[] = statesHolding('unhashed', 'hashed');

/** A step's move (Journal.transition) or an operator's retry that starts the row over (Journal.requeueQuarantined). */
export type MoveKind = 'step' | 'retry';

export function canTransition(from: JobState, to: JobState, kind: MoveKind = 'step'): boolean {
  return (kind === 'step' ? STATE_TABLE[from].next : STATE_TABLE[from].retryTo ?? []).includes(to);
}

/** A programming error, never a user's or a card's: the table is the contract of every step. */
export class IllegalTransitionError extends BodycamError {
  constructor(readonly from: JobState, readonly to: JobState, key: string, kind: MoveKind = 'step') {
    super('E_ILLEGAL_TRANSITION', `journal row ${key}: ${from} → ${to} is not a ${kind === 'retry' ? 'retry' : 'transition'} of the dock's state table (src/dock/states.ts)`, { details: { key, from, to, kind } });
  }
}
