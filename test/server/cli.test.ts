/** The server as a user runs it: the built CLI in a child process (run `npx tsc -p tsconfig.json` first). */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { request as httpRequest, type ClientRequest } from 'node:http';
import { join } from 'node:path';
import { formatDigestHeader } from '../../src/protocol/digest.js';
import { buildRecording, testBytes } from '../helpers/manifest.js';
import { runCli, spawnCli } from '../helpers/cli.js';
import { makeTempDir } from '../helpers/tmp.js';
import { requireServerDataDir } from '../../src/cli/server/dataDir.js';
import { testToken } from '../helpers/server.js';

const TOKEN = testToken('cli-dock-1');
let tmp: ReturnType<typeof makeTempDir>;
let tokensFile: string;

beforeAll(() => {
  tmp = makeTempDir('bodycam-server-cli-');
  tokensFile = join(tmp.path, 'tokens.json');
  writeFileSync(tokensFile, JSON.stringify({ 'dock-1': TOKEN }), { mode: 0o600 });
});
afterAll(() => tmp.cleanup());

interface Running { child: ChildProcess; url: string; exited: Promise<number | null> }

function startServer(dataDir: string, extra: string[] = []): Promise<Running> {
  const child = spawnCli(['server', '--data-dir', dataDir, '--listen', '127.0.0.1:0', '--tokens', tokensFile, ...extra]);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const match = /^listening (http:\/\/127\.0\.0\.1:\d+)\n/.exec(out);
      if (match) resolve({ child, url: match[1]!, exited });
    });
    child.on('exit', (code) => reject(new Error(`server exited ${code}: ${err.slice(-2000)}`)));
  });
}

const auth = { authorization: `Bearer ${TOKEN}` };

