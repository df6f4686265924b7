/**
 * A fault-injecting TCP proxy on loopback, put between the dock and the ingest
 * server to play a flaky office uplink: outages, resets mid-body, stalls,
 * latency, a bandwidth cap, black holes, half-closed connections and bursts of
 * 503/500/429 answers with Retry-After. Replay scenarios and the reliability
 * tests switch its mode while traffic flows; a mode applies to live
 * connections as well as new ones, because a real outage does not wait for a
 * fresh connection.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import { EnvironmentError, UsageError } from '../errors.js';
import { HttpRequestFramer } from './httpFramer.js';

export type FaultMode =
  | { kind: 'pass' }
  /** refuse: the listening socket is closed (ECONNREFUSED); reset: every connection is reset on accept. */
  | { kind: 'down'; how?: 'refuse' | 'reset' }
  /** Reset a connection once it has carried `bytes` client→server bytes in this mode; after `times` resets, back to the mode before. */
  | { kind: 'reset-after-bytes'; bytes: number; times?: number }
  /** Hold every byte in both directions; connections stay open. */
  | { kind: 'stall' }
  /** Delay every chunk by `ms` in each direction. */
  | { kind: 'latency'; ms: number }
  /** Cap the throughput of each direction, summed over all connections. */
  | { kind: 'bandwidth'; bytesPerSecond: number }
  /** Accept, read and drop; never connect upstream and never answer. A black-holed connection stays dead. */
  | { kind: 'blackhole' }
  /** As soon as a client sends, FIN both sides: the request is cut and no answer comes. */
  | { kind: 'half-close' }
  /** Answer the next `count` HTTP requests with `status` (+ Retry-After), then back to the mode before. */
  | { kind: 'http-status'; status: number; count: number; retryAfterSeconds?: number };

export type FaultModeKind = FaultMode['kind'];
export const FAULT_MODE_KINDS: readonly FaultModeKind[] = [
  'pass', 'down', 'reset-after-bytes', 'stall', 'latency', 'bandwidth', 'blackhole', 'half-close', 'http-status',
];

export interface FaultProxyStats {
  connections: number;          // accepted
  active: number;               // open now
  requests: number;             // HTTP requests seen starting
  bytesToServer: number;
  bytesToClient: number;
  resets: number;               // connections reset mid-stream by reset-after-bytes
  severed: number;              // live connections reset when the link went down
  refused: number;              // connections reset on accept while down
  blackholed: number;
  halfClosed: number;
  statusAnswers: number;        // requests answered by the proxy itself
  upstreamFailures: number;     // upstream could not be reached
}

export interface FaultProxyOptions {
  target: { host: string; port: number };
  /** Where to listen; loopback only by design. */
  host?: string;
  port?: number;
  mode?: FaultMode;
}

export interface FaultProxy {
  readonly port: number;
  readonly url: string;
  readonly mode: FaultMode;
  readonly stats: FaultProxyStats;
  setMode(mode: FaultMode | FaultModeKind): Promise<void>;
  close(): Promise<void>;
}

const HIGH_WATER = 256 * 1024;
const LOW_WATER = 64 * 1024;

export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const proxy = new FaultProxyImpl(options);
  await proxy.listen(options.port ?? 0);
  if (options.mode) await proxy.setMode(options.mode);
  return proxy;
}

/** Modes that end by themselves once their count of answers or resets is spent. */
export function hasBudget(mode: FaultMode): boolean {
  return mode.kind === 'http-status' || (mode.kind === 'reset-after-bytes' && mode.times !== undefined);
}

/** Modes in which the link carries traffic, possibly slowly: not a fault in progress. */
export function isWorkingLink(mode: FaultMode): boolean {
  return mode.kind === 'pass' || mode.kind === 'latency' || mode.kind === 'bandwidth';
}

