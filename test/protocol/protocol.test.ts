import { describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { canonicalize } from '../../src/protocol/jcs.js';
import { formatDigestHeader, parseDigestHeader, sha256Hex } from '../../src/protocol/digest.js';
import { merkleRoot } from '../../src/protocol/merkle.js';
import { generateSigningKeyPair, signObject, signedBytes, verifyObject } from '../../src/protocol/signing.js';
import { isPermanentProblem, PROBLEM_ERROR_CODE, ProblemError } from '../../src/protocol/problems.js';
import { INTEGRITY_STATUSES, isIntegrityProblem, isValidId } from '../../src/protocol/types.js';
import { makeTempDir } from '../helpers/tmp.js';

describe('JCS (RFC 8785)', () => {
  it('sorts keys by UTF-16 code units and serialises numbers like ES', () => {
    // Example adapted from RFC 8785 §3.2.3 (property sorting).
    const input = { '\u20ac': 'Euro Sign', '\r': 'Carriage Return', '\ufb33': 'Hebrew Letter Dalet With Dagesh', '1': 'One', '\ud83d\ude00': 'Emoji: Grinning Face', '\u0080': 'Control', '\u00f6': 'Latin Small Letter O With Diaeresis' };
    // JS objects put integer-like keys first, so read the order off the text itself.
    const keys = [...canonicalize(input).matchAll(/"([^"]*)":"/g)].map((m) => JSON.parse(`"${m[1]}"`) as string);
    expect(keys).toEqual(['\r', '1', '\u0080', '\u00f6', '\u20ac', '\ud83d\ude00', '\ufb33']);
    expect(canonicalize({ b: [1e21, 0.000001, -0, 1.5], a: null, c: undefined })).toBe('{"a":null,"b":[1e+21,0.000001,0,1.5]}');
  });
  it('rejects values JSON cannot carry', () => {
    expect(() => canonicalize({ x: Number.NaN })).toThrow(/non-finite/);
  });
});

describe('Ed25519 signatures over JCS', () => {
  it('verifies, fails after any change, and is checkable with openssl alone', () => {
    const keys = generateSigningKeyPair();
    const other = generateSigningKeyPair();
    const signed = signObject({ serial: 'BWC-1', sha256: 'ab'.repeat(32), n: 3 }, keys.privateKeyPem);
    expect(verifyObject(signed, keys.publicKeyPem)).toBe(true);
    expect(verifyObject({ ...signed, n: 4 }, keys.publicKeyPem)).toBe(false);
    expect(verifyObject(signed, other.publicKeyPem)).toBe(false);
    expect(verifyObject({ ...signed, signature: 'garbage' }, keys.publicKeyPem)).toBe(false);

    const dir = makeTempDir();
    try {
      writeFileSync(join(dir.path, 'pub.pem'), keys.publicKeyPem);
      writeFileSync(join(dir.path, 'data.json'), signedBytes(signed));
      writeFileSync(join(dir.path, 'sig.bin'), Buffer.from(signed.signature, 'base64'));
      const out = execFileSync('openssl', ['pkeyutl', '-verify', '-pubin', '-inkey', 'pub.pem', '-rawin', '-in', 'data.json', '-sigfile', 'sig.bin'], { cwd: dir.path }).toString();
      expect(out).toMatch(/Signature Verified Successfully/);
    } finally {
      dir.cleanup();
    }
  });
});

describe('digests and Merkle root', () => {
  it('round-trips RFC 9530 sha-256 fields', () => {
    const hex = sha256Hex('hello');
    expect(parseDigestHeader(formatDigestHeader(hex))).toBe(hex);
    expect(parseDigestHeader('sha-512=:AAAA:, sha-256=:' + Buffer.from(hex, 'hex').toString('base64') + ':')).toBe(hex);
    expect(parseDigestHeader('sha-256=:AAAA:')).toBeUndefined();
    expect(parseDigestHeader(undefined)).toBeUndefined();
  });
  it('follows RFC 6962 tree hashing', () => {
    const a = sha256Hex('a');
    const b = sha256Hex('b');
    const c = sha256Hex('c');
    const leaf = (h: string) => sha256Hex(Buffer.concat([Buffer.from([0]), Buffer.from(h, 'hex')]));
    const node = (l: string, r: string) => sha256Hex(Buffer.concat([Buffer.from([1]), Buffer.from(l, 'hex'), Buffer.from(r, 'hex')]));
    expect(merkleRoot([a])).toBe(leaf(a));
    expect(merkleRoot([a, b, c])).toBe(node(node(leaf(a), leaf(b)), leaf(c)));
    expect(merkleRoot([a, b])).not.toBe(merkleRoot([b, a]));
  });
});

describe('ids and problems', () => {
  it('accepts only safe path components', () => {
    expect(isValidId('BWC-00017-3f2a')).toBe(true);
    for (const bad of ['../etc', '..', 'a/b', '', '.hidden', 'a'.repeat(200), 'x..y', 'a\nb']) expect(isValidId(bad)).toBe(false);
  });
  it('treats 408/409/429 and 5xx as transient', () => {
    expect(isPermanentProblem(400)).toBe(true);
    expect(isPermanentProblem(503)).toBe(false);
    expect(isPermanentProblem(429)).toBe(false);
    expect(isPermanentProblem(422, 'digest_mismatch')).toBe(false);
    expect(isPermanentProblem(409, 'conflict')).toBe(true);
    // Only the table's own codes count, not what every object has.
    expect(isPermanentProblem(503, 'constructor')).toBe(false);
  });
  it('has one ProblemError for a problem answered and a problem received, with its own internal code', () => {
    const answered = new ProblemError('rate_limited', 'busy', { retryAfter: 5, extension: { index: 3 } });
    expect(answered).toMatchObject({ code: PROBLEM_ERROR_CODE, problemCode: 'rate_limited', status: 429, permanent: false, retryAfter: 5, retryAfterMs: 5000 });
    expect(answered.body('/v1/x')).toEqual({ type: 'https://bodycam-dock.invalid/problems/rate_limited', title: 'Too many requests', status: 429, code: 'rate_limited', detail: 'busy', instance: '/v1/x', index: 3 });
    expect(new ProblemError('conflict')).toMatchObject({ message: 'Recording id exists with different content', permanent: true });
    // Received: the status it came with, and codes this table does not know (another server's, a bare proxy answer).
    const proxied = ProblemError.received(503, 'not_found', 'gateway says', { retryAfterMs: 1500 });
    expect(proxied).toMatchObject({ code: PROBLEM_ERROR_CODE, problemCode: 'not_found', status: 503, permanent: true, retryAfterMs: 1500 });
    expect(ProblemError.received(404, 'http_404', 'Not Found')).toMatchObject({ problemCode: 'http_404', status: 404, permanent: true });
    expect(ProblemError.received(409, 'http_409', 'x')).toMatchObject({ permanent: false });
    expect(ProblemError.received(502, 'bad_gateway', 'x').body()).toMatchObject({ code: 'bad_gateway', status: 502, title: 'HTTP 502' });
  });
});

describe('integrity statuses (one list)', () => {
  it('flags every status but verified and unsigned, and nothing for no status', () => {
    expect(INTEGRITY_STATUSES.filter((s) => isIntegrityProblem(s))).toEqual(['hash-mismatch', 'signature-invalid', 'sidecar-invalid']);
    for (const none of [undefined, null, '']) expect(isIntegrityProblem(none)).toBe(false);
  });
});
