/**
 * `bodycam doctor`: every precondition of a working dock checked at once, each with what to fix.
 * Reads the same settings as `bodycam dock` and changes nothing: no state folder is created, the
 * lock is only tried (and given back at once) when no dock holds it, the server is only read
 * (GET /healthz, GET /v1/keys, GET /v1/recordings/<an id no dock uses> for the token).
 */
import { constants } from 'node:fs';
import { access, lstat, readdir, readFile, statfs } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import got from 'got';
import { toolVersion } from '../media/run.js';
import { isEd25519PublicKeyPem, keyIdOf } from '../protocol/signing.js';
import { DOCK_ID_HEADER, PROTOCOL_VERSION } from '../protocol/types.js';
import { isMissingRoute } from './attention.js';
import { loadDockConfig, resolveDockSettings, type LoadDockConfigInput } from './config.js';
import { Journal } from './journal.js';
import { probeStateLock, readPidFile } from './lock.js';
import { CONFIRMED_SERVER_KEY_META } from './trust.js';
import { dockKeyIdIn } from './keys.js';
import { readServerKeyFile } from './serverKeyPin.js';
import { PrivateFileError } from '../util/privateFile.js';

export type CheckStatus = 'ok' | 'warn' | 'fail';

export interface DoctorCheck {
  name: string;
  status: CheckStatus;
  detail: string;
  /** What to do about it (fail and warn). */
  fix?: string;
}

/** Below this the journal's next fsync may fail: the dock stops being able to record progress. */
export const MIN_FREE_BYTES = 64 * 1024 * 1024;
export const LOW_FREE_BYTES = 1024 * 1024 * 1024;
/** Receipts, custody times and the camera clock offsets are compared to the server's clock. */
export const MAX_CLOCK_OFFSET_MS = 60_000;

export interface DoctorOptions extends LoadDockConfigInput {
  /** Injectable clock for the offset check. */
  now?: () => number;
  timeoutMs?: number;
}

const ok = (name: string, detail: string): DoctorCheck => ({ name, status: 'ok', detail });
const warn = (name: string, detail: string, fix: string): DoctorCheck => ({ name, status: 'warn', detail, fix });
const fail = (name: string, detail: string, fix: string): DoctorCheck => ({ name, status: 'fail', detail, fix });

/** A file the rule for secret and authorising files refuses (src/util/privateFile.ts): the dock would not start. */
function privateFileFailure(name: string, error: PrivateFileError): DoctorCheck {
  return fail(name, `${error.message.replace(/: run `[^`]*`$/, '')}: bodycam dock refuses to start`, error.problem === 'owner' ? `chown <dock user> ${error.path} && chmod 600 ${error.path}` : `chmod 600 ${error.path}`);
}

async function checkTool(tool: 'ffmpeg' | 'ffprobe'): Promise<DoctorCheck> {
  try {
    const banner = await toolVersion(tool);
    if (!banner.startsWith(`${tool} version`)) return fail(tool, `-version printed "${banner.slice(0, 80)}"`, `set ${tool.toUpperCase()}_PATH to a working ${tool}, or unset it to use the bundled one`);
    return ok(tool, banner.split(' ').slice(0, 3).join(' '));
  } catch (error) {
    return fail(tool, (error as Error).message, `run \`npm ci\`, or set ${tool.toUpperCase()}_PATH to a working ${tool}`);
  }
}

async function checkBays(bays: string | undefined): Promise<DoctorCheck> {
  if (!bays) return fail('bays', 'no bays folder configured', 'give --bays (or BODYCAM_BAYS, or "bays" in the config file)');
  const stats = await lstat(bays).catch(() => undefined);
  if (!stats) return fail('bays', `${bays} does not exist`, `mkdir -p ${bays} (and mount the cameras' storage under it, one folder per bay)`);
  if (stats.isSymbolicLink()) return fail('bays', `${bays} is a symbolic link`, 'give the real folder: the dock does not follow symlinks');
  if (!stats.isDirectory()) return fail('bays', `${bays} is not a folder`, 'give the folder that holds one sub-folder per bay');
  try { await access(bays, constants.R_OK | constants.X_OK); } catch {
    return fail('bays', `${bays} is not readable by this user (uid ${process.getuid?.() ?? '?'})`, `give the dock's user read access to ${bays}`);
  }
  const names = (await readdir(bays)).filter((n) => !n.startsWith('.'));
  return ok('bays', `${bays}: ${names.length} bay folder(s)`);
}

