/**
 * The check every server tool that writes into `--data-dir` makes first: the folder must be one a
 * server made (its recordings/, custody log, key or users file is there). A typo must not become a new
 * folder with one file in it and a "done" that a running server never sees.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { UsageError } from '../../errors.js';

/** What a server leaves in its data dir (a db deployment's too: the custody log, the key, the users). */
const SERVER_MADE = ['recordings', 'custody.log', 'server-key.pem', 'server-key.pub.pem', 'console-users.json'];

export function requireServerDataDir(dataDir: string): void {
  let isDir = false;
  try { isDir = statSync(dataDir).isDirectory(); } catch { /* below */ }
  if (!isDir || !SERVER_MADE.some((name) => existsSync(join(dataDir, name)))) {
    throw new UsageError(`--data-dir ${dataDir} is not a server data dir (${isDir ? `none of ${SERVER_MADE.join(', ')} in it` : existsSync(dataDir) ? 'not a folder' : 'no such folder'}): give the folder \`bodycam server --data-dir\` runs with`, { code: 'E_NOT_DATA_DIR' });
  }
}
