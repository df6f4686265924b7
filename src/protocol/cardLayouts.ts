/**
 * Known card layouts of other makers, recognised from a path alone (docs/dock.md, "Card layouts").
 * Pure functions: a path relative to the camera root in, what it is on that maker's card out.
 * Every rule ignores case (FAT cards are read case-blind, and copies change it).
 *
 * - recording: evidence, ingested as usual.
 * - companion: a file the maker writes beside (or for) one recording: its `owners` are the
 *   candidate relative paths of that recording (possibly in another folder, e.g. Sony's
 *   SUB/C0001S03.MP4 proxy belongs to CLIP/C0001.MP4). It travels with the recording when the
 *   recording is on the card, and is a recording of its own (if media) when not.
 * - card-metadata: about the card, not one recording (indexes, playlists, camera info): listed
 *   with its reason, not uploaded, never deleted.
 */
export type CardLayout = 'bodycam' | 'dated' | 'gopro' | 'avchd' | 'sony-xavc' | 'dashcam';
export const CARD_LAYOUTS: readonly CardLayout[] = ['bodycam', 'dated', 'gopro', 'avchd', 'sony-xavc', 'dashcam'];

/** Dashcam folder kinds: an incident kept out of the loop, a parking-mode recording, the loop itself. */
export type DashcamFolder = 'event' | 'parking' | 'normal';

export interface CardPathRole {
  layout: CardLayout;
  role: 'recording' | 'companion' | 'card-metadata';
  /** companion: the recording it belongs to, candidates in order (compare case-insensitively). */
  owners?: string[];
  /** card-metadata: why it is not uploaded. */
  reason?: string;
  /** dashcam: which folder the recording is in. */
  folder?: DashcamFolder;
  /** GoPro: the recording this file is a chapter of (folder + number), and the 1-based chapter. */
  chapter?: { recording: string; index: number };
}

/** What the dock reports for a recording from its place on the card (manifest `file.source`). */
export interface RecordingSource {
  path: string;
  layout: CardLayout;
  folder?: DashcamFolder;
  /** What the place says started it (dashcam Event: `event`), when the camera left no sidecar to say. */
  trigger?: string;
  category?: string;
  chapter?: { recording: string; index: number };
}

const DASHCAM_FOLDERS: Record<string, { folder: DashcamFolder; trigger: string; category: string }> = {
  normal: { folder: 'normal', trigger: 'continuous', category: 'loop' },
  event: { folder: 'event', trigger: 'event', category: 'incident' },
  emergency: { folder: 'event', trigger: 'event', category: 'incident' },
  manual: { folder: 'event', trigger: 'manual', category: 'incident' },
  parking: { folder: 'parking', trigger: 'parking', category: 'parking' },
};

const MEDIA = /\.(mp4|mov|ts|mts|m2ts|avi|mkv)$/i;
/** Any name a recording may be written under (never card metadata, wherever it is). */
const MEDIA_NAME = /\.(mp4|m4v|mov|qt|3gp|ts|mts|m2ts|m2t|avi|mkv|mxf|mpg|mpeg|vob|webm|wmv|insv|360|wav|m4a|aac|mp3)$/i;

function splitDir(relPath: string): { dir: string; name: string } {
  const slash = relPath.lastIndexOf('/');
  return slash < 0 ? { dir: '', name: relPath } : { dir: relPath.slice(0, slash), name: relPath.slice(slash + 1) };
}

/** A real calendar date in folder names (1990..2099), as dated cards write them. */
function isDate(y: string, m: string, d: string): boolean {
  const year = Number(y); const month = Number(m); const day = Number(d);
  return year >= 1990 && year <= 2099 && month >= 1 && month <= 12 && day >= 1 && day <= 31;
}

