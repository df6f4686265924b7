/**
 * The wipe's act (src/dock/wipe.ts wipeRecording) on real files, with a server stand-in that
 * answers the proof-of-possession challenge from the bytes it "holds": every check that can stop
 * the wipe is driven on its own, including the changes that land during the server's round trip.
 * Written to kill the mutants StrykerJS found surviving (`npm run mutation`, docs/reliability.md).
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { wipeAllowed } from '../../src/dock/pipeline.js';
import { ProblemError } from '../../src/dock/errors.js';
import type { RecordingRow } from '../../src/dock/journal.js';
import { possessionProblems, sameHash, wipeRecording, type WipeDeps } from '../../src/dock/wipe.js';
import { generateSigningKeyPair, keyIdOf, signObject } from '../../src/protocol/signing.js';
import { PROTOCOL_VERSION, SIDECAR_MAX_BYTES, type PossessionChallenge, type RecordingManifest, type SegmentPlanEntry } from '../../src/protocol/types.js';
import { makeTempDir } from '../helpers/tmp.js';

const server = generateSigningKeyPair();
const other = generateSigningKeyPair();
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const tmp = makeTempDir('bodycam-wiperec-');
afterAll(() => tmp.cleanup());
let n = 0;

interface Case {
  root: string;
  media: string;
  sidecar: string;
  bytes: Buffer;
  sidecarBytes: Buffer;
  row: RecordingRow;
  manifest: RecordingManifest;
  receipt: Record<string, unknown>;
  calls: Array<PossessionChallenge & { sidecar?: boolean }>;
  failures: string[][];
  deps: WipeDeps;
}

/** A camera folder with one recording of `segments` segments of 1000 bytes, receipted, held by an honest server. */
function setup(options: { segments?: number; sidecar?: boolean; sidecarHeld?: boolean; answer?: (c: Case, challenge: PossessionChallenge & { sidecar?: boolean }) => Promise<unknown> } = {}): Case {
  const root = join(tmp.path, `cam${++n}`);
  mkdirSync(join(root, 'DCIM'), { recursive: true });
  const count = options.segments ?? 3;
  const bytes = Buffer.alloc(count * 1000);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 31 + n) & 0xff;
  const media = join(root, 'DCIM', 'a.mp4');
  const sidecar = join(root, 'DCIM', 'a.json');
  writeFileSync(media, bytes);
  utimesSync(media, 1_700_000_000, 1_700_000_000);
  const sidecarBytes = Buffer.from(JSON.stringify({ category: 'traffic-stop', n }));
  if (options.sidecar !== false) writeFileSync(sidecar, sidecarBytes);
  const segments: SegmentPlanEntry[] = Array.from({ length: count }, (_, i) => ({ index: i, offset: i * 1000, length: 1000, sha256: sha(bytes.subarray(i * 1000, (i + 1) * 1000)) }));
  const recordingId = `CAM-${n}`;
  const manifest = {
    recordingId, merkleRoot: sha(Buffer.from('root')), segments,
    device: { serial: 'CAM', ...(options.sidecarHeld === false ? {} : { sidecarSha256: sha(sidecarBytes) }) },
  } as unknown as RecordingManifest;
  const receipt = signObject({
    protocol: PROTOCOL_VERSION, type: 'receipt', recordingId, dockId: 'dock-1', sha256: sha(bytes), size: bytes.length, segmentCount: count,
    merkleRoot: manifest.merkleRoot, receivedAt: '2026-12-01T10:00:00.000Z', serverKeyId: keyIdOf(server.publicKeyPem), custodySeq: 1,
  }, server.privateKeyPem);
  const row = { key: 'k', uid: 'u', recordingId, sha256: sha(bytes), size: bytes.length, mtimeMs: Math.floor(statSync(media).mtimeMs), relPath: 'DCIM/a.mp4' } as unknown as RecordingRow;
  const c = { root, media, sidecar, bytes, sidecarBytes, row, manifest, receipt, calls: [], failures: [] } as unknown as Case;
  /** The honest server: SHA-256(nonce ‖ the bytes it stored). */
  const honest = async (challenge: PossessionChallenge & { sidecar?: boolean }): Promise<unknown> => {
    const nonce = Buffer.from(challenge.nonce, 'hex');
    return {
      recordingId, nonce: challenge.nonce,
      answers: challenge.segments.map((index) => ({ index, sha256: createHash('sha256').update(nonce).update(bytes.subarray(index * 1000, (index + 1) * 1000)).digest('hex') })),
      ...(challenge.sidecar ? { sidecarSha256: createHash('sha256').update(nonce).update(sidecarBytes).digest('hex') } : {}),
    };
  };
  c.deps = {
    trustedServerKeyPem: server.publicKeyPem,
    dockId: 'dock-1',
    possession: async (id, challenge) => {
      expect(id).toBe(recordingId);
      c.calls.push(challenge);
      return options.answer ? options.answer(c, challenge) : honest(challenge);
    },
    onPossessionFailure: (problems) => { c.failures.push(problems); },
  };
  (c as Case & { honest: typeof honest }).honest = honest;
  return c;
}

