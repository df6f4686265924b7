#!/usr/bin/env node
// `npm run corpus [DIR] [--segment-seconds N] [--max-bytes N] [--no-upload]`: runs the dock's
// probe / plan / hash / fingerprint over every file under DIR (default fixtures/corpus), uploads
// each to a real ingest server on 127.0.0.1 (port 0, a temporary data dir), reads it back, and
// re-probes every cut (src/dock/corpus.ts says what is checked). Prints one table row per file;
// exits 1 if a file did not arrive byte-exact or a cut is wrong. Fetches nothing. Needs `npm run build`.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCorpus, formatRow, TABLE_HEADER } from '../dist/dock/corpus.js';
import { startIngestServer } from '../dist/server/index.js';
import { Logger, nullSink } from '../dist/log.js';

const args = process.argv.slice(2);
let dir = fileURLToPath(new URL('../fixtures/corpus/', import.meta.url));
let segmentSeconds = 2;
let maxBytes = 256 * 1024;
let uploadToo = true;
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === '--segment-seconds') segmentSeconds = Number(args[++i]);
  else if (a === '--max-bytes') maxBytes = Number(args[++i]);
  else if (a === '--no-upload') uploadToo = false;
  else if (a === '-h' || a === '--help') { console.log('usage: npm run corpus -- [DIR] [--segment-seconds N] [--max-bytes N] [--no-upload]'); process.exit(0); }
  else dir = a;
}
const dataDir = mkdtempSync(join(tmpdir(), 'bodycam-corpus-server-'));
const token = randomBytes(32).toString('hex');
const server = uploadToo ? await startIngestServer({ logger: new Logger(nullSink), dataDir, tokens: { 'corpus-dock': token }, host: '127.0.0.1', port: 0 }) : undefined;
let bad = 0;
try {
  console.log(`corpus: ${dir} (segment ${segmentSeconds} s, cap ${maxBytes} bytes${server ? `, server ${server.url}` : ', no upload'})\n`);
  console.log(TABLE_HEADER);
  const rows = await runCorpus(dir, {
    segmentSeconds, maxBytes,
    server: server ? { url: server.url, token, publicKeyPem: server.publicKeyPem, dockId: 'corpus-dock' } : undefined,
  }, (row) => {
    console.log(formatRow(row));
    for (const p of row.cutProblems) console.log(`    ${p}`);
  });
  bad = rows.filter((r) => r.cutProblems.length || (server && !(r.arrived && r.byteExact))).length;
  console.log(`\n${rows.length} files, ${bad} with a problem`);
} finally {
  await server?.close();
  rmSync(dataDir, { recursive: true, force: true });
}
process.exit(bad ? 1 : 0);
