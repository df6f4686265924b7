import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runOnce } from '../../src/dock/index.js';
import { makeTempDir } from '../helpers/tmp.js';
import { dockConfig, makeFmp4, startLoggedServer, TOKEN, type LoggedServer } from '../helpers/dock.js';

describe('a dock whose token the server rejects', () => {
  const dir = makeTempDir('bodycam-badtoken-');
  let server: LoggedServer;
  beforeAll(async () => {
    server = await startLoggedServer();
    const recordings = join(dir.path, 'bays', 'bay-1', 'DCIM', '100BWC');
    mkdirSync(recordings, { recursive: true });
    await makeFmp4(join(recordings, 'OTHER_0001.mp4'), 2);
  });
  afterAll(async () => { await server.close(); dir.cleanup(); });

  it('keeps the evidence queued with a reason that says what to fix, and offloads once the token is fixed', async () => {
    const config = dockConfig(dir.path, server.url, { settle: '0.1s', onceAttempts: 2, maxBackoff: '0.2s', requestRetries: 0 });
    writeFileSync(config.tokenFile!, 'not-the-token\n', { mode: 0o600 });
    const refused = await runOnce({ ...config, token: 'not-the-token' });
    expect(refused.exitCode).toBe(1);
    expect(refused.recordings).toHaveLength(1);
    expect(refused.recordings[0]!.state).not.toBe('quarantined');
    expect(refused.recordings[0]!.reason).toMatch(/token/);

    writeFileSync(config.tokenFile!, TOKEN + '\n', { mode: 0o600 });
    const fixed = await runOnce({ ...config, token: TOKEN });
    expect(fixed.exitCode).toBe(0);
    expect(['completed', 'wiped']).toContain(fixed.recordings[0]!.state);
  });
});
