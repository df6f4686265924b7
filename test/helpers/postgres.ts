/**
 * A real PostgreSQL for tests. With DATABASE_URL set (CI: scripts/engines.sh up prints it), each
 * test database is created on that server; otherwise a throw-away cluster (Debian's PostgreSQL,
 * /usr/lib/postgresql/<v>/bin) is started in a temp folder for the test file, on 127.0.0.1 and a
 * free port, without fsync (about 1.5 s), and removed at the end. No PostgreSQL installed is a
 * failure with the command that fixes it, never a silent skip.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

export interface TestPostgres {
  /** A new empty database on this server (dropped by stop()). */
  createDatabase(): Promise<string>;
  /** Stop the server (only a cluster this helper started); databases are kept. */
  stopServer(): void;
  /** Start it again after stopServer(), same port and data. */
  startServer(): void;
  stop(): Promise<void>;
}

function pgBin(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).filter((v) => existsSync(join(root, v, 'bin', 'initdb'))).sort((a, b) => Number(b) - Number(a)) : [];
  if (!versions.length) throw new Error('PostgreSQL is not installed: run `scripts/engines.sh install` (or `apt-get install -y postgresql`), or set DATABASE_URL to a server the tests may create databases on');
  return join(root, versions[0]!, 'bin');
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** `own`: always a cluster of this file's own (a test that stops and restarts it). */
export async function startTestPostgres(options: { own?: boolean } = {}): Promise<TestPostgres> {
  const given = options.own ? undefined : process.env.DATABASE_URL;
  let adminUrl: string;
  let dir: string | undefined;
  let bin = '';
  let port = 0;
  const asPostgres = (cmd: string, args: string[]) => {
    const r = spawnSync('runuser', ['-u', 'postgres', '--', join(bin, cmd), ...args], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${cmd} failed: ${r.stderr || r.stdout}`);
  };
  const start = () => asPostgres('pg_ctl', ['-D', join(dir!, 'data'), '-l', join(dir!, 'server.log'), '-w', '-t', '30', '-o',
    `-c listen_addresses=127.0.0.1 -c port=${port} -c unix_socket_directories=${dir} -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200`, 'start']);
  const stopCluster = () => { if (dir && existsSync(join(dir, 'data', 'postmaster.pid'))) asPostgres('pg_ctl', ['-D', join(dir, 'data'), '-m', 'fast', '-w', 'stop']); };
  if (given) {
    adminUrl = given;
  } else {
    bin = pgBin();
    dir = mkdtempSync(join(tmpdir(), 'bodycam-pg-'));
    chmodSync(dir, 0o700);
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    chownSync(dir, uid, gid);
    asPostgres('initdb', ['-D', join(dir, 'data'), '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--locale=C.UTF-8', '--no-sync']);
    port = await freePort();
    start();
    adminUrl = `postgres://postgres@127.0.0.1:${port}/postgres`;
  }
  const created: string[] = [];
  const admin = () => new pg.Client({ connectionString: adminUrl });
  return {
    async createDatabase() {
      const name = `bodycam_t_${process.pid}_${created.length}_${Math.random().toString(36).slice(2, 8)}`;
      const client = admin();
      await client.connect();
      try { await client.query(`CREATE DATABASE ${name}`); } finally { await client.end(); }
      created.push(name);
      const url = new URL(adminUrl);
      url.pathname = `/${name}`;
      return url.toString();
    },
    stopServer() {
      if (!dir) throw new Error('stopServer needs the cluster this helper starts (unset DATABASE_URL)');
      stopCluster();
    },
    startServer() {
      if (!dir) throw new Error('startServer needs the cluster this helper starts (unset DATABASE_URL)');
      start();
    },
    async stop() {
      if (dir) {
        stopCluster();
        rmSync(dir, { recursive: true, force: true });
        return;
      }
      const client = admin();
      await client.connect();
      try {
        for (const name of created) await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally { await client.end(); }
    },
  };
}
