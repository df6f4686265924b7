/**
 * Dock key pins and the server key are written whole or not at all (src/server/privateFiles.ts
 * publishOnce): a full disk at a dock's first contact once left a 0-byte pin that turned every
 * later request of that dock into a 500, restarts included (model test, seed 7).
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkDockKey } from '../../../src/server/trust/dockKeys.js';
import { loadOrCreateServerKey } from '../../../src/server/trust/serverKey.js';
import { generateSigningKeyPair } from '../../../src/protocol/signing.js';
import { makeTempDir } from '../../helpers/tmp.js';

const tmp = makeTempDir('bodycam-dockkeys-');
const full = join(tmp.path, 'full');
mkdirSync(full);
execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', full]);
afterAll(() => {
  try { execFileSync('umount', [full]); } finally { tmp.cleanup(); }
});

describe('key files on a full disk', () => {
  it('a pin that hits ENOSPC leaves no file, and pins whole once space is back', async () => {
    const dataDir = join(full, 'data');
    mkdirSync(join(dataDir, 'docks'), { recursive: true });
    const filler = join(full, 'filler');
    try { writeFileSync(filler, Buffer.alloc(128 * 1024)); } catch { /* filled to the last byte */ }
    const dock = generateSigningKeyPair();
    await expect(checkDockKey(dataDir, 'dock-1', dock.publicKeyPem)).rejects.toMatchObject({ code: 'ENOSPC' });
    expect(readdirSync(join(dataDir, 'docks'))).toEqual([]);
    execFileSync('rm', ['-f', filler]);
    expect(await checkDockKey(dataDir, 'dock-1', dock.publicKeyPem)).toBe('pinned');
    expect(await checkDockKey(dataDir, 'dock-1', dock.publicKeyPem)).toBe('match');
    expect(await checkDockKey(dataDir, 'dock-1', generateSigningKeyPair().publicKeyPem)).toBe('mismatch');
    expect(statSync(join(dataDir, 'docks', 'dock-1.pub.pem')).mode & 0o777).toBe(0o600);
  });

  it('an empty pin left by an older build is no pin: the dock pins again instead of failing forever', async () => {
    const dataDir = join(tmp.path, 'legacy');
    mkdirSync(join(dataDir, 'docks'), { recursive: true });
    writeFileSync(join(dataDir, 'docks', 'dock-2.pub.pem'), '');
    const dock = generateSigningKeyPair();
    expect(await checkDockKey(dataDir, 'dock-2', dock.publicKeyPem)).toBe('pinned');
    expect(await checkDockKey(dataDir, 'dock-2', dock.publicKeyPem)).toBe('match');
  });

  it('the server key made on a full disk is not left half written', async () => {
    const dataDir = join(full, 'server');
    mkdirSync(dataDir);
    const filler = join(full, 'filler2');
    try { writeFileSync(filler, Buffer.alloc(128 * 1024)); } catch { /* full */ }
    await expect(loadOrCreateServerKey(dataDir)).rejects.toMatchObject({ code: 'ENOSPC' });
    expect(existsSync(join(dataDir, 'server-key.pem'))).toBe(false);
    execFileSync('rm', ['-f', filler]);
    const key = await loadOrCreateServerKey(dataDir);
    expect((await loadOrCreateServerKey(dataDir)).keyId).toBe(key.keyId);
  });
});
