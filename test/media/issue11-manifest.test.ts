/**
 * Issue 11 items 1, 3, 5, 6 end to end: the built `bodycam dock --once` over a bay holding
 * files of other makers (from fixtures/corpus), uploaded to a real server on 127.0.0.1; the
 * signed manifests say the TS packet size, the per-stream fingerprints, the one video clock,
 * and flag a TS cut mid-packet as truncated.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RecordingListEntry, RecordingManifest } from '../../src/protocol/types.js';
import { sha256Hex } from '../../src/protocol/digest.js';
import { runCli } from '../helpers/cli.js';
import { makeTempDir } from '../helpers/tmp.js';
import { serverContent, startLoggedServer, TOKEN, type LoggedServer } from '../helpers/dock.js';

const corpus = (name: string): string => fileURLToPath(new URL(`../../fixtures/corpus/${name}`, import.meta.url));
const FILES = {
  m2ts: 'generated/m2ts-192-avc-aac.m2ts',
  cut: 'generated/ts-cut-mid-packet.ts',
  noAudio: 'mux.js/test-no-audio-segment.ts',
  hevc: 'shaka-player/h265-cea.mp4',
};

describe('dock manifests for other makers\' files (issue 11)', () => {
  const tmp = makeTempDir('bodycam-issue11-');
  let server: LoggedServer;
  const manifests = new Map<string, RecordingManifest>();
  let once: { code: number | null; stderr: string };

  beforeAll(async () => {
    server = await startLoggedServer();
    const bay = join(tmp.path, 'bays', 'bay1', 'DCIM');
    mkdirSync(bay, { recursive: true });
    for (const name of Object.values(FILES)) copyFileSync(corpus(name), join(bay, name.split('/').pop()!));
    writeFileSync(join(tmp.path, 'token'), TOKEN + '\n', { mode: 0o600 });
    once = await runCli(['dock', '--once', '--bays', join(tmp.path, 'bays'), '--endpoint', server.url, '--token-file', join(tmp.path, 'token'),
      '--state-dir', join(tmp.path, 'state'), '--dock-id', 'dock-1', '--status-port', '0', '--settle', '0.2s', '--segment-seconds', '2s', '--max-backoff', '1s'],
    { env: { ...process.env, BODYCAM_LOG_LEVEL: 'warn' }, timeoutMs: 90_000 });
    const list = (await (await server.request('/v1/recordings')).json()) as { recordings?: RecordingListEntry[] } | RecordingListEntry[];
    const entries = Array.isArray(list) ? list : list.recordings ?? [];
    for (const entry of entries) {
      const recording = (await (await server.request(`/v1/recordings/${entry.id}`)).json()) as { manifest: RecordingManifest };
      manifests.set(recording.manifest.file.name, recording.manifest);
      expect(sha256Hex(await serverContent(server, entry.id))).toBe(recording.manifest.file.sha256);
    }
  });
  afterAll(async () => {
    await server?.close();
    tmp.cleanup();
  });

  const manifest = (key: keyof typeof FILES): RecordingManifest => {
    const name = FILES[key].split('/').pop()!;
    const found = manifests.get(name);
    if (!found) throw new Error(`${name} did not arrive (dock --once exit ${once.code}: ${once.stderr.slice(-800)})`);
    expect(found.file.sha256).toBe(sha256Hex(readFileSync(corpus(FILES[key]))));
    return found;
  };

  it('item 1: an M2TS says 192-byte packets and every cut is at a packet start (the timestamp prefix)', () => {
    const m = manifest('m2ts');
    expect(m.file.media?.packetSize).toBe(192);
    const bytes = readFileSync(corpus(FILES.m2ts));
    expect(m.segments.length).toBe(3);
    for (const s of m.segments) {
      expect(s.offset % 192).toBe(0);
      expect(bytes[s.offset + 4]).toBe(0x47);
    }
    expect(manifest('noAudio').file.media?.packetSize).toBe(188);
  });

  it('item 3: a TS cut mid-packet is truncated, with the reason in the notes', () => {
    const m = manifest('cut');
    expect(m.file.truncated).toBe(true);
    expect(m.integrity.notes.join('\n')).toMatch(/cut short: the stream ends 101 bytes into a 188-byte packet/);
    expect(manifest('m2ts').file.truncated).toBeUndefined();
  });

  it('item 5: per-stream fingerprints; an AAC stream with sample rate 0 is named, the video keeps its hash', () => {
    const m = manifest('noAudio');
    expect(m.file.mediaFingerprints?.map((s) => [s.index, s.type, 'hash' in s])).toEqual([[0, 'video', true], [1, 'audio', false]]);
    expect(m.file.mediaFingerprint).toMatch(/^sha256:v0=[0-9a-f]{64}$/);
    expect(m.integrity.notes.join('\n')).toMatch(/media fingerprint of audio stream 1 not computed/);
    expect(manifest('m2ts').file.mediaFingerprint).toMatch(/^sha256:v0=[0-9a-f]{64},a1=[0-9a-f]{64}$/);
  });

  it('item 6: one clock, the video presentation time from the first frame; no end from the container duration', () => {
    const hevc = manifest('hevc');
    expect(hevc.file.media?.durationSeconds).toBeGreaterThan(1e9);
    expect(hevc.segments[0]!.startTime).toBe(0);
    expect(hevc.segments[hevc.segments.length - 1]!.endTime).toBeCloseTo(2.002, 3);
    expect(hevc.file.media?.timeOrigin).toBeGreaterThan(1.6e9);
    const m2ts = manifest('m2ts');
    expect(m2ts.segments.map((s) => s.startTime)).toEqual([0, 2, 4]);
    expect(m2ts.segments[2]!.endTime).toBeCloseTo(6, 3);
    // ffmpeg's TS muxer starts the clock near 1.4 s (+ the B-frame delay): the origin is that first frame.
    expect(m2ts.file.media?.timeOrigin).toBeGreaterThan(1);
    expect(m2ts.file.media?.timeOrigin).toBeLessThan(2);
  });
});
