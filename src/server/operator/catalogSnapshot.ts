/**
 * The catalog's summaries saved at a clean stop (<data dir>/catalog-summaries.jsonl, 0600, written
 * atomically: temp, fsync, rename, fsync dir), so the first page after a start does not read every
 * recording record again (100 000 records: minutes on a loaded machine) but one file of small lines
 * plus the records changed since (RecordingStore.listRecordingsChangedSince). A cache, never a
 * source of truth: a missing, foreign or torn file is ignored and the catalog reads the store.
 * Line 1: { format, savedAt (ms: the catalog was up to date with the store as of then) }; then one
 * RecordingSummary per line.
 */
import { createReadStream } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { createInterface } from 'node:readline';
import type { RecordingSummary } from './catalog.js';

const FORMAT = 'bodycam-catalog-summaries/1';
export const CATALOG_SNAPSHOT = 'catalog-summaries.jsonl';

export async function saveSnapshot(path: string, savedAt: number, summaries: Iterable<RecordingSummary>): Promise<void> {
  const temp = `${path}.tmp-${process.pid}`;
  const handle = await open(temp, 'w', 0o600);
  try {
    let chunk = JSON.stringify({ format: FORMAT, savedAt }) + '\n';
    for (const s of summaries) {
      chunk += JSON.stringify(s) + '\n';
      if (chunk.length > 1 << 20) { await handle.write(chunk); chunk = ''; }
    }
    await handle.write(chunk + JSON.stringify({ end: true }) + '\n');
    await handle.sync();
  } catch (error) {
    await handle.close().catch(() => {});
    await rm(temp, { force: true });
    throw error;
  }
  await handle.close();
  await rename(temp, path);
  const dir = await open(dirname(path), 'r');
  try { await dir.sync(); } finally { await dir.close(); }
}

/** The saved summaries and when, or undefined for a file that is missing, foreign or incomplete. */
export async function loadSnapshot(path: string): Promise<{ savedAt: number; summaries: RecordingSummary[] } | undefined> {
  const input = createReadStream(path, { encoding: 'utf8' });
  const lines = createInterface({ input, crlfDelay: Infinity });
  const summaries: RecordingSummary[] = [];
  let savedAt: number | undefined;
  let ended = false;
  try {
    for await (const line of lines) {
      const value = JSON.parse(line) as Record<string, unknown>;
      if (savedAt === undefined) {
        if (value['format'] !== FORMAT || typeof value['savedAt'] !== 'number') return undefined;
        savedAt = value['savedAt'];
        continue;
      }
      if (value['end'] === true) { ended = true; break; }
      if (typeof value['dockId'] !== 'string' || typeof value['id'] !== 'string' || typeof value['createdAt'] !== 'string') return undefined;
      summaries.push(value as unknown as RecordingSummary);
    }
  } catch {
    return undefined; // ENOENT, or a line that is not JSON: read the store instead
  } finally {
    lines.close();
    input.destroy();
  }
  return ended && savedAt !== undefined ? { savedAt, summaries } : undefined;
}
