/**
 * Checking a recording against what its camera signed. A failed check never
 * stops the upload (evidence is never withheld); it flags the manifest and
 * forbids the wipe.
 */
import { verifyObject } from '../protocol/signing.js';
import { isIntegrityProblem, type IntegrityStatus } from '../protocol/types.js';
import type { DeviceInfo } from '../protocol/cameraStorage/index.js';
import type { SidecarReading } from './storage.js';

export interface IntegrityVerdict {
  status: IntegrityStatus;
  notes: string[];
}

export interface IntegrityInput {
  sidecar?: SidecarReading;
  device?: DeviceInfo;
  deviceProblem?: string;
  fileSha256: string;
  fileSize: number;
  fileName: string;
  truncated: boolean;
  /** The planner found the media itself cut (its last box or packet ends past the file); unset: it reads to its end. */
  mediaCut?: boolean;
}

export function checkIntegrity(input: IntegrityInput): IntegrityVerdict {
  const notes: string[] = [];
  if (input.deviceProblem) notes.push(input.deviceProblem);
  if (!input.sidecar) {
    // Say what was seen: a missing sidecar alone says the camera did not finish, not that the media is cut.
    if (input.truncated && input.mediaCut) notes.push('no sidecar and the media ends mid-box: recording cut by power loss (truncated)');
    else if (input.truncated) notes.push('no sidecar: the camera did not finish this recording (power loss?); the media itself reads to its end (truncated)');
    else notes.push(input.device ? 'no sidecar: recording closed without one' : 'no sidecar: file from a camera without DEVICE.json');
    return { status: 'unsigned', notes };
  }
  if (input.sidecar.kind === 'invalid') {
    notes.push(input.sidecar.reason);
    return { status: 'sidecar-invalid', notes };
  }
  const sidecar = input.sidecar.sidecar;
  if (typeof sidecar.sha256 !== 'string' || typeof sidecar.signature !== 'string') {
    notes.push('sidecar lacks sha256 or signature');
    return { status: 'sidecar-invalid', notes };
  }
  let status: IntegrityStatus = 'verified';
  if (sidecar.sha256.toLowerCase() !== input.fileSha256) {
    notes.push(`file SHA-256 ${input.fileSha256} differs from the sidecar's ${sidecar.sha256}`);
    status = 'hash-mismatch';
  }
  if (typeof sidecar.size === 'number' && sidecar.size !== input.fileSize) {
    notes.push(`file size ${input.fileSize} differs from the sidecar's ${sidecar.size}`);
    status = 'hash-mismatch';
  }
  if (typeof sidecar.fileName === 'string' && sidecar.fileName !== input.fileName) {
    notes.push(`sidecar names ${sidecar.fileName}, file is ${input.fileName}`);
  }
  if (!input.device?.publicKeyPem) {
    notes.push('no camera public key (DEVICE.json) to check the sidecar signature');
    if (status === 'verified') status = 'signature-invalid';
  } else if (!verifyObject(sidecar, input.device.publicKeyPem)) {
    notes.push('sidecar signature does not verify with the camera key in DEVICE.json');
    if (status === 'verified') status = 'signature-invalid';
  }
  const long = longestText(sidecar);
  if (long && long.length > SIDECAR_TEXT_MAX) {
    // Signed or not, no camera writes a category or an officer id of this size: a card edited on a PC
    // or a broken firmware. Uploaded byte-exact all the same; flagged, so the card keeps it for a person.
    notes.push(`sidecar text ${long.path.length > 100 ? long.path.slice(0, 99) + '…' : long.path} is ${long.length} characters (at most ${SIDECAR_TEXT_MAX} expected)`);
    if (status === 'verified') status = 'sidecar-invalid';
  }
  if (input.truncated) notes.push('media ends mid-box (truncated)');
  return { status, notes };
}

/** Longer than this, a string in a sidecar is not a camera's (category, officer, agency, trigger, marker label…). */
export const SIDECAR_TEXT_MAX = 4096;

/** The longest string anywhere in a sidecar (JSON path and length), or undefined when it holds none. */
function longestText(value: unknown, path = '', depth = 0): { path: string; length: number } | undefined {
  if (typeof value === 'string') return { path: path || '(the sidecar)', length: value.length };
  if (typeof value !== 'object' || value === null || depth > 16) return undefined;
  let best: { path: string; length: number } | undefined;
  const entries: [string, unknown][] = Array.isArray(value) ? value.map((v, i) => [`${path}[${i}]`, v]) : Object.entries(value).map(([k, v]) => [path ? `${path}.${k}` : k, v]);
  for (const [p, v] of entries) {
    // A key is text the card wrote too.
    const found = p.length > (best?.length ?? 0) && p.length > SIDECAR_TEXT_MAX ? { path: p, length: p.length } : longestText(v, p, depth + 1);
    if (found && (!best || found.length > best.length)) best = found;
  }
  return best;
}

/**
 * Flagged recordings are uploaded but never wiped and need a person's attention. `unreadable`
 * (ffprobe's words for a file uploaded as opaque bytes) is as strict as a hash mismatch.
 */
export function isFlagged(status: IntegrityStatus | undefined, truncated: boolean, unreadable?: string): boolean {
  return truncated || unreadable !== undefined || isIntegrityProblem(status);
}
