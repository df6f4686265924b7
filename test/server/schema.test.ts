import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { manifestSchema, receiptSchema, schemaFileText } from '../../src/protocol/schema.js';
import { buildRecording, testBytes } from '../helpers/manifest.js';
import { startTestServer } from '../helpers/server.js';
import { segmentHeaders } from '../helpers/server.js';

const doc = (name: string) => readFileSync(fileURLToPath(new URL(`../../docs/${name}`, import.meta.url)), 'utf8');

describe('published JSON Schemas', () => {
  it('docs/*.schema.json are exactly the schemas the code uses', () => {
    expect(doc('manifest.schema.json')).toBe(schemaFileText(manifestSchema));
    expect(doc('receipt.schema.json')).toBe(schemaFileText(receiptSchema));
  });

  it('a real manifest and a real receipt carry every required member of their schema', async () => {
    const server = await startTestServer();
    try {
      const rec = buildRecording(testBytes(5000, 2), { segmentSize: 2000 });
      for (const key of manifestSchema.required) expect(rec.manifest).toHaveProperty(key);
      await server.request('/v1/recordings', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(rec.manifest) });
      for (let i = 0; i < rec.segments.length; i++) {
        await server.request(`/v1/recordings/${rec.manifest.recordingId}/segments/${i}`, { method: 'PUT', headers: segmentHeaders(rec.segments[i]!), body: rec.segments[i] });
      }
      const receipt = await (await server.request(`/v1/recordings/${rec.manifest.recordingId}/complete`, { method: 'POST' })).json() as Record<string, unknown>;
      // custodyPrevHash is optional in the schema (receipts from older servers lack it); this server always sends it.
      expect(Object.keys(receipt).sort()).toEqual([...receiptSchema.required, 'custodyPrevHash'].sort());
      expect(receipt.protocol).toBe(receiptSchema.properties.protocol.const);
    } finally {
      await server.close();
    }
  });
});