/** Check a mode from a scenario or a flag; throws a UsageError naming the bad field. */
export function normalizeFaultMode(input: FaultMode | FaultModeKind): FaultMode {
  const mode = (typeof input === 'string' ? { kind: input } : input) as FaultMode;
  const positive = (value: unknown, name: string): void => {
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
      throw new UsageError(`fault mode ${mode.kind}: ${name} must be a positive number`, { code: 'E_FAULT_MODE' });
    }
  };
  switch (mode.kind) {
    case 'pass': case 'stall': case 'blackhole': case 'half-close':
      return { kind: mode.kind };
    case 'down':
      if (mode.how !== undefined && mode.how !== 'refuse' && mode.how !== 'reset') {
        throw new UsageError('fault mode down: how must be "refuse" or "reset"', { code: 'E_FAULT_MODE' });
      }
      return { kind: 'down', how: mode.how ?? 'refuse' };
    case 'reset-after-bytes':
      if (typeof mode.bytes !== 'number' || !Number.isInteger(mode.bytes) || mode.bytes < 0) {
        throw new UsageError('fault mode reset-after-bytes: bytes must be a whole number >= 0', { code: 'E_FAULT_MODE' });
      }
      if (mode.times !== undefined) positive(mode.times, 'times');
      return { kind: 'reset-after-bytes', bytes: mode.bytes, ...(mode.times !== undefined ? { times: mode.times } : {}) };
    case 'latency':
      positive(mode.ms, 'ms');
      return { kind: 'latency', ms: mode.ms };
    case 'bandwidth':
      positive(mode.bytesPerSecond, 'bytesPerSecond');
      return { kind: 'bandwidth', bytesPerSecond: mode.bytesPerSecond };
    case 'http-status':
      if (!Number.isInteger(mode.status) || mode.status < 400 || mode.status > 599) {
        throw new UsageError('fault mode http-status: status must be 400-599', { code: 'E_FAULT_MODE' });
      }
      positive(mode.count, 'count');
      if (mode.retryAfterSeconds !== undefined && !(mode.retryAfterSeconds >= 0)) {
        throw new UsageError('fault mode http-status: retryAfterSeconds must be >= 0', { code: 'E_FAULT_MODE' });
      }
      return { kind: 'http-status', status: mode.status, count: mode.count, ...(mode.retryAfterSeconds !== undefined ? { retryAfterSeconds: mode.retryAfterSeconds } : {}) };
    default:
      throw new UsageError(`unknown fault mode ${JSON.stringify((mode as { kind?: unknown }).kind)}: use one of ${FAULT_MODE_KINDS.join(', ')}`, { code: 'E_FAULT_MODE' });
  }
}

class FaultProxyImpl implements FaultProxy {
  readonly stats: FaultProxyStats = {
    connections: 0, active: 0, requests: 0, bytesToServer: 0, bytesToClient: 0, resets: 0, severed: 0, refused: 0,
    blackholed: 0, halfClosed: 0, statusAnswers: 0, upstreamFailures: 0,
  };
  private current: FaultMode = { kind: 'pass' };
  private fallback: FaultMode = { kind: 'pass' };
  private server: Server;
  private listening = false;
  private boundPort = 0;
  private readonly host: string;
  private readonly connections = new Set<Connection>();
  /** Bandwidth pacing: when each direction's link is next free (ms epoch). */
  readonly linkFreeAt = { toServer: 0, toClient: 0 };
  /** What is left of the current mode's budget (resets, status answers). */
  remaining = Infinity;
  private closed = false;

  constructor(readonly options: FaultProxyOptions) {
    this.host = options.host ?? '127.0.0.1';
    this.server = createServer({ allowHalfOpen: true }, (socket) => this.accept(socket));
  }

  get port(): number { return this.boundPort; }
  get url(): string { return `http://${this.host}:${this.boundPort}`; }
  get mode(): FaultMode { return this.current; }
  get target(): { host: string; port: number } { return this.options.target; }

