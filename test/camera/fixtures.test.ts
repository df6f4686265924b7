import { describe, it, expect } from '@jest/globals';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadDevice } from '../../src/camera/index.js';
import type { Sidecar } from '../../src/protocol/cameraStorage/index.js';
import { verifyObject } from '../../src/protocol/signing.js';
import { sha256Of } from '../helpers/media.js';

const cameras = fileURLToPath(new URL('../../fixtures/cameras/', import.meta.url));
const sidecarsOf = (name: string): string[] => readdirSync(join(cameras, name, 'DCIM/100BWC')).filter((n) => n.endsWith('.json'));

function totalBytes(dir: string): number {
  return readdirSync(dir).reduce((sum, name) => {
    const path = join(dir, name);
    return sum + (statSync(path).isDirectory() ? totalBytes(path) : statSync(path).size);
  }, 0);
}

describe('committed camera fixtures', () => {
  it('stay small and carry no private keys', () => {
    expect(totalBytes(cameras) + totalBytes(join(cameras, '../foreign'))).toBeLessThan(5 * 1024 * 1024);
    for (const name of readdirSync(cameras)) expect(existsSync(join(cameras, name, '.system'))).toBe(false);
  });

  it('say what they claim: good ones verify, faulty ones fail the way their name says', async () => {
    const verdict = async (name: string): Promise<string[]> => {
      const key = (await loadDevice(join(cameras, name))).publicKeyPem;
      return sidecarsOf(name).map((file) => {
        const sidecar = JSON.parse(readFileSync(join(cameras, name, 'DCIM/100BWC', file), 'utf8')) as Sidecar;
        if (!verifyObject(sidecar as unknown as Record<string, unknown>, key)) return 'signature-invalid';
        const media = join(cameras, name, 'DCIM/100BWC', sidecar.fileName);
        return sha256Of(media) === sidecar.sha256 ? 'verified' : 'hash-mismatch';
      });
    };
    for (const good of ['fmp4-h264', 'mpegts-h264', 'mp4-h264', 'fmp4-hevc', 'mpegts-hevc', 'clock-skew', 'storage-full']) {
      expect([good, await verdict(good)]).toEqual([good, ['verified']]);
    }
    expect(await verdict('rollover')).toEqual(['verified', 'verified', 'verified']);
    expect(await verdict('bitflip')).toEqual(['hash-mismatch']);
    expect(await verdict('bad-signature')).toEqual(['signature-invalid']);
    for (const unsigned of ['power-loss', 'power-loss-mpegts', 'zero-byte', 'missing-sidecar']) expect(sidecarsOf(unsigned)).toEqual([]);
  });
});
