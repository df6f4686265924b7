import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { table } from '../../src/util/table.js';
import { visible } from '../../src/util/visible.js';
import { say } from '../../src/cli/output.js';

/** The one table printer of the CLI, replay's report and the demo's summary. */
describe('table', () => {
  const rows = [['KEY', 'VALUE'], ['a', 'long value'], ['longer key', '']];

  it('pads each column to its widest cell, two spaces apart, trims trailing blanks, ends with a newline', () => {
    expect(table(rows)).toBe('KEY         VALUE\na           long value\nlonger key\n');
  });

  it('indents every line, caps column widths without cutting cells, and rules the header', () => {
    expect(table(rows, { indent: '  ' })).toBe('  KEY         VALUE\n  a           long value\n  longer key\n');
    expect(table([['h', 'x'], ['abcdef', 'y']], { maxColumnWidth: 3, headerRule: true })).toBe('h    x\n---  -\nabcdef  y\n');
  });

  it('a short row leaves its missing cells empty', () => {
    expect(table([['A', 'B', 'C'], ['1']])).toBe('A  B  C\n1\n');
  });
});

/** Card text in a table or a line is shown, never obeyed by the terminal (ATTACK-s5 A9). */
describe('visible card text', () => {
  const hostile = 'ok\u001b[2K\u001b[1A\u001b]0;PWNED\u0007\rHELD_EVERYTHING\u202Egpj.mp4\u009b';

  it('a table cell with escape sequences, CR, a newline or a direction override prints as visible code points on its own row', () => {
    const out = table([['FILE', 'STATE'], [hostile, 'missing'], ['a\nb', 'held']]);
    expect(out).not.toMatch(/[\u0000-\u0009\u000B-\u001F\u007F-\u009F\u202A-\u202E]/);
    expect(out.split('\n')).toHaveLength(4);
    expect(out).toContain('ok⟨U+001B⟩[2K⟨U+001B⟩[1A⟨U+001B⟩]0;PWNED⟨U+0007⟩⟨U+000D⟩HELD_EVERYTHING⟨U+202E⟩gpj.mp4⟨U+009B⟩  missing');
    expect(out).toContain('a⟨U+000A⟩b');
  });

  it('any string: a table row is one line without control characters, and plain text is unchanged', () => {
    fc.assert(fc.property(fc.array(fc.string({ unit: 'binary' }), { minLength: 1, maxLength: 4 }), (cells) => {
      const out = table([cells.map(() => 'H'), cells]);
      expect(out.split('\n')).toHaveLength(3);
      expect(out).not.toMatch(/[\u0000-\u0009\u000B-\u001F\u007F-\u009F\u061C\u200B-\u200F\u202A-\u202E\u2060-\u2069\uFEFF]/);
    }));
    fc.assert(fc.property(fc.stringMatching(/^[ -~]*$/), (text) => { expect(visible(text)).toBe(text); }));
  });

  it('a line for a person keeps its line breaks and tabs and shows every other control character', () => {
    expect(visible('one\ttwo\nthree\u001b[1A')).toBe('one\ttwo\nthree⟨U+001B⟩[1A');
  });

  it('say() writes report text through the same rule (status, check, quarantine, dry run, server tools)', () => {
    const written: string[] = [];
    const original = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((chunk: string) => { written.push(chunk); return true; }) as typeof process.stdout.write;
    try { say(`path         ${hostile}\n`); } finally { process.stdout.write = original; }
    expect(written.join('')).toBe('path         ok⟨U+001B⟩[2K⟨U+001B⟩[1A⟨U+001B⟩]0;PWNED⟨U+0007⟩⟨U+000D⟩HELD_EVERYTHING⟨U+202E⟩gpj.mp4⟨U+009B⟩\n');
  });
});
