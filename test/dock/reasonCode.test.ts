import { describe, it, expect } from '@jest/globals';
import { IntegrityError, InputError } from '../../src/errors.js';
import { ProblemError, reasonCodeOf } from '../../src/dock/errors.js';

describe('reasonCodeOf', () => {
  it('names a permanent server problem server_<code> and local errors by what went wrong', () => {
    expect(reasonCodeOf(ProblemError.received(409, 'conflict', 'exists with different content'))).toBe('server_conflict');
    expect(reasonCodeOf(ProblemError.received(422, 'whole_digest_mismatch', 'assembled file differs'))).toBe('server_whole_digest_mismatch');
    expect(reasonCodeOf(new IntegrityError('E_RECEIPT_INVALID', 'receipt rejected'))).toBe('receipt_invalid');
    expect(reasonCodeOf(new InputError('E_FILE_CHANGED', 'size changed'))).toBe('file_changed');
    expect(reasonCodeOf(new InputError('E_FILE_GREW', 'longer than planned'))).toBe('file_changed');
    expect(reasonCodeOf(new InputError('E_FILE_REPLACED', 'not a regular file'))).toBe('file_replaced');
    expect(reasonCodeOf(new InputError('E_PLAN_GAP', 'plan does not tile'))).toBe('input_error');
    expect(reasonCodeOf(new IntegrityError('E_SOMETHING', 'other'))).toBe('integrity_error');
  });
});
