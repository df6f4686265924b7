/**
 * The retention rule against a real server (issue 15): a completed row pruned while its camera
 * was away, and the camera docked again, is a new recording: its bytes are sent again (the server
 * forgot this dock's possession at the first receipt) and dropped as held, the store does not grow; the pruned row's receipt, archived first, is still checked by
 * `bodycam server verify-log --receipts <stateDir>` beside the new one.
 */
import { describe, it, expect, afterAll } from '@jest/globals';
import { existsSync, readdirSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { dockCamera, recordCamera } from '../../src/camera/index.js';
import { runOnce } from '../../src/dock/index.js';
import { Journal } from '../../src/dock/journal.js';
import { pruneFinished, RECEIPTS_ARCHIVE } from '../../src/dock/retention.js';
import { runCli } from '../helpers/cli.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { makeTempDir } from '../helpers/tmp.js';
import { dockConfig } from '../helpers/dock.js';

const DAY = 86_400_000;

async function metric(server: TestServer, name: string): Promise<number> {
  const text = await (await fetch(server.url + '/metrics')).text();
  return Number(new RegExp(`^${name} (\\d+)`, 'm').exec(text)?.[1] ?? 0);
}
const bytesReceived = (server: TestServer): Promise<number> => metric(server, 'bodycam_segment_bytes_received_total');

describe('a pruned row, its camera docked again', () => {
  const tmp = makeTempDir('bodycam-dock-history-redock-');
  let server: TestServer | undefined;
  afterAll(async () => { await server?.close(); tmp.cleanup(); });

  it('is a new ingest the server stores nothing new for, and both receipts verify', async () => {
    server = await startTestServer();
    const storage = join(tmp.path, 'cam');
    await recordCamera({ storage, count: 1, seed: 'history-redock', durationSeconds: 2, width: 160, height: 120, fps: 10 });
    const config = dockConfig(tmp.path, server.url); // makes <tmp>/bays
    const bays = join(tmp.path, 'bays');
    await dockCamera({ storage, bays, bay: 'bay1' });
    const first = await runOnce(config);
    expect(first.exitCode).toBe(0);
    expect(first.recordings).toHaveLength(1);
    const firstId = first.recordings[0]!.recordingId!;
    expect(first.recordings[0]!.state).toBe('completed');
    const sent = await bytesReceived(server);
    expect(sent).toBeGreaterThan(0);
    const stored = await metric(server, 'bodycam_store_bytes');
    expect(stored).toBeGreaterThan(0);

    // The camera goes away; past its retention its row is pruned, receipt archived first.
    renameSync(join(bays, 'bay1'), join(tmp.path, 'away'));
    const journal = Journal.open(config.stateDir);
    const pruned = await pruneFinished({ journal, stateDir: config.stateDir, retainSeconds: 86_400, now: Date.now() + 2 * DAY, inUse: () => false });
    expect(journal.counts().total).toBe(0);
    journal.close();
    expect(pruned.pruned).toBe(1);
    expect(readdirSync(join(config.stateDir, RECEIPTS_ARCHIVE))).toHaveLength(1);

    // Docked again: a new row, a new recording id, every segment already held for this dock.
    renameSync(join(tmp.path, 'away'), join(bays, 'bay1'));
    const second = await runOnce(config);
    expect(second.exitCode).toBe(0);
    expect(second.recordings).toHaveLength(1);
    expect(second.recordings[0]!.state).toBe('completed');
    expect(second.recordings[0]!.recordingId).not.toBe(firstId);
    // The server forgets a dock's possession once a recording is receipted (src/server/possession.ts),
    // so the new recording's bytes are sent again, verified, and dropped as already held: the store
    // does not grow, nothing is skipped, and the new row has its own receipt.
    expect(await bytesReceived(server)).toBe(2 * sent);
    expect(await metric(server, 'bodycam_store_bytes')).toBe(stored);
    expect(existsSync(join(bays, 'bay1'))).toBe(true);

    // Both receipts, the archived one and the journal's, check against the server's custody log.
    const verify = await runCli(['server', 'verify-log', '--data-dir', server.dataDir, '--receipts', config.stateDir]);
    expect(verify.code).toBe(0);
    expect(verify.stdout + verify.stderr).toMatch(/\b2 dock receipts\b/);
  });
});
