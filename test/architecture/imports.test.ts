import { describe, expect, it } from '@jest/globals';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The import rules of docs/architecture.md, checked over every file of src/: a folder may import
 * only the folders listed for it, and the programs that use the dock or the server from outside
 * (replay, demo) go through their public API (index.ts) only.
 */
const SRC = join(dirname(fileURLToPath(import.meta.url)), '../../src');

/** Shared leaves every folder may use. */
const SHARED = ['errors.ts', 'log.ts', 'util'];
const ALLOWED: Record<string, readonly string[]> = {
  util: [],
  protocol: [],
  media: ['protocol'],
  camera: ['protocol', 'media'],
  dock: ['protocol', 'media'],
  server: ['protocol', 'media'],
  // The fault proxy (used by replay and by tests): a TCP/HTTP library that knows no program.
  faultproxy: [],
  replay: ['protocol', 'media', 'camera', 'dock', 'server', 'faultproxy'],
  // The first run: a server, cameras and a dock on this machine, checked as an auditor would (replay's observer).
  demo: ['protocol', 'media', 'camera', 'dock', 'server', 'replay'],
  cli: ['protocol', 'media', 'camera', 'dock', 'server', 'faultproxy', 'replay', 'demo'],
  // Browser code of the console (tsconfig.browser.json): imports nothing of the project.
  'console-browser': [],
};
/** Folders whose insides are private: from another folder, only their index.ts. */
const PUBLIC_API_ONLY: Record<string, readonly string[]> = { replay: ['dock', 'server'], demo: ['dock', 'server', 'replay'] };

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? filesUnder(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : []));
}

/** Relative module specifiers of a file's static and dynamic imports and re-exports. */
export function importsOf(source: string): string[] {
  const found: string[] = [];
  for (const m of source.matchAll(/(?:^|\n)\s*(?:import|export)\s[^;]*?\sfrom\s+['"]([^'"]+)['"]/g)) found.push(m[1]!);
  for (const m of source.matchAll(/(?:^|\n)\s*import\s+['"]([^'"]+)['"]/g)) found.push(m[1]!);
  for (const m of source.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)) found.push(m[1]!);
  return found.filter((s) => s.startsWith('.'));
}

