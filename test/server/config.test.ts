/**
 * The server's configuration (src/server/config.ts, on the one settings library): every flag also
 * from BODYCAM_SERVER_* or its documented variable and from a config file, flag > env > file >
 * default; the rules between values; secrets never printed. Then `bodycam server config` through
 * the built CLI, as an operator runs it.
 */
import { describe, expect, it, afterAll } from '@jest/globals';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadServerConfig, resolveServerSettings, SERVER_CONFIG_SCHEMA, serverConfigReferenceMarkdown, strayEnvironmentNotes } from '../../src/server/config.js';
import { runCli } from '../helpers/cli.js';
import { TEST_TOKENS } from '../helpers/server.js';
import { makeTempDir } from '../helpers/tmp.js';

const SECRET = 'sEcReT-s3-key-0123456789abcdef';
const DB_PASSWORD = 'pg-pass-9876543210';

describe('server config', () => {
  const tmp = makeTempDir('bodycam-server-config-');
  afterAll(() => tmp.cleanup());
  const tokens = join(tmp.path, 'tokens.json');
  writeFileSync(tokens, JSON.stringify(TEST_TOKENS), { mode: 0o600 });
  const required = { dataDir: join(tmp.path, 'data'), tokens };
  const file = (name: string, content: unknown) => { const path = join(tmp.path, name); writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content), { mode: 0o600 }); return path; };

  // The defaults as the README's server configuration documents them (the old flag defaults, unchanged).
  const DOCUMENTED: Record<string, string> = {
    dataDir: '(required)', listen: '127.0.0.1:8443', tokens: '—', tlsCert: '—', tlsKey: '—', tlsCa: '—', maxSegmentBytes: '64MiB',
    maxStoreBytes: '—', requestTimeout: '10m', bodyIdleTimeout: '30s', manifestTimeout: '2m', maxRequests: '256', maxRequestsPerDock: '32',
    db: '—', serverKey: '—', store: '—', s3Endpoint: '—', s3Region: 'us-east-1', s3AccessKeyId: '—', s3SecretAccessKey: '—', retention: '7y',
    adminTokenFile: '—', staleAfter: '24h', logLevel: 'info',
  };

  it('documents every key with its default, its variables and a description', () => {
    expect(Object.keys(SERVER_CONFIG_SCHEMA).sort()).toEqual(Object.keys(DOCUMENTED).sort());
    const reference = serverConfigReferenceMarkdown().split('\n');
    for (const [key, documented] of Object.entries(DOCUMENTED)) {
      const row = reference.find((r) => r.startsWith(`| ${key} |`))!.split(' | ');
      expect({ key, default: row[3] }).toEqual({ key, default: documented });
      expect(row[2]).toContain(`BODYCAM_SERVER_${key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`);
      expect(row[4]!.length).toBeGreaterThan(10);
    }
    for (const [key, env] of [['db', 'DATABASE_URL'], ['s3Endpoint', 'S3_ENDPOINT'], ['s3AccessKeyId', 'AWS_ACCESS_KEY_ID'], ['s3SecretAccessKey', 'AWS_SECRET_ACCESS_KEY'], ['s3Region', 'AWS_REGION'], ['logLevel', 'BODYCAM_LOG_LEVEL']]) {
      expect(reference.find((r) => r.startsWith(`| ${key} |`))).toContain(env);
    }
    // Secrets have no flag: a flag shows in `ps`.
    expect(reference.find((r) => r.startsWith('| s3SecretAccessKey |'))).toContain('| (none: secret) |');
  });

  it('gives the old flag defaults when nothing is set', () => {
    const config = loadServerConfig({ flags: required, env: {} });
    expect(config).toEqual({
      dataDir: required.dataDir, tokens, host: '127.0.0.1', port: 8443, maxSegmentBytes: 64 * 1024 * 1024,
      requestTimeoutMs: 600_000, bodyIdleTimeoutMs: 30_000, manifestTimeoutMs: 120_000, maxRequests: 256, maxRequestsPerDock: 32,
      staleAfterMs: 86_400_000, logLevel: 'info',
    });
  });

  it('takes flag > BODYCAM_SERVER_* > documented variable > file > default; paths in the file relative to it', () => {
    const conf = file('server.json', { dataDir: 'data', tokens: 'tokens.json', maxSegmentBytes: '32MiB', requestTimeout: '5m', store: 'blobs', logLevel: 'warn' });
    const resolved = resolveServerSettings({
      configFile: conf, cwd: '/',
      env: { BODYCAM_SERVER_REQUEST_TIMEOUT: '3m', BODYCAM_LOG_LEVEL: 'error', BODYCAM_SERVER_LOG_LEVEL: 'debug', BODYCAM_SERVER_STALE_AFTER: '2d' },
      flags: { requestTimeout: '1m' },
    });
    expect(resolved.sources.requestTimeout).toEqual({ source: 'flag', name: '--request-timeout' });
    expect(resolved.sources.logLevel).toEqual({ source: 'env', name: 'BODYCAM_SERVER_LOG_LEVEL' });
    expect(resolved.sources.maxSegmentBytes).toEqual({ source: 'file', name: `config file ${conf}` });
    const config = loadServerConfig({ configFile: conf, cwd: '/', env: { BODYCAM_LOG_LEVEL: 'error', BODYCAM_SERVER_STALE_AFTER: '2d' }, flags: { requestTimeout: '1m' } });
    expect(config).toMatchObject({ dataDir: join(tmp.path, 'data'), tokens, storeDir: join(tmp.path, 'blobs'), maxSegmentBytes: 32 * 1024 * 1024, requestTimeoutMs: 60_000, logLevel: 'error', staleAfterMs: 2 * 86_400_000 });
    // The config file also from BODYCAM_SERVER_CONFIG.
    expect(loadServerConfig({ env: { BODYCAM_SERVER_CONFIG: conf } }).maxSegmentBytes).toBe(32 * 1024 * 1024);
  });

  it('reads an S3 deployment from the documented variables, or from the file, with the same units as the dock', () => {
    const env = { S3_ENDPOINT: 'http://127.0.0.1:7480', AWS_ACCESS_KEY_ID: 'AK', AWS_SECRET_ACCESS_KEY: SECRET, DATABASE_URL: `postgres://app:${DB_PASSWORD}@127.0.0.1:5432/ev` };
    const config = loadServerConfig({ flags: { ...required, store: 's3://evidence', serverKey: join(tmp.path, 'k.pem'), retention: '30d' }, env });
    expect(config.s3).toEqual({ bucket: 'evidence', endpoint: 'http://127.0.0.1:7480', region: 'us-east-1', accessKeyId: 'AK', secretAccessKey: SECRET, retention: { days: 30, text: '30d' } });
    expect(config.database).toBe(env.DATABASE_URL);
    // With a database the tokens file is optional (the tokens are the database's).
    expect(loadServerConfig({ flags: { dataDir: required.dataDir, serverKey: join(tmp.path, 'k.pem') }, env: { DATABASE_URL: env.DATABASE_URL } }).tokens).toBeUndefined();
    const conf = file('s3.json', { ...required, store: 's3://evidence', s3Endpoint: 'http://127.0.0.1:7480', s3AccessKeyId: 'AK2', s3SecretAccessKey: SECRET, retention: '7y' });
    expect(loadServerConfig({ configFile: conf, env: {} }).s3).toMatchObject({ accessKeyId: 'AK2', retention: { days: 7 * 365, text: '7y' } });
  });

  it('names every value taken from a variable other programs set too (DATABASE_URL, S3_ENDPOINT, AWS_*), and the file key it beat', () => {
    const conf = file('stray.json', { ...required, db: 'postgres://file@127.0.0.1/from-file', s3Endpoint: 'http://127.0.0.1:9000' });
    const resolved = resolveServerSettings({ configFile: conf, env: { DATABASE_URL: 'postgres://stray@127.0.0.1/other', S3_ENDPOINT: 'http://127.0.0.1:1', AWS_REGION: 'eu-x', BODYCAM_SERVER_MAX_REQUESTS: '9', BODYCAM_LOG_LEVEL: 'warn' } });
    const notes = strayEnvironmentNotes(resolved);
    expect(notes.map((n) => n.split(' in the environment')[0])).toEqual(['db comes from DATABASE_URL', 's3Endpoint comes from S3_ENDPOINT', 's3Region comes from AWS_REGION']);
    expect(notes[0]).toContain(`not from "db" in ${conf}`);
    expect(notes[2]).not.toContain('not from');
    for (const n of notes) expect(n).not.toMatch(/stray@|127\.0\.0\.1:1/); // never the value
    expect(strayEnvironmentNotes(resolveServerSettings({ configFile: conf, env: {} }))).toEqual([]);
  });

  it('refuses conflicting and incomplete settings, one line naming the source', () => {
    const cases: Array<[Record<string, unknown>, NodeJS.ProcessEnv, RegExp]> = [
      [{ tlsCert: 'c.pem' }, {}, /--tls-cert needs its pair: --tls-cert and --tls-key go together/],
      [{ tlsCa: 'ca.pem' }, {}, /--tls-ca needs --tls-cert and --tls-key/],
      [{}, { BODYCAM_SERVER_TLS_KEY: 'k.pem' }, /BODYCAM_SERVER_TLS_KEY needs its pair/],
      [{ db: 'mysql://x' }, {}, /^--db must be a postgres:/],
      [{}, { DATABASE_URL: `mysql://u:${DB_PASSWORD}@h/db` }, /^DATABASE_URL must be a postgres:/],
      [{}, { DATABASE_URL: 'postgres://h/db' }, /^DATABASE_URL needs --server-key/],
      [{ s3Endpoint: 'http://127.0.0.1:1' }, {}, /--s3-endpoint goes with --store s3:\/\/BUCKET/],
      [{ store: 's3://evidence' }, {}, /needs --s3-endpoint URL \(or BODYCAM_SERVER_S3_ENDPOINT or S3_ENDPOINT\)/],
      [{ store: 's3://evidence', s3Endpoint: 'http://127.0.0.1:1' }, { AWS_ACCESS_KEY_ID: 'x' }, /needs the S3 keys/],
      [{ retention: '36h' }, {}, /invalid --retention: the retention is whole days/],
      [{ retention: '101y' }, {}, /more than 100 years/],
      [{ listen: '127.0.0.1' }, {}, /invalid --listen "127.0.0.1"/],
      [{}, { BODYCAM_SERVER_LISTEN: 'host:99999' }, /invalid BODYCAM_SERVER_LISTEN/],
      [{}, { BODYCAM_SERVER_MAX_REQUESTS: 'lots' }, /invalid maxRequests \(BODYCAM_SERVER_MAX_REQUESTS\): expected a whole number from 1/],
      [{ maxRequestsPerDock: '0' }, {}, /invalid maxRequestsPerDock \(--max-requests-per-dock\)/],
      [{ maxSegmentBytes: '64 potatoes' }, {}, /invalid maxSegmentBytes \(--max-segment-bytes\)/],
      [{ logLevel: 'chatty' }, {}, /invalid logLevel \(--log-level\): expected one of trace, debug, info, warn, error, fatal, silent, got "chatty"/],
      [{}, { BODYCAM_LOG_LEVEL: 'loud' }, /invalid logLevel \(BODYCAM_LOG_LEVEL\)/],
      [{ dataDir: undefined }, {}, /missing --data-dir \(or BODYCAM_SERVER_DATA_DIR, or "dataDir" in the config file\)/],
      [{ tokens: undefined }, {}, /missing --tokens \(or BODYCAM_SERVER_TOKENS, or "tokens" in the config file\): a JSON file .*; with --db the tokens may come from the database/],
    ];
    for (const [flags, env, message] of cases) {
      let error: Error | undefined;
      try { loadServerConfig({ flags: { ...required, ...flags }, env }); } catch (e) { error = e as Error; }
      expect({ flags, env, message: error?.message }).toEqual({ flags, env, message: expect.stringMatching(message) });
      expect(error!.message).not.toContain(DB_PASSWORD);
      expect(error!.message).not.toContain('\n');
      expect((error as { exitCode?: number }).exitCode).toBe(2);
    }
  });

  it('refuses a config file that is a folder, missing, unknown keys or wrong types, without quoting a secret', () => {
    mkdirSync(join(tmp.path, 'folder.json'));
    expect(() => loadServerConfig({ configFile: join(tmp.path, 'folder.json'), env: {} })).toThrow(/folder\.json is a folder, not a file/);
    expect(() => loadServerConfig({ env: { BODYCAM_SERVER_CONFIG: join(tmp.path, 'none.json') } })).toThrow(/none\.json does not exist/);
    expect(() => loadServerConfig({ configFile: file('unknown.json', { ...required, tokenz: 'x' }), env: {} })).toThrow(/unknown key "tokenz"/);
    expect(() => loadServerConfig({ configFile: file('types.json', { ...required, maxRequests: '256' }), env: {} })).toThrow(/maxRequests: must be an integer, got string/);
    for (const content of [`{"s3SecretAccessKey": "${SECRET}",}`, { s3SecretAccessKey: [SECRET] }, { s3SecretAccessKey: { SECRET } }, { db: `postgres://u:${DB_PASSWORD}@h/d`, dbx: 1 }]) {
      let message = '';
      try { loadServerConfig({ configFile: file('secret.json', content), env: {} }); } catch (error) { message = (error as Error).message; }
      expect(message).toMatch(/config file .*secret\.json/);
      expect(message).not.toContain(SECRET);
      expect(message).not.toContain(DB_PASSWORD);
    }
  });

  describe('bodycam server config (the built CLI)', () => {
    const clean = { PATH: process.env.PATH, HOME: process.env.HOME } as NodeJS.ProcessEnv;

    it('--print: each value with its source, secrets as (set), the password masked; exit 2 with one line when the server would refuse', async () => {
      const conf = file('print.json', { dataDir: 'data', tokens: 'tokens.json', maxSegmentBytes: '32MiB', s3SecretAccessKey: SECRET, db: 'postgres://file@127.0.0.1/from-file' });
      const env = { ...clean, BODYCAM_SERVER_MAX_REQUESTS: '100', AWS_ACCESS_KEY_ID: 'AKID', DATABASE_URL: `postgres://app:${DB_PASSWORD}@127.0.0.1/ev`, BODYCAM_SERVER_SERVER_KEY: 'k.pem' };
      const text = await runCli(['server', 'config', '--print', '--config', conf, '--listen', '127.0.0.1:0'], { env });
      expect(text.code).toBe(0);
      const row = (key: string) => text.stdout.split('\n').find((l) => l.startsWith(`${key} `))!.split(/\s{2,}/);
      expect(row('listen')).toEqual(['listen', '127.0.0.1:0', 'flag --listen']);
      expect(row('maxRequests')).toEqual(['maxRequests', '100', 'env BODYCAM_SERVER_MAX_REQUESTS']);
      expect(row('maxSegmentBytes')).toEqual(['maxSegmentBytes', '32MiB', `file ${conf}`]);
      expect(row('dataDir')).toEqual(['dataDir', join(tmp.path, 'data'), `file ${conf}`]);
      expect(row('db')).toEqual(['db', 'postgres://app:***@127.0.0.1/ev', 'env DATABASE_URL']);
      expect(row('s3SecretAccessKey')).toEqual(['s3SecretAccessKey', '(set)', `file ${conf}`]);
      expect(row('s3AccessKeyId')).toEqual(['s3AccessKeyId', '(set)', 'env AWS_ACCESS_KEY_ID']);
      expect(row('retention')).toEqual(['retention', '7y', 'default']);
      // A variable other programs set too beat the file (or supplied a value): one warning line each, naming it.
      expect(text.stderr).toContain(`bodycam: warning: db comes from DATABASE_URL in the environment, not from "db" in ${conf}: a variable other programs set too; unset DATABASE_URL`);
      expect(text.stderr).toContain('bodycam: warning: s3AccessKeyId comes from AWS_ACCESS_KEY_ID in the environment: ');
      expect(text.stderr).not.toMatch(/BODYCAM_SERVER_MAX_REQUESTS|BODYCAM_SERVER_SERVER_KEY/);
      const json = await runCli(['server', 'config', '--print', '--json', '--config', conf], { env });
      expect(json.code).toBe(0);
      const parsed = JSON.parse(json.stdout) as { valid: boolean; keys: Record<string, { value: unknown; source: string }> };
      expect(parsed.valid).toBe(true);
      expect(parsed.keys.s3SecretAccessKey).toEqual({ value: { set: true }, source: 'file', name: `config file ${conf}` });
      for (const out of [text.stdout + text.stderr, json.stdout + json.stderr]) {
        expect(out).not.toContain(SECRET);
        expect(out).not.toContain(DB_PASSWORD);
        expect(out).not.toContain('AKID');
        for (const token of Object.values(TEST_TOKENS)) expect(out).not.toContain(token);
      }
      const refused = await runCli(['server', 'config', '--print', '--config', conf, '--tls-cert', 'c.pem'], { env });
      expect(refused.code).toBe(2);
      // The refusal is one line, after the warnings about the variables (the env above sets DATABASE_URL and AWS_ACCESS_KEY_ID).
      expect(refused.stderr.split('\n').filter((l) => !l.startsWith('bodycam: warning: '))).toEqual(['bodycam: --tls-cert needs its pair: --tls-cert and --tls-key go together', '']);
    });

    it('--validate: the file alone, every problem on its own line naming the key; the server refuses the same file', async () => {
      const good = await runCli(['server', 'config', '--validate', file('good.json', { tokens: 'tokens.json', retention: '30d' })], { env: clean });
      expect(good.stdout).toMatch(/valid \(2 key\(s\)\); not in the file, so needed as flags or BODYCAM_SERVER_\* variables: dataDir\n$/);
      const bad = file('bad.json', { dataDir: 5, tokns: 'x', retention: 'forever', s3SecretAccessKey: 12345 });
      const validated = await runCli(['server', 'config', '--validate', bad], { env: clean });
      expect(validated.code).toBe(2);
      expect(validated.stderr.split('\n').filter(Boolean).sort()).toEqual([
        `${bad}: dataDir: must be a string, got integer`,
        `${bad}: retention: expected a duration: seconds, or a number with ms, s, m, h, d or y (30s, 10m, 24h, 7y), got "forever"`,
        `${bad}: s3SecretAccessKey: must be a string, got integer`,
        `${bad}: unknown key "tokns" (expected one of ${Object.keys(SERVER_CONFIG_SCHEMA).join(', ')})`,
        `bodycam: ${bad} is not a valid server config file (4 problem(s))`,
      ].sort());
      const served = await runCli(['server', '--config', bad], { env: { ...clean, BODYCAM_LOG_FILE: '/dev/null' } });
      expect(served.code).toBe(2);
      expect(served.stderr).toMatch(/^bodycam: config file .*bad\.json: unknown key "tokns"/);
      expect(served.stderr).not.toContain('12345');
    });
  });
});
