/**
 * The integrity note of a sidecar-less recording says what was seen (ATTACK-s5 A11): a camera with
 * DEVICE.json that left no sidecar did not finish, but its media is called cut only when the planner
 * found it cut. The note goes into the signed manifest and the console's facts.
 */
import { describe, expect, it } from '@jest/globals';
import { checkIntegrity } from '../../src/dock/integrity.js';

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
