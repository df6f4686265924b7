/** Server-rendered HTML for the console: escaping, the page frame, and the headers every page gets. */
import type { FastifyReply } from 'fastify';
import type { Role } from './users.js';
import { visible } from '../../util/visible.js';

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Text or attribute value, escaped for HTML; invisible and direction-changing characters made visible. */
export function esc(value: unknown): string {
  return visible(String(value ?? '').replace(/[&<>"']/g, (c) => ESCAPES[c]!));
}

/** A pre-escaped fragment (the only way HTML reaches a page unescaped). */
export class Html {
  constructor(readonly text: string) {}
  toString(): string { return this.text; }
}

/** Tagged template: every interpolated value is escaped unless it is Html (or an array of Html). */
export function html(strings: TemplateStringsArray, ...values: unknown[]): Html {
  let out = strings[0]!;
  values.forEach((value, i) => {
    out += render(value) + strings[i + 1]!;
  });
  return new Html(out);
}

function render(value: unknown): string {
  if (value instanceof Html) return value.text;
  if (Array.isArray(value)) return value.map(render).join('');
  if (value === undefined || value === null || value === false) return '';
  return esc(value);
}

export interface Viewer { name: string; role: Role; csrf: string }

/** CSP: only the server's own scripts, styles, images and media (no inline script, no CDN). */
export const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self' blob:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

export function securityHeaders(reply: FastifyReply): void {
  reply.header('Content-Security-Policy', CSP);
  reply.header('X-Content-Type-Options', 'nosniff');
  // same-origin, not no-referrer: with no-referrer Chromium sends `Origin: null` on form posts, and the CSRF check needs the real one.
  reply.header('Referrer-Policy', 'same-origin');
  reply.header('X-Frame-Options', 'DENY');
  reply.header('Cache-Control', 'no-store');
}

export function page(title: string, viewer: Viewer | undefined, body: Html, options: { scripts?: string[]; reloadSeconds?: number } = {}): string {
  const nav = viewer ? html`<nav><a href="/console/recordings">Recordings</a>${viewer.role === 'admin' ? html` <a href="/console/docks">Docks</a> <a href="/console/cameras">Cameras</a>` : ''}
    <span class="who">${viewer.name} (${viewer.role})</span>
    <form method="post" action="/console/logout" class="inline"><input type="hidden" name="csrf" value="${viewer.csrf}"><button type="submit" id="sign-out">Sign out</button></form></nav>` : '';
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
${options.reloadSeconds ? html`<meta http-equiv="refresh" content="${options.reloadSeconds}">` : ''}<title>${title} · bodycam evidence</title><link rel="stylesheet" href="/console/assets/console.css"></head>
<body><header><span class="brand">bodycam evidence</span>${nav}</header><main><h1>${title}</h1>${body}</main>
${(options.scripts ?? []).map((src) => html`<script src="${src}"></script>`)}</body></html>`.text;
}

export function sendPage(reply: FastifyReply, status: number, text: string): FastifyReply {
  securityHeaders(reply);
  return reply.code(status).type('text/html; charset=utf-8').send(text);
}

export function formatBytesShort(bytes: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) { value /= 1000; unit++; }
  return `${unit === 0 ? value : value.toFixed(value < 10 ? 2 : 1)} ${units[unit]}`;
}

export function formatSeconds(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds)) return '';
  const s = Math.round(seconds);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}
