/**
 * Lines for a person on stderr, and the one rule that keeps a service's stderr
 * machine-readable: `bodycam dock` and `bodycam server` log JSON lines (pino) to
 * stderr, so when stderr is not a terminal and no BODYCAM_LOG_FILE takes the log
 * elsewhere, what they have to tell a person (a failure, the --once report) is
 * written as a log record too (`msg` holds the same text) instead of a plain line
 * in the middle of the JSON stream. On a terminal, or with the log in a file,
 * stderr holds plain lines only. Other commands are tools: stderr is for people.
 */
import { createLogger, logTarget, type Fields, type Logger } from '../log.js';
import { visible } from '../util/visible.js';

let serviceLogger: Logger | undefined;

/** Called by the service commands before they do anything that can fail. */
export function enterServiceMode(component: string): void {
  if (logTarget() === 'stderr' && !process.stderr.isTTY) serviceLogger = createLogger({ component }, 'info');
}

/** True when stderr is a JSON stream and every line on it must be a log record. */
export function stderrIsJson(): boolean {
  return serviceLogger !== undefined;
}

/** One line for a person; a log record at `level` when stderr is a JSON stream. */
export function tell(line: string, fields: Fields = {}, level: 'info' | 'warn' | 'error' | 'fatal' = 'info'): void {
  if (serviceLogger) serviceLogger[level](line, fields);
  else process.stderr.write(visible(line) + '\n');
}

/**
 * Text for a person on stdout (reports, tables, one-line results). Card text in it is shown, never
 * obeyed: a file name's escape sequences cannot move the cursor or rewrite a row (src/util/visible.ts).
 * JSON output goes straight to process.stdout (JSON.stringify escapes control characters).
 */
export function say(text: string): void {
  process.stdout.write(visible(text));
}
