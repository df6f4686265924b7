/**
 * The reference ingest server (protocol v1). `startIngestServer` is what the CLI,
 * the dock's tests, replay and the demo call; it listens and returns at once
 * (nothing at startup grows with the size of the store).
 */
import { join } from 'node:path';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply } from 'fastify';
import { randomBytes } from 'node:crypto';
import { EnvironmentError, errnoCode, UsageError } from '../errors.js';
import { createLogger, type Logger } from '../log.js';
import { buildInfo } from '../util/version.js';
import { PROBLEMS, problemType } from '../protocol/problems.js';
import { TokenTable } from './auth.js';
import { bodyPending, closeAfterResponse, jsonBodyParser, RequestGate } from './connections.js';
import { openEmbeddedState } from './embeddedState.js';
import { FsStore } from './store/fsStore.js';
import { DEFAULT_LIMITS, IngestService, type IngestLimits } from './ingest.js';
import { ServerMetrics } from './metrics.js';
import { openPgState } from './pg/pgState.js';
import { hasLockedObjects } from './pg/custodyExport.js';
import { makePrivateDir, replaceFile, tightenDataDir } from './privateFiles.js';
import { ProblemError, toProblem } from './problem.js';
import { registerRoutes } from './routes.js';
import { loadOrCreateServerKey, loadServerKeyFile, type ServerKey } from './trust/serverKey.js';
import type { ServerState } from './state.js';
import type { BlobStore, Store } from './store/store.js';
import { AdminToken } from './operator/adminToken.js';
import { Catalog } from './operator/catalog.js';
import { CATALOG_SNAPSHOT, databaseBackendId, embeddedBackendId } from './operator/catalogSnapshot.js';
import { registerOperatorRoutes } from './operator/routes.js';
import { registerConsole } from './console/routes.js';

export { verifyCustodyLog, type CustodyVerification } from './custody/custodyLog.js';
export { verifyCustody, type CustodyReport } from './custody/custodyVerify.js';
export { resetDockKey } from './trust/dockKeys.js';
export { resetPgDockKey } from './pg/pgState.js';
export { verifyPgCustody } from './pg/pgExport.js';
export { FsStore } from './store/fsStore.js';
// S3BlobStore is not re-exported: it loads the AWS SDK (~0.3 s of CPU at every start), and only a server
// with --store s3:// needs it (src/cli/server/stores.ts imports it then).
export { DEFAULT_RETENTION, parseEndpoint, parseRetention, parseS3StoreUrl } from './store/s3Config.js';
export { scrubDataDir, scrubStores, type ScrubReport } from './scrub.js';
export type { Store, StoredRecording, BlobWriteResult } from './store/store.js';
export { DEFAULT_LIMITS, type IngestLimits } from './ingest.js';
export { keepHeapSlack } from './heapSlack.js';
export { checkTokenTable, generateToken, loadTokensFile, tokenWeakness } from './auth.js';

export interface IngestServerOptions {
  dataDir: string;
  /**
   * dock id → bearer token. With `database`: imported into it when it has no tokens yet, else only
   * compared (the database's apply: pg/pgTokens.ts); may be {} then.
   */
  tokens: Record<string, string>;
  /** The file `tokens` came from, for messages. */
  tokensFile?: string;
  /** With `database`: how often to look for another server's token import (default 2000 ms). */
  tokenPollMs?: number;
  host?: string;
  /** 0 (the default) picks a free port. */
  port?: number;
  /** PEM texts. With `ca`, clients must present a certificate signed by it. */
  tls?: { cert: string | Buffer; key: string | Buffer; ca?: string | Buffer };
  limits?: Partial<IngestLimits>;
  logger?: Logger;
  /**
   * Another blob backend; the filesystem store in dataDir by default. A full Store (blobs and
   * recordings) keeps the recordings too unless `database` is given.
   */
  store?: BlobStore | Store;
  /** postgres://… : keep every piece of state in PostgreSQL (src/server/pg/), shared by any number of servers. */
  database?: string;
  /** The receipt signing key (PEM, 0600), the same file for every server sharing one state; default <dataDir>/server-key.pem. */
  serverKeyFile?: string;
  /** Sign a custody checkpoint after at most this many entries (default 1000; also after each receipt and at close). */
  checkpointEvery?: number;
  /** …and this often while entries arrive (default 60 000 ms). */
  checkpointIntervalMs?: number;
  /** The operator's bearer token (GET /v1/docks, GET /v1/recordings across docks); none by default. */
  adminToken?: string;
  /** A receiving recording created longer ago than this is stale (default 24 h). */
  staleAfterMs?: number;
}

