/**
 * The wipe's decision functions (src/dock/wipe.ts), one test per check: removing any single
 * check (or making a function return at once) makes a test here fail. Mutation testing
 * (StrykerJS) targets this file's subject.
 */
import { describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import { generateSigningKeyPair, keyIdOf, signObject } from '../../src/protocol/signing.js';
import { PROTOCOL_VERSION } from '../../src/protocol/types.js';
import {
  chooseChallengeSegments, decideLocal, decideWipe, pathProblems, possessionProblems, receiptExpectationOf, receiptProblems, sameHash,
  statChanges, verifyReceipt, type ExpectedPossession, type ReceiptExpectation, type StatSnapshot, type WipeFacts,
} from '../../src/dock/wipe.js';

const server = generateSigningKeyPair();
const other = generateSigningKeyPair();
const H = (text: string): string => createHash('sha256').update(text).digest('hex');

const expected: ReceiptExpectation = { recordingId: 'CAM1-abc', dockId: 'dock-1', sha256: H('file'), size: 1234, merkleRoot: H('root'), segmentCount: 3 };

function receipt(overrides: Record<string, unknown> = {}, key = server.privateKeyPem, keyPem = server.publicKeyPem): Record<string, unknown> {
  return signObject({
    protocol: PROTOCOL_VERSION, type: 'receipt', recordingId: expected.recordingId, dockId: expected.dockId, sha256: expected.sha256,
    size: expected.size, segmentCount: expected.segmentCount, merkleRoot: expected.merkleRoot, receivedAt: '2026-12-01T10:00:00.000Z',
    serverKeyId: keyIdOf(keyPem), custodySeq: 7, ...overrides,
  }, key);
}

describe('receiptProblems: every field of the receipt is checked', () => {
  it('accepts the pinned server\'s receipt for our recording', () => {
    expect(receiptProblems(receipt(), expected, server.publicKeyPem)).toEqual([]);
    expect(() => verifyReceipt(receipt(), expected, server.publicKeyPem)).not.toThrow();
  });
  it('rejects a receipt that is not an object', () => {
    for (const bad of [null, undefined, 'receipt', 42, [receipt()]]) expect(receiptProblems(bad, expected, server.publicKeyPem)).toEqual(['receipt is not a JSON object']);
  });
  it('rejects a signature by another key (a fake endpoint signing its own receipts)', () => {
    const forged = receipt({}, other.privateKeyPem, server.publicKeyPem);
    expect(receiptProblems(forged, expected, server.publicKeyPem)).toEqual(['signature does not verify with the pinned server key']);
  });
  it('rejects a receipt whose fields were edited after signing', () => {
    const edited = { ...receipt(), custodySeq: 8 };
    expect(receiptProblems(edited, expected, server.publicKeyPem)).toEqual(['signature does not verify with the pinned server key']);
  });
  it('rejects a receipt without a signature', () => {
    const { signature: _s, ...unsigned } = receipt();
    expect(receiptProblems(unsigned, expected, server.publicKeyPem)).toContain('signature does not verify with the pinned server key');
  });
  it('rejects a receipt naming another server key id, even when signed by the pinned key', () => {
    const problems = receiptProblems(receipt({ serverKeyId: keyIdOf(other.publicKeyPem) }), expected, server.publicKeyPem);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/names server key/);
  });
  it('rejects a pinned key that is not a key', () => {
    expect(receiptProblems(receipt(), expected, 'not a pem').some((p) => /names server key/.test(p))).toBe(true);
  });
  const fields: Array<[string, unknown, RegExp]> = [
    ['protocol', 'bodycam-ingest/0', /protocol/],
    ['type', 'checkpoint', /not a receipt/],
    ['recordingId', 'CAM1-other', /is for CAM1-other/],
    ['dockId', 'dock-2', /for dock dock-2/],
    ['sha256', H('other file'), /receipt sha256/],
    ['size', 1235, /receipt size/],
    ['merkleRoot', H('other root'), /merkleRoot/],
    ['segmentCount', 2, /segmentCount/],
  ];
  for (const [field, value, message] of fields) {
    it(`rejects a validly signed receipt with another ${field}`, () => {
      const problems = receiptProblems(receipt({ [field]: value }), expected, server.publicKeyPem);
      expect(problems).toHaveLength(1);
      expect(problems[0]).toMatch(message);
      expect(() => verifyReceipt(receipt({ [field]: value }), expected, server.publicKeyPem)).toThrow(/receipt rejected/);
    });
  }
  it('builds the expectation from the row, the manifest and this dock', () => {
    const manifest = { merkleRoot: H('root'), segments: [{}, {}, {}] } as never;
    expect(receiptExpectationOf({ recordingId: 'CAM1-abc', sha256: H('file'), size: 1234 }, manifest, 'dock-1')).toEqual(expected);
    expect(receiptExpectationOf({ recordingId: null, sha256: null, size: 1 }, manifest, 'd')).toMatchObject({ recordingId: '', sha256: '' });
  });
});

