/**
 * The bad-input matrix, server side: malformed requests, a token replayed from
 * another dock, slow-loris bodies and a flood of concurrent requests, all thrown
 * at `bodycam server` (a child process) WHILE a real dock offloads a good camera
 * through it. Each gets its documented answer, no unauthorised write is
 * accepted, nothing stray is stored, and the good recordings arrive byte-exact.
 */
import { describe, it, expect, beforeAll, afterAll } from '@jest/globals';
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { dockCamera, recordCamera } from '../../src/camera/index.js';
import { formatDigestHeader, sha256Hex } from '../../src/protocol/digest.js';
import { generateSigningKeyPair } from '../../src/protocol/signing.js';
import { BIN } from '../helpers/cli.js';
import { buildRecording, testBytes } from '../helpers/manifest.js';
import { makeTempDir } from '../helpers/tmp.js';
import { countBlobs, DOCK_ID, knob, originalsIn, ServerProcess, TOKENS, verifyServer, writeReport, type OriginalFile } from '../helpers/reliability.js';

const FLOOD = knob('FLOOD_REQUESTS', 400);
const SLOW_LORIS = knob('SLOW_LORIS', 20);

interface Probe { name: string; expected: number[]; got: number; write: boolean; authorised: boolean }

describe('server-side abuse while a real dock offloads', () => {
  const tmp = makeTempDir('bodycam-abuse-');
  const bays = join(tmp.path, 'bays');
  let server: ServerProcess;
  let originals: OriginalFile[] = [];
  const probes: Probe[] = [];
  let dockExit: Promise<number | null>;
  const flood = { total: FLOOD, statuses: {} as Record<string, number>, failedToAnswer: 0 };
  const loris = { connections: SLOW_LORIS, answered408: 0, closedWithoutAnswer: 0, refused429: 0, other: [] as string[] };
  const dock2Keys = generateSigningKeyPair();

  const as = (dock: string | null, path: string, init: RequestInit = {}): Promise<Response> => {
    const headers = new Headers(init.headers);
    if (dock !== null) headers.set('authorization', `Bearer ${TOKENS[dock] ?? dock}`);
    return fetch(server.url + path, { ...init, headers });
  };
  const probe = async (name: string, expected: number[], write: boolean, authorised: boolean, send: () => Promise<Response>): Promise<void> => {
    const response = await send();
    await response.arrayBuffer();
    probes.push({ name, expected, got: response.status, write, authorised });
  };
  const json = (body: unknown): RequestInit => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

  beforeAll(async () => {
    mkdirSync(bays, { recursive: true });
    const storage = join(tmp.path, 'cam');
    const recorded = await recordCamera({ storage, count: 3, seed: 'abuse-good', durationSeconds: 4, width: 320, height: 240, fps: 15 });
    const bayPath = await dockCamera({ storage, bays, bay: 'bay-1' });
    originals = originalsIn(bayPath, recorded.serial, recorded.files.map((f) => f.mediaPath.slice(storage.length + 1)));
    server = new ServerProcess(join(tmp.path, 'server-data'), ['--body-idle-timeout', '1s', '--max-segment-bytes', '1MiB']);
    await server.start();
    const tokenFile = join(tmp.path, 'token');
    writeFileSync(tokenFile, TOKENS[DOCK_ID]!, { mode: 0o600 });
    // The good dock, slowed down so that the abuse happens during its uploads.
    const child = spawn(process.execPath, [BIN, 'dock', '--once', '--bays', bays, '--endpoint', server.url, '--token-file', tokenFile,
      '--state-dir', join(tmp.path, 'dock-state'), '--dock-id', DOCK_ID, '--status-port', '0', '--wipe-after-ingest', '--server-key', join(server.dataDir, 'server-key.pub.pem'), '--settle', '0.3s',
      '--segment-seconds', '1s', '--max-rate', '100KB/s', '--max-backoff', '1s', '--log-level', 'warn'], { stdio: ['ignore', 'ignore', 'ignore'] });
    dockExit = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  }, 120_000);

  afterAll(async () => {
    writeReport('bad-inputs-server', {
      probes: probes.map((p) => ({ request: p.name, expected: p.expected.join('|'), got: p.got })),
      unauthorisedWritesAccepted: probes.filter((p) => p.write && !p.authorised && p.got < 300).length,
      flood, slowLoris: loris,
    });
    await server?.stop();
    tmp.cleanup();
  });

  it('answers every malformed or unauthorised request as documented, accepts no unauthorised write, and the dock still delivers byte-exact', async () => {
    // dock-2's own recording, the target of the replayed-token and bad-segment requests.
    const data = testBytes(200_000, 7);
    const own = buildRecording(data, { dockId: 'dock-2', dockKeys: dock2Keys, serial: 'ABUSE2', segmentSize: 64 * 1024 });
    const id = own.manifest.recordingId;
    const put = (dock: string | null, index: number | string, body: Buffer, headers: Record<string, string> = {}) => as(dock, `/v1/recordings/${id}/segments/${index}`, {
      method: 'PUT', body, headers: { 'content-type': 'application/octet-stream', 'content-digest': formatDigestHeader(sha256Hex(body)), ...headers },
    });
    await probe('no token', [401], true, false, () => as(null, '/v1/recordings', json(own.manifest)));
    await probe('unknown token', [401], true, false, () => as('not-a-real-token-at-all', '/v1/recordings', json(own.manifest)));
    await probe('manifest of dock-2 sent with dock-1\'s token (replayed token)', [403], true, false, () => as('dock-1', '/v1/recordings', json(own.manifest)));
    await probe('create own recording (dock-2)', [201], true, true, () => as('dock-2', '/v1/recordings', json(own.manifest)));
    await probe('not JSON', [400], true, true, () => as('dock-2', '/v1/recordings', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"protocol": ' }));
    await probe('manifest over the 4 MiB limit', [413], true, true, () => as('dock-2', '/v1/recordings', json({ ...own.manifest, pad: 'x'.repeat(4_300_000) })));
    await probe('unsupported protocol', [400], true, true, () => as('dock-2', '/v1/recordings', json({ ...own.manifest, protocol: 'bodycam-ingest/9' })));
    await probe('signature does not verify (field changed after signing)', [400], true, true, () => as('dock-2', '/v1/recordings', json({ ...own.manifest, recordingId: `${id}-x` })));
    const broken = buildRecording(data, { dockId: 'dock-2', dockKeys: dock2Keys, serial: 'ABUSE3', mutate: (m) => { m.segments[1]!.offset += 1; } });
    await probe('broken segment plan', [400], true, true, () => as('dock-2', '/v1/recordings', json(broken.manifest)));
    const rekeyed = buildRecording(data, { dockId: 'dock-2', serial: 'ABUSE4' });
    await probe('dock key differs from the pinned one', [400], true, true, () => as('dock-2', '/v1/recordings', json(rekeyed.manifest)));
    await probe('path traversal in the id', [400, 404], true, true, () => as('dock-2', '/v1/recordings/..%2F..%2Fetc%2Fpasswd/segments/0', { method: 'PUT', body: own.segments[0]!, headers: { 'content-type': 'application/octet-stream', 'content-digest': formatDigestHeader(sha256Hex(own.segments[0]!)) } }));
    // Recordings are namespaced per dock: dock-1 has no recording of this id (404), and dock-2's is untouched.
    await probe('segment PUT with dock-1\'s token on dock-2\'s recording', [404], true, false, () => put('dock-1', 0, own.segments[0]!));
    await probe('segment PUT without a token', [401], true, false, () => put(null, 0, own.segments[0]!));
    await probe('complete with dock-1\'s token on dock-2\'s recording', [404], true, false, () => as('dock-1', `/v1/recordings/${id}/complete`, { method: 'POST' }));
    await probe('content with dock-1\'s token on dock-2\'s recording', [404], false, false, () => as('dock-1', `/v1/recordings/${id}/content`));
    await probe('digest header that does not match the plan', [422], true, true, () => put('dock-2', 0, own.segments[0]!, { 'content-digest': formatDigestHeader(sha256Hex(Buffer.from('other'))) }));
    await probe('body that does not match its digest', [422, 400], true, true, () => put('dock-2', 0, Buffer.concat([own.segments[0]!.subarray(1), Buffer.from([0])]), { 'content-digest': formatDigestHeader(own.manifest.segments[0]!.sha256) }));
    await probe('no Content-Digest', [400], true, true, () => as('dock-2', `/v1/recordings/${id}/segments/0`, { method: 'PUT', body: own.segments[0]!, headers: { 'content-type': 'application/octet-stream' } }));
    await probe('body shorter than the plan', [400], true, true, () => put('dock-2', 0, own.segments[0]!.subarray(0, 100), { 'content-digest': formatDigestHeader(own.manifest.segments[0]!.sha256) }));
    await probe('index outside the plan', [404], true, true, () => put('dock-2', 99, own.segments[0]!));
    await probe('index not a number', [400], true, true, () => put('dock-2', 'abc', own.segments[0]!));
    await probe('segment over --max-segment-bytes (with the plan\'s digest)', [413], true, true, () => put('dock-2', 0, Buffer.alloc(2 * 1024 * 1024), { 'content-digest': formatDigestHeader(own.manifest.segments[0]!.sha256) }));
    await probe('wrong content type', [415], true, true, () => as('dock-2', `/v1/recordings/${id}/segments/0`, { method: 'PUT', body: 'text', headers: { 'content-type': 'text/plain', 'content-digest': formatDigestHeader(sha256Hex('text')) } }));
    await probe('complete before all segments', [409], true, true, () => as('dock-2', `/v1/recordings/${id}/complete`, { method: 'POST' }));

    // Slow-loris: bodies that start and never finish, all at once.
    await Promise.all(Array.from({ length: SLOW_LORIS }, () => new Promise<void>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port: server.port });
      let answer = '';
      socket.on('data', (d: Buffer) => { answer += d.toString(); });
      socket.on('error', () => {});
      socket.on('close', () => {
        if (/^HTTP\/1\.1 408/.test(answer)) loris.answered408++;
        // Beyond 32 uploads in flight per dock the server refuses at once (429 + Retry-After): also a correct outcome.
        else if (/^HTTP\/1\.1 429/.test(answer)) loris.refused429++;
        else if (answer === '') loris.closedWithoutAnswer++;
        else loris.other.push(answer.split('\r\n')[0]!);
        resolve();
      });
      socket.write(`PUT /v1/recordings/${id}/segments/1 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${TOKENS['dock-2']}\r\n` +
        `Content-Type: application/octet-stream\r\nContent-Length: ${own.segments[1]!.length}\r\nContent-Digest: ${formatDigestHeader(own.manifest.segments[1]!.sha256)}\r\n\r\n`);
      socket.write(own.segments[1]!.subarray(0, 1000));
    })));

    // A flood from the whole fleet of ten docks (and from nobody) at once.
    const fleet = Object.keys(TOKENS);
    const kinds = [
      (i: number) => as(fleet[i % fleet.length]!, '/v1/recordings'),
      () => as('dock-2', '/v1/recordings'),
      () => as(null, '/v1/recordings', json(own.manifest)),
      () => as('dock-1', '/v1/recordings', json(own.manifest)),
      () => as('dock-2', '/v1/recordings', json(own.manifest)),
      () => fetch(server.url + '/healthz'),
    ];
    const floodResults = await Promise.all(Array.from({ length: FLOOD }, async (_, i) => {
      try {
        const response = await kinds[i % kinds.length]!(Math.floor(i / kinds.length));
        await response.arrayBuffer();
        const kind = i % kinds.length;
        if ((kind === 2 || kind === 3) && response.status < 300) probes.push({ name: 'flood: unauthorised manifest', expected: [401, 403], got: response.status, write: true, authorised: false });
        return String(response.status);
      } catch {
        flood.failedToAnswer++;
        return 'no answer';
      }
    }));
    for (const status of floodResults) flood.statuses[status] = (flood.statuses[status] ?? 0) + 1;

    const code = await dockExit;
    const verdict = await verifyServer(server, originals);
    const health = await fetch(server.url + '/healthz');

    const wrong = probes.filter((p) => !p.expected.includes(p.got)).map((p) => `${p.name}: expected ${p.expected.join('|')}, got ${p.got}`);
    expect(wrong).toEqual([]);
    expect(probes.filter((p) => p.write && !p.authorised && p.got < 300)).toEqual([]);
    expect(loris.other).toEqual([]);
    expect(loris.answered408 + loris.closedWithoutAnswer + loris.refused429).toBe(SLOW_LORIS);
    expect(Object.keys(flood.statuses).filter((s) => s.startsWith('5'))).toEqual([]);
    expect(flood.failedToAnswer).toBe(0);
    expect(health.status).toBe(200);
    // Nothing stray: only the good dock's segments became blobs; no partial upload survives in tmp/.
    expect(countBlobs(join(server.dataDir, 'blobs'))).toBe(verdict.distinctSegmentHashes);
    expect(readdirSync(join(server.dataDir, 'tmp'))).toEqual([]);
    expect(code).toBe(0);
    expect({ lost: verdict.lost, altered: verdict.altered, duplicated: verdict.duplicated }).toEqual({ lost: [], altered: [], duplicated: [] });
  }, 240_000);
});
