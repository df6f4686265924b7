/**
 * The dock's configuration: ONE schema (every key with its type, default and
 * description) from which flags, BODYCAM_* environment variables and the
 * config file are all read, so docs can be generated from it and nothing is
 * configurable in one place but not another. Precedence: flags > env > file > defaults.
 */
import { hostname } from 'node:os';
import { UsageError } from '../errors.js';
import { LOG_LEVELS, type LogLevel } from '../log.js';
import { isValidId } from '../protocol/types.js';
import {
  defineSettings, envNameFor, flagNameOf, formatSetting, redactPassword, requireSettings, resolveSettings, settingsJsonSchema, settingsReferenceMarkdown, validateSettingsFile,
  type ResolvedSettings, type SettingKind, type SettingSource, type SettingSpec, type SettingsInput,
} from '../util/settings.js';
import { parseTimetable } from './bwTimetable.js';
import { isValidPort } from '../util/hostPort.js';
import { readPrivateFile } from '../util/privateFile.js';

export type ConfigKind = SettingKind;
export type ConfigKeySpec = SettingSpec;
export type ConfigSource = SettingSource;
export type { ResolvedSettings };
export { flagNameOf };

export const DOCK_CONFIG_SCHEMA = {
  bays: { kind: 'path', default: undefined, required: true, description: 'Folder holding one sub-folder per bay; a docked camera\'s storage appears as <bays>/<bay>/.' },
  endpoint: { kind: 'string', default: undefined, required: true, redactPassword: true, description: 'Base URL of the ingest server, e.g. http://127.0.0.1:8080; several servers of one shared state comma-separated (or the flag repeated): requests are spread over them and a dead one is skipped at once. A password in a URL is never printed.' },
  tokenFile: { kind: 'path', default: undefined, required: true, description: 'File holding the dock\'s bearer token alone (surrounding whitespace is ignored).' },
  stateDir: { kind: 'path', default: undefined, required: true, description: 'Folder for the journal (SQLite), the dock\'s Ed25519 key pair and the status port file.' },
  serverKey: { kind: 'path', default: undefined, description: 'PEM file with the server\'s receipt public key, from its operator. Without it (or a pin confirmed by `bodycam dock trust-server`) the key is learned from GET /v1/keys on first contact: it verifies receipts but never authorises a wipe.' },
  dockId: { kind: 'string', default: undefined, description: 'This dock\'s id as the server knows it (default: the host name, sanitized to [A-Za-z0-9._-]).' },
  once: { kind: 'boolean', default: false, description: 'Offload what is docked now and exit: 0 all receipted, 3 some quarantined or flagged, 1 other failure.' },
  dryRun: { kind: 'boolean', default: false, description: 'Print what a run would do with every file on the docked cameras (upload, flag, wipe, keep, skip, quarantine, settle), by its path on the card, and exit 0: sends nothing, deletes nothing, leaves the journal as it is, never contacts the server.' },
  wipeAfterIngest: { kind: 'boolean', default: false, description: 'Delete a camera file and its sidecar once its verified receipt is stored and the server proved it holds the bytes (never for flagged recordings). Needs a confirmed server key (serverKey or trust-server): refuses to start without one.' },
  concurrency: { kind: 'int', default: 4, description: 'Segments in flight at once, across all cameras.' },
  maxRate: { kind: 'rate', default: 0, description: 'Upload bandwidth cap shared by all uploads, e.g. 25mbit or 10MB/s; 0 = unlimited.' },
  bwLimit: { kind: 'string', default: undefined, description: 'Bandwidth timetable as rclone\'s --bwlimit, in local time: "08:00,10M 18:00,off" (office hours capped, nights free), days allowed ("Mon-08:00,512k Sat-00:00,off"); rates off, 512k/10M/1G (KiB/MiB/GiB per s) or as maxRate. Replaces maxRate; the limit in force is shown in status.' },
  settle: { kind: 'duration', default: 5, description: 'A file without a sidecar is ready once its size and mtime have been stable this long (and ffprobe reads it).' },
  statusPort: { kind: 'int', default: 7878, description: 'Port of the status/metrics HTTP server on 127.0.0.1; 0 picks a free port (written to <stateDir>/status.json).' },
  segmentSeconds: { kind: 'duration', default: 10, description: 'Target media duration of a segment.' },
  segmentMaxBytes: { kind: 'bytes', default: 16 * 1024 * 1024, description: 'Size cap of a segment (also the size of fixed ranges for plain MP4 and unknown files).' },
  maxBackoff: { kind: 'duration', default: 300, description: 'Cap of the per-job exponential backoff after a transient failure.' },
  staleAfter: { kind: 'duration', default: 86_400, description: 'A recording queued longer than this raises an attention alarm on its bay.' },
  retainFinished: { kind: 'duration', default: 30 * 86_400, description: 'How long a finished journal row (wiped, or completed with its camera not docked; never a quarantined or flagged one) is kept after its last change or, if completed, after its file was last seen on a docked camera (720h = 30 days); then its receipt is appended to <stateDir>/receipts-archive/ (which `bodycam server verify-log --receipts <stateDir>` reads) and the row is deleted. A file of a pruned row docked again is ingested anew (sent again, stored once by the server). 0 keeps every row.' },
  rescanInterval: { kind: 'duration', default: 10, description: 'Period of the safety-net rescan of all bays (chokidar events trigger scans in between); it waits at least 20 times what the last one took (at most 5 minutes), so a card of many thousands of files is not listed back to back.' },
  scanSlowAfter: { kind: 'duration', default: 300, description: 'How long the scan of one bay may run (at least 1 s) before the dock goes on without it: a card reader that does not answer, or a very slow one. The bay then shows attention (scan_slow), the start-up and the scans of the other bays no longer wait for it, and --once reports it as not scanned and exits 1 instead of waiting for ever.' },
  requestTimeout: { kind: 'duration', default: 120, description: 'Timeout of one HTTP request (a segment PUT included).' },
  requestRetries: { kind: 'int', default: 4, description: 'Per-request retries (connection errors, 408/429/5xx) before the job goes back to the journal with backoff.' },
  onceAttempts: { kind: 'int', default: 3, description: 'With --once: job-level attempts before a transiently failing recording counts as failed.' },
  fingerprint: { kind: 'boolean', default: true, description: 'The media fingerprint (ffmpeg hash muxer) in each manifest: on by default; --no-fingerprint (or false) leaves it out, which saves one decode of every recording.' },
  logLevel: { kind: 'string', default: 'info', choices: LOG_LEVELS, description: `Least severe log level written: ${LOG_LEVELS.join(', ')}. The log is JSON lines (pino) on stderr, or in BODYCAM_LOG_FILE.` },
} as const satisfies Record<string, ConfigKeySpec>;

