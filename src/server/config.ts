/**
 * The server's configuration in ONE schema (the settings library, src/util/settings.ts, as the
 * dock's): every key with its kind, default and description, read from flags, BODYCAM_SERVER_*
 * variables (and the documented names agencies' tooling sets: DATABASE_URL, S3_ENDPOINT,
 * AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, BODYCAM_LOG_LEVEL) and a JSON config file
 * (--config FILE or BODYCAM_SERVER_CONFIG). Precedence: flags > env > file > defaults. Secrets (the
 * S3 keys) have no flag (a flag shows in `ps`) and are never printed or repeated in an error.
 */
import { LOG_LEVELS, type LogLevel } from '../log.js';
import { UsageError } from '../errors.js';
import {
  defineSettings, envNamesOf, howToSet, requireSettings, resolveSettings, settingsJsonSchema, settingsReferenceMarkdown,
  type ResolvedSettings, type SettingSpec, type SettingsInput,
} from '../util/settings.js';
import { parseEndpoint, parseRetention, parseS3StoreUrl, type Retention } from './store/s3Config.js';
import { parseHostPort } from '../util/hostPort.js';

const DAY = 86_400;
const YEAR = 365 * DAY;

export const SERVER_CONFIG_SCHEMA = {
  dataDir: { kind: 'path', default: undefined, required: true, description: 'Folder for blobs (unless --store), recordings, keys and the custody log of this server.' },
  listen: { kind: 'string', default: '127.0.0.1:8443', description: 'host:port to listen on ([v6]:port for IPv6); port 0 picks a free one (printed as "listening <url>").' },
  tokens: { kind: 'path', default: undefined, description: 'JSON file {"<dock id>": "<bearer token>", ...}, mode 0600; re-read on SIGHUP (a bad file is refused, the old tokens stay). Required without db; with db it is imported into the database (their SHA-256) when it has none or on SIGHUP, and optional.' },
  tlsCert: { kind: 'path', default: undefined, description: 'Serve HTTPS with this certificate (PEM); needs tlsKey.' },
  tlsKey: { kind: 'path', default: undefined, description: 'Private key of tlsCert (PEM).' },
  tlsCa: { kind: 'path', default: undefined, description: 'Require client certificates signed by this CA (PEM); needs tlsCert and tlsKey.' },
  maxSegmentBytes: { kind: 'bytes', default: 64 * 1024 * 1024, description: 'Largest segment body accepted (413 above it).' },
  maxStoreBytes: { kind: 'bytes', default: undefined, description: 'Store quota: above it uploads get 507 while reads still work (default: no quota).' },
  requestTimeout: { kind: 'duration', default: 600, description: 'Longest a whole request may take.' },
  bodyIdleTimeout: { kind: 'duration', default: 30, description: 'A segment or manifest body that sends nothing for this long is abandoned.' },
  manifestTimeout: { kind: 'duration', default: 120, description: 'Longest a manifest (JSON) body may take to arrive.' },
  maxRequests: { kind: 'int', default: 256, min: 1, max: 9_999_999, description: 'Requests in flight on the server before 429 (health, metrics and keys not counted).' },
  maxRequestsPerDock: { kind: 'int', default: 32, min: 1, max: 9_999_999, description: 'Requests in flight for one dock before 429.' },
  db: { kind: 'string', default: undefined, redactPassword: true, env: ['DATABASE_URL'], description: 'postgres:// URL: recordings, possession, dock pins and the custody chain in PostgreSQL, shared by every server started with it (needs serverKey). Its password is never printed.' },
  serverKey: { kind: 'path', default: undefined, description: 'The receipt signing key (Ed25519 PEM, 0600; `bodycam server key new`): the same file for every server of one db; needed with db.' },
  store: { kind: 'string', default: undefined, pathUnlessUrl: true, description: 'Blob folder (default: <dataDir>; several servers on one machine may share one), or s3://BUCKET: blobs in an S3 object store under Object Lock (needs s3Endpoint and the S3 keys).' },
  s3Endpoint: { kind: 'string', default: undefined, env: ['S3_ENDPOINT'], description: 'The S3 engine\'s base URL, for store s3://….' },
  s3Region: { kind: 'string', default: 'us-east-1', env: ['AWS_REGION'], description: 'The S3 region name the engine expects (RGW accepts any).' },
  s3AccessKeyId: { kind: 'string', default: undefined, secret: true, env: ['AWS_ACCESS_KEY_ID'], description: 'S3 access key id, for store s3://… (environment or config file only; never printed).' },
  s3SecretAccessKey: { kind: 'string', default: undefined, secret: true, env: ['AWS_SECRET_ACCESS_KEY'], description: 'S3 secret access key, for store s3://… (environment or config file only; never printed).' },
  retention: { kind: 'duration', default: 7 * YEAR, description: 'With store s3://…: every blob is locked (S3 Object Lock, COMPLIANCE) for this long; whole days, e.g. 7y (a year is 365 days) or 30d.' },
  adminTokenFile: { kind: 'path', default: undefined, description: 'The operator\'s bearer token (one line, mode 0600) for GET /v1/docks and GET /v1/recordings across docks.' },
  staleAfter: { kind: 'duration', default: DAY, description: 'A recording still receiving after this long is stale.' },
  logLevel: { kind: 'string', default: 'info', choices: LOG_LEVELS, env: ['BODYCAM_LOG_LEVEL'], description: `Least severe log level written: ${LOG_LEVELS.join(', ')}. The log is JSON lines (pino) on stderr, or in BODYCAM_LOG_FILE.` },
} as const satisfies Record<string, SettingSpec>;