  async listen(port: number): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        this.server.listen(port, this.host);
        await once(this.server, 'listening');
        break;
      } catch (cause) {
        // Re-listening after `down` on the same port can race with the kernel's reuse; retry briefly.
        if (attempt >= 20 || port === 0) {
          throw new EnvironmentError('E_PROXY_LISTEN', `fault proxy could not listen on ${this.host}:${port}`, { cause });
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    this.listening = true;
    const address = this.server.address();
    this.boundPort = typeof address === 'object' && address ? address.port : port;
  }

  async setMode(input: FaultMode | FaultModeKind): Promise<void> {
    if (this.closed) return;
    const mode = normalizeFaultMode(input);
    // A fault with a budget falls back to what the link was doing before it (a bandwidth cap, say).
    if (hasBudget(mode) && !hasBudget(this.current)) this.fallback = this.current;
    this.current = mode;
    this.remaining = mode.kind === 'reset-after-bytes' ? (mode.times ?? Infinity)
      : mode.kind === 'http-status' ? mode.count : Infinity;
    if (mode.kind === 'bandwidth') this.linkFreeAt.toServer = this.linkFreeAt.toClient = 0;
    for (const connection of this.connections) connection.onModeChange();
    if (mode.kind === 'down') {
      for (const connection of [...this.connections]) connection.reset('severed');
      if (mode.how === 'refuse' && this.listening) {
        this.listening = false;
        const closing = once(this.server, 'close');
        this.server.close();
        await closing;
      }
    } else if (!this.listening) {
      await this.listen(this.boundPort);
    }
  }

  /** A mode with a budget (times, count) spent it: the link is back to what it was before that mode. */
  budgetSpent(): void {
    if (hasBudget(this.current)) void this.setMode(this.fallback);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const connection of [...this.connections]) connection.destroy();
    if (this.listening) {
      this.listening = false;
      const closing = once(this.server, 'close');
      this.server.close();
      await closing;
    }
  }

  forget(connection: Connection): void {
    if (this.connections.delete(connection)) this.stats.active--;
  }

  private accept(client: Socket): void {
    this.stats.connections++;
    if (this.closed || this.current.kind === 'down') {
      this.stats.refused++;
      client.on('error', () => {});
      client.resetAndDestroy();
      return;
    }
    const connection = new Connection(this, client);
    this.connections.add(connection);
    this.stats.active++;
  }
}

interface Queued {
  data: Buffer;
  at: number;
  end?: boolean;
}

/** One direction of one connection: a queue of chunks released at their time, with backpressure. */
class Lane {
  private queue: Queued[] = [];
  private queuedBytes = 0;
  private lastAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private waitingDrain = false;
  private sourcePaused = false;
  ended = false;           // end marker queued
  dead = false;

  constructor(
    private readonly proxy: FaultProxyImpl,
    private readonly direction: 'toServer' | 'toClient',
    private readonly source: () => Socket | undefined,
    private readonly dest: () => Socket | undefined,
  ) {}

  push(data: Buffer): void {
    if (this.dead || this.ended) return;
    const mode = this.proxy.mode;
    const now = Date.now();
    if (mode.kind === 'bandwidth') {
      // Release in slices so a 64 KiB read does not arrive as one burst after a long pause.
      const slice = Math.max(1024, Math.floor(mode.bytesPerSecond / 20));
      for (let offset = 0; offset < data.length; offset += slice) {
        const piece = data.subarray(offset, offset + slice);
        const start = Math.max(now, this.proxy.linkFreeAt[this.direction]);
        const at = start + (piece.length / mode.bytesPerSecond) * 1000;
        this.proxy.linkFreeAt[this.direction] = at;
        this.enqueue({ data: piece, at });
      }
    } else {
      this.enqueue({ data, at: mode.kind === 'latency' ? now + mode.ms : now });
    }
    this.pump();
  }

  pushEnd(): void {
    if (this.dead || this.ended) return;
    this.ended = true;
    this.enqueue({ data: Buffer.alloc(0), at: Date.now(), end: true });
    this.pump();
  }

