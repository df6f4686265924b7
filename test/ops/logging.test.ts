/**
 * The log as an operator's tools read it: pino's JSON lines (numeric level, time, pid,
 * hostname, msg, err), the build on the first line, every stderr line JSON when a service's
 * stderr is not a terminal, plain lines only with BODYCAM_LOG_FILE, syslog priorities for
 * journald, and logLevel validated like every other key.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { closeSync, constants, fstatSync, mkdirSync, openSync, readFileSync, readSync, writeFileSync } from 'node:fs';
import { execFileSync, spawn } from 'node:child_process';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import { recordCamera } from '../../src/camera/index.js';
import { UsageError } from '../../src/errors.js';
import { fileLogger, serializeError, sinkForFd, sinkForFile, streamLogger } from '../../src/log.js';
import { VERSION } from '../../src/util/version.js';
import { BIN, runCli } from '../helpers/cli.js';
import { startTestServer, TEST_TOKENS, testToken, type TestServer } from '../helpers/server.js';
import { makeTempDir } from '../helpers/tmp.js';

const PACKAGE_VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

function jsonLines(text: string): Array<Record<string, unknown>> {
  return text.split('\n').filter((l) => l !== '').map((line) => {
    try { return JSON.parse(line) as Record<string, unknown>; } catch { throw new Error(`not a JSON line: ${line}`); }
  });
}

/**
 * A real pipe (a FIFO: 64 KiB, where spawn's 'pipe' is a socket pair with far larger buffers) for a
 * child's stderr: both ends opened non-blocking, the read end read only when the test says so.
 */
function stderrFifo(path: string): { writer: number; drain(): void; text(): string; ended(): boolean; close(): void } {
  execFileSync('mkfifo', [path]);
  const reader = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  const writer = openSync(path, constants.O_WRONLY | constants.O_NONBLOCK);
  let text = '';
  let ended = false;
  const buffer = Buffer.alloc(65536);
  return {
    writer,
    /** Everything the pipe holds now (EOF once no writer is left). */
    drain: () => {
      for (;;) {
        let n = 0;
        try { n = readSync(reader, buffer, 0, buffer.length, null); } catch (error) { if ((error as NodeJS.ErrnoException).code === 'EAGAIN') return; throw error; }
        if (n === 0) { ended = true; return; }
        text += buffer.subarray(0, n).toString();
      }
    },
    text: () => text,
    ended: () => ended,
    close: () => closeSync(reader),
  };
}

