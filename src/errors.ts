/**
 * Typed errors with stable codes, in the manner of got: every error the project
 * raises on purpose is a BodycamError with a `code` that scripts and tests can
 * match on, and a `cause` that keeps the underlying failure for the JSON log.
 *
 * `userFacing` errors are mistakes a person can fix (bad flag, missing folder,
 * port in use): the CLI prints their message as one line, without a stack.
 */
export interface ErrorOptions {
  cause?: unknown;
  details?: Record<string, unknown>;
}

export class BodycamError extends Error {
  readonly code: string;
  readonly details: Record<string, unknown>;
  /** Exit status the CLI uses when this error ends a command. */
  readonly exitCode: number = 1;
  /** True when the message alone tells a person what to do. */
  readonly userFacing: boolean = false;

  constructor(code: string, message: string, options: ErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.details = options.details ?? {};
  }

  toJSON(): Record<string, unknown> {
    return {
      name: this.name,
      code: this.code,
      message: this.message,
      details: this.details,
      cause: describeCause(this.cause),
    };
  }
}

/** A mistake in how the program was invoked: flags, config file, paths given by the user. */
export class UsageError extends BodycamError {
  override readonly exitCode = 2;
  override readonly userFacing = true;
  constructor(message: string, options: ErrorOptions & { code?: string } = {}) {
    super(options.code ?? 'E_USAGE', message, options);
  }
}

/** The environment is not fit to run: ffmpeg missing, port in use, folder unwritable. */
export class EnvironmentError extends BodycamError {
  override readonly userFacing = true;
}

/** ffmpeg/ffprobe failed, timed out or could not read the input. */
export class MediaError extends BodycamError {
  /** Last lines of the tool's stderr: the only useful diagnosis ffmpeg gives. */
  readonly stderrTail: string;
  constructor(code: string, message: string, options: ErrorOptions & { stderrTail?: string } = {}) {
    super(code, message, options);
    this.stderrTail = options.stderrTail ?? '';
  }
  override toJSON(): Record<string, unknown> {
    return { ...super.toJSON(), stderrTail: this.stderrTail };
  }
}

/** Evidence does not match what was declared or signed. Never retried, never wiped. */
export class IntegrityError extends BodycamError {}

/** Bad or unusable input from a camera or a peer (not the user's invocation). */
export class InputError extends BodycamError {}

export function describeCause(cause: unknown): unknown {
  if (cause === undefined || cause === null) return undefined;
  if (cause instanceof BodycamError) return cause.toJSON();
  if (cause instanceof Error) {
    const code = (cause as NodeJS.ErrnoException).code;
    return { name: cause.name, message: cause.message, ...(code ? { code } : {}), cause: describeCause(cause.cause) };
  }
  return String(cause);
}

/** Node's errno code of an error, if it has one. */
export function errnoCode(error: unknown): string | undefined {
  // Not `instanceof Error`: errors from another realm (jest's vm modules, worker threads) fail that test.
  const code = typeof error === 'object' && error !== null ? (error as NodeJS.ErrnoException).code : undefined;
  return typeof code === 'string' ? code : undefined;
}

/** Errno codes that mean the file (or the whole mount) is not there any more: undocked, not broken. */
const GONE_CODES = new Set(['ENOENT', 'ENOTDIR', 'EIO', 'ENXIO', 'ENODEV', 'ESTALE']);

export function isFileGone(error: unknown): boolean {
  for (let e: unknown = error; e; e = (e as { cause?: unknown }).cause) {
    const code = errnoCode(e);
    if (code && GONE_CODES.has(code)) return true;
    if (!(e instanceof Error)) break;
  }
  return false;
}
