/**
 * `bodycam doctor`: checks everything a dock needs (ffmpeg/ffprobe, bays, state folder, endpoint,
 * clock, token, pinned server key) with the dock's own flags, env and config file, and says what to
 * fix for each. Exit 0 only when nothing failed (warnings pass).
 */
import type { Command } from 'commander';
import { runDoctor, type DoctorCheck } from '../../../dock/doctor.js';
import { action } from '../../handler.js';
import { addAllDockOptions, explicitFlags } from '../../dockSettings.js';
import { say } from '../../output.js';

export function renderDoctor(checks: DoctorCheck[]): string {
  const width = Math.max(...checks.map((c) => c.name.length));
  const lines = checks.flatMap((c) => [
    `${c.status === 'ok' ? 'ok  ' : c.status === 'warn' ? 'WARN' : 'FAIL'}  ${c.name.padEnd(width)}  ${c.detail}`,
    ...(c.fix ? [`      ${' '.repeat(width)}  fix: ${c.fix}`] : []),
  ]);
  const failed = checks.filter((c) => c.status === 'fail').length;
  const warned = checks.filter((c) => c.status === 'warn').length;
  return lines.join('\n') + `\n\n${failed ? `${failed} check(s) failed` : 'all checks passed'}${warned ? `, ${warned} warning(s)` : ''}\n`;
}

export function registerDoctor(program: Command): void {
  const command = program.command('doctor')
    .description('Check everything the dock needs and say what to fix: ffmpeg, bays, state folder, endpoint, clock, token, server key')
    .option('--json', 'the checks as a JSON array');
  addAllDockOptions(command);
  command.addHelpText('after', `
Takes every flag, BODYCAM_* variable and --config file of \`bodycam dock\`. Changes nothing: no state folder is
created, the lock is only tried, the server is only read (GET /healthz, /v1/keys, /v1/recordings/<id>).
With several --endpoint servers, the server checks run for each.
Exit codes: 0 every check passed (warnings allowed), 1 some check failed, 2 usage.

Examples:
  $ bodycam doctor --config /etc/bodycam/dock.json
  $ sudo -u bodycam bodycam doctor --config /etc/bodycam/dock.json --json
`);
  command.action(action(async (given: Record<string, unknown>) => {
    const flags = explicitFlags(command, given);
    const json = flags.json === true;
    delete flags.json;
    const checks = await runDoctor({ flags });
    if (json) process.stdout.write(JSON.stringify(checks, null, 2) + '\n'); else say(renderDoctor(checks));
    return checks.some((c) => c.status === 'fail') ? 1 : 0;
  }));
}