const honestOf = (c: Case) => (c as Case & { honest: (ch: PossessionChallenge & { sidecar?: boolean }) => Promise<unknown> }).honest;
const target = (c: Case, sidecar = true) => ({ absPath: c.media, cameraRoot: c.root, ...(sidecar ? { sidecarPath: c.sidecar } : {}) });
const run = (c: Case, sidecar = true) => wipeRecording(c.row, c.manifest, c.receipt, target(c, sidecar), c.deps);

describe('wipeRecording: deletes only what the server proved it holds, through the descriptor it checked', () => {
  it('wipes file and sidecar after a correct proof over every segment and the sidecar', async () => {
    const c = setup();
    await expect(run(c)).resolves.toEqual({ wiped: true });
    expect(existsSync(c.media)).toBe(false);
    expect(existsSync(c.sidecar)).toBe(false);
    expect(c.calls).toHaveLength(1);
    expect(c.calls[0]!.nonce).toMatch(/^[0-9a-f]{64}$/);
    expect(c.calls[0]!.segments).toEqual([0, 1, 2]);
    expect(c.calls[0]!.sidecar).toBe(true);
    expect(c.failures).toEqual([]);
  });

  it('uses a fresh nonce for every challenge', async () => {
    const a = setup();
    const b = setup();
    await run(a);
    await run(b);
    expect(a.calls[0]!.nonce).not.toBe(b.calls[0]!.nonce);
  });

  it('challenges 8 segments of a long plan, first and last included, and checks them', async () => {
    const c = setup({ segments: 12, sidecar: false });
    await expect(run(c, false)).resolves.toEqual({ wiped: true });
    const segments = c.calls[0]!.segments;
    expect(segments).toHaveLength(8);
    expect(segments).toContain(0);
    expect(segments).toContain(11);
    expect(c.calls[0]!.sidecar).toBeUndefined();
  });

  it('wipes a file without a sidecar and does not challenge a sidecar', async () => {
    const c = setup({ sidecar: false });
    await expect(run(c)).resolves.toEqual({ wiped: true });
    expect(existsSync(c.media)).toBe(false);
    expect(c.calls[0]!.sidecar).toBeUndefined();
  });

  it('never wipes with a key that was not confirmed out of band, and does not even ask', async () => {
    const c = setup();
    c.deps.trustedServerKeyPem = undefined;
    const outcome = await run(c);
    expect(outcome).toMatchObject({ wiped: false, keep: { code: 'untrusted_server_key' } });
    expect(existsSync(c.media)).toBe(true);
    expect(c.calls).toHaveLength(0);
  });

  it('keeps the file for a receipt signed by another key', async () => {
    const c = setup();
    c.deps.trustedServerKeyPem = other.publicKeyPem;
    expect(await run(c)).toMatchObject({ wiped: false, keep: { code: 'receipt_invalid' } });
    expect(existsSync(c.media)).toBe(true);
    expect(c.calls).toHaveLength(0);
  });

  it('pauses (throws) when the file is not on the camera', async () => {
    const c = setup();
    renameSync(c.media, c.media + '.away');
    await expect(run(c)).rejects.toMatchObject({ name: 'PausedError' });
  });

  it('keeps a symlink in place of the file, and what it points to', async () => {
    const c = setup();
    renameSync(c.media, join(c.root, 'elsewhere.mp4'));
    symlinkSync(join(c.root, 'elsewhere.mp4'), c.media);
    expect(await run(c)).toMatchObject({ wiped: false, keep: { code: 'file_replaced' } });
    expect(existsSync(join(c.root, 'elsewhere.mp4'))).toBe(true);
  });

  it('keeps a folder in place of the file', async () => {
    const c = setup();
    renameSync(c.media, c.media + '.away');
    mkdirSync(c.media);
    expect(await run(c)).toMatchObject({ wiped: false, keep: { code: 'file_replaced' } });
  });

  it('keeps a file whose bytes changed with size and mtime kept', async () => {
    const c = setup();
    const changed = Buffer.from(c.bytes);
    changed[1500] ^= 0xff;
    writeFileSync(c.media, changed);
    utimesSync(c.media, 1_700_000_000, 1_700_000_000);
    expect(await run(c)).toMatchObject({ wiped: false, keep: { code: 'file_changed' } });
    expect(readFileSync(c.media)).toEqual(changed);
  });

  it('keeps a file that grew after its receipt', async () => {
    const c = setup();
    writeFileSync(c.media, Buffer.concat([c.bytes, Buffer.from('more')]));
    utimesSync(c.media, 1_700_000_000, 1_700_000_000);
    expect(await run(c)).toMatchObject({ wiped: false, keep: { code: 'file_changed' } });
  });

  it('keeps a file whose mtime moved since detection', async () => {
    const c = setup();
    utimesSync(c.media, 1_700_000_100, 1_700_000_100);
    expect(await run(c)).toMatchObject({ wiped: false, keep: { code: 'file_changed' } });
  });

  it('keeps the file when the camera folder no longer contains it', async () => {
    const c = setup();
    await expect(wipeRecording(c.row, c.manifest, c.receipt, { absPath: c.media, cameraRoot: join(tmp.path, 'not-the-camera'), sidecarPath: c.sidecar }, c.deps)).rejects.toMatchObject({ code: 'ENOENT' });
    expect(existsSync(c.media)).toBe(true);
    const other2 = join(tmp.path, `other-root-${n}`);
    mkdirSync(other2, { recursive: true });
    expect(await wipeRecording(c.row, c.manifest, c.receipt, { absPath: c.media, cameraRoot: other2, sidecarPath: c.sidecar }, c.deps))
      .toMatchObject({ wiped: false, keep: { code: 'outside_camera' } });
    expect(existsSync(c.media)).toBe(true);
  });

  it('keeps both when the server answers a wrong hash, and reports the failure', async () => {
    const c = setup({
      answer: async (cc, ch) => {
        const good = await honestOf(cc)(ch) as { answers: Array<{ index: number; sha256: string }> };
        good.answers[0]!.sha256 = '0'.repeat(64);
        return good;
      },
    });
    expect(await run(c)).toMatchObject({ wiped: false, keep: { code: 'possession_failed' } });
    expect(existsSync(c.media)).toBe(true);
    expect(existsSync(c.sidecar)).toBe(true);
    expect(c.failures).toHaveLength(1);
    expect(c.failures[0]!.join(' ')).toMatch(/segment 0/);
  });

  it('keeps both when the server answers with the plain segment hashes (it holds only hashes)', async () => {
    const c = setup({ answer: async (cc, ch) => ({ recordingId: cc.row.recordingId, nonce: ch.nonce, answers: ch.segments.map((i) => ({ index: i, sha256: cc.manifest.segments[i]!.sha256 })) }) });
    expect(await run(c)).toMatchObject({ wiped: false, keep: { code: 'possession_failed' } });
    expect(existsSync(c.media)).toBe(true);
  });

  it('keeps both when the server cannot prove the sidecar', async () => {
    const c = setup({ answer: async (cc, ch) => ({ ...(await honestOf(cc)(ch) as object), sidecarSha256: '1'.repeat(64) }) });
    expect(await run(c)).toMatchObject({ wiped: false, keep: { code: 'possession_failed' } });
    expect(existsSync(c.sidecar)).toBe(true);
  });

  it('a permanent refusal is an answer that proves nothing: keep, with the reason', async () => {
    const c = setup({ answer: async () => { throw ProblemError.received(400, 'invalid_challenge', 'challenge refused'); } });
    const outcome = await run(c);
    expect(outcome).toMatchObject({ wiped: false, keep: { code: 'possession_failed' } });
    expect((outcome as { keep: { reason: string } }).keep.reason).toMatch(/refused/);
    expect(c.failures).toHaveLength(1);
    expect(existsSync(c.media)).toBe(true);
  });

  it('a transient failure (server unreachable or busy) throws, so the job retries later', async () => {
    const busy = setup({ answer: async () => { throw ProblemError.received(503, 'unavailable', 'busy'); } });
    await expect(run(busy)).rejects.toMatchObject({ problemCode: 'unavailable' });
    const down = setup({ answer: async () => { throw new Error('ECONNREFUSED'); } });
    await expect(run(down)).rejects.toThrow('ECONNREFUSED');
    expect(existsSync(busy.media) && existsSync(down.media)).toBe(true);
    expect(busy.failures).toEqual([]);
  });

  it('keeps the file when it is overwritten in place during the server round trip', async () => {
    const c = setup({
      answer: async (cc, ch) => {
        const answer = await honestOf(cc)(ch);
        const changed = Buffer.from(cc.bytes);
        changed[10] ^= 0xff;
        writeFileSync(cc.media, changed);
        utimesSync(cc.media, 1_700_000_000, 1_700_000_000);
        return answer;
      },
    });
    expect(await run(c)).toMatchObject({ wiped: false, keep: { code: 'file_changed' } });
    expect(existsSync(c.media)).toBe(true);
  });

  it('keeps the file that replaced the checked one at its path during the round trip', async () => {
    const c = setup({
      answer: async (cc, ch) => {
        const answer = await honestOf(cc)(ch);
        writeFileSync(cc.media + '.new', cc.bytes);
        utimesSync(cc.media + '.new', 1_700_000_000, 1_700_000_000);
        renameSync(cc.media + '.new', cc.media);
        return answer;
      },
    });
    // The rename unlinks the checked inode (its ctime moves) and the path names another one: either stops it.
    const outcome = await run(c);
    expect(outcome.wiped).toBe(false);
    expect(['file_changed', 'file_replaced']).toContain((outcome as { keep: { code: string } }).keep.code);
    expect(existsSync(c.media)).toBe(true);
  });

  it('keeps both when the sidecar is re-signed during the round trip', async () => {
    const c = setup({
      answer: async (cc, ch) => {
        const answer = await honestOf(cc)(ch);
        writeFileSync(cc.sidecar, Buffer.from(JSON.stringify({ category: 'use-of-force', n: 0 })));
        return answer;
      },
    });
    const outcome = await run(c);
    expect(outcome.wiped).toBe(false);
    expect(['sidecar_changed', 'sidecar_replaced']).toContain((outcome as { keep: { code: string } }).keep.code);
    expect(existsSync(c.media) && existsSync(c.sidecar)).toBe(true);
  });

  it('keeps both when the sidecar was re-signed after the receipt', async () => {
    const c = setup();
    writeFileSync(c.sidecar, Buffer.from(JSON.stringify({ category: 'use-of-force', n: 0 })));
    expect(await run(c)).toMatchObject({ wiped: false, keep: { code: 'sidecar_changed' } });
    expect(existsSync(c.media) && existsSync(c.sidecar)).toBe(true);
    expect(c.calls).toHaveLength(0);
  });

  it('keeps both when the server holds no copy of the sidecar', async () => {
    const c = setup({ sidecarHeld: false });
    expect(await run(c)).toMatchObject({ wiped: false, keep: { code: 'sidecar_not_held' } });
    expect(existsSync(c.media) && existsSync(c.sidecar)).toBe(true);
  });

  it('keeps both for a sidecar that is a symlink, or a folder, or too large', async () => {
    const link = setup();
    renameSync(link.sidecar, join(link.root, 'real.json'));
    symlinkSync(join(link.root, 'real.json'), link.sidecar);
    expect(await run(link)).toMatchObject({ wiped: false, keep: { code: 'sidecar_replaced' } });
    const folder = setup();
    renameSync(folder.sidecar, folder.sidecar + '.away');
    mkdirSync(folder.sidecar);
    expect(await run(folder)).toMatchObject({ wiped: false, keep: { code: 'sidecar_replaced' } });
    const big = setup();
    writeFileSync(big.sidecar, Buffer.alloc(SIDECAR_MAX_BYTES + 1, 0x20));
    expect(await run(big)).toMatchObject({ wiped: false, keep: { code: 'sidecar_changed' } });
    for (const c of [link, folder, big]) expect(existsSync(c.media)).toBe(true);
  });

  it('a sidecar gone since the scan: the file is wiped, nothing else is touched', async () => {
    const c = setup();
    renameSync(c.sidecar, c.sidecar + '.away');
    await expect(run(c)).resolves.toEqual({ wiped: true });
    expect(existsSync(c.sidecar + '.away')).toBe(true);
    expect(c.calls[0]!.sidecar).toBeUndefined();
  });

  it('refuses a plan that does not tile the file', async () => {
    const c = setup();
    c.manifest.segments[1] = { ...c.manifest.segments[1]!, offset: 1001 };
    await expect(run(c)).rejects.toMatchObject({ code: 'E_PLAN_GAP' });
    expect(existsSync(c.media)).toBe(true);
  });

  it('an aborted wipe throws and keeps the file', async () => {
    const c = setup();
    const controller = new AbortController();
    controller.abort();
    await expect(wipeRecording(c.row, c.manifest, c.receipt, target(c), { ...c.deps, signal: controller.signal })).rejects.toMatchObject({ name: 'PausedError' });
    expect(existsSync(c.media)).toBe(true);
  });
});

