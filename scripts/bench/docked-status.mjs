// What the dock's status costs with a docked card of many finished recordings (issue 15): GET
// /status, the status page and the TTY progress line compute it (src/dock/status.ts), and each
// Prometheus scrape reads it (src/dock/metricsExposition.ts). A journal of BENCH_STATUS_ROWS
// (20,000) wiped rows with manifests and receipts of the sizes real ones have, all of one camera
// docked in one bay; the agent's state around it holds only that bay. Medians of 7 after 2 warm-ups.
// `npm run bench docked-status` (after `npm run build`); the journal is deleted.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Journal } from '../../dist/dock/journal.js';
import { dockStatus } from '../../dist/dock/status.js';
import { DockMetrics } from '../../dist/dock/metrics.js';

const rows = Number(process.env.BENCH_STATUS_ROWS ?? 20_000);
const root = mkdtempSync(join(tmpdir(), 'bodycam-bench-status-'));
const hex = (n) => randomBytes(n).toString('hex');
try {
  const journal = Journal.open(root);
  const keys = [];
  journal.beginBatch();
  for (let i = 0; i < rows; i++) {
    const stat = { dev: 2049, ino: 1000 + i, size: 5_000_000 + i, mtimeMs: 1.7e12, ctimeMs: 1.7e12, sidecar: null };
    const row = journal.insertDetected({ serial: 'CAM1', fileName: `FILE${i}.MP4`, relPath: `DCIM/100BWC/FILE${i}.MP4`, bay: 'bay1', size: stat.size, mtimeMs: stat.mtimeMs, critical: false, stat });
    keys.push(row.key);
    for (const state of ['probed', 'planned', 'hashed', 'uploading']) journal.transition(row.key, state);
    const info = { planKind: 'fmp4', integrity: 'verified', formatName: 'mov,mp4,m4a,3gp,3g2,mj2', fingerprint: hex(32), streams: [{ codec: 'h264', width: 1920, height: 1080 }, { codec: 'aac' }] };
    const manifest = JSON.stringify({ recordingId: `CAM1-${hex(16)}`, file: { sha256: hex(32), size: stat.size }, merkleRoot: hex(32), segments: [0, 1, 2].map((index) => ({ index, offset: index * 1_700_000, length: 1_700_000, sha256: hex(32) })), fingerprint: hex(32), signature: randomBytes(64).toString('base64') });
    const receipt = JSON.stringify({ type: 'receipt', version: 1, recordingId: `CAM1-${hex(16)}`, sha256: hex(32), size: stat.size, dockId: 'bench', receivedAt: new Date().toISOString(), keyId: hex(8), signature: randomBytes(64).toString('base64url') });
    journal.transition(row.key, 'completed', { info, manifestJson: manifest, receiptJson: receipt, recordingId: `CAM1-${hex(16)}`, sha256: hex(32) });
    journal.transition(row.key, 'wiped');
  }
  journal.commitBatch();
  const bay = { name: 'bay1', root: '/bays/bay1', present: true, serial: 'CAM1', controller: new AbortController(), keys: new Set(), sessionKeys: new Set(keys), reportedSymlinks: new Set(), skipped: [], skippedCount: 0, skippedByCode: {}, layouts: [] };
  const metrics = new DockMetrics();
  const state = { journal, located: new Map(), config: { dockId: 'bench', staleAfter: 3600, wipeAfterIngest: true }, clock: { now: () => Date.now() }, bays: new Map([['bay1', bay]]), running: new Map(), candidates: new Map(), attention: { list: () => [], serverProblems: () => [] }, metrics };
  metrics.observe(() => dockStatus(state));
  const median = async (fn) => {
    const times = [];
    for (let i = 0; i < 9; i++) { const t = performance.now(); await fn(); if (i >= 2) times.push(performance.now() - t); }
    return times.sort((a, b) => a - b)[3];
  };
  let json = 0;
  const statusMs = await median(() => { json = JSON.stringify(dockStatus(state)).length; });
  const scrapeMs = await median(() => metrics.render());
  console.log(`docked-status: ${rows} docked rows: status with its JSON ${statusMs.toFixed(0)} ms (${(json / 1e6).toFixed(1)} MB), a metrics scrape ${scrapeMs.toFixed(0)} ms, RSS ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB`);
  journal.close();
} finally {
  rmSync(root, { recursive: true, force: true });
}
