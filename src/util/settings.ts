/**
 * A program's settings (the dock's, the server's), declared ONCE: every key with its kind, default
 * and description. From that one table come the flags, the environment variables, the config
 * file's JSON Schema (published in docs/schemas/, checked with the one validator), the reference
 * table of the docs and `config --print`. Precedence: flags > environment > config file > defaults.
 * Values of every source go through the same parser (units from src/util/units.ts), so "16MiB",
 * "24h" or "7y" mean the same whoever reads them.
 */
import { resolve } from 'node:path';
import { errnoCode, UsageError } from '../errors.js';
import { PrivateFileError, readPrivateFile } from './privateFile.js';
import { formatDuration, formatRate, parseBytes, parseDuration, parseRate, UNIT_PATTERNS } from './units.js';
import { compileSchema, type JsonSchema, type SchemaValidator } from './jsonSchema.js';

export type SettingKind = 'string' | 'path' | 'boolean' | 'int' | 'duration' | 'bytes' | 'rate';

export interface SettingSpec {
  kind: SettingKind;
  /** Default value, already in the parsed unit (seconds, bytes, bytes/s); undefined = required or absent. */
  default: string | number | boolean | undefined;
  required?: boolean;
  /** The only values a string key accepts (checked like every other value, with the source named). */
  choices?: readonly string[];
  /** Bounds of an int (inclusive); ints are ≥ 0 unless `min` says more. */
  min?: number;
  max?: number;
  /** Never printed (`config --print` says set/unset), never repeated in an error, never a flag (a flag shows in `ps`). */
  secret?: boolean;
  /** A URL whose password part is never printed (postgres://user:***@host/db). */
  redactPassword?: boolean;
  /** Also read from these environment variables (documented names such as DATABASE_URL), after the prefixed one. */
  env?: readonly string[];
  /** A string that is a path (resolved like one) unless it is a URL (scheme://…), e.g. a folder or s3://BUCKET. */
  pathUnlessUrl?: boolean;
  /** false: no flag (secrets are always without one). */
  flag?: boolean;
  /**
   * This run's argument, not a setting of the program (`--json`, `--name`, the receipts to check):
   * read from its flag only, never from the environment or a config file.
   */
  argument?: boolean;
  /** A string or path flag given several values (`--receipts a b c`): the value is an array. */
  many?: boolean;
  description: string;
}

export interface SettingsSchema<K extends string = string> {
  /** Short name, e.g. "dock": docs/schemas/<id>-config.schema.json. */
  id: string;
  title: string;
  /** BODYCAM_ for the dock, BODYCAM_SERVER_ for the server. */
  envPrefix: string;
  /** The variable naming the config file (the flag is always --config). */
  configFileEnv: string;
  keys: Readonly<Record<K, SettingSpec>>;
  /**
   * The config file is this other program's (a server tool reads the server's file): it is checked
   * against that schema, and this one takes only its own keys from it.
   */
  configOf?: SettingsSchema;
}

/** An identity that checks the table's shape at compile time and keeps its literal keys. */
export function defineSettings<K extends string>(schema: SettingsSchema<K>): SettingsSchema<K> {
  return schema;
}

/** BODYCAM_MAX_RATE for maxRate (with the prefix BODYCAM_). */
export function envNameFor(prefix: string, key: string): string {
  return prefix + key.replace(/[A-Z]/g, (c) => '_' + c).toUpperCase();
}

/** --max-rate for maxRate. */
export function flagNameOf(key: string): string {
  return '--' + key.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());
}

/** Every variable a key is read from, most specific first. */
export function envNamesOf(schema: SettingsSchema, key: string): string[] {
  if (schema.keys[key]?.argument) return [];
  return [envNameFor(schema.envPrefix, key), ...(schema.keys[key]?.env ?? [])];
}

/** The flag a person types for a key: a default-true switch is turned off with --no-<flag>. */
export function flagOf(spec: SettingSpec, key: string): string | undefined {
  if (spec.flag === false || spec.secret) return undefined;
  return spec.kind === 'boolean' && spec.default === true ? flagNameOf(key).replace(/^--/, '--no-') : flagNameOf(key);
}

const EXPECTS: Record<'duration' | 'bytes' | 'rate', string> = {
  duration: 'a duration: seconds, or a number with ms, s, m, h, d or y (30s, 10m, 24h, 7y)',
  bytes: 'a size: bytes, or a number with KiB, MiB or GiB (16MiB)',
  rate: 'a rate: bytes/s, or e.g. 25mbit, 500kbit, 10MB/s',
};

