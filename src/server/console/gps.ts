/** The sidecar's GPS track as an inline SVG line (no map tiles: the server has no network). */
import { html, type Html } from './html.js';

interface Point { t: number; lat: number; lon: number }

export function gpsPoints(sidecar: Record<string, unknown> | undefined): Point[] {
  const raw = sidecar?.['gps'];
  if (!Array.isArray(raw)) return [];
  return raw.filter((p): p is Point => typeof p === 'object' && p !== null && [p.t, p.lat, p.lon].every((v) => typeof v === 'number' && Number.isFinite(v))
    && Math.abs(p.lat) <= 90 && Math.abs(p.lon) <= 180).slice(0, 20_000);
}

export function gpsSvg(points: Point[], width = 360, height = 240): Html {
  if (points.length === 0) return html`<p class="muted">No GPS points in the sidecar.</p>`;
  const lats = points.map((p) => p.lat);
  const lons = points.map((p) => p.lon);
  const midLat = (Math.min(...lats) + Math.max(...lats)) / 2;
  // Equirectangular with the longitude scaled by cos(latitude): right shape for a few km.
  const kx = Math.cos((midLat * Math.PI) / 180);
  const xs = lons.map((l) => l * kx);
  const minX = Math.min(...xs); const maxX = Math.max(...xs);
  const minY = Math.min(...lats); const maxY = Math.max(...lats);
  const span = Math.max(maxX - minX, maxY - minY, 1e-6);
  const pad = 16;
  const scale = Math.min((width - 2 * pad) / span, (height - 2 * pad) / span);
  const px = (i: number) => (pad + (xs[i]! - minX) * scale).toFixed(1);
  const py = (i: number) => (height - pad - (lats[i]! - minY) * scale).toFixed(1);
  const line = points.map((_, i) => `${px(i)},${py(i)}`).join(' ');
  const last = points.length - 1;
  const metres = Math.round(span * 111_320);
  return html`<svg class="gps" role="img" aria-label="GPS track, ${points.length} points" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}">
<rect x="0" y="0" width="${width}" height="${height}" class="gps-bg"/>
<polyline points="${line}" class="gps-line"/>
<circle cx="${px(0)}" cy="${py(0)}" r="5" class="gps-start"><title>start t=${points[0]!.t}s ${points[0]!.lat},${points[0]!.lon}</title></circle>
<circle cx="${px(last)}" cy="${py(last)}" r="5" class="gps-end"><title>end t=${points[last]!.t}s ${points[last]!.lat},${points[last]!.lon}</title></circle>
<text x="${pad}" y="${height - 4}" class="gps-scale">${points.length} points · box ≈ ${metres} m</text></svg>`;
}
