/**
 * The operator's commands (quarantine, check, doctor, dock config) read the dock's settings as
 * `bodycam dock` does: the same schema, flags over BODYCAM_* over --config file over defaults.
 */
import { Option, type Command } from 'commander';
import { UsageError } from '../errors.js';
import { DOCK_CONFIG_SCHEMA, envNameOf, flagNameOf, resolveDockSettings, type ConfigKeySpec, type DockConfigKey, type ResolvedSettings } from '../dock/config.js';

/** Add `--config` and the schema's flags for `keys` to a command (descriptions from the schema). */
export function addDockOptions(command: Command, keys: readonly DockConfigKey[]): Command {
  command.option('--config <file>', 'the dock\'s JSON config file [BODYCAM_CONFIG]');
  for (const key of keys) {
    const spec = DOCK_CONFIG_SCHEMA[key];
    const flag = spec.kind === 'boolean' ? flagNameOf(key) : `${flagNameOf(key)} <value>`;
    command.addOption(new Option(flag, `${spec.description} [${envNameOf(key)}]`));
  }
  return command;
}

/** The settings `keys` resolve to for these flags; the `needed` ones must have a value. */
export function dockSettings(flags: Record<string, unknown>, keys: readonly DockConfigKey[], needed: readonly DockConfigKey[] = []): ResolvedSettings {
  const resolved = resolveDockSettings({ flags }, keys);
  for (const key of needed) {
    if (resolved.values[key] === undefined) throw new UsageError(`missing ${flagNameOf(key)} (or ${envNameOf(key)}, or "${key}" in the --config file): ${DOCK_CONFIG_SCHEMA[key].description}`);
  }
  return resolved;
}

/**
 * Every flag `bodycam dock` takes (help hidden: the dock's own --help lists them), for commands that
 * must see exactly the dock's settings (doctor, dock config). A default-true switch is --no-<flag>.
 */
/** A flag given several times (--endpoint a --endpoint b): the values as one comma-separated list. */
export function joinRepeated(value: string, previous: string | undefined): string {
  return previous ? `${previous},${value}` : value;
}

export function addAllDockOptions(command: Command): Command {
  command.option('--config <file>', 'the dock\'s JSON config file [BODYCAM_CONFIG]');
  for (const [key, spec] of Object.entries(DOCK_CONFIG_SCHEMA) as Array<[string, ConfigKeySpec]>) {
    const flag = spec.kind === 'boolean' ? (spec.default === true ? flagNameOf(key).replace(/^--/, '--no-') : flagNameOf(key)) : `${flagNameOf(key)} <value>`;
    // A flag given again here replaces the earlier one (a later --endpoint overrides); a list is comma-separated.
    command.addOption(new Option(flag, `as for bodycam dock [${envNameOf(key)}]`).hideHelp());
  }
  return command;
}

/** Commander's own defaults (a --no-x switch implies x=true) must not outrank env or the file. */
export function explicitFlags(command: Command, flags: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(flags)) if (command.getOptionValueSource(key) !== 'default') out[key] = value;
  return out;
}
