/**
 * Issue 9 item 5: nothing is skipped silently. The whole camera storage is walked (a vendor layout
 * five folders deep is ingested), and every path the dock leaves alone is listed on the bay with
 * its reason, in `bodycam status` and `--json`; a bay is `done` only when every media file on it is
 * ingested or accounted for, and `--once` does not claim success when the listing was cut short.
 * Built CLI, real server, real files.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { listCameraFiles } from '../../src/protocol/cameraStorage/index.js';
import type { DockStatus } from '../../src/dock/index.js';
import { runCli, spawnCli } from '../helpers/cli.js';
import { makePlainMp4 } from '../helpers/dock.js';
import { notOnServer, startRig, type DockRig } from '../helpers/cards.js';

describe('item 5: every file the dock leaves alone is listed with its reason', () => {
  let rig: DockRig;
  let agent: ChildProcess | undefined;
  const deepRel = 'Record/2025/05/10/EVT0001/x.mp4';
  const tooDeep = Array.from({ length: 34 }, (_, i) => `d${i}`).join('/');

  beforeAll(async () => {
    rig = await startRig('bodycam-item05-');
    const deep = join(rig.bays, 'bay-deep');
    mkdirSync(join(deep, 'Record/2025/05/10/EVT0001'), { recursive: true });
    await makePlainMp4(join(deep, deepRel), 2);
    // Skips listed and left alone; a hidden or temporary media file may be evidence (a file hidden on
    // a PC, a write cut by power loss): never a plain success.
    writeFileSync(join(deep, '.hidden.mp4'), 'hidden');
    mkdirSync(join(deep, 'Record/.thumbs'));
    writeFileSync(join(deep, 'Record/.thumbs/t1.jpg'), 'thumb');
    writeFileSync(join(deep, 'Record/2025/clip.mp4.part'), 'half written');
    writeFileSync(join(deep, 'Record/index.json'), '{"clips": 1}');
  });
  afterAll(async () => {
    if (agent && agent.exitCode === null) agent.kill('SIGKILL');
    await rig.close();
  });

  it('ingests a recording five folders deep, lists what it left alone, and calls the hidden and temporary media files attention (--once exit 3)', async () => {
    const result = await rig.once();
    expect(result.code).toBe(3);
    expect(result.stderr).toMatch(/^skipped: bay-deep\/\.hidden\.mp4: hidden: /m);
    expect(result.stderr).toMatch(/^skipped: bay-deep\/Record\/2025\/clip\.mp4\.part: temporary: /m);
    // Everything but the listed temporary file is on the server.
    expect(await notOnServer(rig, 'bay-deep', (rel) => rel.endsWith('.part'))).toEqual([]);
    expect(rig.rows().filter((r) => r.relPath === deepRel).map((r) => r.state)).toEqual(['completed']);
    expect(result.stderr).toMatch(/left alone: 2 other path\(s\)/);
  });

  it('does not claim success when a folder is past the depth bound, and names symlinks and FIFOs (--once exit 1)', async () => {
    const odd = join(rig.bays, 'bay-odd');
    mkdirSync(join(odd, tooDeep), { recursive: true });
    copyFileSync(join(rig.bays, 'bay-deep', deepRel), join(odd, tooDeep, 'buried.mp4'));
    copyFileSync(join(rig.bays, 'bay-deep', deepRel), join(odd, 'outside-target.bin'));
    symlinkSync(join(rig.root, 'server-key.pem'), join(odd, 'LINK.mp4'));
    execFileSync('mkfifo', [join(odd, 'pipe.mp4')]);
    const result = await rig.once();
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^skipped: bay-odd\/d0\/d1\/.*\/d32: depth_limit: folder deeper than 32 levels: not read$/m);
    expect(result.stderr).toMatch(/^skipped: bay-odd\/LINK\.mp4: symlink: /m);
    expect(result.stderr).toMatch(/^skipped: bay-odd\/pipe\.mp4: not_regular_file: /m);
  });

  it('lists every skip on the bay in `bodycam status` and --json; attention where something may hide evidence', async () => {
    agent = spawnCli(rig.dockArgs());
    // Drain the agent's output (nothing is expected on it; see the c-ops report: without readers this run never answered status).
    agent.stdout!.resume();
    agent.stderr!.resume();
    let status: DockStatus | undefined;
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      const r = await runCli(['status', '--state-dir', rig.stateDir, '--json']);
      if (r.code === 0) {
        status = JSON.parse(r.stdout) as DockStatus;
        const states = Object.fromEntries(status.bays.map((b) => [b.bay, b.state]));
        if (states['bay-deep'] === 'attention' && status.bays.find((b) => b.bay === 'bay-deep')!.progress === 100 && states['bay-odd'] === 'attention') break;
      }
      await new Promise((res) => setTimeout(res, 300));
    }
    const bay = (name: string) => status!.bays.find((b) => b.bay === name)!;
    // Its recording is in; the hidden and the temporary media file keep it in attention.
    expect(bay('bay-deep').state).toBe('attention');
    expect(bay('bay-deep').reason).toMatch(/2 hidden or temporary media file\(s\) not ingested/);
    expect(bay('bay-deep').skippedCount).toBe(4);
    expect(bay('bay-deep').skipped!.map((s) => [s.path, s.code]).sort()).toEqual([
      ['.hidden.mp4', 'hidden'], ['Record/.thumbs', 'hidden'], ['Record/2025/clip.mp4.part', 'temporary'], ['Record/index.json', 'json_not_sidecar'],
    ]);
    for (const s of bay('bay-deep').skipped!) expect(s.reason.length).toBeGreaterThan(10);
    expect(bay('bay-odd').state).toBe('attention');
    expect(bay('bay-odd').reason).toMatch(/depth_limit \(listing incomplete\)/);
    expect(bay('bay-odd').skipped!.map((s) => s.code).sort()).toEqual(['depth_limit', 'not_regular_file', 'symlink']);
    const table = await runCli(['status', '--state-dir', rig.stateDir]);
    expect(table.stdout).toMatch(/LEFT ALONE/);
    expect(table.stdout).toMatch(/bay-odd\s+LINK\.mp4\s+symlink\s+symbolic link/);
    expect(table.stdout).toMatch(/bay-deep\s+Record\/index\.json\s+json_not_sidecar/);
    agent.kill('SIGTERM');
  });

  it('reports the count bound when it is hit (listing is cut, never silently)', async () => {
    const many = join(rig.root, 'many');
    mkdirSync(many);
    for (let i = 0; i < 120; i++) writeFileSync(join(many, `f${String(i).padStart(3, '0')}.bin`), String(i));
    const listing = await listCameraFiles(many, { maxDepth: 32, maxEntries: 100, maxSkippedListed: 10 });
    expect(listing.files).toHaveLength(100);
    expect(listing.skipped).toEqual([{ path: 'f100.bin', code: 'count_limit', reason: expect.stringMatching(/listing stopped after 100 entries/) }]);
    expect(readFileSync(join(many, 'f100.bin'), 'utf8')).toBe('100');
  });
});
