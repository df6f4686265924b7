/**
 * `bodycam server`: the reference ingest server; `bodycam server verify-log`:
 * check the custody chain; `bodycam server scrub`: re-hash every stored blob;
 * `bodycam server reset-dock-key`: forget a pinned dock key.
 */
import type { Command } from 'commander';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { errnoCode, UsageError } from '../errors.js';
import { createLogger, envLogLevel, LOG_LEVELS, parseLogLevel } from '../log.js';
import { generateSigningKeyPair, keyIdOf } from '../protocol/signing.js';
import { DEFAULT_RETENTION, generateToken, loadTokensFile, resetDockKey, resetPgDockKey, scrubDataDir, scrubStores, startIngestServer, verifyCustody, verifyPgCustody } from '../server/index.js';
import { hasLockedObjects } from '../server/pg/custodyExport.js';
import { TokenTable } from '../server/auth.js';
import { importTokenFile } from '../server/pg/pgTokens.js';
import type { ScrubReport } from '../server/scrub.js';
import { blobStoreOf, databaseUrl, openToolBlobStore, withToolState } from './server/stores.js';
import type { BlobStore } from '../server/store.js';
import { parseBytes, parseDuration } from '../util/units.js';
import { action } from './handler.js';
import { registerServerReport } from './server/report.js';
import { registerServerUser } from './server/user.js';
import { loadAdminTokenFile } from '../server/operator/adminToken.js';
import { enterServiceMode } from './output.js';
import { untilStopSignal } from './signals.js';

interface ServerFlags {
  dataDir?: string;
  listen: string;
  tokens?: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
  maxSegmentBytes: string;
  maxStoreBytes?: string;
  requestTimeout: string;
  bodyIdleTimeout: string;
  manifestTimeout: string;
  maxRequests: string;
  maxRequestsPerDock: string;
  db?: string;
  serverKey?: string;
  store?: string;
  adminTokenFile?: string;
  staleAfter: string;
  s3Endpoint?: string;
  retention: string;
  logLevel?: string;
}

/** `bodycam server`'s blob store (the S3 scratch folder in its data dir). */
function serverBlobStore(flags: ServerFlags, dataDir: string): BlobStore | undefined {
  return blobStoreOf(flags, join(dataDir, 's3-spool'));
}