function gopro(relPath: string): CardPathRole | undefined {
  if (/^MISC\/version\.txt$/i.test(relPath)) return { layout: 'gopro', role: 'card-metadata', reason: 'GoPro camera information (model, firmware, serial): about the card, not a recording' };
  const { dir, name } = splitDir(relPath);
  if (!/^DCIM\/\d{3}(GOPRO|MEDIA)$/i.test(dir)) return undefined;
  // HERO6 and later: G<H|X><chapter 2><number 4>.MP4; older: GOPR<number>.MP4 then GP<chapter><number>.MP4.
  let match = /^G([HX])(\d{2})(\d{4})\.MP4$/i.exec(name);
  if (match) return { layout: 'gopro', role: 'recording', chapter: { recording: `${dir}/${match[3]}`, index: Number(match[2]) } };
  match = /^GOPR(\d{4})\.MP4$/i.exec(name);
  if (match) return { layout: 'gopro', role: 'recording', chapter: { recording: `${dir}/${match[1]}`, index: 1 } };
  match = /^GP(\d{2})(\d{4})\.MP4$/i.exec(name);
  if (match) return { layout: 'gopro', role: 'recording', chapter: { recording: `${dir}/${match[2]}`, index: Number(match[1]) + 1 } };
  // The proxy is GL<chapter><number>.LRV for GH… and GX… alike; the thumbnail keeps the recording's name.
  match = /^GL(\d{6})\.LRV$/i.exec(name);
  if (match) return { layout: 'gopro', role: 'companion', owners: [`${dir}/GH${match[1]}.MP4`, `${dir}/GX${match[1]}.MP4`] };
  match = /^(G[HX]\d{6}|GOPR\d{4}|GP\d{6})\.(THM|LRV)$/i.exec(name);
  if (match) return { layout: 'gopro', role: 'companion', owners: [`${dir}/${match[1]}.MP4`] };
  // 100GOPRO is GoPro's alone; 100MEDIA is shared with other makers (DJI, phones): only GoPro's names count there.
  if (MEDIA.test(name) && /GOPRO$/i.test(dir)) return { layout: 'gopro', role: 'recording' };
  return undefined;
}

