import { describe, it, expect } from '@jest/globals';
import { IntegrityError, InputError } from '../../src/errors.js';
import { dispositionOf, PausedError, ProblemError, reasonCodeOf } from '../../src/dock/errors.js';

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

  it('a typed local verdict keeps its disposition whatever its cause says: file_changed over a read that found the file gone', () => {
    // The client reports a body whose file vanished as a pause; the pipeline then finds the recording
    // still on the card and closes the upload: that verdict wraps the pause (and its ENOENT) as cause.
    const gone = Object.assign(new Error("ENOENT: no such file or directory, open '/bays/b/DCIM/G1.LRV'"), { code: 'ENOENT' });
    const paused = new PausedError('source file went away during PUT /v1/recordings/x/attachments/0/segments/3', { cause: gone });
    const closed = new InputError('E_FILE_CHANGED', 'companion G1.LRV vanished after it was hashed (while it was sent)', { cause: paused });
    expect(dispositionOf(closed)).toBe('permanent');
    expect(reasonCodeOf(closed)).toBe('file_changed');
    expect(dispositionOf(new IntegrityError('E_SOMETHING', 'bad', { cause: gone }))).toBe('permanent');
    // An untyped read error of a file that is gone, or the pause itself, still waits (undock).
    expect(dispositionOf(gone)).toBe('paused');
    expect(dispositionOf(paused)).toBe('paused');
  });
});
