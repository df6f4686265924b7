/**
 * A tiny manifest builder for tests: cut a Buffer into fixed-size segments,
 * hash them, and sign the manifest with a dock key, exactly as a dock would.
 */
import { merkleRoot } from '../../src/protocol/merkle.js';
import { sha256Hex } from '../../src/protocol/digest.js';
import { generateSigningKeyPair, signObject, type KeyPairPem } from '../../src/protocol/signing.js';
import { PROTOCOL_VERSION, type RecordingManifest, type SegmentPlanEntry } from '../../src/protocol/types.js';

export interface BuiltRecording {
  manifest: RecordingManifest;
  /** Segment bodies, by index. */
  segments: Buffer[];
  dockKeys: KeyPairPem;
}

export interface BuildOptions {
  dockId?: string;
  dockKeys?: KeyPairPem;
  serial?: string;
  segmentSize?: number;
  recordingId?: string;
  fileName?: string;
  /** Change the manifest before it is signed. */
  mutate?: (unsigned: Omit<RecordingManifest, 'signature'>) => void;
}

export function buildRecording(data: Buffer, options: BuildOptions = {}): BuiltRecording {
  const dockKeys = options.dockKeys ?? generateSigningKeyPair();
  const serial = options.serial ?? 'CAM001';
  const segmentSize = options.segmentSize ?? 64 * 1024;
  const segments: Buffer[] = [];
  const plan: SegmentPlanEntry[] = [];
  for (let offset = 0, index = 0; offset < data.length; offset += segmentSize, index++) {
    const body = data.subarray(offset, Math.min(offset + segmentSize, data.length));
    segments.push(body);
    plan.push({ index, offset, length: body.length, sha256: sha256Hex(body) });
  }
  const fileSha = sha256Hex(data);
  const unsigned: Omit<RecordingManifest, 'signature'> = {
    protocol: PROTOCOL_VERSION,
    recordingId: options.recordingId ?? `${serial}-${fileSha.slice(0, 32)}`,
    device: { serial },
    dock: { id: options.dockId ?? 'dock-1', publicKeyPem: dockKeys.publicKeyPem, bay: '1' },
    file: { name: options.fileName ?? 'clip.mp4', size: data.length, sha256: fileSha },
    integrity: { status: 'unsigned', notes: [] },
    segments: plan,
    merkleRoot: merkleRoot(plan.map((p) => p.sha256)),
    createdAt: new Date().toISOString(),
  };
  options.mutate?.(unsigned);
  const manifest = signObject(unsigned as unknown as Record<string, unknown>, dockKeys.privateKeyPem) as unknown as RecordingManifest;
  return { manifest, segments, dockKeys };
}

/** Deterministic pseudo-random bytes (not compressible, reproducible). */
export function testBytes(length: number, seed = 1): Buffer {
  const out = Buffer.alloc(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}