/** The dock's settings for the one settings library: flags, BODYCAM_* variables, the --config file. */
export const DOCK_SETTINGS = defineSettings({
  id: 'dock', title: 'bodycam dock configuration file (bodycam dock --config FILE)',
  envPrefix: 'BODYCAM_', configFileEnv: 'BODYCAM_CONFIG', keys: DOCK_CONFIG_SCHEMA,
});

/** docs/schemas/dock-config.schema.json. */
export const dockConfigJsonSchema = settingsJsonSchema(DOCK_SETTINGS);

export type DockConfigKey = keyof typeof DOCK_CONFIG_SCHEMA;

export interface DockConfig {
  bays: string;
  endpoint: string;
  /** The bearer token itself (read from tokenFile by loadDockConfig). */
  token: string;
  tokenFile?: string;
  stateDir: string;
  serverKey?: string;
  dockId: string;
  once: boolean;
  dryRun: boolean;
  wipeAfterIngest: boolean;
  concurrency: number;
  maxRate: number;
  bwLimit?: string;
  settle: number;
  statusPort: number;
  segmentSeconds: number;
  segmentMaxBytes: number;
  maxBackoff: number;
  staleAfter: number;
  /** Seconds a finished row stays in the journal (src/dock/retention.ts); 0 = forever. */
  retainFinished: number;
  rescanInterval: number;
  /** Seconds one bay's scan may run before the dock goes on without it (src/dock/watcher.ts). */
  scanSlowAfter: number;
  requestTimeout: number;
  requestRetries: number;
  onceAttempts: number;
  fingerprint: boolean;
  logLevel: LogLevel;
}

/** BODYCAM_MAX_RATE for maxRate, and so on. */
export function envNameOf(key: string): string {
  return envNameFor(DOCK_SETTINGS.envPrefix, key);
}

export function sanitizeId(text: string, fallback = 'unknown'): string {
  const cleaned = text.replace(/[^A-Za-z0-9._-]/g, '-').replace(/\.{2,}/g, '.').replace(/^[^A-Za-z0-9]+/, '').slice(0, 128);
  return cleaned || fallback;
}

export type LoadDockConfigInput = SettingsInput;

/**
 * Merge defaults < file < env < flags for the schema's keys (all, or `only`), each parsed and
 * validated on its own, with where every value came from. Required keys may be absent here:
 * loadDockConfig insists on them; the operator's commands need only a few (stateDir, bays).
 */
export function resolveDockSettings(input: LoadDockConfigInput = {}, only?: readonly DockConfigKey[]): ResolvedSettings {
  return resolveSettings(DOCK_SETTINGS, input, only);
}

/**
 * The rules between and within values that parsing one key cannot see (an endpoint URL, the dock
 * id); normalizes endpoint and dockId in place. Keys absent from `values` are not checked (a config
 * file alone may leave some to flags), except dockId, which defaults to the host name.
 */
export function checkDockValues(merged: Record<string, unknown>): void {
  const [first] = dockValueProblems(merged);
  if (first) throw first;
}

