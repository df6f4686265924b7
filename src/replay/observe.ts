/**
 * What replay looks at to decide an expectation: the server's list of
 * recordings (over HTTP, so it works against any ingest endpoint), the content
 * the server returns, and the dock's own view of each recording.
 */
import { createHash } from 'node:crypto';
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
  truncated?: boolean;
}

export class ServerObserver {
  constructor(private readonly endpoint: string, private readonly token: string) {}

  private headers(): Record<string, string> {
    return { authorization: `Bearer ${this.token}` };
  }

  /** The server's list, or undefined while it cannot be reached (an outage is part of a scenario). */
  async list(): Promise<RecordingListEntry[] | undefined> {
    try {
      const response = await fetch(`${this.endpoint}/v1/recordings`, { headers: this.headers(), signal: AbortSignal.timeout(5000) });
      if (!response.ok) return undefined;
      const body = await response.json() as { recordings?: RecordingListEntry[] };
      return body.recordings ?? [];
    } catch {
      return undefined;
    }
  }

  /** SHA-256 and length of what GET /content returns: the byte-exact proof. */
  async contentDigest(id: string): Promise<{ sha256: string; size: number } | { error: string }> {
    try {
      const response = await fetch(`${this.endpoint}/v1/recordings/${encodeURIComponent(id)}/content`, { headers: this.headers(), signal: AbortSignal.timeout(60_000) });
      if (!response.ok || !response.body) return { error: `GET content answered ${response.status}` };
      const hash = createHash('sha256');
      let size = 0;
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        hash.update(chunk);
        size += chunk.length;
      }
      return { sha256: hash.digest('hex'), size };
    } catch (error) {
      return { error: `GET content failed: ${(error as Error).message}` };
    }
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
