/**
 * Real engines for the tests that need them (Ceph RGW for S3, PostgreSQL 15): scripts/engines.sh.
 *
 * - S3_ENDPOINT and DATABASE_URL set in the environment: those engines are used as they are.
 * - Otherwise the first test of a jest run that asks starts one cluster for the whole run, in the
 *   run folder jest's globalSetup made (test/engines/globalSetup.ts); `flock` serialises the workers
 *   (the second one waits and reads the same env), globalTeardown stops it. A run that never asks
 *   starts nothing.
 * - A test that takes the object store away starts a gateway of its own on the same cluster
 *   (`gateway(name)`: one more radosgw, ~1-3 s) and stops that one, never the shared endpoint.
 * Engines not installed: the test fails with one line naming the install command, never skips.
 */
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';

const run = promisify(execFile);
export const ENGINES_SCRIPT = resolve(dirname(fileURLToPath(import.meta.url)), '../../scripts/engines.sh');
/** Set by globalSetup: the folder this jest run's shared cluster lives in. */
export const RUN_DIR_VAR = 'BODYCAM_ENGINES_RUN_DIR';

export interface Engines {
  s3Endpoint: string;
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
  databaseUrl: string;
  /** The cluster's folder (undefined for engines given by the environment). */
  dir?: string;
  /**
   * One more radosgw on this cluster, for this test alone (same buckets and users, its own port):
   * `stop()` SIGKILLs it (the object store gone mid-upload), `start()` brings it back on the same port.
   * Only on a cluster this run started (not on engines given by the environment).
   */
  gateway(name: string): Promise<Gateway>;
}

export interface Gateway {
  endpoint: string;
  stop(): Promise<void>;
  start(): Promise<void>;
}

export function parseEnv(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const match = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (match) env[match[1]!] = match[2]!;
  }
  return env;
}

async function script(args: string[], lockFile?: string): Promise<string> {
  const [cmd, argv] = lockFile ? ['flock', ['-o', lockFile, 'bash', ENGINES_SCRIPT, ...args]] : ['bash', [ENGINES_SCRIPT, ...args]];
  try {
    const { stdout } = await run(cmd, argv, { maxBuffer: 1 << 20 });
    return stdout;
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? '';
    throw new Error(`scripts/engines.sh ${args.join(' ')} failed: ${stderr.trim() || String(error)}`);
  }
}

function fromEnv(env: Record<string, string | undefined>, dir: string | undefined): Engines {
  const need = (key: string): string => {
    const value = env[key];
    if (!value) throw new Error(`engines: ${key} missing from the engines' environment`);
    return value;
  };
  return {
    s3Endpoint: need('S3_ENDPOINT'), accessKeyId: need('AWS_ACCESS_KEY_ID'), secretAccessKey: need('AWS_SECRET_ACCESS_KEY'),
    region: env.AWS_REGION ?? 'us-east-1', databaseUrl: need('DATABASE_URL'), ...(dir ? { dir } : {}),
    gateway: async (name) => {
      if (!dir) throw new Error('engines: a gateway of its own needs engines this run started (S3_ENDPOINT is given from outside)');
      const start = async () => parseEnv(await script(['start-rgw', dir, name])).S3_ENDPOINT!;
      const endpoint = await start();
      return { endpoint, start: async () => { await start(); }, stop: async () => { await script(['stop-rgw', dir, name]); } };
    },
  };
}

let shared: Promise<Engines> | undefined;

/** The engines of this jest run (started on first use). */
export function engines(): Promise<Engines> {
  if (process.env.S3_ENDPOINT && process.env.DATABASE_URL) return Promise.resolve(fromEnv(process.env, undefined));
  shared ??= startShared();
  return shared;
}

async function startShared(): Promise<Engines> {
  if (!(existsSync('/usr/bin/radosgw') && existsSync('/usr/bin/ceph-mon') && existsSync('/usr/lib/postgresql/15/bin/initdb'))) {
    throw new Error('engines (Ceph RGW, PostgreSQL 15) are not installed: run `scripts/engines.sh install`');
  }
  let runDir = process.env[RUN_DIR_VAR];
  if (runDir) {
    mkdirSync(runDir, { recursive: true }); // both workers may get here: recursive is a no-op for the second
  } else { // run without the globalSetup (another runner): a folder of its own, left for the OS
    runDir = mkdtempSync(join(tmpdir(), 'bodycam-engines-'));
  }
  chmodSync(runDir, 0o711);
  const dir = join(runDir, 'shared');
  return fromEnv(parseEnv(await script(['up', dir], join(runDir, 'lock'))), dir);
}

/** A bucket name no other test file (or earlier run on the same engines) uses. */
export function freshBucket(label: string): string {
  const clean = label.toLowerCase().replace(/[^a-z0-9-]/g, '-').slice(0, 30).replace(/-+$/, '');
  return `t-${clean}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
}
