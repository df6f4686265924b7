/**
 * The checks a manifest must pass beyond its JSON Schema: the segment plan
 * tiles [0, size) exactly in order, the Merkle root is the root of the segment
 * hashes, and the dock's signature verifies with the key it carries.
 */
import { createHash } from 'node:crypto';
import { canonicalize } from '../protocol/jcs.js';
import { merkleRoot } from '../protocol/merkle.js';
import { isEd25519PublicKeyPem, verifyObject } from '../protocol/signing.js';
import { ATTACHMENTS_MAX, SIDECAR_MAX_BYTES, type AttachmentEntry, type RecordingManifest, type SegmentPlanEntry } from '../protocol/types.js';
import { ProblemError } from './problem.js';

/** A UTF-16 surrogate without its partner: JSON can carry one (`"\\ud800"`), UTF-8 and a URL cannot. */
const LONE_SURROGATE = /\p{Surrogate}/u;

/**
 * Every string of the manifest is well-formed Unicode: a lone surrogate (in an attachment's name,
 * a file name, a serial) is accepted by JSON.parse and the schema, and then makes every answer that
 * writes the name into a header or a path fail (encodeURIComponent throws), after its receipt.
 */
export function checkWellFormedText(manifest: RecordingManifest): void {
  const pending: Array<{ value: unknown; path: string }> = [{ value: manifest, path: 'manifest' }];
  while (pending.length) {
    const { value, path } = pending.pop()!;
    if (typeof value === 'string') {
      if (LONE_SURROGATE.test(value)) throw new ProblemError('invalid_manifest', `${path} holds a lone UTF-16 surrogate: not well-formed Unicode`);
    } else if (Array.isArray(value)) {
      value.forEach((item, i) => pending.push({ value: item, path: `${path}[${i}]` }));
    } else if (value !== null && typeof value === 'object') {
      for (const [key, item] of Object.entries(value)) {
        if (LONE_SURROGATE.test(key)) throw new ProblemError('invalid_manifest', `${path} has a key with a lone UTF-16 surrogate: not well-formed Unicode`);
        pending.push({ value: item, path: `${path}.${key}` });
      }
    }
  }
}

export function checkSegmentPlan(manifest: RecordingManifest, maxSegmentBytes: number): void {
  let offset = 0;
  manifest.segments.forEach((segment, position) => {
    if (segment.index !== position) throw new ProblemError('invalid_manifest', `segment at position ${position} has index ${segment.index}; indexes must be 0..n-1 in order`);
    if (segment.offset !== offset) throw new ProblemError('invalid_manifest', `segment ${position} starts at ${segment.offset}, expected ${offset}: segments must tile the file`);
    if (segment.length > maxSegmentBytes) throw new ProblemError('invalid_manifest', `segment ${position} is ${segment.length} bytes; this server accepts at most ${maxSegmentBytes}`, { extension: { maxSegmentBytes } });
    offset += segment.length;
  });
  if (offset !== manifest.file.size) throw new ProblemError('invalid_manifest', `segments cover ${offset} bytes, the file has ${manifest.file.size}`);
  const root = merkleRoot(manifest.segments.map((s) => s.sha256));
  if (root !== manifest.merkleRoot) throw new ProblemError('invalid_manifest', `merkleRoot ${manifest.merkleRoot} is not the root of the segment hashes (${root})`);
}

/** Every way a plan fails to tile [0, size) in order within the segment cap (empty = it tiles). */
export function planProblems(segments: readonly SegmentPlanEntry[], size: number, maxSegmentBytes: number): string[] {
  let offset = 0;
  for (let position = 0; position < segments.length; position++) {
    const segment = segments[position]!;
    if (segment.index !== position) return [`segment at position ${position} has index ${segment.index}; indexes must be 0..n-1 in order`];
    if (segment.offset !== offset) return [`segment ${position} starts at ${segment.offset}, expected ${offset}: segments must tile the file`];
    if (segment.length > maxSegmentBytes) return [`segment ${position} is ${segment.length} bytes; this server accepts at most ${maxSegmentBytes}`];
    offset += segment.length;
  }
  return offset === size ? [] : [`segments cover ${offset} bytes, the file has ${size}`];
}

/**
 * Attachments (docs/protocol.md, "Attachments"): at most 64, indexes 0..n-1 in order, names that
 * are plain file names (no folder, no NUL) and unique, each plan tiling its attachment. Their
 * SHA-256 is checked against the bytes at complete.
 */