describe('logging (pino)', () => {
  const tmp = makeTempDir('bodycam-logging-');
  const bays = join(tmp.path, 'bays');
  let server: TestServer;
  let runs = 0;
  // The server pins a dock's key on first use: each run is its own dock (own id, token and state folder).
  const DOCKS = 9;
  const tokens = Object.fromEntries(Array.from({ length: DOCKS }, (_, i) => [`dock-${i + 1}`, testToken(`logging-${i + 1}`)]));
  const dockArgs = (): string[] => {
    const n = ++runs;
    const tokenFile = join(tmp.path, `dock-${n}.token`);
    writeFileSync(tokenFile, tokens[`dock-${n}`]! + '\n', { mode: 0o600 });
    return ['dock', '--once', '--bays', bays, '--endpoint', server.url, '--token-file', tokenFile, '--dock-id', `dock-${n}`,
      '--state-dir', join(tmp.path, `state-${n}`), '--status-port', '0', '--settle', '0.2s', '--no-fingerprint'];
  };
  const cleanEnv = (): NodeJS.ProcessEnv => {
    const env = { ...process.env };
    delete env.BODYCAM_LOG_LEVEL; delete env.JOURNAL_STREAM;
    env.BODYCAM_LOG_FILE = ''; // '' is unset for the CLI; the test helper leaves the log on stderr
    return env;
  };

  beforeAll(async () => {
    server = await startTestServer({ tokens });
    mkdirSync(bays);
    await recordCamera({ storage: join(bays, 'bay-01'), count: 1, durationSeconds: 1, seed: 'logging', width: 160, height: 120, fps: 10 });
    // A zero-byte recording: quarantined, so the --once report has something to say.
    writeFileSync(join(bays, 'bay-01', 'DCIM', '100BWC', 'EMPTY_0009.MP4'), '');
  });
  afterAll(async () => {
    await server.close();
    tmp.cleanup();
  });

  it('the package version is what --version and the code say', async () => {
    expect(VERSION).toBe(PACKAGE_VERSION);
    const result = await runCli(['--version']);
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(`${PACKAGE_VERSION}\n`);
  });

  it('dock --once with stderr not a terminal: every stderr line is a pino record; the first names the build; the report is records', async () => {
    const result = await runCli(dockArgs(), { env: cleanEnv() });
    expect(result.code).toBe(3);
    const records = jsonLines(result.stderr);
    expect(records.length).toBeGreaterThan(2);
    for (const r of records) {
      expect(typeof r.level).toBe('number');
      expect(r.pid).toEqual(expect.any(Number));
      expect(r.hostname).toBe(hostname());
      expect(typeof r.time).toBe('string');
      expect(typeof r.msg).toBe('string');
    }
    expect(records[0]).toMatchObject({ level: 30, msg: 'bodycam-dock starting', version: PACKAGE_VERSION, node: process.version, dockId: expect.stringMatching(/^dock-\d$/) });
    const quarantined = records.find((r) => typeof r.msg === 'string' && r.msg.startsWith('quarantined: '));
    expect(quarantined).toMatchObject({ level: 40, reasonCode: 'zero_byte', file: 'DCIM/100BWC/EMPTY_0009.MP4' });
  });

  it('with BODYCAM_LOG_FILE, stderr holds the plain report and the file holds only JSON', async () => {
    const logFile = join(tmp.path, 'dock.log');
    const result = await runCli(dockArgs(), { env: { ...cleanEnv(), BODYCAM_LOG_FILE: logFile } });
    expect(result.code).toBe(3);
    expect(result.stderr).toMatch(/^quarantined: DCIM\/100BWC\/EMPTY_0009\.MP4: zero_byte: /m);
    expect(result.stderr).not.toMatch(/^\{/m);
    const records = jsonLines(readFileSync(logFile, 'utf8'));
    expect(records[0]).toMatchObject({ msg: 'bodycam-dock starting', version: PACKAGE_VERSION });
  });

  it('a failure of a service with stderr not a terminal is one fatal record with err, no stack for a mistake', async () => {
    const result = await runCli(['dock', '--bays', bays, '--endpoint', server.url, '--token-file', join(tmp.path, 'missing.token'), '--state-dir', join(tmp.path, 'state-x')], { env: cleanEnv() });
    expect(result.code).toBe(2);
    const records = jsonLines(result.stderr);
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ level: 60, code: 'E_USAGE', exitCode: 2, err: { type: 'UsageError', code: 'E_USAGE' } });
    expect(records[0]!.msg).toMatch(/^bodycam: cannot read token file .*missing\.token/);
    expect((records[0]!.err as Record<string, unknown>).stack).toBeUndefined();
  });

  it('logLevel is validated from the flag and the environment (exit 2, source named; the config file goes through the same schema); the server too', async () => {
    const flag = await runCli([...dockArgs(), '--log-level', 'loud'], { env: { ...cleanEnv(), BODYCAM_LOG_FILE: join(tmp.path, 'x.log') } });
    expect(flag.code).toBe(2);
    expect(flag.stderr).toMatch(/invalid logLevel \(--log-level\): expected one of trace, debug, info, warn, error, fatal, silent, got "loud"/);
    const env = await runCli(dockArgs(), { env: { ...cleanEnv(), BODYCAM_LOG_LEVEL: 'verbose', BODYCAM_LOG_FILE: join(tmp.path, 'x.log') } });
    expect(env.code).toBe(2);
    expect(env.stderr).toMatch(/invalid logLevel \(BODYCAM_LOG_LEVEL\)/);
    const tokensFile = join(tmp.path, 'tokens.json');
    writeFileSync(tokensFile, JSON.stringify(TEST_TOKENS), { mode: 0o600 });
    const srv = await runCli(['server', '--data-dir', join(tmp.path, 'srv'), '--tokens', tokensFile, '--listen', '127.0.0.1:0', '--log-level', 'chatty'], { env: { ...cleanEnv(), BODYCAM_LOG_FILE: join(tmp.path, 'x.log') } });
    expect(srv.code).toBe(2);
    expect(srv.stderr).toMatch(/invalid logLevel \(--log-level\): expected one of .*got "chatty"/);
  });

  it('under journald (JOURNAL_STREAM names stderr) each line starts with its syslog priority', async () => {
    const out = join(tmp.path, 'journal.txt');
    const fd = openSync(out, 'w');
    const st = fstatSync(fd);
    const code = await new Promise<number | null>((resolve, reject) => {
      const child = spawn(process.execPath, [BIN, ...dockArgs()], { stdio: ['ignore', 'ignore', fd], env: { ...cleanEnv(), JOURNAL_STREAM: `${st.dev}:${st.ino}` } });
      child.on('error', reject);
      child.on('exit', (c) => resolve(c));
    });
    closeSync(fd);
    expect(code).toBe(3);
    const lines = readFileSync(out, 'utf8').split('\n').filter(Boolean);
    const byPriority = lines.map((line) => {
      const m = /^<(\d)>(\{.*\})$/.exec(line);
      expect(m).not.toBeNull();
      return { priority: Number(m![1]), record: JSON.parse(m![2]!) as { level: number; msg: string } };
    });
    const expected: Record<number, number> = { 20: 7, 30: 6, 40: 4, 50: 3, 60: 2 };
    for (const { priority, record } of byPriority) expect(priority).toBe(expected[record.level]);
    expect(byPriority.some((l) => l.priority === 4 && l.record.msg.startsWith('quarantined: '))).toBe(true);
  });

  it('a stderr pipe nobody reads never stalls the agent: it keeps working and answering, lines beyond the buffer are dropped and counted once the reader is back', async () => {
    // A card of junk: 900 zero-byte files, each quarantined with a warning and a debug line (about 470 KB
    // of log: more than the pipe's 64 KiB and the 256 KiB the logger holds).
    const junkBays = join(tmp.path, 'junk-bays');
    const folder = join(junkBays, 'bay-junk', 'DCIM', '100BWC');
    mkdirSync(folder, { recursive: true });
    for (let i = 0; i < 900; i++) writeFileSync(join(folder, `J${String(i).padStart(4, '0')}.MP4`), '');
    const args = dockArgs().filter((a) => a !== '--once');
    args[args.indexOf('--bays') + 1] = junkBays;
    const stateDir = args[args.indexOf('--state-dir') + 1]!;
    // Not read from until the agent is done.
    const pipe = stderrFifo(join(tmp.path, 'stderr.fifo'));
    const child = spawn(process.execPath, [BIN, ...args, '--log-level', 'debug'], { stdio: ['ignore', 'ignore', pipe.writer], env: cleanEnv() });
    closeSync(pipe.writer);
    const { drain } = pipe;
    try {
      const statusOf = async (): Promise<{ queue: { quarantined: number } } | undefined> => {
        try {
          const { port } = JSON.parse(readFileSync(join(stateDir, 'status.json'), 'utf8')) as { port: number };
          return await (await fetch(`http://127.0.0.1:${port}/status`)).json() as { queue: { quarantined: number } };
        } catch { return undefined; }
      };
      // The agent finishes the card and answers its status port with the pipe full all along.
      const deadline = Date.now() + 90_000;
      while ((await statusOf())?.queue.quarantined !== 900) {
        if (child.exitCode !== null || Date.now() > deadline) throw new Error(`agent stalled or ended (exit ${child.exitCode})`);
        await new Promise((r) => setTimeout(r, 100));
      }
      // With the pipe still full, the dropped lines show on /metrics (where an alert sees them without the log).
      const { port } = JSON.parse(readFileSync(join(stateDir, 'status.json'), 'utf8')) as { port: number };
      const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      expect(Number(/^bodycam_log_lines_dropped_total (\d+)$/m.exec(metrics)?.[1])).toBeGreaterThan(0);
      drain();
      expect(pipe.text().length).toBeLessThan(900 * 400); // the pipe held a part only
      child.kill('SIGHUP'); // one more line: the held lines go out, then the count of those dropped
      const until = Date.now() + 30_000;
      while (!pipe.text().includes('"msg":"log lines dropped')) {
        if (Date.now() > until) throw new Error('no "log lines dropped" record');
        await new Promise((r) => setTimeout(r, 50));
        drain();
      }
      const records = jsonLines(pipe.text().slice(0, pipe.text().lastIndexOf('\n') + 1)); // every line whole: a held line is written first, never cut
      const drop = records.find((r) => r.msg === 'log lines dropped: the log reader did not keep up (stderr pipe or log file full)')!;
      expect(drop).toMatchObject({ level: 40, dropped: expect.any(Number) });
      expect(drop.dropped as number).toBeGreaterThan(0);
      expect(records.some((r) => r.msg === 'reloaded: token and server key read again, dock-level problems cleared')).toBe(true);
    } finally {
      child.kill('SIGTERM');
      await new Promise((resolve) => { if (child.exitCode !== null) resolve(undefined); else child.once('exit', resolve); });
      pipe.close();
    }
  }, 150_000);

  it('two loggers on one pipe the reader empties slowly: every line arrives whole, the fatal line before process.exit too', async () => {
    // Lines of 20 KB (more than PIPE_BUF: a write takes part of one), loggers A and B in one process,
    // B logging while A's line is held in part, then a fatal record and process.exit with the pipe full.
    const script = `
      import { createLogger } from ${JSON.stringify(join(dirname(BIN), '..', 'dist', 'log.js'))};
      const a = createLogger({ component: 'A' }, 'info');
      const b = createLogger({ component: 'B' }, 'info');
      const big = 'x'.repeat(20000);
      for (let i = 0; i < 4; i++) a.info('A-line', { i, big });
      process.send('full');
      process.on('message', () => {
        b.info('B-line');
        for (let i = 4; i < 8; i++) a.info('A-line', { i, big });
        a.fatal('the reason the process ends');
        process.exit(3);
      });`;
    const pipe = stderrFifo(join(tmp.path, 'two-loggers.fifo'));
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'ignore', pipe.writer, 'ipc'], env: cleanEnv() });
    closeSync(pipe.writer);
    const { drain } = pipe;
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    try {
      await new Promise<void>((resolve, reject) => { child.once('message', () => resolve()); child.once('exit', () => reject(new Error('child ended early'))); });
      drain(); // room in the pipe now, A's line still held in part
      child.send('go');
      // A slow reader: a look every 20 ms until the writer is gone (the child waits for it at exit).
      const deadline = Date.now() + 30_000;
      while (!pipe.ended()) {
        if (Date.now() > deadline) throw new Error('the pipe never ended');
        await new Promise((r) => setTimeout(r, 20));
        drain();
      }
      expect(await exited).toBe(3);
      expect(pipe.text().endsWith('\n')).toBe(true);
      const records = jsonLines(pipe.text()); // throws on a line that is not one whole record
      expect(records.filter((r) => r.msg === 'A-line').map((r) => r.i)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
      expect(records.filter((r) => r.msg === 'B-line')).toHaveLength(1);
      expect(records.at(-1)).toMatchObject({ level: 60, msg: 'the reason the process ends', component: 'A' });
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      pipe.close();
    }
  });

  it('one sink per descriptor and per log file; a log file a previous writer left mid-line gets a newline first', () => {
    expect(sinkForFd(2)).toBe(sinkForFd(2));
    const file = join(tmp.path, 'cut.log');
    writeFileSync(file, '{"level":30,"msg":"whole"}\n{"level":30,"msg":"cut by a full di');
    expect(sinkForFile(file)).toBe(sinkForFile(join(tmp.path, '.', 'cut.log')));
    fileLogger(file, 'info', { component: 'first' }).info('next process, first line');
    fileLogger(file, 'info', { component: 'second' }).info('second logger, same sink');
    const lines = readFileSync(file, 'utf8').split('\n');
    expect(lines[1]).toBe('{"level":30,"msg":"cut by a full di');
    const after = jsonLines(lines.slice(2).join('\n'));
    expect(after.map((r) => r.msg)).toEqual([
      'log lines dropped: the log reader did not keep up (stderr pipe or log file full)',
      'next process, first line',
      'second logger, same sink',
    ]);
    expect(after[0]).toMatchObject({ level: 40, dropped: 1 });
  });

  it('errors are serialized with pino field names and the project\'s code, details and cause chain', () => {
    const lines: string[] = [];
    const log = streamLogger({ write: (line) => { lines.push(line); } }, 'debug', { component: 'test' });
    const root = Object.assign(new Error('disk on fire'), { code: 'EIO' });
    log.error('write failed', { err: new UsageError('bad flag', { cause: root, details: { flag: '--x' } }), other: new Error('second') });
    log.debug('shown at debug');
    const [record, debug] = lines.map((l) => JSON.parse(l) as Record<string, any>);
    expect(record).toMatchObject({ level: 50, msg: 'write failed', component: 'test', err: { type: 'UsageError', code: 'E_USAGE', details: { flag: '--x' }, cause: { type: 'Error', message: 'disk on fire', code: 'EIO' } }, other: { type: 'Error', message: 'second' } });
    expect(record!.err.stack).toBeUndefined(); // a person's mistake: no stack
    expect(record!.err.cause.stack).toMatch(/disk on fire/);
    expect(debug).toMatchObject({ level: 20, msg: 'shown at debug' });
  });
});
