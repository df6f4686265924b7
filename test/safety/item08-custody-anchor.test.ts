/**
 * Issue 9 item 8: the custody log cannot be cut short unseen. Through the built CLI (npm run build
 * first) and the real server: truncating the last lines, forging the last line, deleting the log,
 * editing a line and re-chaining, deleting the checkpoints as well, restoring an older log with its
 * older checkpoints while recordings hold newer receipts: each makes the server refuse to start
 * with one line and `verify-log` exit non-zero with a reason; receipts carry custodyPrevHash, and
 * the receipts a dock holds are checked against the log (`--receipts`).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatDigestHeader } from '../../src/protocol/digest.js';
import { generateSigningKeyPair, verifyObject } from '../../src/protocol/signing.js';
import type { Receipt } from '../../src/protocol/types.js';
import { runCli, spawnCli } from '../helpers/cli.js';
import { buildRecording, testBytes, type BuiltRecording } from '../helpers/manifest.js';
import { makeTempDir } from '../helpers/tmp.js';

const TOKEN = randomBytes(32).toString('base64url');
let tmp: ReturnType<typeof makeTempDir>;
let tokensFile: string;
/** A data dir after three receipts and a clean stop; every case works on a copy of it. */
let base: string;
/** The data dir as a backup taken after the first receipt (log, checkpoints, head, recordings). */
let backup: string;
let receipts: Receipt[] = [];
let receiptsFile: string;
let publicKeyPem: string;

interface Running { child: ChildProcess; url: string; exited: Promise<number | null> }

function startServer(dataDir: string): Promise<Running> {
  const child = spawnCli(['server', '--data-dir', dataDir, '--listen', '127.0.0.1:0', '--tokens', tokensFile]);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stderr!.on('data', (d: Buffer) => { err += d.toString(); });
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const match = /^listening (http:\/\/127\.0\.0\.1:\d+)\n/.exec(out);
      if (match) resolve({ child, url: match[1]!, exited });
    });
    child.on('exit', (code) => reject(new Error(`server exited ${code}: ${err.slice(-2000)}`)));
  });
}

async function stop(server: Running): Promise<void> {
  // One answered request first: the SIGTERM handler is in place once the event loop runs.
  expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
  server.child.kill('SIGTERM');
  expect(await server.exited).toBe(0);
}

const auth = { authorization: `Bearer ${TOKEN}` };
const dockKeys = generateSigningKeyPair();

async function upload(url: string, rec: BuiltRecording): Promise<Response> {
  const created = await fetch(`${url}/v1/recordings`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify(rec.manifest) });
  expect([200, 201]).toContain(created.status);
  for (const [i, body] of rec.segments.entries()) {
    const put = await fetch(`${url}/v1/recordings/${rec.manifest.recordingId}/segments/${i}`, { method: 'PUT', headers: { ...auth, 'content-type': 'application/octet-stream', 'content-digest': formatDigestHeader(rec.manifest.segments[i]!.sha256) }, body });
    expect([200, 201]).toContain(put.status);
  }
  return fetch(`${url}/v1/recordings/${rec.manifest.recordingId}/complete`, { method: 'POST', headers: auth });
}

const logLines = (dir: string) => readFileSync(join(dir, 'custody.log'), 'utf8').split('\n').filter(Boolean);
const writeLines = (dir: string, lines: string[]) => writeFileSync(join(dir, 'custody.log'), lines.map((l) => l + '\n').join(''));
const sha = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

let caseNo = 0;
function copyOf(source: string): string {
  const dir = join(tmp.path, `case-${++caseNo}`);
  cpSync(source, dir, { recursive: true });
  return dir;
}

/** The server refuses to start: non-zero exit, one `bodycam:` line on stderr naming why, no stack. */
async function expectRefusal(dataDir: string, reason: RegExp): Promise<string> {
  const run = await runCli(['server', '--data-dir', dataDir, '--listen', '127.0.0.1:0', '--tokens', tokensFile]);
  expect(run.code).not.toBe(0);
  expect(run.stdout).not.toMatch(/listening/);
  const lines = run.stderr.trim().split('\n').filter((l) => l.startsWith('bodycam:'));
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(reason);
  expect(run.stderr).not.toMatch(/\n\s+at /);
  return lines[0]!;
}

async function verifyLog(dataDir: string, extra: string[] = []) {
  return runCli(['server', 'verify-log', '--data-dir', dataDir, ...extra]);
}

