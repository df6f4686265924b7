/**
 * wipeRecording (src/dock/wipe.ts) in process, driven through its test pause, on real files, with the server's side of the
 * proof of possession played by a function: what it challenges, what it compares, and that
 * every way the camera or the answer can differ keeps both file and sidecar. In process so
 * that mutation testing can kill mutants of the I/O path too (the CLI tests run dist/).
 */
import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, symlinkSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { merkleRoot } from '../../src/protocol/merkle.js';
import { generateSigningKeyPair, keyIdOf, signObject } from '../../src/protocol/signing.js';
import { PROTOCOL_VERSION, type PossessionChallenge, type RecordingManifest } from '../../src/protocol/types.js';
import type { RecordingRow } from '../../src/dock/journal.js';
import { wipeRecording, type WipeDeps, type WipeTarget } from '../../src/dock/wipe.js';
import { ProblemError, TransportError } from '../../src/dock/errors.js';
import { testBytes } from '../helpers/manifest.js';
import { makeTempDir } from '../helpers/tmp.js';

const server = generateSigningKeyPair();
const H = (...parts: Buffer[]): string => { const h = createHash('sha256'); for (const p of parts) h.update(p); return h.digest('hex'); };
const SEG = 10_000;
const WHOLE_SECOND = 1_700_000_000;

interface Fixture { target: WipeTarget; row: RecordingRow; manifest: RecordingManifest; receipt: Record<string, unknown>; media: Buffer; sidecar: Buffer }

function fixture(root: string, size = 35_000, segmentSize = SEG): Fixture {
  const cameraRoot = join(root, 'cam');
  mkdirSync(join(cameraRoot, 'DCIM'), { recursive: true });
  const media = testBytes(size, 3);
  const sidecar = Buffer.from('{"format":"bodycam-sidecar/1","category":"traffic"}\n');
  const absPath = join(cameraRoot, 'DCIM', 'a.mp4');
  const sidecarPath = join(cameraRoot, 'DCIM', 'a.json');
  writeFileSync(absPath, media);
  writeFileSync(sidecarPath, sidecar);
  utimesSync(absPath, WHOLE_SECOND, WHOLE_SECOND);
  const segments = [];
  for (let offset = 0, index = 0; offset < size; offset += segmentSize, index++) {
    const length = Math.min(segmentSize, size - offset);
    segments.push({ index, offset, length, sha256: H(media.subarray(offset, offset + length)) });
  }
  const manifest = {
    protocol: PROTOCOL_VERSION, recordingId: 'CAM-1', device: { serial: 'CAM', sidecarSha256: H(sidecar), sidecarBase64: sidecar.toString('base64') },
    dock: { id: 'dock-1', publicKeyPem: 'x' }, file: { name: 'a.mp4', size, sha256: H(media) }, integrity: { status: 'verified', notes: [] },
    segments, merkleRoot: merkleRoot(segments.map((s) => s.sha256)), createdAt: 'now', signature: 'x',
  } as unknown as RecordingManifest;
  const receipt = signObject({
    protocol: PROTOCOL_VERSION, type: 'receipt', recordingId: 'CAM-1', dockId: 'dock-1', sha256: H(media), size, segmentCount: segments.length,
    merkleRoot: manifest.merkleRoot, receivedAt: 'now', serverKeyId: keyIdOf(server.publicKeyPem), custodySeq: 1,
  }, server.privateKeyPem);
  const row = { recordingId: 'CAM-1', sha256: H(media), size, mtimeMs: WHOLE_SECOND * 1000, relPath: 'DCIM/a.mp4', state: 'completed' } as unknown as RecordingRow;
  return { target: { absPath, cameraRoot, sidecarPath }, row, manifest, receipt, media, sidecar };
}

/** A server that holds exactly these bytes and answers honestly; `tamper` bends the answer. */
function honest(f: Fixture, log: PossessionChallenge[] = [], tamper: (a: Record<string, unknown>) => unknown = (a) => a) {
  return async (id: string, challenge: PossessionChallenge & { sidecar?: boolean }): Promise<unknown> => {
    log.push(challenge);
    const nonce = Buffer.from(challenge.nonce, 'hex');
    const answer = {
      recordingId: id, nonce: challenge.nonce,
      answers: challenge.segments.map((index) => {
        const s = f.manifest.segments[index]!;
        return { index, sha256: H(nonce, f.media.subarray(s.offset, s.offset + s.length)) };
      }),
      ...(challenge.sidecar ? { sidecarSha256: H(nonce, f.sidecar) } : {}),
    };
    return tamper(answer);
  };
}

