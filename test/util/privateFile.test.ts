/**
 * The one rule for secret and authorising files (src/util/privateFile.ts), on real files: the mode
 * masks of each kind, another user's file, a FIFO (refused without hanging the open), a folder, a
 * symlink judged by its target, and the stable codes (a caller's own code for mode refusals).
 */
import { afterAll, describe, it, expect } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PrivateFileError, readPrivateFile } from '../../src/util/privateFile.js';
import { makeTempDir } from '../helpers/tmp.js';

describe('readPrivateFile', () => {
  const tmp = makeTempDir('bodycam-private-');
  afterAll(() => tmp.cleanup());
  const file = (name: string, mode: number): string => {
    const path = join(tmp.path, name);
    writeFileSync(path, 'content\n', { mode });
    chmodSync(path, mode);
    return path;
  };
  const refusal = (path: string, kind: 'secret' | 'authorising', code?: string): PrivateFileError => {
    try {
      readPrivateFile(path, { kind, label: 'the file', ...(code ? { code } : {}) });
    } catch (error) {
      expect(error).toBeInstanceOf(PrivateFileError);
      return error as PrivateFileError;
    }
    throw new Error(`${path} was accepted`);
  };

  it('a secret: any group/other bit is refused; an authorising file: only group/other write', () => {
    for (const mode of [0o640, 0o604, 0o620, 0o602, 0o644, 0o666]) {
      const error = refusal(file(`s-${mode.toString(8)}`, mode), 'secret');
      expect(error).toMatchObject({ code: 'E_FILE_NOT_PRIVATE', problem: 'mode', mode });
      expect(error.message).toMatch(new RegExp(`is readable or writable by group or others \\(mode 0${mode.toString(8)}\\): run \`chmod 600 .*\`$`));
    }
    for (const mode of [0o600, 0o400]) expect(readPrivateFile(file(`ok-${mode.toString(8)}`, mode), { kind: 'secret', label: 'x' }).text).toBe('content\n');
    for (const mode of [0o644, 0o640, 0o604, 0o600]) expect(readPrivateFile(file(`a-${mode.toString(8)}`, mode), { kind: 'authorising', label: 'x' }).text).toBe('content\n');
    for (const mode of [0o664, 0o646, 0o620]) expect(refusal(file(`aw-${mode.toString(8)}`, mode), 'authorising', 'E_MINE')).toMatchObject({ code: 'E_MINE', problem: 'mode' });
  });

  it('another user\'s file is refused even at 0600 (its owner can rewrite it)', () => {
    if (process.getuid?.() !== 0) return; // only root can give a file away
    const theirs = file('theirs', 0o600);
    chownSync(theirs, 65534, 65534);
    const error = refusal(theirs, 'secret');
    expect(error).toMatchObject({ code: 'E_FILE_OWNER', problem: 'owner' });
    expect(error.message).toContain('belongs to uid 65534');
  });

  it('a symlink is judged by the file it opens; a FIFO and a folder are refused at once; a missing file keeps its errno as cause', () => {
    const mine = file('mine', 0o600);
    const open = file('open', 0o666);
    symlinkSync(mine, join(tmp.path, 'to-mine'));
    symlinkSync(open, join(tmp.path, 'to-open'));
    expect(readPrivateFile(join(tmp.path, 'to-mine'), { kind: 'secret', label: 'x' }).text).toBe('content\n');
    expect(refusal(join(tmp.path, 'to-open'), 'secret')).toMatchObject({ problem: 'mode', mode: 0o666 });
    const fifo = join(tmp.path, 'fifo');
    execFileSync('mkfifo', ['-m', '0600', fifo]);
    expect(refusal(fifo, 'secret')).toMatchObject({ code: 'E_FILE_NOT_REGULAR', problem: 'not_regular' });
    mkdirSync(join(tmp.path, 'dir'), { mode: 0o700 });
    expect(refusal(join(tmp.path, 'dir'), 'secret').message).toContain('is a folder, not a file');
    const missing = refusal(join(tmp.path, 'missing'), 'secret');
    expect(missing).toMatchObject({ code: 'E_FILE_UNREADABLE', problem: 'unreadable' });
    expect((missing.cause as NodeJS.ErrnoException).code).toBe('ENOENT');
  });
});
