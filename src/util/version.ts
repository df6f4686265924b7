/**
 * The version of this build, read once from the package's own package.json (found by
 * walking up from this file: dist/ and src/ both sit under the package root, wherever
 * the tarball was installed), so `--version`, `status`, `/metrics` and the first log
 * line can never disagree.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const PACKAGE_NAME = 'bodycam-dock';

function readVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, 'package.json');
    if (existsSync(candidate)) {
      try {
        const pkg = JSON.parse(readFileSync(candidate, 'utf8')) as { name?: string; version?: string };
        if (pkg.name === PACKAGE_NAME && typeof pkg.version === 'string') return pkg.version;
      } catch { /* not ours: keep walking up */ }
    }
    dir = dirname(dir);
  }
  return '0.0.0-unknown';
}

export const VERSION = readVersion();

/** What a log line, a status answer and a metric say about the build. */
export function buildInfo(): { version: string; node: string; platform: string } {
  return { version: VERSION, node: process.version, platform: `${process.platform}-${process.arch}` };
}
