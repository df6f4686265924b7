// Fault proxy cost and accuracy: throughput in pass mode against a direct connection, peak RSS
// while a large body crosses it, and how close the bandwidth mode holds its cap.
// `npm run bench replay-proxy` (after `npm run build`).
import { createServer, connect } from 'node:net';
import { once } from 'node:events';
import { startFaultProxy } from '../../dist/faultproxy/faultProxy.js';

const TOTAL = 512 * 1024 * 1024;
const CHUNK = Buffer.alloc(256 * 1024, 7);

async function sink() {
  const server = createServer((socket) => {
    let received = 0;
    socket.on('data', (d) => { received += d.length; });
    socket.on('end', () => socket.end(String(received)));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return server;
}

async function push(port, total) {
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  const started = process.hrtime.bigint();
  let sent = 0;
  let peakRss = process.memoryUsage().rss;
  while (sent < total) {
    const piece = CHUNK.subarray(0, Math.min(CHUNK.length, total - sent));
    sent += piece.length;
    if (!socket.write(piece)) await once(socket, 'drain');
    if ((sent & (64 * 1024 * 1024 - 1)) === 0) peakRss = Math.max(peakRss, process.memoryUsage().rss);
  }
  socket.end();
  let answer = '';
  socket.on('data', (d) => { answer += d; });
  await once(socket, 'end');
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (Number(answer) !== total) throw new Error(`sink received ${answer}, sent ${total}`);
  return { seconds, mbps: total / seconds / 1e6, peakRss };
}

const server = await sink();
const port = server.address().port;
const direct = await push(port, TOTAL);
const proxy = await startFaultProxy({ target: { host: '127.0.0.1', port } });
const proxied = await push(proxy.port, TOTAL);
console.log(`direct:        ${direct.mbps.toFixed(0)} MB/s (${(TOTAL / 2 ** 20).toFixed(0)} MiB)`);
console.log(`through proxy: ${proxied.mbps.toFixed(0)} MB/s, peak RSS ${(proxied.peakRss / 2 ** 20).toFixed(0)} MiB (pass mode)`);
for (const cap of [1_000_000, 10_000_000]) {
  await proxy.setMode({ kind: 'bandwidth', bytesPerSecond: cap });
  const bytes = cap * 3;
  const capped = await push(proxy.port, bytes);
  console.log(`bandwidth cap ${(cap / 1e6).toFixed(0)} MB/s: achieved ${(bytes / capped.seconds / 1e6).toFixed(2)} MB/s over ${capped.seconds.toFixed(1)} s`);
}
await proxy.close();
server.close();