function avchd(relPath: string): CardPathRole | undefined {
  // On a card under PRIVATE/AVCHD/, on a copy or a disc the BDMV folder may be higher up.
  const match = /^((?:PRIVATE\/)?(?:AVCHD\/)?BDMV)\/(.+)$/i.exec(relPath);
  if (!match) {
    if (/^PRIVATE\/AVCHD\/AVCHDTN\//i.test(relPath)) return { layout: 'avchd', role: 'card-metadata', reason: 'AVCHD thumbnail index of the card: not a recording' };
    return undefined;
  }
  const [, bdmv, rest] = match as unknown as [string, string, string];
  let m = /^STREAM\/(\d{5})\.(MTS|M2TS)$/i.exec(rest);
  if (m) return { layout: 'avchd', role: 'recording' };
  m = /^CLIPINF\/(\d{5})\.(CPI|CLPI)$/i.exec(rest);
  if (m) return { layout: 'avchd', role: 'companion', owners: [`${bdmv}/STREAM/${m[1]}.MTS`, `${bdmv}/STREAM/${m[1]}.M2TS`] };
  if (/^PLAYLIST\/\d{5}\.(MPL|MPLS)$/i.test(rest)) return { layout: 'avchd', role: 'card-metadata', reason: 'AVCHD playlist (which clips make one recording): an index of the card, not a recording' };
  if (/^(INDEX|MOVIEOBJ)\.(BDM|BDMV)$/i.test(rest) || /^(index|MovieObject)\.bdmv$/i.test(rest)) return { layout: 'avchd', role: 'card-metadata', reason: 'AVCHD/Blu-ray navigation file of the card: not a recording' };
  if (/^BACKUP\//i.test(rest)) return { layout: 'avchd', role: 'card-metadata', reason: 'AVCHD backup copy of the card\'s index files: not a recording' };
  if (MEDIA.test(rest)) return { layout: 'avchd', role: 'recording' };
  return undefined;
}

function sony(relPath: string): CardPathRole | undefined {
  const match = /^((?:PRIVATE\/)?M4ROOT)\/(.+)$/i.exec(relPath);
  if (!match) return undefined;
  const [, root, rest] = match as unknown as [string, string, string];
  let m = /^CLIP\/(.+)M01\.XML$/i.exec(rest);
  if (m) return { layout: 'sony-xavc', role: 'companion', owners: [`${root}/CLIP/${m[1]}.MP4`] };
  m = /^THMBNL\/(.+)T01\.JPG$/i.exec(rest);
  if (m) return { layout: 'sony-xavc', role: 'companion', owners: [`${root}/CLIP/${m[1]}.MP4`] };
  m = /^SUB\/(.+)S03\.MP4$/i.exec(rest);
  if (m) return { layout: 'sony-xavc', role: 'companion', owners: [`${root}/CLIP/${m[1]}.MP4`] };
  if (/^CLIP\/[^/]+\.MP4$/i.test(rest)) return { layout: 'sony-xavc', role: 'recording' };
  if (/^(MEDIAPRO\.XML|STATUS\.BIN|CUEUP\.XML)$/i.test(rest) || /^GENERAL\//i.test(rest)) {
    return { layout: 'sony-xavc', role: 'card-metadata', reason: 'Sony card index / status file (lists the clips, not a recording)' };
  }
  if (MEDIA.test(rest)) return { layout: 'sony-xavc', role: 'recording' };
  return undefined;
}

/** Normal/, Event/, Parking/ (also Emergency/, Manual/) at the top or one level down (DCIM/Event/…). */
function dashcam(relPath: string): CardPathRole | undefined {
  const parts = relPath.split('/');
  for (const level of [0, 1]) {
    if (parts.length < level + 2) continue;
    const kind = DASHCAM_FOLDERS[parts[level]!.toLowerCase()];
    if (kind && MEDIA.test(relPath)) return { layout: 'dashcam', role: 'recording', folder: kind.folder };
  }
  return undefined;
}

function dated(relPath: string): CardPathRole | undefined {
  if (!MEDIA.test(relPath)) return undefined;
  const dirs = relPath.split('/').slice(0, -1);
  for (let i = 0; i < dirs.length; i++) {
    // <YYYY>/<MM>/<DD>/, or one folder <YYYYMMDD> or <YYYY-MM-DD> / <YYYY_MM_DD>.
    if (i + 2 < dirs.length && /^\d{4}$/.test(dirs[i]!) && /^\d{2}$/.test(dirs[i + 1]!) && /^\d{2}$/.test(dirs[i + 2]!) && isDate(dirs[i]!, dirs[i + 1]!, dirs[i + 2]!)) {
      return { layout: 'dated', role: 'recording' };
    }
    const one = /^(\d{4})[-_]?(\d{2})[-_]?(\d{2})$/.exec(dirs[i]!);
    if (one && isDate(one[1]!, one[2]!, one[3]!)) return { layout: 'dated', role: 'recording' };
  }
  return undefined;
}

function bodycam(relPath: string): CardPathRole | undefined {
  return /^DCIM\/100BWC\/[^/]+$/i.test(relPath) && MEDIA.test(relPath) ? { layout: 'bodycam', role: 'recording' } : undefined;
}

/** What a path is on a known maker's card, or undefined when no known layout claims it. */
export function cardPathRole(relPath: string): CardPathRole | undefined {
  const role = bodycam(relPath) ?? gopro(relPath) ?? avchd(relPath) ?? sony(relPath) ?? dashcam(relPath) ?? dated(relPath);
  // A media file is never an index of the card (an .MTS put in BDMV/BACKUP/ is a recording there).
  if (role?.role === 'card-metadata' && MEDIA_NAME.test(relPath)) return { layout: role.layout, role: 'recording' };
  return role;
}

/** The layouts a card's paths show, most files first (a camcorder may hold AVCHD and XAVC side by side). */
export function cardLayoutsOf(relPaths: Iterable<string>): CardLayout[] {
  return cardLayoutsOfRoles([...relPaths].map(cardPathRole));
}

/** cardLayoutsOf from the paths' roles (cardPathRole), for a caller that has them already. */
export function cardLayoutsOfRoles(roles: Iterable<CardPathRole | undefined>): CardLayout[] {
  const counts = new Map<CardLayout, number>();
  for (const role of roles) {
    if (role) counts.set(role.layout, (counts.get(role.layout) ?? 0) + (role.role === 'recording' ? 1000 : 1));
  }
  return [...counts.entries()].sort((a, b) => b[1] - a[1] || CARD_LAYOUTS.indexOf(a[0]) - CARD_LAYOUTS.indexOf(b[0])).map(([layout]) => layout);
}

/** The manifest's `file.source` for a recording at this path (undefined when no known layout claims it). */
export function recordingSourceOf(relPath: string): RecordingSource | undefined {
  const role = cardPathRole(relPath);
  if (!role || role.role !== 'recording') return undefined;
  const source: RecordingSource = { path: relPath, layout: role.layout };
  if (role.folder) {
    const kind = Object.values(DASHCAM_FOLDERS).find((k) => k.folder === role.folder)!;
    const folderName = relPath.split('/').find((p) => DASHCAM_FOLDERS[p.toLowerCase()]?.folder === role.folder)!;
    const named = DASHCAM_FOLDERS[folderName.toLowerCase()] ?? kind;
    source.folder = role.folder;
    source.trigger = named.trigger;
    source.category = named.category;
  }
  if (role.chapter) source.chapter = role.chapter;
  return source;
}

/** A dashcam Event recording is an incident: offloaded first, like a critical recording of our camera. */
export function isIncidentPath(relPath: string): boolean {
  return cardPathRole(relPath)?.folder === 'event';
}