export type ServerConfigKey = keyof typeof SERVER_CONFIG_SCHEMA;

export const SERVER_SETTINGS = defineSettings({
  id: 'server', title: 'bodycam server configuration file (bodycam server --config FILE)',
  envPrefix: 'BODYCAM_SERVER_', configFileEnv: 'BODYCAM_SERVER_CONFIG', keys: SERVER_CONFIG_SCHEMA,
});

/** docs/schemas/server-config.schema.json. */
export const serverConfigJsonSchema = settingsJsonSchema(SERVER_SETTINGS);

/** The S3 side of a config with store s3://BUCKET. */
export interface S3Settings {
  bucket: string;
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  retention: Retention;
}

export interface ServerConfig extends DeploymentConfig {
  dataDir: string;
  host: string;
  port: number;
  /** The tokens file; absent only with a database (the tokens are then the database's). */
  tokens?: string;
  tls?: { cert: string; key: string; ca?: string };
  maxSegmentBytes: number;
  maxStoreBytes?: number;
  requestTimeoutMs: number;
  bodyIdleTimeoutMs: number;
  manifestTimeoutMs: number;
  maxRequests: number;
  maxRequestsPerDock: number;
  serverKey?: string;
  adminTokenFile?: string;
  staleAfterMs: number;
  logLevel: LogLevel;
}

export type LoadServerConfigInput = SettingsInput;

export function resolveServerSettings(input: LoadServerConfigInput = {}): ResolvedSettings {
  return resolveSettings(SERVER_SETTINGS, input);
}

/** host:port or [v6]:port. */
export function parseListen(text: string, where = '--listen'): { host: string; port: number } {
  return parseHostPort(text, where);
}

/**
 * Every problem of a server config file's values on their own (`bodycam server config --validate`),
 * the checks the start makes of each (the listen address, the database URL, the retention, the S3
 * URLs), without opening anything: a file that validates is not refused at start for these.
 */
export function serverValueProblems(values: Record<string, unknown>): string[] {
  const problems: string[] = [];
  const check = (fn: () => unknown): void => { try { fn(); } catch (error) { problems.push((error as Error).message); } };
  if (values.listen !== undefined) check(() => parseListen(String(values.listen), '"listen"'));
  if (values.db !== undefined) check(() => checkDatabaseUrl(String(values.db), '"db"'));
  if (values.retention !== undefined) check(() => retentionOf(Number(values.retention), '"retention"'));
  if (values.store !== undefined) check(() => parseS3StoreUrl(String(values.store)));
  if (values.s3Endpoint !== undefined) check(() => parseEndpoint(String(values.s3Endpoint)));
  return problems;
}

/** The name a value was given under (--db, DATABASE_URL, the config file), for an error about it. */
function nameOf(resolved: ResolvedSettings, key: ServerConfigKey): string {
  const from = resolved.sources[key];
  if (!from || from.source === 'default') return key;
  return from.source === 'file' ? `"${key}" in the config file` : from.name;
}

