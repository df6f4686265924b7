/**
 * A card of many files the dock sets aside (empty .mp4 files: zero_byte). Every one is a row with
 * its reason (nothing skipped silently), the bay's reason stays a bounded line (it named every
 * file, 10 MB at 100,000), and a second camera docked while the first card's rows are queued is
 * offloaded too: a row a scan finds joins the scheduler's cached queue (Scheduler.rowFound), it
 * is not lost behind it. Cost per file: `npm run bench junk-card` (docs/benchmarks.md).
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { recordCamera, dockCamera } from '../../src/camera/index.js';
import { runOnce, startDockAgent, type DockAgent, type DockStatus } from '../../src/dock/index.js';
import { FILE_LINES_SHOWN } from '../../src/dock/status.js';
import { Journal } from '../../src/dock/journal.js';
import { makeTempDir } from '../helpers/tmp.js';
import { dockConfig, serverRecording, startLoggedServer, waitFor, type LoggedServer } from '../helpers/dock.js';

const EMPTY_FILES = 300;

describe('a card of many files the dock sets aside', () => {
  const tmp = makeTempDir('bodycam-dock-many-');
  const bays = join(tmp.path, 'bays');
  let server: LoggedServer;
  let agent: DockAgent;
  let status: DockStatus;
  let cameraFile: string;

  beforeAll(async () => {
    server = await startLoggedServer();
    const folder = join(bays, 'bay1', 'DCIM', '100MEDIA');
    mkdirSync(folder, { recursive: true });
    for (let i = 0; i < EMPTY_FILES; i++) closeSync(openSync(join(folder, `V${String(i).padStart(4, '0')}.mp4`), 'w'));
    const camera = join(tmp.path, 'cam');
    const recorded = await recordCamera({ storage: camera, count: 1, seed: 'many-files', durationSeconds: 2, width: 160, height: 120, fps: 10 });
    cameraFile = recorded.files[0]!.mediaPath.split('/').pop()!;
    agent = await startDockAgent(dockConfig(tmp.path, server.url, { rescanInterval: '0.3s', settle: '0.2s' }));
    // The second camera arrives while the first card's rows are being found and worked through.
    await waitFor('the first card scanned', () => (agent.status().queue.recordingsTotal ?? 0) > 0, 30_000);
    await dockCamera({ storage: camera, bays, bay: 'bay2' });
    await waitFor('the second camera offloaded', () => agent.status().bays.find((b) => b.bay === 'bay2')?.state === 'done', 90_000);
    await agent.whenIdle();
    status = agent.status();
  }, 120_000);

  afterAll(async () => {
    await agent?.stop();
    await server?.close();
    tmp.cleanup();
  });

  it('lists every empty file with its reason', () => {
    const quarantined = status.queue.recordings.filter((r) => r.bay === 'bay1' && r.state === 'quarantined');
    expect(quarantined).toHaveLength(EMPTY_FILES);
    expect(new Set(quarantined.map((r) => r.reasonCode))).toEqual(new Set(['zero_byte']));
    expect(status.queue.quarantined).toBe(EMPTY_FILES);
  });

  it('keeps the bay reason to a bounded number of file lines, with the count of the rest', () => {
    const bay = status.bays.find((b) => b.bay === 'bay1')!;
    expect(bay.state).toBe('attention');
    const lines = bay.reason!.split('; ');
    expect(lines.filter((l) => / zero_byte: /.test(` ${l}`))).toHaveLength(FILE_LINES_SHOWN);
    expect(lines).toContain(`and ${EMPTY_FILES - FILE_LINES_SHOWN} more (bodycam quarantine list, bodycam status --json)`);
    expect(bay.reason!.length).toBeLessThan(4000);
  });

  it('offloads the camera docked beside it, complete on the server', async () => {
    const entry = status.queue.recordings.find((r) => r.file.endsWith(cameraFile))!;
    expect(entry).toMatchObject({ bay: 'bay2', state: 'completed', integrity: 'verified' });
    expect((await serverRecording(server, entry.recordingId!)).state).toBe('complete');
  });

  it('--once reports every file of a card larger than one page of its paged read, each once, in detection order', async () => {
    // iterateManyInOrder reads 500 rows at a time: the report must not lose or repeat a row at a page's edge.
    const files = 1_150;
    const root = join(tmp.path, 'once');
    const folder = join(root, 'bays', 'bay1', 'DCIM', '100MEDIA');
    mkdirSync(folder, { recursive: true });
    for (let i = 0; i < files; i++) closeSync(openSync(join(folder, `E${String(i).padStart(5, '0')}.mp4`), 'w'));
    const result = await runOnce(dockConfig(root, server.url, { settle: '0.2s' }));
    expect(result.exitCode).toBe(3);
    const names = result.recordings.map((r) => r.file);
    expect(new Set(names).size).toBe(files);
    expect(names).toHaveLength(files);
    expect(result.recordings.every((r) => r.state === 'quarantined' && r.reasonCode === 'zero_byte' && r.bay === 'bay1')).toBe(true);
    // Detection order, as status lists them.
    const journal = Journal.openReadOnly(join(root, 'state'));
    try {
      const rows = journal.briefsInStates(['quarantined']);
      expect(names).toEqual(rows.map((r) => r.relPath));
    } finally {
      journal.close();
    }
  }, 120_000);
});
