/**
 * Finds where each HTTP/1.1 request starts and ends in a raw client→server byte
 * stream, so the fault proxy can answer whole requests itself (a burst of 503s)
 * and stay in step with the keep-alive connection afterwards.
 *
 * Framing only: head up to CRLFCRLF, then a Content-Length body or a chunked body
 * with trailers. Anything it cannot frame (garbage, an Upgrade) turns the stream
 * opaque: every later byte passes through and no request is ever intercepted.
 */

export interface FramedPiece {
  data: Buffer;
  /** 1-based number of the request on this connection; 0 once the stream is opaque. */
  request: number;
  /** This piece holds the request's first byte. */
  first: boolean;
  /** This piece holds the request's last byte. */
  last: boolean;
}

type State =
  | { at: 'head'; head: Buffer }
  | { at: 'body'; remaining: number }
  | { at: 'chunk-size'; line: Buffer }
  | { at: 'chunk-data'; remaining: number }       // includes the CRLF after the data
  | { at: 'trailers'; line: Buffer }
  | { at: 'opaque' };

const MAX_HEAD_BYTES = 64 * 1024;
const CRLF = Buffer.from('\r\n');

export class HttpRequestFramer {
  private state: State = { at: 'head', head: Buffer.alloc(0) };
  private request = 0;
  private inRequest = false;

  get opaque(): boolean {
    return this.state.at === 'opaque';
  }

  /** Split a chunk into pieces that never straddle two requests. */
  push(chunk: Buffer): FramedPiece[] {
    const pieces: FramedPiece[] = [];
    let offset = 0;
    while (offset < chunk.length) {
      if (this.state.at === 'opaque') {
        pieces.push({ data: chunk.subarray(offset), request: 0, first: false, last: false });
        break;
      }
      const first = !this.inRequest;
      if (first) {
        this.request++;
        this.inRequest = true;
      }
      const used = this.consume(chunk, offset);
      const ended = !this.inRequest;
      pieces.push({ data: chunk.subarray(offset, offset + used), request: this.request, first, last: ended });
      offset += used;
    }
    return mergeSameRequest(pieces);
  }

  /** Advance the state machine over chunk[offset..]; returns bytes used (>= 1). */
  private consume(chunk: Buffer, offset: number): number {
    const state = this.state;
    switch (state.at) {
      case 'head': {
        const before = state.head.length;
        const joined = Buffer.concat([state.head, chunk.subarray(offset)]);
        const end = joined.indexOf('\r\n\r\n');
        if (end < 0) {
          if (joined.length > MAX_HEAD_BYTES) return this.goOpaque(chunk.length - offset);
          state.head = joined;
          return chunk.length - offset;
        }
        const headBytes = end + 4;
        const used = headBytes - before;
        this.afterHead(joined.subarray(0, headBytes).toString('latin1'));
        return used;
      }
      case 'body': {
        const used = Math.min(state.remaining, chunk.length - offset);
        state.remaining -= used;
        if (state.remaining === 0) this.endRequest();
        return used;
      }
      case 'chunk-size':
      case 'trailers': {
        const joined = Buffer.concat([state.line, chunk.subarray(offset)]);
        const end = joined.indexOf(CRLF);
        if (end < 0) {
          if (joined.length > MAX_HEAD_BYTES) return this.goOpaque(chunk.length - offset);
          state.line = joined;
          return chunk.length - offset;
        }
        const used = end + 2 - state.line.length;
        const line = joined.subarray(0, end).toString('latin1');
        if (state.at === 'trailers') {
          if (line === '') this.endRequest();
          else this.state = { at: 'trailers', line: Buffer.alloc(0) };
          return used;
        }
        const size = Number.parseInt(line.split(';')[0]!.trim(), 16);
        if (!Number.isFinite(size) || size < 0) return this.goOpaque(used);
        this.state = size === 0 ? { at: 'trailers', line: Buffer.alloc(0) } : { at: 'chunk-data', remaining: size + 2 };
        return used;
      }
      case 'chunk-data': {
        const used = Math.min(state.remaining, chunk.length - offset);
        state.remaining -= used;
        if (state.remaining === 0) this.state = { at: 'chunk-size', line: Buffer.alloc(0) };
        return used;
      }
      case 'opaque':
        return chunk.length - offset;
    }
  }

  private afterHead(head: string): void {
    const lines = head.split('\r\n');
    if (!/^[A-Z]+ \S+ HTTP\/1\.[01]$/.test(lines[0] ?? '')) {
      this.state = { at: 'opaque' };
      return;
    }
    const headers = new Map<string, string>();
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
    if (headers.has('upgrade') || lines[0]!.startsWith('CONNECT ')) {
      this.state = { at: 'opaque' };
      return;
    }
    if (/chunked/i.test(headers.get('transfer-encoding') ?? '')) {
      this.state = { at: 'chunk-size', line: Buffer.alloc(0) };
      return;
    }
    const length = Number(headers.get('content-length') ?? '0');
    if (!Number.isSafeInteger(length) || length < 0) {
      this.state = { at: 'opaque' };
      return;
    }
    if (length === 0) this.endRequest();
    else this.state = { at: 'body', remaining: length };
  }

  private endRequest(): void {
    this.inRequest = false;
    this.state = { at: 'head', head: Buffer.alloc(0) };
  }

  private goOpaque(used: number): number {
    this.state = { at: 'opaque' };
    return used;
  }
}

/** Adjacent pieces of one request (head, then body) become one piece. */
function mergeSameRequest(pieces: FramedPiece[]): FramedPiece[] {
  const merged: FramedPiece[] = [];
  for (const piece of pieces) {
    const previous = merged[merged.length - 1];
    if (previous && previous.request === piece.request && !previous.last && !piece.first) {
      merged[merged.length - 1] = {
        data: Buffer.concat([previous.data, piece.data]),
        request: piece.request,
        first: previous.first,
        last: piece.last,
      };
    } else {
      merged.push(piece);
    }
  }
  return merged;
}
