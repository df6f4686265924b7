/**
 * jest globalSetup: a folder for this run's engines (test/helpers/engines.ts). Nothing is started
 * here: the first test that needs engines starts them, so a run of unrelated files pays nothing.
 * The folder is 0711 because the PostgreSQL cluster inside runs as the `postgres` OS user.
 * (jest loads this file as CommonJS, outside the test module map: it imports nothing of ours.)
 */
import { chmodSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export default function globalSetup(): void {
  if (process.env.S3_ENDPOINT && process.env.DATABASE_URL) return; // engines given from outside
  const dir = mkdtempSync(join(tmpdir(), 'bodycam-engines-'));
  chmodSync(dir, 0o711);
  process.env.BODYCAM_ENGINES_RUN_DIR = dir; // RUN_DIR_VAR in test/helpers/engines.ts
}
