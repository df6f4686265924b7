/**
 * jest globalSetup: names a folder for this run's engines (test/helpers/engines.ts). Nothing is
 * started or made here: the first test that needs engines creates the folder (0711: the PostgreSQL
 * cluster inside runs as the `postgres` OS user) and starts them, so a run of unrelated files pays
 * nothing and a run killed before teardown leaves no empty folder behind.
 * (jest loads this file as CommonJS, outside the test module map: it imports nothing of ours.)
 */
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export default function globalSetup(): void {
  if (process.env.S3_ENDPOINT && process.env.DATABASE_URL) return; // engines given from outside
  // RUN_DIR_VAR in test/helpers/engines.ts
  process.env.BODYCAM_ENGINES_RUN_DIR = join(tmpdir(), `bodycam-engines-${process.pid}-${randomBytes(4).toString('hex')}`);
}
