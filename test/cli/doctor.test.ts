/**
 * `bodycam doctor` through the built CLI against the real server: all green on a good setup; each
 * broken precondition (token, state folder mode, server key, endpoint) fails with its fix and exit 1;
 * a held lock is reported as a running dock; nothing in the state folder is created or changed.
 * The clock check is driven through the API with an injected clock (no waiting).
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateSigningKeyPair, keyIdOf } from '../../src/protocol/signing.js';
import { checkDockKey } from '../../src/server/trust/dockKeys.js';
import { runDoctor, type DoctorCheck } from '../../src/dock/doctor.js';
import { acquireStateLock } from '../../src/dock/lock.js';
import { makeTempDir } from '../helpers/tmp.js';
import { runCli } from '../helpers/cli.js';
import { startTestServer, TEST_TOKENS, type TestServer } from '../helpers/server.js';

describe('bodycam doctor', () => {
  const tmp = makeTempDir('bodycam-doctor-');
  const bays = join(tmp.path, 'bays');
  const stateDir = join(tmp.path, 'state');
  const tokenFile = join(tmp.path, 'token');
  const badToken = join(tmp.path, 'bad-token');
  const otherKey = join(tmp.path, 'other.pub.pem');
  const env = { PATH: process.env.PATH, HOME: process.env.HOME, BODYCAM_LOG_LEVEL: 'silent' } as NodeJS.ProcessEnv;
  let server: TestServer;
  let args: (...extra: string[]) => string[];

  beforeAll(async () => {
    server = await startTestServer();
    mkdirSync(join(bays, 'bay1'), { recursive: true });
    mkdirSync(stateDir, { mode: 0o700 });
    writeFileSync(tokenFile, TEST_TOKENS['dock-1']! + '\n', { mode: 0o600 });
    writeFileSync(badToken, 'x'.repeat(43) + '\n', { mode: 0o600 });
    writeFileSync(otherKey, generateSigningKeyPair().publicKeyPem);
    args = (...extra) => ['doctor', '--json', '--bays', bays, '--endpoint', server.url, '--token-file', tokenFile, '--state-dir', stateDir,
      '--dock-id', 'dock-1', '--server-key', join(server.dataDir, 'server-key.pub.pem'), ...extra];
  });
  afterAll(async () => {
    await server.close();
    tmp.cleanup();
  });

  const run = async (argv: string[]): Promise<{ code: number | null; checks: Record<string, DoctorCheck> }> => {
    const result = await runCli(argv, { env });
    expect(result.stderr).toBe('');
    const checks = JSON.parse(result.stdout) as DoctorCheck[];
    return { code: result.code, checks: Object.fromEntries(checks.map((c) => [c.name, c])) };
  };

  it('passes every check on a good setup (exit 0), and the table says so', async () => {
    const { code, checks } = await run(args());
    expect(Object.values(checks).filter((c) => c.status !== 'ok')).toEqual([]);
    expect(code).toBe(0);
    expect(Object.keys(checks)).toEqual(['config', 'ffmpeg', 'ffprobe', 'bays', 'state dir', 'disk space', 'lock', 'endpoint', 'clock', 'token', 'dock key', 'server key']);
    expect(checks['dock key']!.detail).toMatch(/^the server has pinned no key for dock dock-1 yet/);
    expect(checks.bays!.detail).toContain('1 bay folder(s)');
    expect(checks['lock']!.detail).toMatch(/^free/);
    const table = await runCli(args().filter((a) => a !== '--json'), { env });
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^ok {4}token\s+accepted by the server as dock dock-1$/m);
    expect(table.stdout).toMatch(/all checks passed\n$/);
  });

  it('fails each broken precondition with its fix, and changes nothing', async () => {
    chmodSync(stateDir, 0o755);
    try {
      const { code, checks } = await run(args('--token-file', badToken, '--server-key', otherKey));
      expect(code).toBe(1);
      expect(checks.token).toMatchObject({ status: 'fail', detail: 'the server rejected the token (401)' });
      expect(checks.token!.fix).toContain('--token-file');
      expect(checks['state dir']).toMatchObject({ status: 'fail' });
      expect(checks['state dir']!.detail).toContain('mode 755 lets others in');
      expect(checks['server key']!.status).toBe('fail');
      expect(checks['server key']!.detail).toMatch(/^pinned [0-9a-f]{64} \(--server-key .*\) but the server offers [0-9a-f]{64}/);
      expect(statSync(stateDir).mode & 0o777).toBe(0o755); // reported, not "fixed" behind the operator's back
    } finally {
      chmodSync(stateDir, 0o700);
    }
    const fresh = join(tmp.path, 'not-yet');
    const absent = await run(args('--state-dir', fresh, '--endpoint', 'http://127.0.0.1:9', '--bays', join(tmp.path, 'no-bays')));
    expect(absent.code).toBe(1);
    expect(absent.checks['state dir']).toMatchObject({ status: 'ok' });
    expect(existsSync(fresh)).toBe(false);
    expect(absent.checks.bays).toMatchObject({ status: 'fail' });
    expect(absent.checks.endpoint).toMatchObject({ status: 'fail' });
    expect(absent.checks.endpoint!.detail).toContain('ECONNREFUSED');
    expect(absent.checks.endpoint!.fix).toContain('start the server');
  });

  it('a lock held by an agent is a running dock, not a failure; without a pin it warns, with --wipe-after-ingest it fails', async () => {
    const lock = acquireStateLock(stateDir);
    try {
      const noPin = args().filter((a, i, all) => a !== '--server-key' && all[i - 1] !== '--server-key');
      const { code, checks } = await run(noPin);
      expect(checks['lock']).toMatchObject({ status: 'ok', detail: `held by a running dock agent (pid ${process.pid})` });
      expect(checks['server key']!.status).toBe('warn');
      expect(code).toBe(0);
      const wiping = await run([...noPin, '--wipe-after-ingest']);
      expect(wiping.checks['server key']!.status).toBe('fail');
      expect(wiping.checks['server key']!.fix).toContain('bodycam dock trust-server');
      expect(wiping.code).toBe(1);
    } finally {
      lock.release();
    }
  });

  it('a dock key other than the one the server pinned fails (a lost or restored state folder), naming both and the reset; the pinned one passes', async () => {
    const pinnedPair = generateSigningKeyPair();
    const pinned = pinnedPair.publicKeyPem;
    expect(await checkDockKey(server.dataDir, 'dock-2', pinned)).toBe('pinned'); // as the server does at the dock's first manifest
    const state2 = join(tmp.path, 'state-dock-2');
    mkdirSync(state2, { mode: 0o700 });
    const token2 = join(tmp.path, 'token-2');
    writeFileSync(token2, TEST_TOKENS['dock-2']! + '\n', { mode: 0o600 });
    const argv = ['doctor', '--json', '--bays', bays, '--endpoint', server.url, '--token-file', token2, '--state-dir', state2, '--dock-id', 'dock-2', '--server-key', join(server.dataDir, 'server-key.pub.pem')];
    const fresh = await run(argv); // no key in the state folder: the dock would make a new one
    expect(fresh.code).toBe(1);
    expect(fresh.checks['dock key']).toMatchObject({ status: 'fail', fix: expect.stringContaining('bodycam server reset-dock-key --dock dock-2') });
    expect(fresh.checks['dock key']!.detail).toMatch(/this state folder holds no dock key/);
    const otherPair = generateSigningKeyPair();
    writeFileSync(join(state2, 'dock-key.pem'), otherPair.privateKeyPem, { mode: 0o600 });
    writeFileSync(join(state2, 'dock-key.pub.pem'), otherPair.publicKeyPem, { mode: 0o600 });
    const other = await run(argv);
    expect(other.code).toBe(1);
    expect(other.checks['dock key']!.detail).toMatch(new RegExp(`^the server pinned key ${keyIdOf(pinned).slice(0, 16)}… for dock dock-2; this state folder holds [0-9a-f]{16}…: every manifest would be refused \\(dock_key_mismatch\\)$`));
    writeFileSync(join(state2, 'dock-key.pem'), pinnedPair.privateKeyPem, { mode: 0o600 });
    writeFileSync(join(state2, 'dock-key.pub.pem'), pinned, { mode: 0o600 });
    const same = await run(argv);
    expect(same.checks['dock key']).toMatchObject({ status: 'ok', detail: `the server pinned this state folder's key ${keyIdOf(pinned).slice(0, 16)}… for dock dock-2` });
    // A private half that is not the pinned public file's pair: the dock would refuse to start; doctor says so.
    writeFileSync(join(state2, 'dock-key.pem'), generateSigningKeyPair().privateKeyPem, { mode: 0o600 });
    const torn = await run(argv);
    expect(torn.code).toBe(1);
    expect(torn.checks['dock key']).toMatchObject({ status: 'fail', detail: expect.stringMatching(/dock-key\.pub\.pem \(key [0-9a-f]{16}…\) is not the public half of .*dock-key\.pem/) });
  });

  it('a token of another dock id fails the token check, naming both (the dock sends its id: a 404 probe no longer passes it)', async () => {
    const checks = await runDoctor({ flags: { bays, endpoint: server.url, tokenFile, stateDir, dockId: 'dock-2' }, env: {} });
    const token = checks.find((c) => c.name === 'token')!;
    expect(token).toMatchObject({ status: 'fail', detail: 'the token belongs to another dock id (this token belongs to dock dock-1, the request is from dock dock-2)' });
    expect(token.fix).toContain('--dock-id');
  });

  it('an endpoint whose protocol path answers 404 (a wrong path prefix) fails, not "token accepted"', async () => {
    const checks = await runDoctor({ flags: { bays, endpoint: `${server.url}/wrong`, tokenFile, stateDir, dockId: 'dock-1' }, env: {} });
    const token = checks.find((c) => c.name === 'token')!;
    expect(token.status).toBe('fail');
    expect(token.detail).toContain('GET /wrong/v1/recordings/bodycam-doctor-probe is not part of protocol v1');
    expect(token.fix).toContain('--endpoint');
    expect(checks.find((c) => c.name === 'endpoint')!.status).toBe('fail');
  });

  it('a clock minutes off the server\'s Date fails the clock check (injected clock)', async () => {
    const flags = { bays, endpoint: server.url, tokenFile, stateDir, dockId: 'dock-1' };
    const ahead = await runDoctor({ flags, env: {}, now: () => Date.now() + 5 * 60_000 });
    const clock = ahead.find((c) => c.name === 'clock')!;
    expect(clock.status).toBe('fail');
    expect(clock.detail).toMatch(/clock is (299|30[01]) s ahead of the server's/);
    const behind = await runDoctor({ flags, env: {}, now: () => Date.now() - 90_000 });
    expect(behind.find((c) => c.name === 'clock')!.detail).toMatch(/is (89|9\d) s behind/);
    const fine = await runDoctor({ flags, env: {}, now: () => Date.now() + 20_000 });
    expect(fine.find((c) => c.name === 'clock')!.status).toBe('ok');
  });

  it('https: a certificate the host does not trust fails with the NODE_EXTRA_CA_CERTS fix; trusted, it passes', async () => {
    const dir = join(tmp.path, 'tls');
    mkdirSync(dir);
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'key.pem', '-out', 'cert.pem',
      '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { cwd: dir, stdio: 'ignore' });
    const tlsServer = await startTestServer({ tls: { cert: readFileSync(join(dir, 'cert.pem')), key: readFileSync(join(dir, 'key.pem')) } });
    try {
      const httpsArgs = args('--endpoint', tlsServer.url, '--server-key', join(tlsServer.dataDir, 'server-key.pub.pem'));
      expect(tlsServer.url).toMatch(/^https:/);
      const untrusted = await run(httpsArgs);
      expect(untrusted.code).toBe(1);
      expect(untrusted.checks.endpoint).toMatchObject({ status: 'fail' });
      expect(untrusted.checks.endpoint!.detail).toMatch(/^TLS with https:.* failed: DEPTH_ZERO_SELF_SIGNED_CERT/);
      expect(untrusted.checks.endpoint!.fix).toContain('NODE_EXTRA_CA_CERTS');
      const trusted = await runCli(httpsArgs, { env: { ...env, NODE_EXTRA_CA_CERTS: join(dir, 'cert.pem') } });
      const checks = Object.fromEntries((JSON.parse(trusted.stdout) as DoctorCheck[]).map((c) => [c.name, c]));
      expect(checks.endpoint!.detail).toContain('TLS certificate verified');
      expect(Object.values(checks).filter((c) => c.status !== 'ok')).toEqual([]);
      expect(trusted.code).toBe(0);
    } finally {
      await tlsServer.close();
    }
  });

  describe('secret and authorising files (ATTACK-s6 B5): the dock refuses to start, doctor fails each with its fix', () => {
    const dir = join(tmp.path, 'private');
    const state = join(tmp.path, 'state-private');
    const dockArgs = (token: string, extra: string[] = []): string[] => ['dock', '--once', '--bays', bays, '--endpoint', server.url, '--token-file', token,
      '--state-dir', state, '--dock-id', 'dock-1', ...extra];
    const copyAs = (from: string, name: string, mode: number): string => {
      const to = join(dir, name);
      copyFileSync(from, to);
      chmodSync(to, mode);
      return to;
    };
    const serverKeyPub = (): string => join(server.dataDir, 'server-key.pub.pem');

    beforeAll(() => { mkdirSync(dir, { mode: 0o700 }); });

    it.each([0o644, 0o666, 0o620, 0o604, 0o640])('a token file of mode %o: exit 2, one line naming the file, its mode and chmod 600', async (mode) => {
      const token = copyAs(tokenFile, `token-${mode.toString(8)}`, mode);
      const result = await runCli(dockArgs(token), { env });
      expect(result.code).toBe(2);
      expect(result.stderr).toBe(`bodycam: token file ${token} is readable or writable by group or others (mode 0${mode.toString(8)}): run \`chmod 600 ${token}\`\n`);
      const doctor = await run(args('--token-file', token));
      expect(doctor.code).toBe(1);
      expect(doctor.checks['token file']).toMatchObject({ status: 'fail', fix: `chmod 600 ${token}` });
      expect(doctor.checks['token file']!.detail).toContain(`(mode 0${mode.toString(8)})`);
    });

    it('a config file others may write, a group-writable server key: exit 2 naming each; doctor FAIL; config --validate says so', async () => {
      const config = join(dir, 'dock.json');
      writeFileSync(config, JSON.stringify({ bays, endpoint: server.url, tokenFile, stateDir: state, dockId: 'dock-1' }), { mode: 0o666 });
      chmodSync(config, 0o666);
      const byConfig = await runCli(['dock', '--once', '--config', config], { env });
      expect(byConfig.code).toBe(2);
      expect(byConfig.stderr).toBe(`bodycam: config file ${config} is writable by group or others (mode 0666): run \`chmod 600 ${config}\`\n`);
      const validate = await runCli(['dock', 'config', '--validate', config], { env });
      expect(validate.code).not.toBe(0);
      expect(validate.stdout + validate.stderr).toContain('is writable by group or others (mode 0666)');
      const doctorConfig = await run(['doctor', '--json', '--config', config]);
      expect(doctorConfig.code).toBe(1);
      expect(doctorConfig.checks.config).toMatchObject({ status: 'fail', fix: `chmod 600 ${config}` });

      const key = copyAs(serverKeyPub(), 'server-key-620.pub.pem', 0o620);
      const byKey = await runCli(dockArgs(tokenFile, ['--server-key', key]), { env });
      expect(byKey.code).toBe(2);
      expect(byKey.stderr).toBe(`bodycam: server key ${key} is writable by group or others (mode 0620); it authorises wiping cards: run \`chmod 600 ${key}\`\n`);
      const dryRun = await runCli(['dock', '--dry-run', ...dockArgs(tokenFile, ['--server-key', key]).slice(2)], { env });
      expect(dryRun.code).toBe(2); // the dry run refuses what the run would, not "no wipe"
      expect(dryRun.stderr).toContain(`server key ${key} is writable by group or others (mode 0620)`);
      const doctorKey = await run(args('--server-key', key));
      expect(doctorKey.code).toBe(1);
      expect(doctorKey.checks['server key']).toMatchObject({ status: 'fail', fix: `chmod 600 ${key}` });
      expect(doctorKey.checks.config!.status).toBe('ok');

      // Readable by all is fine for a public key and a config file (no secret in them): 0644 starts.
      chmodSync(config, 0o644);
      const readable = copyAs(serverKeyPub(), 'server-key-644.pub.pem', 0o644);
      const started = await runCli(['dock', '--once', '--config', config, '--server-key', readable], { env });
      expect(started.code).toBe(0);
      expect(started.stderr).not.toContain('group or others');
    });

    it('0600 everything starts; a symlink to a private file of this user passes, a symlink to a 0666 file does not', async () => {
      const privateToken = copyAs(tokenFile, 'token-600', 0o600);
      const good = await runCli(dockArgs(privateToken, ['--server-key', copyAs(serverKeyPub(), 'server-key-600.pub.pem', 0o600)]), { env });
      expect(good.code).toBe(0);
      const linkToPrivate = join(dir, 'link-to-private');
      symlinkSync(privateToken, linkToPrivate);
      expect((await runCli(dockArgs(linkToPrivate), { env })).code).toBe(0);
      const open = copyAs(tokenFile, 'token-open', 0o666);
      const linkToOpen = join(dir, 'link-to-open');
      symlinkSync(open, linkToOpen);
      const refused = await runCli(dockArgs(linkToOpen), { env });
      expect(refused.code).toBe(2);
      expect(refused.stderr).toBe(`bodycam: token file ${linkToOpen} is readable or writable by group or others (mode 0666): run \`chmod 600 ${linkToOpen}\`\n`);
      expect(statSync(open).mode & 0o777).toBe(0o666); // refused, not chmod-ed behind the operator's back
    });
  });
});
