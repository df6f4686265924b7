/**
 * `bodycam dock --once` with a card reader that never answers (a real one: a FUSE file system whose
 * root listing is never answered, test/helpers/stuckFs.ts). Before, the run waited for that bay's
 * scan for ever and said nothing. Now, once the scan has run for scanSlowAfter, the run offloads the
 * other bays and reports the stuck one as not scanned; it exits 1 (never a success: that card's
 * files were not looked at) as soon as the kernel lets go of the stuck request (here: the file
 * system goes away; Node's exit joins the thread that holds it).
 */
import { afterAll, describe, expect, it } from '@jest/globals';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sha256, startRig, type DockRig } from '../helpers/cards.js';
import { spawnCli } from '../helpers/cli.js';
import { makeFmp4, waitFor } from '../helpers/dock.js';
import { fuseSuitesWanted, mountStuck, unmountStuck } from '../helpers/stuckFs.js';

(fuseSuitesWanted ? describe : describe.skip)('dock --once with a bay whose card reader never answers', () => {
  let rig: DockRig | undefined;
  let fs: ChildProcess | undefined;
  let run: ChildProcess | undefined;
  let stuck = '';
  afterAll(async () => {
    run?.kill('SIGKILL');
    unmountStuck(fs, stuck);
    await rig?.close();
  });

  it('offloads the other bays, reports the stuck one as not scanned and exits 1', async () => {
    rig = await startRig('bodycam-once-stuck-');
    const file = join(rig.bays, 'bay1', 'DCIM', 'FILE0001.MP4');
    mkdirSync(join(rig.bays, 'bay1', 'DCIM'), { recursive: true });
    await makeFmp4(file, 2);
    stuck = join(rig.bays, 'bay2');
    fs = await mountStuck(stuck, { hangReaddir: true });
    run = spawnCli(rig.dockArgs(['--once', '--scan-slow-after', '2s']));
    let said = '';
    run.stdout!.on('data', (chunk: Buffer) => { said += chunk.toString(); });
    run.stderr!.on('data', (chunk: Buffer) => { said += chunk.toString(); });
    const exited = new Promise<number | null>((resolve) => run!.on('exit', (code) => resolve(code)));
    await waitFor('the stuck bay reported', () => /not scanned: bay2: the scan of this bay did not finish in \d+ s/.test(said), 60_000);
    // The other bay went through meanwhile.
    const rows = rig.rows();
    expect(rows.map((r) => [r.relPath, r.state])).toEqual([['DCIM/FILE0001.MP4', 'completed']]);
    expect(sha256((await rig.serverBytes(rows[0]!.recordingId!))!)).toBe(sha256(readFileSync(file)));
    // The card reader lets go (its file system ends): the run exits 1 at once.
    unmountStuck(fs, stuck);
    fs = undefined;
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([exited, new Promise((resolve) => { timer = setTimeout(() => resolve('still running'), 20_000); })]);
    clearTimeout(timer);
    expect(code).toBe(1);
  }, 120_000);
});
