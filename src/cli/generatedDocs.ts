/**
 * Every file and docs table generated from a schema, in one list: the JSON Schema files of
 * docs/schemas/ and the reference tables in README.md and docs/*.md. `npm run schemas` writes
 * them (scripts/schemas.mjs); a test fails when one is out of date, so the published contract
 * cannot drift from what the code accepts.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { configReferenceMarkdown, dockConfigJsonSchema } from '../dock/config.js';
import { serverConfigJsonSchema, serverConfigReferenceMarkdown } from '../server/config.js';
import { manifestSchema, receiptSchema } from '../protocol/schema.js';
import { scenarioSchema } from '../replay/index.js';
import { toolsReferenceMarkdown } from './server/toolSettings.js';
import { schemaFileText, schemaReferenceMarkdown } from '../util/jsonSchema.js';

/** A whole file, e.g. docs/schemas/dock-config.schema.json. */
export interface GeneratedFile { path: string; text: string }
/** A block inside a markdown file, between its BEGIN and END markers. */
export interface GeneratedBlock { path: string; name: string; text: string }

export const REGENERATE = 'npm run schemas';

export function beginMarker(name: string): string {
  return `<!-- BEGIN generated:${name} (${REGENERATE}; do not edit) -->`;
}
export function endMarker(name: string): string {
  return `<!-- END generated:${name} -->`;
}

export function generatedFiles(): GeneratedFile[] {
  return [
    { path: 'docs/schemas/dock-config.schema.json', text: schemaFileText(dockConfigJsonSchema) },
    { path: 'docs/schemas/server-config.schema.json', text: schemaFileText(serverConfigJsonSchema) },
    { path: 'docs/schemas/scenario.schema.json', text: schemaFileText(scenarioSchema) },
    // The protocol's signed documents keep their published paths (docs/protocol.md and docks cite them).
    { path: 'docs/manifest.schema.json', text: schemaFileText(manifestSchema) },
    { path: 'docs/receipt.schema.json', text: schemaFileText(receiptSchema) },
  ];
}

export function generatedBlocks(): GeneratedBlock[] {
  const dock = configReferenceMarkdown();
  return [
    { path: 'README.md', name: 'dock-config', text: dock },
    { path: 'docs/dock.md', name: 'dock-config', text: dock },
    { path: 'README.md', name: 'server-config', text: serverConfigReferenceMarkdown() },
    { path: 'README.md', name: 'server-tools', text: toolsReferenceMarkdown() },
    { path: 'README.md', name: 'scenario', text: schemaReferenceMarkdown(scenarioSchema) },
  ];
}

/** `text` with the block replaced; undefined when the file lacks its markers. */
export function withBlock(text: string, block: GeneratedBlock): string | undefined {
  const begin = beginMarker(block.name);
  const end = endMarker(block.name);
  const start = text.indexOf(begin);
  const stop = text.indexOf(end);
  if (start < 0 || stop < start) return undefined;
  return text.slice(0, start + begin.length) + '\n' + block.text + '\n' + text.slice(stop);
}

function readOrEmpty(path: string): string | undefined {
  try { return readFileSync(path, 'utf8'); } catch { return undefined; }
}

/**
 * What is out of date under `root`, each "path: why"; empty when everything matches. With
 * `write`, brings each file up to date instead and returns what it changed.
 */
export function syncGenerated(root: string, write = false): string[] {
  const out: string[] = [];
  for (const file of generatedFiles()) {
    if (readOrEmpty(join(root, file.path)) === file.text) continue;
    if (write) writeFileSync(join(root, file.path), file.text);
    out.push(`${file.path}: ${write ? 'written' : 'out of date'}`);
  }
  const texts = new Map<string, string>();
  for (const block of generatedBlocks()) {
    const before = texts.get(block.path) ?? readOrEmpty(join(root, block.path)) ?? '';
    const after = withBlock(before, block);
    if (after === undefined) { out.push(`${block.path}: has no ${beginMarker(block.name)} ... ${endMarker(block.name)} block`); continue; }
    texts.set(block.path, after);
    if (after !== before) out.push(`${block.path}: table ${block.name} ${write ? 'written' : 'out of date'}`);
  }
  if (write) {
    for (const [path, text] of texts) if (readOrEmpty(join(root, path)) !== text) writeFileSync(join(root, path), text);
  }
  return out;
}
