/**
 * Issue 9 item 11: tokens. The server refuses to start on a tokens file readable by group or
 * others, on two docks sharing a token, and on tokens under 128 bits or with whitespace, each
 * with one clear line naming the dock (never the token), exit 2; `bodycam server token new`
 * prints a token it accepts; SIGHUP reloads the file (a new dock connects, a removed one gets
 * 401; an invalid file is refused with a log line and the old tokens stay).
 * Through the real built CLI (`npm run build` first) on 127.0.0.1, port 0.
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import type { ChildProcess } from 'node:child_process';
import { chmodSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli, spawnCli } from '../helpers/cli.js';
import { testToken } from '../helpers/server.js';
import { makeTempDir } from '../helpers/tmp.js';
import { waitFor } from '../helpers/reliability.js';

const tmp = makeTempDir('bodycam-item11-');
afterAll(() => tmp.cleanup());

let fileNo = 0;
function tokensFile(tokens: Record<string, string>, mode = 0o600): string {
  const path = join(tmp.path, `tokens-${++fileNo}.json`);
  writeFileSync(path, JSON.stringify(tokens), { mode });
  chmodSync(path, mode); // whatever the umask
  return path;
}

async function refused(tokens: Record<string, string>, mode = 0o600) {
  const path = tokensFile(tokens, mode);
  const result = await runCli(['server', '--data-dir', join(tmp.path, `data-${fileNo}`), '--listen', '127.0.0.1:0', '--tokens', path]);
  expect(result.code).toBe(2);
  const lines = result.stderr.trim().split('\n');
  expect(lines).toHaveLength(1); // one clear line, no stack
  expect(lines[0]!.startsWith('bodycam: --tokens: ')).toBe(true);
  for (const token of Object.values(tokens)) expect(result.stderr + result.stdout).not.toContain(token);
  return { line: lines[0]!, path };
}

describe('item 11: tokens', () => {
  const good = testToken('item11-good');

  it('refuses a tokens file readable or writable by group or others', async () => {
    await Promise.all([0o644, 0o640, 0o604, 0o620].map(async (mode) => {
      const { line, path } = await refused({ 'dock-1': good }, mode);
      expect(line).toContain(`${path} is readable or writable by group or others (mode 0${mode.toString(8)})`);
      expect(line).toContain(`chmod 600 ${path}`);
    }));
  });

  it('refuses two docks sharing one token, naming both docks', async () => {
    const { line } = await refused({ 'dock-1': good, 'dock-7': testToken('x'), 'dock-9': good });
    expect(line).toMatch(/docks dock-1 and dock-9 share one token/);
  });

  const weak: Array<[string, string]> = [
    ['8 digits', '31415926'],
    ['the old README example', 'a-long-random-token'],
    ['a space inside', 'Kq3 vB9xZ0pL7mN2wR5tY8uI1oE4aS6dF'],
    ['a tab inside', 'Kq3\tvB9xZ0pL7mN2wR5tY8uI1oE4aS6dF'],
    ['a newline at the end', `${good}\n`],
    ['one character repeated', 'a'.repeat(64)],
    ['a short pattern repeated', 'xY7!'.repeat(12)],
    ['a run of consecutive characters', 'abcdefghijklmnopqrstuvwxyz012345'],
    ['31 hex digits (124 bits)', '8f3a9c1e7b2d4f60a5c8e19b3d7f2a4'],
    ['non-ASCII characters', 'ключ-доступа-дока-номер-один-секрет'],
  ];
  it(`refuses weak tokens (${weak.map(([what]) => what).join('; ')}), naming the dock and not the token`, async () => {
    // Five CLI starts at a time: each is a node process start on a shared machine.
    for (let i = 0; i < weak.length; i += 5) {
      await Promise.all(weak.slice(i, i + 5).map(async ([what, token]) => {
        const { line } = await refused({ 'dock-ok': good, 'dock-weak': token });
        expect([what, line]).toEqual([what, expect.stringMatching(/the token of dock dock-weak (is too weak|has too little variety|contains)/)]);
        expect(line).toContain('bodycam server token new');
      }));
    }
  });

  it('`bodycam server token new` prints a fresh token the server accepts', async () => {
    const [a, b] = await Promise.all([runCli(['server', 'token', 'new']), runCli(['server', 'token', 'new'])]);
    expect(a.code).toBe(0);
    const token = a.stdout.trim();
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(b.stdout.trim()).not.toBe(token);
    const server = await start(tokensFile({ 'dock-new': token }));
    try {
      expect((await fetch(`${server.url}/v1/recordings`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
    } finally {
      await server.stop();
    }
  });

  it('SIGHUP reloads the tokens: a new dock connects, a removed one gets 401; an invalid file is refused and the old tokens stay', async () => {
    const t1 = testToken('hup-dock-1');
    const t2 = testToken('hup-dock-2');
    const path = tokensFile({ 'dock-1': t1 });
    const server = await start(path);
    const status = async (token: string) => (await fetch(`${server.url}/v1/recordings`, { headers: { authorization: `Bearer ${token}` } })).status;
    try {
      expect(await status(t1)).toBe(200);
      expect(await status(t2)).toBe(401);

      // The operator adds dock-2 and removes dock-1 (written aside, then renamed over the old file).
      replaceFile(path, { 'dock-2': t2 });
      server.child.kill('SIGHUP');
      await waitFor('the reload log line', () => server.log().includes('tokens reloaded'), 10_000, 50);
      expect(await status(t2)).toBe(200);
      expect(await status(t1)).toBe(401);
      expect(JSON.parse(server.log().split('\n').find((l) => l.includes('tokens reloaded'))!)).toMatchObject({ added: ['dock-2'], removed: ['dock-1'], docks: 1 });

      // Invalid files: a shared token, a weak one, a world-readable file, not JSON. Each is one
      // log line naming what is wrong (no token), and dock-2's token keeps working.
      const attempts: Array<[string, () => void]> = [
        ['share one token', () => replaceFile(path, { 'dock-2': t2, 'dock-3': t2 })],
        ['is too weak', () => replaceFile(path, { 'dock-2': t2, 'dock-4': '12345678' })],
        ['readable or writable by group or others', () => replaceFile(path, { 'dock-2': t2, 'dock-5': testToken('5') }, 0o644)],
        ['is not valid JSON', () => { writeFileSync(`${path}.new`, '{"dock-2": ', { mode: 0o600 }); renameSync(`${path}.new`, path); }],
      ];
      for (const [i, [reason, write]] of attempts.entries()) {
        write();
        server.child.kill('SIGHUP');
        await waitFor(`refusal ${i + 1}`, () => server.log().split('\n').filter((l) => l.includes('tokens reload refused')).length === i + 1, 10_000, 50);
        const line = server.log().split('\n').filter((l) => l.includes('tokens reload refused'))[i]!;
        expect(line).toContain(reason);
        expect(line).not.toContain(t2);
        expect(await status(t2)).toBe(200);
        expect(await status(testToken('5'))).toBe(401);
      }
      expect(server.child.exitCode).toBeNull(); // still running
    } finally {
      await server.stop();
    }
  });
});

function replaceFile(path: string, tokens: Record<string, string>, mode = 0o600): void {
  writeFileSync(`${path}.new`, JSON.stringify(tokens), { mode });
  chmodSync(`${path}.new`, mode);
  renameSync(`${path}.new`, path);
}

interface Started { child: ChildProcess; url: string; log: () => string; stop: () => Promise<void> }

function start(path: string): Promise<Started> {
  // The JSON log on stderr (not the test helper's default /dev/null): the reload lines are read from it.
  const child = spawnCli(['server', '--data-dir', join(tmp.path, `srv-${++fileNo}`), '--listen', '127.0.0.1:0', '--tokens', path], { env: { ...process.env, BODYCAM_LOG_FILE: '' } });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const match = /listening (http:\/\/127\.0\.0\.1:\d+)/.exec(out);
      if (match) resolve({ child, url: match[1]!, log: () => err, stop: async () => { child.kill('SIGTERM'); await exited; } });
    });
    child.once('exit', (code) => reject(new Error(`server exited ${code}: ${err.slice(-2000)}`)));
  });
}
