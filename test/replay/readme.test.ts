import { describe, it, expect } from '@jest/globals';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join, resolve } from 'node:path';
import { configReferenceMarkdown, loadDockConfig } from '../../src/dock/config.js';
import { makeTempDir } from '../helpers/tmp.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const BEGIN = '<!-- BEGIN generated:dock-config (npm run schemas; do not edit) -->';
const END = '<!-- END generated:dock-config -->';

describe('README', () => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');

  it.each(['README.md', 'docs/dock.md'])('%s holds the configuration reference exactly as the dock config schema generates it', (file) => {
    const text = readFileSync(join(root, file), 'utf8');
    const start = text.indexOf(BEGIN);
    const end = text.indexOf(END);
    expect(start).toBeGreaterThan(0);
    expect(end).toBeGreaterThan(start);
    // On failure: npm run schemas
    expect(text.slice(start + BEGIN.length, end).trim()).toBe(configReferenceMarkdown().trim());
    // --config / BODYCAM_CONFIG are part of the reference.
    expect(text.slice(start, end)).toContain('| (config file) | --config | BODYCAM_CONFIG |');
  });

  it('keeps the two commands of the first run', () => {
    expect(readme).toContain('npm ci && npm start');
    expect(readme).toContain('npm test');
  });

  it('has every relative link in README.md and docs/*.md lead to a file that exists', () => {
    const files = ['README.md', ...readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
    const broken: string[] = [];
    let checked = 0;
    for (const file of files) {
      const text = readFileSync(join(root, file), 'utf8').replace(/```[\s\S]*?```/g, '');
      for (const match of text.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
        const target = match[1]!;
        if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith('#')) continue; // a URL or an anchor in the same page
        const path = decodeURIComponent(target.split('#')[0]!);
        checked += 1;
        if (!existsSync(resolve(dirname(join(root, file)), path))) broken.push(`${file}: ${target}`);
      }
    }
    expect(checked).toBeGreaterThan(3);
    expect(broken).toEqual([]);
  });

  it('ships an example dock config that the config schema accepts', () => {
    const dir = makeTempDir();
    try {
      const example = JSON.parse(readFileSync(join(root, 'scripts/dock.example.json'), 'utf8')) as Record<string, unknown>;
      const token = join(dir.path, 'dock.token');
      writeFileSync(token, 'a-long-random-token\n', { mode: 0o600 });
      const file = join(dir.path, 'dock.json');
      writeFileSync(file, JSON.stringify({ ...example, tokenFile: token }));
      const config = loadDockConfig({ configFile: file, env: {} });
      expect(config.maxRate).toBe(25_000_000 / 8);
      expect(config.wipeAfterIngest).toBe(true);
      expect(config.token).toBe('a-long-random-token');
    } finally {
      dir.cleanup();
    }
  });
});
