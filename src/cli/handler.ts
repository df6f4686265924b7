/**
 * The one top-level error handler: maps any error to one line for a person and
 * an exit code; the full detail (cause chain, ffmpeg stderr) goes to the JSON log
 * (BODYCAM_LOG_FILE, or stderr itself when a service's stderr is a JSON stream).
 */
import { BodycamError } from '../errors.js';
import { createLogger, flushLogs, logTarget } from '../log.js';
import { stderrIsJson, tell } from './output.js';
import { visible } from '../util/visible.js';

export function exitCodeFor(error: unknown): number {
  return error instanceof BodycamError ? error.exitCode : 1;
}

export function reportError(error: unknown): number {
  const exitCode = exitCodeFor(error);
  const known = error instanceof BodycamError;
  const message = error instanceof Error ? error.message : String(error);
  const line = known ? (error.userFacing ? message : `${message} [${error.code}]`) : `unexpected failure: ${message}`;
  const fields = { err: error, exitCode, ...(known ? { code: error.code } : {}) };
  if (stderrIsJson()) {
    // One record, level fatal: the process ends with it. No plain line in the JSON stream.
    tell(`bodycam: ${line}`, fields, 'fatal');
    flushLogs(); // the process ends next: the record that says why goes out before (a slow reader gets up to 1 s)
    return exitCode;
  }
  // A person's mistake gets one line on the terminal; the detail goes to the log file when there is one.
  if (logTarget() === 'file') {
    try { createLogger({ component: 'cli' }).fatal(line, fields); flushLogs(); } catch { /* an unwritable log file must not hide the line below */ }
  }
  const hint = !known || !error.userFacing ? (logTarget() === 'file' ? ' (details in the JSON log)' : ' (set BODYCAM_LOG_FILE=<file> for the details)') : '';
  process.stderr.write(visible(`bodycam: ${line}${hint}`) + '\n');
  return exitCode;
}

/** Wrap a command action so every failure goes through reportError. */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<number | void> | number | void) {
  return async (...args: A): Promise<void> => {
    try {
      const code = await fn(...args);
      process.exitCode = code ?? 0;
    } catch (error) {
      process.exitCode = reportError(error);
    }
  };
}
