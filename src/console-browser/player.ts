/**
 * The console's only browser code: start the player of a recording page with hls.js (served by the
 * server from node_modules), else native HLS, else nothing: the page already says how to get the bytes. Compiled by the project's tsc (tsconfig.browser.json).
 */
interface HlsInstance { loadSource(url: string): void; attachMedia(video: HTMLVideoElement): void; on(event: string, fn: (event: string, data: { fatal?: boolean; details?: string }) => void): void }
interface HlsStatic { new (config: Record<string, unknown>): HlsInstance; isSupported(): boolean; Events: { ERROR: string } }

function start(): void {
  const video = document.getElementById('player');
  if (!(video instanceof HTMLVideoElement)) return;
  const playlist = video.dataset['playlist'];
  if (!playlist) return;
  const Hls = (window as unknown as { Hls?: HlsStatic }).Hls;
  // hls.js first wherever Media Source Extensions exist: it fetches exactly the playlist's byte
  // ranges (the segments the dock cut and hashed) and behaves the same in every browser; native HLS
  // (Safari on iOS, recent Chromium) reads open-ended ranges and is the fallback.
  if (Hls && Hls.isSupported()) {
    // No worker: the page's CSP allows scripts from the server only (no blob: workers).
    const hls = new Hls({ enableWorker: false, liveDurationInfinity: false, manifestLoadingMaxRetry: 6, levelLoadingMaxRetry: 1000 });
    hls.on(Hls.Events.ERROR, (_event, data) => { if (data.fatal) video.dataset['error'] = data.details ?? 'error'; });
    hls.loadSource(playlist);
    hls.attachMedia(video);
  } else if (video.canPlayType('application/vnd.apple.mpegurl')) {
    video.src = playlist;
  } else {
    video.dataset['error'] = 'this browser plays neither HLS nor Media Source Extensions';
  }
}

start();
