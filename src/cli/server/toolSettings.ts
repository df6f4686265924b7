/**
 * The settings of `bodycam server`'s tools (verify-log, scrub, report, token import, user …,
 * reset-dock-key, key new), declared with the one settings library as `bodycam server` is: the
 * deployment keys are the server's own (same flag, same BODYCAM_SERVER_* / DATABASE_URL / S3_* /
 * AWS_* variables, read from the server's --config file, same parser), so a tool given the
 * server's environment or config file reads the deployment the server runs on. A tool's own
 * arguments (`--json`, `--name`, the receipts to check) are flags only. Precedence: flags >
 * environment > config file > defaults. The README's tables are generated from here.
 */
import type { Command } from 'commander';
import { SERVER_CONFIG_SCHEMA, SERVER_SETTINGS, type ServerConfigKey } from '../../server/config.js';
import { defineSettings, requireSettings, resolveSettings, settingsReferenceMarkdown, type ResolvedSettings, type SettingSpec, type SettingsSchema } from '../../util/settings.js';
import { addSettingsOptions } from '../settingsPrint.js';
import { ROLES } from '../../server/console/users.js';

const S = SERVER_CONFIG_SCHEMA;

/** The server's keys a tool reads a deployment with; the data dir is not required of a tool (a --db deployment may be named instead). */
const DEPLOYMENT = {
  dataDir: { ...S.dataDir, required: false, description: 'The server data dir (its custody log, recordings and, without store, its blobs).' },
  db: { ...S.db, description: 'The PostgreSQL state of the servers (postgres:// URL): when set, the tool reads the deployment there, as `bodycam server` would. Its password is never printed.' },
  store: { ...S.store, description: 'The blob store of a db deployment: a shared folder or s3://BUCKET (then s3Endpoint and the S3 keys).' },
  s3Endpoint: S.s3Endpoint,
  s3Region: S.s3Region,
  s3AccessKeyId: S.s3AccessKeyId,
  s3SecretAccessKey: S.s3SecretAccessKey,
} as const satisfies Partial<Record<ServerConfigKey, SettingSpec>>;

const json = { kind: 'boolean', default: false, argument: true, description: 'Print the result as one JSON object.' } as const satisfies SettingSpec;

function tool<K extends string>(command: string, keys: Record<K, SettingSpec>): SettingsSchema<K> {
  return defineSettings({
    id: `server-${command.replace(/ /g, '-')}`, title: `bodycam server ${command}`,
    envPrefix: SERVER_SETTINGS.envPrefix, configFileEnv: SERVER_SETTINGS.configFileEnv, keys, configOf: SERVER_SETTINGS,
  });
}

export const SERVER_TOOLS = {
  verifyLog: tool('verify-log', {
    ...DEPLOYMENT,
    store: { ...S.store, description: 'With db: also compare the custody exports locked in this s3://BUCKET with the database.' },
    receipts: { kind: 'path', many: true, default: undefined, argument: true, description: 'Receipts a dock holds: a receipt JSON file, an array or JSON lines of them, a dock journal.sqlite or its state dir, or a folder of such files.' },
  }),
  scrub: tool('scrub', { ...DEPLOYMENT, json }),
  report: tool('report', { ...DEPLOYMENT, staleAfter: S.staleAfter, json }),
  tokenImport: tool('token import', {
    tokens: { ...S.tokens, required: true, description: 'JSON file {"<dock id>": "<bearer token>", ...}, mode 0600: its SHA-256 digests become every server\'s tokens.' },
    db: { ...S.db, required: true, description: 'The PostgreSQL state of the servers (postgres:// URL). Its password is never printed.' },
  }),
  resetDockKey: tool('reset-dock-key', {
    dataDir: DEPLOYMENT.dataDir,
    db: { ...S.db, description: 'The PostgreSQL state of the servers (postgres:// URL): when set, the pin is forgotten there. Its password is never printed.' },
    dock: { kind: 'string', default: undefined, required: true, argument: true, description: 'The dock id whose pinned key is forgotten.' },
  }),
  keyNew: tool('key new', {
    out: { kind: 'path', default: undefined, required: true, argument: true, description: 'Where to write the key (PEM, 0600); an existing file is never overwritten.' },
  }),
  userAdd: tool('user add', {
    dataDir: { ...S.dataDir, description: 'The server data dir (its users file).' },
    name: { kind: 'string', default: undefined, required: true, argument: true, description: 'Sign-in name (case-insensitive).' },
    role: { kind: 'string', default: undefined, required: true, argument: true, choices: ROLES, description: 'reviewer (recordings) or admin (also docks and cameras).' },
    replace: { kind: 'boolean', default: false, argument: true, description: 'The user exists (in any case): set a new password and role.' },
  }),
  userRemove: tool('user remove', {
    dataDir: { ...S.dataDir, description: 'The server data dir (its users file).' },
    name: { kind: 'string', default: undefined, required: true, argument: true, description: 'Sign-in name, in any case.' },
  }),
  userList: tool('user list', { dataDir: { ...S.dataDir, description: 'The server data dir (its users file).' }, json }),
} as const;

export type ServerTool = keyof typeof SERVER_TOOLS;

/** Placeholders of the tools' flags in their usage (as `bodycam server` shows its own). */
const PLACEHOLDERS: Record<string, string> = { dataDir: 'dir', db: 'url', store: 'dir|s3://bucket', s3Endpoint: 'url', s3Region: 'name', receipts: 'path...', tokens: 'file', staleAfter: 'duration', dock: 'id', out: 'file', name: 'name', role: 'role' };

/** `--config` (the server's file) and the tool's flags, each described from its table. */
export function addToolOptions(command: Command, name: ServerTool): Command {
  const schema = SERVER_TOOLS[name];
  if (Object.values<SettingSpec>(schema.keys).some((spec) => !spec.argument)) {
    command.option('--config <file>', `the server's JSON config file: the keys below are read from it [${SERVER_SETTINGS.configFileEnv}]`);
  }
  return addSettingsOptions(command, schema, { placeholders: PLACEHOLDERS });
}

/**
 * A tool's settings for these flags (commander's own defaults already dropped): flags >
 * environment > the server's config file > defaults, every value parsed, required ones there.
 */
export function toolSettings(name: ServerTool, flags: Record<string, unknown>): ResolvedSettings {
  const schema = SERVER_TOOLS[name];
  const resolved = resolveSettings(schema, { flags });
  requireSettings(schema, resolved.values);
  return resolved;
}

/** The README's reference of every tool: one table each. */
export function toolsReferenceMarkdown(): string {
  return Object.values<SettingsSchema>(SERVER_TOOLS).map((schema) => {
    const table = settingsReferenceMarkdown(schema, 'the server\'s JSON config file; the tool takes only its keys below from it');
    // A tool that reads no setting has no config file to take.
    const rows = Object.values<SettingSpec>(schema.keys).some((spec) => !spec.argument) ? table : table.split('\n').filter((line) => !line.startsWith('| (config file)')).join('\n');
    return `**\`${schema.title}\`**\n\n${rows}`;
  }).join('\n\n');
}

/** The flags given to a tool (its own and `bodycam server`'s before it), without commander's defaults. */
export function givenToolFlags(command: Command): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(command.optsWithGlobals())) {
    if (value !== undefined && command.getOptionValueSourceWithGlobals(key) !== 'default') out[key] = value;
  }
  return out;
}
