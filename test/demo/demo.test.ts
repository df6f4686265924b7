import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from 'node:net';
import { runCli, type CliResult } from '../helpers/cli.js';
import { makeTempDir } from '../helpers/tmp.js';
import { startIngestServer } from '../../src/server/index.js';
import { quietLogger } from '../../src/log.js';
import type { RecordingListEntry } from '../../src/protocol/types.js';

// Runs the BUILT CLI: `npx tsc -p tsconfig.json` first (npm test does).
describe('bodycam demo (what npm start runs)', () => {
  const tmp = makeTempDir('bodycam-demo-test-');
  const dir = join(tmp.path, 'demo');
  let run: CliResult;

  beforeAll(async () => {
    run = await runCli(['demo', '--dir', dir, '--cameras', '2', '--recordings', '2', '--duration', '2s', '--size', '320x240'], { timeoutMs: 110_000 });
  });
  afterAll(() => tmp.cleanup());

  it('runs to completion and says every recording arrived verified', () => {
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/Arrived: 4 recordings \([\d.]+ KiB\) from 2 cameras, every one verified/);
    expect(run.stdout).toContain('server verify-log --data-dir');
  });

  it('summarises exactly what the server holds: ids, sizes and SHA-256 prefixes', async () => {
    const rows = run.stdout.split('\n').filter((l) => /^\s+BWC\S+\s/.test(l)).map((l) => l.trim().split(/\s{2,}/));
    expect(rows).toHaveLength(4);
    for (const row of rows) expect(row.slice(4)).toEqual(['ok', 'ok', 'ok', 'verified', 'verified']);
    // Reopen the demo's server data with the demo's own token, as the summary tells a person to.
    const tokens = JSON.parse(readFileSync(join(dir, 'tokens.json'), 'utf8')) as Record<string, string>;
    const server = await startIngestServer({ dataDir: join(dir, 'server'), tokens, port: 0, logger: quietLogger() });
    try {
      const token = Object.values(tokens)[0]!;
      const response = await fetch(`${server.url}/v1/recordings`, { headers: { authorization: `Bearer ${token}` } });
      const { recordings } = await response.json() as { recordings: RecordingListEntry[] };
      expect(recordings).toHaveLength(4);
      expect(recordings.every((r) => r.state === 'complete' && r.integrity === 'verified')).toBe(true);
      const fromSummary = rows.map((r) => `${r[0]} ${r[2]!.replace('…', '')}`).sort();
      const fromServer = recordings.map((r) => `${r.id} ${r.sha256.slice(0, 12)}`).sort();
      expect(fromSummary).toEqual(fromServer);
    } finally {
      await server.close();
    }
  });

  it('wiped the cameras after their receipts and left the data where it says', () => {
    const bays = readdirSync(join(dir, 'bays'));
    expect(bays).toEqual(['bay-01', 'bay-02']);
    for (const bay of bays) {
      const media = join(dir, 'bays', bay, 'DCIM', '100BWC');
      const left = existsSync(media) ? readdirSync(media).filter((f) => f.endsWith('.mp4')) : [];
      expect(left).toEqual([]);
    }
    expect(existsSync(join(dir, 'dock'))).toBe(true);
    expect(existsSync(join(dir, 'demo.log'))).toBe(true);
  });

  it('leaves nothing running: the dock status port and the server port it used are closed', async () => {
    const { port } = JSON.parse(readFileSync(join(dir, 'dock', 'status.json'), 'utf8')) as { port: number };
    const serverPort = Number(/http:\/\/127\.0\.0\.1:(\d+)/.exec(run.stdout)![1]);
    for (const p of [port, serverPort]) {
      const refused = await new Promise<string>((resolvePromise) => {
        const socket = connect(p, '127.0.0.1');
        socket.on('connect', () => { socket.destroy(); resolvePromise('open'); });
        socket.on('error', (error: NodeJS.ErrnoException) => resolvePromise(error.code ?? 'error'));
      });
      expect(refused).toBe('ECONNREFUSED');
    }
  });

  it('refuses a folder it did not make, in one line', async () => {
    const result = await runCli(['demo', '--dir', tmp.path, '--cameras', '1']);
    expect(result.code).toBe(2);
    expect(result.stderr.trim()).toMatch(/^bodycam: .* was not made by bodycam demo: choose another folder with --dir$/);
  });
});
