#!/usr/bin/env node
// Writes (or, with --check, checks) every file generated from a schema: docs/schemas/*.schema.json
// and the reference tables in README.md and docs/*.md (the list: src/cli/generatedDocs.ts).
//   npm run schemas                    build, then write them
//   node scripts/schemas.mjs --check   exit 1 when one is out of date (after `npm run build`)
import { fileURLToPath } from 'node:url';

let syncGenerated;
try {
  ({ syncGenerated } = await import('../dist/cli/generatedDocs.js'));
} catch (error) {
  console.error(`schemas: cannot load dist/cli/generatedDocs.js (${error.message}): run \`npm run build\` first`);
  process.exit(2);
}
const check = process.argv.includes('--check');
const root = fileURLToPath(new URL('..', import.meta.url));
const changes = syncGenerated(root, !check);
for (const line of changes) console.log(`schemas: ${line}`);
if (check && changes.length) {
  console.error('schemas: out of date: run `npm run schemas`');
  process.exit(1);
}
if (!changes.length) console.log('schemas: every generated file matches its schema');
