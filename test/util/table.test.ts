import { describe, expect, it } from '@jest/globals';
import { table } from '../../src/util/table.js';

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
