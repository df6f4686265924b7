/**
 * `bodycam quarantine list|show|retry|export`: the dock's problem queue, as Postfix's mailq and
 * postsuper -r are for mail. Works on the journal of a state folder, with or without a running dock
 * (src/dock/quarantine.ts says why that is safe).
 */
import type { Command } from 'commander';
import { Journal } from '../../../dock/journal.js';
import { checkReasonCode, exportQuarantined, listQuarantine, retryQuarantined, showQuarantined, type QuarantineEntry } from '../../../dock/quarantine.js';
import { action } from '../../handler.js';
import { addDockOptions, dockSettings } from '../../dockSettings.js';
import { table } from '../../../util/table.js';
import { UsageError } from '../../../errors.js';
import { say } from '../../output.js';

type Flags = Record<string, unknown> & { json?: boolean; reason?: string; to?: string };

function withJournal<T>(flags: Flags, fn: (journal: Journal) => Promise<T> | T): Promise<T> {
  const stateDir = dockSettings(flags, ['stateDir'], ['stateDir']).values.stateDir as string;
  const journal = Journal.openExisting(stateDir);
  return Promise.resolve().then(() => fn(journal)).finally(() => journal.close());
}

function renderList(entries: QuarantineEntry[]): string {
  if (entries.length === 0) return 'nothing quarantined or flagged\n';
  return table([['KEY', 'KIND', 'CODE', 'BAY', 'PATH', 'SIZE', 'REASON'],
    ...entries.map((e) => [e.key, e.kind, e.code, e.bay ?? '-', e.path, String(e.size), e.reason])])
    + `\n${entries.length} recording(s): ${entries.filter((e) => e.kind === 'quarantined').length} quarantined, ${entries.filter((e) => e.kind === 'flagged').length} flagged\n`;
}

export function registerQuarantine(program: Command): void {
  const command = program.command('quarantine')
    .description('List, show, retry and export the recordings the dock quarantined or flagged (like mailq / postsuper -r)')
    .addHelpText('after', `
A recording is named by its KEY (first column of \`list\`), its recording id, or its path on the card.
Retry puts a quarantined recording back to the start (probe, plan, hash, upload) once the cause is fixed;
it is safe while the dock runs (one SQLite transaction on the journal; the dock picks it up at its next scan).
Flagged recordings are on the server already (with their flag) and never wiped: export them for a person.

Exit codes: 0 done, 1 something could not be done (listed), 2 usage.

Examples:
  $ bodycam quarantine list --state-dir /var/lib/bodycam
  $ bodycam quarantine list --config /etc/bodycam/dock.json --json
  $ bodycam quarantine show --state-dir /var/lib/bodycam 3f9c2a7d1b0e4c55
  $ bodycam quarantine retry --state-dir /var/lib/bodycam --reason server_invalid_manifest
  $ bodycam quarantine export --state-dir /var/lib/bodycam --bays /srv/bays --to /media/usb 3f9c2a7d1b0e4c55
`);
  addDockOptions(command.command('list').description('List quarantined and flagged recordings with their reasons'), ['stateDir'])
    .option('--reason <code>', 'only this reason code (or integrity flag)')
    .option('--json', 'one JSON array of entries')
    .action(action(async (flags: Flags) => withJournal(flags, (journal) => {
      const entries = [...listQuarantine(journal, { reason: flags.reason })];
      if (flags.reason && entries.length === 0) checkReasonCode(flags.reason, true);
      if (flags.json) process.stdout.write(JSON.stringify(entries, null, 2) + '\n'); else say(renderList(entries));
      return 0;
    })));
  addDockOptions(command.command('show').argument('<recording>').description('Show one recording: reason, integrity notes, manifest, receipt'), ['stateDir'])
    .option('--json', 'as JSON')
    .action(action(async (ref: string, flags: Flags) => withJournal(flags, (journal) => {
      const shown = showQuarantined(journal, ref);
      if (flags.json) { process.stdout.write(JSON.stringify(shown, null, 2) + '\n'); return 0; }
      const lines = [
        `key          ${shown.key}`, `recording    ${shown.recordingId ?? '-'}`, `kind         ${shown.kind}`, `code         ${shown.code}`,
        `reason       ${shown.reason}`, `state        ${shown.state}`, `camera       ${shown.serial}`, `bay          ${shown.bay ?? '-'}`,
        `path         ${shown.path}`, `size         ${shown.size}`, `sha256       ${shown.sha256 ?? '-'}`, `integrity    ${shown.integrity ?? '-'}`,
        ...shown.integrityNotes.map((n) => `  note       ${n}`),
        `detected     ${shown.detectedAt}`, `updated      ${shown.updatedAt}`, `attempts     ${shown.attempts}`,
        ...(shown.lastError ? [`last error   ${shown.lastError}`] : []),
        `manifest     ${shown.manifest ? 'signed by the dock (in --json)' : 'none (quarantined before hashing)'}`,
        `receipt      ${shown.receipt ? 'stored (in --json)' : 'none'}`,
        `retry        ${shown.retryable ? `bodycam quarantine retry --state-dir DIR ${shown.key}` : 'not possible'}`,
      ];
      say(lines.join('\n') + '\n');
      return 0;
    })));
  addDockOptions(command.command('retry').argument('[recording]').description('Put one quarantined recording, or all of a reason code, back to the start'), ['stateDir'])
    .option('--reason <code>', 'every quarantined recording with this reason code')
    .option('--json', 'the outcome per recording as JSON')
    .action(action(async (ref: string | undefined, flags: Flags) => withJournal(flags, (journal) => {
      const outcomes = retryQuarantined(journal, { ref, reason: flags.reason });
      if (flags.json) process.stdout.write(JSON.stringify(outcomes, null, 2) + '\n');
      else {
        if (outcomes.length === 0) say(`nothing quarantined with reason ${flags.reason}\n`);
        for (const o of outcomes) say(o.retried ? `retry: ${o.key} ${o.path} (${o.code}): back to the start\n` : `not retried: ${o.key} ${o.path} (${o.code}): ${o.why}\n`);
      }
      return outcomes.every((o) => o.retried) ? 0 : 1;
    })));
  addDockOptions(command.command('export').argument('<recording>').description('Copy one recording with its sidecar, attachments, manifest, reason and SHA256SUMS into a folder'), ['stateDir', 'bays'])
    .requiredOption('--to <dir>', 'folder to create the export in (a sub-folder per recording)')
    .option('--json', 'the export as JSON')
    .action(action(async (ref: string, flags: Flags) => {
      const { bays, stateDir } = dockSettings(flags, ['bays', 'stateDir'], ['bays', 'stateDir']).values as { bays: string; stateDir: string };
      if (!flags.to) throw new UsageError('missing --to <dir>');
      return withJournal(flags, async (journal) => {
        const result = await exportQuarantined(journal, ref, { bays, to: flags.to!, stateDir });
        if (flags.json) process.stdout.write(JSON.stringify(result, null, 2) + '\n');
        else {
          say(`exported to ${result.folder}: ${result.files.map((f) => f.name).join(', ')}, SHA256SUMS (check: cd ${result.folder} && sha256sum -c SHA256SUMS)\n`);
          if (result.matchesJournal === false) say('warning: the file on the card is not the bytes the dock hashed (changed since): reason.json says so\n');
        }
        return result.matchesJournal === false ? 1 : 0;
      });
    }));
}
