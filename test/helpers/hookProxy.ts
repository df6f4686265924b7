/**
 * An HTTP proxy on 127.0.0.1 between a dock and the server that runs a hook when a request's head
 * arrives, before it is forwarded: a test changes the card at a chosen request (the PUT of
 * segment 3, say) instead of after a sleep or a poll that a loaded machine can overrun. The
 * request waits for the hook, so what the hook did is done before the server sees that request.
 */
import { createServer, request, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface HookProxy {
  url: string;
  /** `METHOD path` of every request seen, in order. */
  seen: string[];
  close(): Promise<void>;
}

export async function startHookProxy(target: string, hook: (req: IncomingMessage) => void | Promise<void>): Promise<HookProxy> {
  const seen: string[] = [];
  const upstream = new URL(target);
  const server = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    req.pause();
    void Promise.resolve().then(() => hook(req)).then(() => {
      const out = request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      });
      out.on('error', () => res.destroy());
      req.on('error', () => out.destroy());
      // The dock gave up on the body (its file failed): the server must see that request fail too.
      req.on('close', () => { if (!req.complete) out.destroy(); });
      req.pipe(out);
      req.resume();
    }, () => res.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: async () => { server.closeAllConnections(); await new Promise((resolve) => server.close(resolve)); },
  };
}
