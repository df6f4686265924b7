import { afterAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { runs } from '../helpers/fcRuns.js';
import { readFileSync } from 'node:fs';
import { Journal } from '../../src/dock/journal.js';
import { ACTIVE_STATES, canTransition, FINAL_STATES, HASHED_STATES, IllegalTransitionError, JOB_STATES, RECEIPTED_STATES, STATE_TABLE, statesOfPhase, statesWithStep, UNSENT_STATES, type Evidence, type JobState } from '../../src/dock/states.js';
import { makeTempDir } from '../helpers/tmp.js';

const stat = { size: 10, mtimeMs: 1, ino: 1, dev: 1, ctimeMs: 1, sidecar: null };

/** Shortest path of moves from `from` to `to` through the table (undefined: unreachable). */
function pathTo(from: JobState, to: JobState): JobState[] | undefined {
  const previous = new Map<JobState, JobState>();
  const queue: JobState[] = [from];
  const seen = new Set<JobState>([from]);
  while (queue.length) {
    const state = queue.shift()!;
    if (state === to) {
      const path: JobState[] = [];
      for (let s: JobState | undefined = to; s !== undefined && s !== from; s = previous.get(s)) path.unshift(s);
      return path;
    }
    for (const next of STATE_TABLE[state].next) if (!seen.has(next)) { seen.add(next); previous.set(next, state); queue.push(next); }
  }
  return undefined;
}

describe("the dock's state table", () => {
  const tmp = makeTempDir('bodycam-states-');
  afterAll(() => tmp.cleanup());

  it('is whole: every state reachable from detected, every state can end, every step has a phase', () => {
    for (const state of JOB_STATES) {
      expect([state, pathTo('detected', state) !== undefined]).toEqual([state, true]);
      // Every state reaches a final one (no active state is a trap).
      expect([state, ['completed', 'wiped', 'quarantined'].some((end) => state === end || pathTo(state, end as JobState))]).toEqual([state, true]);
      const rule = STATE_TABLE[state];
      expect([state, rule.step === undefined, rule.phase === undefined]).toEqual([state, rule.step === undefined, rule.step === undefined]);
      for (const next of rule.next) expect(JOB_STATES).toContain(next);
    }
    expect(ACTIVE_STATES).toEqual(['detected', 'probed', 'planned', 'hashed', 'uploading']);
    expect(STATE_TABLE.wiped.next).toEqual([]);
    // Evidence leaves the card only from a receipted state.
    expect(JOB_STATES.filter((s) => canTransition(s, 'wiped'))).toEqual(['completed']);
    expect(JOB_STATES.filter((s) => canTransition(s, 'completed') && s !== 'completed')).toEqual(['uploading']);
    expect(statesOfPhase('prepare', true)).toEqual(['detected', 'probed', 'planned']);
    expect(statesOfPhase('upload', false)).toEqual(['hashed', 'uploading']);
    expect(statesOfPhase('upload', true)).toEqual(['hashed', 'uploading', 'completed']);
  });

  it('classifies every state: what its row holds, and every list of states derived from that', () => {
    const evidence: Record<Evidence, true> = { unhashed: true, hashed: true, sending: true, receipted: true, setAside: true };
    for (const state of JOB_STATES) expect([state, STATE_TABLE[state].evidence in evidence]).toEqual([state, true]);
    // The lists the journal's SQL, the scheduler, the watcher and --dry-run use, as docs/dock.md names them.
    expect(HASHED_STATES).toEqual(['hashed', 'uploading', 'completed', 'wiped']);
    expect(UNSENT_STATES).toEqual(['detected', 'probed', 'planned', 'hashed']);
    expect(RECEIPTED_STATES).toEqual(['completed', 'wiped']);
    expect(FINAL_STATES).toEqual(['completed', 'wiped', 'quarantined']);
    expect(statesWithStep(false)).toEqual(ACTIVE_STATES);
    expect(statesWithStep(true)).toEqual([...ACTIVE_STATES, 'completed']);
    // Consistency of the facts: work to do means a step; a receipt is never before a hash; nothing set aside has a step.
    for (const state of JOB_STATES) {
      const rule = STATE_TABLE[state];
      if (rule.active) expect([state, rule.step]).not.toEqual([state, undefined]);
      if (RECEIPTED_STATES.includes(state)) expect(HASHED_STATES).toContain(state);
      if (rule.evidence === 'setAside') expect([state, rule.step, rule.active]).toEqual([state, undefined, false]);
      expect([state, UNSENT_STATES.includes(state) && RECEIPTED_STATES.includes(state)]).toEqual([state, false]);
    }
  });

  it('is what Journal.transition enforces, for every pair of states', () => {
    const journal = Journal.open(tmp.path);
    try {
      for (const from of JOB_STATES) {
        for (const to of JOB_STATES) {
          const key = journal.insertDetected({ serial: 'CAM', fileName: `${from}-${to}.mp4`, relPath: `${from}-${to}.mp4`, bay: 'b', size: 10, mtimeMs: 1, critical: false, stat }).key;
          for (const step of pathTo('detected', from)!) journal.transition(key, step);
          expect(journal.get(key)!.state).toBe(from);
          if (canTransition(from, to)) {
            expect(journal.transition(key, to).state).toBe(to);
          } else {
            expect(() => journal.transition(key, to)).toThrow(IllegalTransitionError);
            // Refused means nothing changed: the row keeps its state and gets no event.
            expect(journal.get(key)!.state).toBe(from);
          }
        }
      }
    } finally {
      journal.close();
    }
  });

  it("the operator's retry is a move of the table too: allowed from exactly the states it lists, refused to every step", () => {
    const journal = Journal.open(tmp.path);
    try {
      // Only quarantined rows start over, and no step can un-quarantine a row by itself.
      expect(JOB_STATES.filter((s) => canTransition(s, 'detected', 'retry'))).toEqual(['quarantined']);
      expect(canTransition('quarantined', 'detected')).toBe(false);
      for (const from of JOB_STATES) {
        const key = journal.insertDetected({ serial: 'RETRY', fileName: `${from}.mp4`, relPath: `${from}.mp4`, bay: 'b', size: 10, mtimeMs: 1, critical: false, stat }).key;
        for (const step of pathTo('detected', from)!) journal.transition(key, step, step === 'quarantined' ? { reason: 'r', reasonCode: 'not_media' } : {});
        const before = journal.get(key)!;
        const events = journal.eventCount();
        const retried = journal.requeueQuarantined(key, 'test retry');
        expect([from, retried]).toEqual([from, canTransition(from, 'detected', 'retry')]);
        const after = journal.get(key)!;
        if (retried) {
          expect(after).toMatchObject({ state: 'detected', reason: null, reasonCode: null, recordingId: null, sha256: null, attempts: 0 });
          expect(after.uid).not.toBe(before.uid);
          expect(after.info).toMatchObject({ retriedFrom: 'not_media' });
          expect(journal.recentEvents(1)[0]).toMatchObject({ key, kind: 'retry-requested', detail: 'test retry' });
          // A step may now move it on as from any detected row; a second retry finds nothing to retry.
          expect(journal.requeueQuarantined(key, 'again')).toBe(false);
        } else {
          expect(after).toEqual(before);
          expect(journal.eventCount()).toBe(events);
        }
      }
    } finally {
      journal.close();
    }
  });

  it('holds for any sequence of attempted moves (a refused move changes nothing)', () => {
    const journal = Journal.open(tmp.path);
    try {
      fc.assert(fc.property(fc.array(fc.constantFrom(...JOB_STATES), { maxLength: 30 }), (moves) => {
        const key = journal.insertDetected({ serial: 'FC', fileName: 'x.mp4', relPath: 'x.mp4', bay: 'b', size: 10, mtimeMs: 1, critical: false, stat }).key;
        let model: JobState = 'detected';
        for (const to of moves) {
          let moved = true;
          try { journal.transition(key, to); } catch (error) { expect(error).toBeInstanceOf(IllegalTransitionError); moved = false; }
          expect(moved).toBe(canTransition(model, to));
          if (moved) model = to;
          expect(journal.get(key)!.state).toBe(model);
        }
      }), { numRuns: runs(200) });
    } finally {
      journal.close();
    }
  });

  it('is drawn in docs/dock.md, move for move', () => {
    const doc = readFileSync(new URL('../../docs/dock.md', import.meta.url), 'utf8');
    const drawn = new Set([...doc.matchAll(/^\s*(\w+) --> (\w+)/gm)].map((m) => `${m[1]}>${m[2]}`));
    const table = new Set(JOB_STATES.flatMap((from) => [...STATE_TABLE[from].next, ...STATE_TABLE[from].retryTo ?? []].map((to) => `${from}>${to}`)));
    expect([...drawn].sort()).toEqual([...table].sort());
  });
});
