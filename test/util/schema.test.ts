import { describe, expect, it, afterAll } from '@jest/globals';
import fc from 'fast-check';
import { runs } from '../helpers/fcRuns.js';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { defineSettings, formatSetting, redactPassword, parseSetting, printableValue, readSettingsFile, requireSettings, resolveSettings, settingsJsonSchema, settingsReferenceMarkdown, validateSettingsFile } from '../../src/util/settings.js';
import { compileSchema } from '../../src/util/jsonSchema.js';
import { formatDuration, formatRate, parseBytes, parseDuration, parseRate, UNIT_PATTERNS } from '../../src/util/units.js';
import { makeTempDir } from '../helpers/tmp.js';

const SETTINGS = defineSettings({
  id: 'example', title: 'example', envPrefix: 'EX_', configFileEnv: 'EX_CONFIG',
  keys: {
    dataDir: { kind: 'path', default: undefined, required: true, description: 'where things live' },
    timeout: { kind: 'duration', default: 600, description: 'how long' },
    size: { kind: 'bytes', default: 64 * 1024 * 1024, description: 'how big' },
    workers: { kind: 'int', default: 4, min: 1, max: 64, description: 'how many' },
    level: { kind: 'string', default: 'info', choices: ['info', 'debug'], description: 'how loud' },
    endpoint: { kind: 'string', default: undefined, env: ['S3_ENDPOINT'], description: 'where to' },
    password: { kind: 'string', default: undefined, secret: true, env: ['THE_SECRET'], description: 'the secret' },
    db: { kind: 'string', default: undefined, redactPassword: true, env: ['DATABASE_URL'], description: 'the db' },
  },
});

describe('units: one grammar for the parsers and the published JSON Schema patterns', () => {
  const parsers = { duration: parseDuration, bytes: parseBytes, rate: parseRate } as const;
  const pieces = ['', ' ', '0', '1', '7', '16', '.', '.5', 'ms', 's', 'm', 'h', 'd', 'y', 'Y', 'MiB', 'mib', 'k', 'KB', 'G', 'gb', 'b', 'bit', 'mbit', 'MB/s', 'kb/s', '/', '-', 'e3', 'x'];
  it.each(Object.keys(parsers) as Array<keyof typeof parsers>)('%s: the pattern accepts exactly what the parser accepts', (kind) => {
    const pattern = new RegExp(UNIT_PATTERNS[kind], 'u');
    fc.assert(fc.property(fc.array(fc.constantFrom(...pieces), { maxLength: 5 }), (parts) => {
      const text = parts.join('');
      let parsed = true;
      try { parsers[kind](text); } catch { parsed = false; }
      expect({ text, matches: pattern.test(text) }).toEqual({ text, matches: parsed });
    }), { numRuns: runs(3000) });
  });

  it('reads 16MiB, 24h and 7y the same wherever they come from, and writes them back as a person would', () => {
    expect(parseBytes('16MiB')).toBe(16 * 1024 * 1024);
    expect(parseDuration('24h')).toBe(86_400);
    expect(parseDuration('7y')).toBe(7 * 365 * 86_400);
    expect(parseDuration('30d')).toBe(30 * 86_400);
    expect(parseDuration('250ms')).toBe(0.25);
    expect([formatDuration(7 * 365 * 86_400), formatDuration(30 * 86_400), formatDuration(86_400), formatDuration(300), formatDuration(1.5)]).toEqual(['7y', '30d', '24h', '5m', '1.5s']);
    expect(() => parseDuration('-5s')).toThrow(/invalid duration/);
    expect(() => parseDuration('5 fortnights')).toThrow(/invalid duration/);
  });

  it('writes a rate as a person would (1MB/s, not 1000000B/s) and reads every written rate back exactly', () => {
    expect([formatRate(1e6), formatRate(3_125_000), formatRate(500_000), formatRate(2000), formatRate(125), formatRate(1234)]).toEqual(['1MB/s', '25mbit', '4mbit', '2kB/s', '1kbit', '1234B/s']);
    fc.assert(fc.property(fc.integer({ min: 1, max: 1e12 }), (rate) => parseRate(formatRate(rate)) === rate));
  });
});