export function checkAttachments(manifest: RecordingManifest, maxSegmentBytes: number): void {
  const attachments = manifest.attachments;
  if (attachments === undefined) return;
  if (attachments.length > ATTACHMENTS_MAX) throw new ProblemError('invalid_manifest', `${attachments.length} attachments; at most ${ATTACHMENTS_MAX}`);
  const names = new Set<string>();
  attachments.forEach((attachment: AttachmentEntry, position) => {
    if (attachment.index !== position) throw new ProblemError('invalid_manifest', `attachment at position ${position} has index ${attachment.index}; indexes must be 0..n-1 in order`);
    if (/[/\\\0]/.test(attachment.name) || attachment.name === '.' || attachment.name === '..') throw new ProblemError('invalid_manifest', `attachment ${position}: name must be a plain file name`);
    if (names.has(attachment.name)) throw new ProblemError('invalid_manifest', `attachment ${position}: name ${JSON.stringify(attachment.name)} is given twice`);
    names.add(attachment.name);
    const problems = planProblems(attachment.segments, attachment.size, maxSegmentBytes);
    if (problems.length) throw new ProblemError('invalid_manifest', `attachment ${position}: ${problems[0]}`);
  });
}

export function checkDockSignature(manifest: RecordingManifest): void {
  if (!isEd25519PublicKeyPem(manifest.dock.publicKeyPem)) throw new ProblemError('bad_signature', 'dock.publicKeyPem is not an Ed25519 public key (PEM, SPKI)');
  if (!verifyObject(manifest as unknown as Record<string, unknown>, manifest.dock.publicKeyPem)) {
    throw new ProblemError('bad_signature', 'the dock signature does not verify over JCS(manifest without signature) with dock.publicKeyPem');
  }
}

/** What makes two manifests the same recording: same bytes, same plan, same dock. */
export function sameContent(a: RecordingManifest, b: RecordingManifest): boolean {
  if (a.dock.id !== b.dock.id || a.file.sha256 !== b.file.sha256 || a.file.size !== b.file.size) return false;
  // Another sidecar is other evidence: the stored one must not stand in for it (the dock wipes a sidecar on these bytes).
  if ((a.device.sidecarSha256 ?? null) !== (b.device.sidecarSha256 ?? null)) return false;
  const samePlan = (x: readonly SegmentPlanEntry[], y: readonly SegmentPlanEntry[]): boolean => x.length === y.length && x.every((s, i) => {
    const t = y[i]!;
    return s.index === t.index && s.offset === t.offset && s.length === t.length && s.sha256 === t.sha256;
  });
  if (!samePlan(a.segments, b.segments)) return false;
  // Other attachments are other evidence, as another sidecar is.
  const x = a.attachments ?? [];
  const y = b.attachments ?? [];
  return x.length === y.length && x.every((p, i) => p.name === y[i]!.name && p.size === y[i]!.size && p.sha256 === y[i]!.sha256 && samePlan(p.segments, y[i]!.segments));
}

/**
 * The sidecar's exact bytes travel in the manifest (device.sidecarBase64) with their hash
 * (device.sidecarSha256): the dock deletes a sidecar only when the server holds those bytes.
 * Both or neither; the bytes hash to the hash; the parsed device.sidecar, when given, is those bytes.
 */
export function checkSidecarBytes(manifest: RecordingManifest): void {
  const { sidecarSha256, sidecarBase64, sidecar } = manifest.device;
  if (sidecarSha256 === undefined && sidecarBase64 === undefined) return;
  if (sidecarSha256 === undefined || sidecarBase64 === undefined) throw new ProblemError('invalid_manifest', 'device.sidecarSha256 and device.sidecarBase64 come together');
  const bytes = Buffer.from(sidecarBase64, 'base64');
  if (bytes.toString('base64') !== sidecarBase64) throw new ProblemError('invalid_manifest', 'device.sidecarBase64 is not canonical base64');
  if (bytes.length > SIDECAR_MAX_BYTES) throw new ProblemError('invalid_manifest', `the sidecar is ${bytes.length} bytes; at most ${SIDECAR_MAX_BYTES}`);
  const actual = createHash('sha256').update(bytes).digest('hex');
  if (actual !== sidecarSha256) throw new ProblemError('invalid_manifest', `device.sidecarBase64 hashes to ${actual}, device.sidecarSha256 says ${sidecarSha256}`);
  if (sidecar !== undefined) {
    let parsed: unknown;
    try { parsed = JSON.parse(bytes.toString('utf8')); } catch { parsed = undefined; }
    if (parsed === undefined || canonicalize(parsed) !== canonicalize(sidecar)) throw new ProblemError('invalid_manifest', 'device.sidecar is not the JSON of device.sidecarBase64');
  }
}
