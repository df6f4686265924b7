/**
 * What replay looks at to decide an expectation: the server's list of
 * recordings (over HTTP, so it works against any ingest endpoint), the content
 * the server returns, and the dock's own view of each recording.
 */
import { createHash } from 'node:crypto';
import got from 'got';
import { EnvironmentError, UsageError } from '../errors.js';
import type { RecordingListEntry } from '../protocol/types.js';
import type { FixtureRecording } from './fixtures.js';

export interface DockRecordingView {
  fileName: string;
  relPath?: string;
  bay?: string | null;
  sha256?: string | null;
  size?: number;
  state: string;
  reason?: string | null;
  reasonCode?: string | null;
  truncated?: boolean;
}

export class ServerObserver {
  constructor(private readonly endpoint: string, private readonly token: string) {}

  // got rather than fetch: fetch refuses a list of "bad ports" (6000, 6665-6669, ...) a server may use.
  private get(path: string, timeoutMs: number) {
    return got(`${this.endpoint}${path}`, {
      headers: { authorization: `Bearer ${this.token}` },
      retry: { limit: 0 },
      timeout: { request: timeoutMs },
      throwHttpErrors: false,
    });
  }

  /** One look before anything starts, so a wrong endpoint or token fails in one line, not after the timeout. */
  async preflight(tokenSource: string): Promise<void> {
    let status: number;
    try {
      status = (await this.get('/v1/recordings', 10_000)).statusCode;
    } catch (cause) {
      const reason = (cause as { code?: string }).code ?? (cause as Error).message;
      throw new EnvironmentError('E_ENDPOINT_UNREACHABLE', `cannot reach the ingest server at ${this.endpoint} (${reason}): is it running? check --endpoint`, { cause });
    }
    if (status === 401) {
      throw new UsageError(`the ingest server at ${this.endpoint} rejected the token in ${tokenSource}: check --token-file and --dock-id`, { code: 'E_TOKEN_REJECTED' });
    }
    if (status !== 200) {
      throw new EnvironmentError('E_ENDPOINT_REFUSED', `the ingest server at ${this.endpoint} answered GET /v1/recordings with ${status}: is it a bodycam ingest server (protocol v1)?`);
    }
  }

  /** The server's list, or undefined while it cannot be reached (an outage is part of a scenario). */
  async list(): Promise<RecordingListEntry[] | undefined> {
    try {
      const response = await this.get('/v1/recordings', 5000);
      if (response.statusCode !== 200) return undefined;
      return (JSON.parse(response.body) as { recordings?: RecordingListEntry[] }).recordings ?? [];
    } catch {
      return undefined;
    }
  }

  /** SHA-256 and length of what GET /content returns: the byte-exact proof. */
  async contentDigest(id: string): Promise<{ sha256: string; size: number } | { error: string }> {
    const hash = createHash('sha256');
    let size = 0;
    try {
      const stream = got.stream(`${this.endpoint}/v1/recordings/${encodeURIComponent(id)}/content`, {
        headers: { authorization: `Bearer ${this.token}` }, retry: { limit: 0 }, timeout: { request: 60_000 },
      });
      for await (const chunk of stream) {
        hash.update(chunk as Buffer);
        size += (chunk as Buffer).length;
      }
      return { sha256: hash.digest('hex'), size };
    } catch (error) {
      return { error: `GET content failed: ${(error as Error).message}` };
    }
  }

  /** GET /v1/recordings/{id}: state, manifest and receipt. */
  async detail<T>(id: string): Promise<T> {
    const response = await this.get(`/v1/recordings/${encodeURIComponent(id)}`, 10_000);
    if (response.statusCode !== 200) throw new EnvironmentError('E_SERVER_ANSWER', `GET /v1/recordings/${id} answered ${response.statusCode}`);
    return JSON.parse(response.body) as T;
  }
}

/** The server's entry for a fixture recording: same bytes, same name; a complete one wins. */
export function serverEntryFor(recording: FixtureRecording, entries: readonly RecordingListEntry[]): RecordingListEntry | undefined {
  const same = entries.filter((e) => e.sha256 === recording.sha256 && e.size === recording.size && e.fileName === recording.fileName);
  return same.find((e) => e.state === 'complete') ?? same[0];
}

/** The dock's entry for a fixture recording (by hash when the dock knows it, else by name and size). */
export function dockEntryFor(recording: FixtureRecording, entries: readonly DockRecordingView[]): DockRecordingView | undefined {
  const byName = entries.filter((e) => e.fileName === recording.fileName && (e.relPath === undefined || e.relPath === recording.relPath));
  return byName.find((e) => e.sha256 === recording.sha256)
    ?? byName.find((e) => !e.sha256 && (e.size === undefined || e.size === recording.size))
    ?? byName.find((e) => e.size === recording.size);
}