/** One key's JSON Schema: what a config file may hold for it (a number in the unit, or the unit's text). */
function keySchema(spec: SettingSpec): Record<string, unknown> {
  const about = { description: spec.description, ...(spec.default !== undefined ? { default: spec.default } : {}) };
  switch (spec.kind) {
    case 'boolean': return { ...about, type: 'boolean' };
    case 'int': return { ...about, type: 'integer', minimum: spec.min ?? 0, ...(spec.max !== undefined ? { maximum: spec.max } : {}) };
    case 'duration': case 'bytes': case 'rate':
      return { ...about, 'x-expects': EXPECTS[spec.kind], anyOf: [{ type: 'number', minimum: 0 }, { type: 'string', pattern: UNIT_PATTERNS[spec.kind] }] };
    case 'string': case 'path':
      return { ...about, type: 'string', minLength: 1, ...(spec.choices ? { enum: [...spec.choices] } : {}) };
  }
}

/** The config file's JSON Schema (docs/schemas/<id>-config.schema.json). Required keys are not required in the file: flags or env may give them. */
export function settingsJsonSchema(schema: SettingsSchema): JsonSchema {
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    $id: `https://bodycam-dock.invalid/schemas/${schema.id}-config.schema.json`,
    title: schema.title,
    type: 'object',
    additionalProperties: false,
    properties: Object.fromEntries(Object.entries<SettingSpec>(schema.keys).map(([key, spec]) => [key, keySchema(spec)])),
  };
}

const validators = new WeakMap<SettingsSchema, SchemaValidator>();
function fileValidator(schema: SettingsSchema): SchemaValidator {
  let validator = validators.get(schema);
  if (!validator) {
    const { $id: _id, ...body } = settingsJsonSchema(schema);
    const secretPlaces = Object.entries<SettingSpec>(schema.keys).filter(([, s]) => s.secret || s.redactPassword).map(([k]) => k);
    validator = compileSchema(body, { secretPlaces });
    validators.set(schema, validator);
  }
  return validator;
}

/** One value from any source, parsed into its unit; `where` names the key and the source in the error. */
export function parseSetting(key: string, spec: SettingSpec, raw: unknown, source: string): string | number | boolean {
  const where = `${key} (${source})`;
  const got = spec.secret || spec.redactPassword ? '(not shown: secret)' : JSON.stringify(raw);
  switch (spec.kind) {
    case 'boolean':
      if (typeof raw === 'boolean') return raw;
      if (raw === 'true' || raw === '1' || raw === 'yes') return true;
      if (raw === 'false' || raw === '0' || raw === 'no' || raw === '') return false;
      throw new UsageError(`invalid ${where}: expected true or false, got ${got}`, { code: 'E_CONFIG_INVALID' });
    case 'int': {
      const value = typeof raw === 'number' ? raw : typeof raw === 'string' && /^\s*\d+\s*$/.test(raw) ? Number(raw.trim()) : NaN;
      const min = spec.min ?? 0;
      if (!Number.isSafeInteger(value) || value < min || (spec.max !== undefined && value > spec.max)) {
        throw new UsageError(`invalid ${where}: expected a whole number ${spec.max !== undefined ? `from ${min} to ${spec.max}` : `≥ ${min}`}, got ${got}`, { code: 'E_CONFIG_INVALID' });
      }
      return value;
    }
    case 'duration': case 'bytes': case 'rate': {
      if (typeof raw === 'number') {
        if (Number.isFinite(raw) && raw >= 0) return spec.kind === 'duration' ? raw : Math.floor(raw);
        throw new UsageError(`invalid ${where}: expected ${EXPECTS[spec.kind]}, got ${got}`, { code: 'E_CONFIG_INVALID' });
      }
      if (typeof raw !== 'string') throw new UsageError(`invalid ${where}: expected ${EXPECTS[spec.kind]}, got ${got}`, { code: 'E_CONFIG_INVALID' });
      return spec.kind === 'duration' ? parseDuration(raw, where) : spec.kind === 'bytes' ? parseBytes(raw, where) : parseRate(raw, where);
    }
    case 'string': case 'path':
      if (typeof raw !== 'string' || raw.trim() === '') throw new UsageError(`invalid ${where}: expected a non-empty string`, { code: 'E_CONFIG_INVALID' });
      if (spec.choices && !spec.choices.includes(raw.trim())) throw new UsageError(`invalid ${where}: expected one of ${spec.choices.join(', ')}, got ${got}`, { code: 'E_CONFIG_INVALID' });
      return raw.trim();
  }
}

