/** HTTP surface of protocol v1 (docs/protocol.md): translate requests to IngestService calls. */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Readable } from 'node:stream';
import { formatDigestHeader, parseDigestHeader } from '../protocol/digest.js';
import { manifestSchema, possessionChallengeSchema } from '../protocol/schema.js';
import { compileSchema } from '../util/jsonSchema.js';
import { DOCK_ID_HEADER, PROTOCOL_VERSION, type PossessionChallenge, type RecordingManifest } from '../protocol/types.js';
import type { TokenTable } from './auth.js';
import { closeAfterResponse, type RequestGate } from './connections.js';
import type { IngestService } from './ingest.js';
import type { ServerMetrics } from './metrics.js';
import { ProblemError } from './problem.js';
import { parseRange } from './range.js';
import type { ServerKey } from './trust/serverKey.js';
import type { BlobStore } from './store/store.js';
import type { AdminToken } from './operator/adminToken.js';
import type { Catalog } from './operator/catalog.js';
import { recordingsPage, type OperatorQuery } from './operator/routes.js';

declare module 'fastify' {
  interface FastifyRequest { dockId?: string }
}

interface IdParams { id: string }
interface SegmentParams { id: string; index: string }
interface AttachmentParams { id: string; a: string }
interface AttachmentSegmentParams { id: string; a: string; index: string }

// The protocol's documents, checked by the project's one validator (src/util/jsonSchema.ts), up to
// the first problem (as fastify's own would). The schema's $id is for the published file.
const { $id: _id, $schema: _schema, ...manifestBodySchema } = manifestSchema;
const manifestValidator = compileSchema(manifestBodySchema, { wire: true });
const challengeValidator = compileSchema(possessionChallengeSchema, { wire: true });

