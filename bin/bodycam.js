#!/usr/bin/env node
// The compiled CLI lives in dist/ (built by `npm ci` through the prepare script; inside the npm pack tarball).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const entry = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write("bodycam: the CLI is not built yet: run `npm run build` in a checkout (npm ci does it), or install the npm pack tarball (docs/operations.md)\n");
  process.exit(1);
}
await import(entry.href);
