import { describe, it, expect, afterAll } from '@jest/globals';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { configReferenceMarkdown, DOCK_CONFIG_SCHEMA, envNameOf, loadDockConfig } from '../../src/dock/config.js';
import { makeTempDir } from '../helpers/tmp.js';

describe('dock config', () => {
  const tmp = makeTempDir('bodycam-dock-config-');
  afterAll(() => tmp.cleanup());
  const tokenFile = join(tmp.path, 'token');
  writeFileSync(tokenFile, '  secret-token-123\n', { mode: 0o600 });
  const required = { bays: tmp.path, endpoint: 'http://127.0.0.1:9', tokenFile, stateDir: join(tmp.path, 'state') };

  // The defaults as README.md's configuration reference documents them (the default column), in parsed units.
  // A new key must be added here too: its default is a documented promise.
  const DOCUMENTED: Record<string, { readme: string; value: unknown }> = {
    bays: { readme: '(required)', value: undefined }, endpoint: { readme: '(required)', value: undefined },
    tokenFile: { readme: '(required)', value: undefined }, stateDir: { readme: '(required)', value: undefined },
    serverKey: { readme: '—', value: undefined }, dockId: { readme: '—', value: undefined },
    once: { readme: 'false', value: false }, dryRun: { readme: 'false', value: false }, wipeAfterIngest: { readme: 'false', value: false },
    bwLimit: { readme: '—', value: undefined },
    concurrency: { readme: '4', value: 4 }, maxRate: { readme: '0 (unlimited)', value: 0 }, settle: { readme: '5s', value: 5 },
    statusPort: { readme: '7878', value: 7878 }, segmentSeconds: { readme: '10s', value: 10 },
    segmentMaxBytes: { readme: '16MiB', value: 16 * 1024 * 1024 }, maxBackoff: { readme: '5m', value: 300 },
    staleAfter: { readme: '24h', value: 86_400 }, retainFinished: { readme: '30d', value: 2_592_000 }, rescanInterval: { readme: '10s', value: 10 }, scanSlowAfter: { readme: '5m', value: 300 }, requestTimeout: { readme: '2m', value: 120 },
    requestRetries: { readme: '4', value: 4 }, onceAttempts: { readme: '3', value: 3 }, fingerprint: { readme: 'true', value: true },
    logLevel: { readme: 'info', value: 'info' },
  };

  it('has the documented default (or is required) and a description for every key', () => {
    expect(Object.keys(DOCK_CONFIG_SCHEMA).sort()).toEqual(Object.keys(DOCUMENTED).sort());
    const reference = configReferenceMarkdown();
    for (const [key, spec] of Object.entries(DOCK_CONFIG_SCHEMA)) {
      const documented = DOCUMENTED[key]!;
      expect(spec.description.length).toBeGreaterThan(10);
      expect(key).toMatch(/^[a-z][A-Za-z]+$/);
      expect({ key, default: spec.default, required: 'required' in spec && spec.required === true })
        .toEqual({ key, default: documented.value, required: documented.readme === '(required)' });
      expect(reference).toContain(`| ${key} | --`);
      expect(reference.split('\n').find((row) => row.startsWith(`| ${key} |`))!.split(' | ')[3]).toBe(documented.readme);
    }
    expect(reference).toContain('BODYCAM_MAX_RATE');
    expect(envNameOf('maxRate')).toBe('BODYCAM_MAX_RATE');
  });

  it('gives every optional key its documented default when nothing sets it', () => {
    const config = loadDockConfig({ flags: required, env: {} }) as unknown as Record<string, unknown>;
    for (const [key, documented] of Object.entries(DOCUMENTED)) {
      if (documented.readme === '(required)' || key === 'dockId') continue; // dockId defaults to the host name
      expect({ key, value: config[key] }).toEqual({ key, value: documented.value });
    }
  });

  it('applies defaults and reads the token file', () => {
    const config = loadDockConfig({ flags: required, env: {} });
    expect(config.token).toBe('secret-token-123');
    expect(config.concurrency).toBe(4);
    expect(config.settle).toBe(5);
    expect(config.segmentMaxBytes).toBe(16 * 1024 * 1024);
    expect(config.maxBackoff).toBe(300);
    expect(config.staleAfter).toBe(86_400);
    expect(config.dockId).toMatch(/^[A-Za-z0-9][A-Za-z0-9._-]*$/);
  });

  it('rejects unknown keys in the config file', () => {
    const file = join(tmp.path, 'bad.json');
    writeFileSync(file, JSON.stringify({ ...required, maxRat: '1mbit' }));
    expect(() => loadDockConfig({ configFile: file, env: {} })).toThrow(/unknown key "maxRat"/);
  });

  it('takes flags over env over file over defaults', () => {
    const file = join(tmp.path, 'dock.json');
    writeFileSync(file, JSON.stringify({ ...required, maxRate: '8mbit', concurrency: 2, settle: '9s', segmentSeconds: 4 }));
    const config = loadDockConfig({
      configFile: file,
      env: { BODYCAM_MAX_RATE: '16mbit', BODYCAM_CONCURRENCY: '3' },
      flags: { maxRate: '24mbit' },
    });
    expect(config.maxRate).toBe(3_000_000);      // flag
    expect(config.concurrency).toBe(3);          // env
    expect(config.settle).toBe(9);               // file
    expect(config.segmentSeconds).toBe(4);       // file
    expect(config.maxBackoff).toBe(300);         // default
  });

  it('resolves paths in the file against the file, and says what is wrong in one line', () => {
    const file = join(tmp.path, 'rel.json');
    writeFileSync(file, JSON.stringify({ bays: '.', endpoint: 'http://127.0.0.1:9', tokenFile: 'token', stateDir: 'st' }));
    expect(loadDockConfig({ configFile: file, env: {}, cwd: '/' }).stateDir).toBe(join(tmp.path, 'st'));
    expect(() => loadDockConfig({ flags: { ...required, maxRate: 'fast' }, env: {} })).toThrow(/invalid maxRate/);
    expect(() => loadDockConfig({ flags: { ...required, endpoint: 'ftp://x' }, env: {} })).toThrow(/invalid endpoint/);
    expect(() => loadDockConfig({ flags: { bays: tmp.path }, env: {} })).toThrow(/missing --endpoint/);
  });

  it('takes several endpoints (comma-separated, from any source): each checked, slashes cut, repeats dropped', () => {
    expect(loadDockConfig({ flags: { ...required, endpoint: 'http://127.0.0.1:9/, http://127.0.0.1:10,http://127.0.0.1:9' }, env: {} }).endpoint).toBe('http://127.0.0.1:9,http://127.0.0.1:10');
    expect(loadDockConfig({ flags: { ...required, endpoint: undefined }, env: { BODYCAM_ENDPOINT: 'https://a.example:8443,https://b.example:8443' } }).endpoint).toBe('https://a.example:8443,https://b.example:8443');
    expect(() => loadDockConfig({ flags: { ...required, endpoint: 'http://127.0.0.1:9,ftp://x' }, env: {} })).toThrow(/invalid endpoint "ftp:\/\/x"/);
    expect(() => loadDockConfig({ flags: { ...required, endpoint: 'http://127.0.0.1:9,http://host:' }, env: {} })).toThrow(/port after ":" is empty/);
    expect(() => loadDockConfig({ flags: { ...required, endpoint: ' , ' }, env: {} })).toThrow(/invalid endpoint/);
  });
});
