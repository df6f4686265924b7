import type pg from 'pg';

/**
 * A client checked out of the pool, with an 'error' listener for as long as it is out: a client
 * in use whose connection the server drops (a restart) emits 'error', and an EventEmitter error
 * with no listener would end the process. The failure reaches the caller through the query that
 * was running; `release` closes such a client instead of returning it to the pool.
 */
export async function checkout(pool: pg.Pool): Promise<{ client: pg.PoolClient; release: (failed?: unknown) => void }> {
  const client = await pool.connect();
  let lost: Error | undefined;
  const onError = (error: Error) => { lost = error; };
  client.on('error', onError);
  return {
    client,
    release: (failed?: unknown) => {
      client.off('error', onError);
      const broken = lost ?? (failed instanceof Error ? failed : failed !== undefined ? new Error(String(failed)) : undefined);
      client.release(broken);
    },
  };
}

/**
 * `fn` in one transaction on a client of its own: committed when it returns, rolled back when it
 * throws (and the client closed if the failure may have left it in doubt).
 */
export async function inTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const { client, release } = await checkout(pool);
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    const value = await fn(client);
    await client.query('COMMIT');
    return value;
  } catch (error) {
    broken = error as Error;
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    release(broken);
  }
}
