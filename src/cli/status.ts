/**
 * `bodycam status`: the bays and the queue of a running dock agent, read from
 * its local status port (127.0.0.1), as a table or as JSON.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { resolveDockSettings } from '../dock/config.js';
import type { Command } from 'commander';
import { exchange } from '../dock/http.js';
import { EnvironmentError, UsageError } from '../errors.js';
import type { DockStatus } from '../dock/index.js';
import { DOCK_PID_HEADER, STATUS_FILE } from '../dock/statusServer.js';
import { RECEIPTED_STATES } from '../dock/states.js';
import { formatBytes, parsePositiveInt } from '../util/units.js';
import { action } from './handler.js';
import { table } from '../util/table.js';
import { say } from './output.js';
import { isIntegrityProblem } from '../protocol/types.js';

/**
 * Where a dock's state folder is when none is given, in order: the one the packaged unit and the
 * example config use (scripts/bodycam-dock.service StateDirectory, scripts/dock.example.json), and
 * the demo's (relative to the current folder).
 */
export const DEFAULT_STATE_DIRS = ['/var/lib/bodycam-dock', './bodycam-demo/dock'];
/** The config file the README installs; read for its stateDir when no other is named. */
const DEFAULT_CONFIG_FILE = '/etc/bodycam/dock.json';

/** A port to try; `pid`: the agent status.json says listens there (absent: a port given by hand). */
interface Candidate { port: number; from: string; pid?: number }

function portIn(stateDir: string): { port: number; pid?: number } | undefined {
  try {
    const { port, pid } = JSON.parse(readFileSync(join(stateDir, STATUS_FILE), 'utf8')) as { port?: unknown; pid?: unknown };
    if (!Number.isSafeInteger(port)) return undefined;
    return { port: port as number, ...(Number.isSafeInteger(pid) ? { pid: pid as number } : {}) };
  } catch {
    return undefined;
  }
}

/**
 * The status of the dock agent at a candidate port, or why the answer is not one: a status.json
 * outlives its agent (kill -9, a crash), and its port may since belong to another program or dock.
 */
async function askCandidate(candidate: Candidate): Promise<{ status: DockStatus } | { not: string }> {
  let answer;
  try {
    // node:http through the dock's one exchange, not got: loading got cost ≈0.2 CPU s at every `bodycam status`.
    answer = await exchange(`http://127.0.0.1:${candidate.port}/status`, { method: 'GET', headers: {}, timeoutMs: 5000 });
  } catch {
    return { not: 'nothing answers' };
  }
  const pid = answer.headers[DOCK_PID_HEADER];
  if (answer.status !== 200 || typeof pid !== 'string') return { not: `another program answers there (HTTP ${answer.status}, no ${DOCK_PID_HEADER}): ${candidate.pid === undefined ? 'not a bodycam dock' : 'status.json is stale'}` };
  if (candidate.pid !== undefined && Number(pid) !== candidate.pid) return { not: `the bodycam dock of pid ${pid} answers there, not pid ${candidate.pid} of status.json (stale: that agent is gone)` };
  let status: DockStatus;
  try {
    status = JSON.parse(answer.body) as DockStatus;
  } catch {
    return { not: 'the answer is not JSON' };
  }
  if (typeof status !== 'object' || status === null || typeof status.dockId !== 'string' || !Array.isArray(status.bays) || typeof status.queue !== 'object') return { not: 'the answer is not a dock status' };
  return { status };
}

/** The ports to try, each with where it came from: the first agent that answers is shown. */
function candidatesOf(options: { statusPort?: string; stateDir?: string; config?: string }): Candidate[] {
  if (options.statusPort) return [{ port: parsePositiveInt(options.statusPort, 'status port'), from: '--status-port' }];
  const stateDir = options.stateDir ?? process.env.BODYCAM_STATE_DIR;
  if (stateDir) {
    const found = portIn(stateDir);
    if (found === undefined) throw new UsageError(`no running dock agent found in ${stateDir} (${STATUS_FILE} unreadable)`);
    return [{ ...found, from: `${stateDir}/${STATUS_FILE}` }];
  }
  const out: Candidate[] = [];
  const configFile = options.config ?? process.env.BODYCAM_CONFIG ?? (existsSync(DEFAULT_CONFIG_FILE) ? DEFAULT_CONFIG_FILE : undefined);
  const dirs: string[] = [];
  if (configFile) {
    const fromFile = resolveDockSettings({ configFile, env: {} }, ['stateDir']).values.stateDir;
    if (typeof fromFile === 'string') dirs.push(fromFile);
  }
  dirs.push(...DEFAULT_STATE_DIRS.map((d) => resolve(d)));
  for (const dir of dirs) {
    const found = portIn(dir);
    if (found !== undefined) out.push({ ...found, from: `${dir}/${STATUS_FILE}` });
  }
  const fromEnv = process.env.BODYCAM_STATUS_PORT;
  out.push(fromEnv ? { port: parsePositiveInt(fromEnv, 'BODYCAM_STATUS_PORT'), from: 'BODYCAM_STATUS_PORT' } : { port: 7878, from: 'the default port' });
  return out;
}

