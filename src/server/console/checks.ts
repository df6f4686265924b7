/**
 * The checks a court expert would run on one recording that need no read of the bytes, each with
 * its result: the Merkle root over the segment hashes, the segments tiling the file, the receipt's
 * signature (server key) and fields, the dock's manifest signature, and the camera's sidecar
 * signature. The SHA-256 of the content reads every byte: contentChecks.ts.
 */
import { merkleRoot } from '../../protocol/merkle.js';
import { verifyObject } from '../../protocol/signing.js';
import { cameraKeyIdOf, type CameraKeySeen } from '../operator/catalog.js';
import type { StoredRecording } from '../store/store.js';

export type CheckResult = 'pass' | 'fail' | 'pending' | 'n/a';
export interface Check { name: string; result: CheckResult; detail: string }

/**
 * `cameraKeys`: the keys the server has seen this camera's cards present, first seen first
 * (Catalog.cameraKeys). The card carries its own key (DEVICE.json), so a signature that verifies
 * proves only that the card agrees with itself; a key other than the first one seen for the
 * serial is a re-keyed card (ATTACK-s6 B2) and fails the check, naming both keys.
 */
export function staticChecks(record: StoredRecording, serverPublicKeyPem: string, cameraKeys: readonly CameraKeySeen[] = []): Check[] {
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
    const keyId = cameraKeyIdOf(cameraKey);
    const first = cameraKeys[0];
    const changed = first !== undefined && keyId !== undefined && first.keyId !== keyId;
    const others = cameraKeys.filter((k) => k.keyId !== keyId);
    const keyNote = changed
      ? `; a CHANGED camera key: the server knows ${manifest.device.serial} by key ${first.keyId.slice(0, 16)}… (first seen ${first.firstSeen}, ${first.recordings} recording(s)), this card presented ${keyId!.slice(0, 16)}…`
      : others.length > 0 ? `; ${manifest.device.serial}'s cards presented ${others.length} other key(s) later (${others.map((k) => `${k.keyId.slice(0, 16)}… first seen ${k.firstSeen}`).join(', ')})` : '';
    checks.push({ name: 'Camera signature (sidecar)', result: ok && hashOk && !changed ? 'pass' : 'fail',
      detail: `${ok ? 'verifies' : 'does NOT verify'} with the key on the card (DEVICE.json, key id ${keyId ? keyId.slice(0, 16) + '…' : 'none'}), which proves the card agrees with itself, not who wrote it; the sidecar's file hash ${hashOk ? 'equals' : 'DIFFERS from'} the file's${keyNote}` });
  }
  return checks;
}
