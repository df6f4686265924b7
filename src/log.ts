/**
 * Structured logging with pino: one JSON object per line, pino's own field names
 * (numeric `level`, `time`, `pid`, `hostname`, `msg`, `err`), so the usual tools
 * (pino-pretty, jq, Loki, Vector) read it without a mapping.
 *
 * Where the lines go: BODYCAM_LOG_FILE if set, else stderr. Writes are synchronous:
 * a crash or process.exit must not lose the line that says why.
 *
 * Under systemd (JOURNAL_STREAM names the very file stderr is), each line starts with
 * the syslog priority `<N>`; journald strips it and files the JSON under that priority,
 * so `journalctl -p warning` works. Anywhere else lines are plain JSON.
 */
import { fstatSync } from 'node:fs';
import pino from 'pino';
import { BodycamError, MediaError, UsageError } from './errors.js';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = typeof LOG_LEVELS[number];

/** pino's numeric levels → syslog priorities (sd-daemon(3) prefixes). */
const SYSLOG_PRIORITY: Record<number, number> = { 10: 7, 20: 7, 30: 6, 40: 4, 50: 3, 60: 2 };

export function isLogLevel(value: unknown): value is LogLevel {
  return typeof value === 'string' && (LOG_LEVELS as readonly string[]).includes(value);
}

/** A log level from a flag, env or file value; anything else is a usage error naming where it came from. */
export function parseLogLevel(value: unknown, where = 'log level'): LogLevel {
  if (isLogLevel(value)) return value;
  throw new UsageError(`invalid ${where}: expected one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(value)}`, { code: 'E_CONFIG_INVALID' });
}

/** The level from BODYCAM_LOG_LEVEL (validated), or `fallback` when it is unset. */
export function envLogLevel(env: NodeJS.ProcessEnv = process.env, fallback: LogLevel = 'info'): LogLevel {
  const raw = env.BODYCAM_LOG_LEVEL;
  return raw === undefined || raw === '' ? fallback : parseLogLevel(raw, 'BODYCAM_LOG_LEVEL');
}

export type Fields = Record<string, unknown>;

/** Anything that takes whole lines (pino's minimal destination). */
export interface LogSink { write(line: string): void }

/**
 * The project's logging interface: message first, fields second (as every call site
 * reads), on top of a pino instance. An Error in any field is serialized by pino's
 * error serializer (type, message, stack, code, cause chain); the conventional
 * key for the error of the event is `err`.
 */
export class Logger {
  constructor(readonly pino: pino.Logger) {}

  child(bindings: Fields): Logger {
    return new Logger(this.pino.child(bindings));
  }

  trace(msg: string, fields?: Fields): void { if (this.pino.isLevelEnabled('trace')) this.pino.trace(prepare(fields), msg); }
  debug(msg: string, fields?: Fields): void { if (this.pino.isLevelEnabled('debug')) this.pino.debug(prepare(fields), msg); }
  info(msg: string, fields?: Fields): void { if (this.pino.isLevelEnabled('info')) this.pino.info(prepare(fields), msg); }
  warn(msg: string, fields?: Fields): void { if (this.pino.isLevelEnabled('warn')) this.pino.warn(prepare(fields), msg); }
  error(msg: string, fields?: Fields): void { if (this.pino.isLevelEnabled('error')) this.pino.error(prepare(fields), msg); }
  fatal(msg: string, fields?: Fields): void { if (this.pino.isLevelEnabled('fatal')) this.pino.fatal(prepare(fields), msg); }

  get level(): string { return this.pino.level; }
}

function prepare(fields: Fields | undefined): Fields {
  if (!fields) return {};
  const out: Fields = {};
  // `err` goes through pino's serializer slot; an Error under any other key is serialized the same way here.
  for (const [key, value] of Object.entries(fields)) out[key] = key !== 'err' && isErrorLike(value) ? serializeError(value) : value;
  return out;
}

/**
 * pino's error shape (`type`, `message`, `stack`, own fields such as `code`), with the
 * project's additions: a BodycamError keeps its `code` and `details` (and ffmpeg's stderr
 * tail), a person's mistake (userFacing) has no stack, and the `cause` chain is kept.
 */