export function registerServer(program: Command): void {
  const server = program.command('server')
    .description('Run the reference ingest server (protocol v1): verify, store, sign receipts, keep the custody log')
    .option('--data-dir <dir>', 'where blobs, recordings, keys and the custody log live')
    .option('--listen <host:port>', 'address to listen on (port 0 picks a free one)', '127.0.0.1:8443')
    .option('--tokens <file>', 'JSON object {"<dock id>": "<bearer token>", ...}, mode 0600; re-read on SIGHUP. With --db: imported into the database (their SHA-256) when it has none, or on SIGHUP, and then every server of it accepts the same docks; optional there')
    .option('--tls-cert <file>', 'serve HTTPS with this certificate (PEM)')
    .option('--tls-key <file>', 'private key of --tls-cert (PEM)')
    .option('--tls-ca <file>', 'require client certificates signed by this CA (PEM)')
    .option('--max-segment-bytes <size>', 'largest segment body accepted', '64MiB')
    .option('--max-store-bytes <size>', 'store quota; above it uploads get 507 and reads still work')
    .option('--request-timeout <duration>', 'longest a whole request may take', '10m')
    .option('--body-idle-timeout <duration>', 'abandon a segment or manifest body that sends nothing for this long', '30s')
    .option('--manifest-timeout <duration>', 'longest a manifest (JSON) body may take to arrive', '2m')
    .option('--max-requests <n>', 'requests in flight on the server before 429 (health, metrics, keys not counted)', '256')
    .option('--max-requests-per-dock <n>', 'requests in flight for one dock before 429', '32')
    .option('--db <url>', 'keep recordings, possession, dock pins and the custody chain in PostgreSQL (postgres://…; default: $DATABASE_URL), shared by every server started with it')
    .option('--server-key <file>', 'the receipt signing key (Ed25519 PEM, 0600; `bodycam server key new`): the same file for every server of one --db; needed with --db')
    .option('--store <dir|s3://bucket>', 'blob folder (default: <data dir>; several servers on one machine may share one), or s3://BUCKET: blobs in an S3 object store under Object Lock (credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)')
    .option('--s3-endpoint <url>', 'the S3 engine\'s base URL for --store s3://… (default: $S3_ENDPOINT)')
    .option('--retention <time>', 'with --store s3://…: every blob is locked (S3 Object Lock, COMPLIANCE) for this long: Ny or Nd', DEFAULT_RETENTION)
    .option('--admin-token-file <file>', 'the operator\'s bearer token (one line, mode 0600) for GET /v1/docks and GET /v1/recordings across docks')
    .option('--stale-after <duration>', 'a recording still receiving after this long is stale', '24h')
    .option('--log-level <level>', `least severe log level written: ${LOG_LEVELS.join(', ')} [BODYCAM_LOG_LEVEL; default info]`)
    .addHelpText('after', `
Examples:
  $ (umask 077; echo "{\\"dock-01\\": \\"$(bodycam server token new)\\"}" > tokens.json)
  $ bodycam server --data-dir server-data --tokens tokens.json --listen 127.0.0.1:8443
  $ kill -HUP <server pid>     # after editing tokens.json: add or remove docks without a restart
  $ bodycam server --data-dir server-data --tokens tokens.json --tls-cert cert.pem --tls-key key.pem
  $ bodycam server key new --out receipt-key.pem
  $ bodycam server --data-dir a --store blobs --db postgres://bodycam@db/evidence --server-key receipt-key.pem --tokens tokens.json --listen 127.0.0.1:8443
  $ bodycam server --data-dir b --store blobs --db postgres://bodycam@db/evidence --server-key receipt-key.pem --tokens tokens.json --listen 127.0.0.1:8444
  $ set -a; . engines/engines.env; set +a     # S3_ENDPOINT, AWS_ACCESS_KEY_ID, … from scripts/engines.sh up engines
  $ bodycam server --data-dir c --store s3://evidence --retention 7y --db "$DATABASE_URL" --server-key receipt-key.pem --tokens tokens.json`)
    .action(action(async (flags: ServerFlags) => {
      enterServiceMode('server');
      if (!flags.dataDir) throw new UsageError('--data-dir is required');
      const databaseGiven = databaseUrl(flags.db);
      if (!flags.tokens && !databaseGiven) throw new UsageError('--tokens is required (a JSON file {"<dock id>": "<token>"}); with --db the tokens may come from the database');
      const { host, port } = parseListen(flags.listen);
      if (Boolean(flags.tlsCert) !== Boolean(flags.tlsKey)) throw new UsageError('--tls-cert and --tls-key go together');
      if (flags.tlsCa && !flags.tlsCert) throw new UsageError('--tls-ca needs --tls-cert and --tls-key');
      const tls = flags.tlsCert && flags.tlsKey ? {
        cert: readUserFile(flags.tlsCert, '--tls-cert'), key: readUserFile(flags.tlsKey, '--tls-key'),
        ...(flags.tlsCa ? { ca: readUserFile(flags.tlsCa, '--tls-ca') } : {}),
      } : undefined;
      const tokensPath = flags.tokens;
      const database = databaseGiven;
      if (database && !flags.serverKey) throw new UsageError('--db needs --server-key: every server of one database signs receipts with the same key (make one with `bodycam server key new --out FILE`)');
      const blobs = serverBlobStore(flags, flags.dataDir);
      const log = createLogger({ component: 'server' }, flags.logLevel === undefined ? envLogLevel() : parseLogLevel(flags.logLevel, '--log-level'));
      const running = await startIngestServer({
        dataDir: flags.dataDir, tokens: tokensPath ? loadTokensFile(tokensPath) : {}, ...(tokensPath ? { tokensFile: tokensPath } : {}), host, port,
        ...(database ? { database } : {}),
        ...(flags.serverKey ? { serverKeyFile: flags.serverKey } : {}),
        ...(blobs ? { store: blobs } : {}),
        ...(flags.adminTokenFile ? { adminToken: loadAdminTokenFile(flags.adminTokenFile) } : {}),
        staleAfterMs: Math.round(parseDuration(flags.staleAfter, '--stale-after') * 1000),
        ...(tls ? { tls } : {}),
        limits: {
          maxSegmentBytes: parseBytes(flags.maxSegmentBytes, '--max-segment-bytes'),
          ...(flags.maxStoreBytes ? { maxStoreBytes: parseBytes(flags.maxStoreBytes, '--max-store-bytes') } : {}),
          requestTimeoutMs: Math.round(parseDuration(flags.requestTimeout, '--request-timeout') * 1000),
          bodyIdleTimeoutMs: Math.round(parseDuration(flags.bodyIdleTimeout, '--body-idle-timeout') * 1000),
          manifestTimeoutMs: Math.round(parseDuration(flags.manifestTimeout, '--manifest-timeout') * 1000),
          maxConcurrentRequests: parseCount(flags.maxRequests, '--max-requests'),
          maxConcurrentRequestsPerDock: parseCount(flags.maxRequestsPerDock, '--max-requests-per-dock'),
        },
        logger: log,
      });
      process.stdout.write(`listening ${running.url}\n`);
      // SIGHUP re-reads the tokens file: a valid file replaces every token at once (a new dock can
      // connect, a removed one gets 401); an invalid one is refused with one log line and the old
      // tokens stay. The message names dock ids, never a token.
      // With --db the file is imported into the database: every server of it follows within seconds.
      const reload = () => {
        if (!tokensPath) { log.info('SIGHUP: no --tokens file; the tokens follow the database'); return; }
        void (async () => {
          try {
            const { added, removed, docks } = await running.setTokens(loadTokensFile(tokensPath));
            log.info(database ? 'tokens imported into the database' : 'tokens reloaded', { file: tokensPath, docks, added, removed });
          } catch (error) {
            log.warn(`tokens reload refused, the old tokens stay: ${error instanceof Error ? error.message : String(error)}`, { file: tokensPath });
          }
        })();
      };
      process.on('SIGHUP', reload);
      await untilStopSignal();
      process.off('SIGHUP', reload);
      await running.close();
      return 0;
    }));

  server.command('key')
    .description('the receipt signing key')
    .command('new')
    .description('write a new Ed25519 receipt signing key (PEM, 0600) for --server-key; refuses to overwrite a file')
    .requiredOption('--out <file>', 'where to write it')
    .addHelpText('after', `
Examples:
  $ bodycam server key new --out receipt-key.pem`)
    .action(action(async (flags: { out: string }) => {
      const pair = generateSigningKeyPair();
      try {
        writeFileSync(flags.out, pair.privateKeyPem, { mode: 0o600, flag: 'wx' });
      } catch (error) {
        throw new UsageError(`--out: cannot create ${flags.out} (${errnoCode(error) ?? String(error)})${errnoCode(error) === 'EEXIST' ? ': a key is never overwritten' : ''}`, { cause: error });
      }
      process.stdout.write(`wrote ${flags.out} (key id ${keyIdOf(pair.publicKeyPem)})\n`);
      return 0;
    }));

  const token = server.command('token').description('dock bearer tokens');
  token.command('new')
    .description('print a new random dock token (32 random bytes, base64url: 256 bits) for the --tokens file')
    .addHelpText('after', `
Examples:
  $ bodycam server token new
  $ (umask 077; echo "{\\"dock-01\\": \\"$(bodycam server token new)\\"}" > tokens.json)`)
    .action(action(() => {
      process.stdout.write(`${generateToken()}\n`);
      return 0;
    }));
  token.command('import')
    .description('make a tokens file every server\'s tokens: its SHA-256 digests replace the database\'s at once (servers follow within seconds)')
    .requiredOption('--tokens <file>', 'JSON object {"<dock id>": "<bearer token>", ...}, mode 0600')
    .option('--db <url>', 'the PostgreSQL state of the servers (default: $DATABASE_URL)')
    .addHelpText('after', `
Examples:
  $ bodycam server token import --db "$DATABASE_URL" --tokens tokens.json`)
    .action(action(async (flags: { tokens: string; db?: string }) => {
      const database = databaseUrl(flags.db);
      if (!database) throw new UsageError('--db (or DATABASE_URL) is required');
      const entries = TokenTable.digests(loadTokensFile(flags.tokens));
      const { generation, docks } = await importTokenFile(database, entries);
      process.stdout.write(`imported ${docks} dock tokens from ${flags.tokens} (generation ${generation}); every server of the database accepts exactly these within seconds\n`);
      return 0;
    }));

  server.command('verify-log')
    .description('check the custody log: its hash chain, its signed checkpoints, and every receipt (stored, and those docks hold) against it')
    .option('--data-dir <dir>', 'the server data dir')
    .option('--db <url>', 'check the custody chain kept in PostgreSQL instead (default: $DATABASE_URL when no --data-dir)')
    .option('--store <s3://bucket>', 'with --db: also compare the custody exports locked in this bucket with the database')
    .option('--s3-endpoint <url>', 'the S3 engine\'s base URL for --store s3://… (default: $S3_ENDPOINT)')
    .option('--receipts <path...>', 'receipts a dock holds: a receipt JSON file, an array or JSON lines of them, a dock journal.sqlite or its state dir, or a folder of such files')
    .addHelpText('after', `
Exit codes: 0 all checks pass, 3 something does not match (each reason printed), 2 no data dir or no log at all.

Examples:
  $ bodycam server verify-log --data-dir server-data
  $ bodycam server verify-log --data-dir server-data --receipts /var/lib/bodycam-dock
  $ bodycam server verify-log --db "$DATABASE_URL" --store s3://evidence`)
    .action(action(async (flags: { receipts?: string[]; db?: string; store?: string; s3Endpoint?: string }, command: Command) => {
      const dataDir = command.optsWithGlobals<{ dataDir?: string }>().dataDir;
      const database = flags.db !== undefined || !dataDir ? databaseUrl(flags.db) : undefined;
      if (!dataDir && !database) throw new UsageError('--data-dir (or --db) is required');
      if (flags.store && !database) throw new UsageError('--store goes with --db: the bucket\'s custody exports are compared with the database');
      const bucket = flags.store ? await openToolBlobStore(flags) : undefined;
      let report: Awaited<ReturnType<typeof verifyPgCustody>>;
      try {
        if (bucket && !hasLockedObjects(bucket.blobs)) throw new UsageError('--store: custody exports are kept in an s3:// bucket, not in a folder');
        report = database ? await verifyPgCustody(database, flags.receipts ?? [], bucket?.blobs as Parameters<typeof verifyPgCustody>[2]) : await verifyCustody({ dataDir: dataDir!, receipts: flags.receipts ?? [] });
      } finally {
        await bucket?.close();
      }
      const summary = `${report.entries} entries, ${report.checkpoints} checkpoints${report.lastCheckpointSeq !== undefined ? ` (last at seq ${report.lastCheckpointSeq})` : ''}, ${report.storedReceipts} stored receipts${flags.receipts?.length ? `, ${report.dockReceipts} dock receipts` : ''}${report.exportsCompared !== undefined ? `, ${report.exportsCompared} locked exports` : ''}`;
      for (const note of report.notes) process.stderr.write(`note: ${note}\n`);
      if (report.ok) {
        process.stdout.write(`custody log ok: ${summary} match\n`);
        return 0;
      }
      const [first, ...more] = report.problems;
      const at = first!.line !== undefined ? ` at line ${first!.line}${first!.seq !== undefined ? ` (seq ${first!.seq})` : ''}` : '';
      process.stdout.write(`custody log BROKEN${at}: ${first!.reason}${first!.chain ? `; ${report.entries} entries before it verify` : ''}\n`);
      for (const p of more.slice(0, 50)) process.stdout.write(`  also${p.line !== undefined ? ` at line ${p.line}` : ''}: ${p.reason}\n`);
      if (more.length > 50) process.stdout.write(`  … and ${more.length - 50} more\n`);
      return 3;
    }));

  server.command('scrub')
    .description('re-hash every stored blob; report damaged ones and the recordings they belong to, and mark them missing so docks re-send them')
    .option('--data-dir <dir>', 'the server data dir')
    .option('--store <dir|s3://bucket>', 'the blob store of a --db deployment: a shared folder or s3://BUCKET (credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)')
    .option('--s3-endpoint <url>', 'the S3 engine\'s base URL for --store s3://… (default: $S3_ENDPOINT)')
    .option('--db <url>', 'the PostgreSQL state of the servers (default: $DATABASE_URL with --store)')
    .option('--json', 'print the report as one JSON object')
    .addHelpText('after', `
Exit status: 0 every blob is intact, 3 damage was found (damaged blobs, or blobs of complete
recordings that are gone), 2 usage error (no --data-dir, or not a server data dir), 1 other failure.
Damaged blobs are moved to <data dir>/damaged/ and count as missing: a dock's verified re-upload
replaces them (in a bucket: hidden behind a delete marker, the locked version kept). Safe to run
while the servers run. With a data dir also sets files to 0600 and folders to 0700.

Examples:
  $ bodycam server scrub --data-dir server-data
  $ bodycam server scrub --data-dir server-data --json
  $ bodycam server scrub --store s3://evidence --db "$DATABASE_URL"`)
    .action(action(async (flags: { json?: boolean; store?: string; s3Endpoint?: string; db?: string }, command: Command) => {
      const dataDir = command.optsWithGlobals<{ dataDir?: string }>().dataDir;
      let report: ScrubReport;
      if (flags.store) {
        if (dataDir) throw new UsageError('--store (with --db) or --data-dir, not both');
        report = await withToolState(flags, (blobs, state) => scrubStores({ blobs, recordings: state.recordings, where: flags.store! }));
      } else {
        if (!dataDir) throw new UsageError('--data-dir (or --store with --db) is required');
        report = await scrubDataDir(dataDir);
      }
      if (flags.json) {
        process.stdout.write(JSON.stringify(report) + '\n');
      } else {
        for (const blob of report.damaged) {
          const refs = blob.usedBy.map((r) => `${r.dockId}/${r.recordingId} segment ${r.index}${r.complete ? '' : ' (receiving)'}`).join(', ') || 'no recording';
          process.stdout.write(`DAMAGED blob ${blob.sha256}: ${blob.reason}; used by ${refs}; ${flags.store ? 'hidden' : 'moved to damaged/'}, now missing until re-sent\n`);
        }
        for (const gone of report.missing) {
          process.stdout.write(`MISSING blob ${gone.sha256} of complete recording ${gone.dockId}/${gone.recordingId} segment ${gone.index}\n`);
        }
        process.stdout.write(`scrub ${report.ok ? 'ok' : 'FOUND DAMAGE'}: ${report.blobsChecked} blobs (${report.bytesChecked} bytes) re-hashed, ${report.damaged.length} damaged, ${report.missing.length} missing from complete recordings, ${report.recordingsChecked} recordings checked, ${report.ms} ms\n`);
      }
      return report.ok ? 0 : 3;
    }));

  registerServerReport(server);
  registerServerUser(server);

  server.command('reset-dock-key')
    .description('forget the public key pinned for a dock id (after a legitimate re-key)')
    .option('--data-dir <dir>', 'the server data dir')
    .option('--db <url>', 'the PostgreSQL state instead (default: $DATABASE_URL when no --data-dir)')
    .requiredOption('--dock <id>', 'dock id')
    .addHelpText('after', `
Examples:
  $ bodycam server reset-dock-key --data-dir server-data --dock dock-01`)
    .action(action(async (flags: { dock: string; db?: string }, command: Command) => {
      const dataDir = command.optsWithGlobals<{ dataDir?: string }>().dataDir;
      const database = flags.db !== undefined || !dataDir ? databaseUrl(flags.db) : undefined;
      if (!dataDir && !database) throw new UsageError('--data-dir (or --db) is required');
      const removed = database ? await resetPgDockKey(database, flags.dock) : await resetDockKey(dataDir!, flags.dock);
      process.stdout.write(removed ? `dock ${flags.dock}: pinned key removed; its next manifest pins a new one\n` : `dock ${flags.dock}: no pinned key\n`);
      return 0;
    }));
}

function parseListen(text: string): { host: string; port: number } {
  const match = /^(?:\[([0-9a-fA-F:]+)\]|([^:\s]+)):(\d{1,5})$/.exec(text);
  const port = match ? Number(match[3]) : NaN;
  if (!match || port > 65535) throw new UsageError(`invalid --listen "${text}": use host:port, e.g. 127.0.0.1:8443 or 127.0.0.1:0`);
  return { host: match[1] ?? match[2]!, port };
}

function parseCount(text: string, flag: string): number {
  if (!/^[1-9][0-9]{0,6}$/.test(text)) throw new UsageError(`invalid ${flag} "${text}": a whole number from 1`);
  return Number(text);
}

function readUserFile(path: string, flag: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw new UsageError(`${flag}: cannot read ${path} (${errnoCode(error) ?? String(error)})`, { cause: error });
  }
}