describe('wipeRecording', () => {
  let dir: ReturnType<typeof makeTempDir>;
  let f: Fixture;
  beforeEach(() => { dir = makeTempDir('bodycam-wiperec-'); f = fixture(dir.path); });
  afterEach(() => { delete process.env.BODYCAM_WIPE_PAUSE_FILE; dir.cleanup(); });
  const deps = (over: Partial<WipeDeps> = {}): WipeDeps => ({ trustedServerKeyPem: server.publicKeyPem, dockId: 'dock-1', possession: honest(f), ...over });
  const kept = (code: string) => {
    expect(existsSync(f.target.absPath)).toBe(true);
    expect(existsSync(f.target.sidecarPath!)).toBe(true);
    return code;
  };

  it('wipes file and sidecar after a fresh challenge of every segment and the sidecar', async () => {
    const log: PossessionChallenge[] = [];
    const failures: string[][] = [];
    const outcome = await wipeRecording(f.row, f.manifest, f.receipt, f.target, deps({ possession: honest(f, log), onPossessionFailure: (p) => failures.push(p) }));
    expect(outcome).toEqual({ wiped: true });
    expect(existsSync(f.target.absPath)).toBe(false);
    expect(existsSync(f.target.sidecarPath!)).toBe(false);
    expect(log).toHaveLength(1);
    expect(log[0]!.segments).toEqual([0, 1, 2, 3]);
    expect(log[0]!.nonce).toMatch(/^[0-9a-f]{64}$/);
    expect((log[0] as { sidecar?: boolean }).sidecar).toBe(true);
    expect(failures).toEqual([]);
    // A second wipe uses another nonce.
    const g = fixture(join(dir.path, 'again'));
    await wipeRecording(g.row, g.manifest, g.receipt, g.target, deps({ possession: honest(g, log) }));
    expect(log[1]!.nonce).not.toBe(log[0]!.nonce);
  });

  it('challenges 8 segments of a long plan, the first and the last among them', async () => {
    f = fixture(join(dir.path, 'long'), 100_000, 5_000);
    const log: PossessionChallenge[] = [];
    expect(await wipeRecording(f.row, f.manifest, f.receipt, f.target, deps({ possession: honest(f, log) }))).toEqual({ wiped: true });
    expect(log[0]!.segments).toHaveLength(8);
    expect(log[0]!.segments[0]).toBe(0);
    expect(log[0]!.segments[7]).toBe(19);
  });

  it('wipes a recording without a sidecar when there is none on the camera', async () => {
    unlinkSync(f.target.sidecarPath!);
    const log: PossessionChallenge[] = [];
    expect(await wipeRecording(f.row, f.manifest, f.receipt, { ...f.target, sidecarPath: undefined }, deps({ possession: honest(f, log) }))).toEqual({ wiped: true });
    expect((log[0] as { sidecar?: boolean }).sidecar).toBeUndefined();
  });

  it('keeps both without a confirmed key, without being asked', async () => {
    const log: PossessionChallenge[] = [];
    const outcome = await wipeRecording(f.row, f.manifest, f.receipt, f.target, deps({ trustedServerKeyPem: undefined, possession: honest(f, log) }));
    expect(outcome).toMatchObject({ wiped: false, keep: { code: kept('untrusted_server_key') } });
    expect(log).toHaveLength(0);
  });

  it('keeps both for a receipt signed by another key or for other bytes', async () => {
    const other = generateSigningKeyPair();
    expect(await wipeRecording(f.row, f.manifest, f.receipt, f.target, deps({ trustedServerKeyPem: other.publicKeyPem }))).toMatchObject({ wiped: false, keep: { code: kept('receipt_invalid') } });
    expect(await wipeRecording(f.row, f.manifest, { ...f.receipt, size: 1 }, f.target, deps())).toMatchObject({ wiped: false, keep: { code: kept('receipt_invalid') } });
    expect(await wipeRecording(f.row, f.manifest, f.receipt, f.target, deps({ dockId: 'dock-2' }))).toMatchObject({ wiped: false, keep: { code: kept('receipt_invalid') } });
  });

  const liars: Array<[string, (a: Record<string, unknown>) => unknown]> = [
    ['the wrong nonce', (a) => ({ ...a, nonce: 'ab'.repeat(32) })],
    ['another recording', (a) => ({ ...a, recordingId: 'CAM-2' })],
    ['a missing answer', (a) => ({ ...a, answers: (a.answers as unknown[]).slice(1) })],
    ['a wrong hash', (a) => ({ ...a, answers: (a.answers as Array<{ index: number }>).map((x, i) => (i === 2 ? { index: x.index, sha256: H(Buffer.from('x')) } : x)) })],
    ['the old sidecar', (a) => ({ ...a, sidecarSha256: H(Buffer.from('old')) })],
    ['nothing', () => undefined],
  ];
  it.each(liars)('keeps both when the server answers %s, and reports it as a possession failure', async (_what, tamper) => {
    const failures: string[][] = [];
    const outcome = await wipeRecording(f.row, f.manifest, f.receipt, f.target, deps({ possession: honest(f, [], tamper), onPossessionFailure: (p) => failures.push(p) }));
    expect(outcome).toMatchObject({ wiped: false, keep: { code: kept('possession_failed') } });
    expect(failures).toHaveLength(1);
    expect(failures[0]!.length).toBeGreaterThan(0);
  });

  it('keeps both when the server refuses the challenge (a permanent problem), and retries later when it cannot be reached', async () => {
    const refuse = async (): Promise<unknown> => { throw ProblemError.received(404, 'not_found', 'no such recording'); };
    expect(await wipeRecording(f.row, f.manifest, f.receipt, f.target, deps({ possession: refuse }))).toMatchObject({ wiped: false, keep: { code: kept('possession_failed') } });
    const down = async (): Promise<unknown> => { throw new TransportError('connection refused'); };
    await expect(wipeRecording(f.row, f.manifest, f.receipt, f.target, deps({ possession: down }))).rejects.toBeInstanceOf(TransportError);
    const busy = async (): Promise<unknown> => { throw ProblemError.received(503, 'unavailable', 'busy'); };
    await expect(wipeRecording(f.row, f.manifest, f.receipt, f.target, deps({ possession: busy }))).rejects.toBeInstanceOf(ProblemError);
    kept('');
  });

  it('keeps both when the bytes on the camera are not the receipted ones', async () => {
    const bytes = Buffer.from(f.media);
    bytes[20_000] = bytes[20_000]! ^ 1;
    writeFileSync(f.target.absPath, bytes);
    utimesSync(f.target.absPath, WHOLE_SECOND, WHOLE_SECOND);
    expect(await wipeRecording(f.row, f.manifest, f.receipt, f.target, deps())).toMatchObject({ wiped: false, keep: { code: kept('file_changed') } });
  });

  it('keeps both when the file grew (bytes past the plan count)', async () => {
    writeFileSync(f.target.absPath, Buffer.concat([f.media, Buffer.from('more')]));
    utimesSync(f.target.absPath, WHOLE_SECOND, WHOLE_SECOND);
    expect(await wipeRecording(f.row, f.manifest, f.receipt, f.target, deps())).toMatchObject({ wiped: false, keep: { code: kept('file_changed') } });
  });

  it('keeps both when the mtime differs from detection', async () => {
    utimesSync(f.target.absPath, WHOLE_SECOND + 5, WHOLE_SECOND + 5);
    expect(await wipeRecording(f.row, f.manifest, f.receipt, f.target, deps())).toMatchObject({ wiped: false, keep: { code: kept('file_changed') } });
  });

  it('keeps both when the sidecar differs from the bytes the server holds, or the manifest holds none', async () => {
    writeFileSync(f.target.sidecarPath!, '{"format":"bodycam-sidecar/1","category":"critical"}\n');
    expect(await wipeRecording(f.row, f.manifest, f.receipt, f.target, deps())).toMatchObject({ wiped: false, keep: { code: kept('sidecar_changed') } });
    writeFileSync(f.target.sidecarPath!, f.sidecar);
    const noBytes = { ...f.manifest, device: { serial: 'CAM' } } as RecordingManifest;
    expect(await wipeRecording(f.row, noBytes, f.receipt, f.target, deps())).toMatchObject({ wiped: false, keep: { code: kept('sidecar_not_held') } });
  });

  it('keeps both when the file or the sidecar is a symlink (to a right copy)', async () => {
    const copy = join(dir.path, 'copy.mp4');
    writeFileSync(copy, f.media);
    unlinkSync(f.target.absPath);
    symlinkSync(copy, f.target.absPath);
    expect(await wipeRecording(f.row, f.manifest, f.receipt, f.target, deps())).toMatchObject({ wiped: false, keep: { code: kept('file_replaced') } });
    expect(existsSync(copy)).toBe(true);
    const g = fixture(join(dir.path, 'g'));
    const sidecarCopy = join(dir.path, 'copy.json');
    writeFileSync(sidecarCopy, g.sidecar);
    unlinkSync(g.target.sidecarPath!);
    symlinkSync(sidecarCopy, g.target.sidecarPath!);
    expect(await wipeRecording(g.row, g.manifest, g.receipt, g.target, deps({ possession: honest(g) }))).toMatchObject({ wiped: false, keep: { code: 'sidecar_replaced' } });
    expect(existsSync(g.target.absPath)).toBe(true);
  });

  it('keeps both when the path leads outside the camera (a folder swapped for a symlink)', async () => {
    const outside = join(dir.path, 'outside');
    mkdirSync(outside);
    writeFileSync(join(outside, 'a.mp4'), f.media);
    utimesSync(join(outside, 'a.mp4'), WHOLE_SECOND, WHOLE_SECOND);
    writeFileSync(join(outside, 'a.json'), f.sidecar);
    renameSync(join(f.target.cameraRoot, 'DCIM'), join(dir.path, 'dcim-moved'));
    symlinkSync(outside, join(f.target.cameraRoot, 'DCIM'));
    expect(await wipeRecording(f.row, f.manifest, f.receipt, f.target, deps())).toMatchObject({ wiped: false, keep: { code: 'outside_camera' } });
    expect(existsSync(join(outside, 'a.mp4'))).toBe(true);
  });

  it('pauses (throws) when the file is not on the camera right now', async () => {
    unlinkSync(f.target.absPath);
    await expect(wipeRecording(f.row, f.manifest, f.receipt, f.target, deps())).rejects.toThrow(/not on the camera/);
  });

  /** Change the camera while the wipe is paused after its re-hash. */
  const race = async (change: () => void, over: Partial<WipeDeps> = {}) => {
    const pause = join(dir.path, 'pause');
    process.env.BODYCAM_WIPE_PAUSE_FILE = pause;
    const running = wipeRecording(f.row, f.manifest, f.receipt, f.target, deps(over));
    for (const deadline = Date.now() + 30_000; !existsSync(pause) && Date.now() < deadline;) await new Promise((r) => setTimeout(r, 10));
    expect(readFileSync(pause, 'utf8')).toBe('DCIM/a.mp4');
    change();
    unlinkSync(pause);
    return running;
  };

  it('keeps both when the file is overwritten in place during the wipe (size and mtime restored)', async () => {
    const outcome = await race(() => {
      const bytes = readFileSync(f.target.absPath);
      bytes[5] = bytes[5]! ^ 1;
      writeFileSync(f.target.absPath, bytes);
      utimesSync(f.target.absPath, WHOLE_SECOND, WHOLE_SECOND);
      expect(statSync(f.target.absPath).size).toBe(f.media.length);
    });
    expect(outcome).toMatchObject({ wiped: false, keep: { code: kept('file_changed') } });
  });

  it('keeps both when another file is renamed over the path during the wipe', async () => {
    const outcome = await race(() => {
      writeFileSync(f.target.absPath + '.new', f.media);
      renameSync(f.target.absPath + '.new', f.target.absPath);
    });
    expect(outcome).toMatchObject({ wiped: false, keep: { code: kept('file_replaced') } });
  });

  it('keeps both when the sidecar is re-signed (rename) or edited in place during the wipe', async () => {
    const outcome = await race(() => {
      writeFileSync(f.target.sidecarPath + '.tmp', f.sidecar);
      renameSync(f.target.sidecarPath + '.tmp', f.target.sidecarPath!);
    });
    expect(outcome).toMatchObject({ wiped: false, keep: { code: kept('sidecar_replaced') } });
    f = fixture(join(dir.path, 'inplace'));
    const again = await race(() => { writeFileSync(f.target.sidecarPath!, f.sidecar); });
    expect(again).toMatchObject({ wiped: false, keep: { code: kept('sidecar_changed') } });
  });
});
