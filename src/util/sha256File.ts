import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { readChunks } from './chunkReader.js';

/** Hex SHA-256 of a file's bytes, read in 1 MiB chunks into two reused buffers (memory flat in file size). */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  const handle = await open(path, 'r');
  try {
    for await (const chunk of readChunks(handle)) hash.update(chunk);
  } finally {
    await handle.close();
  }
  return hash.digest('hex');
}
