import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { existsSync, mkdirSync, openSync, readSync, statSync, utimesSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { recordCamera } from '../../src/camera/index.js';
import { runOnce } from '../../src/dock/index.js';
import { makeTempDir } from '../helpers/tmp.js';
import { dockConfig, serverKeyFile, startLoggedServer, type LoggedServer } from '../helpers/dock.js';

const WHOLE_SECOND = 1_700_000_000;

describe('the wipe re-proves the bytes', () => {
  const dir = makeTempDir('bodycam-wipeguard-');
  let server: LoggedServer;
  let media: string;
  beforeAll(async () => {
    server = await startLoggedServer();
    mkdirSync(join(dir.path, 'bays'), { recursive: true });
    const result = await recordCamera({ storage: join(dir.path, 'bays', 'bay-1'), count: 1, durationSeconds: 2, seed: 'wipe-guard', width: 160, height: 120, fps: 10 });
    media = result.files[0]!.mediaPath;
    // A whole-second mtime, so that restoring it after the edit is exact (utimes takes float seconds).
    utimesSync(media, WHOLE_SECOND, WHOLE_SECOND);
  });
  afterAll(async () => { await server.close(); dir.cleanup(); });

  it('keeps a receipted file whose bytes were changed with its size and mtime kept', async () => {
    const config = dockConfig(dir.path, server.url, { settle: '0.1s' });
    const first = await runOnce(config);
    expect(first.exitCode).toBe(0);
    expect(first.recordings[0]!.state).toBe('completed');

    // Same size, same mtime, one byte different: what `cp -p` of another file or a bad sector looks like.
    const before = statSync(media);
    const fd = openSync(media, 'r+');
    const byte = Buffer.alloc(1);
    readSync(fd, byte, 0, 1, Math.floor(before.size / 2));
    writeSync(fd, Buffer.from([byte[0]! ^ 0xff]), 0, 1, Math.floor(before.size / 2));
    closeSync(fd);
    utimesSync(media, WHOLE_SECOND, WHOLE_SECOND);
    expect(statSync(media).mtimeMs).toBe(before.mtimeMs);

    // The edit changed the file's ctime: the receipted row no longer vouches for it, the scan
    // re-hashes it, and the new bytes are a new version (a new recording), never the receipted one.
    const second = await runOnce({ ...config, wipeAfterIngest: true, serverKey: serverKeyFile(server) });
    expect(existsSync(media)).toBe(true);
    expect(second.recordings).toHaveLength(1);
    expect(second.recordings[0]!.recordingId).not.toBe(first.recordings[0]!.recordingId);
    expect(second.recordings[0]!.state).toBe('completed');
    // The camera's sidecar vouches for the old bytes: the new version is flagged, so it is kept.
    expect(second.recordings[0]!.integrity).not.toBe('verified');
  });
});
