/**
 * Structured JSON-lines logging. One line per event, machine-readable, so a dock
 * PC's log can be shipped and searched; people read the CLI's own output instead.
 */
import { appendFileSync } from 'node:fs';
import { describeCause } from './errors.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';
const rank: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export interface LogSink {
  write(line: string): void;
}

export class Logger {
  constructor(
    private readonly sink: LogSink,
    private readonly level: LogLevel = 'info',
    private readonly bindings: Record<string, unknown> = {},
  ) {}

  child(bindings: Record<string, unknown>): Logger {
    return new Logger(this.sink, this.level, { ...this.bindings, ...bindings });
  }

  debug(msg: string, fields?: Record<string, unknown>): void { this.emit('debug', msg, fields); }
  info(msg: string, fields?: Record<string, unknown>): void { this.emit('info', msg, fields); }
  warn(msg: string, fields?: Record<string, unknown>): void { this.emit('warn', msg, fields); }
  error(msg: string, fields?: Record<string, unknown>): void { this.emit('error', msg, fields); }

  private emit(level: LogLevel, msg: string, fields?: Record<string, unknown>): void {
    if (rank[level] < rank[this.level]) return;
    const record: Record<string, unknown> = { time: new Date().toISOString(), level, msg, ...this.bindings };
    if (fields) {
      for (const [key, value] of Object.entries(fields)) {
        record[key] = value instanceof Error ? describeCause(value) : value;
      }
    }
    this.sink.write(JSON.stringify(record) + '\n');
  }
}

export const stderrSink: LogSink = { write: (line) => { process.stderr.write(line); } };
export const nullSink: LogSink = { write: () => {} };
export function fileSink(path: string): LogSink {
  return { write: (line) => { try { appendFileSync(path, line); } catch { /* a log must never crash the agent */ } } };
}

export function parseLogLevel(value: string | undefined, fallback: LogLevel = 'info'): LogLevel {
  return value && value in rank ? (value as LogLevel) : fallback;
}

/** Logger from BODYCAM_LOG_LEVEL and BODYCAM_LOG_FILE (default: stderr). */
export function createLogger(bindings: Record<string, unknown> = {}, level?: LogLevel): Logger {
  const file = process.env.BODYCAM_LOG_FILE;
  return new Logger(file ? fileSink(file) : stderrSink, level ?? parseLogLevel(process.env.BODYCAM_LOG_LEVEL), bindings);
}
