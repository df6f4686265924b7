/**
 * `bodycam dock config --print | --validate FILE`: the dock's effective configuration with where each
 * value came from (flag, environment, config file, default), or a config file checked on its own.
 * Both go through the one schema (src/dock/config.ts), as `bodycam dock` itself does.
 */
import type { Command } from 'commander';
import { UsageError } from '../../../errors.js';
import { checkDockValues, DOCK_SETTINGS, loadDockConfig, resolveDockSettings, validateDockConfigFile } from '../../../dock/config.js';
import { action } from '../../handler.js';
import { addAllDockOptions, explicitFlags } from '../../dockSettings.js';
import { printedSettings, renderSettings, type PrintedSetting } from '../../settingsPrint.js';

function printable(flags: Record<string, unknown>): { rows: PrintedSetting[]; configFile?: string; problem?: string } {
  const resolved = resolveDockSettings({ flags });
  // A value `bodycam dock` refuses (an ftp:// endpoint, a timetable that does not parse) is the answer
  // alone: a table would show it as if it were in force. A missing key still prints the table.
  checkDockValues({ ...resolved.values });
  const rows = printedSettings(DOCK_SETTINGS, resolved);
  let problem: string | undefined;
  try {
    // The whole check `bodycam dock` makes at start (required keys, URL, token file), without starting.
    const config = loadDockConfig({ flags });
    const dockId = rows.find((r) => r.key === 'dockId')!;
    if (dockId.value === null) Object.assign(dockId, { value: config.dockId, shown: config.dockId, source: 'default', name: 'host name' });
  } catch (error) {
    problem = (error as Error).message;
  }
  return { rows, ...(resolved.configFile ? { configFile: resolved.configFile } : {}), ...(problem ? { problem } : {}) };
}

/** `bodycam dock config`, a subcommand of `dock` taking the dock's own flags. */
export function registerDockConfig(dock: Command): void {
  const command = dock.command('config')
    .description('Print the dock\'s effective configuration and where each value came from, or validate a config file')
    .option('--print', 'print every key: value and source (flag, env, file, default); exit 2 if `bodycam dock` would refuse it')
    .option('--validate <file>', 'check a config file alone (JSON, known keys, each value, URL and id rules) and exit 0 or 2')
    .option('--json', 'with --print: as JSON');
  addAllDockOptions(command);
  command.addHelpText('after', `
Takes the same flags, BODYCAM_* variables and --config file as \`bodycam dock\` (flags > env > file > defaults).
The token itself is never printed, only its file.

Examples:
  $ bodycam dock config --print --config /etc/bodycam/dock.json
  $ BODYCAM_MAX_RATE=10MB/s bodycam dock config --print --config /etc/bodycam/dock.json --json
  $ bodycam dock config --validate /etc/bodycam/dock.json.new && mv /etc/bodycam/dock.json.new /etc/bodycam/dock.json
`);
  command.action(action(async (given: Record<string, unknown>) => {
    const flags = explicitFlags(command, given);
    const { print, validate, json } = flags as { print?: boolean; validate?: string; json?: boolean };
    delete flags.print; delete flags.validate; delete flags.json;
    if (Boolean(print) === Boolean(validate)) throw new UsageError('give --print or --validate <file>');
    if (validate) {
      // The file alone: no environment, no flags (they are not part of what is being checked).
      const result = validateDockConfigFile(validate);
      if (result.problems.length) {
        for (const problem of result.problems) process.stderr.write(`${validate}: ${problem}\n`);
        process.stderr.write(`bodycam: ${validate} is not a valid dock config file (${result.problems.length} problem(s))\n`);
        return 2;
      }
      process.stdout.write(`${validate}: valid (${result.keys.length} key(s))`
        + (result.leftToFlags.length ? `; not in the file, so needed as flags or BODYCAM_* variables: ${result.leftToFlags.join(', ')}` : '') + '\n');
      return 0;
    }
    const shown = printable(flags);
    process.stdout.write(renderSettings(shown.rows, { ...shown, json: Boolean(json) }));
    if (shown.problem) { process.stderr.write(`bodycam: ${shown.problem}\n`); return 2; }
    return 0;
  }));
}