export interface IngestServer {
  url: string;
  port: number;
  publicKeyPem: string;
  keyId: string;
  /**
   * Replace every dock token at once (what SIGHUP does in the CLI): requests from then on are
   * authenticated against the new table; with a database, by every server of it. A table that
   * fails the checks (auth.ts) rejects and the old tokens stay.
   */
  setTokens(tokens: Record<string, string>): Promise<{ added: string[]; removed: string[]; docks: number }>;
  close(): Promise<void>;
}

const REQUEST_ID = /^[A-Za-z0-9._-]{1,64}$/;
/** Monitoring and the public key stay reachable when the request caps are reached. */
const UNCOUNTED_ROUTES = new Set(['/healthz', '/metrics', '/v1/keys']);

export async function startIngestServer(options: IngestServerOptions): Promise<IngestServer> {
  const limits: IngestLimits = { ...DEFAULT_LIMITS, ...definedOnly(options.limits ?? {}) };
  const log = options.logger ?? createLogger({ component: 'server' });
  // The first line of every run says which build it is.
  log.info('bodycam-dock server starting', { ...buildInfo(), dataDir: options.dataDir });
  // With a database the tokens are its (filled in once the state is open); the file is checked now all the same.
  const fileTokens = options.database && Object.keys(options.tokens).length === 0 ? undefined : TokenTable.digests(options.tokens);
  const tokens = new TokenTable(options.database ? [] : fileTokens!);
  const admin = options.adminToken !== undefined ? new AdminToken(options.adminToken) : undefined;
  admin?.assertNotADockToken(options.tokens);
  // Evidence and keys: nobody else may read the data dir (0700 folders, 0600 files; privateFiles.ts).
  await makePrivateDir(options.dataDir);
  await tightenDataDir(options.dataDir);
  const store = options.store ?? new FsStore(options.dataDir);
  await store.open();
  let state: ServerState;
  let serverKey: ServerKey;
  try {
    if (options.serverKeyFile) {
      serverKey = await loadServerKeyFile(options.serverKeyFile);
      // The public half beside the data, as with a key of its own (verify-log, a dock's --server-key).
      await replaceFile(join(options.dataDir, 'server-key.pub.pem'), serverKey.publicKeyPem);
    } else {
      serverKey = await loadOrCreateServerKey(options.dataDir);
    }
    const stateOptions = {
      serverKey,
      ...(options.checkpointEvery !== undefined ? { checkpointEvery: options.checkpointEvery } : {}),
      ...(options.checkpointIntervalMs !== undefined ? { checkpointIntervalMs: options.checkpointIntervalMs } : {}),
    };
    if (options.database) {
      state = await openPgState(options.database, { ...stateOptions, log, ...(hasLockedObjects(store) ? { exportTo: store } : {}) });
    } else {
      const recordings = isRecordingStore(store) ? store : new FsStore(options.dataDir);
      if (recordings !== store) await (recordings as FsStore).open();
      state = await openEmbeddedState(options.dataDir, recordings, stateOptions);
    }
  } catch (error) {
    await store.close();
    throw error;
  }
  const follower = state.followTokens?.(tokens, log);
  if (follower) {
    try {
      const { imported, docks } = await follower.start(fileTokens, options.tokensFile);
      if (imported) log.info('tokens imported into the database', { file: options.tokensFile, docks });
      if (docks === 0) throw new UsageError('the database holds no dock tokens: start a server with --tokens FILE (or run `bodycam server token import --db … --tokens FILE`)', { code: 'E_TOKENS' });
    } catch (error) {
      follower.stop();
      await state.close();
      await store.close();
      throw error;
    }
  }
  const metrics = new ServerMetrics();
  // Once more after everything opened: files made on the way (SQLite -wal/-shm) are 0600 too.
  await tightenDataDir(options.dataDir);
  const { custody, possession } = state;
  const ingest = new IngestService({ store, recordings: state.recordings, dockKeys: state.dockKeys, locks: state.locks, custody, serverKey, metrics, limits, log, possession });
  const catalog = new Catalog({
    recordings: state.recordings, missing: (manifest) => ingest.missing(manifest),
    ...(state.dockKeys.keyId ? { dockKeyId: state.dockKeys.keyId.bind(state.dockKeys) } : {}),
    knownDocks: () => tokens.dockIds(), seesEveryChange: !options.database, snapshotPath: join(options.dataDir, CATALOG_SNAPSHOT),
    // A snapshot is read only for the backend and the chain it was saved from (catalogSnapshot.ts).
    backendId: options.database ? databaseBackendId(options.database) : await embeddedBackendId(options.dataDir),
    chainPosition: () => { const c = state.custody.lastCheckpoint(); return c ? { seq: c.seq, hash: c.hash } : undefined; },
    saveEveryMs: CATALOG_SAVE_EVERY_MS, onSaveError: (error) => log.warn('catalog summaries not saved; a start after an unclean stop reads more records', { err: error }),
    // The data dir's record times come from this machine's clock (FsStore allows 1 s); a database's need not.
    ...(options.database ? {} : { snapshotClockMarginMs: 0 }), ...(options.staleAfterMs !== undefined ? { staleAfterMs: options.staleAfterMs } : {}),
  });

  const https = options.tls ? {
    cert: options.tls.cert, key: options.tls.key,
    ...(options.tls.ca ? { ca: options.tls.ca, requestCert: true, rejectUnauthorized: true } : {}),
  } : null;
  const app = Fastify({
    logger: false,
    ...(https ? { https } : {}),
    bodyLimit: limits.maxManifestBytes,
    requestTimeout: limits.requestTimeoutMs,
    forceCloseConnections: true,
    // Ids are up to 128 characters (ID_PATTERN); fastify's default of 100 would answer 404 to every
    // request on an id it had just created (a dock's id is up to 110: <serial 60>-<32 hex>-<16 hex>).
    routerOptions: { maxParamLength: 256 },
    return503OnClosing: false, // our own 503 below is problem+json with Retry-After
    // A URL fastify cannot decode (`/v1/recordings/%`) is answered before any route or hook: as problem+json too.
    frameworkErrors: (error, request, reply) => {
      const problem = toProblem(error);
      (reply as FastifyReply).code(problem.status).type('application/problem+json').send(problem.body(request.url.slice(0, 300)));
    },
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomBytes(8).toString('hex');
    },
    // Signed documents must reach the handler exactly as sent: no coercion, no defaults, nothing removed.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false, allErrors: false } },
  }) as unknown as FastifyInstance;

  // JSON bodies are capped by bytes as they stream, in one body and across all, and cut when slow (connections.ts).
  app.removeContentTypeParser(['application/json']);
  app.addContentTypeParser('application/json', jsonBodyParser(limits));
  // Segment bodies are streamed to the store, never buffered.
  app.addContentTypeParser('*', (_request, payload, done) => done(null, payload));

  let shuttingDown = false;
  const gate = new RequestGate(limits);
  metrics.observe({
    usedBytes: () => store.usedBytes(), ...(limits.maxStoreBytes !== undefined ? { quotaBytes: limits.maxStoreBytes } : {}),
    inFlight: () => gate.inFlight, refused: () => ({ server: gate.refusedTotal, dock: gate.refusedPerDock }),
  });
  app.addHook('onRequest', async (request, reply) => {
    reply.header('X-Request-Id', request.id);
    if (shuttingDown) {
      reply.header('Connection', 'close');
      throw new ProblemError('unavailable', 'the server is shutting down', { retryAfter: 5 });
    }
    if (!UNCOUNTED_ROUTES.has(request.routeOptions.url ?? '')) gate.enter(reply);
  });
  // Before the answer leaves (a client may ask the operator API the moment it has it): the
  // catalog re-reads a recording a dock just changed (operator/catalog.ts).
  app.addHook('onSend', async (request) => {
    if (!request.dockId) return;
    catalog.seen(request.dockId);
    // A new recording's id is in its manifest (POST /v1/recordings); every later change is under /v1/recordings/:id.
    const id = (request.params as { id?: unknown } | undefined)?.id ?? (request.routeOptions.url === '/v1/recordings' ? (request.body as { recordingId?: unknown } | undefined)?.recordingId : undefined);
    if (request.method !== 'GET' && typeof id === 'string') catalog.touch(request.dockId, id);
  });
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    metrics.countRequest(request.method, route, reply.statusCode);
    log.info('request', { reqId: request.id, method: request.method, route, url: request.url.slice(0, 300), status: reply.statusCode, ms: Math.round(reply.elapsedTime), ...(request.dockId ? { dockId: request.dockId } : {}) });
  });

  app.setNotFoundHandler(async (request, reply) => {
    if (bodyPending(request)) closeAfterResponse(reply);
    reply.code(404).type('application/problem+json');
    // Its own code, so a dock tells a wrong --endpoint from a recording the server does not have; the
    // detail keeps the words that docks before no_such_route look for (src/dock/attention.ts isMissingRoute).
    return { type: problemType('no_such_route'), title: PROBLEMS.no_such_route.title, status: 404, code: 'no_such_route', detail: `${request.method} ${request.url.slice(0, 200)} is not part of protocol v1` };
  });

  app.setErrorHandler(async (error: FastifyError | ProblemError | Error, request, reply) => {
    // A client whose connection dropped before its request arrived in full (a dock on a flaky
    // uplink): its doing, whatever error the body's stream raised then (its ECONNRESET is not the
    // database's), and nobody reads this answer.
    const clientGone = !(error instanceof ProblemError) && !request.raw.complete && (request.raw.destroyed || request.raw.socket?.destroyed === true);
    const problem = clientGone ? new ProblemError('timeout', 'the client closed the connection before its request arrived in full', { cause: error }) : toProblem(error);
    if (problem.status >= 500) log.error('request failed', { reqId: request.id, err: error });
    else log.info('request refused', { reqId: request.id, code: problem.problemCode, detail: problem.message });
    if (problem.retryAfter !== undefined) reply.header('Retry-After', String(problem.retryAfter));
    // Stored bytes that failed verification: the headers set for the content are not this answer's.
    // (A stream reply has copied them onto the raw response already.)
    if (problem.problemCode === 'blob_damaged') {
      for (const name of ['content-range', 'repr-digest', 'etag', 'accept-ranges']) {
        reply.removeHeader(name);
        if (!reply.raw.headersSent) reply.raw.removeHeader(name);
      }
    }
    // An answer before the body arrived in full (401, 403, 413, 429, 408, …) ends the connection:
    // the unread body is not drained for as long as a slow client cares to send it.
    if (bodyPending(request)) closeAfterResponse(reply);
    reply.code(problem.status).type('application/problem+json');
    return problem.body(request.url.slice(0, 300));
  });

  registerOperatorRoutes(app, { catalog, admin });
  registerConsole(app, { dataDir: options.dataDir, recordings: state.recordings, store, ingest, custody: state.custody, catalog, serverKey, secure: Boolean(https), log });
  registerRoutes(app, { ingest, tokens, ...(state.dockKeys.keyId ? { dockKeyId: state.dockKeys.keyId.bind(state.dockKeys) } : {}), ...(follower ? { lookForTokens: () => follower.lookNow() } : {}), gate, catalog, admin, serverKey, metrics, store, bodyIdleTimeoutMs: limits.bodyIdleTimeoutMs, ...(limits.maxStoreBytes !== undefined ? { quotaBytes: limits.maxStoreBytes } : {}) });

  const host = options.host ?? '127.0.0.1';
  try {
    await app.listen({ host, port: options.port ?? 0 });
  } catch (error) {
    await app.close().catch(() => {});
    await state.close();
    await store.close();
    const code = errnoCode(error);
    if (code === 'EADDRINUSE') throw new EnvironmentError('E_PORT_IN_USE', `cannot listen on ${host}:${options.port}: the port is already in use: stop the other process or choose another port with --listen ${host}:PORT`, { cause: error });
    if (code === 'EACCES') throw new EnvironmentError('E_LISTEN_DENIED', `cannot listen on ${host}:${options.port}: permission denied`, { cause: error });
    if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') throw new EnvironmentError('E_LISTEN_ADDRESS', `cannot listen on ${host}: no such local address`, { cause: error });
    throw error;
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : options.port ?? 0;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  const url = `${https ? 'https' : 'http'}://${urlHost}:${port}`;
  log.info('listening', { url, dataDir: options.dataDir, keyId: serverKey.keyId });
  // Built in the background from now on: a page asked before it is done says so (operator/catalog.ts refreshWithin).
  catalog.refresh().catch((error: unknown) => log.warn('recording catalog not built yet; the next page tries again', { err: error }));

  let closing: Promise<void> | undefined;
  return {
    url, port, publicKeyPem: serverKey.publicKeyPem, keyId: serverKey.keyId,
    setTokens: async (next) => follower ? follower.importFile(TokenTable.digests(next)) : tokens.replace(next),
    close: () => closing ??= (async () => {
      shuttingDown = true;
      await app.close();
      // The next start's first page reads this instead of every record (operator/catalogSnapshot.ts).
      await catalog.save().catch((error: unknown) => log.warn('catalog summaries not saved; the next start reads every record', { err: error }));
      // The state first: its last checkpoint is exported into the store (custodyExport.ts) before the store closes.
      await state.close();
      await store.close();
    })(),
  };
}

/** The catalog's summaries are saved this often while they change (and at a clean stop). */
const CATALOG_SAVE_EVERY_MS = 10 * 60_000;

function isRecordingStore(store: BlobStore | Store): store is Store {
  return typeof (store as Partial<Store>).getRecording === 'function';
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
