/**
 * The one table from errors to HTTP problems (src/server/problem.ts toProblem): the server's
 * internal errors carry codes of their own (src/server/errorCodes.ts), never protocol problem
 * codes, and each maps to the problem its HTTP answer has always been; an error that merely
 * carries a problem code's name is no problem of the protocol.
 */
import { describe, it, expect } from '@jest/globals';
import { BodycamError, EnvironmentError, InputError, IntegrityError } from '../../src/errors.js';
import { isProblemCode, PROBLEM_ERROR_CODE, ProblemError } from '../../src/protocol/problems.js';
import { SERVER_ERROR_CODES } from '../../src/server/errorCodes.js';
import { toProblem } from '../../src/server/problem.js';

describe('HTTP error table', () => {
  it('maps every internal error code to its problem, and no internal code is a protocol code', () => {
    const cases: Array<[Error, string, number]> = [
      [new IntegrityError(SERVER_ERROR_CODES.invalidId, 'invalid dock id'), 'invalid_id', 400],
      [new InputError(SERVER_ERROR_CODES.invalidId, 'path escapes its root'), 'invalid_id', 400],
      [new IntegrityError(SERVER_ERROR_CODES.bodyLength, 'body has 3 bytes'), 'length_mismatch', 400],
      [new IntegrityError(SERVER_ERROR_CODES.bodyDigest, 'body SHA-256 differs'), 'digest_mismatch', 422],
      [new EnvironmentError(SERVER_ERROR_CODES.dockKeyPinRace, 'the pin was reset'), 'dock_key_mismatch', 400],
    ];
    for (const [error, problemCode, status] of cases) {
      const problem = toProblem(error);
      expect({ code: problem.code, problemCode: problem.problemCode, status: problem.status, detail: problem.message, cause: problem.cause })
        .toEqual({ code: PROBLEM_ERROR_CODE, problemCode, status, detail: error.message, cause: error });
    }
    for (const code of Object.values(SERVER_ERROR_CODES)) expect({ code, isProblemCode: isProblemCode(code) }).toEqual({ code, isProblemCode: false });
  });

  it('answers internal for an error that only carries a problem code as its name, and a ProblemError as itself', () => {
    for (const code of ['conflict', 'not_found', 'invalid_id', 'digest_mismatch']) {
      expect(toProblem(new BodycamError(code, 'from somewhere'))).toMatchObject({ problemCode: 'internal', status: 500, message: 'internal error (see the server log)' });
    }
    expect(toProblem(Object.assign(new Error('x'), { code: 'toString' }))).toMatchObject({ problemCode: 'internal' });
    const own = new ProblemError('conflict', 'other bytes');
    expect(toProblem(own)).toBe(own);
  });
});
