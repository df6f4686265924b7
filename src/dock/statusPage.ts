/**
 * The dock's own page at http://127.0.0.1:<status port>/: the bays drawn like the dock's LEDs
 * (empty, docked, offloading with bytes / rate / ETA, done, attention with the reason), the queue,
 * and the quarantined recordings with their reasons. Read-only, refreshed by the browser every 2 s
 * (meta refresh: no script at all). Rates come from the previous sample of each bay's bytes.
 */
import type { DockStatus } from './agent.js';

const ESC: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const esc = (v: unknown) => String(v ?? '').replace(/[&<>"']/g, (c) => ESC[c]!);

export const DOCK_PAGE_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

function bytes(n: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let v = n; let u = 0;
  while (v >= 1000 && u < units.length - 1) { v /= 1000; u++; }
  return `${u === 0 ? v : v.toFixed(1)} ${units[u]}`;
}

interface Sample { at: number; done: number; before: { at: number; done: number } | undefined }

export class DockPage {
  private readonly samples = new Map<string, Sample>();
  constructor(private readonly now: () => number = Date.now) {}

  render(status: DockStatus): string {
    // A bay's rate is over the statuses' own times: a reused status (src/util/costBounded.ts) is
    // not a sample of no progress.
    const generated = Date.parse(status.generatedAt);
    const now = Number.isNaN(generated) ? this.now() : generated;
    const bays = status.bays.map((bay) => {
      // The bay's own byte counts (status.ts): the recordings list is a bounded page, not every row.
      const total = bay.bytesTotal ?? 0;
      const done = bay.bytesDone ?? 0;
      const sampled = this.samples.get(bay.bay);
      // The same status again: the rate is still from the sample before it.
      const previous = sampled?.at === now ? sampled.before : sampled && { at: sampled.at, done: sampled.done };
      this.samples.set(bay.bay, { at: now, done, before: previous });
      const rate = previous && now > previous.at && done >= previous.done ? ((done - previous.done) * 1000) / (now - previous.at) : undefined;
      const eta = rate && rate > 0 ? Math.ceil((total - done) / rate) : undefined;
      const detail = bay.state === 'offloading'
        ? `${bytes(done)} of ${bytes(total)} (${bay.progress ?? 0}%)${rate !== undefined ? ` · ${bytes(rate)}/s` : ''}${eta !== undefined ? ` · ETA ${eta} s` : ''}`
        : bay.state === 'attention' ? `${bay.reasonCode ? `${bay.reasonCode}: ` : ''}${bay.reason ?? 'needs attention'}`
          : bay.state === 'done' ? 'offloaded: the camera may be undocked'
            : bay.state === 'docked' ? 'camera docked, nothing to send yet' : 'no camera';
      return `<div class="bay ${esc(bay.state)}" data-bay="${esc(bay.bay)}" data-state="${esc(bay.state)}"${bay.reasonCode ? ` data-reason-code="${esc(bay.reasonCode)}"` : ''}><span class="led"></span><b>Bay ${esc(bay.bay)}</b> <span class="state">${esc(bay.state)}</span>
<div class="serial">${esc(bay.serial ?? '')}</div><div class="detail">${esc(detail)}</div>${bay.state === 'offloading' ? `<progress max="100" value="${bay.progress ?? 0}"></progress>` : ''}</div>`;
    }).join('\n');
    const q = status.queue;
    const quarantined = q.recordings.filter((r) => r.state === 'quarantined').slice(0, 200);
    return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta http-equiv="refresh" content="2"><title>Dock ${esc(status.dockId)}</title>
<style>body{font:14px system-ui,sans-serif;margin:1.2em;background:#15191e;color:#e8e8e8}.bays{display:flex;flex-wrap:wrap;gap:1em}.bay{background:#222a33;border-radius:10px;padding:.8em 1em;width:15em}
.led{display:inline-block;width:14px;height:14px;border-radius:50%;margin-right:.5em;vertical-align:-2px;background:#333;box-shadow:inset 0 0 3px #000}
.docked .led{background:#2d7dd2;box-shadow:0 0 8px #2d7dd2}.offloading .led{background:#f0b429;box-shadow:0 0 8px #f0b429;animation:blink 1s infinite}.done .led{background:#3ccf6e;box-shadow:0 0 8px #3ccf6e}
.attention .led{background:#e5484d;box-shadow:0 0 10px #e5484d}.attention .detail{color:#ff9592}.serial{color:#9aa;font-family:monospace}.detail{margin-top:.3em}progress{width:100%}
table{border-collapse:collapse;margin-top:.5em}td,th{padding:.2em .6em;border-bottom:1px solid #333;text-align:left}@keyframes blink{50%{opacity:.45}}</style></head>
<body><h1>Dock ${esc(status.dockId)}</h1><div class="bays" id="bays">${bays}</div>
<h2>Queue</h2><p id="queue">${q.depth} queued · ${q.uploading} uploading · ${q.preparing} preparing · ${q.waiting} waiting · ${q.backoff} in backoff · ${q.completed} complete · ${q.wiped} wiped · ${q.flagged} flagged · ${q.quarantined} quarantined · ${bytes(q.bytesSent)} sent</p>
<h2>Quarantined (${q.quarantined}${q.quarantined > quarantined.length ? `, the ${quarantined.length} most recent shown: bodycam quarantine list has them all` : ''})</h2>${quarantined.length ? `<table id="quarantined"><tr><th>File</th><th>Camera</th><th>Code</th><th>Reason</th></tr>${quarantined.map((r) => `<tr><td>${esc(r.file)}</td><td>${esc(r.serial)}</td><td>${esc(r.reasonCode ?? '')}</td><td>${esc(r.reason ?? '')}</td></tr>`).join('')}</table>` : '<p>none</p>'}
<p style="color:#789">Read-only · as of <time id="generated" datetime="${esc(status.generatedAt)}">${esc(status.generatedAt)}</time> · refreshes every 2 s · JSON at <a style="color:#9cf" href="/status">/status</a></p></body></html>`;
  }
}
