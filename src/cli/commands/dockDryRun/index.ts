/**
 * `bodycam dock --dry-run`: the table of what a run would do (src/dock/dryRun.ts), one line per file
 * by its path on the card, and the totals. Nothing is sent, deleted or written.
 */
import type { DockConfig } from '../../../dock/config.js';
import { dryRun, type DryRunResult } from '../../../dock/dryRun.js';
import { table } from '../../../util/table.js';
import { say } from '../../output.js';

export function renderDryRun(result: DryRunResult): string {
  const c = result.counts;
  const head = result.entries.length === 0 ? 'no camera docked: nothing would happen\n'
    : table([['BAY', 'PATH', 'ACTION', 'CODE', 'DETAIL'], ...result.entries.map((e) => [e.bay, e.path, e.action, e.code ?? '', e.detail])]);
  return `${head}\ndry run: ${c.upload} to upload, ${c.flag} to upload flagged, ${c.wipe} to wipe, ${c.keep} kept, ${c.skip} left alone, `
    + `${c.quarantine} quarantined, ${c.settle} settling; nothing was sent, deleted or journaled, and the server was not contacted\n`;
}

export async function runDryRunCommand(config: DockConfig): Promise<number> {
  say(renderDryRun(await dryRun(config)));
  return 0;
}