export function renderStatus(status: DockStatus): string {
  let out = `dock ${status.dockId}  (bodycam-dock ${status.version ?? 'unknown version'})\n\n`;
  // The dock itself is refused: first, before the bays that wait on it.
  for (const p of status.attention ?? []) out += `ATTENTION ${p.code}: ${p.reason} (${p.count} answer(s) since ${new Date(p.since).toISOString()})\n`;
  if (status.attention?.length) out += '\n';
  out += table([['BAY', 'SERIAL', 'LAYOUT', 'STATE', 'PROGRESS', 'REASON'],
    ...status.bays.map((b) => [b.bay, b.serial ?? '-', b.layouts?.join('+') || '-', b.state, b.progress === null ? '-' : `${b.progress}%`, b.reason ?? ''])]);
  const q = status.queue;
  const skipped = status.bays.filter((b) => b.skipped?.length);
  if (skipped.length) {
    out += '\n' + table([['BAY', 'LEFT ALONE', 'CODE', 'REASON'],
      ...skipped.flatMap((b) => b.skipped!.map((k) => [b.bay, k.path, k.code, k.reason])),
      ...skipped.filter((b) => (b.skippedCount ?? 0) > b.skipped!.length).map((b) => [b.bay, `… ${b.skippedCount! - b.skipped!.length} more`, '', 'see --json for the first ones; the count is complete'])]);
  }
  if (status.serverProblems?.length) {
    out += '\n' + table([['SERVER', 'ANSWER', 'COUNT', 'LAST', 'DETAIL'],
      ...status.serverProblems.map((p) => [p.endpoint, `${p.status} ${p.code}`, String(p.count), new Date(p.last).toISOString(), p.detail ?? ''])]);
  }
  const bw = status.bandwidth;
  if (bw) {
    const rate = (n: number): string => (n > 0 ? `${formatBytes(n)}/s` : 'unlimited');
    out += `\nbandwidth: ${rate(bw.limit)}${bw.source === 'timetable' ? ' (timetable)' : bw.source === 'maxRate' ? ' (maxRate)' : ''}${bw.next ? `; ${rate(bw.next.limit)} from ${bw.next.at}` : ''}\n`;
  }
  out += `\nqueue: ${q.depth} with work left (${q.preparing} preparing, ${q.uploading} uploading, ${q.waiting} waiting, ${q.backoff} in backoff, ${q.paused} paused, ${q.settling} settling); `
    + `${q.completed} completed, ${q.wiped} wiped, ${q.quarantined} quarantined, ${q.flagged} flagged; oldest queued ${q.oldestQueuedSeconds}s\n`;
  const notable = q.recordings.filter((r) => !RECEIPTED_STATES.includes(r.state) || r.reason || r.unreadable || isIntegrityProblem(r.integrity));
  if (notable.length) {
    out += '\n' + table([['FILE', 'RECORDING', 'STATE', 'INTEGRITY', 'REASON'],
      ...notable.map((r) => [r.file, r.recordingId ?? '-', r.state, r.unreadable ? `unreadable (${r.integrity ?? '-'})` : r.integrity ?? '-', r.reason ?? r.lastError ?? (r.unreadable ? `uploaded as opaque bytes, kept on the camera: ${r.unreadable}` : '')])]);
  }
  return out;
}

export function registerStatus(program: Command): void {
  program.command('status')
    .description('Show the bays and the queue of a running dock agent')
    .option('--status-port <port>', 'status port of the agent on 127.0.0.1 (default 7878, or BODYCAM_STATUS_PORT)')
    .option('--state-dir <dir>', 'the agent\'s state folder (its status.json names the port) [BODYCAM_STATE_DIR]')
    .option('--config <file>', 'the dock\'s config file, for its stateDir [BODYCAM_CONFIG; default /etc/bodycam/dock.json if present]')
    .option('--json', 'print {"dockId", "version", "attention": [...], "serverProblems": [...], "bays": [...], "queue": {...}} as JSON')
    .addHelpText('after', `
Examples:
  $ bodycam status                          # looks in the config's stateDir, /var/lib/bodycam-dock, ./bodycam-demo/dock, then port 7878
  $ bodycam status --state-dir .bodycam --json`)
    .action(action(async (options: { statusPort?: string; stateDir?: string; config?: string; json?: boolean }) => {
      const tried: string[] = [];
      let status: DockStatus | undefined;
      for (const candidate of candidatesOf(options)) {
        const answer = await askCandidate(candidate);
        if ('status' in answer) { status = answer.status; break; }
        tried.push(`127.0.0.1:${candidate.port} (${candidate.from}: ${answer.not})`);
      }
      if (!status) {
        throw new EnvironmentError('E_STATUS_UNREACHABLE', `no dock agent answers on ${tried.join(', ')}: is \`bodycam dock\` running? Give its --state-dir (or --status-port)`);
      }
      if (options.json) process.stdout.write(JSON.stringify({ dockId: status.dockId, version: status.version, attention: status.attention ?? [], serverProblems: status.serverProblems ?? [], bays: status.bays, queue: status.queue, bandwidth: status.bandwidth }, null, 2) + '\n'); else say(renderStatus(status));
      return 0;
    }));
}
