/**
 * JSON Schemas (draft-07) of the two signed documents of ingest protocol v1.
 * The server validates manifests with this very object, and docs/*.schema.json
 * are byte-for-byte this object (a test keeps them equal), so the published
 * contract cannot drift from the code. Unknown members are allowed everywhere:
 * they are covered by the signature and ignored by v1 servers.
 */
import { CARD_LAYOUTS } from './cardLayouts.js';
import { INTEGRITY_STATUSES } from './types.js';

const sha256Hex = { type: 'string', pattern: '^[0-9a-f]{64}$' } as const;
const id = { type: 'string', pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$' } as const;
const isoTime = { type: 'string', minLength: 10, maxLength: 64 } as const;
const byteCount = { type: 'integer', minimum: 0, maximum: 9007199254740991 } as const;
const pem = { type: 'string', minLength: 40, maxLength: 4096 } as const;
/** One byte range of a recording or an attachment, as its segments are listed. */
const segmentRange = {
  index: { type: 'integer', minimum: 0 },
  offset: byteCount,
  length: { type: 'integer', minimum: 1, maximum: 9007199254740991 },
  sha256: sha256Hex,
} as const;

/**
 * The list of a recording's or an attachment's segments: the same ranges with the same limits
 * for both, plus the members only one of them has (a recording's segments carry their times).
 */
function segmentList<Extra extends Record<string, unknown> = Record<never, never>>(extra?: Extra) {
  return {
    type: 'array',
    maxItems: 100000,
    items: {
      type: 'object',
      required: ['index', 'offset', 'length', 'sha256'],
      properties: { ...segmentRange, ...(extra ?? {}) } as typeof segmentRange & Extra,
    },
  } as const;
}

export const manifestSchema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: 'https://bodycam-dock.invalid/schemas/manifest.schema.json',
  title: 'bodycam-ingest/1 recording manifest (signed by the dock)',
  type: 'object',
  required: ['protocol', 'recordingId', 'device', 'dock', 'file', 'integrity', 'segments', 'merkleRoot', 'createdAt', 'signature'],
  properties: {
    protocol: { const: 'bodycam-ingest/1' },
    recordingId: id,
    device: {
      type: 'object',
      required: ['serial'],
      properties: {
        serial: { type: 'string', minLength: 1, maxLength: 128 },
        model: { type: 'string', maxLength: 256 },
        firmware: { type: 'string', maxLength: 256 },
        publicKeyPem: pem,
        sidecar: { type: 'object' },
        sidecarSha256: sha256Hex,
        // base64 of at most 1 MiB (SIDECAR_MAX_BYTES): 4 * ceil(1048576 / 3) characters.
        sidecarBase64: { type: 'string', maxLength: 1398104, pattern: '^[A-Za-z0-9+/]*={0,2}$' },
        clockOffsetMs: { type: 'number' },
      },
    },
    dock: {
      type: 'object',
      required: ['id', 'publicKeyPem'],
      properties: {
        id,
        publicKeyPem: pem,
        bay: { type: 'string', maxLength: 128 },
      },
    },
    file: {
      type: 'object',
      required: ['name', 'size', 'sha256'],
      properties: {
        name: { type: 'string', minLength: 1, maxLength: 1024 },
        size: byteCount,
        sha256: sha256Hex,
        media: {
          type: 'object',
          properties: {
            packetSize: { enum: [188, 192, 204] },
            timeOrigin: { type: 'number' },
          },
        },
        mediaFingerprint: { type: 'string', maxLength: 65536 },
        mediaFingerprints: {
          type: 'array',
          maxItems: 4096,
          items: {
            type: 'object',
            required: ['index', 'type'],
            properties: {
              index: { type: 'integer', minimum: 0 },
              type: { type: 'string', maxLength: 64 },
              codec: { type: 'string', maxLength: 64 },
              hash: sha256Hex,
              error: { type: 'string', maxLength: 1024 },
            },
          },
        },
        truncated: { type: 'boolean' },
        unreadable: { type: 'string', minLength: 1, maxLength: 2048 },
        source: {
          type: 'object',
          required: ['path', 'layout'],
          properties: {
            path: { type: 'string', minLength: 1, maxLength: 4096 },
            layout: { enum: [...CARD_LAYOUTS] },
            folder: { enum: ['event', 'parking', 'normal'] },
            trigger: { type: 'string', maxLength: 64 },
            category: { type: 'string', maxLength: 64 },
            chapter: {
              type: 'object',
              required: ['recording', 'index'],
              properties: { recording: { type: 'string', maxLength: 4096 }, index: { type: 'integer', minimum: 1 } },
            },
          },
        },
      },
    },
    integrity: {
      type: 'object',
      required: ['status', 'notes'],
      properties: {
        status: { enum: INTEGRITY_STATUSES },
        notes: { type: 'array', items: { type: 'string' } },
      },
    },
    segments: segmentList({ startTime: { type: 'number' }, endTime: { type: 'number' } } as const),
    merkleRoot: sha256Hex,
    attachments: {
      type: 'array',
      maxItems: 64,
      items: {
        type: 'object',
        required: ['index', 'name', 'size', 'sha256', 'kind', 'segments'],
        properties: {
          index: { type: 'integer', minimum: 0, maximum: 63 },
          name: { type: 'string', minLength: 1, maxLength: 1024 },
          size: byteCount,
          sha256: sha256Hex,
          kind: { enum: ['metadata-json', 'thumbnail', 'proxy-video', 'gps', 'xml', 'subtitles', 'other'] },
          segments: segmentList(),
        },
      },
    },
    createdAt: isoTime,
    signature: { type: 'string', minLength: 1, maxLength: 512 },
  },
} as const;