/** A postgres:// URL; anything else is a usage error naming where it came from, never the URL (it may hold a password). */
export function checkDatabaseUrl(url: string, where: string): string {
  if (!/^postgres(ql)?:\/\/[^\s]+$/.test(url)) throw new UsageError(`${where} must be a postgres://user@host:port/database URL`, { code: 'E_CONFIG_INVALID' });
  return url;
}

function retentionOf(seconds: number, where: string): Retention {
  if (seconds < DAY || seconds % DAY !== 0) throw new UsageError(`invalid ${where}: the retention is whole days of at least one (e.g. 30d or 7y), not ${seconds}s`, { code: 'E_CONFIG_INVALID' });
  return parseRetention(seconds % YEAR === 0 ? `${seconds / YEAR}y` : `${seconds / DAY}d`);
}

/** Where a deployment keeps its state and blobs: what `bodycam server` and its tools read the same way. */
export interface DeploymentConfig {
  /** The PostgreSQL state (recordings, possession, dock pins, custody chain) of every server of it. */
  database?: string;
  /** A blob folder (absolute), when store is not s3://. */
  storeDir?: string;
  s3?: S3Settings;
}

/**
 * The deployment keys (db, store and the S3 keys) of any settings with the server's key names:
 * an S3 store needs its endpoint and keys, S3 settings go only with an S3 store. A tool that has
 * no `retention` key gets the default (it never writes a blob).
 */
export function deploymentOf(resolved: ResolvedSettings): DeploymentConfig {
  const v = resolved.values as Partial<Record<ServerConfigKey, unknown>>;
  const database = v.db === undefined ? undefined : checkDatabaseUrl(String(v.db), nameOf(resolved, 'db'));
  const retention = v.retention ?? SERVER_CONFIG_SCHEMA.retention.default;
  const store = v.store === undefined ? undefined : String(v.store);
  const bucket = store ? parseS3StoreUrl(store) : undefined;
  let s3: S3Settings | undefined;
  if (bucket) {
    if (!v.s3Endpoint) throw new UsageError(`--store ${store} needs --s3-endpoint URL (or ${envNamesOf(SERVER_SETTINGS, 's3Endpoint').join(' or ')}): the object store's base URL`, { code: 'E_CONFIG_MISSING' });
    if (!v.s3AccessKeyId || !v.s3SecretAccessKey) {
      throw new UsageError(`--store ${store} needs the S3 keys: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or BODYCAM_SERVER_S3_ACCESS_KEY_ID / BODYCAM_SERVER_S3_SECRET_ACCESS_KEY, or s3AccessKeyId / s3SecretAccessKey in the config file)`, { code: 'E_CONFIG_MISSING' });
    }
    s3 = {
      bucket, endpoint: parseEndpoint(String(v.s3Endpoint)), region: String(v.s3Region ?? SERVER_CONFIG_SCHEMA.s3Region.default),
      accessKeyId: String(v.s3AccessKeyId), secretAccessKey: String(v.s3SecretAccessKey),
      retention: retentionOf(Number(retention), nameOf(resolved, 'retention')),
    };
  } else {
    if (v.s3Endpoint !== undefined) throw new UsageError(`${nameOf(resolved, 's3Endpoint')} goes with --store s3://BUCKET`, { code: 'E_CONFIG_CONFLICT' });
    // The retention is checked even without S3, so a typo is caught before the day it matters.
    retentionOf(Number(retention), nameOf(resolved, 'retention'));
  }
  return { ...(database ? { database } : {}), ...(store && !bucket ? { storeDir: store } : {}), ...(s3 ? { s3 } : {}) };
}

/**
 * The rules between values that parsing one key cannot see: TLS files in pairs, the database with
 * its key, an S3 store with its endpoint and keys, S3 settings only with an S3 store.
 */
