/** The state conformance suite on both backends: the embedded data dir and PostgreSQL. */
import { afterAll, beforeAll } from '@jest/globals';
import { generateSigningKeyPair } from '../../src/protocol/signing.js';
import { keyIdOf } from '../../src/protocol/signing.js';
import { createPrivateKey } from 'node:crypto';
import { verifyCustody } from '../../src/server/custody/custodyVerify.js';
import { openEmbeddedState } from '../../src/server/embeddedState.js';
import { FsStore } from '../../src/server/store/fsStore.js';
import { verifyPgCustody } from '../../src/server/pg/pgExport.js';
import { openPgState } from '../../src/server/pg/pgState.js';
import type { ServerKey } from '../../src/server/trust/serverKey.js';
import { loadOrCreateServerKey } from '../../src/server/trust/serverKey.js';
import { createLogger } from '../../src/log.js';
import { makeTempDir } from '../helpers/tmp.js';
import { startTestPostgres, type TestPostgres } from '../helpers/postgres.js';
import { runStateConformance } from './stateConformance.js';

const quiet = createLogger({ component: 'test' }, 'error');

runStateConformance('embedded (data dir)', async () => {
  const dir = makeTempDir();
  const key = await loadOrCreateServerKey(dir.path);
  const openOne = async () => {
    const store = new FsStore(dir.path);
    await store.open();
    return openEmbeddedState(dir.path, store, { serverKey: key });
  };
  return {
    state: await openOne(), reopen: openOne, shared: false,
    verify: () => verifyCustody({ dataDir: dir.path }),
    cleanup: async () => { dir.cleanup(); },
  };
});

let postgres: TestPostgres;
beforeAll(async () => { postgres = await startTestPostgres(); });
afterAll(async () => { await postgres?.stop(); });

function testKey(): ServerKey {
  const pair = generateSigningKeyPair();
  return { privateKey: createPrivateKey(pair.privateKeyPem), publicKeyPem: pair.publicKeyPem, keyId: keyIdOf(pair.publicKeyPem) };
}

runStateConformance('PostgreSQL', async () => {
  const url = await postgres.createDatabase();
  const key = testKey();
  const openOne = () => openPgState(url, { serverKey: key, log: quiet });
  return {
    state: await openOne(), reopen: openOne, shared: true,
    verify: () => verifyPgCustody(url),
    cleanup: async () => {},
  };
});
