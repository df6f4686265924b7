/**
 * Help as people read it: through a pipe closed early (`| head -1`, `| true`) with no EPIPE
 * stack, ending with a newline, defaults in the README's units, examples that run as printed.
 */
import { describe, it, expect } from '@jest/globals';
import { spawn } from 'node:child_process';
import { BIN, runCli } from '../helpers/cli.js';

/** Run `bodycam ARGS | READER` in bash: the pipe is real and its reader leaves early. */
function piped(args: string, reader: string): Promise<{ status: string; stderr: string; stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', `"${process.execPath}" "${BIN}" ${args} | ${reader}; echo "status=\${PIPESTATUS[0]}"`], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    child.on('error', reject);
    child.on('close', () => resolve({ status: /status=(\d+)/.exec(stdout)?.[1] ?? '?', stderr, stdout }));
  });
}

describe('help', () => {
  it.each(['--help', 'dock --help', 'server --help', 'status --help'])('`bodycam %s` into a pipe closed at once: exit 0, no EPIPE, no stack', async (args) => {
    const early = await piped(args, 'true');
    expect(early.stderr).toBe('');
    expect(early.status).toBe('0');
    const head = await piped(args, 'head -1');
    expect(head.stderr).toBe('');
    expect(head.stdout).toMatch(/^Usage: bodycam/);
  });

  it('dock --help: defaults as the README writes them, --no-fingerprint says what it turns off, examples carry --state-dir, ends with a newline', async () => {
    const result = await runCli(['dock', '--help']);
    expect(result.code).toBe(0);
    const text = result.stdout.replace(/\s+/g, ' ');
    expect(text).toContain('default 16MiB');
    expect(text).toContain('default 24h');
    expect(text).toContain('default 5m');
    expect(text).not.toMatch(/16777216|86400|default 300\b/);
    expect(text).toMatch(/--no-fingerprint .*default on; --no-fingerprint turns it off/);
    for (const example of result.stdout.split('\n').filter((l) => l.trim().startsWith('$ bodycam dock --bays'))) expect(example).toContain('--state-dir');
    expect(result.stdout.endsWith('\n')).toBe(true);
    expect(result.stdout).toContain('[BODYCAM_CONFIG]');
  });
});
