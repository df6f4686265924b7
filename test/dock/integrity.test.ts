/**
 * The integrity note of a sidecar-less recording says what was seen (ATTACK-s5 A11): a camera with
 * DEVICE.json that left no sidecar did not finish, but its media is called cut only when the planner
 * found it cut. The note goes into the signed manifest and the console's facts. A signed sidecar holding text no
 * camera writes (a 900 KiB category) is flagged.
 */
import { describe, expect, it } from '@jest/globals';
import { generateSigningKeyPair, signObject } from '../../src/protocol/signing.js';
import { checkIntegrity, SIDECAR_TEXT_MAX } from '../../src/dock/integrity.js';

const base = { sidecar: undefined, fileSha256: 'a'.repeat(64), fileSize: 10, fileName: 'x.mp4' };
const device = { serial: 'BWC1' } as unknown as Parameters<typeof checkIntegrity>[0]['device'];

describe('checkIntegrity without a sidecar', () => {
  it('a complete media file is not described as ending mid-way', () => {
    const verdict = checkIntegrity({ ...base, device, truncated: true });
    expect(verdict.status).toBe('unsigned');
    expect(verdict.notes).toEqual(['no sidecar: the camera did not finish this recording (power loss?); the media itself reads to its end (truncated)']);
  });
  it('a media file the planner found cut says so', () => {
    expect(checkIntegrity({ ...base, device, truncated: true, mediaCut: true }).notes).toEqual(['no sidecar and the media ends mid-box: recording cut by power loss (truncated)']);
  });
  it('a camera without DEVICE.json keeps its own note', () => {
    expect(checkIntegrity({ ...base, truncated: false }).notes).toEqual(['no sidecar: file from a camera without DEVICE.json']);
  });
});

describe('checkIntegrity of a signed sidecar holding text no camera writes (ATTACK-s6 B4)', () => {
  const keys = generateSigningKeyPair();
  const camera = { serial: 'BWC1', publicKeyPem: keys.publicKeyPem } as unknown as Parameters<typeof checkIntegrity>[0]['device'];
  const signed = (fields: Record<string, unknown>) => {
    const sidecar = signObject({ sha256: 'a'.repeat(64), size: 10, fileName: 'x.mp4', ...fields }, keys.privateKeyPem) as Record<string, unknown>;
    return checkIntegrity({ ...base, device: camera, truncated: false, sidecar: { kind: 'ok', sidecar, bytes: Buffer.from(JSON.stringify(sidecar)) } });
  };
  it('a camera\'s own texts verify', () => {
    expect(signed({ category: 'x'.repeat(SIDECAR_TEXT_MAX), officerId: 'OFC-1', markers: [{ t: 1, label: 'door' }] })).toEqual({ status: 'verified', notes: [] });
  });
  it('a string over the limit anywhere (a field, a marker label, a key) is flagged sidecar-invalid, naming where and how long', () => {
    expect(signed({ category: 'C'.repeat(921_604) })).toEqual({ status: 'sidecar-invalid', notes: [`sidecar text category is 921604 characters (at most ${SIDECAR_TEXT_MAX} expected)`] });
    expect(signed({ markers: [{ t: 1, label: 'door' }, { t: 2, label: 'L'.repeat(5000) }] }).notes).toEqual([`sidecar text markers[1].label is 5000 characters (at most ${SIDECAR_TEXT_MAX} expected)`]);
    const key = signed({ ['k'.repeat(10_000)]: 1 });
    expect(key.status).toBe('sidecar-invalid');
    expect(key.notes[0]).toMatch(/^sidecar text k{99}… is 10000 characters/);
  });
  it('a hash mismatch stays the status; the long text is a further note', () => {
    const sidecar = signObject({ sha256: 'b'.repeat(64), category: 'C'.repeat(5000) }, keys.privateKeyPem) as Record<string, unknown>;
    const verdict = checkIntegrity({ ...base, device: camera, truncated: false, sidecar: { kind: 'ok', sidecar, bytes: Buffer.alloc(0) } });
    expect(verdict.status).toBe('hash-mismatch');
    expect(verdict.notes).toContain(`sidecar text category is 5000 characters (at most ${SIDECAR_TEXT_MAX} expected)`);
  });
});
