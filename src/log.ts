/**
 * Structured logging with pino: one JSON object per line, pino's own field names
 * (numeric `level`, `time`, `pid`, `hostname`, `msg`, `err`), so the usual tools
 * (pino-pretty, jq, Loki, Vector) read it without a mapping.
 *
 * Where the lines go: BODYCAM_LOG_FILE if set, else stderr. Writes are synchronous:
 * a crash or process.exit must not lose the line that says why. They never block: a
 * reader that stops reading (a full stderr pipe) must not stall the agent, so stderr is
 * non-blocking, what the pipe cannot take now waits in memory (up to MAX_PENDING_LOG_BYTES,
 * written first at the next line) and lines beyond that are dropped and counted: one
 * `log lines dropped` warning with the count once the reader takes lines again. Every
 * logger of the process shares one sink per descriptor or file, and at exit the held
 * lines get up to EXIT_FLUSH_MS to go out (NonBlockingLogSink).
 *
 * Under systemd (JOURNAL_STREAM names the very file stderr is), each line starts with
 * the syslog priority `<N>`; journald strips it and files the JSON under that priority,
 * so `journalctl -p warning` works. Anywhere else lines are plain JSON.
 */
import { fstatSync, openSync, readSync, writeSync } from 'node:fs';
import { resolve } from 'node:path';
import pino from 'pino';
import { BodycamError, errnoCode, MediaError, UsageError } from './errors.js';

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
  const logger = new Logger(Object.keys(bindings).length ? instance.child(bindings) : instance);
  if (destination instanceof NonBlockingLogSink) {
    // The sink is shared: the first logger on it reports its drops.
    destination.onDropsEnded ??= (dropped) => {
      logger.warn('log lines dropped: the log reader did not keep up (stderr pipe or log file full)', { dropped, droppedTotal: droppedLines });
    };
  }
  return logger;
}

/** Bytes of log lines held while the destination takes nothing (a full pipe, a full disk); beyond, lines are dropped. */
export const MAX_PENDING_LOG_BYTES = 256 * 1024;

/**
 * Bytes a pipe takes in one write all or nothing (POSIX PIPE_BUF; 4096 on Linux): a pipe is handed
 * whole lines in pieces of at most this, so a partial write, and with it a line's head without its
 * tail, can only happen to a line longer than this.
 */
export const PIPE_ATOMIC_BYTES = 4096;
/** How long the process may wait at exit for a reader to take the held lines (the line that says why it ended). */
export const EXIT_FLUSH_MS = 1000;

let droppedLines = 0;
/** Log lines dropped by this process since it started (a reader that did not keep up, a line cut at exit). */
export function droppedLogLines(): number { return droppedLines; }

/**
 * pino's destination: each line written at once with writeSync (a crash loses nothing that could
 * be written) but never waited for. pino's own (sonic-boom, sync) sleeps and tries again on EAGAIN
 * forever, which stalled the whole event loop behind a reader that stopped reading. Here what the
 * file descriptor does not take now is held (MAX_PENDING_LOG_BYTES) and written first, at the next
 * line or a retry timer; lines beyond are dropped and counted, and once lines go through again one
 * warning says how many (`onDropsEnded`).
 *
 * There is one sink per descriptor (and per log file) in the process, shared by every logger
 * (`sinkForFd`, `sinkForFile`): a second sink would write its line after the first one's held head
 * and cut a record in two. A pipe gets whole lines in pieces of at most PIPE_ATOMIC_BYTES (written
 * whole or not at all); at exit what is held is written with a bounded blocking retry
 * (`flushLogs`), and a head whose tail still cannot go is ended with a newline (counted as dropped),
 * so the next writer's line stays whole. A log file that a previous process left ending mid-line
 * gets that newline before this process's first line.
 */
export class NonBlockingLogSink {
  /** Whole lines, the first possibly only the tail of one (`midLine`). */
  private readonly pending: Buffer[] = [];
  private pendingBytes = 0;
  private midLine = false;
  private dropsUnreported = 0;
  private retry: NodeJS.Timeout | undefined;
  private broken = false;
  private readonly pieceBytes: number;
  onDropsEnded?: (dropped: number) => void;

  constructor(readonly fd: number) {
    let pipe = false;
    try {
      const st = fstatSync(fd);
      pipe = st.isFIFO() || st.isSocket();
      if (st.isFile() && st.size > 0 && !endsWithNewline(fd, st.size)) {
        // A previous writer stopped mid-line: end its head so this process's first line stays whole.
        this.hold(Buffer.from('\n'));
        droppedLines++;
        this.dropsUnreported++;
      }
    } catch { /* an fd fstat refuses: written as it comes */ }
    this.pieceBytes = pipe ? PIPE_ATOMIC_BYTES : 64 * 1024;
  }

  /** Bytes held, not yet taken by the descriptor. */
  get heldBytes(): number { return this.pendingBytes; }

  write(line: string): boolean {
    if (this.pendingBytes > 0) this.flush(); // held bytes first: room they free counts for this line
    const data = Buffer.from(line);
    if (this.broken || (this.pendingBytes > 0 && this.pendingBytes + data.length > MAX_PENDING_LOG_BYTES)) {
      droppedLines++;
      this.dropsUnreported++;
      return false;
    }
    this.pending.push(data);
    this.pendingBytes += data.length;
    this.flush();
    return this.pendingBytes === 0;
  }

  /** Write what is held, as far as the descriptor takes it now. */
  flush(): void {
    while (this.pending.length && !this.broken) {
      const chunk = this.nextPiece();
      const written = this.tryWrite(chunk);
      this.consume(written);
      if (written < chunk.length) break;
    }
    if (this.pending.length && !this.broken) this.scheduleRetry();
    else {
      if (this.retry) { clearTimeout(this.retry); this.retry = undefined; }
      this.reportDrops();
    }
  }