async function checkStateDir(stateDir: string | undefined): Promise<DoctorCheck[]> {
  if (!stateDir) return [fail('state dir', 'no state folder configured', 'give --state-dir (or BODYCAM_STATE_DIR, or "stateDir" in the config file)')];
  const checks: DoctorCheck[] = [];
  const stats = await lstat(stateDir).catch(() => undefined);
  const existing = stats ? stateDir : dirname(stateDir);
  if (!stats) {
    try { await access(existing, constants.W_OK | constants.X_OK); } catch {
      return [fail('state dir', `${stateDir} does not exist and ${existing} is not writable`, `create it for the dock's user: install -d -m 0700 -o <user> ${stateDir}`)];
    }
    checks.push(ok('state dir', `${stateDir} does not exist yet: the dock creates it (0700) on first start`));
  } else if (!stats.isDirectory() || stats.isSymbolicLink()) {
    return [fail('state dir', `${stateDir} is not a folder`, 'give a folder of its own to the dock')];
  } else {
    const problems: string[] = [];
    if ((stats.mode & 0o077) !== 0) problems.push(`mode ${(stats.mode & 0o777).toString(8)} lets others in`);
    if (process.getuid && stats.uid !== process.getuid()) problems.push(`owned by uid ${stats.uid}, not this user (uid ${process.getuid()})`);
    try { await access(stateDir, constants.W_OK | constants.X_OK); } catch { problems.push('not writable by this user'); }
    for (const file of ['journal.sqlite', 'dock-key.pem']) {
      const f = await lstat(join(stateDir, file)).catch(() => undefined);
      if (f && (f.mode & 0o077) !== 0) problems.push(`${file} has mode ${(f.mode & 0o777).toString(8)}`);
    }
    checks.push(problems.length ? fail('state dir', `${stateDir}: ${problems.join('; ')}`, `chown -R <dock user> ${stateDir} && chmod 700 ${stateDir} && chmod 600 ${stateDir}/*`) : ok('state dir', `${stateDir}: 0700, owned by this user`));
  }
  try {
    const fs = await statfs(existing);
    const free = fs.bavail * fs.bsize;
    const mib = `${Math.floor(free / (1024 * 1024))} MiB free`;
    checks.push(free < MIN_FREE_BYTES ? fail('disk space', `${existing}: ${mib}`, 'free space on that file system: the journal needs room for every transition')
      : free < LOW_FREE_BYTES ? warn('disk space', `${existing}: ${mib}`, 'less than 1 GiB: free some space before a long shift') : ok('disk space', `${existing}: ${mib}`));
  } catch (error) {
    checks.push(warn('disk space', `cannot read free space of ${existing}: ${(error as Error).message}`, 'check it by hand (df)'));
  }
  if (stats?.isDirectory()) {
    try {
      const lock = probeStateLock(stateDir);
      const holder = readPidFile(stateDir);
      // Held is the normal state beside a running dock: doctor runs while the service runs.
      if (lock === 'held') checks.push(ok('lock', `held by a running dock agent${holder?.alive ? ` (pid ${holder.pid})` : ''}`));
      else checks.push(ok('lock', 'free: no dock agent runs on this state folder'));
    } catch (error) {
      checks.push(fail('lock', (error as Error).message, `fix the permissions of ${join(stateDir, 'agent.lock')} (the dock's user must own it, 0600)`));
    }
  }
  return checks;
}

interface Answer { status: number; body: string; date?: string; sentAt: number; receivedAt: number }

async function get(url: string, token: string | undefined, timeoutMs: number, now: () => number, dockId?: string): Promise<Answer> {
  const sentAt = now();
  const response = await got(url, {
    retry: { limit: 0 }, timeout: { request: timeoutMs }, throwHttpErrors: false, responseType: 'text', followRedirect: false,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(dockId ? { [DOCK_ID_HEADER]: dockId } : {}) },
  });
  return { status: response.statusCode, body: response.body, date: response.headers.date, sentAt, receivedAt: now() };
}

function problemOf(body: string): { code?: unknown; detail?: unknown } {
  try { return JSON.parse(body) as { code?: unknown; detail?: unknown }; } catch { return {}; }
}
const problemCodeOf = (body: string): string | undefined => { const code = problemOf(body).code; return typeof code === 'string' ? code : undefined; };
const problemDetailOf = (body: string): string => String(problemOf(body).detail ?? '').slice(0, 200);

