// prepack / postpack: the package carries the exact dependency tree of package-lock.json as
// npm-shrinkwrap.json, so `npm ci --omit=dev` in the unpacked package installs the very versions
// the tests ran with (and works offline from npm's cache). `write` copies it in, `remove` takes it out again.
import { copyFileSync, rmSync } from 'node:fs';

const root = new URL('../', import.meta.url);
if (process.argv[2] === 'write') copyFileSync(new URL('package-lock.json', root), new URL('npm-shrinkwrap.json', root));
else if (process.argv[2] === 'remove') rmSync(new URL('npm-shrinkwrap.json', root), { force: true });
else { process.stderr.write('usage: node scripts/pack-lock.mjs write|remove\n'); process.exit(2); }
