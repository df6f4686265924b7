// Hash jobs run on the built worker (dist/dock/hashWorker.js, from `npm run build`, which `npm test`
// runs first), as in the dock: without it the TypeScript sources have no worker beside them and
// every in-process suite hashed on the main thread, a path the dock never takes.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { useHashWorkerAt } from '../src/dock/hasher.js';

const built = new URL('../dist/dock/hashWorker.js', import.meta.url);
if (existsSync(fileURLToPath(built))) useHashWorkerAt(built);
else if (process.env.CI) throw new Error('dist/dock/hashWorker.js is missing: run `npm run build` before jest');