describe('settings library', () => {
  const tmp = makeTempDir('bodycam-settings-');
  afterAll(() => tmp.cleanup());
  const file = (name: string, content: unknown) => { const path = join(tmp.path, name); writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content)); return path; };

  it('takes flag > env (prefixed, then documented names) > file > default, naming each source', () => {
    const config = file('all.json', { timeout: '1m', size: 1024, workers: 2, endpoint: 'http://file', dataDir: 'data' });
    const resolved = resolveSettings(SETTINGS, {
      configFile: config, cwd: '/',
      env: { EX_WORKERS: '3', S3_ENDPOINT: 'http://documented', EX_ENDPOINT: 'http://prefixed' },
      flags: { timeout: '90s' },
    });
    expect(resolved.values).toEqual({ dataDir: join(tmp.path, 'data'), timeout: 90, size: 1024, workers: 3, level: 'info', endpoint: 'http://prefixed' });
    expect(resolved.sources.timeout).toEqual({ source: 'flag', name: '--timeout' });
    expect(resolved.sources.workers).toEqual({ source: 'env', name: 'EX_WORKERS' });
    expect(resolved.sources.endpoint).toEqual({ source: 'env', name: 'EX_ENDPOINT' });
    expect(resolved.sources.size).toEqual({ source: 'file', name: `config file ${config}` });
    expect(resolved.sources.level).toEqual({ source: 'default', name: 'default' });
    expect(resolveSettings(SETTINGS, { env: { S3_ENDPOINT: 'http://documented' } }).sources.endpoint).toEqual({ source: 'env', name: 'S3_ENDPOINT' });
    // The config file may also come from the schema's variable.
    expect(resolveSettings(SETTINGS, { env: { EX_CONFIG: config } }).values.workers).toBe(2);
  });

  it('a tool of the program: reads the program\'s file (checked against the program\'s schema, only its keys taken); its arguments come from flags only', () => {
    const TOOL = defineSettings({
      id: 'example-tool', title: 'example tool', envPrefix: 'EX_', configFileEnv: 'EX_CONFIG', configOf: SETTINGS,
      keys: {
        dataDir: { ...SETTINGS.keys.dataDir, required: false },
        timeout: SETTINGS.keys.timeout,
        json: { kind: 'boolean', default: false, argument: true, description: 'as JSON' },
        inputs: { kind: 'path', default: undefined, many: true, argument: true, description: 'files' },
      },
    });
    const config = file('program.json', { dataDir: 'data', workers: 2, timeout: '1m' });
    const resolved = resolveSettings(TOOL, { configFile: config, cwd: '/w', env: { EX_JSON: 'true', EX_INPUTS: '/x', EX_TIMEOUT: '2m' }, flags: { inputs: ['a', '/b'] } });
    expect(resolved.values).toEqual({ dataDir: join(tmp.path, 'data'), timeout: 120, json: false, inputs: ['/w/a', '/b'] });
    expect(resolved.sources.json).toEqual({ source: 'default', name: 'default' });
    // A key only the program knows is no error in its own file, but one neither knows is.
    expect(() => resolveSettings(TOOL, { configFile: file('typo.json', { dataDir: 'd', jsno: true }) })).toThrow(/config file .*typo\.json: unknown key "jsno"/);
    // Nor does an argument come from the file.
    expect(() => resolveSettings(TOOL, { configFile: file('arg.json', { json: true }) })).toThrow(/unknown key "json"/);
    expect(() => requireSettings({ ...TOOL, keys: { ...TOOL.keys, json: { ...TOOL.keys.json, required: true } } }, {})).toThrow(/^missing --json: as JSON$/);
    const table = settingsReferenceMarkdown(TOOL, 'the program\'s file');
    expect(table).toContain('| inputs | --inputs … | — (flag only) | — | files |');
    expect(table).toContain('| timeout | --timeout | EX_TIMEOUT | 10m | how long |');
  });

  it('refuses a file that is a folder, missing, not JSON, not an object, with unknown keys or wrong types: one line naming the file and the key', () => {
    mkdirSync(join(tmp.path, 'folder.json'));
    const fifo = join(tmp.path, 'fifo.json');
    execFileSync('mkfifo', [fifo]);
    const cases: Array<[string, RegExp]> = [
      [join(tmp.path, 'folder.json'), /folder\.json is a folder, not a file/],
      [join(tmp.path, 'nope.json'), /nope\.json does not exist/],
      [file('bad.json', '{"timeout": '), /bad\.json is not valid JSON/],
      [file('array.json', '[1]'), /must hold a JSON object/],
      [file('unknown.json', { workerz: 3 }), /unknown key "workerz" \(expected one of dataDir, timeout/],
      [file('type.json', { workers: '3' }), /workers: must be an integer, got string/],
      [file('range.json', { workers: 65 }), /workers: must be <= 64/],
      [file('unit.json', { timeout: '10 minutes' }), /timeout: expected a duration: seconds, or a number with ms, s, m, h, d or y .*, got "10 minutes"/],
      [file('choice.json', { level: 'loud' }), /level: must be one of "info", "debug", got "loud"/],
      [file('null-top.json', 'null'), /must hold a JSON object/],
      // Never read: a device is endless (was std::bad_alloc), a FIFO blocks, a huge file is no config.
      ['/dev/zero', /\/dev\/zero is not a regular file/],
      [fifo, /fifo\.json is not a regular file/],
      [file('huge.json', `{"dataDir": "${'x'.repeat(1024 * 1024)}"}`), /huge\.json is 1048591 bytes: a config file holds at most 1 MiB/],
    ];
    for (const [path, message] of cases) {
      expect(() => readSettingsFile(SETTINGS, path)).toThrow(message);
      expect(() => resolveSettings(SETTINGS, { configFile: path, env: {} })).toThrow(message);
      const problems = validateSettingsFile(SETTINGS, path).problems;
      expect(problems.length).toBeGreaterThan(0);
      for (const problem of problems) expect(problem).not.toContain('\n');
    }
  });

  it('refuses a wrong value in the environment or a flag, naming the variable or flag', () => {
    expect(() => resolveSettings(SETTINGS, { env: { EX_WORKERS: 'many' } })).toThrow('invalid workers (EX_WORKERS): expected a whole number from 1 to 64, got "many"');
    expect(() => resolveSettings(SETTINGS, { env: { EX_WORKERS: '0' } })).toThrow(/from 1 to 64/);
    expect(() => resolveSettings(SETTINGS, { env: { EX_WORKERS: '1e3' } })).toThrow(/whole number/);
    expect(() => resolveSettings(SETTINGS, { env: { EX_TIMEOUT: 'soon' } })).toThrow(/invalid timeout \(EX_TIMEOUT\)/);
    expect(() => resolveSettings(SETTINGS, { env: {}, flags: { level: 'LOUD' } })).toThrow('invalid level (--level): expected one of info, debug, got "LOUD"');
    expect(() => requireSettings(SETTINGS, resolveSettings(SETTINGS, { env: {} }).values)).toThrow('missing --data-dir (or EX_DATA_DIR, or "dataDir" in the config file): where things live');
  });

  it('never shows a secret: not in --print, not in an error, never as a flag; a URL password is masked', () => {
    const secret = 'hunter2-very-secret';
    expect(formatSetting(SETTINGS.keys.password, secret)).toBe('(set)');
    expect(printableValue(SETTINGS.keys.password, secret)).toEqual({ set: true });
    expect(formatSetting(SETTINGS.keys.db, `postgres://app:${secret}@db:5432/evidence`)).toBe('postgres://app:***@db:5432/evidence');
    expect(JSON.stringify(printableValue(SETTINGS.keys.db, `postgres://app:${secret}@db/e`))).not.toContain(secret);
    // A flag named like the secret is ignored: secrets come from the environment or the file only.
    expect(resolveSettings(SETTINGS, { env: {}, flags: { password: secret } }).values.password).toBeUndefined();
    expect(resolveSettings(SETTINGS, { env: { THE_SECRET: secret } }).sources.password).toEqual({ source: 'env', name: 'THE_SECRET' });
    for (const bad of [{ password: 42 }, { password: '' }, { db: 7 }]) {
      let message = '';
      try { readSettingsFile(SETTINGS, file('secret.json', { ...bad, workers: 'x' })); } catch (error) { message = (error as Error).message; }
      expect(message).toMatch(/must be/);
      expect(message).not.toContain('42');
    }
    let message = '';
    try { parseSetting('password', { ...SETTINGS.keys.password, choices: ['a'] }, secret, 'THE_SECRET'); } catch (error) { message = (error as Error).message; }
    expect(message).toContain('invalid password (THE_SECRET)');
    expect(message).not.toContain(secret);
    // Not JSON: the parser's message (which may quote the file) is not passed on.
    message = '';
    try { readSettingsFile(SETTINGS, file('leak.json', `{"password": "${secret}" "x": 1}`)); } catch (error) { message = (error as Error).message; }
    expect(message).toMatch(/is not valid JSON/);
    expect(message).not.toContain(secret);
    expect(settingsReferenceMarkdown(SETTINGS, 'note')).toContain('| password | (none: secret) | EX_PASSWORD, THE_SECRET | — | the secret |');
  });

  it('masks a database password wherever node-postgres would read one: user info and the query string', () => {
    const shown = redactPassword('postgres://bodycam:pw1@db.local/evidence?password=s3cret&sslpassword=k3y&sslmode=require&sslkey=/k.pem');
    for (const secret of ['pw1', 's3cret', 'k3y', '/k.pem', '%2Fk.pem']) expect(shown).not.toContain(secret);
    expect(shown).toContain('sslmode=require');
    expect(shown).toContain('db.local/evidence');
    expect(redactPassword('not a url', '(unparsable)')).toBe('(unparsable)');
  });

  it('generates a draft-07 JSON Schema that accepts every default and that the one validator compiles', () => {
    const schema = settingsJsonSchema(SETTINGS) as { properties: Record<string, { default?: unknown; description: string }>; additionalProperties: boolean };
    expect(schema.additionalProperties).toBe(false);
    const { $id: _id, ...body } = schema as unknown as Record<string, unknown>;
    const validator = compileSchema(body);
    const defaults = Object.fromEntries(Object.entries(schema.properties).filter(([, p]) => p.default !== undefined).map(([k, p]) => [k, p.default]));
    expect(validator.problems(defaults)).toEqual([]);
    for (const [key, property] of Object.entries(schema.properties)) expect([key, property.description.length > 3]).toEqual([key, true]);
  });
});

describe('the one validator', () => {
  it('names the place of each problem and says "exactly one of" for a oneOf of required keys', () => {
    const validator = compileSchema({
      type: 'object', additionalProperties: false, required: ['steps'],
      properties: { steps: { type: 'array', items: { type: 'object', additionalProperties: false, oneOf: [{ required: ['dock'] }, { required: ['undock'] }], properties: { dock: { type: 'string' }, undock: { type: 'string' }, at: { type: 'number', minimum: 0 } } } } },
    });
    expect(validator.problems({ steps: [{ dock: 'a' }] })).toEqual([]);
    expect(validator.problems({ steps: [{ dock: 'a', undock: 'b' }, {}, { dock: 1, at: -1, atx: 2 }] })).toEqual([
      'steps[0]: must have exactly one of dock, undock (has dock, undock)',
      'steps[1]: must have exactly one of dock, undock',
      'steps[2].atx: unknown key (expected one of dock, undock, at)',
      'steps[2].dock: must be a string, got integer',
      'steps[2].at: must be >= 0',
    ]);
    expect(validator.problems({ step: [] })).toEqual(['steps: is required', 'unknown key "step" (expected one of steps)']);
    expect(validator.problems([])).toEqual(['(top level): must be an object, got array']);
  });
});
