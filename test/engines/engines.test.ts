import { afterAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promisify } from 'node:util';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import pg from 'pg';
import { engines, ENGINES_SCRIPT, freshBucket, parseEnv } from '../helpers/engines.js';

const run = promisify(execFile);

describe('scripts/engines.sh: the engines the tests use', () => {
  let client: S3Client | undefined;
  afterAll(() => client?.destroy());

  it('gives a working S3 endpoint (RGW, Content-MD5 checked) and PostgreSQL, and reprints the same env on a second up', async () => {
    const env = await engines();
    client = new S3Client({
      endpoint: env.s3Endpoint, region: env.region, forcePathStyle: true,
      credentials: { accessKeyId: env.accessKeyId, secretAccessKey: env.secretAccessKey },
      requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED',
    });
    const bucket = freshBucket('engines');
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
    const body = Buffer.from('evidence bytes');
    const md5 = createHash('md5').update(body).digest('base64');
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'a', Body: body, ContentMD5: md5 }));
    const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: 'a' }));
    expect(Buffer.from(await got.Body!.transformToByteArray()).equals(body)).toBe(true);
    // A wrong Content-MD5 is refused: the engine really checks what it is sent.
    const wrong = createHash('md5').update('other').digest('base64');
    await expect(client.send(new PutObjectCommand({ Bucket: bucket, Key: 'b', Body: body, ContentMD5: wrong }))).rejects.toMatchObject({ name: 'BadDigest' });

    const db = new pg.Client({ connectionString: env.databaseUrl });
    await db.connect();
    try {
      const { rows } = await db.query<{ v: string }>("SELECT current_setting('server_version') AS v");
      expect(rows[0]!.v).toMatch(/^15\./);
    } finally {
      await db.end();
    }

    if (env.dir) {
      const { stdout } = await run('bash', [ENGINES_SCRIPT, 'status', env.dir]);
      expect(parseEnv(stdout).S3_ENDPOINT).toBe(env.s3Endpoint);
      expect(stdout).not.toContain('NOT running');
      const again = await run('bash', [ENGINES_SCRIPT, 'up', env.dir]);
      expect(parseEnv(again.stdout)).toEqual(parseEnv(stdout));
    }
  });

  it('a gateway of its own: stopped, the S3 API is unreachable there (the shared one still answers); started again, the same objects', async () => {
    const env = await engines();
    const own = await env.gateway('enginestest');
    const via = (endpoint: string) => new S3Client({
      endpoint, region: env.region, forcePathStyle: true, maxAttempts: 1,
      credentials: { accessKeyId: env.accessKeyId, secretAccessKey: env.secretAccessKey },
      requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED',
    });
    const mine = via(own.endpoint);
    const common = via(env.s3Endpoint);
    try {
      expect(own.endpoint).not.toBe(env.s3Endpoint);
      const bucket = freshBucket('gateway');
      await mine.send(new CreateBucketCommand({ Bucket: bucket }));
      await mine.send(new PutObjectCommand({ Bucket: bucket, Key: 'k', Body: Buffer.from('kept') }));
      await own.stop();
      await expect(mine.send(new GetObjectCommand({ Bucket: bucket, Key: 'k' }))).rejects.toThrow(/ECONNREFUSED/);
      const shared = await common.send(new GetObjectCommand({ Bucket: bucket, Key: 'k' }));
      expect(await shared.Body!.transformToString()).toBe('kept');
      await own.start();
      const back = await mine.send(new GetObjectCommand({ Bucket: bucket, Key: 'k' }));
      expect(await back.Body!.transformToString()).toBe('kept');
    } finally {
      mine.destroy();
      common.destroy();
    }
  });
});