/** Where a setting's value came from (`config --print`). */
export type SettingSource = 'flag' | 'env' | 'file' | 'default';

export interface ResolvedSettings {
  /** Parsed values (paths resolved); a key without a value (required, or no default) is absent. */
  values: Record<string, unknown>;
  /** Per key with a value: where it came from, and its name there (the flag, the variable, the file). */
  sources: Record<string, { source: SettingSource; name: string }>;
  /** Keys the config file sets whose value came from the environment or a flag instead: key → the file. */
  shadowed?: Record<string, string>;
  configFile?: string;
}

export interface SettingsInput {
  /** Values from flags (commander's camelCase option names), parsed or not yet. */
  flags?: Record<string, unknown>;
  env?: NodeJS.ProcessEnv;
  /** Path of a JSON config file (else flags.config, else the schema's configFileEnv variable). */
  configFile?: string;
  /** Base for relative paths in flags/env (default: process.cwd()). */
  cwd?: string;
}

const MAX_CONFIG_FILE_BYTES = 1024 * 1024;

/** Read a config file's text and parse it; a failure is a phrase about the file (never its content). */
function readJsonObject(path: string): { value?: Record<string, unknown>; problem?: string; refusal?: PrivateFileError } {
  let text: string;
  try {
    // A device or FIFO (/dev/zero) is read forever and a huge file exhausts memory: neither is a config file.
    // It names the endpoint, the keys and what may be wiped: one group or others may rewrite is refused.
    text = readPrivateFile(path, { kind: 'authorising', label: 'config file', maxBytes: MAX_CONFIG_FILE_BYTES }).text;
  } catch (error) {
    if (!(error instanceof PrivateFileError)) throw error;
    const code = errnoCode(error.cause);
    const problem = error.problem === 'not_regular' ? (error.message.includes('is a folder') ? 'is a folder, not a file' : 'is not a regular file')
      : error.problem === 'too_big' ? `is ${String(error.details.size)} bytes: a config file holds at most 1 MiB`
      : error.problem === 'unreadable' ? (code === 'EISDIR' ? 'is a folder, not a file' : code === 'ENOENT' ? 'does not exist' : `cannot be read (${code ?? (error.cause as Error)?.message})`)
      : error.message.slice(`config file ${path} `.length);
    return { problem, ...(error.problem === 'mode' || error.problem === 'owner' ? { refusal: error } : {}) };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (cause) {
    // JSON.parse's message may quote the text (a secret in the file): say where, not what.
    const at = /position (\d+)/.exec((cause as Error).message)?.[1];
    return { problem: `is not valid JSON${at ? ` (at character ${at})` : ''}` };
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) return { problem: 'must hold a JSON object' };
  // JSON.parse keeps the last of a key given twice: the other value would be dropped without a word.
  const twice = repeatedKey(text);
  if (twice !== undefined) return { problem: `gives the key ${JSON.stringify(twice)} more than once (JSON keeps only the last): give each key once` };
  return { value: parsed as Record<string, unknown> };
}

/**
 * The first key an object of this (valid) JSON text gives twice, at any depth, or undefined. A walk
 * over the text: strings are read whole (escapes decoded), a string followed by ':' is a key of the
 * innermost open object.
 */
export function repeatedKey(text: string): string | undefined {
  const open: Array<Set<string> | undefined> = []; // one entry per open {…} (a Set) or […] (undefined)
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '{') open.push(new Set());
    else if (c === '[') open.push(undefined);
    else if (c === '}' || c === ']') open.pop();
    else if (c === '"') {
      let end = i + 1;
      while (text[end] !== '"') end += text[end] === '\\' ? 2 : 1;
      let next = end + 1;
      while (/\s/.test(text[next] ?? '')) next++;
      const keys = open[open.length - 1];
      if (text[next] === ':' && keys) {
        const key = JSON.parse(text.slice(i, end + 1)) as string;
        if (keys.has(key)) return key;
        keys.add(key);
      }
      i = end;
    }
  }
  return undefined;
}