beforeAll(async () => {
  tmp = makeTempDir('bodycam-item08-');
  tokensFile = join(tmp.path, 'tokens.json');
  writeFileSync(tokensFile, JSON.stringify({ 'dock-1': TOKEN }), { mode: 0o600 });
  base = join(tmp.path, 'base');
  backup = join(tmp.path, 'backup');
  const server = await startServer(base);
  try {
    publicKeyPem = ((await (await fetch(`${server.url}/v1/keys`)).json()) as { publicKeyPem: string }).publicKeyPem;
    for (let i = 0; i < 3; i++) {
      const done = await upload(server.url, buildRecording(testBytes(120_000, 80 + i), { segmentSize: 50_000, dockKeys }));
      expect(done.status).toBe(200);
      receipts.push((await done.json()) as Receipt);
      if (i === 0) cpSync(base, backup, { recursive: true }); // a backup taken while the server ran, after the first receipt
    }
  } finally {
    await stop(server);
  }
  receiptsFile = join(tmp.path, 'dock-receipts.json');
  writeFileSync(receiptsFile, JSON.stringify(receipts));
});
afterAll(() => tmp.cleanup());

describe('item 8: the custody log is anchored', () => {
  it('receipts carry the chain head they extend, signed; verify-log checks them all and says ok', async () => {
    const lines = logLines(base);
    for (const receipt of receipts) {
      expect(verifyObject(receipt as unknown as Record<string, unknown>, publicKeyPem)).toBe(true);
      const entry = JSON.parse(lines[receipt.custodySeq - 1]!) as { event: string; receiptSignature: string; prev: string };
      expect(entry.event).toBe('receipt-issued');
      expect(entry.receiptSignature).toBe(receipt.signature);
      expect(receipt.custodyPrevHash).toBe(sha(lines[receipt.custodySeq - 2]!));
      expect(entry.prev).toBe(receipt.custodyPrevHash);
    }
    // A signed checkpoint covers every receipt and the tail (clean stop), in both anchor files.
    const checkpoints = readFileSync(join(base, 'custody-checkpoints.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { seq: number; hash: string; signature: string });
    expect(checkpoints.length).toBeGreaterThanOrEqual(3);
    const last = checkpoints[checkpoints.length - 1]!;
    expect(last.seq).toBe(lines.length);
    expect(last.hash).toBe(sha(lines[lines.length - 1]!));
    expect(verifyObject(last as unknown as Record<string, unknown>, publicKeyPem)).toBe(true);
    expect(JSON.parse(readFileSync(join(base, 'custody-head.json'), 'utf8'))).toEqual(last);
    for (const r of receipts) expect(checkpoints.some((cp) => cp.seq >= r.custodySeq)).toBe(true);

    const ok = await verifyLog(base, ['--receipts', receiptsFile]);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(new RegExp(`^custody log ok: ${lines.length} entries, ${checkpoints.length} checkpoints \\(last at seq ${lines.length}\\), 3 stored receipts, 3 dock receipts match\\n$`));
    // And the server starts on it again.
    await stop(await startServer(copyOf(base)));
  });

  it('the last lines cut off: the server refuses to start, verify-log says so', async () => {
    const dir = copyOf(base);
    const lines = logLines(dir);
    writeLines(dir, lines.slice(0, -2));
    const [, run] = await Promise.all([expectRefusal(dir, new RegExp(`custody\\.log has ${lines.length - 2} entries but its last checkpoint .* says it had ${lines.length}`)), verifyLog(dir, ['--receipts', receiptsFile])]);
    expect(run.code).toBe(3);
    expect(run.stdout).toMatch(/^custody log BROKEN: /);
    expect(run.stdout).toMatch(new RegExp(`the log has ${lines.length - 2} entries but the checkpoint of .* says it had ${lines.length}`));
    expect(run.stdout).toMatch(/carries custodySeq \d+ but the log has \d+ entries/); // the dock's last receipt
  });

  it('the last line forged (valid JSON, right prev): refused, and verify-log names the checkpoint and the receipt', async () => {
    const dir = copyOf(base);
    const lines = logLines(dir);
    const last = JSON.parse(lines[lines.length - 1]!) as Record<string, unknown>;
    expect(last.event).toBe('receipt-issued');
    last.sha256 = 'f'.repeat(64);
    writeLines(dir, [...lines.slice(0, -1), JSON.stringify(last)]);
    const [, run] = await Promise.all([expectRefusal(dir, new RegExp(`entry ${lines.length} of .*custody\\.log does not match the hash in its last checkpoint`)), verifyLog(dir, ['--receipts', receiptsFile])]);
    expect(run.code).toBe(3);
    expect(run.stdout).toMatch(new RegExp(`checkpoint of .* at seq ${lines.length} does not match entry ${lines.length}`));
    expect(run.stdout).toMatch(/names another sha256/);
  });

  it('the log deleted: refused; verify-log on it is BROKEN, not "ok: 0 entries"', async () => {
    const dir = copyOf(base);
    rmSync(join(dir, 'custody.log'));
    const [, run] = await Promise.all([expectRefusal(dir, /custody\.log is missing but its last checkpoint .* says it had \d+ entries/), verifyLog(dir)]);
    expect(run.code).toBe(3);
    expect(run.stdout).toMatch(/^custody log BROKEN: custody\.log is missing, yet \d+ checkpoints and 3 stored receipts refer to it/);
  });

  it('a line edited and every later line re-chained: refused, and the checkpoints and receipts show it', async () => {
    const dir = copyOf(base);
    const lines = logLines(dir);
    const rechained: string[] = [];
    let prev = '0'.repeat(64);
    lines.forEach((line, i) => {
      const entry = JSON.parse(line) as Record<string, unknown>;
      if (i === 1) entry.sha256 = '0'.repeat(64);
      entry.prev = prev;
      const text = JSON.stringify(entry);
      rechained.push(text);
      prev = sha(text);
    });
    writeLines(dir, rechained);
    const [, plainChain] = await Promise.all([expectRefusal(dir, /does not match the hash in its last checkpoint .*altered and re-chained/), verifyLog(dir)]);
    expect(plainChain.code).toBe(3); // the chain itself verifies; its anchors do not
    expect(plainChain.stdout).toMatch(/^custody log BROKEN at line \d+ \(seq \d+\): stored recording .*: custodyPrevHash of the receipt at seq \d+ does not match entry/);
    expect(plainChain.stdout).toMatch(/the checkpoint of .* at seq \d+ does not match entry \d+/);
    expect(plainChain.stdout).not.toMatch(/prev does not match/);
    expect(plainChain.stdout).toMatch(/custodyPrevHash of the receipt at seq \d+ does not match entry/);
  });

  it('the log cut short and the checkpoints file deleted too: the head copy still refuses; both anchors gone: the stored receipts refuse', async () => {
    const dir = copyOf(base);
    const lines = logLines(dir);
    writeLines(dir, lines.slice(0, -3));
    rmSync(join(dir, 'custody-checkpoints.jsonl'));
    await expectRefusal(dir, /custody-head\.json holds a checkpoint at seq \d+ but .*custody-checkpoints\.jsonl is missing/);
    rmSync(join(dir, 'custody-head.json'));
    // Either refusal names the cut: receipts in the log with no checkpoint left, or a stored receipt beyond the log's end.
    await expectRefusal(dir, new RegExp(`no checkpoint is left|a stored receipt carries custodySeq ${receipts[2]!.custodySeq} but .*custody\\.log has only ${lines.length - 3} entries`));
    rmSync(join(dir, 'custody.log'));
    const [, run] = await Promise.all([expectRefusal(dir, /a stored receipt carries custodySeq \d+ but .*custody\.log is missing/), verifyLog(dir)]);
    expect(run.code).toBe(3);
  });

  it('an older log restored with its older checkpoints while recordings hold newer receipts: refused; a full restore is caught by the dock\'s receipts', async () => {
    const dir = copyOf(base);
    // The custody files exactly as the backup has them (its head, if it had none yet, is gone too).
    for (const name of ['custody.log', 'custody-checkpoints.jsonl', 'custody-head.json']) {
      if (existsSync(join(backup, name))) cpSync(join(backup, name), join(dir, name));
      else rmSync(join(dir, name), { force: true });
    }
    const [, partial] = await Promise.all([expectRefusal(dir, new RegExp(`a stored receipt carries custodySeq ${receipts[2]!.custodySeq} but`)), verifyLog(dir)]);
    expect(partial.code).toBe(3);
    expect(partial.stdout).toMatch(/stored recording .* carries custodySeq \d+ but the log has \d+ entries/);

    // The whole data dir restored from the backup: consistent with itself, so the server starts …
    const full = copyOf(backup);
    rmSync(join(full, 'tmp'), { recursive: true, force: true });
    await stop(await startServer(full));
    // … but the receipts the dock holds are signed evidence that the log was longer.
    const run = await verifyLog(full, ['--receipts', receiptsFile]);
    expect(run.code).toBe(3);
    expect(run.stdout).toMatch(new RegExp(`dock-receipts\\.json #3: the receipt for dock-1/.* carries custodySeq ${receipts[2]!.custodySeq} but the log has \\d+ entries`));
  });

  it('a forged or foreign checkpoint is not trusted', async () => {
    const dir = copyOf(base);
    const path = join(dir, 'custody-checkpoints.jsonl');
    const cps = readFileSync(path, 'utf8').trim().split('\n');
    const last = JSON.parse(cps[cps.length - 1]!) as Record<string, unknown>;
    last.seq = (last.seq as number) - 1; // claim a shorter log, keep the old signature
    writeFileSync(path, [...cps.slice(0, -1), JSON.stringify(last)].join('\n') + '\n');
    const [, run] = await Promise.all([expectRefusal(dir, /the last checkpoint in .* cannot be trusted: signature does not verify/), verifyLog(dir)]);
    expect(run.code).toBe(3);
  });

  it('verify-log on a missing data dir, or a dir with no log and no state, is an error (exit 2, one line)', async () => {
    const fresh = join(tmp.path, 'fresh');
    const [missing, started] = await Promise.all([verifyLog(join(tmp.path, 'no-such-dir')), startServer(fresh)]);
    expect(missing.code).toBe(2);
    expect(missing.stdout).toBe('');
    expect(missing.stderr.trim().split('\n')).toEqual([`bodycam: --data-dir ${join(tmp.path, 'no-such-dir')} does not exist`]);
    const empty = join(tmp.path, 'empty');
    mkdirSync(empty);
    const none = await verifyLog(empty);
    expect(none.code).toBe(2);
    expect(none.stderr.trim().split('\n')).toHaveLength(1);
    expect(none.stderr).toMatch(/no custody log in .*: not a server data dir/);
    // A server that started once and received nothing has an empty log: that is "ok: 0 entries".
    await stop(started);
    expect(existsSync(join(fresh, 'custody.log'))).toBe(true);
    const zero = await verifyLog(fresh);
    expect(zero.code).toBe(0);
    expect(zero.stdout).toMatch(/^custody log ok: 0 entries, 0 checkpoints, 0 stored receipts match/);
  });

  it('concurrent completes: distinct seqs, each receipt\'s custodyPrevHash is the line before it, one receipt per recording', async () => {
    const dir = copyOf(base);
    const server = await startServer(dir);
    let got: Receipt[];
    try {
      const recs = Array.from({ length: 8 }, (_, i) => buildRecording(testBytes(60_000, 200 + i), { segmentSize: 30_000, dockKeys }));
      const answers = await Promise.all(recs.map((rec) => upload(server.url, rec)));
      got = await Promise.all(answers.map(async (a) => { expect(a.status).toBe(200); return (await a.json()) as Receipt; }));
      // Completing again, concurrently, answers the same receipts.
      const again = await Promise.all(recs.map(async (rec) => (await fetch(`${server.url}/v1/recordings/${rec.manifest.recordingId}/complete`, { method: 'POST', headers: auth })).json() as Promise<Receipt>));
      expect(again).toEqual(got);
    } finally {
      await stop(server);
    }
    const lines = logLines(dir);
    expect(new Set(got.map((r) => r.custodySeq)).size).toBe(8);
    for (const r of got) expect(r.custodyPrevHash).toBe(sha(lines[r.custodySeq - 2]!));
    const issued = lines.map((l) => JSON.parse(l) as { event: string; recordingId: string }).filter((e) => e.event === 'receipt-issued');
    expect(issued).toHaveLength(3 + 8);
    expect(new Set(issued.map((e) => e.recordingId)).size).toBe(3 + 8);
    const file = join(dir, 'all-receipts.jsonl');
    writeFileSync(file, [...receipts, ...got].map((r) => JSON.stringify(r)).join('\n') + '\n');
    const run = await verifyLog(dir, ['--receipts', file]);
    expect(run.stdout).toMatch(/^custody log ok: .* 11 stored receipts, 11 dock receipts match/);
    expect(run.code).toBe(0);
  });
});
