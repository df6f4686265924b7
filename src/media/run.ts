/**
 * The one place a media process is spawned. A process is killed when its
 * timeout passes or its AbortSignal fires; a failure carries the tail of the
 * tool's stderr, which is where ffmpeg says what went wrong.
 */
import { spawn } from 'node:child_process';
import { MediaError } from '../errors.js';
import { mediaEnv, toolPath, type MediaTool } from './binaries.js';

export interface RunOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Called with stdout chunks instead of buffering them (for large outputs). */
  onStdout?: (chunk: Buffer) => void;
  /** Cap on buffered stdout; beyond it the process is killed. */
  maxStdoutBytes?: number;
  cwd?: string;
}

export interface RunResult {
  stdout: Buffer;
  stderrTail: string;
}

const STDERR_TAIL_BYTES = 4096;

export function runTool(tool: MediaTool, args: string[], options: RunOptions = {}): Promise<RunResult> {
  const binary = toolPath(tool);
  const timeoutMs = options.timeoutMs ?? 120_000;
  const maxStdout = options.maxStdoutBytes ?? 64 * 1024 * 1024;
  return new Promise<RunResult>((resolve, reject) => {
    if (options.signal?.aborted) {
      reject(new MediaError('E_MEDIA_ABORTED', `${tool} was aborted before it started`));
      return;
    }
    const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: options.cwd, env: mediaEnv() });
    const chunks: Buffer[] = [];
    let stdoutBytes = 0;
    let stderrTail = '';
    let killedFor: string | undefined;

    const kill = (reason: string): void => {
      if (killedFor) return;
      killedFor = reason;
      child.kill('SIGKILL');
    };
    const timer = setTimeout(() => kill(`timed out after ${timeoutMs} ms`), timeoutMs);
    const onAbort = (): void => kill('aborted');
    options.signal?.addEventListener('abort', onAbort, { once: true });

    child.stdout.on('data', (chunk: Buffer) => {
      if (options.onStdout) {
        options.onStdout(chunk);
        return;
      }
      stdoutBytes += chunk.length;
      if (stdoutBytes > maxStdout) kill(`produced more than ${maxStdout} bytes of output`);
      else chunks.push(chunk);
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderrTail = (stderrTail + chunk.toString('utf8')).slice(-STDERR_TAIL_BYTES);
    });
    const finish = (): void => {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
    };
    child.on('error', (cause) => {
      finish();
      reject(new MediaError('E_MEDIA_SPAWN', `could not start ${tool} (${binary}): ${cause.message}`, { cause }));
    });
    child.on('close', (code, signal) => {
      finish();
      const tail = stderrTail.trim();
      if (killedFor) {
        reject(new MediaError(killedFor === 'aborted' ? 'E_MEDIA_ABORTED' : 'E_MEDIA_TIMEOUT', `${tool} ${killedFor}`, { stderrTail: tail }));
      } else if (code !== 0) {
        const lastLine = tail.split('\n').pop() ?? '';
        reject(new MediaError('E_MEDIA_FAILED', `${tool} exited with ${code ?? signal}: ${lastLine}`, { stderrTail: tail, details: { args } }));
      } else {
        resolve({ stdout: Buffer.concat(chunks), stderrTail: tail });
      }
    });
  });
}

/** The first line of `<tool> -version` ("ffmpeg version 6.1 …"): is the tool there and does it run. */
export async function toolVersion(tool: MediaTool, options: RunOptions = {}): Promise<string> {
  const result = await runTool(tool, ['-version'], { timeoutMs: 15_000, ...options });
  return result.stdout.toString('utf8').split('\n')[0] ?? '';
}
