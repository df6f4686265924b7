/**
 * Shared pieces of the attachment tests (issue 11 item 4): what the server holds of a rig's
 * recordings and attachments, and `--once` with the wipe's test pause.
 */
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Receipt, RecordingManifest } from '../../src/protocol/types.js';
import { runCli } from './cli.js';
import type { DockRig } from './cards.js';
import { waitFor } from './dock.js';

export interface ServerView { state: string; manifest: RecordingManifest; receipt?: Receipt }

export const view = async (r: DockRig, id: string): Promise<ServerView> => (await (await r.server.request(`/v1/recordings/${id}`)).json()) as ServerView;

export const attachmentBytes = async (r: DockRig, id: string, a: number): Promise<{ status: number; bytes: Buffer; digest: string | null }> => {
  const response = await r.server.request(`/v1/recordings/${id}/attachments/${a}`);
  return { status: response.status, bytes: Buffer.from(await response.arrayBuffer()), digest: response.headers.get('repr-digest') };
};

/** Every receipted recording of the journal with its server view. */
export const receipted = async (r: DockRig): Promise<Array<{ relPath: string; state: string; view: ServerView }>> => {
  const out = [];
  for (const row of r.rows()) if (row.recordingId && row.receiptJson) out.push({ relPath: row.relPath, state: row.state, view: await view(r, row.recordingId) });
  return out;
};

/** Is `bytes` held by the server as attachment `name` of a complete recording? */
export const heldAsAttachment = async (r: DockRig, name: string, bytes: Buffer): Promise<boolean> => {
  for (const row of r.rows()) {
    if (!row.recordingId) continue;
    const v = await view(r, row.recordingId);
    const a = v.manifest?.attachments?.find((x) => x.name === name);
    if (!a || v.state !== 'complete') continue;
    if ((await attachmentBytes(r, row.recordingId, a.index)).bytes.equals(bytes)) return true;
  }
  return false;
};

/** `--once --wipe-after-ingest` with the wipe's test pause: `act` runs while the first wipe waits. */
export async function onceWithPause(r: DockRig, act: (relPath: string) => void, extra: string[] = []): Promise<{ code: number | null; stderr: string }> {
  const pause = join(r.root, `pause-${Date.now()}`);
  const run = runCli(r.dockArgs(['--once', '--wipe-after-ingest', ...extra]), { timeoutMs: 90_000, env: { ...process.env, BODYCAM_WIPE_PAUSE_FILE: pause } });
  let done = false;
  void run.then(() => { done = true; });
  const rel = await waitFor('the wipe to pause', () => (existsSync(pause) ? readFileSync(pause, 'utf8') : done ? 'no-pause' : undefined), 60_000, 20);
  if (rel !== 'no-pause') act(rel);
  // This and every later wipe of the run pass straight through.
  while (!done) { rmSync(pause, { force: true }); await new Promise((res) => setTimeout(res, 30)); }
  return run;
}