export function serverConfigOf(resolved: ResolvedSettings): ServerConfig {
  const v = resolved.values as Record<ServerConfigKey, unknown>;
  requireSettings(SERVER_SETTINGS, v);
  const { host, port } = parseListen(String(v.listen), nameOf(resolved, 'listen'));
  if (Boolean(v.tlsCert) !== Boolean(v.tlsKey)) throw new UsageError(`${v.tlsCert ? nameOf(resolved, 'tlsCert') : nameOf(resolved, 'tlsKey')} needs its pair: --tls-cert and --tls-key go together`, { code: 'E_CONFIG_CONFLICT' });
  if (v.tlsCa && !v.tlsCert) throw new UsageError(`${nameOf(resolved, 'tlsCa')} needs --tls-cert and --tls-key`, { code: 'E_CONFIG_CONFLICT' });
  const database = v.db === undefined ? undefined : checkDatabaseUrl(String(v.db), nameOf(resolved, 'db'));
  if (!v.tokens && !database) throw new UsageError(`missing ${howToSet(SERVER_SETTINGS, 'tokens')}: a JSON file {"<dock id>": "<token>"}; with --db the tokens may come from the database`, { code: 'E_CONFIG_MISSING' });
  if (database && !v.serverKey) throw new UsageError(`${nameOf(resolved, 'db')} needs --server-key: every server of one database signs receipts with the same key (make one with \`bodycam server key new --out FILE\`)`, { code: 'E_CONFIG_CONFLICT' });
  const { storeDir, s3 } = deploymentOf(resolved);
  return {
    dataDir: String(v.dataDir), host, port, ...(v.tokens ? { tokens: String(v.tokens) } : {}),
    ...(v.tlsCert && v.tlsKey ? { tls: { cert: String(v.tlsCert), key: String(v.tlsKey), ...(v.tlsCa ? { ca: String(v.tlsCa) } : {}) } } : {}),
    maxSegmentBytes: Number(v.maxSegmentBytes),
    ...(v.maxStoreBytes !== undefined ? { maxStoreBytes: Number(v.maxStoreBytes) } : {}),
    requestTimeoutMs: Math.round(Number(v.requestTimeout) * 1000),
    bodyIdleTimeoutMs: Math.round(Number(v.bodyIdleTimeout) * 1000),
    manifestTimeoutMs: Math.round(Number(v.manifestTimeout) * 1000),
    maxRequests: Number(v.maxRequests), maxRequestsPerDock: Number(v.maxRequestsPerDock),
    ...(database ? { database } : {}),
    ...(v.serverKey ? { serverKey: String(v.serverKey) } : {}),
    ...(storeDir ? { storeDir } : {}),
    ...(s3 ? { s3 } : {}),
    ...(v.adminTokenFile ? { adminTokenFile: String(v.adminTokenFile) } : {}),
    staleAfterMs: Math.round(Number(v.staleAfter) * 1000),
    logLevel: v.logLevel as LogLevel,
  };
}

/** Flags > env > file > defaults into a checked ServerConfig (nothing read or started yet). */
/**
 * One line per key the server takes from a variable other tools set too (DATABASE_URL, S3_ENDPOINT,
 * AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY: not the project's own BODYCAM_*),
 * saying so, and whether it beat the config file. A DATABASE_URL or S3_ENDPOINT left in a shell or
 * a unit's environment for another program silently switched the server's state or its blobs to
 * another place than the --config file names; values are never printed (they may hold secrets).
 */
export function strayEnvironmentNotes(resolved: ResolvedSettings): string[] {
  const notes: string[] = [];
  for (const [key, from] of Object.entries(resolved.sources)) {
    if (from.source !== 'env' || from.name.startsWith('BODYCAM_')) continue;
    const file = resolved.shadowed?.[key];
    notes.push(`${key} comes from ${from.name} in the environment${file ? `, not from "${key}" in ${file}` : ''}: a variable other programs set too; unset ${from.name} if it is not meant for this server (\`bodycam server config --print\` shows where every value comes from)`);
  }
  return notes;
}

export function loadServerConfig(input: LoadServerConfigInput = {}): ServerConfig {
  return serverConfigOf(resolveServerSettings(input));
}

/** Markdown table of the server's keys (README.md). */
export function serverConfigReferenceMarkdown(): string {
  return settingsReferenceMarkdown(SERVER_SETTINGS, 'JSON file holding any of the keys below (camelCase; unknown keys and a key given twice are an error; schema: docs/schemas/server-config.schema.json); relative paths in it are relative to the file; keep it 0600 if it holds the S3 keys.');
}
