/**
 * One dock, three bays, real cameras and the real ingest server: what arrives is
 * byte-identical, the wipe follows the receipt, and every odd file is reported
 * with a reason instead of being dropped or retried forever.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { copyFileSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { recordCamera, dockCamera, type RecordedFile } from '../../src/camera/index.js';
import { startDockAgent, type DockAgent, type DockStatus } from '../../src/dock/index.js';
import { makeTempDir } from '../helpers/tmp.js';
import { dockConfig, makeForeignMp4, serverKeyFile, serverContent, serverRecording, startLoggedServer, waitFor, type LoggedServer } from '../helpers/dock.js';

const sha = (data: Buffer): string => createHash('sha256').update(data).digest('hex');
const small = { durationSeconds: 3, width: 320, height: 240, fps: 15 };

describe('dock offload with real cameras and the real server', () => {
  const tmp = makeTempDir('bodycam-dock-offload-');
  let server: LoggedServer;
  let agent: DockAgent;
  let status: DockStatus;
  const files: Record<string, RecordedFile> = {};
  const copies: Record<string, Buffer> = {};
  const bays = join(tmp.path, 'bays');

  beforeAll(async () => {
    server = await startLoggedServer();
    const camA = join(tmp.path, 'camA');
    const camB = join(tmp.path, 'camB');
    const a = await recordCamera({ storage: camA, count: 2, seed: 'dock-a', ...small });
    const critical = await recordCamera({ storage: camA, count: 1, seed: 'dock-a', critical: true, ...small });
    const b1 = await recordCamera({ storage: camB, count: 1, seed: 'dock-b', faults: ['bitflip'], ...small });
    const b2 = await recordCamera({ storage: camB, count: 1, seed: 'dock-b', faults: ['power-loss'], ...small });
    const b3 = await recordCamera({ storage: camB, count: 1, seed: 'dock-b', faults: ['zero-byte'], ...small });
    files.a1 = a.files[0]!; files.a2 = a.files[1]!; files.critical = critical.files[0]!;
    files.bitflip = b1.files[0]!; files.power = b2.files[0]!; files.zero = b3.files[0]!;
    for (const [name, file] of Object.entries(files)) copies[name] = readFileSync(file.mediaPath);
    // A camera of another make: no DEVICE.json, no sidecar, extra data tracks; plus junk and a symlink out.
    const foreign = join(tmp.path, 'foreign');
    mkdirSync(join(foreign, 'DCIM', '100MEDIA'), { recursive: true });
    await makeForeignMp4(join(foreign, 'DCIM', '100MEDIA', 'CLIP0001.MP4'), 3);
    copies.foreign = readFileSync(join(foreign, 'DCIM', '100MEDIA', 'CLIP0001.MP4'));
    writeFileSync(join(foreign, 'DCIM', '100MEDIA', 'notes.txt'), 'officer notes, not media\n');
    const outside = join(tmp.path, 'outside-secret.mp4');
    copyFileSync(files.a1.mediaPath, outside);
    writeFileSync(outside, Buffer.concat([readFileSync(outside), Buffer.from('outside')]));
    copies.outside = readFileSync(outside);
    symlinkSync(outside, join(foreign, 'DCIM', '100MEDIA', 'LINK0002.MP4'));

    mkdirSync(bays, { recursive: true });
    await dockCamera({ storage: camA, bays, bay: 'bay1' });
    await dockCamera({ storage: camB, bays, bay: 'bay2' });
    const { renameSync } = await import('node:fs');
    renameSync(foreign, join(bays, 'bay3'));

    agent = await startDockAgent(dockConfig(tmp.path, server.url, { wipeAfterIngest: true, serverKey: serverKeyFile(server), rescanInterval: '0.3s', segmentSeconds: '1s' }));
    await agent.whenIdle();
    status = agent.status();
  });

  afterAll(async () => {
    await agent?.stop();
    await server?.close();
    tmp.cleanup();
  });

  const byFile = (name: string) => status.queue.recordings.find((r) => r.file.endsWith(name));

  it('offloads two cameras completely, byte-identical on the server, and wipes them after the receipt', async () => {
    for (const name of ['a1', 'a2', 'critical']) {
      const entry = byFile(files[name]!.mediaPath.split('/').pop()!)!;
      expect(entry.state).toBe('wiped');
      expect(entry.integrity).toBe('verified');
      const content = await serverContent(server, entry.recordingId!);
      expect(sha(content)).toBe(sha(copies[name]!));
      expect(existsSync(join(bays, 'bay1', 'DCIM', '100BWC', files[name]!.mediaPath.split('/').pop()!))).toBe(false);
    }
    expect(status.bays.find((b) => b.bay === 'bay1')).toMatchObject({ state: 'done', progress: 100 });
  });

  it('records the clock offset and the camera sidecar in the manifest, and cuts segments from the media', async () => {
    const entry = byFile(files.a1.mediaPath.split('/').pop()!)!;
    const recording = await serverRecording(server, entry.recordingId!);
    const manifest = recording.manifest as { device: { clockOffsetMs?: number; sidecar?: { sha256: string } }; segments: Array<{ startTime?: number }>; file: { mediaFingerprint?: string } };
    expect(typeof manifest.device.clockOffsetMs).toBe('number');
    expect(manifest.device.sidecar?.sha256).toBe(files.a1.sha256);
    expect(manifest.segments.length).toBeGreaterThan(1);
    expect(manifest.segments.every((s) => typeof s.startTime === 'number')).toBe(true);
    expect(manifest.file.mediaFingerprint).toMatch(/^sha256:/);
  });

  it('uploads a bitflipped recording flagged hash-mismatch and never wipes it', async () => {
    const entry = byFile(files.bitflip.mediaPath.split('/').pop()!)!;
    expect(entry.state).toBe('completed');
    expect(entry.integrity).toBe('hash-mismatch');
    expect(existsSync(join(bays, 'bay2', 'DCIM', '100BWC', files.bitflip.mediaPath.split('/').pop()!))).toBe(true);
    expect(sha(await serverContent(server, entry.recordingId!))).toBe(sha(copies.bitflip!));
    expect(status.bays.find((b) => b.bay === 'bay2')).toMatchObject({ state: 'attention' });
    expect(status.bays.find((b) => b.bay === 'bay2')!.reason).toMatch(/hash-mismatch/);
  });

  it('ingests a power-loss cut with its truncation noted, and keeps it on the camera', async () => {
    const entry = byFile(files.power.mediaPath.split('/').pop()!)!;
    expect(entry.state).toBe('completed');
    expect(entry.truncated).toBe(true);
    const manifest = (await serverRecording(server, entry.recordingId!)).manifest as { file: { truncated?: boolean }; integrity: { status: string; notes: string[] } };
    expect(manifest.file.truncated).toBe(true);
    expect(manifest.integrity.status).toBe('unsigned');
    expect(manifest.integrity.notes.join(' ')).toMatch(/power loss|truncated/);
    expect(existsSync(join(bays, 'bay2', 'DCIM', '100BWC', files.power.mediaPath.split('/').pop()!))).toBe(true);
  });

  it('ingests a foreign MP4 with data tracks byte-exact, serial unknown', async () => {
    const entry = byFile('CLIP0001.MP4')!;
    expect(entry.state).toBe('wiped');
    expect(entry.serial).toBe('unknown');
    // <serial>-<32 hex of the file's SHA-256>-<16 hex row uid>: one recording per file on the card.
    expect(entry.recordingId).toMatch(/^unknown-[0-9a-f]{32}-[0-9a-f]{16}$/);
    expect(sha(await serverContent(server, entry.recordingId!))).toBe(sha(copies.foreign!));
  });

  it('reports zero-byte and non-media files once, without retrying them', async () => {
    const zero = byFile(files.zero.mediaPath.split('/').pop()!)!;
    const notes = byFile('notes.txt')!;
    expect(zero).toMatchObject({ state: 'quarantined', attempts: 0 });
    expect(zero.reason).toMatch(/zero-byte/);
    expect(zero.reasonCode).toBe('zero_byte');
    expect(notes).toMatchObject({ state: 'quarantined', attempts: 0 });
    expect(notes.reason).toMatch(/not a media file/);
    expect(notes.reasonCode).toBe('not_media');
    // A bay that shows a quarantine carries its code too.
    expect(status.bays.find((b) => b.bay === 'bay2')!.reasonCode).toBe('zero_byte');
    expect(status.bays.find((b) => b.bay === 'bay3')!.reasonCode).toBe('not_media');
    // The dock's own requests (the tests only GET): none may follow once it is idle.
    const dockRequests = (): number => server.requests.filter((r) => r.method !== 'GET').length;
    const requestsBefore = dockRequests();
    await new Promise((r) => setTimeout(r, 1000)); // a few rescans later
    const later = agent.status().queue.recordings;
    expect(later.find((r) => r.file.endsWith('notes.txt'))).toMatchObject({ state: 'quarantined', attempts: 0 });
    expect(dockRequests()).toBe(requestsBefore);
  });

  it('never follows a symlink out of the camera folder', async () => {
    expect(byFile('LINK0002.MP4')).toBeUndefined();
    // A dock's GET /v1/recordings answers { recordings: [...] } (src/server/routes.ts, docs/protocol.md).
    const list = (await (await server.request('/v1/recordings')).json()) as { recordings: Array<{ sha256: string }> };
    expect(Array.isArray(list.recordings)).toBe(true);
    const entries = list.recordings;
    expect(entries.length).toBeGreaterThan(0);
    expect(entries.some((e) => e.sha256 === sha(copies.outside!))).toBe(false);
    expect(status.bays.find((b) => b.bay === 'bay3')!.reason).toMatch(/symlink/);
  });

  it('serves the status and metrics on 127.0.0.1', async () => {
    const response = await fetch(`http://127.0.0.1:${agent.statusPort}/metrics`);
    const text = await response.text();
    expect(text).toMatch(/^bodycam_dock_bytes_sent_total\{bay="bay\d"\} [1-9]/m);
    // The gauge counts the journal's quarantined rows: the two the earlier case names, and no other
    // (a failure prints the rows, so a spurious quarantine says which file and why).
    const quarantined = agent.status().queue.recordings.filter((r) => r.state === 'quarantined').map((r) => `${r.file}: ${r.reasonCode}: ${r.reason}`);
    expect({ gauge: /^bodycam_dock_quarantined (\d+)/m.exec(text)?.[1], quarantined }).toEqual({ gauge: '2', quarantined: expect.arrayContaining([expect.stringMatching(/: zero_byte: /), expect.stringMatching(/notes\.txt: not_media: /)]) });
    expect(quarantined).toHaveLength(2);
    const json = (await (await fetch(`http://127.0.0.1:${agent.statusPort}/status`)).json()) as DockStatus;
    expect(json.bays.map((b) => b.bay)).toEqual(['bay1', 'bay2', 'bay3']);
  });
});
