/**
 * The one rule for files that hold a secret or authorise an action ("a secret file is private"):
 * - a `secret` (a token, a private key, password hashes) is refused when group or others may read
 *   or write it (mode & 0o077): they would take it away, or put their own in;
 * - an `authorising` file (a pinned public key, a config file naming the endpoint) is refused when
 *   group or others may write it (mode & 0o022): reading it is harmless, rewriting it is not;
 * - either is refused when another user (not this one, not root) owns it: its owner can chmod it.
 * The checks are made on the opened file (fstat of the fd it is then read from), so a symlink, or
 * a path swapped between check and read, is judged by the file actually read: a symlink to a
 * private file of this user passes, a symlink to a 0666 file does not.
 */
import { closeSync, constants, fstatSync, openSync, readFileSync, type Stats } from 'node:fs';
import { errnoCode, UsageError } from '../errors.js';

export type PrivateFileKind = 'secret' | 'authorising';

export type PrivateFileProblem = 'mode' | 'owner' | 'not_regular' | 'too_big' | 'unreadable';

/** Stable codes, one per problem (a caller may name its own for `mode`, as the server's files always had). */
export const PRIVATE_FILE_CODES: Record<PrivateFileProblem, string> = {
  mode: 'E_FILE_NOT_PRIVATE', owner: 'E_FILE_OWNER', not_regular: 'E_FILE_NOT_REGULAR', too_big: 'E_FILE_TOO_BIG', unreadable: 'E_FILE_UNREADABLE',
};

export class PrivateFileError extends UsageError {
  constructor(
    message: string,
    readonly path: string,
    readonly problem: PrivateFileProblem,
    /** The file's permission bits, 0o7777 (when it could be opened). */
    readonly mode: number | undefined,
    options: { code?: string; cause?: unknown } = {},
  ) {
    super(message, { code: options.code ?? PRIVATE_FILE_CODES[problem], ...(options.cause === undefined ? {} : { cause: options.cause }), details: { path, problem, ...(mode === undefined ? {} : { mode: modeText(mode) }) } });
  }
}

export interface PrivateFileOptions {
  kind: PrivateFileKind;
  /** How messages name the file, before its path: "token file", "--tokens:". */
  label: string;
  /** Why it matters, said after the problem: "it holds every dock's secret". */
  why?: string;
  /** Code of a `mode` or `owner` refusal (default E_FILE_NOT_PRIVATE / E_FILE_OWNER). */
  code?: string;
  /** Refuse a larger file (a config file, a key) instead of reading it whole. */
  maxBytes?: number;
  /**
   * A file that cannot be opened or read is this caller's usage error (its own words and code, the
   * errno error as cause) instead of a PrivateFileError `unreadable`.
   */
  unreadable?: { message: (cause: unknown) => string; code?: string };
}

/** 0666 as people write it. */
export function modeText(mode: number): string {
  return (mode & 0o777).toString(8).padStart(4, '0');
}

const ROOT_UID = 0;

/** What is wrong with a file of this kind and these stats, as a phrase after its path; undefined: private enough. */
export function privateFileProblem(stats: Pick<Stats, 'mode' | 'uid'>, kind: PrivateFileKind): { problem: PrivateFileProblem; phrase: string } | undefined {
  const mask = kind === 'secret' ? 0o077 : 0o022;
  if ((stats.mode & mask) !== 0) {
    return { problem: 'mode', phrase: `is ${kind === 'secret' ? 'readable or writable' : 'writable'} by group or others (mode ${modeText(stats.mode)})` };
  }
  const me = process.getuid?.();
  if (me !== undefined && stats.uid !== me && stats.uid !== ROOT_UID) {
    return { problem: 'owner', phrase: `belongs to uid ${stats.uid}, not this user (uid ${me}) or root: its owner can change it` };
  }
  return undefined;
}

/** The fix for a problem of the rule, as a command. */
function fixOf(problem: PrivateFileProblem, path: string): string {
  return problem === 'owner' ? `chown $(id -un) ${path} && chmod 600 ${path}` : `chmod 600 ${path}`;
}

/**
 * Read a file under the rule, from one open fd (O_NONBLOCK: a FIFO does not hang the open).
 * Throws PrivateFileError: unreadable (cause = the errno error), not a regular file, too big, mode, owner.
 */
export function readPrivateFile(path: string, options: PrivateFileOptions): { text: string; stats: Stats } {
  const say = (phrase: string, problem: PrivateFileProblem, mode?: number, cause?: unknown, fix?: string): PrivateFileError =>
    new PrivateFileError(`${options.label} ${path} ${phrase}${options.why ? `; ${options.why}` : ''}${fix ? `: run \`${fix}\`` : ''}`, path, problem, mode === undefined ? undefined : mode & 0o7777,
      { ...(problem === 'mode' || problem === 'owner' ? (options.code ? { code: options.code } : {}) : {}), ...(cause === undefined ? {} : { cause }) });
  const unreadable = (cause: unknown, mode?: number): Error => options.unreadable
    ? new UsageError(options.unreadable.message(cause), { cause, ...(options.unreadable.code ? { code: options.unreadable.code } : {}) })
    : say(`cannot be read (${errnoCode(cause) ?? (cause as Error).message})`, 'unreadable', mode, cause);
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (cause) {
    throw unreadable(cause);
  }
  try {
    const stats = fstatSync(fd);
    if (!stats.isFile()) throw say(stats.isDirectory() ? 'is a folder, not a file' : 'is not a regular file', 'not_regular', stats.mode);
    const wrong = privateFileProblem(stats, options.kind);
    if (wrong) throw say(wrong.phrase, wrong.problem, stats.mode, undefined, fixOf(wrong.problem, path));
    if (options.maxBytes !== undefined && stats.size > options.maxBytes) {
      const tooBig = say(`is ${stats.size} bytes, more than ${options.maxBytes}`, 'too_big', stats.mode);
      tooBig.details.size = stats.size;
      throw tooBig;
    }
    let text: string;
    try {
      text = readFileSync(fd, 'utf8');
    } catch (cause) {
      throw unreadable(cause, stats.mode);
    }
    return { text, stats };
  } finally {
    closeSync(fd);
  }
}
