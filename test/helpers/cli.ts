/** Run the real built CLI (dist/) as a child process, as a user or CI would. */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const BIN = fileURLToPath(new URL('../../bin/bodycam.js', import.meta.url));

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Tests read stderr as a person would: the JSON log goes to /dev/null unless the caller
 * chose (BODYCAM_LOG_FILE set, or set to '' for the default: a service's JSON on stderr).
 */
function personEnv(options: SpawnOptions): SpawnOptions {
  const env = options.env ?? process.env;
  return 'BODYCAM_LOG_FILE' in env ? options : { ...options, env: { ...env, BODYCAM_LOG_FILE: '/dev/null' } };
}

const tail = (text: string, lines: number): string => text.trimEnd().split('\n').slice(-lines).join('\n');

/** The last lines of the JSON log the child wrote, when the caller gave it a file. */
function logTail(options: SpawnOptions, lines: number): string {
  const path = (options.env ?? process.env).BODYCAM_LOG_FILE;
  if (!path || path === '/dev/null') return '';
  try {
    return `\n--- last ${lines} lines of ${path} (shared by the suite's runs) ---\n${tail(readFileSync(path, 'utf8'), lines)}`;
  } catch {
    return '';
  }
}

/** What a test's failure message shows of a run: how it ended and the tails of its output. */
export function describeRun(args: string[], result: CliResult, options: SpawnOptions = {}): string {
  const ended = result.signal ? `was killed by ${result.signal}` : `exited with ${result.code}`;
  return `bodycam ${args.join(' ')} ${ended}\n--- stderr (tail) ---\n${tail(result.stderr, 30)}\n--- stdout (tail) ---\n${tail(result.stdout, 10)}${logTail(options, 20)}`;
}

/**
 * A run the helper had to kill rejects (the test fails at the call) with how long it waited, the
 * child's stderr and stdout tails and its JSON log's tail: "code null" alone said nothing in CI.
 */
export function runCli(args: string[], options: SpawnOptions & { timeoutMs?: number; input?: string } = {}): Promise<CliResult> {
  const timeoutMs = options.timeoutMs ?? 120_000;
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const child = spawn(process.execPath, [BIN, ...args], { stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], ...personEnv(options) });
    if (options.input !== undefined) child.stdin!.end(options.input);
    let stdout = '';
    let stderr = '';
    let killed = false;
    child.stdout!.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
    const timer = setTimeout(() => { killed = true; child.kill('SIGKILL'); }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const result = { code, signal, stdout, stderr };
      if (!killed) { resolve(result); return; }
      reject(new Error(`runCli timed out: no exit within ${timeoutMs / 1000} s (killed after ${((Date.now() - started) / 1000).toFixed(1)} s): ${describeRun(args, result, options)}`));
    });
  });
}

/** expect(result.code).toBe(code), with what the run said when it is not. */
export function expectExitCode(result: CliResult, code: number, args: string[] = [], options: SpawnOptions = {}): void {
  if (result.code !== code) throw new Error(`expected exit code ${code}: ${describeRun(args, result, options)}`);
}

export function spawnCli(args: string[], options: SpawnOptions = {}): ChildProcess {
  return spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...personEnv(options) });
}
