/**
 * A request that ends in an RFC 9457 problem. Routes throw ProblemError; the
 * app's one error handler turns it (and fastify's own errors) into
 * application/problem+json with the stable `code` from src/protocol/problems.ts.
 */
import { BodycamError, type ErrorOptions } from '../errors.js';
import { PROBLEMS, problemType, type ProblemBody, type ProblemCode } from '../protocol/problems.js';

export class ProblemError extends BodycamError {
  readonly status: number;
  readonly extension: Record<string, unknown>;
  /** Seconds for Retry-After (429, 503, 507). */
  readonly retryAfter?: number;

  constructor(code: ProblemCode, detail?: string, options: ErrorOptions & { extension?: Record<string, unknown>; retryAfter?: number } = {}) {
    super(code, detail ?? PROBLEMS[code].title, options);
    this.status = PROBLEMS[code].status;
    this.extension = options.extension ?? {};
    if (options.retryAfter !== undefined) this.retryAfter = options.retryAfter;
  }

  body(instance?: string): ProblemBody {
    const spec = PROBLEMS[this.code as ProblemCode];
    return {
      type: problemType(this.code),
      title: spec.title,
      status: this.status,
      code: this.code,
      detail: this.message,
      ...(instance ? { instance } : {}),
      ...this.extension,
    };
  }
}

export function isProblemCode(code: unknown): code is ProblemCode {
  return typeof code === 'string' && Object.prototype.hasOwnProperty.call(PROBLEMS, code);
}
