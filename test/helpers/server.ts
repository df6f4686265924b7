/**
 * Start the real ingest server in-process on 127.0.0.1, port 0, with a fresh
 * data dir and two docks' tokens; close() closes every socket and removes the dir.
 */
import { startIngestServer, type IngestServer, type IngestServerOptions } from '../../src/server/index.js';
import { quietLogger } from '../../src/log.js';
import { createHash } from 'node:crypto';
import { formatDigestHeader, sha256Hex } from '../../src/protocol/digest.js';
import { makeTempDir } from './tmp.js';

/**
 * A token the server accepts (auth.ts: ≥ 128 bits, enough variety), the same on every run:
 * base64url of SHA-256 of a label (43 characters).
 */
export function testToken(label: string): string {
  return createHash('sha256').update(`bodycam test token ${label}`).digest('base64url');
}

export const TEST_TOKENS: Record<string, string> = { 'dock-1': testToken('dock-1'), 'dock-2': testToken('dock-2') };

export interface TestServer extends IngestServer {
  dataDir: string;
  tokens: Record<string, string>;
  /** fetch against the server as `dockId` (default dock-1). */
  request(path: string, init?: RequestInit & { dock?: string | null }): Promise<Response>;
}

export async function startTestServer(options: Partial<IngestServerOptions> & { keepDir?: string } = {}): Promise<TestServer> {
  const tmp = options.keepDir ? undefined : makeTempDir('bodycam-server-');
  const dataDir = options.dataDir ?? options.keepDir ?? tmp!.path;
  const tokens = options.tokens ?? TEST_TOKENS;
  const server = await startIngestServer({ logger: quietLogger(), ...options, dataDir, tokens, host: '127.0.0.1', port: 0 });
  return {
    ...server,
    dataDir,
    tokens,
    request: (path, init = {}) => {
      const { dock = 'dock-1', headers, ...rest } = init;
      const merged = new Headers(headers);
      if (dock !== null && !merged.has('authorization')) merged.set('authorization', `Bearer ${tokens[dock] ?? dock}`);
      return fetch(server.url + path, { ...rest, headers: merged });
    },
    close: async () => {
      await server.close();
      tmp?.cleanup();
    },
  };
}

/** Headers for a segment PUT of `body`. */
export function segmentHeaders(body: Buffer, digestOf: Buffer = body): Record<string, string> {
  return { 'content-type': 'application/octet-stream', 'content-digest': formatDigestHeader(sha256Hex(digestOf)) };
}
