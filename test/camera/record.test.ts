import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { recordCamera, loadDevice, type RecordOptions } from '../../src/camera/index.js';
import type { Sidecar } from '../../src/protocol/cameraStorage/index.js';
import { verifyObject, signedBytes } from '../../src/protocol/signing.js';
import { runTool } from '../../src/media/run.js';
import { makeTempDir } from '../helpers/tmp.js';
import { decodeAll, probeAny, sha256Of } from '../helpers/media.js';

const small = { width: 320, height: 240, fps: 15, videoKbps: 120, audioKbps: 32 } satisfies Partial<RecordOptions>;
const tmp = makeTempDir('bodycam-camera-');
const at = (name: string): string => join(tmp.path, name);
const readSidecar = (path: string): Sidecar => JSON.parse(readFileSync(path, 'utf8')) as Sidecar;

afterAll(() => tmp.cleanup());

describe('containers and codecs', () => {
  const combos = [
    ['fmp4', 'h264'], ['mpegts', 'h264'], ['mp4', 'h264'], ['fmp4', 'hevc'], ['mpegts', 'hevc'],
  ] as const;
  it.each(combos)('%s/%s probes with the expected duration, size and streams, and its sidecar checks out', async (container, codec) => {
    const storage = at(`cc-${container}-${codec}`);
    const result = await recordCamera({ storage, ...small, container, codec, durationSeconds: 3, seed: 11 });
    expect(result.files).toHaveLength(1);
    const file = result.files[0]!;
    expect(file.mediaPath.endsWith(container === 'mpegts' ? '.ts' : '.mp4')).toBe(true);
    const probed = await probeAny(file.mediaPath);
    expect(Math.abs((probed.durationSeconds ?? 0) - 3)).toBeLessThanOrEqual(1);
    const video = probed.streams.filter((s) => s.type === 'video');
    const audio = probed.streams.filter((s) => s.type === 'audio');
    expect(probed.streams).toHaveLength(2);
    expect(video[0]).toMatchObject({ codec: codec === 'hevc' ? 'hevc' : 'h264', width: 320, height: 240 });
    expect(audio[0]).toMatchObject({ codec: 'aac', channels: 1 });
    const sidecar = readSidecar(file.sidecarPath!);
    expect(sidecar.sha256).toBe(sha256Of(file.mediaPath));
    expect(sidecar.size).toBe(readFileSync(file.mediaPath).length);
    expect(sidecar.container).toBe(container);
    expect(verifyObject(sidecar as unknown as Record<string, unknown>, (await loadDevice(storage)).publicKeyPem)).toBe(true);
  });
});

describe('signatures', () => {
  it('verifies with openssl alone, as docs/camera-storage.md describes', async () => {
    const storage = at('openssl');
    const { files } = await recordCamera({ storage, ...small, durationSeconds: 2, seed: 12 });
    const sidecar = readSidecar(files[0]!.sidecarPath!);
    writeFileSync(at('pub.pem'), (await loadDevice(storage)).publicKeyPem);
    writeFileSync(at('canonical.json'), signedBytes(sidecar as unknown as Record<string, unknown>));
    writeFileSync(at('sig.bin'), Buffer.from(sidecar.signature, 'base64'));
    const verify = (): ReturnType<typeof spawnSync> => spawnSync('openssl', ['pkeyutl', '-verify', '-pubin', '-inkey', at('pub.pem'), '-rawin', '-in', at('canonical.json'), '-sigfile', at('sig.bin')]);
    expect(verify().stdout.toString()).toContain('Signature Verified Successfully');
    writeFileSync(at('canonical.json'), signedBytes({ ...sidecar, category: 'tampered' } as unknown as Record<string, unknown>));
    expect(verify().status).not.toBe(0);
  });

  it('bitflip: the signed hash no longer matches the file; bad-signature: the signature fails', async () => {
    const storage = at('sigfaults');
    const flipped = await recordCamera({ storage, ...small, durationSeconds: 2, seed: 13, faults: ['bitflip'] });
    const file = flipped.files[0]!;
    const sidecar = readSidecar(file.sidecarPath!);
    const key = (await loadDevice(storage)).publicKeyPem;
    expect(verifyObject(sidecar as unknown as Record<string, unknown>, key)).toBe(true);
    expect(file.faults).toContain('bitflip');
    expect(sha256Of(file.mediaPath)).not.toBe(sidecar.sha256);
    expect(verifyObject({ ...sidecar, sha256: sha256Of(file.mediaPath) }, key)).toBe(false);
    const bad = await recordCamera({ storage, ...small, durationSeconds: 2, faults: ['bad-signature'] });
    const badSidecar = readSidecar(bad.files[0]!.sidecarPath!);
    expect(badSidecar.sha256).toBe(sha256Of(bad.files[0]!.mediaPath));
    expect(verifyObject(badSidecar as unknown as Record<string, unknown>, key)).toBe(false);
  });
});

