/**
 * `bodycam status`: the bays and the queue of a running dock agent, read from
 * its local status port (127.0.0.1), as a table or as JSON.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import got from 'got';
import { EnvironmentError, UsageError } from '../errors.js';
import type { DockStatus } from '../dock/index.js';
import { STATUS_FILE } from '../dock/statusServer.js';
import { parsePositiveInt } from '../util/units.js';
import { action } from './handler.js';
import { table } from './table.js';

function portOf(options: { statusPort?: string; stateDir?: string }): number {
  if (options.statusPort) return parsePositiveInt(options.statusPort, 'status port');
  const stateDir = options.stateDir ?? process.env.BODYCAM_STATE_DIR;
  if (stateDir) {
    try {
      return (JSON.parse(readFileSync(join(stateDir, STATUS_FILE), 'utf8')) as { port: number }).port;
    } catch (cause) {
      throw new UsageError(`no running dock agent found in ${stateDir} (${STATUS_FILE} unreadable)`, { cause });
    }
  }
  const fromEnv = process.env.BODYCAM_STATUS_PORT;
  return fromEnv ? parsePositiveInt(fromEnv, 'BODYCAM_STATUS_PORT') : 7878;
}

export function renderStatus(status: DockStatus): string {
  let out = `dock ${status.dockId}\n\n`;
  out += table([['BAY', 'SERIAL', 'STATE', 'PROGRESS', 'REASON'],
    ...status.bays.map((b) => [b.bay, b.serial ?? '-', b.state, b.progress === null ? '-' : `${b.progress}%`, b.reason ?? ''])]);
  const q = status.queue;
  const skipped = status.bays.filter((b) => b.skipped?.length);
  if (skipped.length) {
    out += '\n' + table([['BAY', 'LEFT ALONE', 'CODE', 'REASON'],
      ...skipped.flatMap((b) => b.skipped!.map((k) => [b.bay, k.path, k.code, k.reason])),
      ...skipped.filter((b) => (b.skippedCount ?? 0) > b.skipped!.length).map((b) => [b.bay, `… ${b.skippedCount! - b.skipped!.length} more`, '', 'see --json for the first ones; the count is complete'])]);
  }
  out += `\nqueue: ${q.depth} with work left (${q.preparing} preparing, ${q.uploading} uploading, ${q.waiting} waiting, ${q.backoff} in backoff, ${q.paused} paused, ${q.settling} settling); `
    + `${q.completed} completed, ${q.wiped} wiped, ${q.quarantined} quarantined, ${q.flagged} flagged; oldest queued ${q.oldestQueuedSeconds}s\n`;
  const notable = q.recordings.filter((r) => !['completed', 'wiped'].includes(r.state) || r.reason || r.unreadable || (r.integrity && r.integrity !== 'verified' && r.integrity !== 'unsigned'));
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
    .option('--state-dir <dir>', 'find the port of an agent started with --status-port 0 from its state folder')
    .option('--json', 'print {"bays": [...], "queue": {...}} as JSON')
    .addHelpText('after', `
Examples:
  $ bodycam status                          # the agent on 127.0.0.1:7878
  $ bodycam status --state-dir .bodycam --json`)
    .action(action(async (options: { statusPort?: string; stateDir?: string; json?: boolean }) => {
      const port = portOf(options);
      let status: DockStatus;
      try {
        status = await got(`http://127.0.0.1:${port}/status`, { retry: { limit: 0 }, timeout: { request: 5000 } }).json<DockStatus>();
      } catch (cause) {
        throw new EnvironmentError('E_STATUS_UNREACHABLE', `no dock agent answers on 127.0.0.1:${port}: is \`bodycam dock\` running (see --status-port)?`, { cause });
      }
      process.stdout.write(options.json ? JSON.stringify({ bays: status.bays, queue: status.queue }, null, 2) + '\n' : renderStatus(status));
      return 0;
    }));
}
