/**
 * Issue 9 item 1: the sidecar is evidence too. The manifest carries the sidecar's exact bytes
 * (device.sidecarBase64) and their hash (device.sidecarSha256); the server checks them; the wipe
 * deletes a sidecar only when, read through its own descriptor, it hashes to what the server
 * holds, and otherwise keeps both file and sidecar. The officer re-categorises a recording as
 * critical after its receipt (a new sidecar, validly signed by the camera): that sidecar is on
 * the camera or on the server, never lost. Real built CLI, real server, real files.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { existsSync, mkdirSync, readFileSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { verifyObject } from '../../src/protocol/signing.js';
import { buildRecording, testBytes } from '../helpers/manifest.js';
import { makeTempDir } from '../helpers/tmp.js';
import { ServerProcess } from '../helpers/reliability.js';
import { dockOnce, journalRows, makeCamera, releasePauses, resignSidecar, waitForPause, type Camera } from '../helpers/wipeKit.js';

describe('item 1: a sidecar changed after the receipt is never deleted unless the server holds its bytes', () => {
  const tmp = makeTempDir('bodycam-item01-');
  let server: ServerProcess;
  let serverKey: string;
  let n = 0;
  beforeAll(async () => {
    server = new ServerProcess(join(tmp.path, 'server-data'));
    await server.start();
    serverKey = join(server.dataDir, 'server-key.pub.pem');
  });
  afterAll(async () => { await server.stop(); tmp.cleanup(); });

  const setup = async (seed: string) => {
    const root = join(tmp.path, `case-${++n}`);
    const bays = join(root, 'bays');
    mkdirSync(bays, { recursive: true });
    const camera = await makeCamera(bays, 'bay-1', seed);
    const opts = { bays, endpoint: server.url, stateDir: join(root, 'state'), tokenFile: join(root, 'token'), dockId: `dock-${n}`, serverKey };
    return { root, camera, opts, sidecar: readFileSync(camera.sidecar), media: readFileSync(camera.media) };
  };
  const storedSidecar = async (dockId: string, recordingId: string): Promise<Buffer> => {
    const answer = await server.request(`/v1/recordings/${recordingId}`, { dock: dockId });
    const body = await answer.json() as { manifest: { device: { sidecarBase64: string; sidecarSha256: string } } };
    const bytes = Buffer.from(body.manifest.device.sidecarBase64, 'base64');
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(body.manifest.device.sidecarSha256);
    return bytes;
  };
  /** Every sidecar the server holds for this dock (exact bytes), from its complete recordings. */
  const serverSidecars = async (dockId: string): Promise<Buffer[]> => {
    const list = await (await server.request('/v1/recordings?state=complete', { dock: dockId })).json() as { recordings: Array<{ id: string }> };
    return Promise.all(list.recordings.map((r) => storedSidecar(dockId, r.id)));
  };
  /** The invariant: the sidecar now on the camera is still on the camera, or its exact bytes are on the server. */
  const neverLost = async (camera: Camera, resigned: Buffer, dockId: string) => {
    const onCamera = existsSync(camera.sidecar) ? readFileSync(camera.sidecar) : undefined;
    const onServer = (await serverSidecars(dockId)).some((b) => b.equals(resigned));
    expect(Boolean(onCamera?.equals(resigned)) || onServer).toBe(true);
    return { onCamera: Boolean(onCamera?.equals(resigned)), onServer };
  };

  it('the manifest carries the exact sidecar bytes; a sidecar re-signed after the receipt keeps file and sidecar on the camera', async () => {
    const { camera, opts, sidecar, media } = await setup('item01-after');
    const first = await dockOnce(opts);
    expect(first.code).toBe(0);
    const [row] = journalRows(opts.stateDir);
    expect(row!.state).toBe('completed');
    expect((await storedSidecar(opts.dockId, row!.recordingId!)).equals(sidecar)).toBe(true);

    const resigned = resignSidecar(camera);
    // A genuine camera signature, so this is the camera's word, not damage.
    const device = JSON.parse(readFileSync(join(camera.root, 'DEVICE.json'), 'utf8')) as { publicKeyPem: string };
    expect(verifyObject(JSON.parse(resigned.toString()) as Record<string, unknown>, device.publicKeyPem)).toBe(true);

    const wipe = await dockOnce({ ...opts, wipe: true });
    expect(wipe.code).not.toBe(2);
    const where = await neverLost(camera, resigned, opts.dockId);
    if (where.onCamera) {
      // Kept: the file too, with the reason on the row (and the bay).
      expect(readFileSync(camera.media).equals(media)).toBe(true);
      const kept = journalRows(opts.stateDir).find((r) => r.recordingId === row!.recordingId)!;
      expect(kept.state).toBe('completed');
      expect(kept.info.wipeKeptCode).toBe('sidecar_changed');
      expect(kept.reason).toMatch(/sidecar on the camera differs from the one the server holds/);
    }
    // Re-running never loses it either (a later scan may ingest the new version, then wipe it).
    await dockOnce({ ...opts, wipe: true });
    await neverLost(camera, resigned, opts.dockId);
  });

  it('a sidecar re-signed while the wipe runs (after its re-hash) is kept with its file', async () => {
    const { root, camera, opts, media } = await setup('item01-during');
    const pauseFile = join(root, 'wipe-pause');
    const running = dockOnce({ ...opts, wipe: true, env: { BODYCAM_WIPE_PAUSE_FILE: pauseFile } });
    let resigned: Buffer | undefined;
    await Promise.race([waitForPause(pauseFile), running.then((r) => { throw new Error(`dock ended before the wipe paused: ${r.stderr}`); })]);
    try {
      resigned = resignSidecar(camera);
    } finally {
      unlinkSync(pauseFile);
    }
    await releasePauses(pauseFile, running);
    const [row] = journalRows(opts.stateDir);
    expect(row!.state).toBe('completed');
    expect(['sidecar_replaced', 'sidecar_changed']).toContain(row!.info.wipeKeptCode);
    // The same run ingests the re-signed sidecar as a new version; the card is freed only once the server holds it.
    const { onServer } = await neverLost(camera, resigned!, opts.dockId);
    if (existsSync(camera.media)) expect(readFileSync(camera.media).equals(media)).toBe(true);
    else expect(onServer).toBe(true);
  });

  it('a sidecar swapped for a symlink to an identical copy (which hashes right) is kept, and so is the file', async () => {
    const { root, camera, opts, media, sidecar } = await setup('item01-symlink');
    const pauseFile = join(root, 'wipe-pause');
    const copy = join(root, 'copy.json');
    const running = dockOnce({ ...opts, wipe: true, env: { BODYCAM_WIPE_PAUSE_FILE: pauseFile } });
    await Promise.race([waitForPause(pauseFile), running.then((r) => { throw new Error(`dock ended before the wipe paused: ${r.stderr}`); })]);
    try {
      writeFileSync(copy, sidecar);
      unlinkSync(camera.sidecar);
      symlinkSync(copy, camera.sidecar);
    } finally {
      unlinkSync(pauseFile);
    }
    await releasePauses(pauseFile, running);
    const [row] = journalRows(opts.stateDir);
    expect(row!.state).toBe('completed');
    expect(row!.info.wipeKeptCode).toBe('sidecar_replaced');
    expect(readFileSync(camera.media).equals(media)).toBe(true);
    expect(readFileSync(copy).equals(sidecar)).toBe(true);
  });

  it('the server refuses sidecar bytes that do not match device.sidecarSha256 or device.sidecar (invalid_manifest)', async () => {
    const sidecarBytes = Buffer.from(JSON.stringify({ format: 'bodycam-sidecar/1', category: 'critical', signature: 'x' }));
    const good = createHash('sha256').update(sidecarBytes).digest('hex');
    const post = async (device: Record<string, unknown>, seed: number) => {
      const rec = buildRecording(testBytes(5000, seed), { dockId: 'dock-10', mutate: (m) => { Object.assign(m.device, device); } });
      return server.request('/v1/recordings', { dock: 'dock-10', method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(rec.manifest) });
    };
    const base64 = sidecarBytes.toString('base64');
    const parsed = JSON.parse(sidecarBytes.toString()) as Record<string, unknown>;
    const wrongHash = await post({ sidecarSha256: createHash('sha256').update('other').digest('hex'), sidecarBase64: base64 }, 1);
    expect(wrongHash.status).toBe(400);
    expect((await wrongHash.json() as { code: string; detail: string })).toMatchObject({ code: 'invalid_manifest', detail: expect.stringMatching(/hashes to/) });
    const onlyHash = await post({ sidecarSha256: good }, 2);
    expect((await onlyHash.json() as { code: string }).code).toBe('invalid_manifest');
    const otherParsed = await post({ sidecarSha256: good, sidecarBase64: base64, sidecar: { ...parsed, category: 'uncategorized' } }, 3);
    expect((await otherParsed.json() as { detail: string }).detail).toMatch(/device.sidecar is not the JSON/);
    const fine = await post({ sidecarSha256: good, sidecarBase64: base64, sidecar: parsed }, 5);
    expect(fine.status).toBe(201);
  });
});
