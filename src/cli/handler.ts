/**
 * The one top-level error handler: maps any error to one line for a person and
 * an exit code; the full detail (cause chain, ffmpeg stderr) goes to the JSON log.
 */
import { BodycamError, describeCause } from '../errors.js';
import { createLogger } from '../log.js';

export function exitCodeFor(error: unknown): number {
  return error instanceof BodycamError ? error.exitCode : 1;
}

export function reportError(error: unknown): number {
  const log = createLogger({ component: 'cli' });
  if (error instanceof BodycamError) {
    // A person's mistake gets one line on the terminal; the JSON detail goes only to a log file.
    if (!error.userFacing || process.env.BODYCAM_LOG_FILE) log.error(error.message, { error: error.toJSON() });
    const line = error.userFacing ? error.message : `${error.message} [${error.code}]`;
    process.stderr.write(`bodycam: ${line}\n`);
    return error.exitCode;
  }
  log.error('unexpected failure', { error: describeCause(error), stack: error instanceof Error ? error.stack : undefined });
  const message = error instanceof Error ? error.message : String(error);
  process.stderr.write(`bodycam: unexpected failure: ${message} (details in the JSON log)\n`);
  return 1;
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
