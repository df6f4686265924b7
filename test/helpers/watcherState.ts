/**
 * The part of the agent's state a BayWatcher and dockStatus read, around a real journal in
 * `stateDir`: for the watcher suites that replace the bay module (a card reader that hangs cannot
 * be made on a folder), where the whole agent cannot be started.
 */
import { Journal } from '../../src/dock/journal.js';

export interface WatcherLogger { warn(message: string, fields?: Record<string, unknown>): void; info(message: string, fields?: Record<string, unknown>): void; debug(): void; error(): void }

export function watcherState(baysDir: string, stateDir: string, logger: WatcherLogger = { warn() {}, info() {}, debug() {}, error() {} }) {
  const journal = Journal.open(stateDir);
  return {
    stopping: false, scanning: 0, config: { bays: baysDir, settle: 1, once: false, dockId: 'dock-t', staleAfter: 3600, wipeAfterIngest: false }, clock: { now: () => Date.now() },
    journal, logger, bays: new Map(), located: new Map(), candidates: new Map(), running: new Map(), attemptsBeforeRun: new Map(), journalHeld: new Map(),
    attention: { list: () => [], serverProblems: () => [] }, metrics: { bytesSent: 0 },
  };
}
