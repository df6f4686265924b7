/** Synthetic GPS track and event markers of a recording. */
import type { EventMarker, GpsPoint } from '../protocol/cameraStorage/index.js';
import type { SeededRandom } from './random.js';

const GPS_STEP_SECONDS = 5;

/** A walk at patrol speed from a start point near the camera's beat, one fix every 5 s. */
export function gpsTrack(random: SeededRandom, durationSeconds: number, origin: { lat: number; lon: number }): GpsPoint[] {
  const points: GpsPoint[] = [];
  let lat = origin.lat + (random.next() - 0.5) * 0.02;
  let lon = origin.lon + (random.next() - 0.5) * 0.02;
  let heading = random.next() * 2 * Math.PI;
  for (let t = 0; ; t += GPS_STEP_SECONDS) {
    const time = Math.min(t, durationSeconds);
    points.push({ t: round(time, 3), lat: round(lat, 6), lon: round(lon, 6) });
    if (time >= durationSeconds) break;
    heading += (random.next() - 0.5) * 0.8;
    const metres = 4 + random.next() * 6; // walking to jogging over 5 s
    lat += (metres * Math.cos(heading)) / 111_320;
    lon += (metres * Math.sin(heading)) / (111_320 * Math.cos((lat * Math.PI) / 180));
  }
  return points;
}

export function markers(random: SeededRandom, durationSeconds: number, options: { part: number; preEventSeconds: number; trigger: string }): EventMarker[] {
  const list: EventMarker[] = [];
  if (options.part === 1) {
    list.push({ t: 0, label: 'pre-event-buffer-start' });
    list.push({ t: round(options.preEventSeconds, 3), label: `trigger:${options.trigger}` });
  } else {
    list.push({ t: 0, label: 'rollover-continue' });
  }
  // About one officer bookmark per two minutes, at least one in a longer clip.
  const bookmarks = Math.floor(durationSeconds / 120) + (durationSeconds >= 4 ? 1 : 0);
  for (let i = 0; i < bookmarks; i++) list.push({ t: round(random.next() * durationSeconds, 3), label: 'officer-bookmark' });
  return list.sort((a, b) => a.t - b.t);
}

export function round(value: number, digits: number): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}