describe('chooseChallengeSegments', () => {
  it('challenges every segment of a short plan', () => {
    expect(chooseChallengeSegments([0])).toEqual([0]);
    expect(chooseChallengeSegments([0, 1, 2, 3, 4, 5, 6, 7])).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
  });
  it('challenges 8 distinct segments of a long plan, always the first and the last', () => {
    const indexes = Array.from({ length: 100 }, (_, i) => i);
    for (let run = 0; run < 50; run++) {
      const picked = chooseChallengeSegments(indexes);
      expect(picked).toHaveLength(8);
      expect(new Set(picked).size).toBe(8);
      expect(picked[0]).toBe(0);
      expect(picked[7]).toBe(99);
      expect(picked).toEqual([...picked].sort((a, b) => a - b));
      for (const i of picked) expect(indexes).toContain(i);
    }
  });
  it('draws the middle segments at random (not always the same ones)', () => {
    const indexes = Array.from({ length: 1000 }, (_, i) => i);
    const seen = new Set<string>();
    for (let run = 0; run < 10; run++) seen.add(chooseChallengeSegments(indexes).join(','));
    expect(seen.size).toBeGreaterThan(5);
  });
  it('uses the draw it is given (deterministic with a fixed draw)', () => {
    const indexes = Array.from({ length: 20 }, (_, i) => i);
    expect(chooseChallengeSegments(indexes, () => 0)).toEqual([0, 1, 2, 3, 4, 5, 6, 19]);
    const last = chooseChallengeSegments(indexes, (bound) => bound - 1);
    expect(last).toEqual(chooseChallengeSegments(indexes, (bound) => bound - 1));
    expect(last).toHaveLength(8);
    expect(new Set(last).size).toBe(8);
    expect(last).toContain(18);
    expect(last).not.toEqual([0, 1, 2, 3, 4, 5, 6, 19]);
  });
  it('with 9 segments picks all but one middle segment', () => {
    const picked = chooseChallengeSegments([0, 1, 2, 3, 4, 5, 6, 7, 8]);
    expect(picked).toHaveLength(8);
    expect(picked).toContain(0);
    expect(picked).toContain(8);
  });
});

describe('sameHash', () => {
  it('is true only for two equal 64-hex strings', () => {
    expect(sameHash(H('a'), H('a'))).toBe(true);
    expect(sameHash(H('a'), H('b'))).toBe(false);
    expect(sameHash(H('a').toUpperCase(), H('a').toUpperCase())).toBe(false);
    expect(sameHash('', '')).toBe(false);
    expect(sameHash(undefined, undefined)).toBe(false);
    expect(sameHash(H('a'), undefined)).toBe(false);
    expect(sameHash(undefined, H('a'))).toBe(false);
    expect(sameHash(H('a').slice(0, 63), H('a').slice(0, 63))).toBe(false);
    expect(sameHash(H('a') + '0', H('a') + '0')).toBe(false);
  });
});

