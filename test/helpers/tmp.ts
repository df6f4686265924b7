/** Temporary folders that are removed after the test, whatever happens. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export function makeTempDir(prefix = 'bodycam-test-'): { path: string; cleanup: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}

/** Run `body` with a fresh temporary folder, removed afterwards whatever happens (the try/finally every test wrote). */
export async function withTempDir<T>(prefix: string, body: (path: string) => Promise<T> | T): Promise<T> {
  const dir = makeTempDir(prefix);
  try {
    return await body(dir.path);
  } finally {
    dir.cleanup();
  }
}

/**
 * Open `thing` (a store, a log: anything with open/close), run `body` with it, and close it
 * whatever happens (a failed open too). The first failure is the one reported: a close that fails
 * after it is not.
 */
export async function withOpen<S extends { open(): Promise<unknown>; close(): Promise<unknown> }, T>(thing: S, body: (opened: S) => Promise<T> | T): Promise<T> {
  let result: T;
  try {
    await thing.open();
    result = await body(thing);
  } catch (error) {
    await thing.close().catch(() => {});
    throw error;
  }
  await thing.close();
  return result;
}