describe('wipeAllowed: only a completed row with a receipt, not skipped, not flagged', () => {
  const row = (over: Partial<RecordingRow>): RecordingRow => ({ state: 'completed', receiptJson: '{}', info: { integrity: 'verified' }, ...over }) as unknown as RecordingRow;
  it('allows a completed, receipted, verified row', () => { expect(wipeAllowed(row({}))).toBe(true); });
  it('refuses every other state', () => {
    for (const state of ['detected', 'probed', 'planned', 'hashed', 'uploading', 'wiped', 'quarantined']) expect(wipeAllowed(row({ state } as Partial<RecordingRow>))).toBe(false);
  });
  it('refuses without a receipt', () => { expect(wipeAllowed(row({ receiptJson: null }))).toBe(false); });
  it('refuses a row whose wipe was skipped', () => { expect(wipeAllowed(row({ info: { integrity: 'verified', wipeSkipped: true } }))).toBe(false); });
  it('refuses a flagged row (tampered, truncated)', () => {
    expect(wipeAllowed(row({ info: { integrity: 'hash-mismatch' } }))).toBe(false);
    expect(wipeAllowed(row({ info: { integrity: 'unsigned', truncated: true } }))).toBe(false);
  });
});

describe('answers of the wrong JSON type fail closed without throwing (mutation survivors)', () => {
  const h = 'a'.repeat(64);
  it('sameHash is false for a hash wrapped in an array or any non-string', () => {
    expect(sameHash([h], h)).toBe(false);
    expect(sameHash(h, [h])).toBe(false);
    expect(sameHash({ toString: () => h }, h)).toBe(false);
  });
  it('possessionProblems reports null items in the answers list instead of throwing', () => {
    const problems = possessionProblems({ recordingId: 'R', nonce: 'n', answers: [null, { index: 0, sha256: h }] }, { recordingId: 'R', nonce: 'n', segments: new Map([[0, h]]) });
    expect(problems.some((p) => /not challenged/.test(p))).toBe(true);
  });
});
