// The console's stylesheet is not TypeScript: copy it beside the compiled routes (dist/server/console/assets).
import { cpSync, mkdirSync } from 'node:fs';
mkdirSync('dist/server/console/assets', { recursive: true });
cpSync('src/server/console/assets', 'dist/server/console/assets', { recursive: true });