const TLS_CODES = new Set(['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'CERT_HAS_EXPIRED', 'ERR_TLS_CERT_ALTNAME_INVALID', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'CERT_NOT_YET_VALID', 'EPROTO', 'ERR_SSL_WRONG_VERSION_NUMBER']);

function endpointFailure(endpoint: string, error: unknown): DoctorCheck {
  const code = (error as { code?: string }).code ?? '';
  if (TLS_CODES.has(code) || /certificate|SSL|TLS/i.test((error as Error).message)) {
    return fail('endpoint', `TLS with ${endpoint} failed: ${code || (error as Error).message}`, code === 'ERR_SSL_WRONG_VERSION_NUMBER' || code === 'EPROTO'
      ? 'the server does not speak TLS on that port: check the scheme (https://) and port'
      : 'trust the server\'s CA with NODE_EXTRA_CA_CERTS=/etc/bodycam/ca.pem, or ask the operator for a certificate naming this host');
  }
  return fail('endpoint', `cannot reach ${endpoint}: ${code || (error as Error).message}`, 'start the server, or check --endpoint (host, port, firewall)');
}

async function checkServer(settings: Record<string, unknown>, token: string | undefined, stateDir: string | undefined, options: DoctorOptions): Promise<DoctorCheck[]> {
  const endpoint = settings.endpoint as string | undefined;
  if (!endpoint) return [fail('endpoint', 'no endpoint configured', 'give --endpoint (or BODYCAM_ENDPOINT, or "endpoint" in the config file)')];
  const now = options.now ?? Date.now;
  const timeoutMs = options.timeoutMs ?? Math.min(10_000, Number(settings.requestTimeout ?? 10) * 1000);
  const base = endpoint.replace(/\/+$/, '');
  const checks: DoctorCheck[] = [];
  let health: Answer;
  try {
    health = await get(`${base}/healthz`, undefined, timeoutMs, now);
  } catch (error) {
    return [endpointFailure(endpoint, error)];
  }
  let protocol: unknown;
  try { protocol = (JSON.parse(health.body) as { protocol?: unknown }).protocol; } catch { protocol = undefined; }
  if (health.status !== 200) checks.push(fail('endpoint', `GET /healthz answered ${health.status}`, 'is --endpoint the ingest server\'s base URL?'));
  else if (protocol !== PROTOCOL_VERSION) checks.push(fail('endpoint', `the server speaks ${String(protocol)}, this dock ${PROTOCOL_VERSION}`, 'upgrade the dock or the server so both speak the same protocol'));
  else checks.push(ok('endpoint', `${endpoint}: reachable${base.startsWith('https:') ? ', TLS certificate verified' : ' (plain http: use https:// outside a test)'}, ${PROTOCOL_VERSION}`));
  if (health.date) {
    // The server's Date has one-second resolution: compare it to the middle of the request.
    const serverMs = Date.parse(health.date);
    const offset = Math.round((health.sentAt + health.receivedAt) / 2 - serverMs);
    if (Number.isNaN(serverMs)) checks.push(warn('clock', `unparsable Date header "${health.date}"`, 'check the clocks by hand'));
    else if (Math.abs(offset) > MAX_CLOCK_OFFSET_MS) checks.push(fail('clock', `this host's clock is ${Math.abs(Math.round(offset / 1000))} s ${offset > 0 ? 'ahead of' : 'behind'} the server's`, 'synchronise the clock (timedatectl set-ntp true), or the server\'s'));
    else checks.push(ok('clock', `offset from the server ${Math.round(offset / 1000)} s (±1 s)`));
  } else {
    checks.push(warn('clock', 'the server sent no Date header', 'check the clocks by hand'));
  }
  if (token === undefined) checks.push(fail('token', 'no readable token', 'see the config check above'));
  else {
    try {
      // A recording id no dock uses: 404 means the token got past authentication (a list would read every record).
      const dockId = typeof settings.dockId === 'string' ? settings.dockId : undefined;
      const answer = await get(`${base}/v1/recordings/bodycam-doctor-probe`, token, timeoutMs, now, dockId);
      const code = problemCodeOf(answer.body) ?? `http_${answer.status}`;
      // A 404 for the route (a wrong path in --endpoint, a proxy's page) is not the server's "no such recording".
      if (isMissingRoute(answer.status, code, problemDetailOf(answer.body))) checks.push(fail('token', `the protocol's path answered 404 (${problemDetailOf(answer.body) || code}): GET ${base}/v1/recordings/… is not an ingest server's route`, 'give --endpoint the ingest server\'s base URL (without /v1, with any path prefix the proxy really serves); the dock would retry every recording against it'));
      else if (answer.status === 404 || answer.status === 200) {
        checks.push(ok('token', `accepted by the server${dockId ? ` as dock ${dockId}` : ''}`));
        checks.push(await checkDockKey(base, token, stateDir, timeoutMs, now, dockId));
      }
      else if (answer.status === 403 && problemCodeOf(answer.body) === 'forbidden') checks.push(fail('token', `the token belongs to another dock id (${problemDetailOf(answer.body)})`, 'give the dock id the token was issued for (--dock-id), or this dock\'s own token (--token-file)'));
      else if (answer.status === 401) checks.push(fail('token', 'the server rejected the token (401)', 'check --token-file and --dock-id; the server\'s operator issues one token per dock id (bodycam server token new)'));
      else if (answer.status === 403) checks.push(fail('token', 'the server refused this dock (403)', 'ask the server\'s operator: the token is known but not allowed'));
      else checks.push(fail('token', `GET /v1/recordings/… answered ${answer.status}`, 'is --endpoint the ingest server\'s base URL?'));
    } catch (error) {
      checks.push(endpointFailure(endpoint, error));
    }
  }
  checks.push(await checkServerKey(settings, stateDir, base, timeoutMs, now));
  return checks;
}

/**
 * The key the server pinned for this dock id (GET /v1/keys/dock) against the one in the state folder:
 * a reinstalled dock, a lost or restored state dir has another key pair, and every manifest would be
 * refused `dock_key_mismatch` while each other check is green.
 */
async function checkDockKey(base: string, token: string, stateDir: string | undefined, timeoutMs: number, now: () => number, dockId?: string): Promise<DoctorCheck> {
  const answer = await get(`${base}/v1/keys/dock`, token, timeoutMs, now, dockId);
  const body = problemOf(answer.body) as { dockKeyId?: unknown };
  if (answer.status !== 200) return warn('dock key', `the server cannot tell which key it pinned for this dock (GET /v1/keys/dock answered ${answer.status})`, 'an older server: the first upload shows a mismatch (attention dock_key_mismatch)');
  const pinned = typeof body.dockKeyId === 'string' ? body.dockKeyId : undefined;
  let here: string | undefined;
  if (stateDir) {
    try {
      here = dockKeyIdIn(stateDir);
    } catch (error) {
      if ((error as { code?: string }).code === 'E_DOCK_KEY_MISMATCH') return fail('dock key', (error as Error).message, 'the dock refuses to start with this pair: restore both files of one pair');
      // Unreadable: the state folder's own check says why.
    }
  }
  const who = dockId ? `dock ${dockId}` : 'this dock';
  if (!pinned) return ok('dock key', `the server has pinned no key for ${who} yet: it pins ${here ? `this state folder's ${here.slice(0, 16)}…` : 'the key the dock makes at its first start'} at the first manifest`);
  if (here === pinned) return ok('dock key', `the server pinned this state folder's key ${pinned.slice(0, 16)}… for ${who}`);
  return fail('dock key', `the server pinned key ${pinned.slice(0, 16)}… for ${who}; ${here ? `this state folder holds ${here.slice(0, 16)}…` : 'this state folder holds no dock key (a new one would be made)'}: every manifest would be refused (dock_key_mismatch)`,
    `restore the dock's state folder (its dock-key.pem), or ask the server's operator for \`bodycam server reset-dock-key --dock ${dockId ?? '<dock id>'}\``);
}

async function checkServerKey(settings: Record<string, unknown>, stateDir: string | undefined, base: string, timeoutMs: number, now: () => number): Promise<DoctorCheck> {
  const wipe = settings.wipeAfterIngest === true;
  let pinned: { pem: string; how: string; confirmed: boolean } | undefined;
  if (typeof settings.serverKey === 'string') {
    let pem: string;
    try { pem = readServerKeyFile(settings.serverKey); } catch (error) {
      if (error instanceof PrivateFileError && (error.problem === 'mode' || error.problem === 'owner')) return privateFileFailure('server key', error);
      return fail('server key', (error as Error).message, 'give --server-key the server\'s server-key.pub.pem, as its operator handed it over');
    }
    pinned = { pem, how: `--server-key ${settings.serverKey}`, confirmed: true };
  } else if (stateDir && (await lstat(join(stateDir, 'journal.sqlite')).catch(() => undefined))) {
    const journal = Journal.openReadOnly(stateDir);
    try {
      const confirmed = journal.getMeta(CONFIRMED_SERVER_KEY_META);
      const learned = journal.getMeta('serverPublicKeyPem');
      if (confirmed) pinned = { pem: confirmed, how: 'confirmed by `bodycam dock trust-server`', confirmed: true };
      else if (learned) pinned = { pem: learned, how: 'learned on first contact (not confirmed)', confirmed: false };
    } finally {
      journal.close();
    }
  }
  let served: string | undefined;
  try {
    const answer = await get(`${base}/v1/keys`, undefined, timeoutMs, now);
    const pem = (JSON.parse(answer.body) as { publicKeyPem?: unknown }).publicKeyPem;
    if (answer.status === 200 && isEd25519PublicKeyPem(pem)) served = pem;
  } catch { /* reported as not served below */ }
  if (!served) return fail('server key', 'GET /v1/keys gave no Ed25519 key', 'is --endpoint the ingest server\'s base URL?');
  const servedId = keyIdOf(served);
  if (!pinned) {
    const detail = `not pinned; the server offers ${servedId}`;
    const fix = `confirm it with the operator, then: bodycam dock trust-server --state-dir ${stateDir ?? 'DIR'} --endpoint ${base} --fingerprint <keyId>, or pass --server-key`;
    return wipe ? fail('server key', `${detail}: --wipe-after-ingest refuses to start`, fix) : warn('server key', `${detail}: receipts are checked against the key learned on first contact, and nothing is ever wiped`, fix);
  }
  const pinnedId = keyIdOf(pinned.pem);
  if (pinnedId !== servedId) {
    return fail('server key', `pinned ${pinnedId} (${pinned.how}) but the server offers ${servedId}: its receipts will be refused`,
      'ask the server\'s operator whether the key was rotated; if so, pin the new one (trust-server or --server-key); if not, this is not your server');
  }
  if (!pinned.confirmed) {
    return wipe ? fail('server key', `${pinnedId} ${pinned.how}: --wipe-after-ingest refuses to start`, `bodycam dock trust-server --state-dir ${stateDir} --endpoint ${base} --fingerprint ${pinnedId} (after the operator confirmed it)`)
      : warn('server key', `${pinnedId} ${pinned.how}`, `confirm it with the operator, then: bodycam dock trust-server --state-dir ${stateDir} --endpoint ${base} --fingerprint <keyId>`);
  }
  return ok('server key', `${pinnedId} ${pinned.how}, the key the server offers`);
}

/** Run every check; the order is the order a person fixes things in. */
export async function runDoctor(options: DoctorOptions = {}): Promise<DoctorCheck[]> {
  const checks: DoctorCheck[] = [];
  let settings: Record<string, unknown> = {};
  let token: string | undefined;
  try {
    settings = resolveDockSettings(options).values;
    const config = loadDockConfig(options);
    token = config.token;
    settings = { ...settings, endpoint: config.endpoint, dockId: config.dockId };
    checks.push(ok('config', `dock ${config.dockId}${options.configFile ?? options.flags?.config ? `, config file ${String(options.configFile ?? options.flags?.config)}` : ''}`));
  } catch (error) {
    const tokenFile = typeof settings.tokenFile === 'string' ? settings.tokenFile : undefined;
    if (error instanceof PrivateFileError && (error.problem === 'mode' || error.problem === 'owner')) checks.push(privateFileFailure(error.path === tokenFile ? 'token file' : 'config', error));
    else checks.push(fail('config', (error as Error).message, 'bodycam dock config --print shows every value and where it came from'));
  }
  checks.push(await checkTool('ffmpeg'), await checkTool('ffprobe'));
  checks.push(await checkBays(settings.bays as string | undefined));
  checks.push(...await checkStateDir(settings.stateDir as string | undefined));
  // Several servers of one shared state (comma-separated): each must pass on its own.
  const endpoints = typeof settings.endpoint === 'string' ? settings.endpoint.split(',').filter(Boolean) : [];
  if (endpoints.length <= 1) checks.push(...await checkServer(settings, token, settings.stateDir as string | undefined, options));
  for (const endpoint of endpoints.length > 1 ? endpoints : []) {
    const named = (await checkServer({ ...settings, endpoint }, token, settings.stateDir as string | undefined, options)).map((c) => ({ ...c, name: `${c.name} ${endpoint}` }));
    checks.push(...named);
  }
  return checks;
}