export function registerRoutes(app: FastifyInstance, deps: {
  ingest: IngestService; tokens: TokenTable; gate: RequestGate; serverKey: ServerKey; metrics: ServerMetrics; store: BlobStore; quotaBytes?: number; bodyIdleTimeoutMs: number;
  catalog: Catalog; admin: AdminToken | undefined;
  /** The key id the server pinned for a dock (GET /v1/keys/dock), when the state can say. */
  dockKeyId?: (dockId: string) => Promise<string | undefined>;
  /** With a database: look for tokens another server imported (an unknown token may be a dock just added). */
  lookForTokens?: () => Promise<boolean>;
}): void {
  const { ingest, tokens, gate, serverKey, metrics, store } = deps;

  // Before any body is read: who is calling, and whether that dock has a request slot left.
  const authenticate = async (request: FastifyRequest, reply: FastifyReply) => {
    let dockId = tokens.authenticate(request.headers.authorization);
    // The dock id the caller says it is (DOCK_ID_HEADER): a token just moved to another dock that this
    // server's table has not followed yet is a mismatch to look up, never a look in the wrong namespace.
    const claimed = request.headers[DOCK_ID_HEADER];
    const mismatch = (id: string | undefined): boolean => claimed !== undefined && claimed !== id;
    if ((!dockId || mismatch(dockId)) && request.headers.authorization && deps.lookForTokens && await deps.lookForTokens()) dockId = tokens.authenticate(request.headers.authorization);
    if (!dockId) throw new ProblemError('unauthorized', request.headers.authorization ? 'unknown bearer token' : 'send Authorization: Bearer <dock token>');
    if (mismatch(dockId)) throw new ProblemError('forbidden', `this token belongs to dock ${dockId}, the request is from dock ${String(claimed).slice(0, 128)}`);
    request.dockId = dockId;
    gate.enterDock(dockId, reply);
  };
  const dockOf = (request: FastifyRequest) => request.dockId!;

  app.get('/healthz', async () => ({ status: 'ok', protocol: PROTOCOL_VERSION }));

  app.get('/metrics', async (_request, reply) => {
    reply.type('text/plain; version=0.0.4; charset=utf-8');
    return metrics.render();
  });

  app.get('/v1/keys', async () => ({ keyId: serverKey.keyId, publicKeyPem: serverKey.publicKeyPem, algorithm: 'Ed25519' }));

  // The calling dock's own pin (its key id, null before its first manifest): `bodycam doctor` compares it with
  // the key in its state folder, so a lost or restored state dir shows before every upload is refused.
  app.get('/v1/keys/dock', { onRequest: authenticate }, async (request) => {
    const dockId = dockOf(request);
    if (!deps.dockKeyId) throw new ProblemError('not_found', 'this server\'s state cannot tell a dock\'s pinned key');
    return { dockId, dockKeyId: (await deps.dockKeyId(dockId)) ?? null };
  });

  app.post('/v1/recordings', { onRequest: authenticate }, async (request, reply) => {
    const body = request.body as unknown;
    if (isStream(body) || typeof body === 'string') throw new ProblemError('unsupported_media_type', 'send the manifest with Content-Type: application/json');
    if (body === undefined || body === null || typeof body !== 'object' || Array.isArray(body)) {
      throw new ProblemError('invalid_manifest', 'the manifest must be a JSON object');
    }
    const protocol = (body as { protocol?: unknown }).protocol;
    if (protocol !== PROTOCOL_VERSION) throw new ProblemError('unsupported_protocol', `protocol ${JSON.stringify(protocol)} is not supported; this server speaks ${PROTOCOL_VERSION}`);
    const errors = manifestValidator.errors(body);
    if (errors.length) {
      const first = errors[0]!;
      throw new ProblemError('invalid_manifest', `${first.instancePath || '(manifest)'} ${first.message ?? 'is invalid'}`, { extension: { errors: errors.slice(0, 10) } });
    }
    const { created, response } = await ingest.create(dockOf(request), body as RecordingManifest);
    reply.code(created ? 201 : 200);
    if (created) reply.header('Location', `/v1/recordings/${response.recordingId}`);
    return response;
  });

  // A segment of the recording, or of one of its attachments: one handler, one set of rules.
  const putSegment = async (request: FastifyRequest<{ Params: SegmentParams & { a?: string } }>, reply: FastifyReply) => {
    const body = request.body;
    if (!isStream(body)) throw new ProblemError('unsupported_media_type', 'send segment bytes as application/octet-stream');
    const lengthHeader = request.headers['content-length'];
    const contentLength = lengthHeader !== undefined && /^\d+$/.test(lengthHeader) ? Number(lengthHeader) : undefined;
    // A stalled uplink must not hold an upload slot forever. The idle timer is the request's, not
    // the socket's: with a listener on the request, Node keeps the socket open when it fires, so
    // the client gets the documented 408 before the connection closes. The body is dropped only
    // once that answer is out, because destroying an unfinished request destroys its socket.
    // (Not a Transform in the byte path: it would cost a hop per chunk on the server's one thread.)
    const socket = request.raw.socket;
    let stalled: ProblemError | undefined;
    const onIdle = () => {
      if (stalled || reply.sent) return;
      stalled = new ProblemError('timeout', `no body bytes for ${deps.bodyIdleTimeoutMs} ms`);
      const abandoned = stalled;
      reply.raw.once('close', () => body.destroy(abandoned));
      closeAfterResponse(reply);
      void reply.send(abandoned);
    };
    request.raw.setTimeout(deps.bodyIdleTimeoutMs, onIdle);
    // A body that has arrived is not idle, however long storing it takes.
    body.once('end', () => socket.setTimeout(0));
    try {
      const { created, segment } = await ingest.putSegment(dockOf(request), request.params.id, request.params.index, {
        digestHex: parseDigestHeader(request.headers['content-digest']),
        contentLength,
        body,
      }, request.params.a);
      if (stalled) return undefined;
      reply.code(created ? 201 : 200);
      return { recordingId: request.params.id, ...(request.params.a !== undefined ? { attachment: Number(request.params.a) } : {}), index: segment.index, sha256: segment.sha256, length: segment.length, stored: created };
    } catch (error) {
      if (stalled) return undefined; // answered 408 by onIdle already
      // A body we did not read to the end is not worth draining on a slow uplink.
      if (!body.readableEnded) closeAfterResponse(reply);
      throw error;
    } finally {
      request.raw.off('timeout', onIdle);
      socket.setTimeout(0);
    }
  };
  app.put<{ Params: SegmentParams }>('/v1/recordings/:id/segments/:index', { onRequest: authenticate }, putSegment);
  app.put<{ Params: AttachmentSegmentParams }>('/v1/recordings/:id/attachments/:a/segments/:index', { onRequest: authenticate }, putSegment);

  app.post<{ Params: IdParams }>('/v1/recordings/:id/complete', { onRequest: authenticate }, async (request) => {
    return ingest.complete(dockOf(request), request.params.id);
  });

  app.post<{ Params: IdParams }>('/v1/recordings/:id/possession', { onRequest: authenticate }, async (request) => {
    const body = request.body as unknown;
    if (isStream(body) || typeof body === 'string') throw new ProblemError('unsupported_media_type', 'send the challenge with Content-Type: application/json');
    const errors = body === null || typeof body !== 'object' || Array.isArray(body) ? [] : challengeValidator.errors(body);
    if (body === null || typeof body !== 'object' || Array.isArray(body) || errors.length) {
      const first = errors[0];
      throw new ProblemError('invalid_challenge', first ? `${first.instancePath || '(challenge)'} ${first.message ?? 'is invalid'}` : 'send {"nonce": "<64 hex>", "segments": [index, ...]}');
    }
    return ingest.possess(dockOf(request), request.params.id, body as PossessionChallenge);
  });

  // A dock token lists its own recordings (all at once, or in pages with limit/cursor); the admin
  // token lists any dock's, always in bounded pages (operator/routes.ts).
  const adminOrDock = async (request: FastifyRequest, reply: FastifyReply) => {
    if (deps.admin?.matches(request.headers.authorization)) return;
    await authenticate(request, reply);
  };
  app.get<{ Querystring: OperatorQuery }>('/v1/recordings', { onRequest: adminOrDock }, async (request) => {
    const query = request.query;
    if (!request.dockId) return recordingsPage(deps.catalog, query);
    // Anything beyond device and state (a page, another filter) is the catalog's: never ignored.
    if (Object.keys(query).some((key) => key !== 'device' && key !== 'state')) return recordingsPage(deps.catalog, query, dockOf(request));
    const { device, state } = query;
    if (device !== undefined && (typeof device !== 'string' || device.length > 200)) throw new ProblemError('bad_request', 'device must be given once, at most 200 characters');
    if (state !== undefined && state !== 'receiving' && state !== 'complete') throw new ProblemError('bad_request', 'state must be receiving or complete');
    return { recordings: await ingest.list(dockOf(request), { ...(device !== undefined ? { device } : {}), ...(state !== undefined ? { state } : {}) }) };
  });

  app.get<{ Params: IdParams }>('/v1/recordings/:id', { onRequest: authenticate }, async (request) => {
    return ingest.get(dockOf(request), request.params.id);
  });

  app.get<{ Params: IdParams }>('/v1/recordings/:id/content', { onRequest: authenticate }, async (request, reply) => {
    const { manifest, open } = await ingest.content(dockOf(request), request.params.id);
    const size = manifest.file.size;
    reply.header('Accept-Ranges', 'bytes');
    reply.header('Repr-Digest', formatDigestHeader(manifest.file.sha256));
    reply.header('ETag', `"${manifest.file.sha256}"`);
    reply.type('application/octet-stream');
    const range = parseRange(request.headers.range, size);
    if (range.kind === 'unsatisfiable') {
      reply.header('Content-Range', `bytes */${size}`);
      throw new ProblemError('range_not_satisfiable', `the file has ${size} bytes`);
    }
    if (range.kind === 'partial') {
      reply.code(206);
      reply.header('Content-Range', `bytes ${range.start}-${range.end}/${size}`);
      reply.header('Content-Length', String(range.end - range.start + 1));
      return sendStream(reply, request, open(range.start, range.end));
    }
    reply.header('Content-Length', String(size));
    return sendStream(reply, request, size === 0 ? open(1, 0) : open(0, size - 1));
  });

  // An attachment, byte-exact, verified as it streams (whole: companions are read whole).
  app.get<{ Params: AttachmentParams }>('/v1/recordings/:id/attachments/:a', { onRequest: authenticate }, async (request, reply) => {
    const { attachment, open } = await ingest.attachmentContent(dockOf(request), request.params.id, request.params.a);
    reply.header('Repr-Digest', formatDigestHeader(attachment.sha256));
    reply.header('ETag', `"${attachment.sha256}"`);
    reply.header('Content-Disposition', `attachment; filename*=UTF-8''${encodeURIComponent(attachment.name).replace(/'/g, '%27')}`);
    reply.type('application/octet-stream');
    reply.header('Content-Length', String(attachment.size));
    return sendStream(reply, request, attachment.size === 0 ? open(1, 0) : open(0, attachment.size - 1));
  });
}

function sendStream(reply: FastifyReply, request: FastifyRequest, stream: Readable) {
  // HEAD: the GET's headers, its Content-Length included (an empty stream: with no payload at all
  // Fastify would answer Content-Length: 0).
  if (request.method === 'HEAD') {
    stream.destroy();
    return reply.send(Readable.from([]));
  }
  return reply.send(stream);
}

function isStream(value: unknown): value is Readable {
  return typeof value === 'object' && value !== null && typeof (value as Readable).pipe === 'function';
}
