/**
 * jest globalTeardown: stop the cluster this run started (test/helpers/engines.ts) and remove the
 * run folder, then check that no process it recorded is left. (jest loads this file as CommonJS,
 * outside the test module map: it imports nothing of ours.)
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';

export default function globalTeardown(): void {
  const dir = process.env.BODYCAM_ENGINES_RUN_DIR;
  if (!dir || !existsSync(dir)) return;
  const cluster = join(dir, 'shared');
  const pidFile = join(cluster, 'pids');
  const pids = existsSync(pidFile) ? readFileSync(pidFile, 'utf8').split('\n').map((line) => Number(line.split(' ')[1])).filter((n) => n > 0) : [];
  // Under the same lock as `up` (-o: the daemons do not inherit it): a start still under way finishes, then stops.
  execFileSync('flock', ['-o', join(dir, 'lock'), 'bash', resolve(__dirname, '../../scripts/engines.sh'), 'down', cluster], { stdio: 'inherit' });
  rmSync(dir, { recursive: true, force: true });
  const left = pids.filter((pid) => { try { process.kill(pid, 0); return true; } catch { return false; } });
  if (left.length) throw new Error(`engines: processes left after scripts/engines.sh down: ${left.join(' ')}`);
}