  /** Drop everything queued; nothing more goes this way. */
  kill(): void {
    this.dead = true;
    this.queue = [];
    this.queuedBytes = 0;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  get idle(): boolean {
    return this.queue.length === 0;
  }

  pump(): void {
    if (this.dead || this.waitingDrain || this.proxy.mode.kind === 'stall') return;
    const dest = this.dest();
    if (!dest) return;                       // upstream not connected yet: pumped again on connect
    while (this.queue.length > 0) {
      const head = this.queue[0]!;
      const wait = head.at - Date.now();
      if (wait > 0) {
        if (!this.timer) this.timer = setTimeout(() => { this.timer = undefined; this.pump(); }, wait);
        break;
      }
      this.queue.shift();
      this.queuedBytes -= head.data.length;
      if (head.data.length > 0) {
        this.proxy.stats[this.direction === 'toServer' ? 'bytesToServer' : 'bytesToClient'] += head.data.length;
        if (!dest.destroyed && !dest.write(head.data)) {
          this.waitingDrain = true;
          dest.once('drain', () => { this.waitingDrain = false; this.pump(); });
          break;
        }
      }
      if (head.end && !dest.destroyed) dest.end();
    }
    if (this.sourcePaused && this.queuedBytes < LOW_WATER) {
      this.sourcePaused = false;
      this.source()?.resume();
    }
  }

  private enqueue(item: Queued): void {
    item.at = Math.max(item.at, this.lastAt);  // never reorder
    this.lastAt = item.at;
    this.queue.push(item);
    this.queuedBytes += item.data.length;
    if (!this.sourcePaused && this.queuedBytes > HIGH_WATER) {
      this.sourcePaused = true;
      this.source()?.pause();
    }
  }
}

class Connection {
  private upstream: Socket | undefined;
  private readonly toServer: Lane;
  private readonly toClient: Lane;
  private readonly framer = new HttpRequestFramer();
  /** Client→server bytes since the current mode began (for reset-after-bytes). */
  private bytesInMode = 0;
  private blackholed = false;
  private intercepting = false;
  private finished = false;

  constructor(private readonly proxy: FaultProxyImpl, private readonly client: Socket) {
    this.toServer = new Lane(proxy, 'toServer', () => this.client, () => this.upstream?.connecting ? undefined : this.upstream);
    this.toClient = new Lane(proxy, 'toClient', () => this.upstream, () => this.client);
    client.on('data', (chunk: Buffer) => this.onClientData(chunk));
    client.on('end', () => this.toServer.pushEnd());
    client.on('error', () => this.abort('client'));
    client.on('close', () => this.onClose('client'));
    if (proxy.mode.kind === 'blackhole') this.blackhole();
    else this.connectUpstream();
  }

  onModeChange(): void {
    this.bytesInMode = 0;
    if (this.proxy.mode.kind === 'blackhole') this.blackhole();
    this.toServer.pump();
    this.toClient.pump();
  }

  /** Tear down with RST on both sides (a fault, not a close). */
  reset(why: 'resets' | 'severed' = 'resets'): void {
    if (this.finished) return;
    this.proxy.stats[why]++;
    this.destroy(true);
  }

  destroy(withReset = false): void {
    if (this.finished) return;
    this.finished = true;
    this.toServer.kill();
    this.toClient.kill();
    for (const socket of [this.client, this.upstream]) {
      if (!socket || socket.destroyed) continue;
      socket.on('error', () => {});
      if (withReset && !socket.connecting) socket.resetAndDestroy();
      else socket.destroy();
    }
    this.proxy.forget(this);
  }

  private connectUpstream(): void {
    const { host, port } = this.proxy.target;
    const upstream = connect({ host, port, allowHalfOpen: true });
    this.upstream = upstream;
    upstream.on('connect', () => this.toServer.pump());
    upstream.on('data', (chunk: Buffer) => this.onUpstreamData(chunk));
    upstream.on('end', () => this.toClient.pushEnd());
    upstream.on('error', () => {
      if (upstream.connecting || upstream.bytesWritten === 0) this.proxy.stats.upstreamFailures++;
      this.abort('upstream');
    });
    upstream.on('close', () => this.onClose('upstream'));
  }

  private onUpstreamData(chunk: Buffer): void {
    if (this.blackholed || this.finished) return;
    this.toClient.push(chunk);
  }

  private onClientData(chunk: Buffer): void {
    if (this.blackholed || this.finished) return;
    const mode = this.proxy.mode;
    if (mode.kind === 'half-close') {
      this.halfClose();
      return;
    }
    if (mode.kind === 'reset-after-bytes') {
      const allowed = mode.bytes - this.bytesInMode;
      this.bytesInMode += chunk.length;
      if (chunk.length > allowed) {
        this.forward(chunk.subarray(0, Math.max(0, allowed)));
        this.resetWhenFlushed();
        return;
      }
    }
    this.forward(chunk);
  }

