import { createReadStream } from 'node:fs';
import { createHash } from 'node:crypto';

/** Hex SHA-256 of a file's bytes, streamed in 1 MiB reads (memory flat in file size). */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
