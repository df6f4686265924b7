/**
 * `config --print` and `config --validate FILE` of a program whose settings are declared with the
 * settings library (the dock's, the server's): every key with its value and where it came from;
 * secrets only as set/unset, URL passwords masked. Also the flags of such a program, from its table.
 */
import { Option, type Command } from 'commander';
import { envNamesOf, flagOf, formatSetting, printableValue, type ResolvedSettings, type SettingKind, type SettingSpec, type SettingsSchema } from '../util/settings.js';
import { table } from '../util/table.js';

export interface PrintedSetting { key: string; value: unknown; shown: string; source: string; name: string }

/** What a value of each kind looks like, in a flag's usage. */
const PLACEHOLDER: Record<SettingKind, string> = { string: 'text', path: 'path', boolean: '', int: 'n', duration: 'duration', bytes: 'size', rate: 'rate' };

/**
 * The flags of a settings table on a command: descriptions from the schema with the variables and
 * the default; `hidden` for commands that take the program's flags but document them elsewhere.
 * Secrets get no flag. A default-true switch is --no-<flag>.
 */
export function addSettingsOptions(command: Command, schema: SettingsSchema, options: { hidden?: boolean; only?: readonly string[]; placeholders?: Record<string, string> } = {}): Command {
  for (const [key, spec] of Object.entries<SettingSpec>(schema.keys)) {
    if (options.only && !options.only.includes(key)) continue;
    const flag = flagOf(spec, key);
    if (!flag) continue;
    const usage = spec.kind === 'boolean' ? flag : `${flag} <${options.placeholders?.[key] ?? PLACEHOLDER[spec.kind]}>`;
    const negated = spec.kind === 'boolean' && spec.default === true;
    const defaultText = spec.required ? 'required' : spec.default === undefined || spec.default === false ? undefined : negated ? `default on; ${flag} turns it off` : `default ${formatSetting(spec, spec.default)}`;
    // An argument (--json, --name) has no variable; a setting names the ones it is read from.
    const about = [envNamesOf(schema, key).join(', '), defaultText].filter(Boolean).join('; ');
    const option = new Option(usage, options.hidden ? `as for the program [${envNamesOf(schema, key).join(', ')}]` : `${spec.description}${about ? ` [${about}]` : ''}`);
    command.addOption(options.hidden ? option.hideHelp() : option);
  }
  return command;
}

/** One row per key: its value as a person writes it (secrets "(set)"), and its source. */
export function printedSettings(schema: SettingsSchema, resolved: ResolvedSettings): PrintedSetting[] {
  return Object.entries<SettingSpec>(schema.keys).map(([key, spec]) => {
    const from = resolved.sources[key];
    const value = resolved.values[key];
    if (value === undefined) return { key, value: null, shown: spec.required ? '(missing: required)' : '(unset)', source: '-', name: '-' };
    // A switched-off default-true switch came from --no-<flag>.
    const name = from!.source === 'flag' && spec.kind === 'boolean' && value === false && spec.default === true ? from!.name.replace(/^--/, '--no-') : from!.name;
    return { key, value: printableValue(spec, value), shown: formatSetting(spec, value), source: from!.source, name };
  });
}

/** The text of `config --print` (a table) or `config --print --json`. */
export function renderSettings(rows: readonly PrintedSetting[], options: { configFile?: string; problem?: string; json?: boolean }): string {
  if (options.json) {
    return JSON.stringify({ configFile: options.configFile ?? null, valid: !options.problem, ...(options.problem ? { problem: options.problem } : {}),
      keys: Object.fromEntries(rows.map((r) => [r.key, { value: r.value, source: r.source, name: r.name }])) }, null, 2) + '\n';
  }
  return (options.configFile ? `config file ${options.configFile}\n\n` : '') + table([['KEY', 'VALUE', 'SOURCE'],
    ...rows.map((r) => [r.key, r.shown, r.source === '-' ? '-' : r.source === 'default' ? r.name === 'default' ? 'default' : `default (${r.name})` : `${r.source} ${r.name.replace(/^config file /, '')}`])]);
}
