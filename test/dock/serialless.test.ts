/**
 * Cameras without DEVICE.json (other makers') all have the serial `unknown`, and such cameras name
 * their files alike (DCIM/FILE0001.MP4 on every one of them). Camera A is undocked mid-upload;
 * camera B, another such camera with a file at the same path, is docked (in A's bay, or in another
 * one). B's file is not A's file rewritten: A's upload stays open, B's recording is ingested as its
 * own, and when A comes back its upload resumes where it stopped (no segment sent twice) and is
 * receipted. Before, B's file closed A's upload `file_changed` and A's file then waited for an
 * operator. The same camera's file rewritten while it is docked, or grown while it was away, is
 * still closed `file_changed`. `--dry-run` says the same as the run.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFileSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startDockAgent, type DockAgent } from '../../src/dock/index.js';
import { rowFor } from '../../src/dock/identity.js';
import type { RecordingRow } from '../../src/dock/journal.js';
import { dockConfig, makeFmp4, makeForeignMp4, serverContent, startLoggedServer, waitFor, type LoggedServer } from '../helpers/dock.js';
import { runCli } from '../helpers/cli.js';
import { makeTempDir } from '../helpers/tmp.js';

const sha = (data: Buffer): string => createHash('sha256').update(data).digest('hex');
const REL = join('DCIM', 'FILE0001.MP4');

function run(command: string, args: string[]): void {
  const result = spawnSync(command, args, { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')}: ${result.stderr || result.error?.message} (this case mounts tmpfs: it needs root, as on CI)`);
}

describe('cameras without a serial, files at the same path', () => {
  let tmp: ReturnType<typeof makeTempDir>;
  let server: LoggedServer | undefined;
  let agent: DockAgent | undefined;

  const mounted: string[] = [];
  afterEach(async () => {
    await agent?.stop();
    for (const dir of mounted.splice(0).reverse()) spawnSync('umount', ['-l', dir]);
    await server?.close();
    tmp?.cleanup();
    agent = undefined; server = undefined;
  });

  /** A serial-less card: DCIM/FILE0001.MP4 only (fMP4, or another make's plain MP4). */
  async function card(dir: string, seconds: number, make: (path: string, seconds: number) => Promise<void> = makeFmp4): Promise<Buffer> {
    mkdirSync(join(dir, 'DCIM'), { recursive: true });
    await make(join(dir, REL), seconds);
    return readFileSync(join(dir, REL));
  }

  const rowsOf = (a: DockAgent) => a.status().queue.recordings.filter((r) => r.file.endsWith('FILE0001.MP4'));
  const bySha = async (recordingId: string): Promise<string> => sha(await serverContent(server!, recordingId));

  // Cards as mounts (tmpfs, moved with `mount --move`: root, as on CI): a card swapped for another
  // in one go is on another device, which is how the dock tells a swap from a rewrite.
  const mountCard = (dir: string): void => { mkdirSync(dir, { recursive: true }); run('mount', ['-t', 'tmpfs', '-o', 'size=64m', 'tmpfs', dir]); mounted.push(dir); };
  const move = (from: string, to: string): void => { mkdirSync(to, { recursive: true }); run('mount', ['--move', from, to]); mounted.push(to); };

  for (const bBay of ['bay1', 'bay2', 'bay1, swapped in one go (no scan saw the bay empty)']) {
    it(`another camera's file at the same path (docked in ${bBay}) does not close the upload of the one undocked from bay1`, async () => {
      tmp = makeTempDir('bodycam-serialless-');
      server = await startLoggedServer();
      const bays = join(tmp.path, 'bays');
      const swap = bBay.startsWith('bay1,');
      const put = swap ? move : renameSync;
      if (swap) { mountCard(join(tmp.path, 'camA')); mountCard(join(tmp.path, 'camB')); }
      const a = await card(join(tmp.path, 'camA'), 6);
      const b = await card(join(tmp.path, 'camB'), 3, makeForeignMp4);
      expect(sha(a)).not.toBe(sha(b));
      mkdirSync(bays, { recursive: true });
      put(join(tmp.path, 'camA'), join(bays, 'bay1'));
      agent = await startDockAgent(dockConfig(tmp.path, server.url, { maxRate: '16KB/s', concurrency: 2, segmentSeconds: '1s' }));
      await waitFor('A: first segments acknowledged', () => server!.segmentPutsAcked().size >= 2, 60_000);
      const aRow = rowsOf(agent)[0]!;
      put(join(bays, 'bay1'), join(tmp.path, 'camA'));
      // A swap in one go: no scan sees the bay empty, the scan finds B where A was.
      if (swap) put(join(tmp.path, 'camB'), join(bays, 'bay1'));
      else await waitFor('bay1 empty', () => agent!.status().bays.find((x) => x.bay === 'bay1')?.state === 'empty', 20_000);
      expect(rowsOf(agent).find((r) => r.key === aRow.key)!.state).toBe('uploading');
      const ackedWhileAway = new Map(server.segmentPutsAcked());

      if (bBay === 'bay1') {
        // The dock restarted while A is away: `--dry-run` with B docked says what the run does.
        await agent.stop();
        renameSync(join(tmp.path, 'camB'), join(bays, bBay));
        const dry = await runCli(['dock', '--bays', bays, '--endpoint', server.url, '--token-file', join(tmp.path, 'token'), '--state-dir', join(tmp.path, 'state'),
          '--dock-id', 'dock-1', '--status-port', '0', '--settle', '0s', '--dry-run'], { env: { ...process.env, BODYCAM_LOG_LEVEL: 'silent' }, timeoutMs: 60_000 });
        expect(dry.code).toBe(0);
        expect(dry.stdout).toContain('another camera without a serial has an upload open at this path');
        expect(dry.stdout).not.toContain('file_changed');
        agent = await startDockAgent(dockConfig(tmp.path, server.url, { maxRate: '16KB/s', concurrency: 2, segmentSeconds: '1s' }));
      } else if (!swap) {
        renameSync(join(tmp.path, 'camB'), join(bays, bBay));
      }
      const bDone = await waitFor('B receipted', () => rowsOf(agent!).find((r) => r.state === 'completed'), 90_000);
      expect(await bySha(bDone.recordingId!)).toBe(sha(b));
      const aNow = rowsOf(agent).find((r) => r.key === aRow.key)!;
      expect(aNow.lastError).toMatch(/^set aside: another camera without a serial has other bytes at DCIM\/FILE0001\.MP4/);
      expect({ state: aNow.state, reasonCode: aNow.reasonCode, reason: aNow.reason }).toEqual({ state: 'uploading', reasonCode: undefined, reason: aNow.reason });
      expect(aNow.reasonCode).toBeUndefined();

      // B leaves, A comes back (in bay3): its upload resumes and is receipted.
      put(join(bays, swap ? 'bay1' : bBay), join(tmp.path, 'camB'));
      put(join(tmp.path, 'camA'), join(bays, 'bay3'));
      const aDone = await waitFor('A receipted', () => rowsOf(agent!).find((r) => r.key === aRow.key && r.state === 'completed'), 120_000);
      expect(await bySha(aDone.recordingId!)).toBe(sha(a));
      const puts = server.segmentPutsAcked();
      for (const [url] of ackedWhileAway) expect(puts.get(url)).toBe(1);
      expect([...puts.values()].every((n) => n === 1)).toBe(true);
      expect(rowsOf(agent).filter((r) => r.state === 'quarantined')).toEqual([]);
    });
  }

  it('the same serial-less camera\'s file rewritten while it stays docked is still closed file_changed', async () => {
    tmp = makeTempDir('bodycam-serialless-');
    server = await startLoggedServer();
    const bays = join(tmp.path, 'bays');
    mkdirSync(bays, { recursive: true });
    await card(join(bays, 'bay1'), 6);
    agent = await startDockAgent(dockConfig(tmp.path, server.url, { maxRate: '16KB/s', concurrency: 1, segmentSeconds: '1s' }));
    await waitFor('first segments acknowledged', () => server!.segmentPutsAcked().size >= 2, 60_000);
    appendFileSync(join(bays, 'bay1', REL), Buffer.from('appended by the camera'));
    const closed = await waitFor('upload closed', () => rowsOf(agent!).find((r) => r.state === 'quarantined'), 60_000);
    expect(closed.reasonCode).toBe('file_changed');
    const now = readFileSync(join(bays, 'bay1', REL));
    const next = await waitFor('the new version receipted', () => rowsOf(agent!).find((r) => r.state === 'completed'), 120_000);
    expect(await bySha(next.recordingId!)).toBe(sha(now));
  });

  it('the same serial-less camera\'s file grown while it was away is still closed file_changed when it is docked again', async () => {
    tmp = makeTempDir('bodycam-serialless-');
    server = await startLoggedServer();
    const bays = join(tmp.path, 'bays');
    mkdirSync(bays, { recursive: true });
    await card(join(bays, 'bay1'), 6);
    agent = await startDockAgent(dockConfig(tmp.path, server.url, { maxRate: '16KB/s', concurrency: 1, segmentSeconds: '1s' }));
    await waitFor('first segments acknowledged', () => server!.segmentPutsAcked().size >= 2, 60_000);
    renameSync(join(bays, 'bay1'), join(tmp.path, 'camA'));
    await waitFor('bay1 empty', () => agent!.status().bays.find((x) => x.bay === 'bay1')?.state === 'empty', 20_000);
    const open = rowsOf(agent)[0]!;
    appendFileSync(join(tmp.path, 'camA', REL), Buffer.from('appended by the camera while it was away'));
    const grown = readFileSync(join(tmp.path, 'camA', REL));
    renameSync(join(tmp.path, 'camA'), join(bays, 'bay2'));
    const closed = await waitFor('upload closed', () => rowsOf(agent!).find((r) => r.key === open.key && r.state === 'quarantined'), 60_000);
    expect(closed.reasonCode).toBe('file_changed');
    const next = await waitFor('the grown version receipted', () => rowsOf(agent!).find((r) => r.state === 'completed'), 120_000);
    expect(await bySha(next.recordingId!)).toBe(sha(grown));
  });

  it('rowFor: an open upload whose file is back unchanged but for the device number (another reader) is that file, though a newer row holds the path', () => {
    const a = { size: 1000, mtimeMs: 1, ino: 7, dev: 1, ctimeMs: 2, sidecar: null };
    const rows = [
      { key: 'b', state: 'completed', stat: { ...a, size: 900, ino: 9 }, size: 900, mtimeMs: 1, manifestJson: '{}' },
      { key: 'a', state: 'uploading', stat: a, size: 1000, mtimeMs: 1, manifestJson: '{}' },
    ] as unknown as RecordingRow[];
    expect(rowFor(rows, { size: 1000, mtimeMs: 1 }, { ...a, dev: 2 })).toMatchObject({ kind: 'row', row: { key: 'a' } });
    // Rewritten (another ctime): not that file.
    expect(rowFor(rows, { size: 1000, mtimeMs: 1 }, { ...a, dev: 2, ctimeMs: 3 }).kind).toBe('verify');
  });

  it('a file already receipted, docked again behind another camera\'s open upload at its path, is not ingested again', async () => {
    tmp = makeTempDir('bodycam-serialless-');
    server = await startLoggedServer();
    const bays = join(tmp.path, 'bays');
    mkdirSync(bays, { recursive: true });
    const b = await card(join(tmp.path, 'camB'), 2, makeForeignMp4);
    await card(join(tmp.path, 'camA'), 6);
    renameSync(join(tmp.path, 'camB'), join(bays, 'bay1'));
    agent = await startDockAgent(dockConfig(tmp.path, server.url, { maxRate: '16KB/s', concurrency: 2, segmentSeconds: '1s' }));
    const bDone = await waitFor('B receipted', () => rowsOf(agent!).find((r) => r.state === 'completed'), 90_000);
    renameSync(join(bays, 'bay1'), join(tmp.path, 'camB'));
    await waitFor('bay1 empty', () => agent!.status().bays.find((x) => x.bay === 'bay1')?.state === 'empty', 20_000);
    renameSync(join(tmp.path, 'camA'), join(bays, 'bay1'));
    await waitFor('A uploading', () => rowsOf(agent!).find((r) => r.state === 'uploading'), 60_000);
    renameSync(join(bays, 'bay1'), join(tmp.path, 'camA'));
    await waitFor('bay1 empty again', () => agent!.status().bays.find((x) => x.bay === 'bay1')?.state === 'empty', 20_000);
    // B again, as a copy (a new inode): the same bytes as its receipted row.
    mkdirSync(join(bays, 'bay2', 'DCIM'), { recursive: true });
    writeFileSync(join(bays, 'bay2', REL), b);
    await waitFor('B matched again', () => rowsOf(agent!).find((r) => r.key === bDone.key && r.bay === 'bay2'), 60_000);
    expect(rowsOf(agent).filter((r) => r.state !== 'uploading').map((r) => r.key)).toEqual([bDone.key]);
  });
});