/** A source that starts ffmpeg/ffprobe itself (only src/media may: it alone knows their arguments). */
export function runsMediaTool(source: string): boolean {
  return /\brunTool\s*\(/.test(source) || /\b(?:spawn|spawnSync|execFile|execFileSync|exec|execSync)\s*\(\s*(?:toolPath\s*\(\s*)?['"`](?:ffmpeg|ffprobe)\b/.test(source);
}

/** 'dock' for src/dock/x.ts, 'errors.ts' for src/errors.ts. */
function folderOf(pathInSrc: string): string {
  return pathInSrc.split('/')[0]!;
}

/**
 * The imports that load a module when this one loads: static ones only (`import type` and `export
 * type` are erased by the compiler; an `import()` runs later, when both modules are initialised).
 */
export function valueImportsOf(source: string): string[] {
  return importsOf(source.replace(/(?:^|\n)\s*(?:import|export)\s+type\s[^;]*?\sfrom\s+['"][^'"]+['"]/g, '\n').replace(/\bimport\(\s*['"][^'"]+['"]\s*\)/g, ''));
}

/**
 * Groups of src/ modules that load each other at run time, directly or around a loop (Tarjan's
 * strongly connected components over the value imports): a module of such a group may run before
 * the one it needs is initialised (ESM hands it an uninitialised binding: a TDZ error at start-up).
 */
function importCycles(): string[][] {
  const graph = new Map<string, string[]>();
  for (const file of filesUnder(SRC)) {
    const from = relative(SRC, file).split('\\').join('/');
    graph.set(from, valueImportsOf(readFileSync(file, 'utf8')).filter((spec) => spec.startsWith('.'))
      .map((spec) => normalize(join(dirname(from), spec)).split('\\').join('/').replace(/\.js$/, '.ts')));
  }
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next); low.set(v, next); next++; stack.push(v); onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!index.has(w)) { visit(w); low.set(v, Math.min(low.get(v)!, low.get(w)!)); } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const group: string[] = [];
    let w: string;
    do { w = stack.pop()!; onStack.delete(w); group.push(w); } while (w !== v);
    if (group.length > 1 || (graph.get(v) ?? []).includes(v)) cycles.push(group.sort());
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return cycles;
}

function violations(): string[] {
  const out: string[] = [];
  for (const file of filesUnder(SRC)) {
    const from = relative(SRC, file).split('\\').join('/');
    const fromFolder = folderOf(from);
    for (const spec of importsOf(readFileSync(file, 'utf8'))) {
      const target = normalize(join(dirname(from), spec)).split('\\').join('/').replace(/\.js$/, '.ts');
      if (target.startsWith('..')) { out.push(`${from}: ${spec} leaves src/`); continue; }
      const toFolder = folderOf(target);
      if (toFolder === fromFolder || SHARED.includes(toFolder)) continue;
      if (!from.includes('/')) continue; // src/errors.ts, src/log.ts: checked by their own rule below
      if (!(ALLOWED[fromFolder] ?? []).includes(toFolder)) { out.push(`${from}: imports ${target} (${fromFolder} may not import ${toFolder})`); continue; }
      if ((PUBLIC_API_ONLY[fromFolder] ?? []).includes(toFolder) && target !== `${toFolder}/index.ts`) out.push(`${from}: imports ${target} (only ${toFolder}/index.ts)`);
    }
  }
  return out;
}

describe('import rules (docs/architecture.md)', () => {
  it('every import in src/ keeps to them', () => {
    expect(violations()).toEqual([]);
  });

  it('every folder of src/ has a rule, and the shared leaves import no folder', () => {
    const folders = readdirSync(SRC, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
    for (const folder of folders) expect([folder, SHARED.includes(folder) || folder in ALLOWED]).toEqual([folder, true]);
    for (const leaf of ['errors.ts', 'log.ts']) {
      const targets = importsOf(readFileSync(join(SRC, leaf), 'utf8')).map((s) => normalize(s).replace(/^\.\//, ''));
      expect([leaf, targets.filter((t) => t.includes('/'))]).toEqual([leaf, []]);
    }
    const utilImports = filesUnder(join(SRC, 'util')).flatMap((f) => importsOf(readFileSync(f, 'utf8')).filter((s) => s.startsWith('../') && !/^\.\.\/(errors|log)\.js$/.test(s)));
    expect(utilImports).toEqual([]);
  });

  it('no module of src/ loads itself back at run time (no import cycle, type-only imports aside)', () => {
    expect(importCycles()).toEqual([]);
    expect(valueImportsOf("import type { A } from './a.js';\nimport { b } from './b.js';\nexport type { C } from './c.js';\nexport { d } from './d.js';\nconst e = await import('./e.js');").sort()).toEqual(['./b.js', './d.js']);
  });

  it('only src/media runs ffmpeg or ffprobe: nothing else in src/ or test/helpers/ calls runTool or spawns them', () => {
    const helpers = join(SRC, '../test/helpers');
    const files = [...filesUnder(SRC).filter((f) => !relative(SRC, f).startsWith('media/')), ...filesUnder(helpers)];
    expect(files.length).toBeGreaterThan(100);
    const offenders = files.filter((f) => runsMediaTool(readFileSync(f, 'utf8'))).map((f) => relative(join(SRC, '..'), f));
    expect(offenders).toEqual([]);
  });

  it('the parser finds the imports it must (so the rule check can fail)', () => {
    expect(['runTool(\'ffmpeg\', args)', 'spawn(\'ffprobe\', [])', 'execFile("ffmpeg", a)', 'spawn(toolPath(\'ffmpeg\'), a)'].map(runsMediaTool)).toEqual([true, true, true, true]);
    expect(['import type { RunOptions } from \'../media/run.js\';', 'checks.ffmpeg', 'toolVersion(\'ffmpeg\')'].map(runsMediaTool)).toEqual([false, false, false]);
    const sample = [
      "import { a } from '../dock/agent.js';",
      "import type { B } from './b.js';",
      "export { c } from '../server/store.js';",
      "export * from './d.js';",
      "import './side-effect.js';",
      "const m = await import('../camera/index.js');",
      "import {\n  e,\n  f,\n} from '../media/run.js';",
      "import fs from 'node:fs';",
    ].join('\n');
    expect(importsOf(sample).sort()).toEqual(['../camera/index.js', '../dock/agent.js', '../media/run.js', '../server/store.js', './b.js', './d.js', './side-effect.js'].sort());
  });
});
