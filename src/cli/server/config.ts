/**
 * `bodycam server config --print | --validate FILE`: the server's effective configuration with
 * where each value came from (flag, environment, config file, default), or a config file checked
 * on its own: the one schema of src/server/config.ts, as `bodycam server` itself reads it. The S3
 * keys are shown as (set)/(unset) only, a database password as ***; tokens are never read out.
 */
import type { Command } from 'commander';
import { UsageError } from '../../errors.js';
import { resolveServerSettings, serverConfigOf, serverValueProblems, SERVER_SETTINGS, strayEnvironmentNotes, type ServerConfig } from '../../server/config.js';
import { validateSettingsFile } from '../../util/settings.js';
import { action } from '../handler.js';
import { addSettingsOptions, printedSettings, renderSettings } from '../settingsPrint.js';

export function registerServerConfig(server: Command, flagsOf: (command: Command) => Record<string, unknown>, readStartFiles: (config: ServerConfig) => unknown): void {
  const command = server.command('config')
    .description('Print the server\'s effective configuration and where each value came from, or validate a config file')
    .option('--print', 'print every key: value and source (flag, env, file, default); exit 2 if `bodycam server` would refuse it')
    .option('--validate <file>', 'check a server config file alone (JSON, known keys, each value) and exit 0 or 2')
    .option('--json', 'with --print: as JSON')
    .option('--config <file>', `the server's JSON config file [${SERVER_SETTINGS.configFileEnv}]`);
  // Every flag `bodycam server` takes (help hidden: the server's own --help lists them).
  addSettingsOptions(command, SERVER_SETTINGS, { hidden: true });
  command.addHelpText('after', `
Takes the same flags, environment variables and --config file as \`bodycam server\` (flags > env > file > defaults).
Secrets (the S3 keys) are shown as (set) or (unset), a database URL's password as ***; token files are checked, never printed.

Examples:
  $ bodycam server config --print --config /etc/bodycam/server.json
  $ BODYCAM_SERVER_CONFIG=/etc/bodycam/server.json bodycam server config --print --json
  $ bodycam server config --validate /etc/bodycam/server.json.new && mv /etc/bodycam/server.json.new /etc/bodycam/server.json
`);
  command.action(action(async (own: { print?: boolean; validate?: string; json?: boolean }) => {
      if (Boolean(own.print) === Boolean(own.validate)) throw new UsageError('give --print or --validate <file>');
      if (own.validate) {
        // The file alone: no environment, no flags (they are not part of what is being checked).
        const result = validateSettingsFile(SERVER_SETTINGS, own.validate);
        // The values as the start checks them (listen host and port, URLs, retention), every problem listed.
        if (!result.problems.length) result.problems.push(...serverValueProblems(result.values));
        if (result.problems.length) {
          for (const problem of result.problems) process.stderr.write(`${own.validate}: ${problem}\n`);
          process.stderr.write(`bodycam: ${own.validate} is not a valid server config file (${result.problems.length} problem(s))\n`);
          return 2;
        }
        const left = Object.entries(SERVER_SETTINGS.keys).filter(([key, spec]) => 'required' in spec && spec.required && result.values[key] === undefined).map(([key]) => key);
        process.stdout.write(`${own.validate}: valid (${result.keys.length} key(s))${left.length ? `; not in the file, so needed as flags or BODYCAM_SERVER_* variables: ${left.join(', ')}` : ''}\n`);
        return 0;
      }
      const flags = flagsOf(command);
      for (const key of ['print', 'validate', 'json']) delete flags[key];
      const resolved = resolveServerSettings({ flags });
      let problem: string | undefined;
      try {
        // The whole check `bodycam server` makes before it starts: values, pairs, the files it reads.
        readStartFiles(serverConfigOf(resolved));
      } catch (error) {
        problem = (error as Error).message;
      }
      for (const note of strayEnvironmentNotes(resolved)) process.stderr.write(`bodycam: warning: ${note}\n`);
      process.stdout.write(renderSettings(printedSettings(SERVER_SETTINGS, resolved), { ...(resolved.configFile ? { configFile: resolved.configFile } : {}), ...(problem ? { problem } : {}), json: Boolean(own.json) }));
      if (problem) { process.stderr.write(`bodycam: ${problem}\n`); return 2; }
      return 0;
    }));
}
