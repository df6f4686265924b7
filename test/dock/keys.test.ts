/**
 * The dock key pair: made once, whole, by exactly one of several processes that start at once
 * (two `replay --endpoint` runs sharing one key dir made a public half of one pair and a private
 * half of the other: every manifest then failed bad_signature); a folder whose two files are not
 * one pair is refused with the fix, by the dock and by doctor.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dockKeyIdIn, loadOrCreateDockKey } from '../../src/dock/keys.js';
import { generateSigningKeyPair, keyIdOf, signObject, verifyObject } from '../../src/protocol/signing.js';
import { runCli } from '../helpers/cli.js';
import { withTempDir } from '../helpers/tmp.js';

const keysModule = fileURLToPath(new URL('../../dist/dock/keys.js', import.meta.url));

/** One process that waits for the common start instant, then loads or creates the key and prints its id and whether it made it. */
function racer(dir: string, startAt: number): Promise<string> {
  const script = `import(${JSON.stringify(keysModule)}).then((m) => { while (Date.now() < ${startAt}); const k = m.loadOrCreateDockKey(${JSON.stringify(dir)}); console.log(k.keyId + ' ' + k.created); })`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`racer exited ${code}: ${err}`))));
  });
}

function pairMatches(dir: string): boolean {
  const pair = { privateKeyPem: readFileSync(join(dir, 'dock-key.pem'), 'utf8'), publicKeyPem: readFileSync(join(dir, 'dock-key.pub.pem'), 'utf8') };
  return verifyObject(signObject({ probe: 1 }, pair.privateKeyPem), pair.publicKeyPem);
}

describe('the dock key pair', () => {
  it('made by 6 processes at the same instant, in rounds: one pair, whole, the same for all, exactly one says it made it', async () => {
    await withTempDir('bodycam-keys-', async (root) => {
      for (let round = 0; round < 4; round++) {
        const dir = join(root, `round-${round}`);
        mkdirSync(dir, { mode: 0o700 });
        const startAt = Date.now() + 1500;
        const answers = await Promise.all(Array.from({ length: 6 }, () => racer(dir, startAt)));
        const ids = new Set(answers.map((a) => a.split(' ')[0]));
        expect(ids.size).toBe(1);
        expect(answers.filter((a) => a.endsWith(' true'))).toHaveLength(1);
        expect(pairMatches(dir)).toBe(true);
        expect(keyIdOf(readFileSync(join(dir, 'dock-key.pub.pem'), 'utf8'))).toBe([...ids][0]);
        for (const file of ['dock-key.pem', 'dock-key.pub.pem']) expect(statSync(join(dir, file)).mode & 0o777).toBe(0o600);
      }
    });
  });

  it('a folder with only the private half gets the public half derived from it; the identity is the private key', async () => {
    await withTempDir('bodycam-keys-', (dir) => {
      const pair = generateSigningKeyPair();
      writeFileSync(join(dir, 'dock-key.pem'), pair.privateKeyPem, { mode: 0o600 });
      const loaded = loadOrCreateDockKey(dir);
      expect(loaded).toMatchObject({ created: false, keyId: keyIdOf(pair.publicKeyPem) });
      expect(readFileSync(join(dir, 'dock-key.pub.pem'), 'utf8')).toBe(pair.publicKeyPem);
      expect(dockKeyIdIn(dir)).toBe(keyIdOf(pair.publicKeyPem));
    });
  });

  it('a lone public file (an older build wrote it first and crashed before the private half) is replaced by the new pair', async () => {
    await withTempDir('bodycam-keys-', (dir) => {
      writeFileSync(join(dir, 'dock-key.pub.pem'), generateSigningKeyPair().publicKeyPem, { mode: 0o600 });
      expect(dockKeyIdIn(dir)).toBeUndefined();
      const made = loadOrCreateDockKey(dir);
      expect(made.created).toBe(true);
      expect(pairMatches(dir)).toBe(true);
      expect(loadOrCreateDockKey(dir)).toMatchObject({ created: false, keyId: made.keyId });
    });
  });

  it('a key file that is a symbolic link or a FIFO is refused, never read or chmod-ed through (the link target keeps its mode)', async () => {
    await withTempDir('bodycam-keys-', (dir) => {
      const outside = join(dir, 'outside.pem');
      writeFileSync(outside, generateSigningKeyPair().privateKeyPem, { mode: 0o644 });
      const linked = join(dir, 'linked');
      mkdirSync(linked, { mode: 0o700 });
      symlinkSync(outside, join(linked, 'dock-key.pem'));
      expect(() => loadOrCreateDockKey(linked)).toThrow(expect.objectContaining({ code: 'E_DOCK_KEY', message: expect.stringContaining('is a symbolic link') }));
      expect(statSync(outside).mode & 0o777).toBe(0o644);
      const fifo = join(dir, 'fifo');
      mkdirSync(fifo, { mode: 0o700 });
      execFileSync('mkfifo', [join(fifo, 'dock-key.pem')]);
      expect(() => loadOrCreateDockKey(fifo)).toThrow(expect.objectContaining({ code: 'E_DOCK_KEY', message: expect.stringContaining('is not a regular file') }));
    });
  });

  it('two files that are not one pair are refused, never replaced: the dock exits 2 with one line naming both keys and the fix', async () => {
    await withTempDir('bodycam-keys-', async (dir) => {
      const state = join(dir, 'state');
      mkdirSync(state, { mode: 0o700 });
      const mine = generateSigningKeyPair();
      const other = generateSigningKeyPair();
      writeFileSync(join(state, 'dock-key.pem'), mine.privateKeyPem, { mode: 0o600 });
      writeFileSync(join(state, 'dock-key.pub.pem'), other.publicKeyPem, { mode: 0o600 });
      expect(() => loadOrCreateDockKey(state)).toThrow(expect.objectContaining({ code: 'E_DOCK_KEY_MISMATCH', exitCode: 2 }));
      expect(() => dockKeyIdIn(state)).toThrow(expect.objectContaining({ code: 'E_DOCK_KEY_MISMATCH' }));
      expect(readFileSync(join(state, 'dock-key.pub.pem'), 'utf8')).toBe(other.publicKeyPem);

      const bays = join(dir, 'bays');
      mkdirSync(bays);
      const token = join(dir, 'token');
      writeFileSync(token, 'x'.repeat(40) + '\n', { mode: 0o600 });
      const run = await runCli(['dock', '--once', '--bays', bays, '--state-dir', state, '--endpoint', 'http://127.0.0.1:9', '--token-file', token, '--dock-id', 'dock-k']);
      expect(run.code).toBe(2);
      const lines = run.stderr.trim().split('\n').filter((l) => l.startsWith('bodycam:'));
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain(`(key ${keyIdOf(other.publicKeyPem).slice(0, 16)}…) is not the public half of`);
      expect(lines[0]).toContain(`(key ${keyIdOf(mine.publicKeyPem).slice(0, 16)}…)`);
      expect(lines[0]).toContain('bodycam server reset-dock-key');
      expect(run.stderr).not.toMatch(/\n\s+at /);
    });
  });
});
