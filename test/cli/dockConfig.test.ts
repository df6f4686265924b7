/**
 * `bodycam dock config --print | --validate` through the built CLI: each value with its source
 * (flag, env, file, default), paths of the file resolved against its folder, the token never shown,
 * exit 2 when `bodycam dock` would refuse the same settings; --validate lists every problem of a file.
 */
import { describe, it, expect, afterAll } from '@jest/globals';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeTempDir } from '../helpers/tmp.js';
import { runCli } from '../helpers/cli.js';
import { TEST_TOKENS } from '../helpers/server.js';

describe('bodycam dock config', () => {
  const tmp = makeTempDir('bodycam-dock-config-');
  const etc = join(tmp.path, 'etc');
  mkdirSync(etc);
  const token = TEST_TOKENS['dock-1']!;
  writeFileSync(join(etc, 'dock.token'), token + '\n', { mode: 0o600 });
  const file = join(etc, 'dock.json');
  writeFileSync(file, JSON.stringify({ bays: '../bays', tokenFile: 'dock.token', maxRate: '10MB/s', settle: '2s', endpoint: 'http://127.0.0.1:9' }));
  // A clean environment: only what each case sets.
  const env = { PATH: process.env.PATH, HOME: process.env.HOME, BODYCAM_LOG_LEVEL: 'silent' } as NodeJS.ProcessEnv;
  afterAll(() => tmp.cleanup());

  it('--print names the source of every value and never the token', async () => {
    const result = await runCli(['dock', 'config', '--print', '--json', '--config', file, '--state-dir', join(tmp.path, 'state'), '--no-fingerprint', '--settle', '1s'],
      { env: { ...env, BODYCAM_ENDPOINT: 'https://ingest.example:8443/', BODYCAM_CONCURRENCY: '2' } });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).not.toContain(token);
    const printed = JSON.parse(result.stdout) as { valid: boolean; configFile: string; keys: Record<string, { value: unknown; source: string; name: string }> };
    expect(printed.valid).toBe(true);
    expect(printed.configFile).toBe(file);
    expect(printed.keys.bays).toEqual({ value: join(tmp.path, 'bays'), source: 'file', name: `config file ${file}` });
    expect(printed.keys.tokenFile!.value).toBe(join(etc, 'dock.token'));
    expect(printed.keys.endpoint).toEqual({ value: 'https://ingest.example:8443/', source: 'env', name: 'BODYCAM_ENDPOINT' });
    expect(printed.keys.concurrency).toEqual({ value: 2, source: 'env', name: 'BODYCAM_CONCURRENCY' });
    expect(printed.keys.settle).toEqual({ value: 1, source: 'flag', name: '--settle' }); // the flag over the file's 2s
    expect(printed.keys.fingerprint).toEqual({ value: false, source: 'flag', name: '--no-fingerprint' });
    expect(printed.keys.maxRate).toMatchObject({ value: 10_000_000, source: 'file' });
    expect(printed.keys.segmentMaxBytes).toEqual({ value: 16 * 1024 * 1024, source: 'default', name: 'default' });
    expect(printed.keys.dockId!.source).toBe('default');
    const text = await runCli(['dock', 'config', '--print', '--config', file, '--state-dir', 'st'], { env });
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^maxRate\s+10MB\/s\s+file .*dock\.json$/m);
    expect(text.stdout).toMatch(/^segmentMaxBytes\s+16MiB\s+default$/m);
    expect(text.stdout).toMatch(/^stateDir\s+\S+st\s+flag --state-dir$/m);
  });

  it('--print exits 2 with the reason when the dock would refuse the settings', async () => {
    const missing = await runCli(['dock', 'config', '--print', '--config', file], { env });
    expect(missing.code).toBe(2);
    expect(missing.stdout).toMatch(/^stateDir\s+\(missing: required\)/m);
    expect(missing.stderr).toMatch(/^bodycam: missing --state-dir/);
    const badToken = await runCli(['dock', 'config', '--print', '--config', file, '--state-dir', 's', '--token-file', join(tmp.path, 'nope')], { env });
    expect(badToken.code).toBe(2);
    expect(badToken.stderr).toMatch(/cannot read token file/);
  });

  it('--validate: 0 for a good file (naming what it leaves to flags), 2 listing every problem of a bad one', async () => {
    const good = await runCli(['dock', 'config', '--validate', file], { env: { ...env, BODYCAM_MAX_RATE: 'nonsense' } });
    expect(good.code).toBe(0); // the environment is not part of the file
    expect(good.stdout).toContain('valid (5 key(s)); not in the file, so needed as flags or BODYCAM_* variables: stateDir');
    const badFile = join(etc, 'bad.json');
    writeFileSync(badFile, JSON.stringify({ bays: 7, maxrate: '1M', settle: 'soon', endpoint: 'http://127.0.0.1:' }));
    const bad = await runCli(['dock', 'config', '--validate', badFile], { env });
    expect(bad.code).toBe(2);
    // Each problem once, naming the key (the config file's JSON Schema, docs/schemas/dock-config.schema.json).
    expect(bad.stderr).toContain('bad.json: bays: must be a string, got integer\n');
    expect(bad.stderr).toContain('bad.json: unknown key "maxrate" (expected one of bays, endpoint,');
    expect(bad.stderr).toContain('bad.json: settle: expected a duration: seconds, or a number with ms, s, m, h, d or y (30s, 10m, 24h, 7y), got "soon"\n');
    expect(bad.stderr).toMatch(/bodycam: .*bad\.json is not a valid dock config file \(3 problem\(s\)\)\n$/);
    writeFileSync(badFile, '{"endpoint": "http://127.0.0.1:"}');
    expect((await runCli(['dock', 'config', '--validate', badFile], { env })).stderr).toContain('the port after ":" is empty');
    writeFileSync(badFile, '{"bays": ');
    expect((await runCli(['dock', 'config', '--validate', badFile], { env })).stderr).toContain('not valid JSON');
    const neither = await runCli(['dock', 'config'], { env });
    expect(neither.code).toBe(2);
  });

  it('a key given twice in a config file is refused, naming the key (JSON would keep the last silently): dock and server, --validate and at start', async () => {
    const twice = join(etc, 'twice.json');
    writeFileSync(twice, '{"bays": "x", "settle": "2s", "bays": "y"}');
    const nested = join(etc, 'nested.json');
    // The same key in two different objects is no repeat; "a\u0062" is "ab" as JSON reads it.
    writeFileSync(nested, '{"dataDir": "/tmp/x", "listen": "127.0.0.1:0", "x": [{"k": 1}, {"k": 2}], "ab": 1, "a\\u0062": 2}');
    const [dockValidate, dockStart, serverValidate] = await Promise.all([
      runCli(['dock', 'config', '--validate', twice], { env }),
      runCli(['dock', '--config', twice, '--state-dir', join(tmp.path, 'st2'), '--endpoint', 'http://127.0.0.1:9', '--token-file', join(etc, 'dock.token')], { env }),
      runCli(['server', 'config', '--validate', nested], { env }),
    ]);
    expect(dockValidate.code).toBe(2);
    expect(dockValidate.stderr).toContain('twice.json: gives the key "bays" more than once (JSON keeps only the last): give each key once\n');
    expect(dockStart.code).toBe(2);
    expect(dockStart.stderr.trim().split('\n')).toHaveLength(1);
    expect(dockStart.stderr).toContain('gives the key "bays" more than once');
    expect(serverValidate.code).toBe(2);
    expect(serverValidate.stderr).toContain('gives the key "ab" more than once');
    expect(serverValidate.stderr).not.toContain('"k"');
  });

  it('--validate makes the start\'s value checks and lists every problem: the server\'s listen host and port, the dock\'s endpoint, port, timetable and id', async () => {
    const listens: Array<[string, RegExp | null]> = [
      ['0.0.0.0:99999', /invalid "listen" "0\.0\.0\.0:99999": port 99999 is not 0-65535/],
      ['nohost', /invalid "listen" "nohost": use host:port/],
      ['bad_host!:80', /"bad_host!" is not a host name or IP address/],
      ['[zz]:80', /"zz" is not a host name or IP address/],
      ['::1:80', /invalid "listen" "::1:80": use host:port/],
      ['0.0.0.0:8443', null], ['[::1]:0', null], ['ingest.example.org:443', null],
    ];
    const files = listens.map(([listen], i) => {
      const path = join(etc, `server-${i}.json`);
      writeFileSync(path, JSON.stringify({ dataDir: '/tmp/x', listen, retention: '36h' }));
      return path;
    });
    const dockFile = join(etc, 'four.json');
    writeFileSync(dockFile, JSON.stringify({ endpoint: 'ftp://x', statusPort: 99999, bwLimit: '25:00,10M', dockId: '../x' }));
    const [dock, ...servers] = await Promise.all([runCli(['dock', 'config', '--validate', dockFile], { env }), ...files.map((f) => runCli(['server', 'config', '--validate', f], { env }))]);
    for (const [i, [listen, said]] of listens.entries()) {
      const r = servers[i]!;
      expect([listen, r.code]).toEqual([listen, 2]);
      // Every problem, not the first: the retention (whole days) is one more.
      expect(r.stderr).toContain('invalid "retention": the retention is whole days');
      if (said) expect(r.stderr).toMatch(said);
      expect(r.stderr).toMatch(said ? /\(2 problem\(s\)\)\n$/ : /\(1 problem\(s\)\)\n$/);
    }
    expect(dock.code).toBe(2);
    expect(dock.stderr).toContain('invalid endpoint "ftp://x"');
    expect(dock.stderr).toContain('invalid status-port 99999: a port is 0-65535');
    expect(dock.stderr).toContain('invalid dock id "../x"');
    expect(dock.stderr).toMatch(/\(4 problem\(s\)\)\n$/);
  });

  it('--print masks a password in an endpoint URL (each of a list), and a refused value is the answer alone, not a table showing it as in force', async () => {
    const secret = 'hunter2pw';
    const printed = await runCli(['dock', 'config', '--print', '--config', file, '--state-dir', 'st', '--endpoint', `http://user:${secret}@127.0.0.1:1/,https://u2:${secret}x@127.0.0.1:2`], { env });
    expect(printed.code).toBe(0);
    expect(printed.stdout).toMatch(/^endpoint\s+http:\/\/user:\*\*\*@127\.0\.0\.1:1\/?,https:\/\/u2:\*\*\*@127\.0\.0\.1:2\/?\s+flag --endpoint$/m);
    const json = await runCli(['dock', 'config', '--print', '--json', '--config', file, '--state-dir', 'st', '--endpoint', `http://user:${secret}@127.0.0.1:1/`], { env });
    const refused = await runCli(['dock', 'config', '--print', '--config', file, '--state-dir', 'st', '--endpoint', `ftp://user:${secret}@x`], { env });
    const timetable = await runCli(['dock', 'config', '--print', '--config', file, '--state-dir', 'st', '--max-rate', '0', '--bw-limit', '25:00,10M'], { env });
    for (const r of [printed, json, refused, timetable]) expect(r.stdout + r.stderr).not.toContain(secret);
    for (const r of [refused, timetable]) {
      expect(r.code).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
    expect(refused.stderr).toMatch(/invalid endpoint "ftp:\/\/user:\*\*\*@x\/?"/);
  });
});
