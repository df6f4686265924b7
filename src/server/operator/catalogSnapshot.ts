/**
 * The catalog's summaries saved at a clean stop and every few minutes while they change
 * (<data dir>/catalog-summaries.jsonl, 0600, written atomically: temp, fsync, rename, fsync dir),
 * so the first page after a start does not read every recording record again (100 000 records:
 * minutes on a loaded machine) but one file of small lines plus the records changed since
 * (RecordingStore.listRecordingsChangedSince). A cache, never a source of truth: a missing, torn
 * or foreign file is ignored and the catalog reads the store. Foreign: saved for another backend
 * (`backend`: the data dir's recordings folder by device and inode, or the database by host, port
 * and name), or further along the custody chain than the backend now is (`chain`: its newest
 * checkpoint then; a backend restored from an older backup, or another chain), or in the future.
 * Line 1: { format, savedAt (ms: the catalog was up to date with the store as of then), backend?,
 * chain? }; then one RecordingSummary per line; then { end: true }.
 * A first build that reads every record saves its progress now and then in the same form with the
 * partial format (savedAt: when that build began): a start after an unclean stop mid-build reads only
 * the records it holds no summary of and those changed since, not all of them again. A build that
 * does not know the partial format ignores such a file (another format) and reads every record.
 */
import { createReadStream } from 'node:fs';
import { lstat, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { renameIntoPlace, writeTempFile } from '../../util/atomicFile.js';
import type { RecordingSummary } from './catalog.js';

const FORMAT = 'bodycam-catalog-summaries/2';
const PARTIAL_FORMAT = 'bodycam-catalog-summaries/2-partial';
export const CATALOG_SNAPSHOT = 'catalog-summaries.jsonl';

export interface ChainPosition { seq: number; hash: string }
export interface SnapshotHeader {
  savedAt: number; backend?: string; chain?: ChainPosition;
  /** An interrupted first build's: the records it holds no summary of are still to be read. */
  partial?: boolean;
}
export interface Snapshot extends SnapshotHeader { summaries: RecordingSummary[] }

/** The embedded backend's identity: its recordings folder (a copied data dir or a file from another is another). */
export async function embeddedBackendId(dataDir: string): Promise<string> {
  const info = await lstat(join(dataDir, 'recordings'), { bigint: true });
  return `embedded:${info.dev}:${info.ino}`;
}

/** A database's identity: host, port and name (never the credentials). */
export function databaseBackendId(url: string): string {
  try {
    const u = new URL(url);
    return `postgres:${u.hostname}:${u.port}:${u.searchParams.get('host') ?? ''}:${decodeURIComponent(u.pathname)}`;
  } catch {
    return 'postgres:?';
  }
}

export async function saveSnapshot(path: string, header: SnapshotHeader, summaries: Iterable<RecordingSummary>): Promise<void> {
  const temp = `${path}.tmp-${process.pid}`;
  // Only the process that holds the data dir saves here: a file of that name is a crashed run's leftover.
  await rm(temp, { force: true });
  await writeTempFile(temp, async (handle) => {
    const { partial, ...rest } = header;
    let chunk = JSON.stringify({ format: partial ? PARTIAL_FORMAT : FORMAT, ...rest }) + '\n';
    for (const s of summaries) {
      chunk += JSON.stringify(s) + '\n';
      if (chunk.length > 1 << 20) { await handle.write(chunk); chunk = ''; }
    }
    await handle.write(chunk + JSON.stringify({ end: true }) + '\n');
  }, 0o600);
  await renameIntoPlace(temp, path);
}

/** The saved summaries and their header, or undefined for a file that is missing, of another format or incomplete. */
export async function loadSnapshot(path: string): Promise<Snapshot | undefined> {
  const input = createReadStream(path, { encoding: 'utf8' });
  const lines = createInterface({ input, crlfDelay: Infinity });
  const summaries: RecordingSummary[] = [];
  let header: SnapshotHeader | undefined;
  let ended = false;
  try {
    for await (const line of lines) {
      const value = JSON.parse(line) as Record<string, unknown>;
      if (header === undefined) {
        if ((value['format'] !== FORMAT && value['format'] !== PARTIAL_FORMAT) || typeof value['savedAt'] !== 'number') return undefined;
        const chain = value['chain'] as Record<string, unknown> | undefined;
        if (chain !== undefined && (typeof chain !== 'object' || chain === null || typeof chain['seq'] !== 'number' || typeof chain['hash'] !== 'string')) return undefined;
        if (value['backend'] !== undefined && typeof value['backend'] !== 'string') return undefined;
        header = { savedAt: value['savedAt'], ...(value['format'] === PARTIAL_FORMAT ? { partial: true } : {}), ...(typeof value['backend'] === 'string' ? { backend: value['backend'] } : {}), ...(chain ? { chain: { seq: chain['seq'] as number, hash: chain['hash'] as string } } : {}) };
        continue;
      }
      if (value['end'] === true) { ended = true; break; }
      if (!isSummary(value)) return undefined;
      summaries.push(value as unknown as RecordingSummary);
    }
  } catch {
    return undefined; // ENOENT, or a line that is not JSON: read the store instead
  } finally {
    lines.close();
    input.destroy();
  }
  return ended && header !== undefined ? { ...header, summaries } : undefined;
}

function isSummary(v: Record<string, unknown>): boolean {
  const str = (k: string) => typeof v[k] === 'string';
  const num = (k: string) => typeof v[k] === 'number' && Number.isFinite(v[k]);
  return str('dockId') && str('id') && str('deviceSerial') && str('fileName') && str('sha256') && str('createdAt') && str('integrity')
    && (v['state'] === 'receiving' || v['state'] === 'complete') && num('size') && num('segmentCount') && num('segmentsReceived')
    && (v['seq'] === undefined || (Number.isSafeInteger(v['seq']) && (v['seq'] as number) >= 0));
}