  /** Through the framer, so whole requests can be answered by the proxy itself. */
  private forward(chunk: Buffer): void {
    if (chunk.length === 0) return;
    for (const piece of this.framer.push(chunk)) {
      if (piece.first) {
        this.proxy.stats.requests++;
        const mode = this.proxy.mode;
        this.intercepting = mode.kind === 'http-status' && this.proxy.remaining > 0;
        if (this.intercepting) this.proxy.remaining--;
      }
      if (!this.intercepting || piece.request === 0) {
        this.toServer.push(piece.data);
        continue;
      }
      if (piece.last) {
        this.intercepting = false;
        this.answerItself();
      }
    }
  }

  private answerItself(): void {
    const mode = this.proxy.mode;
    const status = mode.kind === 'http-status' ? mode.status : 503;
    const retryAfter = mode.kind === 'http-status' ? mode.retryAfterSeconds ?? 1 : 1;
    const code = status === 429 ? 'rate_limited' : status === 503 ? 'unavailable' : status === 500 ? 'internal' : 'proxy_fault';
    const body = JSON.stringify({
      type: `https://bodycam-dock.invalid/problems/${code}`,
      title: 'Injected by the fault proxy',
      status,
      code,
    });
    const head = [
      `HTTP/1.1 ${status} Injected`,
      'Content-Type: application/problem+json',
      `Content-Length: ${Buffer.byteLength(body)}`,
      `Retry-After: ${retryAfter}`,
      'Connection: keep-alive',
      '', '',
    ].join('\r\n');
    this.proxy.stats.statusAnswers++;
    this.toClient.push(Buffer.from(head + body));
    if (this.proxy.remaining <= 0) this.proxy.budgetSpent();
  }

  private resetWhenFlushed(): void {
    this.blackholed = true;     // nothing more from the client goes anywhere
    this.client.pause();
    const started = Date.now();
    const fire = (): void => {
      this.reset();
      if (this.proxy.mode.kind === 'reset-after-bytes' && --this.proxy.remaining <= 0) this.proxy.budgetSpent();
    };
    // The bytes already let through reach the server before the RST, as on a link cut mid-body.
    const check = (): void => {
      if (this.finished) return;
      const upstream = this.upstream;
      const flushed = this.toServer.idle && !!upstream && !upstream.connecting && upstream.writableLength === 0;
      if (flushed || Date.now() - started > 2000) fire();
      else setTimeout(check, 5);
    };
    check();
  }

  private halfClose(): void {
    this.proxy.stats.halfClosed++;
    this.blackholed = true;
    this.toServer.kill();
    this.toClient.kill();
    this.client.end();
    this.upstream?.end();
  }

  private blackhole(): void {
    if (this.blackholed) return;
    this.blackholed = true;
    this.proxy.stats.blackholed++;
    this.toServer.kill();
    this.toClient.kill();
    this.upstream?.destroy();
    this.upstream = undefined;
    this.client.resume();   // keep reading so the client never sees backpressure, only silence
  }

  private abort(side: 'client' | 'upstream'): void {
    if (this.finished) return;
    // An error on one side is mirrored as a reset on the other, as a router would.
    const other = side === 'client' ? this.upstream : this.client;
    this.finished = true;
    this.toServer.kill();
    this.toClient.kill();
    if (other && !other.destroyed) {
      other.on('error', () => {});
      if (other.connecting) other.destroy();
      else other.resetAndDestroy();
    }
    const self = side === 'client' ? this.client : this.upstream;
    self?.destroy();
    this.proxy.forget(this);
  }

  private onClose(side: 'client' | 'upstream'): void {
    if (this.finished) return;
    if (side === 'upstream' && this.blackholed) return;
    const other = side === 'client' ? this.upstream : this.client;
    const lane = side === 'client' ? this.toServer : this.toClient;
    const towardClosed = side === 'client' ? this.toClient : this.toServer;
    towardClosed.kill();
    if (side === 'client' && this.blackholed) {
      this.destroy();
      return;
    }
    // Whatever the closed side sent still goes out, then the other side is closed too.
    lane.pushEnd();
    const finish = (): void => {
      if (lane.idle || lane.dead) {
        other?.destroySoon();
        this.finished = true;
        this.proxy.forget(this);
      } else {
        setTimeout(finish, 20);
      }
    };
    finish();
  }
}