describe('faults that leave no sidecar or a short file', () => {
  it('power-loss leaves a cut fMP4 with no sidecar that still decodes up to near the cut', async () => {
    const { files } = await recordCamera({ storage: at('power'), ...small, durationSeconds: 8, seed: 14, faults: ['power-loss'] });
    const file = files[0]!;
    expect(file.sidecarPath).toBeUndefined();
    expect(existsSync(file.mediaPath.replace(/\.mp4$/, '.json'))).toBe(false);
    expect(file.cutAtSeconds).toBeGreaterThan(2);
    expect(readFileSync(file.mediaPath).length).toBe(file.cutAtByte);
    const decoded = await decodeAll(file.mediaPath); // runTool rejects on a non-zero exit: a fatal error fails here
    expect(decoded.seconds).toBeGreaterThanOrEqual(file.cutAtSeconds! - 1);
    expect(decoded.seconds).toBeLessThanOrEqual(file.cutAtSeconds! + 1.5);
  });

  it('zero-byte and missing-sidecar leave exactly what they say', async () => {
    const storage = at('nosidecar');
    const zero = await recordCamera({ storage, ...small, durationSeconds: 2, seed: 15, faults: ['zero-byte'] });
    expect(readFileSync(zero.files[0]!.mediaPath).length).toBe(0);
    expect(zero.files[0]!.sidecarPath).toBeUndefined();
    const missing = await recordCamera({ storage, ...small, durationSeconds: 2, faults: ['missing-sidecar'] });
    const probed = await probeAny(missing.files[0]!.mediaPath);
    expect(probed.streams).toHaveLength(2);
    expect(existsSync(missing.files[0]!.mediaPath.replace(/\.mp4$/, '.json'))).toBe(false);
  });

  it('storage-full stops early with a valid short file whose sidecar says why', async () => {
    const { files } = await recordCamera({ storage: at('full'), ...small, durationSeconds: 6, seed: 16, faults: ['storage-full'] });
    const file = files[0]!;
    const sidecar = readSidecar(file.sidecarPath!);
    expect(sidecar.stopReason).toBe('storage-full');
    expect(sidecar.media.durationSeconds).toBe(3);
    const probed = await probeAny(file.mediaPath);
    expect(Math.abs((probed.durationSeconds ?? 0) - 3)).toBeLessThanOrEqual(1);
  });

  it('clock-skew shifts the camera clock and DEVICE.json reports the offset', async () => {
    const plain = await recordCamera({ storage: at('clock-a'), ...small, durationSeconds: 2, seed: 17 });
    const skewed = await recordCamera({ storage: at('clock-b'), ...small, durationSeconds: 2, seed: 17, faults: ['clock-skew=3600'] });
    const a = readSidecar(plain.files[0]!.sidecarPath!);
    const b = readSidecar(skewed.files[0]!.sidecarPath!);
    expect(Date.parse(b.startedAt) - Date.parse(a.startedAt)).toBe(3_600_000);
    expect((await loadDevice(at('clock-b'))).clock.offsetMs).toBe(3_600_000);
  });
});

describe('rollover, tiling, determinism and continuation', () => {
  it('rolls a long recording into files sharing a group id that join into the full duration', async () => {
    const { files } = await recordCamera({ storage: at('roll'), ...small, durationSeconds: 7, maxFileDurationSeconds: 3, seed: 18 });
    expect(files.map((f) => f.durationSeconds)).toEqual([3, 3, 1]);
    const sidecars = files.map((f) => readSidecar(f.sidecarPath!));
    expect(new Set(sidecars.map((s) => s.groupId)).size).toBe(1);
    expect(sidecars.map((s) => s.part)).toEqual([1, 2, 3]);
    const list = at('roll.ffconcat');
    writeFileSync(list, files.map((f) => `file '${f.mediaPath}'`).join('\n') + '\n');
    await runTool('ffmpeg', ['-nostdin', '-v', 'error', '-f', 'concat', '-safe', '0', '-i', list, '-c', 'copy', at('joined.mp4')]);
    const joined = await probeAny(at('joined.mp4'));
    expect(Math.abs((joined.durationSeconds ?? 0) - 7)).toBeLessThanOrEqual(1);
  });

  it('builds a long recording from a unique head and stream-copied tiles, still distinct per recording', async () => {
    const storage = at('tiled');
    const { files } = await recordCamera({ storage, ...small, durationSeconds: 30, count: 2, seed: 19 });
    for (const file of files) {
      const probed = await probeAny(file.mediaPath);
      expect(Math.abs((probed.durationSeconds ?? 0) - 30)).toBeLessThanOrEqual(1);
    }
    expect(files[0]!.sha256).not.toBe(files[1]!.sha256);
  });

  it('the same seed gives byte-equal recordings, names and sidecars', async () => {
    const one = await recordCamera({ storage: at('seed-1'), ...small, durationSeconds: 2, count: 2, seed: 20 });
    const two = await recordCamera({ storage: at('seed-2'), ...small, durationSeconds: 2, count: 2, seed: 20 });
    expect(one.serial).toBe(two.serial);
    const names = (root: string): string[] => readdirSync(join(root, 'DCIM/100BWC')).sort();
    expect(names(at('seed-1'))).toEqual(names(at('seed-2')));
    for (const name of names(at('seed-1'))) {
      expect(readFileSync(join(at('seed-1'), 'DCIM/100BWC', name))).toEqual(readFileSync(join(at('seed-2'), 'DCIM/100BWC', name)));
    }
    expect(readFileSync(join(at('seed-1'), 'DEVICE.json'))).toEqual(readFileSync(join(at('seed-2'), 'DEVICE.json')));
    expect(one.files[0]!.sha256).not.toBe(one.files[1]!.sha256);
  });

  it('recording again continues the sequence and the clock and never overwrites', async () => {
    const storage = at('again');
    const first = await recordCamera({ storage, ...small, durationSeconds: 2, seed: 21 });
    const before = readFileSync(first.files[0]!.mediaPath);
    const second = await recordCamera({ storage, ...small, durationSeconds: 2 });
    expect(second.files[0]!.recordingId.endsWith('-0002')).toBe(true);
    const a = readSidecar(first.files[0]!.sidecarPath!);
    const b = readSidecar(second.files[0]!.sidecarPath!);
    expect(Date.parse(b.startedAt)).toBeGreaterThan(Date.parse(a.endedAt));
    expect(readFileSync(first.files[0]!.mediaPath)).toEqual(before);
  });
});
