/**
 * The last line of a file read from its end, so that finding it costs the same for a log of
 * ten lines as for one of ten million (the custody log and its checkpoints are opened this way
 * at every start). The read starts with a window of 64 KiB before `end` and grows it fourfold
 * while the window holds no whole line; a line longer than the window is found all the same.
 */
import type { FileHandle } from 'node:fs/promises';

const FIRST_WINDOW = 64 * 1024;

export interface LastLine {
  /** The last line that ends with a newline at or before `end`, without its newline; undefined when there is none. */
  line: string | undefined;
  /** Bytes after that newline up to `end`: a torn last line (a crash mid-append), or all of them when no newline. */
  torn: number;
}

/**
 * The last whole line among the file's first `end` bytes. Undefined when the file ends before
 * `end` (it was cut short since the caller learnt its size).
 */
export async function readLastLineBefore(handle: FileHandle, end: number, firstWindow = FIRST_WINDOW): Promise<LastLine | undefined> {
  let window = firstWindow;
  for (;;) {
    const start = Math.max(0, end - window);
    const buffer = Buffer.alloc(end - start);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, start);
    if (bytesRead !== buffer.length) return undefined;
    const lastNewline = buffer.lastIndexOf(0x0a);
    // No newline in the window: the line may begin further back (or there is none at all).
    if (lastNewline < 0) {
      if (start > 0) { window *= 4; continue; }
      return { line: undefined, torn: end };
    }
    const previous = lastNewline === 0 ? -1 : buffer.lastIndexOf(0x0a, lastNewline - 1);
    // The line's start is not in the window unless a newline precedes it or the window reaches byte 0.
    if (previous < 0 && start > 0) { window *= 4; continue; }
    return { line: buffer.subarray(previous + 1, lastNewline).toString('utf8'), torn: buffer.length - lastNewline - 1 };
  }
}
