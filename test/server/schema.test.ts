import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { runs } from '../helpers/fcRuns.js';
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { manifestSchema, possessionChallengeSchema, receiptSchema, schemaFileText } from '../../src/protocol/schema.js';
import { compileSchema } from '../../src/util/jsonSchema.js';
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

describe('incoming documents are checked by the one validator', () => {
  // What fastify's own compile of these schemas answered before (src/server/index.ts's ajv options):
  // the answers' detail and errors[] must stay exactly that.
  const require = createRequire(import.meta.url);
  const ValidatorCompiler = require('@fastify/ajv-compiler/lib/validator-compiler.js') as new (external: object, options: object) => { buildValidatorFunction(o: { schema: object }): ((v: unknown) => boolean) & { errors?: unknown[] | null } };
  const fastifyAjv = new ValidatorCompiler({}, { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false, allErrors: false } });
  const { $id: _id, $schema: _schema, ...manifestBody } = manifestSchema;
  const valid = buildRecording(testBytes(5000, 3), { segmentSize: 2000 }).manifest as unknown as Record<string, unknown>;
  // A valid document with one member replaced, deleted or added, at any depth.
  const odd = fc.oneof(fc.constant(undefined), fc.constant(null), fc.string({ maxLength: 6 }), fc.integer({ min: -5, max: 1e6 }), fc.double(), fc.boolean(), fc.array(fc.integer(), { maxLength: 3 }), fc.dictionary(fc.string({ maxLength: 4 }), fc.integer(), { maxKeys: 2 }));
  const mutate = (doc: Record<string, unknown>, path: string[], value: unknown, extra?: string): unknown => {
    const copy = structuredClone(doc) as Record<string, unknown>;
    if (!path.length) return value === undefined ? copy : value;
    let at: Record<string, unknown> = copy;
    for (const key of path.slice(0, -1)) at = at[key] as Record<string, unknown>;
    const last = path[path.length - 1]!;
    if (extra !== undefined) at[extra] = value; else if (value === undefined) delete at[last]; else at[last] = value;
    return copy;
  };
  it.each([['manifest', manifestBody, valid], ['possession challenge', possessionChallengeSchema, { nonce: 'ab'.repeat(32), segments: [0, 1], sidecar: true }]] as const)('%s: the same first error as fastify\'s own compile, for any one member changed', (_name, schema, good) => {
    const ours = compileSchema(schema, { wire: true });
    const theirs = fastifyAjv.buildValidatorFunction({ schema: structuredClone(schema) });
    const docPaths: string[][] = [];
    const walkDoc = (value: unknown, path: string[]) => { docPaths.push(path); if (value && typeof value === 'object') for (const [k, v] of Object.entries(value)) walkDoc(v, [...path, k]); };
    walkDoc(good, []);
    expect(ours.errors(good)).toEqual([]);
    fc.assert(fc.property(fc.constantFrom(...docPaths), odd, fc.option(fc.constantFrom('x', 'extra', 'sha256'), { nil: undefined }), (path, value, extra) => {
      const doc = mutate(good as Record<string, unknown>, path, value, extra);
      const ok = theirs(doc);
      expect(ours.errors(doc)).toEqual(ok ? [] : theirs.errors);
    }), { numRuns: runs(600) });
  });
});
