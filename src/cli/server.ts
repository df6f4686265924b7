/**
 * `bodycam server`: the reference ingest server; `bodycam server verify-log`:
 * check the custody chain; `bodycam server scrub`: re-hash every stored blob;
 * `bodycam server reset-dock-key`: forget a pinned dock key.
 */
import { SystemdNotifier } from '../util/sdNotify.js';
import type { Command } from 'commander';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { statSync, writeFileSync } from 'node:fs';
import { readPrivateFile } from '../util/privateFile.js';
import { dirname, join } from 'node:path';
import { errnoCode, UsageError } from '../errors.js';
import { createLogger, logTarget } from '../log.js';
import { generateSigningKeyPair, keyIdOf } from '../protocol/signing.js';
import { generateToken, keepHeapSlack, loadTokensFile, resetDockKey, resetPgDockKey, scrubDataDir, scrubStores, startIngestServer, verifyCustody, verifyPgCustody } from '../server/index.js';
import { hasLockedObjects } from '../server/pg/custodyExport.js';
import { TokenTable } from '../server/auth.js';
import { importTokenFile } from '../server/pg/pgTokens.js';
import type { ScrubReport } from '../server/scrub.js';
import { blobStoreOf, openToolBlobStore, withToolState } from './server/stores.js';
import { addToolOptions, givenToolFlags, toolSettings } from './server/toolSettings.js';
import { requireServerDataDir } from './server/dataDir.js';
import { isValidId } from '../protocol/types.js';
import { deploymentOf, resolveServerSettings, serverConfigOf, SERVER_SETTINGS, strayEnvironmentNotes, type ServerConfig } from '../server/config.js';
import { addSettingsOptions } from './settingsPrint.js';
import { registerServerConfig } from './server/config.js';
import type { BlobStore } from '../server/store/store.js';
import { action } from './handler.js';
import { registerServerReport } from './server/report.js';
import { registerServerUser } from './server/user.js';
import { loadAdminTokenFile } from '../server/operator/adminToken.js';
import { enterServiceMode, tell, say } from './output.js';
import { untilStopSignal } from './signals.js';

/** What a value looks like in each flag's usage. */
const PLACEHOLDERS: Record<string, string> = {
  dataDir: 'dir', listen: 'host:port', tokens: 'file', tlsCert: 'file', tlsKey: 'file', tlsCa: 'file', db: 'url', serverKey: 'file',
  store: 'dir|s3://bucket', s3Endpoint: 'url', s3Region: 'name', retention: 'time', adminTokenFile: 'file', logLevel: 'level',
};

/** `bodycam server`'s blob store: a shared folder, or the S3 bucket (its scratch folder in the data dir). */
function serverBlobStore(config: ServerConfig): Promise<BlobStore | undefined> {
  return blobStoreOf(config, join(config.dataDir, 's3-spool'));
}

/** Values commander filled in itself must not outrank env or the file (the server's flags have no commander defaults). */
function givenFlags(command: Command, flags: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(flags)) if (value !== undefined && command.getOptionValueSource(key) !== 'default') out[key] = value;
  return out;
}

/** The files the server reads at start, read now: a missing or unreadable one is one line naming its key. */
function readStartFiles(config: ServerConfig): { tls?: { cert: string; key: string; ca?: string }; tokens: ReturnType<typeof loadTokensFile>; adminToken?: ReturnType<typeof loadAdminTokenFile> } {
  checkDataDirPath(config.dataDir);
  const tls = config.tls ? checkTls({
    cert: readTlsFile(config.tls.cert, '--tls-cert', 'authorising'), key: readTlsFile(config.tls.key, '--tls-key', 'secret'),
    ...(config.tls.ca ? { ca: readTlsFile(config.tls.ca, '--tls-ca', 'authorising') } : {}),
  }, config.tls) : undefined;
  return {
    ...(tls ? { tls } : {}), tokens: config.tokens ? loadTokensFile(config.tokens) : {},
    ...(config.adminTokenFile ? { adminToken: loadAdminTokenFile(config.adminTokenFile) } : {}),
  };
}

