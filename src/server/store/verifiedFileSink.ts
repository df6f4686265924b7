/**
 * The filesystem store's write of a segment body into its temp file, as one stage: each chunk is
 * counted and hashed (verifiedWrite.ts bodyCheck) and then written, the chunks that queued while a
 * write was in flight go in one writev(2), and the file is fsynced before it is closed. It stands
 * for a verifying Transform piped into fs.WriteStream: the same checks in the same order, with one
 * stream stage less per 64 KiB socket chunk on the server's one thread (docs/benchmarks.md,
 * "The ingest server's side, session 5").
 */
import { close, fsync, open, writev } from 'node:fs';
import { Writable } from 'node:stream';
import type { BodyCheck } from './verifiedWrite.js';

export class VerifiedFileSink extends Writable {
  private fd: number | undefined;
  /** A write in flight: a destroy waits for it, so the descriptor is never closed under it (and reused). */
  private writing: (() => void) | undefined;
  /** True once the file was fsynced and closed (what `flush: true` + close gave). */
  synced = false;

  constructor(private readonly path: string, private readonly mode: number, private readonly counted: BodyCheck) {
    super({ highWaterMark: 1 << 20, decodeStrings: false });
  }

  override _construct(callback: (error?: Error | null) => void): void {
    // wx: a temp name is never reused; the mode is also set again by the caller (umask).
    open(this.path, 'wx', this.mode, (error, fd) => {
      if (error) { callback(error); return; }
      this.fd = fd;
      callback();
    });
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.writeAll([chunk], callback);
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, callback: (error?: Error | null) => void): void {
    this.writeAll(chunks.map((c) => c.chunk), callback);
  }

  private writeAll(buffers: Buffer[], callback: (error?: Error | null) => void): void {
    try {
      for (const chunk of buffers) this.counted.take(chunk);
    } catch (error) {
      callback(error as Error);
      return;
    }
    const done = (error?: Error | null) => {
      const waiting = this.writing;
      this.writing = undefined;
      callback(error);
      waiting?.();
    };
    const next = (list: Buffer[]) => {
      writev(this.fd!, list, (error, written) => {
        if (error) { done(error); return; }
        const rest = dropWritten(list, written);
        if (rest.length && !this.destroyed) next(rest); else done();
      });
    };
    this.writing = () => {};
    next(buffers);
  }

  override _final(callback: (error?: Error | null) => void): void {
    fsync(this.fd!, (error) => {
      if (error) { callback(error); return; }
      const fd = this.fd!;
      this.fd = undefined;
      close(fd, (closeError) => {
        if (!closeError) this.synced = true;
        callback(closeError);
      });
    });
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const closeFd = () => {
      if (this.fd === undefined) { callback(error); return; }
      const fd = this.fd;
      this.fd = undefined;
      close(fd, () => callback(error));
    };
    if (this.writing) this.writing = closeFd; else closeFd();
  }
}

/** What is left of `list` after a writev(2) that wrote `written` bytes (short writes are rare, not impossible). */
function dropWritten(list: Buffer[], written: number): Buffer[] {
  let i = 0;
  while (i < list.length && written >= list[i]!.length) { written -= list[i]!.length; i++; }
  if (i === list.length) return [];
  return [list[i]!.subarray(written), ...list.slice(i + 1)];
}