/** Every problem of a config file's content against the schema (unknown keys, types, unit texts); empty = none. */
export function settingsFileProblems(schema: SettingsSchema, content: Record<string, unknown>): string[] {
  const problems = fileValidator(schema).problems(content);
  if (problems.length) return problems;
  const out: string[] = [];
  for (const [key, raw] of Object.entries(content)) {
    if (raw === null || raw === undefined) continue;
    try { parseSetting(key, schema.keys[key]!, raw, 'config file'); } catch (error) { out.push((error as Error).message); }
  }
  return out;
}

/** A config file, checked against the schema: the first problems in one error naming the file. */
export function readSettingsFile(schema: SettingsSchema, path: string): Record<string, unknown> {
  const read = readJsonObject(path);
  if (read.refusal) throw read.refusal;
  if (read.problem) throw new UsageError(`config file ${path} ${read.problem}`, { code: 'E_CONFIG_FILE' });
  const problems = settingsFileProblems(schema, read.value!);
  if (problems.length) {
    const unknown = problems.every((p) => p.startsWith('unknown key'));
    throw new UsageError(`config file ${path}: ${problems.slice(0, 5).join('; ')}${problems.length > 5 ? `; and ${problems.length - 5} more` : ''}`, { code: unknown ? 'E_CONFIG_UNKNOWN_KEY' : 'E_CONFIG_INVALID' });
  }
  return read.value!;
}

/** The file's problems for `config --validate FILE` (not readable, not JSON, the schema's), and the keys it sets. */
export function validateSettingsFile(schema: SettingsSchema, path: string): { problems: string[]; values: Record<string, unknown>; keys: string[] } {
  const read = readJsonObject(path);
  if (read.problem) return { problems: [read.problem], values: {}, keys: [] };
  const content = read.value!;
  const problems = settingsFileProblems(schema, content);
  const values: Record<string, unknown> = {};
  if (!problems.length) {
    for (const [key, raw] of Object.entries(content)) if (raw !== null && raw !== undefined) values[key] = parseSetting(key, schema.keys[key]!, raw, 'config file');
  }
  return { problems, values, keys: Object.keys(content) };
}

/**
 * Merge defaults < file < env < flags for the schema's keys (all, or `only`), each parsed and
 * validated on its own, with where every value came from. Required keys may be absent here:
 * requireSettings insists on them.
 */
