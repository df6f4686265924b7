/** HTTPS with required client certificates (certificates made with the openssl CLI). */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { UserStore } from '../../src/server/console/users.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { makeTempDir } from '../helpers/tmp.js';

let tmp: ReturnType<typeof makeTempDir>;
let server: TestServer;
const pem: Record<string, string> = {};

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { cwd: tmp.path, stdio: 'ignore' });
}

function issue(name: string, subject: string, ext: string): void {
  openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject);
  writeFileSync(join(tmp.path, `${name}.ext`), ext);
  openssl('x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', '-extfile', `${name}.ext`);
  pem[`${name}.key`] = readFileSync(join(tmp.path, `${name}.key`), 'utf8');
  pem[`${name}.pem`] = readFileSync(join(tmp.path, `${name}.pem`), 'utf8');
}

beforeAll(async () => {
  tmp = makeTempDir('bodycam-tls-');
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=bodycam test CA');
  pem['ca.pem'] = readFileSync(join(tmp.path, 'ca.pem'), 'utf8');
  issue('server', '/CN=127.0.0.1', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  issue('client', '/CN=dock-1', 'extendedKeyUsage=clientAuth\n');
  server = await startTestServer({ tls: { cert: pem['server.pem']!, key: pem['server.key']!, ca: pem['ca.pem']! } });
});
afterAll(async () => {
  await server?.close();
  tmp.cleanup();
});

function get(path: string, withClientCert: boolean): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(server.url + path, {
      ca: pem['ca.pem'],
      ...(withClientCert ? { cert: pem['client.pem'], key: pem['client.key'] } : {}),
      headers: { authorization: `Bearer ${server.tokens['dock-1']}` },
    }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => { body += d.toString(); });
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('TLS', () => {
  it('serves HTTPS to a client with a certificate from the CA, and refuses one without', async () => {
    expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const ok = await get('/v1/recordings', true);
    expect(ok.status).toBe(200);
    expect(JSON.parse(ok.body)).toEqual({ recordings: [] });
    await expect(get('/v1/recordings', false)).rejects.toThrow();
  });

  it('the console\'s session cookie over HTTPS is Secure, HttpOnly and SameSite=Strict', async () => {
    await new UserStore(server.dataDir).add('rita', 'reviewer', 'correct horse battery');
    const body = 'name=rita&password=correct+horse+battery';
    const answer = await new Promise<{ status: number; cookie: string }>((resolve, reject) => {
      const req = request(`${server.url}/console/login`, {
        method: 'POST', ca: pem['ca.pem'], cert: pem['client.pem'], key: pem['client.key'],
        headers: { origin: server.url, 'content-type': 'application/x-www-form-urlencoded', 'content-length': String(body.length) },
      }, (res) => { res.resume(); res.on('end', () => resolve({ status: res.statusCode!, cookie: String(res.headers['set-cookie'] ?? '') })); });
      req.on('error', reject);
      req.end(body);
    });
    expect(answer.status).toBe(303);
    expect(answer.cookie.split('; ').slice(1).sort()).toEqual(['HttpOnly', expect.stringMatching(/^Max-Age=\d+$/), 'Path=/console', 'SameSite=Strict', 'Secure']);
  });
});
