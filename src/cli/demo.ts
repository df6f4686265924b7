import type { Command } from 'commander';
import { relative } from 'node:path';
import { UsageError } from '../errors.js';
import { runDemo, type DemoResult } from '../demo/demo.js';
import { BayView } from './render/bays.js';
import { formatBytes, parseDuration, parsePositiveInt } from '../util/units.js';
import { action } from './handler.js';
import { untilStopSignal } from './signals.js';
import { table } from '../util/table.js';

interface DemoFlags {
  dir: string;
  cameras: string;
  recordings: string;
  duration: string;
  size: string;
  port: string;
  stay?: boolean;
}

function parseResolution(text: string): { width: number; height: number } {
  const match = /^(\d{2,4})x(\d{2,4})$/.exec(text);
  const width = Number(match?.[1]);
  const height = Number(match?.[2]);
  if (!match || width % 2 || height % 2 || width < 64 || height < 64) {
    throw new UsageError(`invalid --size "${text}": use WIDTHxHEIGHT with even numbers, e.g. 640x360`);
  }
  return { width, height };
}

function parsePort(text: string): number {
  const port = Number(text);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`invalid --port "${text}": use 0 (a free port) to 65535`);
  return port;
}

/** A path as a person types it here: relative when inside the current folder, shell-quoted when it must be. */
function shown(path: string): string {
  const rel = relative(process.cwd(), path);
  const text = rel === '' ? '.' : rel.startsWith('..') ? path : `./${rel}`;
  return /^[A-Za-z0-9_./+:@%=-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function check(ok: boolean): string {
  return ok ? 'ok' : 'FAILED';
}

export function formatSummary(result: DemoResult, stay: boolean): string {
  const total = result.recordings.reduce((n, r) => n + r.size, 0);
  const lines: string[] = [];
  lines.push('');
  lines.push(result.ok
    ? `Arrived: ${plural(result.recordings.length, 'recording')} (${formatBytes(total)}) from ${plural(result.cameras, 'camera')}, every one verified, in ${result.seconds.toFixed(1)}s.`
    : `PROBLEM: ${result.recordings.length} of ${result.filesRecorded} recordings arrived and not every check passed (details below and in ${shown(result.logFile)}).`);
  lines.push('');
  const rows = [['RECORDING', 'SIZE', 'SHA-256', 'SEGMENTS', 'READ-BACK', 'SERVER HASH', 'MERKLE', 'RECEIPT', 'CAMERA SIG']];
  for (const r of result.recordings) {
    rows.push([r.id, formatBytes(r.size), r.sha256.slice(0, 12) + '…', String(r.segments), check(r.readBack), check(r.serverHash), check(r.merkle),
      r.receipt ? 'verified' : 'FAILED', r.camera === 'verified' ? 'verified' : r.camera.toUpperCase()]);
  }
  lines.push(table(rows, { indent: '  ' }).slice(0, -1));
  lines.push('');
  lines.push('Verified how:');
  lines.push('  read-back    GET /v1/recordings/<id>/content, re-hashed here, equals the SHA-256 of the file the camera wrote (byte-exact)');
  lines.push('  server hash  the server re-hashed the assembled file before signing; the receipt carries that SHA-256');
  lines.push('  merkle       the Merkle root recomputed from the manifest\'s segment hashes equals the receipt\'s');
  lines.push(`  receipt      the receipt's Ed25519 signature verifies with the server key ${result.serverKeyId.slice(0, 16)}…`);
  lines.push('  camera sig   the sidecar\'s Ed25519 signature verifies with the camera key in its DEVICE.json');
  lines.push(`  ${result.filesWiped} of ${result.filesRecorded} camera files are now wiped: the dock deletes one only after storing its signed receipt and the server's proof that it holds the bytes.`);
  lines.push('');
  lines.push('Where the data is:');
  lines.push(`  ${shown(result.dataDir).padEnd(28)} server store, receipts, custody log, server key`);
  lines.push(`  ${shown(result.stateDir).padEnd(28)} dock journal (SQLite) and dock key`);
  lines.push(`  ${shown(result.baysDir).padEnd(28)} the bays, with the emptied cameras still docked`);
  lines.push(`  ${shown(result.logFile).padEnd(28)} JSON-lines log of server and dock`);
  lines.push('');
  lines.push('Look further:');
  const first = result.recordings[0]?.id ?? '<id>';
  if (stay) {
    lines.push(`  npx bodycam status --state-dir ${shown(result.stateDir)}`);
    lines.push(`  curl -s -H "Authorization: Bearer $(cat ${shown(result.tokenFile)})" ${result.serverUrl}/v1/recordings/${first}/content | sha256sum`);
  } else {
    lines.push(`  npx bodycam server --data-dir ${shown(result.dataDir)} --listen 127.0.0.1:8443 --tokens ${shown(result.tokensFile)} &`);
    lines.push(`  curl -s -H "Authorization: Bearer $(cat ${shown(result.tokenFile)})" http://127.0.0.1:8443/v1/recordings/${first}/content | sha256sum`);
    lines.push(`  npx bodycam status --state-dir ${shown(result.stateDir)}     # while a dock runs: npm start -- --stay`);
  }
  lines.push(`  npx bodycam server verify-log --data-dir ${shown(result.dataDir)}`);
  lines.push('  npx bodycam replay fixtures/scenarios                  # the CI scenarios: faults, outages, undock');
  return lines.join('\n') + '\n';
}

export function registerDemo(program: Command): void {
  program.command('demo')
    .description('First run: server, three simulated cameras and a three-bay dock on loopback, with a summary (what `npm start` runs)')
    .option('--dir <dir>', 'folder for everything the demo makes (emptied first if an earlier demo made it)', './bodycam-demo')
    .option('--cameras <n>', 'simulated cameras, one bay each', '3')
    .option('--recordings <n>', 'recordings per camera', '3')
    .option('--duration <duration>', 'length of each recording', '10s')
    .option('--size <WxH>', 'video size of the recordings', '1280x720')
    .option('--port <port>', 'server port on 127.0.0.1 (0 picks a free one)', '0')
    .option('--stay', 'keep the server and the dock running after the summary, until Ctrl-C')
    .addHelpText('after', `
Exit status: 0 every recording arrived and passed every check, 1 otherwise.

Examples:
  $ npm start                                      # the same as: npx bodycam demo
  $ npx bodycam demo --cameras 2 --recordings 1 --duration 3s --size 320x240
  $ npx bodycam demo --stay                        # then, in another terminal: npx bodycam status --state-dir ./bodycam-demo/dock`)
    .action(action(async (flags: DemoFlags) => {
      const cameras = parsePositiveInt(flags.cameras, '--cameras');
      const recordings = parsePositiveInt(flags.recordings, '--recordings');
      const duration = parseDuration(flags.duration, '--duration');
      if (duration < 1 || duration > 600) throw new UsageError(`invalid --duration "${flags.duration}": use 1s to 10m`);
      const { width, height } = parseResolution(flags.size);
      const port = parsePort(flags.port);
      const tty = Boolean(process.stdout.isTTY);
      const view = new BayView({ write: (text) => { process.stdout.write(text); }, tty, columns: () => process.stdout.columns });
      process.stdout.write(`bodycam demo: a reference server, ${plural(cameras, 'simulated camera')} and a ${cameras}-bay dock on this machine\n\n`);
      const result = await runDemo({
        dir: flags.dir, cameras, recordings, duration, width, height, port, keepRunning: Boolean(flags.stay),
        onProgress: (line) => { process.stdout.write(line + '\n'); },
        onStatus: (status) => view.update(status),
      });
      view.finish();
      process.stdout.write(formatSummary(result, Boolean(flags.stay)));
      if (flags.stay) {
        process.stdout.write('\nServer and dock keep running; Ctrl-C stops them.\n');
        await untilStopSignal();
        await result.close();
      }
      return result.ok ? 0 : 1;
    }));
}