export function registerServer(program: Command): void {
  const server = program.command('server')
    .description('Run the reference ingest server (protocol v1): verify, store, sign receipts, keep the custody log')
    .option('--config <file>', `JSON config file (the keys of the README's server configuration, camelCase; unknown keys are an error) [${SERVER_SETTINGS.configFileEnv}]`);
  addSettingsOptions(server, SERVER_SETTINGS, { placeholders: PLACEHOLDERS });
  server.addHelpText('after', `
Every flag is also read from BODYCAM_SERVER_<KEY> (and the documented DATABASE_URL, S3_ENDPOINT, AWS_REGION,
BODYCAM_LOG_LEVEL) and from the --config file; the S3 keys only from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY
(or BODYCAM_SERVER_S3_*, or the file). Precedence: flags > environment > --config file > defaults.
\`bodycam server config --print\` shows what is in effect and where each value came from.

Examples:
  $ (umask 077; echo "{\\"dock-01\\": \\"$(bodycam server token new)\\"}" > tokens.json)
  $ bodycam server --data-dir server-data --tokens tokens.json --listen 127.0.0.1:8443
  $ kill -HUP <server pid>     # after editing tokens.json: add or remove docks without a restart
  $ bodycam server --data-dir server-data --tokens tokens.json --tls-cert cert.pem --tls-key key.pem
  $ BODYCAM_SERVER_CONFIG=/etc/bodycam/server.json bodycam server
  $ bodycam server key new --out receipt-key.pem
  $ bodycam server --data-dir a --store blobs --db postgres://bodycam@db/evidence --server-key receipt-key.pem --tokens tokens.json --listen 127.0.0.1:8443
  $ bodycam server --data-dir b --store blobs --db postgres://bodycam@db/evidence --server-key receipt-key.pem --tokens tokens.json --listen 127.0.0.1:8444
  $ set -a; . engines/engines.env; set +a     # S3_ENDPOINT, AWS_ACCESS_KEY_ID, … from scripts/engines.sh up engines
  $ bodycam server --data-dir c --store s3://evidence --retention 7y --db "$DATABASE_URL" --server-key receipt-key.pem --tokens tokens.json`);
  server.action(action(async (given: Record<string, unknown>) => {
      enterServiceMode('server');
      const resolved = resolveServerSettings({ flags: givenFlags(server, given) });
      // A DATABASE_URL or S3_ENDPOINT meant for another program, beating the --config file: said, never
      // silent, and before the checks it may fail (an S3_ENDPOINT without an S3 store).
      const stray = strayEnvironmentNotes(resolved);
      for (const note of stray) tell(`bodycam server: warning: ${note}`, { code: 'stray_environment' }, 'warn');
      const config = serverConfigOf(resolved);
      const files = readStartFiles(config);
      const tokensPath = config.tokens;
      const database = config.database;
      const blobs = await serverBlobStore(config);
      const log = createLogger({ component: 'server' }, config.logLevel);
      if (logTarget() === 'file') for (const note of stray) log.warn(note, { code: 'stray_environment' });
      // Room for the body buffers' garbage between full collections (src/server/heapSlack.ts): this process is the server.
      keepHeapSlack();
      const running = await startIngestServer({
        dataDir: config.dataDir, tokens: files.tokens, ...(tokensPath ? { tokensFile: tokensPath } : {}), host: config.host, port: config.port,
        ...(database ? { database } : {}),
        ...(config.serverKey ? { serverKeyFile: config.serverKey } : {}),
        ...(blobs ? { store: blobs } : {}),
        ...(files.adminToken ? { adminToken: files.adminToken } : {}),
        staleAfterMs: config.staleAfterMs,
        ...(files.tls ? { tls: files.tls } : {}),
        limits: {
          maxSegmentBytes: config.maxSegmentBytes,
          ...(config.maxStoreBytes !== undefined ? { maxStoreBytes: config.maxStoreBytes } : {}),
          requestTimeoutMs: config.requestTimeoutMs,
          bodyIdleTimeoutMs: config.bodyIdleTimeoutMs,
          manifestTimeoutMs: config.manifestTimeoutMs,
          maxConcurrentRequests: config.maxRequests,
          maxConcurrentRequestsPerDock: config.maxRequestsPerDock,
        },
        logger: log,
      });
      say(`listening ${running.url}\n`);
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
      // Type=notify (scripts/bodycam-server.service): ready once it listens; watchdog pings; STOPPING on the way out.
      // The stop handlers are in place before READY: a SIGTERM right after it must not kill the process unhandled.
      const stopped = untilStopSignal();
      const systemd = SystemdNotifier.fromEnv(log);
      await systemd?.ready(`listening ${running.url}`);
      await stopped;
      process.off('SIGHUP', reload);
      await systemd?.stopping();
      await running.close();
      return 0;
    }));

  registerServerConfig(server, (command) => givenFlags(server, command.optsWithGlobals()), readStartFiles);

  const key = server.command('key').description('the receipt signing key');
  addToolOptions(key.command('new')
    .description('write a new Ed25519 receipt signing key (PEM, 0600) for --server-key; refuses to overwrite a file'), 'keyNew')
    .addHelpText('after', `
Examples:
  $ bodycam server key new --out receipt-key.pem`)
    .action(action(async (_flags: unknown, command: Command) => {
      const out = String(toolSettings('keyNew', givenToolFlags(command)).values.out);
      const pair = generateSigningKeyPair();
      try {
        writeFileSync(out, pair.privateKeyPem, { mode: 0o600, flag: 'wx' });
      } catch (error) {
        throw new UsageError(`--out: cannot create ${out} (${errnoCode(error) ?? String(error)})${errnoCode(error) === 'EEXIST' ? ': a key is never overwritten' : ''}`, { cause: error });
      }
      say(`wrote ${out} (key id ${keyIdOf(pair.publicKeyPem)})\n`);
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
      say(`${generateToken()}\n`);
      return 0;
    }));
  addToolOptions(token.command('import')
    .description('make a tokens file every server\'s tokens: its SHA-256 digests replace the database\'s at once (servers follow within seconds)'), 'tokenImport')
    .addHelpText('after', `
Examples:
  $ bodycam server token import --db "$DATABASE_URL" --tokens tokens.json
  $ bodycam server token import --config /etc/bodycam/server.json`)
    .action(action(async (_flags: unknown, command: Command) => {
      const resolved = toolSettings('tokenImport', givenToolFlags(command));
      const tokensFile = String(resolved.values.tokens);
      const { database } = deploymentOf(resolved);
      const entries = TokenTable.digests(loadTokensFile(tokensFile));
      const { generation, docks } = await importTokenFile(database!, entries);
      say(`imported ${docks} dock tokens from ${tokensFile} (generation ${generation}); every server of the database accepts exactly these within seconds\n`);
      return 0;
    }));

  addToolOptions(server.command('verify-log')
    .description('check the custody log: its hash chain, its signed checkpoints, and every receipt (stored, and those docks hold) against it'), 'verifyLog')
    .addHelpText('after', `
With db set (flag, DATABASE_URL, or the server's config file) the chain kept in PostgreSQL is checked, as
\`bodycam server\` would keep it; else the data dir's custody log.
Exit codes: 0 all checks pass, 3 something does not match (each reason printed), 2 no data dir or no log at all.

Examples:
  $ bodycam server verify-log --data-dir server-data
  $ bodycam server verify-log --data-dir server-data --receipts /var/lib/bodycam-dock
  $ bodycam server verify-log --db "$DATABASE_URL" --store s3://evidence
  $ bodycam server verify-log --config /etc/bodycam/server.json`)
    .action(action(async (_flags: unknown, command: Command) => {
      const resolved = toolSettings('verifyLog', givenToolFlags(command));
      const dataDir = resolved.values.dataDir as string | undefined;
      const receipts = (resolved.values.receipts as string[] | undefined) ?? [];
      if (resolved.values.store !== undefined && resolved.values.db === undefined) throw new UsageError('--store goes with --db: the bucket\'s custody exports are compared with the database');
      const deployment = deploymentOf(resolved);
      const database = deployment.database;
      if (!dataDir && !database) throw new UsageError('--data-dir (or --db) is required');
      if (deployment.storeDir && !deployment.s3) throw new UsageError('--store: custody exports are kept in an s3:// bucket, not in a folder');
      const bucket = deployment.s3 ? await openToolBlobStore({ s3: deployment.s3 }) : undefined;
      let report: Awaited<ReturnType<typeof verifyPgCustody>>;
      try {
        if (bucket && !hasLockedObjects(bucket.blobs)) throw new UsageError('--store: custody exports are kept in an s3:// bucket, not in a folder');
        report = database ? await verifyPgCustody(database, receipts, bucket?.blobs as Parameters<typeof verifyPgCustody>[2]) : await verifyCustody({ dataDir: dataDir!, receipts });
      } finally {
        await bucket?.close();
      }
      const summary = `${report.entries} entries, ${report.checkpoints} checkpoints${report.lastCheckpointSeq !== undefined ? ` (last at seq ${report.lastCheckpointSeq})` : ''}, ${report.storedReceipts} stored receipts${receipts.length ? `, ${report.dockReceipts} dock receipts` : ''}${report.exportsCompared !== undefined ? `, ${report.exportsCompared} locked exports` : ''}`;
      for (const note of report.notes) process.stderr.write(`note: ${note}\n`);
      if (report.ok) {
        say(`custody log ok: ${summary} match\n`);
        return 0;
      }
      const [first, ...more] = report.problems;
      const at = first!.line !== undefined ? ` at line ${first!.line}${first!.seq !== undefined ? ` (seq ${first!.seq})` : ''}` : '';
      say(`custody log BROKEN${at}: ${first!.reason}${first!.chain ? `; ${report.entries} entries before it verify` : ''}\n`);
      for (const p of more.slice(0, 50)) say(`  also${p.line !== undefined ? ` at line ${p.line}` : ''}: ${p.reason}\n`);
      if (more.length > 50) say(`  … and ${more.length - 50} more\n`);
      if (receipts.length) say(`dock receipts: ${report.dockReceipts} read, ${report.dockReceiptsMatched} match the log\n`);
      return 3;
    }));

  addToolOptions(server.command('scrub')
    .description('re-hash every stored blob; report damaged ones and the recordings they belong to, and mark them missing so docks re-send them'), 'scrub')
    .addHelpText('after', `
A db deployment (db set by flag, DATABASE_URL or the server's config file) is scrubbed with its
recordings from PostgreSQL and its blobs from store (or the data dir); else the data dir alone.
Exit status: 0 every blob is intact, 3 damage was found (damaged blobs, or blobs of complete
recordings that are gone), 2 usage error (no --data-dir, or not a server data dir), 1 other failure.
Damaged blobs are moved to <data dir>/damaged/ and count as missing: a dock's verified re-upload
replaces them (in a bucket: hidden behind a delete marker, the locked version kept). Safe to run
while the servers run. With a data dir also sets files to 0600 and folders to 0700.

Examples:
  $ bodycam server scrub --data-dir server-data
  $ bodycam server scrub --data-dir server-data --json
  $ bodycam server scrub --store s3://evidence --db "$DATABASE_URL"
  $ bodycam server scrub --config /etc/bodycam/server.json`)
    .action(action(async (_flags: unknown, command: Command) => {
      const resolved = toolSettings('scrub', givenToolFlags(command));
      const { dataDir, json } = resolved.values as { dataDir?: string; json: boolean };
      const deployment = deploymentOf(resolved);
      const where = String(resolved.values.store ?? dataDir ?? '');
      let report: ScrubReport;
      if (deployment.database || deployment.storeDir || deployment.s3) {
        report = await withToolState({ ...deployment, ...(dataDir ? { dataDir } : {}) }, (blobs, state) => scrubStores({ blobs, recordings: state.recordings, where }));
      } else {
        if (!dataDir) throw new UsageError('--data-dir (or --store with --db) is required');
        report = await scrubDataDir(dataDir);
      }
      if (json) {
        process.stdout.write(JSON.stringify(report) + '\n');
      } else {
        for (const blob of report.damaged) {
          const refs = blob.usedBy.map((r) => `${r.dockId}/${r.recordingId} segment ${r.index}${r.complete ? '' : ' (receiving)'}`).join(', ') || 'no recording';
          say(`DAMAGED blob ${blob.sha256}: ${blob.reason}; used by ${refs}; ${deployment.s3 ? 'hidden' : 'moved to damaged/'}, now missing until re-sent\n`);
        }
        for (const gone of report.missing) {
          say(`MISSING blob ${gone.sha256} of complete recording ${gone.dockId}/${gone.recordingId} segment ${gone.index}\n`);
        }
        say(`scrub ${report.ok ? 'ok' : 'FOUND DAMAGE'}: ${report.blobsChecked} blobs (${report.bytesChecked} bytes) re-hashed, ${report.damaged.length} damaged, ${report.missing.length} missing from complete recordings, ${report.recordingsChecked} recordings checked, ${report.ms} ms\n`);
      }
      return report.ok ? 0 : 3;
    }));

  registerServerReport(server);
  registerServerUser(server);

  addToolOptions(server.command('reset-dock-key')
    .description('forget the public key pinned for a dock id (after a legitimate re-key)'), 'resetDockKey')
    .addHelpText('after', `
Examples:
  $ bodycam server reset-dock-key --data-dir server-data --dock dock-01
  $ bodycam server reset-dock-key --db "$DATABASE_URL" --dock dock-01`)
    .action(action(async (_flags: unknown, command: Command) => {
      const resolved = toolSettings('resetDockKey', givenToolFlags(command));
      const dataDir = resolved.values.dataDir as string | undefined;
      const dock = String(resolved.values.dock);
      const { database } = deploymentOf(resolved);
      if (!dataDir && !database) throw new UsageError('--data-dir (or --db) is required');
      // A dock id that could never be pinned ('../../etc') is the user's mistake: one line, exit 2.
      if (!isValidId(dock)) throw new UsageError(`invalid dock id ${JSON.stringify(dock)}: use letters, digits, '.', '_' and '-' (as in the dock's --dock-id)`);
      if (!database) requireServerDataDir(dataDir!);
      const removed = database ? await resetPgDockKey(database, dock) : await resetDockKey(dataDir!, dock);
      say(removed ? `dock ${dock}: pinned key removed; its next manifest pins a new one\n` : `dock ${dock}: no pinned key\n`);
      return 0;
    }));
}

