/**
 * Sequential reads of an open file into two buffers reused for the whole read, the next read in
 * flight while the consumer holds the current chunk. A read stream allocates a fresh buffer per
 * chunk instead; on this VM the page faults of filling fresh memory cost more CPU than hashing
 * the bytes, and the memory outside the JS heap made V8 run a full mark-compact every ~64 MB
 * read (docs/benchmarks.md, "Dock offload"). The dock's hasher, its upload bodies and the
 * wipe's re-read, and the server's blob scans, all read through here.
 */
import { read as readFd } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { InputError } from '../errors.js';

/** What readChunks reads from: an open FileHandle, or a bare descriptor (fdSource). */
export interface ChunkSource { read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }> }

/**
 * Positional reads of a descriptor this code did not open and must not close: a worker thread
 * reading through the descriptor the main thread holds (the same open file, not the same path).
 */
export function fdSource(fd: number): ChunkSource {
  return {
    read: (buffer, offset, length, position) => new Promise((resolve, reject) => {
      readFd(fd, buffer, offset, length, position, (error, bytesRead) => (error ? reject(error) : resolve({ bytesRead })));
    }),
  };
}

/** Chunk size of a read with no buffers given. */
export const CHUNK_BYTES = 1 << 20;

export interface ReadChunksOptions {
  /** First byte to read (default 0). */
  position?: number;
  /**
   * Bytes to read. Undefined: up to the end of the file, however long it is now. A file that
   * ends before `length` bytes were read is an InputError `E_FILE_CHANGED`.
   */
  length?: number;
  /**
   * The two buffers to read into (same length: the chunk size), for a caller that reuses them
   * for the next file. Default: two of CHUNK_BYTES (or `chunkBytes`) allocated for this read.
   */
  buffers?: readonly [Buffer, Buffer];
  chunkBytes?: number;
  /** The file's name for the error of a file that ends early. */
  name?: string;
  /** Checked before each chunk is handed out. */
  signal?: AbortSignal;
}

/**
 * The chunks of a file (or of the range `position`, `length`) in order. A chunk is a view of one
 * of the two buffers and stays valid only until the consumer asks for the next one: whoever
 * keeps bytes past that point must copy them. When the loop is left early (break, throw) the
 * read in flight is awaited before the generator returns, so the caller may close the handle.
 */
export async function* readChunks(handle: ChunkSource, options: ReadChunksOptions = {}): AsyncGenerator<Buffer, void, undefined> {
  const start = options.position ?? 0;
  const { length } = options;
  const buffers = options.buffers ?? [Buffer.allocUnsafeSlow(options.chunkBytes ?? CHUNK_BYTES), Buffer.allocUnsafeSlow(options.chunkBytes ?? CHUNK_BYTES)];
  const size = buffers[0].length;
  if (size === 0 || buffers[1].length !== size) throw new RangeError('readChunks needs two buffers of the same, non-zero length');
  let done = 0;
  const next = (into: Buffer): Promise<{ bytesRead: number }> => handle.read(into, 0, length === undefined ? size : Math.min(size, length - done), start + done);
  let which = 0;
  let pending: Promise<{ bytesRead: number }> | undefined = length === 0 ? undefined : next(buffers[0]);
  try {
    while (pending) {
      const { bytesRead } = await pending;
      pending = undefined;
      if (bytesRead === 0) {
        if (length !== undefined) throw new InputError('E_FILE_CHANGED', `${options.name ?? 'the file'} ended ${length - done} bytes before the ${length}-byte range at ${start} it should hold`);
        return;
      }
      options.signal?.throwIfAborted();
      const chunk = buffers[which]!.subarray(0, bytesRead);
      done += bytesRead;
      which ^= 1;
      // The other buffer's chunk was handed out last round and the consumer asked past it: free to fill.
      if (length === undefined || done < length) pending = next(buffers[which]!);
      yield chunk;
    }
  } finally {
    await pending?.catch(() => {});
  }
}

/**
 * Small positional reads (box headers, a fragment's moof) served from one read-ahead window:
 * walking a fragmented MP4 header by header cost one fs round trip per 16 bytes, about three
 * per fragment and twice per file (planner and sample tables), ~0.2 CPU s per 250 MB file
 * (docs/benchmarks.md). A fragment's moof and the mdat header after it fall in one window (a
 * moof is 1-10 KB for 1-10 s fragments; a bigger one is read on its own). Every read returns a
 * fresh buffer the caller may keep.
 */
export class WindowReader {
  private readonly window: Buffer;
  private start = 0;
  private filled = 0;

  constructor(private readonly handle: FileHandle, windowBytes = 16 * 1024) {
    this.window = Buffer.allocUnsafe(windowBytes);
  }

  /** Bytes [offset, offset + length), fewer at the end of the file. */
  async read(offset: number, length: number): Promise<Buffer> {
    if (offset >= this.start && offset + length <= this.start + this.filled) return Buffer.from(this.window.subarray(offset - this.start, offset - this.start + length));
    if (length > this.window.length) {
      const buffer = Buffer.alloc(length);
      const { bytesRead } = await this.handle.read(buffer, 0, length, offset);
      return buffer.subarray(0, bytesRead);
    }
    this.filled = 0;
    const { bytesRead } = await this.handle.read(this.window, 0, this.window.length, offset);
    this.start = offset;
    this.filled = bytesRead;
    return Buffer.from(this.window.subarray(0, Math.min(length, bytesRead)));
  }
}
