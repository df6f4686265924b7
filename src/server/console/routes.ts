/**
 * The evidence console at /console (docs/console.md): sign-in, the recordings list, a recording's
 * page (player, facts, GPS, manifest, receipt, custody timeline, checks), playback from the original
 * bytes (HLS byte ranges / Range), downloads, and the admin pages. Every view and download is a
 * custody event. State is read through the RecordingStore / BlobStore / CustodyChain interfaces.
 */
import { mkdtemp, open as openFile, readFile, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { InputError } from '../../errors.js';
import type { Logger } from '../../log.js';
import { posterFrame } from '../../media/poster.js';
import { isValidId, type RecordingManifest, type SegmentPlanEntry } from '../../protocol/types.js';
import type { CustodyEntry } from '../custody/custodyLog.js';
import type { IngestService } from '../ingest.js';
import type { Catalog, RecordingFilter, RecordingSummary } from '../operator/catalog.js';
import { describeNotHeld, heldNow, type HeldNow } from '../operator/heldNow.js';
import { shownCardText, truncationNote } from '../operator/cardText.js';
import { formatRanges } from '../operator/sequence.js';
import { parseRange } from '../range.js';
import type { ServerKey } from '../trust/serverKey.js';
import { readRecordings, type CustodyChain, type RecordingStore } from '../state.js';
import type { BlobStore, StoredRecording } from '../store/store.js';
import { drainVerified, isBlobIntegrityError } from '../store/verifiedRead.js';
import { SERVER_ERROR_CODES } from '../errorCodes.js';
import { staticChecks, type Check } from './checks.js';
import { ContentChecks } from './contentChecks.js';
import { gpsPoints, gpsSvg } from './gps.js';
import { buildPlaylist, fmp4HeaderLength, heldPrefix, playbackKind, type PlaybackKind } from './hls.js';
import { formatBytesShort, formatSeconds, html, page, sendPage, type Html, type Viewer } from './html.js';
import { Sessions, type Session } from './sessions.js';
import { checkPassword, decoyHash, userKey, UserStore, type UserRecord } from './users.js';

export const COOKIE = 'bodycam_console';
/** Rows a list page shows; each complete row's stored segments are looked for (a stat each) on every view. */
const PAGE_SIZE = 50;
/** Segment stats a list page makes at most; a row past them says it was not checked on this view (its page checks it). */
const LIST_STAT_BUDGET = 2000;
const TIMELINE_LIMIT = 2000;
/** A media answer checks the blobs it touches before its first byte, up to this many bytes of them (then each blob is still verified as it streams). */
const PRECHECK_BYTES = 64 * 1024 * 1024;

export interface ConsoleDeps {
  dataDir: string;
  recordings: RecordingStore;
  store: BlobStore;
  ingest: IngestService;
  custody: CustodyChain;
  catalog: Catalog;
  serverKey: ServerKey;
  secure: boolean;
  log: Logger;
  sessions?: Sessions;
  /** How long a list page waits for the catalog being built at start-up before saying so (default 1000 ms). */
  catalogWaitMs?: number;
  /** How long a recording page waits for its content check before showing it as running (default 1000 ms). */
  contentCheckWaitMs?: number;
}

declare module 'fastify' {
  interface FastifyRequest { consoleSession?: Session & { id: string } }
}

const here = dirname(fileURLToPath(import.meta.url));
const requireHere = createRequire(import.meta.url);

export function registerConsole(app: FastifyInstance, deps: ConsoleDeps): { sessions: Sessions } {
  const users = new UserStore(deps.dataDir);
  const sessions = deps.sessions ?? new Sessions();
  const contentChecks = new ContentChecks({ store: deps.store, open: async (record) => (await deps.ingest.content(record.manifest.dock.id, record.manifest.recordingId)).open, ...(deps.contentCheckWaitMs !== undefined ? { waitMs: deps.contentCheckWaitMs } : {}) });
  const headerLengths = new Map<string, number | null>();
  const posters = new Map<string, Buffer | null>();
  const viewedInSession = new Map<string, Set<string>>();
  const loggedInSession = new Map<string, Map<string, Promise<void>>>();

  const cookieOf = (request: FastifyRequest): string | undefined => {
    const header = request.headers.cookie ?? '';
    for (const part of header.split(';')) {
      const [k, ...v] = part.trim().split('=');
      if (k === COOKIE) return v.join('=');
    }
    return undefined;
  };
  const setCookie = (reply: FastifyReply, value: string, maxAge: number) => {
    reply.header('Set-Cookie', `${COOKIE}=${value}; Path=/console; HttpOnly; SameSite=Strict; Max-Age=${maxAge}${deps.secure ? '; Secure' : ''}`);
  };
  const viewerOf = (s: Session): Viewer => ({ name: s.name, role: s.role, csrf: s.csrf });
  /** The catalog refreshed; while it is first being built (after a start) a page that says how far and reloads itself (503). */
  const catalogReady = async (reply: FastifyReply, session: Session, title: string): Promise<boolean> => {
    if (await deps.catalog.refreshWithin(deps.catalogWaitMs ?? 1000)) return true;
    const progress = deps.catalog.building;
    reply.header('Retry-After', '2');
    void sendPage(reply, 503, page(title, viewerOf(session), html`<p class="building" id="building">The server is reading its recordings after a start:
      ${progress && progress.total > 0 ? `${progress.read} of ${progress.total} records read` : 'listing them'}. This page reloads by itself.</p>`, { reloadSeconds: 2 }));
    return false;
  };

  /**
   * The users file, or a page that says sign-in is closed: a damaged file or one others may write
   * signs nobody in (fail closed), and the visitor learns only that, the operator the reason in the log.
   */
  const usersOr503 = async (reply: FastifyReply): Promise<Map<string, UserRecord> | undefined> => {
    try {
      return await users.load();
    } catch (error) {
      if (!(error instanceof InputError && error.code === 'E_USERS_FILE')) throw error;
      deps.log.error('console sign-in closed: the users file is unusable', { err: error });
      void sendPage(reply, 503, page('Sign-in closed', undefined, html`<p class="error">Sign-in is closed: the console's users file cannot be used. The server's log says why.</p>`));
      return undefined;
    }
  };

  /** The signed-in person (still in the users file with the same role), or a redirect to sign-in. */
  const signedIn = async (request: FastifyRequest, reply: FastifyReply): Promise<Session | undefined> => {
    const id = cookieOf(request);
    const session = sessions.get(id);
    if (session) {
      const known = await usersOr503(reply);
      if (!known) return undefined;
      const user = known.get(userKey(session.name));
      if (user && user.role === session.role) {
        request.consoleSession = { ...session, id: id! };
        return session;
      }
      sessions.destroy(id);
    }
    const next = request.url.startsWith('/console/') && request.method === 'GET' ? `?next=${encodeURIComponent(request.url)}` : '';
    void reply.code(303).header('Location', `/console/login${next}`).send();
    return undefined;
  };
  const adminOnly = (session: Session, reply: FastifyReply): boolean => {
    if (session.role === 'admin') return true;
    void sendPage(reply, 403, page('Forbidden', viewerOf(session), html`<p class="error">This page is for admins. You are signed in as ${session.name} (${session.role}).</p>`));
    return false;
  };
  /** A POST must come from this server's own pages: Origin (or Referer) equal to the Host it was sent to. */
  const sameOrigin = (request: FastifyRequest): boolean => {
    const host = request.headers.host;
    const origin = request.headers.origin ?? (request.headers.referer ? safeOrigin(request.headers.referer) : undefined);
    if (!host || !origin) return false;
    return origin === `${deps.secure ? 'https' : 'http'}://${host}`;
  };

  /** `taken`: the bytes the answer carries (whole file or one range) and how many, for an entry about the content itself. */
  const custodyEvent = async (event: 'viewed' | 'downloaded', session: Session, record: StoredRecording, via: string, taken?: { range: string; bytes: number }) => {
    await deps.custody.append({ event, recordingId: record.manifest.recordingId, dockId: record.manifest.dock.id, sha256: record.manifest.file.sha256 },
      () => ({ extra: { by: session.name, role: session.role, via, ...(taken ?? {}) }, value: undefined }));
  };

  const loadRecording = async (request: FastifyRequest<{ Params: { dock: string; id: string } }>, reply: FastifyReply, session: Session) => {
    const { dock, id } = request.params;
    const record = isValidId(dock) && isValidId(id) ? await deps.recordings.getRecording(dock, id) : undefined;
    if (!record) {
      void sendPage(reply, 404, page('Not found', viewerOf(session), html`<p class="error">Dock ${dock} has no recording ${id}.</p>`));
      return undefined;
    }
    return record;
  };
  /** The signed-in person and the recording the path names; undefined when either answered already (sign-in page, 404). */
  const signedInRecording = async (request: FastifyRequest<{ Params: { dock: string; id: string } }>, reply: FastifyReply) => {
    const session = await signedIn(request, reply);
    const record = session ? await loadRecording(request, reply, session) : undefined;
    return session && record ? { session, record } : undefined;
  };

  // ---- assets -----------------------------------------------------------------------------
  const assets: Record<string, { path: () => string; type: string }> = {
    'console.css': { path: () => join(here, 'assets', 'console.css'), type: 'text/css; charset=utf-8' },
    // Compiled by tsconfig.browser.json into <package>/dist/console-browser (the same path from src/ and dist/).
    'player.js': { path: () => join(here, '..', '..', '..', 'dist', 'console-browser', 'player.js'), type: 'text/javascript; charset=utf-8' },
    'hls.js': { path: () => requireHere.resolve('hls.js/dist/hls.min.js'), type: 'text/javascript; charset=utf-8' },
  };
  app.get<{ Params: { name: string } }>('/console/assets/:name', async (request, reply) => {
    const asset = Object.hasOwn(assets, request.params.name) ? assets[request.params.name] : undefined;
    if (!asset) return reply.code(404).type('text/plain').send('no such asset\n');
    reply.header('X-Content-Type-Options', 'nosniff').header('Cache-Control', 'max-age=300');
    return reply.type(asset.type).send(await readAsset(asset.path()));
  });

  // ---- sign-in ----------------------------------------------------------------------------
  app.get('/console', async (_request, reply) => reply.code(303).header('Location', '/console/recordings').send());

  const loginPage = (message?: string, next?: string) => page('Sign in', undefined, html`
    ${message ? html`<p class="error" id="login-error">${message}</p>` : ''}
    <form method="post" action="/console/login" class="login">
      <label>Name <input name="name" autocomplete="username" required maxlength="64"></label>
      <label>Password <input name="password" type="password" autocomplete="current-password" required maxlength="1024"></label>
      <input type="hidden" name="next" value="${next ?? ''}">
      <button type="submit" id="sign-in">Sign in</button>
    </form>`);

  app.get<{ Querystring: { next?: string } }>('/console/login', async (request, reply) => sendPage(reply, 200, loginPage(undefined, safeNext(request.query.next))));

  app.post('/console/login', async (request, reply) => {
    if (!sameOrigin(request)) return sendPage(reply, 403, loginPage('This form must be sent from the console\'s own page.'));
    const form = await readForm(request);
    const name = form.get('name') ?? '';
    const password = form.get('password') ?? '';
    const ip = request.ip;
    // One counter per user whatever the case typed (userKey); no user name is longer than 64, which keeps a flood of huge names small.
    const nameKey = `name:${userKey(name.slice(0, 64))}`;
    const locked = sessions.lockedFor(nameKey, `ip:${ip}`);
    if (locked > 0) {
      deps.log.warn('console sign-in refused: locked out', { name: name.slice(0, 64), ip });
      reply.header('Retry-After', String(locked));
      return sendPage(reply, 429, loginPage(`Too many failed sign-ins. Try again in ${Math.ceil(locked / 60)} min.`));
    }
    const known = await usersOr503(reply);
    if (!known) return reply;
    const user = known.get(userKey(name));
    const ok = await checkPassword(password, user?.password ?? await decoyHash()) && user !== undefined;
    if (!ok || !user) {
      sessions.fail(nameKey, `ip:${ip}`);
      deps.log.warn('console sign-in failed', { name: name.slice(0, 64), ip });
      return sendPage(reply, 401, loginPage('Wrong name or password.', safeNext(form.get('next'))));
    }
    sessions.succeed(nameKey, `ip:${ip}`);
    // A new id at every sign-in, and the one the browser presented (someone else's on a shared computer, or one planted) ends.
    sessions.destroy(cookieOf(request));
    const { id } = sessions.create(user.name, user.role);
    deps.log.info('console sign-in', { name: user.name, role: user.role, ip });
    setCookie(reply, id, Math.round(sessions.idleMs / 1000) * 24);
    return reply.code(303).header('Location', safeNext(form.get('next')) ?? '/console/recordings').send();
  });

  app.post('/console/logout', async (request, reply) => {
    const session = sessions.get(cookieOf(request));
    const form = await readForm(request);
    if (session && (!sameOrigin(request) || form.get('csrf') !== session.csrf)) return sendPage(reply, 403, page('Forbidden', viewerOf(session), html`<p class="error">Sign-out must come from the console's own page.</p>`));
    sessions.destroy(cookieOf(request));
    setCookie(reply, '', 0);
    return reply.code(303).header('Location', '/console/login').send();
  });

  // ---- recordings ---------------------------------------------------------------------------
  app.get<{ Querystring: Record<string, string | undefined> }>('/console/recordings', async (request, reply) => {
    const session = await signedIn(request, reply);
    if (!session) return reply;
    const q = request.query;
    const filter: RecordingFilter = {};
    for (const key of ['dock', 'device', 'state', 'integrity', 'category', 'day'] as const) {
      const value = q[key];
      if (typeof value === 'string' && value !== '' && value.length <= 200) filter[key] = value;
    }
    if (!(await catalogReady(reply, session, 'Recordings'))) return reply;
    const pageNo = Math.max(0, Math.min(1e6, Number.parseInt(q.page ?? '0', 10) || 0));
    const { items: shown, total: matching } = deps.catalog.newest(filter, pageNo * PAGE_SIZE, PAGE_SIZE);
    const heldOf = await heldOfRows(shown);
    const held = deps.catalog.size;
    const facets = deps.catalog.facets();
    const select = (name: keyof RecordingFilter, label: string, values: string[]) => html`<label>${label} <select name="${name}"><option value="">any</option>${values.map((v) => html`<option${v === filter[name] ? html` selected` : ''}>${v}</option>`)}</select></label>`;
    const query = (p: number) => '?' + new URLSearchParams({ ...Object.fromEntries(Object.entries(filter)), page: String(p) }).toString();
    const body = html`
    <form method="get" class="filters">
      ${select('device', 'Camera', facets.devices)} ${select('dock', 'Dock', facets.docks)}
      <label>Day <input type="date" name="day" value="${filter.day ?? ''}"></label>
      ${select('state', 'State', ['receiving', 'complete', 'stale'])} ${select('integrity', 'Integrity', facets.integrity)}
      ${select('category', 'Category', facets.categories)} <button type="submit">Filter</button>
    </form>
    <p class="count" id="count">${matching} of ${held} recordings${matching > PAGE_SIZE ? `, page ${pageNo + 1} of ${Math.ceil(matching / PAGE_SIZE)}` : ''}</p>
    <table class="recordings" id="recordings"><thead><tr><th>Arrived</th><th>Camera</th><th>Recording</th><th>Dock</th><th>Category</th><th>Duration</th><th>Size</th><th>Arrival</th><th>Verification</th></tr></thead><tbody>
    ${shown.map((s) => html`<tr data-id="${s.id}" data-dock="${s.dockId}"><td>${s.createdAt.replace('T', ' ').slice(0, 19)}</td><td>${s.deviceSerial}</td>
      <td><a href="/console/recordings/${encodeURIComponent(s.dockId)}/${encodeURIComponent(s.id)}">${s.id}</a></td><td>${s.dockId}</td><td>${s.category ?? ''}${s.textLengths?.category !== undefined ? truncationNote(s.textLengths.category) : ''}</td>
      <td>${formatSeconds(s.durationSeconds)}</td><td>${formatBytesShort(s.size)}</td>
      ${rowHeld(s, heldOf.get(s))}</tr>`)}
    </tbody></table>
    <p class="pages">${pageNo > 0 ? html`<a href="${query(pageNo - 1)}">← newer</a>` : ''} ${(pageNo + 1) * PAGE_SIZE < matching ? html`<a href="${query(pageNo + 1)}">older →</a>` : ''}</p>`;
    return sendPage(reply, 200, page('Recordings', viewerOf(session), body));
  });

  /**
   * The complete rows' stored segments looked for now (hasBlob: a stat each, no read; records read in one
   * batch), at most LIST_STAT_BUDGET stats a page: a blob deleted or moved away after the receipt shows
   * on the list at the next view. A row without an answer (receiving, or past the budget) is not in the map.
   */
  const heldOfRows = async (rows: readonly RecordingSummary[]): Promise<Map<RecordingSummary, HeldNow | 'unchecked'>> => {
    const out = new Map<RecordingSummary, HeldNow | 'unchecked'>();
    const complete = rows.filter((s) => s.state === 'complete');
    if (complete.length === 0) return out;
    const records = await readRecordings(deps.recordings, complete.map((s) => ({ dockId: s.dockId, recordingId: s.id })));
    let budget = LIST_STAT_BUDGET;
    // 4 rows at a time, each 16 stats at a time: at most 64 in flight (on S3 each is a HEAD request).
    for (let i = 0; i < complete.length; i += 4) {
      await Promise.all(complete.slice(i, i + 4).map(async (s, j) => {
        const record = records[i + j];
        if (!record) return;
        const stats = record.manifest.segments.length + (record.manifest.attachments ?? []).reduce((n, a) => n + a.segments.length, 0);
        if (stats > budget) { out.set(s, 'unchecked'); return; }
        budget -= stats;
        out.set(s, await heldNow(record.manifest, deps.store));
      }));
    }
    return out;
  };
  /** A list row's arrival and verification cells: never "verified" for a recording whose stored bytes are not all held. */
  const rowHeld = (s: RecordingSummary, held: HeldNow | 'unchecked' | undefined): Html => {
    const lost = held !== undefined && held !== 'unchecked' && held.notHeldCount > 0;
    const received = held !== undefined && held !== 'unchecked' ? held.held : s.segmentsReceived;
    return html`<td><progress max="${s.segmentCount}" value="${received}"></progress> ${received}/${s.segmentCount}${s.stale ? html` <span class="badge warn">stale</span>` : ''}</td>
      <td><span class="badge ${s.state === 'complete' ? 'ok' : 'pending'}">${s.state === 'complete' ? 'receipt issued' : 'receiving'}</span> ${lost
        ? html`<span class="badge bad lost">bytes missing: ${held.held} of ${held.segments} segments held${held.notHeldCount > held.segments - held.held ? ` (and ${held.notHeldCount - (held.segments - held.held)} attachment segments)` : ''}</span>`
        : held === 'unchecked' ? html`<span class="badge pending">${s.integrity} at the dock; stored bytes not checked on this view (open it)</span>`
          : html`<span class="badge ${s.integrity === 'verified' ? 'ok' : 'warn'}">${s.integrity}</span>`}</td>`;
  };

  /** Bytes before the first fragment (fMP4 header) of a recording's first segment, read verified once. */
  const headerLengthOf = async (manifest: RecordingManifest, held: boolean): Promise<number | undefined> => {
    const first = manifest.segments[0];
    if (!first || !held) return undefined;
    if (!headerLengths.has(first.sha256)) {
      const chunks: Buffer[] = [];
      for await (const chunk of deps.store.readBlob(first.sha256)) chunks.push(chunk as Buffer);
      headerLengths.set(first.sha256, fmp4HeaderLength(Buffer.concat(chunks)) ?? null);
      if (headerLengths.size > 10_000) headerLengths.delete(headerLengths.keys().next().value!);
    }
    return headerLengths.get(first.sha256) ?? undefined;
  };

  const playbackOf = async (record: StoredRecording) => {
    const missing = await deps.ingest.missing(record.manifest, record.receipt !== undefined);
    const held = heldPrefix(record.manifest.segments, missing);
    const headerLength = await headerLengthOf(record.manifest, held.length > 0);
    const kind = playbackKind(record.manifest, headerLength);
    const codec = record.manifest.file.media?.streams.find((s) => s.type === 'video')?.codec;
    // With nothing held the container's layout is unknown (an fMP4's header is in its first segment): say that, not "non-fragmented".
    const why = held.length === 0 ? (record.receipt ? 'No segment of this recording can be read: the first one failed the integrity check at rest or is gone.'
      : 'No segment has arrived yet: the player appears once the first one is held (reload the page).')
      : codec === 'hevc' || codec === 'h265' ? 'The video is HEVC (H.265), which this browser (Chromium) cannot decode. The original bytes are unchanged: download them to play in a player with HEVC.'
      : kind === 'm2ts' ? 'The file is M2TS (192-byte packets), which browsers cannot play. The original bytes are unchanged: download them.'
        : kind === 'none' ? 'The container is not one a browser plays.'
          : kind === 'mp4' && record.receipt === undefined ? 'A non-fragmented MP4 plays once every segment has arrived.' : undefined;
    return { missing, held, headerLength, kind, why, codec };
  };

  app.get<{ Params: { dock: string; id: string } }>('/console/recordings/:dock/:id', async (request, reply) => {
    const opened = await signedInRecording(request, reply);
    if (!opened) return reply;
    const { session, record } = opened;
    const { manifest, receipt } = record;
    await custodyEvent('viewed', session, record, 'recording page');
    markViewed(session, manifest.dock.id, manifest.recordingId);
    const play = await playbackOf(record);
    // A complete recording's segment that is not held was found damaged at rest (moved aside) or lost.
    const damaged = record.receipt ? play.missing : [];
    // Looked for now (a stat each, attachments too): the Facts never say "verified" over bytes the server does not hold.
    const stored = record.receipt ? await heldNow(manifest, deps.store) : undefined;
    const lost = stored !== undefined && stored.notHeldCount > 0;
    const base = `/console/recordings/${encodeURIComponent(manifest.dock.id)}/${encodeURIComponent(manifest.recordingId)}`;
    await deps.catalog.refreshWithin(deps.catalogWaitMs ?? 1000);
    const checks: Check[] = [...staticChecks(record, deps.serverKey.publicKeyPem, deps.catalog.cameraKeys(manifest.device.serial))];
    checks.unshift(await contentChecks.view(record));
    const timeline = deps.custody.entriesAbout ? await deps.custody.entriesAbout(manifest.dock.id, manifest.recordingId, manifest.segments.map((s) => s.sha256), TIMELINE_LIMIT) : undefined;
    const sidecar = manifest.device.sidecar;
    // Sidecar values are whatever the camera wrote: shown as text, an object as its JSON (String() of {"toString": 1} throws),
    // cut to CARD_TEXT_MAX characters (the whole value is in the manifest below, and byte-exact in the sidecar).
    const shown = (value: unknown) => shownCardText(typeof value === 'object' && value !== null ? JSON.stringify(value) : String(value), 'the manifest below');
    const fact = (label: string, value: unknown) => (value === undefined || value === '' ? '' : html`<tr><th>${label}</th><td>${shown(value)}</td></tr>`);
    const markers = Array.isArray(sidecar?.['markers'])
      ? (sidecar!['markers'] as unknown[]).filter((m): m is { t?: unknown; label?: unknown } => typeof m === 'object' && m !== null && !Array.isArray(m)).slice(0, 200) : [];
    const shownManifest = { ...manifest, device: { ...manifest.device, ...(manifest.device.sidecarBase64 ? { sidecarBase64: `(${manifest.device.sidecarBase64.length} base64 characters)` } : {}) } };
    const player = play.why || play.kind === 'none'
      ? html`<div class="no-play" id="no-play">${play.held.length > 0 ? html`<img src="${base}/poster.jpg" alt="First frame" id="poster" width="640">` : ''}<p class="why" id="why">${play.why ?? ''}</p></div>`
      : play.kind === 'mp4'
        ? html`<video id="player" controls muted playsinline width="640" src="${base}/media" data-kind="mp4"></video>`
        : html`<video id="player" controls muted playsinline width="640" data-kind="${play.kind}" data-playlist="${base}/playlist.m3u8"></video>`;
    const body = html`
    <section class="top"><div class="player">${player}
      <p>${play.held.length} of ${manifest.segments.length} segments held${record.receipt ? '' : ' (still arriving: the player follows as segments arrive)'} ·
      ${damaged.length > 0 ? 'no download: see below' : record.receipt ? html`<a href="${base}/download" id="download">Download original (${formatBytesShort(manifest.file.size)})</a>` : 'download once complete'}</p>
      ${damaged.length > 0 ? html`<p class="error" id="damaged">${damaged.length === 1 ? 'Segment' : 'Segments'} ${damaged.slice(0, 20).join(', ')}${damaged.length > 20 ? ` and ${damaged.length - 20} more` : ''} of this recording failed the integrity check at rest (the stored bytes no longer hash to the manifest's SHA-256) or are gone.
        The server does not serve altered bytes: playback stops before them and the original cannot be downloaded until a verified copy is uploaded again of those bytes is stored again.</p>` : ''}</div>
    <div class="facts"><h2>Facts</h2><table id="facts">
      ${fact('Camera', manifest.device.serial)}${fact('Model', manifest.device.model)}${fact('Officer', sidecar?.['officerId'])}${fact('Agency', sidecar?.['agency'])}
      ${fact('Trigger', sidecar?.['trigger'])}${fact('Category', sidecar?.['category'])}${fact('Started (camera clock)', sidecar?.['startedAt'])}${fact('Ended (camera clock)', sidecar?.['endedAt'])}
      ${fact('Clock offset at docking', manifest.device.clockOffsetMs !== undefined ? `${manifest.device.clockOffsetMs} ms (camera − true time; times are not rewritten)` : undefined)}
      ${fact('File', manifest.file.name)}${fact('Size', `${manifest.file.size} bytes`)}${fact('SHA-256', manifest.file.sha256)}${fact('Duration', formatSeconds(manifest.file.media?.durationSeconds))}
      ${fact('Video', play.codec)}${fact('Integrity', lost
        ? `bytes missing: ${stored.held} of ${stored.segments} segments held: the dock's media check at upload (${manifest.integrity.status}) no longer speaks for the stored bytes`
        : `${manifest.integrity.status}${manifest.integrity.notes.length ? ': ' + manifest.integrity.notes.join('; ') : ''}`)}
      ${stored ? html`<tr id="stored-bytes"><th>Stored bytes</th><td>${lost
        ? html`<span class="badge bad">missing</span> ${stored.held} of ${stored.segments} segments held; not held: ${describeNotHeld(stored.notHeld, stored.notHeldCount)} (deleted, moved away, or found damaged at rest). Restore them from a backup (then <code>bodycam server scrub</code>), or send the recording again from a card that still holds it (<code>bodycam check --resend</code>).`
        : `all ${stored.segments} segments held (each looked for on this view; the content check below re-hashes them)`}</td></tr>` : ''}
      ${fact('Dock', `${manifest.dock.id}${manifest.dock.bay ? ' bay ' + manifest.dock.bay : ''}`)}${fact('Arrived', record.createdAt)}${fact('Receipt issued', record.completedAt)}
      ${markers.length ? html`<tr><th>Markers</th><td><ul class="markers">${markers.map((m) => html`<li>${shown(m.t)} s: ${shown(m.label)}</li>`)}</ul></td></tr>` : ''}
    </table></div>
    <div class="gps-box"><h2>GPS track</h2>${gpsSvg(gpsPoints(sidecar))}</div></section>
    <section><h2>Checks</h2><table class="checks" id="checks"><tbody>${checks.map((c) => html`<tr class="check-${c.result.replace('/', '')}"><th>${c.name}</th><td><span class="badge ${c.result === 'pass' ? 'ok' : c.result === 'fail' ? 'bad' : 'pending'}">${c.result}</span></td><td>${c.detail}</td></tr>`)}</tbody></table></section>
    <section><h2>Custody timeline</h2>${timeline ? timelineTable(timeline, manifest.dock.id, manifest.recordingId) : html`<p class="muted">This state backend cannot list a recording's entries.</p>`}</section>
    <section class="docs"><details><summary>Manifest</summary><pre id="manifest">${JSON.stringify(shownManifest, null, 2)}</pre></details>
    <details><summary>Receipt</summary><pre id="receipt">${receipt ? JSON.stringify(receipt, null, 2) : 'no receipt yet'}</pre></details></section>`;
    return sendPage(reply, 200, page(`${manifest.device.serial} · ${manifest.recordingId}`, viewerOf(session), body, { scripts: ['/console/assets/hls.js', '/console/assets/player.js'] }));
  });

  app.get<{ Params: { dock: string; id: string } }>('/console/recordings/:dock/:id/playlist.m3u8', async (request, reply) => {
    const opened = await signedInRecording(request, reply);
    if (!opened) return reply;
    const { session, record } = opened;
    const play = await playbackOf(record);
    if (play.kind !== 'fmp4' && play.kind !== 'ts') return reply.code(404).type('text/plain').send('no playlist: this recording plays without HLS or not in a browser\n');
    const base = `/console/recordings/${encodeURIComponent(record.manifest.dock.id)}/${encodeURIComponent(record.manifest.recordingId)}`;
    reply.header('Cache-Control', 'no-store').header('X-Content-Type-Options', 'nosniff');
    return reply.type('application/vnd.apple.mpegurl').send(buildPlaylist({
      manifest: record.manifest, kind: play.kind, ...(play.headerLength !== undefined ? { headerLength: play.headerLength } : {}),
      held: play.held, complete: record.receipt !== undefined, mediaUrl: `${base}/media`,
    }));
  });

  /** The original bytes, by Range; a range is served only when every segment it touches is held. */
  const serveBytes = async (request: FastifyRequest<{ Params: { dock: string; id: string } }>, reply: FastifyReply, download: boolean) => {
    const opened = await signedInRecording(request, reply);
    if (!opened) return reply;
    const { session, record } = opened;
    const { manifest } = record;
    const size = manifest.file.size;
    if (download && !record.receipt) return reply.code(409).type('text/plain').send('the recording is still arriving; download it once complete\n');
    reply.header('Accept-Ranges', 'bytes').header('Cache-Control', 'no-store').header('X-Content-Type-Options', 'nosniff');
    const range = parseRange(request.headers.range, size);
    if (range.kind === 'unsatisfiable') return reply.code(416).header('Content-Range', `bytes */${size}`).send();
    const start = range.kind === 'partial' ? range.start : 0;
    const end = range.kind === 'partial' ? range.end : size - 1;
    const touched = manifest.segments.filter((s) => s.offset <= end && s.offset + s.length - 1 >= start);
    // A segment of a complete recording that is not held any more was found damaged at rest (moved
    // aside by a verified read) or lost: say so before any header, never start an answer that would be cut.
    const missing = new Set(await deps.ingest.missing(manifest, record.receipt !== undefined));
    const gone = touched.filter((s) => missing.has(s.index));
    if (gone.length > 0) {
      if (!record.receipt) return reply.code(416).header('Content-Range', `bytes */${size}`).type('text/plain').send('those bytes have not arrived yet\n');
      return damagedAnswer(reply, record, gone.map((s) => s.index));
    }
    // Check every blob the answer touches (up to PRECHECK_BYTES) through the verified read before the
    // first byte goes out: the streaming read below holds back only each blob's last chunk, so without
    // this the first MiBs of a blob damaged at rest could reach the player before the hash fails.
    const damaged = await precheck(touched);
    if (damaged.length > 0) return damagedAnswer(reply, record, damaged);
    let open: (start: number, end: number) => Readable;
    if (record.receipt) {
      open = (await deps.ingest.content(manifest.dock.id, manifest.recordingId)).open;
    } else {
      open = (from, to) => Readable.from((async function* () {
        for (const s of touched) {
          const a = Math.max(from, s.offset) - s.offset;
          const b = Math.min(to, s.offset + s.length - 1) - s.offset;
          yield* deps.store.readBlob(s.sha256, a, b, s.length) as AsyncIterable<Buffer>;
        }
      })(), { objectMode: false });
    }
    // Custody says who took which bytes (docs/console.md "Custody of the bytes"), written before the first
    // byte leaves (an append that fails answers 500, nothing served). A HEAD, a 416 or a refused answer takes none.
    const length = size === 0 ? 0 : end - start + 1;
    if (request.method !== 'HEAD') {
      const taken = { range: range.kind === 'partial' && length < size ? `${start}-${end}` : 'whole', bytes: length };
      const key = `${manifest.dock.id}/${manifest.recordingId}`;
      // A download (or the whole original from …/media, which no player asks for): one entry per distinct range a session
      // takes. The player's range requests (many per minute of video): one entry per session and recording, the first range named.
      const whole = download || range.kind === 'whole';
      const note = whole ? `taken:${key}:${taken.range}` : `played:${key}`;
      await loggedOnce(session, note, () => custodyEvent(whole ? 'downloaded' : 'viewed', session, record, whole ? (download ? 'download' : 'media') : 'playback', taken));
    }
    reply.header('ETag', `"${manifest.file.sha256}"`);
    if (download) reply.header('Content-Disposition', `attachment; filename="${manifest.file.name.replace(/[^A-Za-z0-9._-]/g, '_')}"`);
    reply.type(download ? 'application/octet-stream' : mediaType(manifest));
    if (range.kind === 'partial') reply.code(206).header('Content-Range', `bytes ${start}-${end}/${size}`);
    reply.header('Content-Length', String(length));
    // HEAD: the headers a GET would get, with its Content-Length (an empty stream: Fastify's HEAD answer keeps the header then).
    if (request.method === 'HEAD') return reply.send(Readable.from([]));
    return reply.send(size === 0 ? Readable.from([]) : open(start, end));
  };
  /** Indexes of the touched segments whose blob fails its verified read now (each then marked missing by the store), up to PRECHECK_BYTES of them. */
  const precheck = async (touched: readonly SegmentPlanEntry[]): Promise<number[]> => {
    const damaged: number[] = [];
    let checked = 0;
    for (const s of touched) {
      if (checked >= PRECHECK_BYTES) break;
      checked += s.length;
      try {
        await drainVerified(deps.store.readBlob(s.sha256, undefined, undefined, s.length));
      } catch (error) {
        // A blob of another length than its plan says (a record altered at rest) is not served either.
        if (!isBlobIntegrityError(error) && (error as { code?: unknown }).code !== SERVER_ERROR_CODES.storedLength) throw error;
        deps.log.error('console: a stored blob failed its verified read; not served, marked missing', { sha256: s.sha256, index: s.index, err: error });
        damaged.push(s.index);
      }
    }
    return damaged;
  };
  const damagedAnswer = (reply: FastifyReply, record: StoredRecording, indexes: number[]) => {
    const { manifest } = record;
    deps.log.error('console: bytes of a recording not served, a segment is damaged or missing at rest', { dockId: manifest.dock.id, recordingId: manifest.recordingId, segments: indexes });
    return reply.code(500).header('Cache-Control', 'no-store').type('text/plain')
      .send(`${indexes.length === 1 ? 'segment' : 'segments'} ${indexes.slice(0, 20).join(', ')}${indexes.length > 20 ? ` and ${indexes.length - 20} more` : ''} of ${manifest.recordingId} failed the integrity check at rest (or are gone): those bytes are not served\n`);
  };
  app.get<{ Params: { dock: string; id: string } }>('/console/recordings/:dock/:id/media', (request, reply) => serveBytes(request, reply, false));
  app.get<{ Params: { dock: string; id: string } }>('/console/recordings/:dock/:id/download', (request, reply) => serveBytes(request, reply, true));

  /**
   * A poster frame made by ffmpeg from a private temp copy of the first held segments (up to 16 MiB), removed right after.
   * One ffmpeg at a time and one per recording state however many ask (a reviewer reloading, many tabs); a failure is
   * kept like a frame (null), so a file ffmpeg cannot read is not run again on every request.
   */
  const makePoster = async (record: StoredRecording, play: Awaited<ReturnType<typeof playbackOf>>): Promise<Buffer | null> => {
    const dir = await mkdtemp(join(tmpdir(), 'bodycam-poster-'));
    try {
      const path = join(dir, 'head' + (play.kind === 'ts' || play.kind === 'm2ts' ? '.ts' : '.mp4'));
      const file = await openFile(path, 'wx', 0o600);
      try {
        let written = 0;
        for (const s of play.held) {
          if (written > 16 * 1024 * 1024) break;
          for await (const chunk of deps.store.readBlob(s.sha256)) { await file.write(chunk as Buffer); written += (chunk as Buffer).length; }
        }
      } finally { await file.close(); }
      return await posterFrame(path);
    } catch (error) {
      deps.log.warn('poster frame failed', { dockId: record.manifest.dock.id, recordingId: record.manifest.recordingId, err: error });
      return null;
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  };
  const posterJobs = new Map<string, Promise<Buffer | null>>();
  let posterQueue: Promise<unknown> = Promise.resolve();
  app.get<{ Params: { dock: string; id: string } }>('/console/recordings/:dock/:id/poster.jpg', async (request, reply) => {
    const opened = await signedInRecording(request, reply);
    if (!opened) return reply;
    const { session, record } = opened;
    const play = await playbackOf(record);
    if (play.held.length === 0) return reply.code(404).type('text/plain').send('no bytes yet\n');
    // A frame of the evidence is the evidence seen: the same custody rule as …/media.
    if (!markViewed(session, record.manifest.dock.id, record.manifest.recordingId)) await custodyEvent('viewed', session, record, 'poster');
    const key = record.manifest.file.sha256 + ':' + play.held.length;
    let jpeg = posters.get(key);
    if (jpeg === undefined) {
      let job = posterJobs.get(key);
      if (!job) {
        if (posterJobs.size >= 8) return reply.code(503).header('Retry-After', '5').type('text/plain').send('the server is busy making other poster frames; try again shortly\n');
        job = posterQueue.then(() => makePoster(record, play));
        posterQueue = job.catch(() => undefined);
        posterJobs.set(key, job);
        void job.finally(() => posterJobs.delete(key)).catch(() => undefined);
      }
      jpeg = await job;
      if (posters.size > 500) posters.delete(posters.keys().next().value!);
      posters.set(key, jpeg);
    }
    if (jpeg === null) return reply.code(500).header('Cache-Control', 'no-store').type('text/plain').send('no poster frame could be made from the first segments\n');
    reply.header('Cache-Control', 'no-store').header('X-Content-Type-Options', 'nosniff');
    return reply.type('image/jpeg').send(jpeg);
  });

  // ---- admin ------------------------------------------------------------------------------
  app.get('/console/docks', async (request, reply) => {
    const session = await signedIn(request, reply);
    if (!session || !adminOnly(session, reply)) return reply;
    if (!(await catalogReady(reply, session, 'Docks'))) return reply;
    const docks = await deps.catalog.docks();
    const body = html`<p>A recording still receiving after ${Math.round(deps.catalog.staleAfterMs / 3600_000)} h is stale.</p>
    <table id="docks"><thead><tr><th>Dock</th><th>Last seen</th><th>Key id</th><th>Recordings</th><th>Bytes</th><th>Bytes today</th><th>In progress</th><th>Stale</th></tr></thead><tbody>
    ${docks.map((d) => html`<tr data-dock="${d.dockId}"><td><a href="/console/recordings?dock=${encodeURIComponent(d.dockId)}">${d.dockId}</a></td><td>${d.lastSeen ?? 'never'}</td><td class="mono">${d.keyId ? d.keyId.slice(0, 16) + '…' : 'none pinned'}</td>
    <td>${d.recordings}</td><td>${formatBytesShort(d.bytes)}</td><td>${formatBytesShort(d.bytesToday)}</td><td>${d.inProgress}</td><td>${d.stale ? html`<span class="badge warn">${d.stale}</span>` : '0'}</td></tr>`)}</tbody></table>`;
    return sendPage(reply, 200, page('Docks', viewerOf(session), body));
  });

  app.get('/console/cameras', async (request, reply) => {
    const session = await signedIn(request, reply);
    if (!session || !adminOnly(session, reply)) return reply;
    if (!(await catalogReady(reply, session, 'Cameras'))) return reply;
    const cameras = deps.catalog.cameras();
    const body = html`<table id="cameras"><thead><tr><th>Camera</th><th>Recordings</th><th>Bytes</th><th>Docks</th><th>Last arrival</th><th>Sequence numbers</th><th>Camera keys</th></tr></thead><tbody>
    ${cameras.map((c) => html`<tr data-camera="${c.serial}"><td><a href="/console/recordings?device=${encodeURIComponent(c.serial)}">${c.serial}</a></td><td>${c.recordings}</td><td>${formatBytesShort(c.bytes)}</td><td>${c.docks.join(', ')}</td><td>${c.lastArrival}</td>
    <td>${!c.sequence ? 'none' : c.sequence.missingCount === 0 ? html`<span class="badge ok">${formatRanges([[c.sequence.lowest, c.sequence.highest]])} complete</span>`
      : html`<span class="badge bad gap">missing ${formatRanges(c.sequence.missing)}${c.sequence.moreRanges ? ` and ${c.sequence.moreRanges} more ranges` : ''} (${c.sequence.missingCount})</span> of ${formatRanges([[c.sequence.lowest, c.sequence.highest]])}`}${c.unnumbered ? ` · ${c.unnumbered} unnumbered` : ''}</td>
    <td class="mono">${c.keys.length > 1 ? html`<span class="badge bad key-changed">key changed</span> ` : ''}${c.keys.map((k) => `${k.keyId.slice(0, 16)}… (first seen ${k.firstSeen}, ${k.recordings})`).join('; ')}</td></tr>`)}</tbody></table>`;
    return sendPage(reply, 200, page('Cameras', viewerOf(session), body));
  });

  /** True when this session had already viewed the recording (so a poster fetch is not a second event). */
  function markViewed(session: Session, dockId: string, id: string): boolean {
    return !firstInSession(session, `${dockId}/${id}`);
  }

  /**
   * The custody entry for `note` of this session, appended the first time and awaited by every request
   * of the same note (one sent alongside the first is served only once the entry is in the chain); a
   * failed append is forgotten, so the next request tries again. Bounded as firstInSession.
   */
  function loggedOnce(session: Session, note: string, append: () => Promise<void>): Promise<void> {
    let notes = loggedInSession.get(session.csrf);
    if (!notes) { notes = new Map(); loggedInSession.set(session.csrf, notes); }
    if (loggedInSession.size > 10_000) loggedInSession.delete(loggedInSession.keys().next().value!);
    let pending = notes.get(note);
    if (!pending) {
      if (notes.size >= 10_000) notes.clear();
      const mine = append();
      const held = notes;
      held.set(note, mine);
      mine.catch(() => { if (held.get(note) === mine) held.delete(note); });
      pending = mine;
    }
    return pending;
  }

  /**
   * True the first time this session does `what` (and notes it). Bounded: at most 10 000 sessions and
   * 10 000 notes each are kept; past that a note is forgotten and the next time is a first again
   * (one custody entry more, never one less).
   */
  function firstInSession(session: Session, what: string): boolean {
    const key = session.csrf;
    let seen = viewedInSession.get(key);
    if (!seen) { seen = new Set(); viewedInSession.set(key, seen); }
    if (viewedInSession.size > 10_000) viewedInSession.delete(viewedInSession.keys().next().value!);
    if (seen.has(what)) return false;
    if (seen.size >= 10_000) seen.clear();
    seen.add(what);
    return true;
  }

  return { sessions };
}

/**
 * The recording's entries, and the `segment-stored` entries of other recordings that hold the same
 * bytes (the blob is shared: its first storing may be another dock's), each labelled as that
 * recording's, never presented as this one's.
 */
function timelineTable(entries: CustodyEntry[], dockId: string, recordingId: string): Html {
  if (entries.length === 0) return html`<p class="muted">No entries.</p>`;
  const own = (e: CustodyEntry) => e.dockId === dockId && e.recordingId === recordingId;
  return html`<table class="timeline" id="timeline"><thead><tr><th>Chain position</th><th>Time (server)</th><th>Event</th><th>Detail</th></tr></thead><tbody>
  ${entries.map((e) => html`<tr class="event-${e.event}${own(e) ? '' : ' other-recording'}"><td>#${e.seq}</td><td>${e.time}</td><td>${e.event}${own(e) ? '' : ' (another recording)'}</td><td>${own(e) ? describeEntry(e) : describeOther(e)}</td></tr>`)}</tbody></table>`;
}

/** An entry of another recording with the same bytes: whose it is. */
function describeOther(e: CustodyEntry): string {
  return `the same bytes (blob ${e.sha256.slice(0, 16)}…) ${e['alreadyHeld'] === true ? 'received' : 'first stored'} for ${e.dockId}/${e.recordingId}${e['index'] !== undefined ? ` (its segment ${String(e['index'])})` : ''}, not for this recording`;
}

function describeEntry(e: CustodyEntry): string {
  switch (e.event) {
    case 'viewed': case 'downloaded': return `by ${String(e['by'])} (${String(e['role'])}) via ${String(e['via'] ?? '')}${takenOf(e)}`;
    case 'segment-stored': return `blob ${e.sha256.slice(0, 16)}… ${e['alreadyHeld'] === true ? 'received, already held by the server (stored earlier)' : e['reconciled'] === true ? 'found held, entry written late (reconciled)' : 'stored'}${e['index'] !== undefined ? ` (segment ${String(e['index'])})` : ''}`;
    case 'receipt-issued': return `receipt for ${e.sha256.slice(0, 16)}…`;
    case 'recording-created': return `manifest accepted from ${e.dockId}`;
    default: return '';
  }
}

/** The bytes an entry says were taken: ", whole file (84577 bytes)", ", bytes 0-99 (100 bytes)"; '' for none. */
function takenOf(e: CustodyEntry): string {
  const range = e['range'];
  const bytes = e['bytes'];
  if (typeof range !== 'string' || typeof bytes !== 'number') return '';
  return `${range === 'whole' ? ', whole file' : `, bytes ${range}`} (${bytes} bytes)${e['via'] === 'playback' ? ', then the player\'s further ranges' : ''}`;
}

function mediaType(manifest: RecordingManifest): string {
  const format = manifest.file.media?.container ?? '';
  return format.includes('mpegts') ? 'video/mp2t' : format.includes('mp4') || format.includes('mov') ? 'video/mp4' : 'application/octet-stream';
}

function safeNext(next: string | undefined | null): string | undefined {
  return typeof next === 'string' && /^\/console\/[A-Za-z0-9/_.%?=&-]*$/.test(next) && !next.startsWith('//') ? next : undefined;
}

function safeOrigin(url: string): string | undefined {
  try { return new URL(url).origin; } catch { return undefined; }
}

const assetCache = new Map<string, Buffer>();
async function readAsset(path: string): Promise<Buffer> {
  let data = assetCache.get(path);
  if (!data) { data = await readFile(path); assetCache.set(path, data); }
  return data;
}

/** A form body (application/x-www-form-urlencoded), at most 16 KiB. */
async function readForm(request: FastifyRequest): Promise<URLSearchParams> {
  const body = request.body as unknown;
  if (body === undefined || body === null) return new URLSearchParams();
  if (typeof body === 'string') return new URLSearchParams(body);
  if (typeof (body as Readable).pipe !== 'function') return new URLSearchParams();
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of body as Readable) {
    total += (chunk as Buffer).length;
    if (total > 16 * 1024) { (body as Readable).destroy(); break; }
    chunks.push(chunk as Buffer);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