  /**
   * At exit: try for up to `untilMs` (Date.now() based) to write everything held, sleeping between
   * tries (the event loop is over). A head still without its tail then is ended with a newline.
   */
  flushBlocking(untilMs: number): void {
    for (;;) {
      this.flush();
      if (!this.pending.length || this.broken || Date.now() >= untilMs) break;
      sleepSync(Math.min(10, Math.max(1, untilMs - Date.now())));
    }
    if (this.pending.length && !this.broken) {
      // Lost: what is held (the cut line among it). A newline ends the cut head if the reader takes one byte.
      droppedLines += this.pending.length;
      if (this.midLine) this.tryWrite(Buffer.from('\n'));
      this.midLine = false;
      this.pending.length = 0;
      this.pendingBytes = 0;
    }
    if (this.retry) { clearTimeout(this.retry); this.retry = undefined; }
  }

  /** Whole lines up to the piece size, or the first piece of a line longer than that. */
  private nextPiece(): Buffer {
    let size = 0;
    let count = 0;
    while (count < this.pending.length && size + this.pending[count]!.length <= this.pieceBytes) size += this.pending[count++]!.length;
    if (count === 0) return this.pending[0]!.subarray(0, this.pieceBytes);
    return count === 1 ? this.pending[0]! : Buffer.concat(this.pending.slice(0, count), size);
  }

  private consume(written: number): void {
    this.pendingBytes -= written;
    while (written > 0) {
      const head = this.pending[0]!;
      if (written >= head.length) { written -= head.length; this.pending.shift(); this.midLine = false; }
      else { this.pending[0] = head.subarray(written); this.midLine = true; written = 0; }
    }
  }

  private hold(data: Buffer): void {
    this.pending.push(data);
    this.pendingBytes += data.length;
  }

  /** Nobody may log for a while: the held lines go out once the reader takes them, not only at the next line. */
  private scheduleRetry(): void {
    this.retry ??= setTimeout(() => { this.retry = undefined; this.flush(); }, 250).unref();
  }

  private tryWrite(data: Buffer): number {
    try {
      return writeSync(this.fd, data);
    } catch (error) {
      const code = errnoCode(error);
      // EPIPE/EBADF: the reader is gone for good; everything from now on is dropped (counted).
      if (code === 'EPIPE' || code === 'EBADF') {
        this.broken = true;
        droppedLines += this.pending.length;
        this.pending.length = 0;
        this.pendingBytes = 0;
      }
      // EAGAIN (full pipe), ENOSPC (full disk), EIO...: held and tried again.
      return 0;
    }
  }

  private reportDrops(): void {
    if (this.dropsUnreported === 0 || this.pending.length || this.broken) return;
    const dropped = this.dropsUnreported;
    this.dropsUnreported = 0;
    this.onDropsEnded?.(dropped);
  }
}

function endsWithNewline(fd: number, size: number): boolean {
  const last = Buffer.alloc(1);
  try { return readSync(fd, last, 0, 1, size - 1) !== 1 || last[0] === 0x0a; } catch { return true; /* write-only: cannot tell */ }
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));
function sleepSync(ms: number): void { Atomics.wait(sleeper, 0, 0, ms); }

/** The process's sinks: one per descriptor ('fd:2') and per log file (its absolute path). */
const sinks = new Map<string, NonBlockingLogSink>();

function registered(key: string, open: () => NonBlockingLogSink): NonBlockingLogSink {
  let sink = sinks.get(key);
  if (!sink) {
    if (sinks.size === 0) process.once('exit', () => { flushLogs(); });
    sink = open();
    sinks.set(key, sink);
  }
  return sink;
}

/** The one sink of this process on `fd` (stderr: 2). */
export function sinkForFd(fd: number): NonBlockingLogSink {
  return registered(`fd:${fd}`, () => new NonBlockingLogSink(fd));
}

/** The one sink of this process appending to `file`. */
export function sinkForFile(file: string): NonBlockingLogSink {
  return registered(`file:${resolve(file)}`, () => {
    try {
      // 'a+': appends, and reads the last byte to see whether a previous writer left a line unended.
      return new NonBlockingLogSink(openSync(file, 'a+', 0o600));
    } catch (cause) {
      throw new UsageError(`cannot open the log file ${file}: ${(cause as Error).message}`, { cause, code: 'E_CONFIG_INVALID' });
    }
  });
}

/**
 * Write what every sink holds, waiting up to `timeoutMs` in all for readers to take it: called at
 * process exit (the 'exit' event) and by the CLI's error handler after the line that says why.
 */
export function flushLogs(timeoutMs = EXIT_FLUSH_MS): void {
  const until = Date.now() + timeoutMs;
  for (const sink of sinks.values()) sink.flushBlocking(until);
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
  if (file) return build(chosen, sinkForFile(file), bindings, false);
  // Node makes a pipe or socket on fd 2 non-blocking when it opens process.stderr (a terminal stays
  // blocking): then a full pipe answers EAGAIN, which the destination turns into "keep or drop".
  void process.stderr;
  return build(chosen, sinkForFd(2), bindings, isJournalStream(2, env));
}

/** A logger appending to one file (the demo's log). */
export function fileLogger(file: string, level: LogLevel = 'info', bindings: Fields = {}): Logger {
  return build(level, sinkForFile(file), bindings, false);
}

/** A logger writing into any stream (tests, in-memory capture). */
export function streamLogger(stream: LogSink, level: LogLevel = 'info', bindings: Fields = {}): Logger {
  return build(level, stream, bindings, false);
}

/** A logger that drops everything (replay's embedded agents, tests). */
export function quietLogger(): Logger {
  return new Logger(pino({ level: 'silent' }));
}
