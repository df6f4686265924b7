/**
 * What the parts of the running agent share (watcher, identity, scheduler,
 * job runner, status): the bays as last scanned, where each journal row's file
 * is now, the files still settling and the jobs running. One object, owned by
 * the agent (agent.ts), so each part's job stays in its own module.
 */
import type { Logger } from '../log.js';
import type { Clock } from '../util/clock.js';
import type { SkipCode, SkippedPath } from '../protocol/cameraStorage/index.js';
import type { CardLayout } from '../protocol/cardLayouts.js';
import type { DockConfig } from './config.js';
import type { DockAttention } from './attention.js';
import type { Journal } from './journal.js';
import type { DockMetrics } from './metrics.js';
import type { Location } from './pipeline.js';
import type { Phase } from './states.js';

export interface BayInfo {
  name: string;
  root: string;
  present: boolean;
  serial: string | null;
  controller: AbortController;
  keys: Set<string>;
  /** Every recording seen since this camera docked (wiped ones included): what the bay's progress counts. */
  sessionKeys: Set<string>;
  reportedSymlinks: Set<string>;
  /** What the last scan left alone, with why (docs/dock.md, "Skipped files"). */
  skipped: SkippedPath[];
  skippedCount: number;
  skippedByCode: Partial<Record<SkipCode, number>>;
  /** Card layouts the last scan recognised. */
  layouts: CardLayout[];
  problem?: string;
  /** When the scan running now began (dock clock ms), once it has run past the slow-scan limit (a slow or stuck card reader): status shows the bay in attention. */
  slowScanSince?: number;
}

/** A sidecar-less file waiting to settle: unchanged size and mtime for `settle` seconds. */
export interface Candidate { size: number; mtimeMs: number; stableSince: number; firstSeen: number }

export interface RunningJob { phase: Phase; controller: AbortController; done: Promise<void> }

export interface AgentState {
  readonly config: DockConfig;
  readonly journal: Journal;
  readonly logger: Logger;
  readonly metrics: DockMetrics;
  readonly clock: Clock;
  readonly bays: Map<string, BayInfo>;
  /** Journal key → where its file is right now (only while its camera is docked). */
  readonly located: Map<string, Location>;
  /** Absolute path → a sidecar-less file still settling. */
  readonly candidates: Map<string, Candidate>;
  readonly running: Map<string, RunningJob>;
  /** With --once, each row's journaled attempts when this run first found it on a card: every run gets its own budget. */
  readonly attemptsBeforeRun: Map<string, number>;
  /**
   * Jobs whose failure the journal could not record (its disk full): not started again before
   * `until`, and `times` counts against --once's budget (the journal's attempts could not).
   */
  readonly journalHeld: Map<string, { until: number; times: number }>;
  /** With --once, the rows this run closed because their file left the card (src/dock/vanished.ts): its report lists them. */
  readonly vanishedThisRun: Set<string>;
  /** Dock-level problems no retry fixes (token, dock id, keys, protocol): shown at once on status and /healthz. */
  readonly attention: DockAttention;
  /** Scans in progress (the agent is not idle while any runs). */
  scanning: number;
  initialScanDone: boolean;
  stopping: boolean;
}
