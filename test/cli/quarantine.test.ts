/**
 * `bodycam quarantine` through the built CLI against the real server: a dock given the wrong server
 * key quarantines its recordings (receipt_invalid); list/show name them; retry (once while a dock
 * runs, once with it stopped) puts them back; with the right key they complete, and the flagged one
 * (bit flip) stays listed and exports as a folder whose SHA256SUMS hold and whose bytes are the card's.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { recordCamera, dockCamera } from '../../src/camera/index.js';
import { generateSigningKeyPair } from '../../src/protocol/signing.js';
import { Journal } from '../../src/dock/journal.js';
import { refuseInsideDockFolders } from '../../src/dock/dockFolders.js';
import { makeTempDir } from '../helpers/tmp.js';
import { runCli, spawnCli } from '../helpers/cli.js';
import { startTestServer, TEST_TOKENS, type TestServer } from '../helpers/server.js';
import { waitFor } from '../helpers/dock.js';

const sha = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

interface Entry { key: string; kind: string; code: string; path: string; recordingId: string | null; retryable: boolean }

describe('bodycam quarantine (CLI)', () => {
  const tmp = makeTempDir('bodycam-quarantine-');
  const bays = join(tmp.path, 'bays');
  const stateDir = join(tmp.path, 'state');
  const tokenFile = join(tmp.path, 'token');
  const wrongKey = join(tmp.path, 'wrong-key.pub.pem');
  const env = { ...process.env, BODYCAM_LOG_LEVEL: 'silent' };
  let server: TestServer;
  let dockArgs: (key: string) => string[];

  beforeAll(async () => {
    server = await startTestServer();
    writeFileSync(tokenFile, TEST_TOKENS['dock-1']! + '\n', { mode: 0o600 });
    writeFileSync(wrongKey, generateSigningKeyPair().publicKeyPem);
    mkdirSync(bays, { recursive: true });
    const cam = join(tmp.path, 'cam');
    await recordCamera({ storage: cam, count: 2, durationSeconds: 1, seed: 'q', faults: ['bitflip'], width: 160, height: 120, fps: 10 });
    await dockCamera({ storage: cam, bays, bay: 'bay1' });
    dockArgs = (key) => ['dock', '--bays', bays, '--endpoint', server.url, '--token-file', tokenFile, '--state-dir', stateDir, '--dock-id', 'dock-1',
      '--status-port', '0', '--settle', '0.2s', '--rescan-interval', '0.3s', '--no-fingerprint', '--server-key', key];
  });
  afterAll(async () => {
    await server.close();
    tmp.cleanup();
  });

  const list = async (...extra: string[]): Promise<Entry[]> => {
    const result = await runCli(['quarantine', 'list', '--state-dir', stateDir, '--json', ...extra], { env });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    return JSON.parse(result.stdout) as Entry[];
  };

  it('a missing journal is one line and exit 2, never a new state folder', async () => {
    const result = await runCli(['quarantine', 'list', '--state-dir', join(tmp.path, 'nowhere')], { env });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^bodycam: no dock journal in .*nowhere/);
    expect(readdirSync(tmp.path)).not.toContain('nowhere');
  });

  it('lists, shows, retries (beside a running dock, then alone) and exports', async () => {
    const first = await runCli([...dockArgs(wrongKey), '--once'], { env, timeoutMs: 90_000 });
    expect(first.code).toBe(3);
    let entries = await list();
    expect(entries.map((e) => [e.kind, e.code]).sort()).toEqual([['quarantined', 'receipt_invalid'], ['quarantined', 'receipt_invalid']]);
    expect(entries.every((e) => e.retryable)).toBe(true);
    const table = await runCli(['quarantine', 'list', '--state-dir', stateDir], { env });
    expect(table.stdout).toMatch(/^KEY\s+KIND\s+CODE/);
    expect(table.stdout).toContain('2 recording(s): 2 quarantined, 0 flagged');
    const shown = await runCli(['quarantine', 'show', '--state-dir', stateDir, entries[0]!.key], { env });
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(/code\s+receipt_invalid/);
    expect(shown.stdout).toMatch(/reason\s+receipt rejected: signature does not verify/);

    // Retry beside a running dock (still the wrong key): it takes the row up again at its next scan, a new recording id, quarantined again.
    const child = spawnCli(dockArgs(wrongKey), { env });
    try {
      const before = entries[0]!;
      const retried = await runCli(['quarantine', 'retry', '--state-dir', stateDir, before.key], { env });
      expect(retried.code).toBe(0);
      expect(retried.stdout).toContain(`retry: ${before.key}`);
      await waitFor('the running dock to work the retried row', async () => {
        const again = (await list()).find((e) => e.key === before.key);
        return again && again.recordingId !== null && again.recordingId !== before.recordingId ? again : undefined;
      }, 60_000, 300);
    } finally {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
    }

    // Not retryable codes say so; the dock stopped, retry every receipt_invalid, run with the right key.
    const refused = await runCli(['quarantine', 'retry', '--state-dir', stateDir, '--reason', 'file_changed'], { env });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^bodycam: file_changed cannot be retried/);
    const all = await runCli(['quarantine', 'retry', '--state-dir', stateDir, '--reason', 'receipt_invalid', '--json'], { env });
    expect(all.code).toBe(0);
    expect((JSON.parse(all.stdout) as Array<{ retried: boolean }>).map((o) => o.retried)).toEqual([true, true]);
    const second = await runCli([...dockArgs(join(server.dataDir, 'server-key.pub.pem')), '--once'], { env, timeoutMs: 90_000 });
    expect(second.code).toBe(3); // the bit-flipped one is flagged
    entries = await list();
    expect(entries.map((e) => [e.kind, e.code])).toEqual([['flagged', 'hash-mismatch']]);
    expect(await list('--reason', 'receipt_invalid')).toEqual([]);
    expect(await list('--reason', 'hash-mismatch')).toHaveLength(1);
    // A code no row can carry is a typo: exit 2 naming the real ones, never "nothing quarantined" (exit 0).
    const [typo, listTypo, none] = await Promise.all([
      runCli(['quarantine', 'retry', '--state-dir', stateDir, '--reason', 'no_such_code'], { env }),
      runCli(['quarantine', 'list', '--state-dir', stateDir, '--reason', 'hash_mismatch'], { env }),
      runCli(['quarantine', 'retry', '--state-dir', stateDir, '--reason', 'server_invalid_manifest'], { env }),
    ]);
    for (const [r, code] of [[typo, 'no_such_code'], [listTypo, 'hash_mismatch']] as const) {
      expect(r.code).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toContain(`--reason "${code}" is not a reason code: one of zero_byte, not_media, receipt_invalid`);
    }
    expect(listTypo.stderr).toContain('hash-mismatch');
    expect(none.code).toBe(0);
    expect(none.stdout).toBe('nothing quarantined with reason server_invalid_manifest\n');
    const journal = Journal.openExisting(stateDir);
    try {
      expect(journal.recentBriefs(10).map((r) => r.state)).toEqual(['completed', 'completed']);
    } finally {
      journal.close();
    }
    const flaggedRetry = await runCli(['quarantine', 'retry', '--state-dir', stateDir, entries[0]!.key], { env });
    expect(flaggedRetry.code).toBe(1);
    expect(flaggedRetry.stdout).toContain('flagged, not quarantined');

    // Export the flagged one: the card's bytes, sidecar, manifest, reason, and sums that hold.
    const to = join(tmp.path, 'export');
    const exported = await runCli(['quarantine', 'export', '--state-dir', stateDir, '--bays', bays, '--to', to, entries[0]!.path], { env });
    expect(exported.stderr).toBe('');
    expect(exported.code).toBe(0);
    const folder = join(to, entries[0]!.recordingId!);
    const names = readdirSync(folder).sort();
    const media = entries[0]!.path.split('/').pop()!;
    expect(names).toEqual(['SHA256SUMS', media, media.replace(/\.[^.]+$/, '.json'), 'manifest.json', 'reason.json'].sort());
    expect(sha(readFileSync(join(folder, media)))).toBe(sha(readFileSync(join(bays, 'bay1', entries[0]!.path))));
    const sums = readFileSync(join(folder, 'SHA256SUMS'), 'utf8').trim().split('\n').map((l) => l.split('  '));
    expect(sums.map(([, name]) => name).sort()).toEqual(names.filter((n) => n !== 'SHA256SUMS').sort());
    for (const [hex, name] of sums) expect(sha(readFileSync(join(folder, name!)))).toBe(hex);
    const reason = JSON.parse(readFileSync(join(folder, 'reason.json'), 'utf8')) as { code: string; matchesJournal: boolean; sidecarMatchesManifest: boolean };
    expect(reason).toMatchObject({ code: 'hash-mismatch', matchesJournal: true, sidecarMatchesManifest: true });
    expect(statSync(join(folder, media)).mode & 0o777).toBe(0o600);
    // Never over an earlier export.
    const again = await runCli(['quarantine', 'export', '--state-dir', stateDir, '--bays', bays, '--to', to, entries[0]!.key], { env });
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/exists already/);
    // --to naming a file: one line saying so, not "unexpected failure".
    const onFile = await runCli(['quarantine', 'export', '--state-dir', stateDir, '--bays', bays, '--to', join(folder, 'SHA256SUMS'), entries[0]!.key], { env });
    expect(onFile.code).toBe(1);
    expect(onFile.stderr).toMatch(/^bodycam: cannot export into .*SHA256SUMS: .*SHA256SUMS is not a folder\n$/);
    // Under /proc, Node's mkdir -p retried forever (system CPU until killed): now one refusal, once.
    const onProc = await runCli(['quarantine', 'export', '--state-dir', stateDir, '--bays', bays, '--to', '/proc/bodycam-x/y', entries[0]!.key], { env });
    expect([onProc.code, onProc.stderr]).toEqual([1, "bodycam: cannot export into /proc/bodycam-x/y: ENOENT: no such file or directory, mkdir '/proc/bodycam-x'\n"]);
    // --to on the card (here through a symbolic link to it): the next scan would ingest the export. Refused, nothing written.
    const cardLink = join(tmp.path, 'card-link');
    symlinkSync(join(bays, 'bay1'), cardLink);
    const onCard = await runCli(['quarantine', 'export', '--state-dir', stateDir, '--bays', bays, '--to', join(cardLink, 'DCIM', 'exports'), entries[0]!.key], { env });
    expect(onCard.code).toBe(2);
    expect(onCard.stderr).toMatch(/^bodycam: --to .*exports is inside the dock's bays .*: the dock would ingest what is written there as camera files; choose a folder outside both\n$/);
    expect(existsSync(join(bays, 'bay1', 'DCIM', 'exports'))).toBe(false);
  }, 240_000);

  it('refuses a destination in the bays or the state folder, however it is spelled', () => {
    const folders = { bays, stateDir };
    for (const to of [bays, join(bays, 'bay1'), join(bays, 'bay1', 'no', 'such', 'folder'), join(bays, '..', 'bays', 'x'), join(stateDir, 'receipts-archive'), stateDir]) {
      expect(() => refuseInsideDockFolders(to, folders, '--to')).toThrow(expect.objectContaining({ exitCode: 2, code: 'E_INSIDE_DOCK_FOLDER' }));
    }
    for (const to of [tmp.path + '-elsewhere', join(tmp.path, 'bays-export'), join(tmp.path, 'export')]) {
      expect(() => refuseInsideDockFolders(to, folders, '--to')).not.toThrow();
    }
  });
});
