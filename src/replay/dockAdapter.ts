/**
 * The dock agent as replay drives it: in-process on loopback, configured
 * through the same schema as `bodycam dock` (never from the caller's BODYCAM_*
 * environment, so a replay means the same thing on every machine), with
 * timings shortened so that outages and settling fit in a CI run.
 */
import { basename } from 'node:path';
import { loadDockConfig, startDockAgent, type DockAgent } from '../dock/index.js';
import { quietLogger } from '../log.js';
import type { DockRecordingView } from './observe.js';

export interface ReplayDockConfig {
  bays: string;
  endpoint: string;
  token: string;
  tokenFile: string;
  stateDir: string;
  dockId: string;
  wipeAfterIngest: boolean;
  /** PEM file of the server's receipt key, known first-hand (a wipe needs a confirmed key). */
  serverKey?: string;
  /** Any other dock configuration keys (the scenario's dock.settings). */
  settings: Record<string, unknown>;
}

export interface ReplayDock {
  agent: DockAgent;
  recordings(): Promise<DockRecordingView[]>;
  /** True while the dock has work for a docked camera (preparing, uploading, waiting, in backoff). */
  busy(): Promise<boolean>;
  stop(): Promise<void>;
}

/** Replay's defaults: quick to notice, quick to retry; a scenario's settings override them. */
export const REPLAY_DOCK_DEFAULTS: Record<string, unknown> = {
  settle: 1,
  rescanInterval: 2,
  maxBackoff: 2,
  requestTimeout: 15,
  requestRetries: 2,
  segmentSeconds: 2,
};

export async function startReplayDock(config: ReplayDockConfig): Promise<ReplayDock> {
  const dockConfig = loadDockConfig({
    env: {},
    flags: {
      ...REPLAY_DOCK_DEFAULTS,
      ...config.settings,
      bays: config.bays,
      endpoint: config.endpoint,
      tokenFile: config.tokenFile,
      stateDir: config.stateDir,
      dockId: config.dockId,
      wipeAfterIngest: config.wipeAfterIngest,
      ...(config.serverKey ? { serverKey: config.serverKey } : {}),
      statusPort: 0,
      once: false,
    },
  });
  const agent = await startDockAgent(dockConfig, { logger: quietLogger() });
  let stopped = false;
  return {
    agent,
    recordings: async () => agent.status().queue.recordings.map((r) => ({
      fileName: basename(r.file),
      relPath: r.file,
      size: r.size,
      state: r.state,
      truncated: Boolean(r.truncated),
      ...(r.bay ? { bay: r.bay } : {}),
      ...(r.reason ?? r.lastError ? { reason: r.reason ?? r.lastError } : {}),
      ...(r.reasonCode ? { reasonCode: r.reasonCode } : {}),
    })),
    busy: async () => {
      // Active journal rows of docked cameras, or work in flight. Files still settling need not
      // count: a recording is only judged "kept" after the dock has decided it.
      const q = agent.status().queue;
      return q.depth - q.paused > 0 || q.preparing + q.uploading + q.waiting > 0;
    },
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await agent.stop();
    },
  };
}
