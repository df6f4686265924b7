#!/usr/bin/env node
// `npm run corpus [DIR] [--segment-seconds N] [--max-bytes N] [--direct] [--no-upload]`: the dock
// over every file under DIR (default fixtures/corpus): by default the real dock's `--once` run
// (runOnce, the library `bodycam dock --once` calls, in this process) over a bay holding a copy of DIR, uploading to a real ingest server on 127.0.0.1
// (port 0, a temporary data dir); each file's recording is read back and the signed manifest's
// cuts are re-probed (src/dock/corpus.ts says what is checked). `--direct` runs the dock's probe /
// plan / hash / fingerprint functions in this process and uploads through the protocol instead
// (`--no-upload`: no server at all). One table row per file; exit 1 if a file did not arrive
// byte-exact or a cut is wrong. Fetches nothing. Needs `npm run build`.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCorpus, runCorpusThroughDock, formatRow, TABLE_HEADER } from '../dist/dock/corpus.js';
import { startIngestServer } from '../dist/server/index.js';
import { quietLogger } from '../dist/log.js';

const args = process.argv.slice(2);
let dir = fileURLToPath(new URL('../fixtures/corpus/', import.meta.url));
let segmentSeconds = 2;
let maxBytes = 256 * 1024;
let uploadToo = true;
let direct = false;
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === '--segment-seconds') segmentSeconds = Number(args[++i]);
  else if (a === '--max-bytes') maxBytes = Number(args[++i]);
  else if (a === '--no-upload') { uploadToo = false; direct = true; }
  else if (a === '--direct') direct = true;
  else if (a === '-h' || a === '--help') { console.log('usage: npm run corpus -- [DIR] [--segment-seconds N] [--max-bytes N] [--direct] [--no-upload]'); process.exit(0); }
  else dir = a;
}
const dataDir = mkdtempSync(join(tmpdir(), 'bodycam-corpus-server-'));
const token = randomBytes(32).toString('hex');
const server = uploadToo ? await startIngestServer({ logger: quietLogger(), dataDir, tokens: { 'corpus-dock': token }, host: '127.0.0.1', port: 0 }) : undefined;
let bad = 0;
try {
  const how = direct ? (server ? `dock functions in process, server ${server.url}` : 'dock functions in process, no upload') : `the dock's --once run, server ${server.url}`;
  console.log(`corpus: ${dir} (segment ${segmentSeconds} s, cap ${maxBytes} bytes; ${how})\n`);
  const serverSpec = server ? { url: server.url, token, publicKeyPem: server.publicKeyPem, dockId: 'corpus-dock' } : undefined;
  const print = (row) => {
    console.log(formatRow(row));
    for (const p of row.cutProblems) console.log(`    ${p}`);
  };
  let rows;
  if (direct) {
    console.log(TABLE_HEADER);
    rows = await runCorpus(dir, { segmentSeconds, maxBytes, server: serverSpec }, print);
  } else {
    const run = await runCorpusThroughDock(dir, { segmentSeconds, maxBytes, server: serverSpec });
    console.log(`dock --once: exit ${run.exitCode} after ${run.seconds.toFixed(1)} s${run.exitCode === 0 ? '' : ` (3 = something flagged or quarantined)\n${run.stderr.trim().split('\n').slice(-12).map((l) => '    ' + l).join('\n')}`}\n`);
    console.log(TABLE_HEADER);
    rows = run.rows;
    rows.forEach(print);
  }
  bad = rows.filter((r) => r.cutProblems.length || (server && !(r.arrived && r.byteExact))).length;
  console.log(`\n${rows.length} files, ${bad} with a problem`);
} finally {
  await server?.close();
  rmSync(dataDir, { recursive: true, force: true });
}
process.exit(bad ? 1 : 0);
