/**
 * `bodycam check` (like `rclone check`): every file on the docked cameras and every receipted
 * recording in the journal against the server, with proof of possession for what is on a card.
 * Exit 0 only when everything is held.
 */
import type { Command } from 'commander';
import { checkAgainstServer, type CheckResult } from '../../../dock/check.js';
import { loadDockConfig } from '../../../dock/config.js';
import { action } from '../../handler.js';
import { addAllDockOptions, explicitFlags } from '../../dockSettings.js';
import { table } from '../../../util/table.js';
import { say } from '../../output.js';

export function renderCheck(result: CheckResult): string {
  const c = result.counts;
  const head = result.entries.length === 0 ? 'nothing on the docked cameras and nothing receipted in the journal\n'
    : table([['WHERE', 'BAY', 'PATH', 'VERDICT', 'DETAIL'], ...result.entries.map((e) => [e.where, e.bay ?? '-', e.path, e.verdict, e.detail])]);
  const left = c.left ? `, ${c.left} left on the card unread` : '';
  const ignored = c.ignored ? ` (${c.ignored} not evidence, left alone)` : '';
  return `${head}\n${c.held} held, ${c.missing} missing, ${c.differing} differing${left}${result.allHeld ? ': everything is held' : ''}${ignored}\n`;
}

export function registerCheck(program: Command): void {
  const command = program.command('check')
    .description('Check every file on the docked cameras and in the journal against the server: held (proved), missing, differing, left (on a card, never uploaded)')
    .option('--json', 'the result as JSON')
    .option('--resend', 'send again, from the card, the segments of a receipted recording the server lost since (damaged at rest); the server verifies each against the receipted SHA-256');
  addAllDockOptions(command);
  command.addHelpText('after', `
Takes every flag, BODYCAM_* variable and --config file of \`bodycam dock\` (it needs --bays, --endpoint, --token-file, --state-dir).
A file on a card is held only when the server proves, for a fresh random nonce, that it holds the card's very bytes
(POST /v1/recordings/{id}/possession) and its sidecar; a receipted recording no docked camera holds (wiped, or its camera
away) is asked for by id. A recording the server lost part of since its receipt (a blob found damaged at rest) is
missing: "the server lost ... the card holds the receipted bytes"; with --resend those parts are sent again from the
card (each verified by the server against the receipted SHA-256) and proved again. Nothing else is uploaded, nothing is
deleted; the journal is only read.
What the dock leaves alone on a card is listed too: "left" when it may be evidence the server never got (a symlink, a
hidden or temporary file named like media, a folder that could not be read), "ignored" when it is not (the camera's own
folder, thumbnails, a stray .json, a hidden folder, a ._ AppleDouble file).
Exit codes: 0 everything held, 1 something missing, differing or left on a card (or the server unreachable), 2 usage.

Examples:
  $ bodycam check --config /etc/bodycam/dock.json
  $ bodycam check --config /etc/bodycam/dock.json --resend
  $ bodycam check --bays /srv/bays --endpoint https://ingest.example:8443 --token-file dock.token --state-dir /var/lib/bodycam --json
`);
  command.action(action(async (given: Record<string, unknown>) => {
    const flags = explicitFlags(command, given);
    const json = flags.json === true;
    const resend = flags.resend === true;
    delete flags.json;
    delete flags.resend;
    const result = await checkAgainstServer(loadDockConfig({ flags }), { resend });
    if (json) process.stdout.write(JSON.stringify(result, null, 2) + '\n'); else say(renderCheck(result));
    return result.allHeld ? 0 : 1;
  }));
}