describe('bodycam server (CLI)', () => {
  it('a server tool given a folder that is not a server data dir, or a dock id that cannot be one, says so in one line (exit 2) and writes nothing', async () => {
    const typo = join(tmp.path, 'no-such-data-dir');
    const add = await runCli(['server', 'user', 'add', '--data-dir', typo, '--name', 'bob', '--role', 'reviewer']);
    expect([add.code, add.stdout]).toEqual([2, '']);
    expect(add.stderr).toBe(`bodycam: --data-dir ${typo} is not a server data dir (no such folder): give the folder \`bodycam server --data-dir\` runs with\n`);
    expect(existsSync(typo)).toBe(false);
    const reset = await runCli(['server', 'reset-dock-key', '--data-dir', tmp.path, '--dock', '../../etc']);
    expect([reset.code, reset.stdout]).toEqual([2, '']);
    expect(reset.stderr).toMatch(/^bodycam: invalid dock id "\.\.\/\.\.\/etc": use letters, digits[^\n]*\n$/);
    // A folder with none of a server's files (here: only the tokens file) is not one either; one with its custody log is.
    expect(() => requireServerDataDir(tmp.path)).toThrow(expect.objectContaining({ exitCode: 2, code: 'E_NOT_DATA_DIR', message: expect.stringContaining('none of recordings, custody.log') }));
    expect(() => requireServerDataDir(tokensFile)).toThrow(/is not a server data dir \(not a folder\)/);
    const made = makeTempDir('bodycam-data-dir-');
    try {
      writeFileSync(join(made.path, 'custody.log'), '');
      expect(() => requireServerDataDir(made.path)).not.toThrow();
    } finally {
      made.cleanup();
    }
  });

  it('user add/remove run at once each keep their change (the users file is locked); a lock whose holder was SIGKILLed is free', async () => {
    const made = makeTempDir('bodycam-users-race-');
    try {
      const dataDir = made.path;
      writeFileSync(join(dataDir, 'custody.log'), '');
      const add = (name: string, role = 'reviewer') => runCli(['server', 'user', 'add', '--data-dir', dataDir, '--name', name, '--role', role], { input: 'long enough password\n' });
      const names = async () => (JSON.parse((await runCli(['server', 'user', 'list', '--data-dir', dataDir, '--json'])).stdout) as { users: { name: string }[] }).users.map((u) => u.name).sort();
      // A process that took the lock and was killed holding it: the kernel dropped its lock, nothing to clean.
      const holder = spawnSync(process.execPath, ['--input-type=module', '-e', `import { withFileLock } from ${JSON.stringify(new URL('../../dist/util/fileLock.js', import.meta.url).href)};
        await withFileLock(process.argv[1], 'test', async () => { process.stdout.write('held'); process.kill(process.pid, 'SIGKILL'); await new Promise(() => {}); });`, join(dataDir, 'console-users.lock')], { encoding: 'utf8' });
      expect([holder.stdout, holder.signal]).toEqual(['held', 'SIGKILL']);
      const adds = await Promise.all([add('p1'), add('p2'), add('p3'), add('mallory', 'admin')]);
      expect(adds.map((r) => [r.code, r.stdout.split(' (')[0]])).toEqual(['p1', 'p2', 'p3', 'mallory'].map((n) => [0, `user ${n} added`]));
      // A removal racing an addition: the removed admin stays removed, and every addition that said so is there.
      const [removed, q1] = await Promise.all([runCli(['server', 'user', 'remove', '--data-dir', dataDir, '--name', 'mallory']), add('q1')]);
      expect([removed.code, removed.stdout, q1.code]).toEqual([0, 'user mallory removed\n', 0]);
      expect(await names()).toEqual(['p1', 'p2', 'p3', 'q1']);
      expect(statSync(join(dataDir, 'console-users.lock')).mode & 0o777).toBe(0o600);
    } finally {
      made.cleanup();
    }
  });

  it('a data dir that is a file, or TLS files that are not PEM, are one line and exit 2 (systemd does not restart it in a loop)', async () => {
    const aFile = join(tmp.path, 'tokens.json');
    for (const dataDir of [aFile, join(aFile, 'below')]) {
      const run = await runCli(['server', '--data-dir', dataDir, '--tokens', tokensFile, '--listen', '127.0.0.1:0']);
      expect([run.code, run.stdout]).toEqual([2, '']);
      expect(run.stderr).toMatch(new RegExp(`^bodycam: --data-dir ${dataDir}.* is not a folder\n$`));
    }
    const notPem = join(tmp.path, 'not-a-cert.pem');
    writeFileSync(notPem, 'hello\n', { mode: 0o600 });
    const tls = await runCli(['server', '--data-dir', join(tmp.path, 'tls-data'), '--tokens', tokensFile, '--listen', '127.0.0.1:0', '--tls-cert', notPem, '--tls-key', notPem]);
    expect([tls.code, tls.stdout, tls.stderr]).toEqual([2, '', `bodycam: --tls-cert ${notPem} is not a PEM certificate\n`]);
  });

  it('a TLS key others may read, or a certificate others may write, is refused: exit 2, one line with the fix (the key is who the server is)', async () => {
    const key = join(tmp.path, 'tls-open.key');
    const cert = join(tmp.path, 'tls-open.pem');
    const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=127.0.0.1']);
    expect(made.status).toBe(0);
    const start = (): Promise<{ code: number | null; stdout: string; stderr: string }> => runCli(['server', '--data-dir', join(tmp.path, 'tls-open-data'), '--tokens', tokensFile, '--listen', '127.0.0.1:0', '--tls-cert', cert, '--tls-key', key]);
    chmodSync(key, 0o644);
    const readable = await start();
    expect([readable.code, readable.stdout, readable.stderr]).toEqual([2, '', `bodycam: --tls-key ${key} is readable or writable by group or others (mode 0644): run \`chmod 600 ${key}\`\n`]);
    chmodSync(key, 0o600);
    chmodSync(cert, 0o666);
    const writable = await start();
    expect([writable.code, writable.stdout]).toEqual([2, '']);
    expect(writable.stderr).toMatch(new RegExp(`^bodycam: --tls-cert ${cert} is writable by group or others \\(mode 0666\\)`));
  });

  it('prints one listening line, writes its keys, and exits 0 on SIGTERM', async () => {
    const dataDir = join(tmp.path, 'plain');
    const server = await startServer(dataDir);
    const keys = await (await fetch(`${server.url}/v1/keys`)).json() as { publicKeyPem: string };
    expect(readFileSync(join(dataDir, 'server-key.pub.pem'), 'utf8')).toBe(keys.publicKeyPem);
    expect(statSync(join(dataDir, 'server-key.pem')).mode & 0o777).toBe(0o600);
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
  });

  it('a port in use is one clear line and a non-zero exit', async () => {
    const dataDir = join(tmp.path, 'port');
    const first = await startServer(dataDir);
    const port = new URL(first.url).port;
    try {
      const second = await runCli(['server', '--data-dir', join(tmp.path, 'port2'), '--listen', `127.0.0.1:${port}`, '--tokens', tokensFile]);
      expect(second.code).not.toBe(0);
      expect(second.stderr.trim().split('\n').filter((l) => l.startsWith('bodycam:'))).toEqual([`bodycam: cannot listen on 127.0.0.1:${port}: the port is already in use: stop the other process or choose another port with --listen 127.0.0.1:PORT`]);
      expect(second.stderr).not.toMatch(/\n\s+at /);
    } finally {
      first.child.kill('SIGKILL');
      await first.exited;
    }
  });

  it('killed with SIGKILL mid-PUT: no partial blob; after a restart the PUT succeeds and the recording completes', async () => {
    const dataDir = join(tmp.path, 'crash');
    const rec = buildRecording(testBytes(2_000_000, 5), { segmentSize: 1_000_000 });
    const segment = rec.segments[0]!;
    const sha = rec.manifest.segments[0]!.sha256;
    let server = await startServer(dataDir);
    expect((await fetch(`${server.url}/v1/recordings`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify(rec.manifest) })).status).toBe(201);

    let req: ClientRequest | undefined;
    const failed = new Promise<void>((resolve) => {
      req = httpRequest(`${server.url}/v1/recordings/${rec.manifest.recordingId}/segments/0`, {
        method: 'PUT', headers: { ...auth, 'content-type': 'application/octet-stream', 'content-length': String(segment.length), 'content-digest': formatDigestHeader(sha) },
      });
      req.on('error', () => resolve());
      req.on('response', () => resolve());
      req.write(segment.subarray(0, 600_000));
    });
    // Wait until the server has some of the body on disk in a temp file.
    const tmpDir = join(dataDir, 'tmp');
    for (const deadline = Date.now() + 60_000; !readdirSync(tmpDir).some((f) => statSync(join(tmpDir, f)).size > 0) && Date.now() < deadline;) await new Promise((r) => setTimeout(r, 25));
    expect(readdirSync(tmpDir).length).toBeGreaterThan(0);
    server.child.kill('SIGKILL');
    await server.exited;
    await failed;
    req!.destroy();
    const blob = join(dataDir, 'blobs', sha.slice(0, 2), sha);
    expect(existsSync(blob)).toBe(false);

    server = await startServer(dataDir);
    try {
      expect(readdirSync(tmpDir)).toEqual([]);
      const resumed = await (await fetch(`${server.url}/v1/recordings`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify(rec.manifest) })).json() as { missing: number[] };
      expect(resumed.missing).toEqual([0, 1]);
      for (let i = 0; i < 2; i++) {
        const put = await fetch(`${server.url}/v1/recordings/${rec.manifest.recordingId}/segments/${i}`, { method: 'PUT', headers: { ...auth, 'content-type': 'application/octet-stream', 'content-digest': formatDigestHeader(rec.manifest.segments[i]!.sha256) }, body: rec.segments[i] });
        expect(put.status).toBe(201);
      }
      expect(readFileSync(blob).equals(segment)).toBe(true);
      const done = await fetch(`${server.url}/v1/recordings/${rec.manifest.recordingId}/complete`, { method: 'POST', headers: auth });
      expect(done.status).toBe(200);
    } finally {
      server.child.kill('SIGTERM');
      expect(await server.exited).toBe(0);
    }
    expect((await runCli(['server', 'verify-log', '--data-dir', dataDir])).code).toBe(0);
  });

  it('verify-log catches a custody log edited by hand and names the first broken entry', async () => {
    const dataDir = join(tmp.path, 'crash'); // reuses the log written by the test above
    const logPath = join(dataDir, 'custody.log');
    const lines = readFileSync(logPath, 'utf8').trim().split('\n');
    expect(lines.length).toBeGreaterThanOrEqual(4);
    const ok = await runCli(['server', 'verify-log', '--data-dir', dataDir]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain(`custody log ok: ${lines.length} entries`);
    // Change one hex digit of entry 2's sha256: entry 3's prev no longer matches.
    const edited = lines[1]!.replace(/"sha256":"([0-9a-f])/, (_m, c: string) => `"sha256":"${c === '0' ? '1' : '0'}`);
    expect(edited).not.toBe(lines[1]);
    writeFileSync(logPath, [lines[0], edited, ...lines.slice(2)].join('\n') + '\n');
    const broken = await runCli(['server', 'verify-log', '--data-dir', dataDir]);
    expect(broken.code).not.toBe(0);
    expect(broken.stdout).toMatch(/BROKEN at line 3 \(seq 3\)/);
  });
});
