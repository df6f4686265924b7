import { describe, expect, it } from '@jest/globals';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beginMarker, endMarker, generatedBlocks, generatedFiles, syncGenerated } from '../../src/cli/generatedDocs.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

describe('files generated from the schemas', () => {
  it('docs/schemas/*.schema.json and every reference table are up to date (else: npm run schemas)', () => {
    expect(syncGenerated(root)).toEqual([]);
  });

  it('names a stale file, a stale table and a missing block, and --write repairs them', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bodycam-generated-'));
    try {
      for (const file of generatedFiles()) { mkdirSync(join(dir, file.path, '..'), { recursive: true }); writeFileSync(join(dir, file.path), file.text.replace('"object"', '"array"')); }
      const blocks = generatedBlocks();
      const paths = [...new Set(blocks.map((b) => b.path))];
      for (const path of paths) {
        mkdirSync(join(dir, path, '..'), { recursive: true });
        const mine = blocks.filter((b) => b.path === path);
        // The first block stale, any other missing altogether.
        writeFileSync(join(dir, path), `# doc\n${beginMarker(mine[0]!.name)}\n| old |\n${endMarker(mine[0]!.name)}\ntail\n`);
      }
      const stale = syncGenerated(dir);
      for (const file of generatedFiles()) expect(stale).toContain(`${file.path}: out of date`);
      for (const path of paths) expect(stale).toContain(`${path}: table ${blocks.find((b) => b.path === path)!.name} out of date`);
      const missing = blocks.filter((b, i) => blocks.findIndex((o) => o.path === b.path) !== i);
      for (const block of missing) expect(stale).toContain(`${block.path}: has no ${beginMarker(block.name)} ... ${endMarker(block.name)} block`);
      syncGenerated(dir, true);
      expect(syncGenerated(dir).filter((line) => !line.includes('has no'))).toEqual([]);
      expect(readFileSync(join(dir, paths[0]!), 'utf8')).toMatch(/^# doc\n[\s\S]*\ntail\n$/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