/**
 * A data dir that is a file (or under one) is a configuration mistake: exit 2, one line, which the
 * systemd unit (RestartPreventExitStatus=2) does not restart in a loop as it did the "unexpected" EEXIST.
 */
function checkDataDirPath(dataDir: string): void {
  for (let path = dataDir; ; path = dirname(path)) {
    let isDir: boolean;
    try {
      isDir = statSync(path).isDirectory();
    } catch (error) {
      // Missing: created at start; ENOTDIR: a parent is a file, named by the next round.
      if ((errnoCode(error) === 'ENOENT' || errnoCode(error) === 'ENOTDIR') && dirname(path) !== path) continue;
      throw new UsageError(`--data-dir ${dataDir}: cannot use ${path} (${errnoCode(error) ?? String(error)})`, { cause: error });
    }
    if (!isDir) throw new UsageError(path === dataDir ? `--data-dir ${dataDir} is not a folder` : `--data-dir ${dataDir}: ${path} is not a folder`);
    return;
  }
}

/** The TLS files parsed now: a file that is not PEM, or a key not of the certificate, is a usage error naming the flag (exit 2). */
function checkTls(tls: { cert: string; key: string; ca?: string }, paths: { cert: string; key: string; ca?: string }): { cert: string; key: string; ca?: string } {
  let cert: X509Certificate;
  try { cert = new X509Certificate(tls.cert); } catch (cause) {
    throw new UsageError(`--tls-cert ${paths.cert} is not a PEM certificate`, { cause });
  }
  let key;
  try { key = createPrivateKey(tls.key); } catch (cause) {
    throw new UsageError(`--tls-key ${paths.key} is not a PEM private key`, { cause });
  }
  if (!cert.checkPrivateKey(key)) throw new UsageError(`--tls-key ${paths.key} is not the key of --tls-cert ${paths.cert}`);
  if (tls.ca !== undefined) {
    try { new X509Certificate(tls.ca); } catch (cause) {
      throw new UsageError(`--tls-ca ${paths.ca} is not a PEM certificate`, { cause });
    }
  }
  return tls;
}

/**
 * The TLS files under the rule for private files (src/util/privateFile.ts): the key is a secret
 * (whoever reads it can be this server); the certificate and the CA decide whom the server is and
 * whom it trusts, so others may read them but not write them.
 */
function readTlsFile(path: string, flag: string, kind: 'secret' | 'authorising'): string {
  return readPrivateFile(path, {
    kind, label: flag, maxBytes: 1024 * 1024,
    unreadable: { message: (cause) => `${flag}: cannot read ${path} (${errnoCode(cause) ?? String(cause)})` },
  }).text;
}