describe('possessionProblems: the server must answer this nonce, these segments, these bytes', () => {
  const nonce = 'ab'.repeat(32);
  const segments = new Map([[0, H('pop0')], [4, H('pop4')], [9, H('pop9')]]);
  const want: ExpectedPossession = { recordingId: 'CAM1-abc', nonce, segments };
  const good = () => ({ recordingId: 'CAM1-abc', nonce, answers: [{ index: 0, sha256: H('pop0') }, { index: 4, sha256: H('pop4') }, { index: 9, sha256: H('pop9') }] });
  it('accepts the right answers (in any order)', () => {
    expect(possessionProblems(good(), want)).toEqual([]);
    const reversed = good();
    reversed.answers.reverse();
    expect(possessionProblems(reversed, want)).toEqual([]);
  });
  it('rejects an answer that is not an object', () => {
    for (const bad of [null, undefined, 'ok', [good()]]) expect(possessionProblems(bad, want)).toEqual(['answer is not a JSON object']);
  });
  it('rejects an answer for another recording', () => {
    expect(possessionProblems({ ...good(), recordingId: 'CAM1-other' }, want)).toEqual(['answer is for CAM1-other, not CAM1-abc']);
  });
  it('rejects an answer to another nonce (a replayed old answer)', () => {
    expect(possessionProblems({ ...good(), nonce: 'cd'.repeat(32) }, want)).toEqual(['answer is for another nonce']);
  });
  it('rejects an answer without an answers list', () => {
    expect(possessionProblems({ recordingId: 'CAM1-abc', nonce }, want)).toEqual(['answer has no answers list']);
  });
  it('rejects each single wrong hash', () => {
    for (const index of [0, 4, 9]) {
      const bad = good();
      bad.answers = bad.answers.map((a) => (a.index === index ? { index, sha256: H('wrong') } : a));
      expect(possessionProblems(bad, want)).toEqual([`segment ${index}: wrong answer`]);
    }
  });
  it('rejects the plain segment hash (what a server holding only hashes could send)', () => {
    const bad = good();
    bad.answers[1] = { index: 4, sha256: 'not-a-hash' };
    expect(possessionProblems(bad, want)).toEqual(['segment 4: wrong answer']);
  });
  it('rejects answers for segments that were not challenged', () => {
    const bad = good();
    bad.answers[2] = { index: 5, sha256: H('pop9') };
    expect(possessionProblems(bad, want)).toEqual(['answer for segment 5, which was not challenged', 'segment 9 not answered']);
  });
  it('rejects an extra answer', () => {
    const bad = good();
    bad.answers.push({ index: 7, sha256: H('x') });
    expect(possessionProblems(bad, want)).toEqual(['4 answers for 3 challenged segments', 'answer for segment 7, which was not challenged']);
  });
  it('rejects a missing answer', () => {
    const bad = good();
    bad.answers.pop();
    expect(possessionProblems(bad, want)).toEqual(['2 answers for 3 challenged segments', 'segment 9 not answered']);
  });
  it('rejects one segment answered twice in place of another', () => {
    const bad = good();
    bad.answers[2] = { index: 0, sha256: H('pop0') };
    expect(possessionProblems(bad, want)).toEqual(['segment 0 answered twice', 'segment 9 not answered']);
  });
  it('rejects a non-numeric index', () => {
    const bad = good() as { answers: Array<{ index: unknown; sha256: string }> };
    bad.answers[0] = { index: '0', sha256: H('pop0') };
    expect(possessionProblems(bad, want)).toContain('segment 0 not answered');
  });
  it('checks the sidecar answer when the sidecar was challenged', () => {
    const withSidecar: ExpectedPossession = { ...want, sidecar: H('popsidecar') };
    expect(possessionProblems({ ...good(), sidecarSha256: H('popsidecar') }, withSidecar)).toEqual([]);
    expect(possessionProblems({ ...good(), sidecarSha256: H('old sidecar') }, withSidecar)).toEqual(['sidecar: wrong answer']);
    expect(possessionProblems(good(), withSidecar)).toEqual(['sidecar: wrong answer']);
    // Not challenged: an answer there is ignored.
    expect(possessionProblems({ ...good(), sidecarSha256: H('anything') }, want)).toEqual([]);
  });
});

const snap = (overrides: Partial<StatSnapshot> = {}): StatSnapshot => ({ dev: 2049n, ino: 1234n, size: 1234n, mtimeNs: 1_700_000_000_123_456_789n, ctimeNs: 1_700_000_001_000_000_000n, isFile: true, ...overrides });

describe('statChanges and pathProblems', () => {
  it('sees no change in an identical snapshot', () => {
    expect(statChanges(snap(), snap())).toEqual([]);
  });
  for (const [field, value] of [['dev', 1n], ['ino', 99n], ['size', 1235n], ['mtime', 1_700_000_000_123_456_790n], ['ctime', 1_700_000_001_000_000_001n]] as const) {
    it(`sees a change of ${field} alone`, () => {
      const key = field === 'mtime' ? 'mtimeNs' : field === 'ctime' ? 'ctimeNs' : field;
      expect(statChanges(snap(), snap({ [key]: value }))).toEqual([field]);
    });
  }
  it('accepts the path naming the held inode', () => {
    expect(pathProblems(snap(), snap())).toEqual([]);
    // Only identity matters here (times are statChanges' job).
    expect(pathProblems(snap(), snap({ ctimeNs: 1n, size: 1n }))).toEqual([]);
  });
  it('rejects a path that is gone, not a regular file, on another device or another inode', () => {
    expect(pathProblems(snap(), null)).toEqual(['the path is gone']);
    expect(pathProblems(snap(), snap({ isFile: false }))).toEqual(['the path is no longer a regular file']);
    expect(pathProblems(snap(), snap({ dev: 7n }))).toEqual(['the path is on another device']);
    expect(pathProblems(snap(), snap({ ino: 7n }))).toEqual(['the path names another inode']);
  });
});

