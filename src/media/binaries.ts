/**
 * Where ffmpeg and ffprobe live. FFMPEG_PATH / FFPROBE_PATH pick a system build;
 * otherwise the binaries shipped by @ffmpeg-installer/ffmpeg and
 * @ffprobe-installer/ffprobe. The ffprobe package ships without its run bit and
 * counts on a postinstall script that npm may have skipped, so the mode is
 * repaired here at run time as well.
 */
import { execFileSync } from 'node:child_process';
import { accessSync, chmodSync, constants, existsSync, mkdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EnvironmentError } from '../errors.js';

const require = createRequire(import.meta.url);

export type MediaTool = 'ffmpeg' | 'ffprobe';

const cache = new Map<MediaTool, string>();

function installerPath(tool: MediaTool): string | undefined {
  try {
    const pkg = tool === 'ffmpeg' ? '@ffmpeg-installer/ffmpeg' : '@ffprobe-installer/ffprobe';
    return (require(pkg) as { path: string }).path;
  } catch {
    return undefined;
  }
}

function ensureExecutable(path: string, tool: MediaTool): void {
  try {
    accessSync(path, constants.X_OK);
    return;
  } catch {
    // fall through to the repair
  }
  try {
    chmodSync(path, statSync(path).mode | 0o111);
    accessSync(path, constants.X_OK);
  } catch (cause) {
    throw new EnvironmentError('E_MEDIA_NOT_EXECUTABLE',
      `${tool} at ${path} is not executable and its mode could not be repaired: run \`chmod +x ${path}\` or set ${tool.toUpperCase()}_PATH`,
      { cause });
  }
}

/** Absolute path of a runnable ffmpeg/ffprobe, or an EnvironmentError saying what to do. */
export function toolPath(tool: MediaTool): string {
  const cached = cache.get(tool);
  if (cached) return cached;
  const envName = tool === 'ffmpeg' ? 'FFMPEG_PATH' : 'FFPROBE_PATH';
  const fromEnv = process.env[envName];
  const path = fromEnv || installerPath(tool);
  if (!path || !existsSync(path)) {
    throw new EnvironmentError('E_MEDIA_MISSING',
      fromEnv
        ? `${envName} points to ${fromEnv}, which does not exist: fix or unset ${envName}`
        : `${tool} was not found: run \`npm ci\` to install it, or set ${envName} to a ${tool} binary`);
  }
  ensureExecutable(path, tool);
  guardStaticGlibcIconv();
  if (fromEnv) checkChosenBinary(fromEnv, tool, envName);
  cache.set(tool, path);
  return path;
}

/**
 * A binary a person chose may run and still not be the tool (/bin/false, an
 * empty file the kernel hands to sh): its failures would read as media errors
 * or, worse, as empty recordings. One `-version` per process tells them apart.
 */
function checkChosenBinary(path: string, tool: MediaTool, envName: string): void {
  let banner = '';
  let failure = '';
  try {
    banner = execFileSync(path, ['-version'], { encoding: 'utf8', timeout: 15_000, stdio: ['ignore', 'pipe', 'ignore'], env: mediaEnv() });
  } catch (error) {
    const status = (error as { status?: number | null }).status;
    failure = typeof status === 'number' ? `-version exited with ${status}` : (error as Error).message.split('\n')[0];
  }
  if (banner.startsWith(`${tool} version`)) return;
  throw new EnvironmentError('E_MEDIA_NOT_TOOL',
    `${envName}=${path} is not a working ${tool} (${failure || '-version did not print its banner'}): set ${envName} to a working ${tool} or unset it to use the bundled one`);
}

/** For tests that change FFMPEG_PATH/FFPROBE_PATH. */
export function resetToolPathCache(): void {
  cache.clear();
}

/**
 * The installer packages ship static glibc builds. When a demuxer converts a
 * charset (the MPEG-TS SDT service name, for one), static glibc dlopens the
 * HOST's gconv modules, which belong to another glibc, and the process dies with
 * SIGSEGV: every ffprobe of a .ts file crashed here. Pointing GCONV_PATH at an
 * empty folder makes iconv fail cleanly instead; only metadata strings lose
 * their conversion, never audio/video bytes. A static build may also be chosen
 * through FFMPEG_PATH/FFPROBE_PATH, so the guard applies to every media process;
 * for a dynamic system build it costs the same metadata conversion and nothing else.
 * It is set on process.env (so every child process inherits it) and passed
 * explicitly by runTool (jest sandboxes process.env away from child_process).
 */
let guardDir: string | undefined;
function guardStaticGlibcIconv(): void {
  if (process.platform !== 'linux' || guardDir) return;
  guardDir = process.env.GCONV_PATH || join(tmpdir(), 'bodycam-empty-gconv');
  try {
    mkdirSync(guardDir, { recursive: true });
  } catch {
    // a path that does not exist guards just as well
  }
  process.env.GCONV_PATH = guardDir;
}

/** Environment for a spawned media process. */
export function mediaEnv(): NodeJS.ProcessEnv {
  guardStaticGlibcIconv();
  return guardDir ? { ...process.env, GCONV_PATH: guardDir } : { ...process.env };
}