/** Body of POST /v1/recordings/{id}/possession. */
export const possessionChallengeSchema = {
  type: 'object',
  required: ['nonce', 'segments'],
  additionalProperties: false,
  properties: {
    nonce: { type: 'string', pattern: '^[0-9a-f]{64}$' },
    segments: { type: 'array', minItems: 1, maxItems: 8, uniqueItems: true, items: { type: 'integer', minimum: 0, maximum: 99999 } },
    /** Also prove the stored sidecar bytes: answer sidecarSha256 = SHA-256(nonce ‖ sidecar bytes). */
    sidecar: { type: 'boolean' },
    /** Also prove every attachment: answer attachments[] = SHA-256(nonce ‖ the attachment's bytes). */
    attachments: { type: 'boolean' },
  },
} as const;

export const receiptSchema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: 'https://bodycam-dock.invalid/schemas/receipt.schema.json',
  title: 'bodycam-ingest/1 receipt (signed by the ingest server)',
  type: 'object',
  required: ['protocol', 'type', 'recordingId', 'dockId', 'sha256', 'size', 'segmentCount', 'merkleRoot', 'receivedAt', 'serverKeyId', 'custodySeq', 'signature'],
  properties: {
    protocol: { const: 'bodycam-ingest/1' },
    type: { const: 'receipt' },
    recordingId: id,
    dockId: id,
    sha256: sha256Hex,
    size: byteCount,
    segmentCount: { type: 'integer', minimum: 0 },
    merkleRoot: sha256Hex,
    receivedAt: isoTime,
    serverKeyId: sha256Hex,
    custodySeq: { type: 'integer', minimum: 1 },
    custodyPrevHash: sha256Hex,
    attachments: {
      type: 'array',
      maxItems: 64,
      items: { type: 'object', required: ['name', 'size', 'sha256'], properties: { name: { type: 'string', minLength: 1, maxLength: 1024 }, size: byteCount, sha256: sha256Hex } },
    },
    signature: { type: 'string', minLength: 1 },
  },
} as const;

/** The text of docs/<name>.schema.json for a schema object. */
export function schemaFileText(schema: object): string {
  return JSON.stringify(schema, null, 2) + '\n';
}