describe('decideLocal / decideWipe: every fact can stop the wipe on its own', () => {
  const facts = (overrides: Partial<WipeFacts> = {}): WipeFacts => ({
    trustedKey: true, receiptProblems: [], receipt: { sha256: H('file'), size: 1234 }, file: { sha256: H('file'), size: 1234 },
    detected: { size: 1234, mtimeMs: 1_700_000_000_123 }, fileBefore: snap(), fileAfter: snap(), fileAtPath: snap(), insideCamera: true,
    sidecar: { expectedSha256: H('sidecar'), actualSha256: H('sidecar'), before: snap({ ino: 55n, size: 300n }), after: snap({ ino: 55n, size: 300n }), atPath: snap({ ino: 55n, size: 300n }) },
    ...overrides,
  });
  const sidecar = (overrides: Partial<NonNullable<WipeFacts['sidecar']>>) => ({ sidecar: { ...facts().sidecar!, ...overrides } });

  it('wipes when every fact holds and the server proved possession', () => {
    expect(decideLocal(facts())).toBeNull();
    expect(decideWipe(facts(), [])).toBeNull();
    expect(decideWipe(facts({ sidecar: null }), [])).toBeNull();
  });
  it('never wipes without the proof of possession', () => {
    expect(decideWipe(facts(), undefined)?.code).toBe('possession_failed');
    expect(decideWipe(facts(), ['segment 0: wrong answer'])).toEqual({ code: 'possession_failed', reason: 'the server did not prove it holds the bytes: segment 0: wrong answer' });
  });
  const cases: Array<[string, Partial<WipeFacts>, string]> = [
    ['an unconfirmed (trust-on-first-use) server key', { trustedKey: false }, 'untrusted_server_key'],
    ['a receipt problem', { receiptProblems: ['signature does not verify with the pinned server key'] }, 'receipt_invalid'],
    ['a size change under the descriptor', { fileAfter: snap({ size: 1235n }) }, 'file_changed'],
    ['a ctime change under the descriptor (in-place overwrite, mtime restored)', { fileAfter: snap({ ctimeNs: 1n }) }, 'file_changed'],
    ['an mtime change under the descriptor', { fileAfter: snap({ mtimeNs: 1n }) }, 'file_changed'],
    ['a descriptor that is not a regular file', { fileBefore: snap({ isFile: false }), fileAfter: snap({ isFile: false }) }, 'file_replaced'],
    ['a size other than at detection', { detected: { size: 1233, mtimeMs: 1_700_000_000_123 } }, 'file_changed'],
    ['an mtime other than at detection', { detected: { size: 1234, mtimeMs: 1_700_000_000_124 } }, 'file_changed'],
    ['bytes that hash otherwise than the receipt', { file: { sha256: H('other'), size: 1234 } }, 'file_changed'],
    ['a read size other than the receipt\'s', { file: { sha256: H('file'), size: 1235 } }, 'file_changed'],
    ['a receipt size other than the file\'s', { receipt: { sha256: H('file'), size: 1 } }, 'file_changed'],
    ['a path that names another inode (replaced by rename)', { fileAtPath: snap({ ino: 99n }) }, 'file_replaced'],
    ['a path that is gone', { fileAtPath: null }, 'file_replaced'],
    ['a path that leads outside the camera', { insideCamera: false }, 'outside_camera'],
    ['a sidecar the server holds no bytes of', sidecar({ expectedSha256: undefined }), 'sidecar_not_held'],
    ['a sidecar re-signed after the receipt', sidecar({ actualSha256: H('re-signed sidecar') }), 'sidecar_changed'],
    ['a sidecar that changed under its descriptor', sidecar({ after: snap({ ino: 55n, size: 300n, ctimeNs: 5n }) }), 'sidecar_changed'],
    ['a sidecar path that names another inode', sidecar({ atPath: snap({ ino: 56n, size: 300n }) }), 'sidecar_replaced'],
    ['a sidecar path that is now a symlink', sidecar({ atPath: snap({ ino: 55n, size: 300n, isFile: false }) }), 'sidecar_replaced'],
  ];
  for (const [what, overrides, code] of cases) {
    it(`keeps the file for ${what}`, () => {
      const local = decideLocal(facts(overrides));
      expect(local?.code).toBe(code);
      expect(typeof local?.reason).toBe('string');
      expect(decideWipe(facts(overrides), [])?.code).toBe(code);
    });
  }
  it('names the fields that moved', () => {
    expect(decideLocal(facts({ fileAfter: snap({ ctimeNs: 1n, size: 1n }) }))?.reason).toMatch(/size, ctime/);
  });
});
