/**
 * The checks a court expert would run on one recording that need no read of the bytes, each with
 * its result: the Merkle root over the segment hashes, the segments tiling the file, the receipt's
 * signature (server key) and fields, the dock's manifest signature, and the camera's sidecar
 * signature. The SHA-256 of the content reads every byte: contentChecks.ts.
 */
import { merkleRoot } from '../../protocol/merkle.js';
import { verifyObject } from '../../protocol/signing.js';
import type { StoredRecording } from '../store/store.js';

export type CheckResult = 'pass' | 'fail' | 'pending' | 'n/a';
export interface Check { name: string; result: CheckResult; detail: string }

export function staticChecks(record: StoredRecording, serverPublicKeyPem: string): Check[] {
  const { manifest, receipt } = record;
  const checks: Check[] = [];
  const root = merkleRoot(manifest.segments.map((s) => s.sha256));
  checks.push({ name: 'Merkle root', result: root === manifest.merkleRoot && (!receipt || receipt.merkleRoot === root) ? 'pass' : 'fail',
    detail: `recomputed over ${manifest.segments.length} segment hashes: ${root}${receipt ? '; the receipt says ' + receipt.merkleRoot : ''}` });
  let tiled = 0;
  const tiles = manifest.segments.every((s, i) => { const ok = s.index === i && s.offset === tiled; tiled += s.length; return ok; }) && tiled === manifest.file.size;
  checks.push({ name: 'Segments tile the file', result: tiles ? 'pass' : 'fail', detail: `${manifest.segments.length} segments, ${tiled} of ${manifest.file.size} bytes, in order without gaps or overlaps` });
  if (receipt) {
    const signed = verifyObject(receipt as unknown as Record<string, unknown>, serverPublicKeyPem);
    const same = receipt.sha256 === manifest.file.sha256 && receipt.size === manifest.file.size && receipt.segmentCount === manifest.segments.length && receipt.recordingId === manifest.recordingId;
    checks.push({ name: 'Receipt signature', result: signed && same ? 'pass' : 'fail', detail: `${signed ? 'verifies' : 'does NOT verify'} with the server key ${receipt.serverKeyId.slice(0, 16)}…; fields ${same ? 'match' : 'DIFFER from'} the manifest; custody seq ${receipt.custodySeq}` });
  } else {
    checks.push({ name: 'Receipt signature', result: 'pending', detail: 'no receipt yet: the recording is still arriving' });
  }
  const dockSigned = verifyObject(manifest as unknown as Record<string, unknown>, manifest.dock.publicKeyPem);
  checks.push({ name: 'Dock signature (manifest)', result: dockSigned ? 'pass' : 'fail', detail: `${dockSigned ? 'verifies' : 'does NOT verify'} with the key of dock ${manifest.dock.id}` });
  const sidecar = manifest.device.sidecar;
  const cameraKey = manifest.device.publicKeyPem;
  if (!sidecar || !cameraKey) {
    checks.push({ name: 'Camera signature (sidecar)', result: 'n/a', detail: !sidecar ? 'no sidecar (a foreign camera, or cut by power loss)' : 'no camera key (no DEVICE.json)' });
  } else {
    const ok = verifyObject(sidecar, cameraKey);
    const hashOk = sidecar['sha256'] === manifest.file.sha256;
    checks.push({ name: 'Camera signature (sidecar)', result: ok && hashOk ? 'pass' : 'fail', detail: `${ok ? 'verifies' : 'does NOT verify'} with the camera key of ${manifest.device.serial}; the sidecar's file hash ${hashOk ? 'equals' : 'DIFFERS from'} the file's` });
  }
  return checks;
}