export function serializeError(value: unknown, depth = 0): unknown {
  if (!isErrorLike(value)) return value;
  if (value instanceof BodycamError) {
    return {
      type: value.name, code: value.code, message: value.message,
      ...(Object.keys(value.details).length ? { details: value.details } : {}),
      ...(value instanceof MediaError && value.stderrTail ? { stderrTail: value.stderrTail } : {}),
      ...(value.userFacing ? {} : { stack: value.stack }),
      ...(value.cause !== undefined && depth < 8 ? { cause: serializeError(value.cause, depth + 1) } : {}),
    };
  }
  const plain = pino.stdSerializers.err(value as Error) as unknown as Record<string, unknown>;
  const cause = (value as Error).cause;
  return { ...plain, ...(cause !== undefined && depth < 8 ? { cause: serializeError(cause, depth + 1) } : {}) };
}

// Not `instanceof Error`: errors from another realm (jest's vm modules, worker threads) fail that test.
function isErrorLike(value: unknown): boolean {
  return value instanceof Error || (typeof value === 'object' && value !== null && typeof (value as Error).message === 'string' && typeof (value as Error).stack === 'string');
}

/** True when fd is the stream journald gave this service (JOURNAL_STREAM=<dev>:<inode>, systemd.exec(5)). */
export function isJournalStream(fd: number, env: NodeJS.ProcessEnv = process.env): boolean {
  const expected = env.JOURNAL_STREAM;
  if (!expected) return false;
  try {
    const st = fstatSync(fd);
    return `${st.dev}:${st.ino}` === expected;
  } catch {
    return false;
  }
}

export interface LoggerOptions {
  level?: LogLevel;
  /** A file to append to; default BODYCAM_LOG_FILE, else stderr. */
  file?: string;
  bindings?: Fields;
  env?: NodeJS.ProcessEnv;
}

/** Where the log of this process goes: 'file' (BODYCAM_LOG_FILE) or 'stderr'. */
export function logTarget(env: NodeJS.ProcessEnv = process.env): 'file' | 'stderr' {
  return env.BODYCAM_LOG_FILE ? 'file' : 'stderr';
}

function build(level: LogLevel, destination: pino.DestinationStream, bindings: Fields, journal: boolean): Logger {
  const instance = pino({
    level,
    timestamp: pino.stdTimeFunctions.isoTime,
    serializers: { err: (value: unknown) => serializeError(value) },
    ...(journal ? { hooks: { streamWrite: withPriority } } : {}),
  }, destination);
  return new Logger(Object.keys(bindings).length ? instance.child(bindings) : instance);
}

function withPriority(line: string): string {
  // pino writes `{"level":N,` first; the number picks the syslog priority.
  const level = /^\{"level":(\d+)/.exec(line)?.[1];
  return `<${SYSLOG_PRIORITY[Number(level)] ?? 6}>${line}`;
}

/** The process's logger: BODYCAM_LOG_FILE or stderr, level from the argument or BODYCAM_LOG_LEVEL. */
export function createLogger(bindings: Fields = {}, level?: LogLevel, options: Omit<LoggerOptions, 'bindings' | 'level'> = {}): Logger {
  const env = options.env ?? process.env;
  const chosen = level ?? envLogLevel(env);
  const file = options.file ?? env.BODYCAM_LOG_FILE;
  if (file) return build(chosen, fileDestination(file), bindings, false);
  return build(chosen, quiet(pino.destination({ fd: 2, sync: true })), bindings, isJournalStream(2, env));
}

/** A failing log write (disk full, a closed pipe) is dropped: a log must never crash the agent. */
function quiet<T extends NodeJS.EventEmitter>(stream: T): T {
  stream.on('error', () => {});
  return stream;
}

function fileDestination(file: string): pino.DestinationStream {
  try {
    return quiet(pino.destination({ dest: file, sync: true, append: true, mkdir: false }));
  } catch (cause) {
    throw new UsageError(`cannot open the log file ${file}: ${(cause as Error).message}`, { cause, code: 'E_CONFIG_INVALID' });
  }
}

/** A logger appending to one file (the demo's log). */
export function fileLogger(file: string, level: LogLevel = 'info', bindings: Fields = {}): Logger {
  return build(level, fileDestination(file), bindings, false);
}

/** A logger writing into any stream (tests, in-memory capture). */
export function streamLogger(stream: LogSink, level: LogLevel = 'info', bindings: Fields = {}): Logger {
  return build(level, stream, bindings, false);
}

/** A logger that drops everything (replay's embedded agents, tests). */
export function quietLogger(): Logger {
  return new Logger(pino({ level: 'silent' }));
}