export function resolveSettings(schema: SettingsSchema, input: SettingsInput = {}, only?: readonly string[]): ResolvedSettings {
  const env = input.env ?? process.env;
  const cwd = input.cwd ?? process.cwd();
  const configFile = input.configFile ?? (input.flags?.config as string | undefined) ?? (env[schema.configFileEnv] || undefined);
  const fromFile = configFile ? readSettingsFile(schema.configOf ?? schema, resolve(cwd, configFile)) : {};
  const fileDir = configFile ? resolve(cwd, configFile, '..') : cwd;
  const values: Record<string, unknown> = {};
  const sources: ResolvedSettings['sources'] = {};
  const shadowed: Record<string, string> = {};
  for (const [key, spec] of Object.entries<SettingSpec>(schema.keys)) {
    if (only && !only.includes(key)) continue;
    let value: unknown = spec.default;
    let base = cwd;
    let from: { source: SettingSource; name: string } = { source: 'default', name: 'default' };
    if (!spec.argument && fromFile[key] !== undefined && fromFile[key] !== null) { value = fromFile[key]; base = fileDir; from = { source: 'file', name: `config file ${configFile}` }; }
    const envName = envNamesOf(schema, key).find((name) => env[name] !== undefined && env[name] !== '');
    if (envName) { value = env[envName]; base = cwd; from = { source: 'env', name: envName }; }
    const flagValue = flagOf(spec, key) ? input.flags?.[key] : undefined;
    if (flagValue !== undefined) { value = flagValue; base = cwd; from = { source: 'flag', name: flagNameOf(key) }; }
    if (configFile && from.source !== 'file' && from.source !== 'default' && !spec.argument && fromFile[key] !== undefined && fromFile[key] !== null) shadowed[key] = resolve(cwd, configFile);
    if (value === undefined) continue;
    const one = (raw: unknown): unknown => {
      const parsed = from.source === 'default' ? raw : parseSetting(key, spec, raw, from.name);
      return typeof parsed === 'string' && (spec.kind === 'path' || (spec.pathUnlessUrl && !/^[a-z][a-z0-9+.-]*:\/\//i.test(parsed))) ? resolve(base, parsed) : parsed;
    };
    values[key] = spec.many ? (Array.isArray(value) ? value : [value]).map(one) : one(value);
    sources[key] = from;
  }
  return { values, sources, ...(Object.keys(shadowed).length ? { shadowed } : {}), ...(configFile ? { configFile: resolve(cwd, configFile) } : {}) };
}

/** How to give a key, for "missing …" errors: the flag, the variables, the file key. */
export function howToSet(schema: SettingsSchema, key: string): string {
  const flag = flagOf(schema.keys[key]!, key);
  if (schema.keys[key]!.argument && flag) return flag;
  return `${flag ? `${flag} (or ` : ''}${envNamesOf(schema, key).join(' or ')}, or "${key}" in the config file${flag ? ')' : ''}`;
}

/** Each required key must have a value: "missing --tokens (or BODYCAM_SERVER_TOKENS, …): <description>". */
export function requireSettings(schema: SettingsSchema, values: Record<string, unknown>, keys?: readonly string[]): void {
  for (const [key, spec] of Object.entries<SettingSpec>(schema.keys)) {
    if ((keys ? keys.includes(key) : spec.required) && values[key] === undefined) {
      throw new UsageError(`missing ${howToSet(schema, key)}: ${spec.description}`, { code: 'E_CONFIG_MISSING' });
    }
  }
}

/** A parsed value as a person writes it (durations 5m, sizes 16MiB, rates 10MB/s); secrets as set. */
export function formatSetting(spec: SettingSpec, value: unknown): string {
  if (value === undefined) return '(unset)';
  if (spec.secret) return '(set)';
  if (spec.redactPassword && typeof value === 'string') return redactPassword(value);
  if (spec.kind === 'duration' && typeof value === 'number') return formatDuration(value);
  if (spec.kind === 'bytes' && typeof value === 'number') return value > 0 && value % (1024 * 1024) === 0 ? `${value / (1024 * 1024)}MiB` : `${value}`;
  if (spec.kind === 'rate' && typeof value === 'number') return value === 0 ? '0 (unlimited)' : formatRate(value);
  return String(value);
}

/**
 * postgres://user:pw@host/db → postgres://user:***@host/db, and the query's secrets too
 * (node-postgres takes `?password=`, `sslpassword=`, `sslkey=` from it; anything unparsable: `unparsable`).
 */
export function redactPassword(url: string, unparsable = '(set)'): string {
  // A list of URLs (the dock's endpoints, comma-separated): each one masked on its own.
  const list = url.split(/,(?=\s*[a-z][a-z0-9+.-]*:\/\/)/i);
  if (list.length > 1) return list.map((one) => redactPassword(one.trim(), unparsable)).join(',');
  try {
    const parsed = new URL(url);
    let masked = false;
    if (parsed.password) { parsed.password = '***'; masked = true; }
    for (const name of [...parsed.searchParams.keys()]) {
      if (/pass|secret|token|key|cert/i.test(name)) { parsed.searchParams.set(name, '***'); masked = true; }
    }
    // Nothing secret in it: shown as given (URL() would add a trailing slash, lower-case the host).
    return masked ? parsed.toString() : url;
  } catch {
    return unparsable;
  }
}

/** The value for `config --print --json`: secrets as a boolean "set", URLs with passwords masked. */
export function printableValue(spec: SettingSpec, value: unknown): unknown {
  if (value === undefined) return null;
  if (spec.secret) return { set: true };
  if (spec.redactPassword && typeof value === 'string') return redactPassword(value);
  return value;
}

/** Markdown reference of the settings: key, flag, environment, default, description (docs/README). */
export function settingsReferenceMarkdown(schema: SettingsSchema, configFileNote: string): string {
  const rows = ['| key | flag | environment | default | description |', '|---|---|---|---|---|',
    `| (config file) | --config | ${schema.configFileEnv} | — | ${configFileNote} |`];
  for (const [key, spec] of Object.entries<SettingSpec>(schema.keys)) {
    const def = spec.required ? '(required)' : spec.default === undefined ? '—' : formatSetting({ ...spec, secret: false }, spec.default);
    const flag = flagOf(spec, key) ?? (spec.secret ? '(none: secret)' : '(none)');
    rows.push(`| ${key} | ${flag}${spec.many ? ' …' : ''} | ${spec.argument ? '— (flag only)' : envNamesOf(schema, key).join(', ')} | ${def} | ${spec.description.replace(/\|/g, '\\|')} |`);
  }
  return rows.join('\n');
}
