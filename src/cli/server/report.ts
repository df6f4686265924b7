/** `bodycam server report`: the operator's view of a data dir, as text or one JSON object. */
import type { Command } from 'commander';
import { UsageError } from '../../errors.js';
import { reportOf, serverReport, type ServerReport } from '../../server/operator/report.js';
import { withToolState } from './stores.js';
import { formatRanges } from '../../server/operator/sequence.js';
import { describeNotHeld } from '../../server/operator/heldNow.js';
import { formatBytes } from '../../util/units.js';
import { deploymentOf } from '../../server/config.js';
import { addToolOptions, givenToolFlags, toolSettings } from './toolSettings.js';
import { action } from '../handler.js';
import { say } from '../output.js';

export function registerServerReport(server: Command): void {
  addToolOptions(server.command('report')
    .description('docks, recordings per camera, stale uploads and the gaps in each camera\'s sequence numbers'), 'report')
    .addHelpText('after', `
A db deployment (db set by flag, DATABASE_URL or the server's config file) is read from PostgreSQL
and its store (or the data dir); else the data dir alone.
Every complete recording's stored segments are looked for (a stat each, no re-hash: \`bodycam server
scrub\` re-hashes); one whose bytes are not all held is listed as LOST with what to do.
Exit status: 0 nothing to act on, 1 a complete recording's stored bytes are not all held (lost),
3 a camera has a gap in its sequence numbers or an upload is stale, 2 usage error (no --data-dir,
or not a server data dir). Reads only; safe beside running servers.

Examples:
  $ bodycam server report --data-dir server-data
  $ bodycam server report --store s3://evidence --db "$DATABASE_URL"
  $ bodycam server report --data-dir server-data --json | jq '.cameras[] | select(.sequence.missingCount > 0)'`)
    .action(action(async (_flags: unknown, command: Command) => {
      const resolved = toolSettings('report', givenToolFlags(command));
      const { dataDir, json, staleAfter } = resolved.values as { dataDir?: string; json: boolean; staleAfter: number };
      const staleAfterMs = Math.round(staleAfter * 1000);
      const deployment = deploymentOf(resolved);
      let report: ServerReport;
      if (deployment.database || deployment.storeDir || deployment.s3) {
        report = await withToolState({ ...deployment, ...(dataDir ? { dataDir } : {}) }, (blobs, state) => reportOf({
          where: String(resolved.values.store ?? dataDir), recordings: state.recordings, blobs, held: (dock, sha) => state.possession.has(dock, sha),
          dockKeyId: (dock) => state.dockKeys.keyId(dock), staleAfterMs,
        }));
      } else {
        if (!dataDir) throw new UsageError('--data-dir (or --store with --db) is required');
        report = await serverReport({ dataDir, staleAfterMs });
      }
      if (json) process.stdout.write(JSON.stringify(report) + '\n'); else say(renderReport(report));
      return report.lostCount > 0 ? 1 : report.camerasWithGaps > 0 || report.stale.length > 0 ? 3 : 0;
    }));
}

export function renderReport(report: ServerReport): string {
  const lines: string[] = [`server report of ${report.dataDir} at ${report.generatedAt}`, '', `docks (${report.docks.length}):`];
  for (const d of report.docks) {
    lines.push(`  ${d.dockId}  key ${d.keyId ? d.keyId.slice(0, 16) : '(none pinned)'}  last seen ${d.lastSeen ?? 'never'}  ${d.recordings} recordings (${formatBytes(d.bytes)}), ${d.inProgress} in progress, ${d.stale} stale`);
  }
  lines.push('', `cameras (${report.cameras.length}):`);
  for (const c of report.cameras) {
    const seq = c.sequence;
    const gaps = !seq ? 'no sequence numbers'
      : seq.missingCount === 0 ? `sequence ${formatRanges([[seq.lowest, seq.highest]])} complete`
        : `sequence ${formatRanges([[seq.lowest, seq.highest]])}: MISSING ${formatRanges(seq.missing)} (${seq.missingCount})`;
    lines.push(`  ${c.serial}  ${c.recordings} recordings (${formatBytes(c.bytes)}) via ${c.docks.join(', ')}; ${gaps}${c.unnumbered ? `; ${c.unnumbered} without a number` : ''}${(c.keys ?? []).length > 1 ? `; CAMERA KEY CHANGED: ${c.keys.map((k) => `${k.keyId.slice(0, 16)}… first seen ${k.firstSeen} (${k.recordings})`).join(', ')}` : ''}`);
  }
  lines.push('', `stale uploads (${report.stale.length}, receiving for more than ${report.staleAfterSeconds} s):`);
  for (const s of report.stale) {
    lines.push(`  ${s.dockId}/${s.id}  ${s.segmentsReceived}/${s.segmentCount} segments since ${s.createdAt}`);
  }
  lines.push('', `lost recordings (${report.lostCount} of ${report.recordingsChecked} complete recordings: receipt issued, stored bytes not all held now):`);
  for (const l of report.lost) {
    lines.push(`  ${l.dockId}/${l.recordingId}  ${l.deviceSerial}  ${l.fileName}  LOST: ${l.held} of ${l.segments} segments held; not held: ${describeNotHeld(l.notHeld, l.notHeldCount)}`);
  }
  if (report.lostCount > report.lost.length) lines.push(`  and ${report.lostCount - report.lost.length} more (--json lists the first ${report.lost.length})`);
  if (report.lostCount > 0) {
    lines.push('  what to do: restore each blob named in --json (blobs/<first 2 hex>/<sha256>) from a backup of the data dir or the store,',
      '  then `bodycam server scrub` re-hashes it; a camera file still on a card (not wiped) is sent again by `bodycam check --resend`.');
  }
  const actions = [
    report.lostCount ? `${report.lostCount} LOST recording(s) (stored bytes not all held)` : '',
    report.camerasWithGaps ? `${report.camerasWithGaps} camera(s) with missing sequence numbers` : '',
    report.stale.length ? `${report.stale.length} stale upload(s)` : '',
  ].filter(Boolean);
  lines.push('', actions.length ? `ACTION: ${actions.join(', ')}` : 'nothing to act on');
  return lines.join('\n') + '\n';
}
