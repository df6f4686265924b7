/**
 * The production install as docs/operations.md gives it, in a temp folder and offline (npm's
 * cache only, no network): `npm pack` of the built package (compiled JS, the units, the example
 * config and npm-shrinkwrap.json from the lock inside: prepack), the tarball unpacked where
 * /opt/bodycam-dock would be, `npm ci --omit=dev` there (no TypeScript, no dev packages: the
 * prepare script steps aside), and the installed `bodycam --version`. Install scripts are off here
 * because better-sqlite3's would download its prebuilt binary; `bodycam --version` needs none.
 */
import { describe, expect, it, afterAll } from '@jest/globals';
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { makeTempDir } from '../helpers/tmp.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string; files: string[] };
const npm = (args: string[], cwd: string): string => execFileSync('npm', [...args, '--offline', '--no-audit', '--no-fund', '--ignore-scripts'], { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, npm_config_update_notifier: 'false' }, timeout: 300_000 });

describe('production install (npm pack → npm ci --omit=dev)', () => {
  const tmp = makeTempDir('bodycam-install-');
  afterAll(() => tmp.cleanup());

  it('installs from the tarball without dev packages and runs bodycam --version', () => {
    // The package as prepack leaves it (dist/ is built by `npm test` before jest runs).
    const stage = join(tmp.path, 'stage');
    mkdirSync(stage);
    for (const entry of ['package.json', 'package-lock.json', 'README.md', 'bin', 'dist', 'docs', 'scripts']) cpSync(join(ROOT, entry), join(stage, entry), { recursive: true });
    execFileSync(process.execPath, ['scripts/pack-lock.mjs', 'write'], { cwd: stage });
    npm(['pack', '--pack-destination', tmp.path], stage);
    const tarball = readdirSync(tmp.path).find((f) => f.endsWith('.tgz'))!;
    expect(tarball).toBe(`bodycam-dock-${pkg.version}.tgz`);
    const listing = execFileSync('tar', ['tzf', join(tmp.path, tarball)], { encoding: 'utf8' }).split('\n');
    for (const file of ['package/dist/cli/main.js', 'package/bin/bodycam.js', 'package/npm-shrinkwrap.json', 'package/scripts/bodycam-dock.service', 'package/scripts/bodycam-server.service', 'package/scripts/dock.example.json', 'package/docs/operations.md']) {
      expect([file, listing.includes(file)]).toEqual([file, true]);
    }
    expect(listing.some((f) => f.startsWith('package/src/') || f.startsWith('package/test/'))).toBe(false);

    const opt = join(tmp.path, 'opt', 'bodycam-dock');
    mkdirSync(opt, { recursive: true });
    execFileSync('tar', ['xzf', join(tmp.path, tarball), '-C', opt, '--strip-components=1']);
    npm(['ci', '--omit=dev'], opt);
    expect(existsSync(join(opt, 'node_modules', 'typescript'))).toBe(false);
    expect(existsSync(join(opt, 'node_modules', 'fastify'))).toBe(true);
    // npm ci runs prepare: without TypeScript and with dist/ present it steps aside, silently.
    const prepare = spawnSync(process.execPath, ['scripts/prepare.mjs'], { cwd: opt, encoding: 'utf8' });
    expect([prepare.status, prepare.stderr]).toEqual([0, '']);
    const version = execFileSync(join(opt, 'bin', 'bodycam.js'), ['--version'], { encoding: 'utf8' });
    expect(version.trim()).toBe(pkg.version);
  });

  it('npm ci --omit=dev in a checkout without dist/ no longer fails: prepare says what to do instead', () => {
    const checkout = join(tmp.path, 'checkout');
    mkdirSync(join(checkout, 'scripts'), { recursive: true });
    cpSync(join(ROOT, 'scripts', 'prepare.mjs'), join(checkout, 'scripts', 'prepare.mjs'));
    const prepare = spawnSync(process.execPath, ['scripts/prepare.mjs'], { cwd: checkout, encoding: 'utf8' });
    expect(prepare.status).toBe(0);
    expect(prepare.stderr).toMatch(/dev dependencies omitted, dist\/ not built: for production install the npm pack tarball/);
  });
});