/** Every rule checkDockValues makes, each problem its own error (`config --validate` lists them all). */
export function dockValueProblems(merged: Record<string, unknown>): UsageError[] {
  const problems: UsageError[] = [];
  const check = (fn: () => void): void => {
    try { fn(); } catch (error) { if (error instanceof UsageError) problems.push(error); else throw error; }
  };
  if (merged.endpoint !== undefined) check(() => { merged.endpoint = parseEndpoints(String(merged.endpoint)).join(','); });
  check(() => {
    const dockId = merged.dockId === undefined ? sanitizeId(hostname(), 'dock') : String(merged.dockId);
    if (!isValidId(dockId)) throw new UsageError(`invalid dock id "${dockId}": use letters, digits, '.', '_' and '-'`);
    merged.dockId = dockId;
  });
  if (merged.bwLimit !== undefined) {
    check(() => {
      parseTimetable(String(merged.bwLimit));
      if (typeof merged.maxRate === 'number' && merged.maxRate > 0) throw new UsageError('give maxRate or bwLimit, not both: a timetable with one entry (e.g. "10M") is a constant cap');
    });
  }
  if (merged.concurrency === 0) problems.push(new UsageError('invalid concurrency 0: at least one segment must be allowed in flight'));
  if (merged.segmentMaxBytes !== undefined && (merged.segmentMaxBytes as number) < 188 * 16) problems.push(new UsageError('invalid segment-max-bytes: use at least 3 KiB'));
  if (merged.statusPort !== undefined && !isValidPort(merged.statusPort as number)) problems.push(new UsageError(`invalid status-port ${String(merged.statusPort)}: a port is 0-65535 (0: any free one)`));
  return problems;
}

/**
 * Merge defaults < file < env < flags into a validated DockConfig, read the
 * token file, and resolve relative paths (file paths against the file's folder).
 */
export function loadDockConfig(input: LoadDockConfigInput = {}): DockConfig {
  const merged = resolveDockSettings(input).values;
  requireSettings(DOCK_SETTINGS, merged);
  checkDockValues(merged);
  merged.token = readTokenFile(merged.tokenFile as string);
  return merged as unknown as DockConfig;
}

/**
 * The dock's bearer token from its file, under the rule for secret files (src/util/privateFile.ts):
 * a token group or others may read is anyone's on this host, one they may write is theirs.
 */
export function readTokenFile(tokenFile: string): string {
  const token = readPrivateFile(tokenFile, {
    kind: 'secret', label: 'token file', maxBytes: 64 * 1024,
    unreadable: { message: (cause) => `cannot read token file ${tokenFile}: ${(cause as Error).message}` },
  }).text.trim();
  if (!token || /\s/.test(token)) throw new UsageError(`token file ${tokenFile} must hold the token alone`);
  return token;
}

/**
 * Every problem of a config file on its own (`bodycam dock config --validate`): not JSON, unknown
 * keys, each value that does not parse, then the rules between values. Empty = valid. Also the
 * required keys the file leaves to flags or the environment.
 */
export function validateDockConfigFile(path: string): { problems: string[]; keys: string[]; leftToFlags: string[] } {
  const { problems, values, keys } = validateSettingsFile(DOCK_SETTINGS, path);
  if (problems.length === 0) problems.push(...dockValueProblems(values).map((e) => e.message));
  const leftToFlags = (Object.entries(DOCK_CONFIG_SCHEMA) as Array<[string, ConfigKeySpec]>).filter(([k, spec]) => spec.required && values[k] === undefined).map(([k]) => k);
  return { problems, keys, leftToFlags };
}

/** A parsed value as a person writes it (durations 5m, sizes 16MiB, rates as bytes/s). */
export function formatConfigValue(spec: ConfigKeySpec, value: unknown): string {
  return formatSetting(spec, value);
}

/** Markdown table of the schema, for README.md and docs/dock.md. */
export function configReferenceMarkdown(): string {
  return settingsReferenceMarkdown(DOCK_SETTINGS, 'JSON file holding any of the keys below (camelCase; unknown keys and a key given twice are an error; schema: docs/schemas/dock-config.schema.json); relative paths in it are relative to the file.');
}

/** One or more http(s) base URLs, comma-separated: each checked, trailing slashes cut, repeats dropped. */
export function parseEndpoints(text: string): string[] {
  const list = text.split(',').map((e) => e.trim()).filter(Boolean);
  if (!list.length) throw new UsageError('invalid endpoint "": expected an http:// or https:// URL such as http://127.0.0.1:8443');
  const out: string[] = [];
  for (const endpoint of list) {
    // The message may reach a terminal or a log: a password in the URL never does.
    const said = redactPassword(endpoint, endpoint.replace(/\/\/[^/@]*@/, '//***@'));
    try {
      const url = new URL(endpoint);
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('not http(s)');
    } catch (cause) {
      throw new UsageError(`invalid endpoint "${said}": expected an http:// or https:// URL such as http://127.0.0.1:8443`, { cause });
    }
    // URL() reads "http://host:" as the default port 80: a port left out by mistake must not go there silently.
    const authority = /^[a-z][a-z0-9+.-]*:\/\/([^/?#]*)/i.exec(endpoint)?.[1] ?? '';
    if (authority.endsWith(':')) throw new UsageError(`invalid endpoint "${said}": the port after ":" is empty: give one, e.g. http://127.0.0.1:8443`);
    const clean = endpoint.replace(/\/+$/, '');
    if (!out.includes(clean)) out.push(clean);
  }
  return out;
}
