// npm's prepare: build dist/ in a development checkout (npm ci / npm install with the dev
// dependencies). Skipped when TypeScript is not installed (npm ci --omit=dev): a production
// install uses the `npm pack` tarball, which carries dist/ (docs/operations.md), and `npm pack`
// builds in prepack, so it is skipped here too rather than built twice.
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

if (process.env.npm_command === 'pack' || process.env.npm_command === 'publish') process.exit(0);
if (!existsSync(new URL('../node_modules/typescript/package.json', import.meta.url))) {
  const built = existsSync(new URL('../dist/cli/main.js', import.meta.url));
  process.stderr.write(built ? '' : 'bodycam-dock: dev dependencies omitted, dist/ not built: for production install the npm pack tarball (docs/operations.md)\n');
  process.exit(0);
}
const result = spawnSync(process.platform === 'win32' ? 'npm.cmd' : 'npm', ['run', 'build'], { stdio: 'inherit' });
process.exit(result.status ?? 1);
