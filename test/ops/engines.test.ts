/**
 * `npm ci` on Node 20 prints no EBADENGINE: every package the lock installs accepts the project's
 * own floor (package.json engines.node, 20.19). fastify → light-my-request wants cookie ^2, whose
 * every release says node >= 22; package.json `overrides` pins cookie 1.1.1 (node >= 18) under
 * light-my-request, which has the same stringifySetCookie({name, value}) it calls; the inject tests
 * (test/reliability/faults.test.ts) run through it.
 */
import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const root = new URL('../../', import.meta.url);
// semver comes with npm's own tree (a dependency of several packages here); no types of its own.
const semver = createRequire(new URL('package.json', root))('semver') as {
  minVersion(range: string): { version: string } | null;
  satisfies(version: string, range: string, options?: { includePrerelease?: boolean }): boolean;
};
const pkg = JSON.parse(readFileSync(new URL('package.json', root), 'utf8')) as { engines: { node: string }; overrides: Record<string, unknown> };
const lock = JSON.parse(readFileSync(new URL('package-lock.json', root), 'utf8')) as { packages: Record<string, { version?: string; engines?: { node?: string } | string[] }> };

describe('engines', () => {
  const floor = semver.minVersion(pkg.engines.node)!.version;

  it('every package in the lock accepts the project\'s Node floor', () => {
    const refusing = Object.entries(lock.packages)
      .filter(([path]) => path !== '')
      .map(([path, entry]) => [path, entry.version, !Array.isArray(entry.engines) ? entry.engines?.node : undefined] as const)
      .filter(([, , range]) => range !== undefined && !semver.satisfies(floor, range, { includePrerelease: true }));
    expect(refusing).toEqual([]);
  });

  it('light-my-request resolves the pinned cookie, and it has the function it calls', () => {
    expect(pkg.overrides).toEqual({ 'light-my-request': { cookie: '1.1.1' } });
    const fromLmr = createRequire(createRequire(new URL('package.json', root)).resolve('light-my-request/lib/cookies.js'));
    expect((fromLmr('cookie/package.json') as { version: string }).version).toBe('1.1.1');
    const cookie = fromLmr('cookie') as { stringifySetCookie: (c: { name: string; value: string }) => string };
    expect(cookie.stringifySetCookie({ name: 'a', value: 'b c' })).toBe('a=b%20c');
  });
});
