/**
 * `bodycam check` through the built CLI against the real server: receipted files on a card are held
 * by a fresh proof of possession, wiped ones by the server's word; a file never uploaded is missing,
 * a card whose sidecar changed after the receipt is differing; against a server that never got them
 * (a fresh one, same token) every one is missing, the wiped ones loudly. Exit 0 only when all held.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { recordCamera, dockCamera } from '../../src/camera/index.js';
import type { CheckResult } from '../../src/dock/check.js';
import { Journal } from '../../src/dock/journal.js';
import type { RecordingManifest } from '../../src/protocol/types.js';
import { makeTempDir } from '../helpers/tmp.js';
import { runCli } from '../helpers/cli.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { startLoggedServer, TOKEN, type LoggedServer } from '../helpers/dock.js';

describe('bodycam check', () => {
  const tmp = makeTempDir('bodycam-check-');
  const bays = join(tmp.path, 'bays');
  const stateDir = join(tmp.path, 'state');
  const tokenFile = join(tmp.path, 'token');
  const env = { ...process.env, BODYCAM_LOG_LEVEL: 'silent' };
  const small = { durationSeconds: 1, width: 160, height: 120, fps: 10 };
  let server: LoggedServer;
  let dock: (endpoint: string) => string[];

  beforeAll(async () => {
    server = await startLoggedServer();
    writeFileSync(tokenFile, TOKEN + '\n', { mode: 0o600 });
    mkdirSync(bays);
    dock = (endpoint) => ['--bays', bays, '--endpoint', endpoint, '--token-file', tokenFile, '--state-dir', stateDir, '--dock-id', 'dock-1',
      '--status-port', '0', '--settle', '0.2s', '--no-fingerprint', '--server-key', join(server.dataDir, 'server-key.pub.pem')];
    await recordCamera({ storage: join(tmp.path, 'cam1'), count: 2, seed: 'c1', ...small });
    await dockCamera({ storage: join(tmp.path, 'cam1'), bays, bay: 'bay1' });
    expect((await runCli(['dock', ...dock(server.url), '--once', '--wipe-after-ingest'], { env, timeoutMs: 90_000 })).code).toBe(0); // wiped
    await recordCamera({ storage: join(tmp.path, 'cam2'), count: 2, seed: 'c2', ...small });
    await dockCamera({ storage: join(tmp.path, 'cam2'), bays, bay: 'bay2' });
    expect((await runCli(['dock', ...dock(server.url), '--once'], { env, timeoutMs: 90_000 })).code).toBe(0); // receipted, on the card
  }, 180_000);
  afterAll(async () => {
    await server.close();
    tmp.cleanup();
  });

  const check = async (endpoint: string): Promise<{ code: number | null; result: CheckResult }> => {
    const run = await runCli(['check', '--json', ...dock(endpoint)], { env, timeoutMs: 90_000 });
    expect(run.stderr).toBe('');
    return { code: run.code, result: JSON.parse(run.stdout) as CheckResult };
  };

  it('held with proof on the cards, held by the server\'s word when wiped: exit 0', async () => {
    const possessionBefore = server.requests.filter((r) => r.url.endsWith('/possession')).length;
    const { code, result } = await check(server.url);
    expect(result.entries.map((e) => [e.where, e.bay, e.verdict])).toEqual([['card', 'bay2', 'held'], ['card', 'bay2', 'held'], ['journal', 'bay1', 'held'], ['journal', 'bay1', 'held']]);
    expect(result.entries[0]!.detail).toMatch(/^proved: \d+ of \d+ segment\(s\) and the sidecar answered for a fresh nonce$/);
    expect(result.entries[2]!.detail).toContain('wiped from the camera');
    expect(result.allHeld).toBe(true);
    expect(code).toBe(0);
    expect(server.requests.filter((r) => r.url.endsWith('/possession')).length - possessionBefore).toBe(2);
    const text = await runCli(['check', ...dock(server.url)], { env });
    expect(text.stdout).toMatch(/4 held, 0 missing, 0 differing: everything is held\n$/);
  });

  it('a file never uploaded is missing, a sidecar changed after the receipt is differing: exit 1', async () => {
    await recordCamera({ storage: join(tmp.path, 'cam3'), count: 1, seed: 'c3', ...small });
    await dockCamera({ storage: join(tmp.path, 'cam3'), bays, bay: 'bay3' });
    const dir = join(bays, 'bay2', 'DCIM', '100BWC');
    const sidecar = readdirSync(dir).filter((n) => n.endsWith('.json')).sort()[0]!;
    appendFileSync(join(dir, sidecar), ' '); // still valid JSON, other bytes
    // A wiped recording's only blob quarantined by the server (as a verified read that finds it damaged does):
    // the server still answers `complete`, with `missing: [0]`; that is not held.
    const journal = Journal.openReadOnly(stateDir);
    const wiped = journal.listReceipted(0).filter((r) => r.state === 'wiped')[0]!;
    journal.close();
    const blob = (JSON.parse(wiped.manifestJson!) as RecordingManifest).segments[0]!.sha256;
    const damaged = join(server.dataDir, 'damaged-by-test');
    mkdirSync(damaged);
    renameSync(join(server.dataDir, 'blobs', blob.slice(0, 2), blob), join(damaged, blob));
    // And a bay2 recording's blob damaged at rest (bytes changed in place) while the card still matches its receipt.
    const onCard = Journal.openReadOnly(stateDir);
    const kept = onCard.listReceipted(0).filter((r) => r.state === 'completed' && r.bay === 'bay2' && !r.relPath.split('/').pop()!.startsWith(sidecar.replace(/\.json$/, '.')))[0]!;
    onCard.close();
    const keptBlob = (JSON.parse(kept.manifestJson!) as RecordingManifest).segments[0]!.sha256;
    const keptPath = join(server.dataDir, 'blobs', keptBlob.slice(0, 2), keptBlob);
    const bytes = readFileSync(keptPath);
    bytes[100] = bytes[100]! ^ 0xff;
    writeFileSync(keptPath, bytes);
    const { code, result } = await check(server.url);
    expect(result.entries.filter((e) => e.where === 'journal').map((e) => [e.recordingId === wiped.recordingId, e.verdict]).sort())
      .toEqual([[false, 'held'], [true, 'missing']]);
    expect(result.entries.find((e) => e.recordingId === wiped.recordingId)!.detail)
      .toMatch(/^WIPED from the camera and the server lost segment\(s\) 0(, \d+)* since the receipt: restore from a backup$/);
    const bay2 = result.entries.filter((e) => e.bay === 'bay2' && e.where === 'card');
    expect(bay2.map((e) => e.verdict).sort()).toEqual(['differing', 'missing']);
    // The other bay2 file: its card bytes are the receipted ones, the server's blob is damaged (below): missing, not differing.
    expect(bay2.find((e) => e.verdict === 'missing')!.detail).toMatch(/^(the server lost .*the card holds the receipted bytes|receipted, but the server answers incomplete)/);
    expect(bay2.find((e) => e.verdict === 'differing')!.detail).toBe('the sidecar on the card is not the one the server holds');
    expect(result.entries.filter((e) => e.bay === 'bay3')).toEqual([expect.objectContaining({ where: 'card', verdict: 'missing', detail: 'not in the journal: never uploaded' })]);
    expect(result.allHeld).toBe(false);
    expect(code).toBe(1);
  });

  it('a blob the server finds damaged after the receipt: missing, "the server lost", and --resend heals it from the card', async () => {
    const journal = Journal.openReadOnly(stateDir);
    const onCard = journal.listReceipted(0).filter((r) => r.state === 'completed');
    journal.close();
    // bay2's first file had its sidecar changed (differing): the other one is held.
    const row = onCard.filter((r) => r.bay === 'bay2').sort((a, b) => a.relPath.localeCompare(b.relPath))[1]!;
    const held = { recordingId: row.recordingId! };
    const segments = (JSON.parse(row.manifestJson!) as RecordingManifest).segments;
    // Damage at rest (a flipped byte in every blob): found by the proof's verified read, marked missing.
    for (const s of segments) {
      const path = join(server.dataDir, 'blobs', s.sha256.slice(0, 2), s.sha256);
      if (!existsSync(path)) continue; // moved aside as damaged by the case above
      const bytes = readFileSync(path);
      bytes[Math.floor(bytes.length / 2)]! ^= 0xff;
      writeFileSync(path, bytes);
    }
    const damaged = (await check(server.url)).result.entries.find((e) => e.recordingId === held.recordingId)!;
    expect(damaged.verdict).toBe('missing');
    expect(damaged.detail).toMatch(/the server lost .* the card holds the receipted bytes: `bodycam check --resend` sends them again$/);
    const run = await runCli(['check', '--json', '--resend', ...dock(server.url)], { env, timeoutMs: 90_000 });
    const healed = (JSON.parse(run.stdout) as CheckResult).entries.find((e) => e.recordingId === held.recordingId)!;
    expect(healed.verdict).toBe('held');
    expect(healed.detail).toMatch(/sent again from the card$/);
    for (const s of segments) expect(createHash('sha256').update(readFileSync(join(server.dataDir, 'blobs', s.sha256.slice(0, 2), s.sha256))).digest('hex')).toBe(s.sha256);
  });

  it('against a server that never got them, everything is missing and the wiped ones say so', async () => {
    const other: TestServer = await startTestServer();
    try {
      const { code, result } = await check(other.url);
      expect(code).toBe(1);
      const receipted = result.entries.filter((e) => e.recordingId);
      expect(receipted.length).toBe(4);
      // The card whose sidecar changed differs before the server is even asked; the rest the server does not have.
      expect(receipted.map((e) => e.verdict).sort()).toEqual(['differing', 'missing', 'missing', 'missing']);
      expect(result.entries.filter((e) => e.where === 'journal').every((e) => e.detail.startsWith('WIPED from the camera and not on the server'))).toBe(true);
    } finally {
      await other.close();
    }
    const unreachable = await runCli(['check', ...dock('http://127.0.0.1:9'), '--request-retries', '0'], { env });
    expect(unreachable.code).toBe(1);
    expect(unreachable.stderr).toMatch(/^bodycam: cannot reach the ingest server at http:\/\/127\.0\.0\.1:9/);
  });

  it('what the dock leaves alone on a card is a row: a symlink, a hidden or temporary media file are left (exit 1); thumbnails, a stray .json and a ._ file are listed as ignored', async () => {
    const storage = join(tmp.path, 'cam4');
    await recordCamera({ storage, count: 1, seed: 'c4', ...small });
    const folder = join(storage, 'DCIM', '100BWC');
    const media = readdirSync(folder).find((n) => n.endsWith('.mp4'))!;
    const bytes = readFileSync(join(folder, media));
    writeFileSync(join(folder, '.hidden.mp4'), bytes);
    writeFileSync(join(folder, '._' + media), Buffer.alloc(4096));
    writeFileSync(join(folder, 'REC0009.mp4.tmp'), bytes.subarray(0, 1000));
    writeFileSync(join(folder, 'notes.json'), '{}');
    mkdirSync(join(tmp.path, 'elsewhere'));
    symlinkSync(join(tmp.path, 'elsewhere'), join(storage, 'DCIM', 'link'));
    await dockCamera({ storage, bays, bay: 'bay4' });
    const { code, result } = await check(server.url);
    const bay4 = result.entries.filter((e) => e.bay === 'bay4');
    const verdictOf = (path: string): string | undefined => bay4.find((e) => e.path === path)?.verdict;
    expect(verdictOf('DCIM/100BWC/.hidden.mp4')).toBe('left');
    expect(verdictOf('DCIM/100BWC/REC0009.mp4.tmp')).toBe('left');
    expect(verdictOf('DCIM/link')).toBe('left');
    expect(verdictOf(`DCIM/100BWC/._${media}`)).toBe('ignored');
    expect(verdictOf('DCIM/100BWC/notes.json')).toBe('ignored');
    expect(bay4.find((e) => e.path === 'DCIM/link')!.detail).toMatch(/^symlink: .*never uploaded/);
    expect(result.counts.left).toBe(3);
    expect(result.allHeld).toBe(false);
    expect(code).toBe(1);
    const text = await runCli(['check', ...dock(server.url)], { env });
    expect(text.code).toBe(1);
    expect(text.stdout).toMatch(/, 3 left on the card unread \(\d+ not evidence, left alone\)\n$/);
  });

  it('a receipted file no card proves says what the check saw: rewritten on its docked camera, or its camera away', async () => {
    const journal = Journal.openReadOnly(stateDir);
    const row = journal.listReceipted(0).filter((r) => r.state === 'completed' && r.bay === 'bay2').sort((a, b) => a.relPath.localeCompare(b.relPath))[1]!;
    journal.close();
    appendFileSync(join(bays, 'bay2', row.relPath), 'rewritten after its receipt');
    const rewritten = (await check(server.url)).result.entries.filter((e) => e.path === row.relPath);
    expect(rewritten.map((e) => [e.where, e.verdict])).toEqual([['card', 'missing'], ['journal', 'held']]);
    expect(rewritten[1]!.detail).toBe('its camera is docked in bay2, but the file at that path is not the receipted bytes now (rewritten since: the new bytes are their own row); the server has it complete (no bytes here to prove against)');
    renameSync(join(bays, 'bay2'), join(tmp.path, 'bay2-undocked'));
    const away = (await check(server.url)).result.entries.filter((e) => e.where === 'journal' && e.bay === 'bay2');
    expect(away.length).toBeGreaterThan(0);
    for (const e of away) expect(e.detail).toMatch(new RegExp(`^its camera ${e.serial} is not docked now; `));
  });
});

