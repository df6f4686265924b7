/**
 * `bodycam replay`: scenario files (or folders of them) run one after another,
 * with a table, JUnit XML and an exit status for CI.
 */
import { readdirSync, statSync, writeFileSync } from 'node:fs';
import { ServerObserver } from './observe.js';
import { join, resolve } from 'node:path';
import { UsageError } from '../errors.js';
import { fetchServerKey, normalizeFingerprint, readServerKeyFile, readTokenFile } from '../dock/index.js';
import { isValidId } from '../protocol/types.js';
import { formatTable, junitXml, scenarioPassed, type ScenarioResult } from './report.js';
import { runScenario, type ReplayOptions } from './runner.js';
import { loadScenario, type LoadedScenario } from './schema.js';

export { startFaultProxy, normalizeFaultMode, FAULT_MODE_KINDS, type FaultMode, type FaultModeKind, type FaultProxy, type FaultProxyStats, type FaultProxyOptions } from '../faultproxy/faultProxy.js';
export { loadScenario, scenarioProblems, scenarioSchema, SCENARIO_FORMAT, type Scenario, type LoadedScenario } from './schema.js';
export { runScenario, type ReplayOptions } from './runner.js';
export { ServerObserver, type DockRecordingView } from './observe.js';
export { formatTable, junitXml, scenarioPassed, type CaseResult, type ScenarioResult } from './report.js';

/** A scenario file, or every *.json directly in a folder (sorted by name). */
export function scenarioFiles(path: string): string[] {
  let stats;
  try {
    stats = statSync(path);
  } catch {
    throw new UsageError(`no scenario at ${path}: give a scenario file or a folder of them (e.g. fixtures/scenarios)`, { code: 'E_SCENARIO' });
  }
  if (!stats.isDirectory()) return [resolve(path)];
  const files = readdirSync(path).filter((f) => f.endsWith('.json')).sort().map((f) => resolve(join(path, f)));
  if (files.length === 0) throw new UsageError(`folder ${path} holds no scenario (*.json)`, { code: 'E_SCENARIO' });
  return files;
}

/** Load every scenario first, so that a typo in the tenth fails before the first one runs. */
export function loadScenarios(paths: string[]): LoadedScenario[] {
  return paths.flatMap(scenarioFiles).map((file) => loadScenario(file));
}

/**
 * A wrong --endpoint, --token-file, --dock-id, --server-key or --server-fingerprint fails once, in
 * one line naming the flag, before any scenario starts: a usage error (exit 2), never a scenario failure.
 */
async function preflightEndpoint(options: ReplayOptions): Promise<void> {
  const endpoint = options.endpoint!.replace(/\/+$/, '');
  let url: URL | undefined;
  try { url = new URL(endpoint); } catch { /* said below */ }
  // replay puts its fault proxy in front of the endpoint and speaks plain HTTP to it.
  if (url?.protocol !== 'http:' || !url.hostname) throw new UsageError(`--endpoint must be an http:// URL of an ingest server, e.g. http://127.0.0.1:8443 (replay speaks plain HTTP through its fault proxy), got ${JSON.stringify(options.endpoint)}`);
  if (!options.tokenFile) throw new UsageError('--endpoint needs --token-file (the dock token the server accepts)');
  if (!options.dockId) throw new UsageError('--endpoint needs --dock-id (the dock id that token belongs to on that server)');
  if (!isValidId(options.dockId)) throw new UsageError(`--dock-id ${JSON.stringify(options.dockId)} is not a dock id: use letters, digits, '.', '_' and '-'`);
  const token = readTokenFile(options.tokenFile);
  if (options.serverKey) readServerKeyFile(options.serverKey, '--server-key');
  const fingerprint = options.serverFingerprint === undefined ? undefined : normalizeFingerprint(options.serverFingerprint, '--server-fingerprint');
  await new ServerObserver(endpoint, token).preflight(options.tokenFile);
  if (fingerprint) {
    const { keyId } = await fetchServerKey(endpoint);
    if (keyId !== fingerprint) throw new UsageError(`--server-fingerprint ${fingerprint} is not the key of the server at ${endpoint} (it signs with ${keyId}): check the fingerprint with the server's operator`);
  }
}

export interface ReplayRun {
  results: ScenarioResult[];
  passed: boolean;
}

export async function replay(paths: string[], options: ReplayOptions & { junit?: string } = {}): Promise<ReplayRun> {
  const scenarios = loadScenarios(paths);
  if (options.endpoint) await preflightEndpoint(options);
  const results: ScenarioResult[] = [];
  for (const loaded of scenarios) results.push(await runScenario(loaded, options));
  if (options.junit) writeFileSync(options.junit, junitXml(results));
  return { results, passed: results.every(scenarioPassed) };
}

