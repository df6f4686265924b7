/**
 * A small validator for the subset of JSON Schema (draft-07) the scenario
 * schema uses. Its errors name the exact place in the document
 * (`steps[2].after.segmentsUploaded`) and what was expected there, because the
 * person reading them is writing a scenario by hand.
 */

export interface SchemaNode {
  type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  description?: string;
  properties?: Record<string, SchemaNode>;
  required?: readonly string[];
  additionalProperties?: boolean | SchemaNode;
  items?: SchemaNode;
  minItems?: number;
  enum?: readonly unknown[];
  const?: unknown;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  minLength?: number;
  pattern?: string;
  /** Exactly one of these keys must be present (how a step names its action). */
  oneOfKeys?: readonly string[];
}

function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

function fits(type: NonNullable<SchemaNode['type']>, value: unknown): boolean {
  const kind = kindOf(value);
  return kind === type || (type === 'number' && kind === 'integer');
}

function join(path: string, key: string | number): string {
  return typeof key === 'number' ? `${path}[${key}]` : path ? `${path}.${key}` : key;
}

/** All problems in `value` against `schema`, each "path: what was expected". */
export function validateAgainst(schema: SchemaNode, value: unknown, path = ''): string[] {
  const where = path || '(top level)';
  if (schema.const !== undefined && value !== schema.const) return [`${where}: must be ${JSON.stringify(schema.const)}`];
  if (schema.enum && !schema.enum.includes(value)) {
    return [`${where}: must be one of ${schema.enum.map((v) => JSON.stringify(v)).join(', ')}, got ${JSON.stringify(value)}`];
  }
  if (schema.type && !fits(schema.type, value)) {
    const article = /^[aeiou]/.test(schema.type) ? 'an' : 'a';
    return [`${where}: must be ${article} ${schema.type}, got ${kindOf(value)}`];
  }
  const errors: string[] = [];
  if (typeof value === 'number') {
    if (schema.minimum !== undefined && value < schema.minimum) errors.push(`${where}: must be >= ${schema.minimum}`);
    if (schema.exclusiveMinimum !== undefined && value <= schema.exclusiveMinimum) errors.push(`${where}: must be > ${schema.exclusiveMinimum}`);
    if (schema.maximum !== undefined && value > schema.maximum) errors.push(`${where}: must be <= ${schema.maximum}`);
  }
  if (typeof value === 'string') {
    if (schema.minLength !== undefined && value.length < schema.minLength) errors.push(`${where}: must not be empty`);
    if (schema.pattern && !new RegExp(schema.pattern).test(value)) errors.push(`${where}: ${JSON.stringify(value)} does not match ${schema.pattern}`);
  }
  if (Array.isArray(value)) {
    if (schema.minItems !== undefined && value.length < schema.minItems) errors.push(`${where}: needs at least ${schema.minItems} item(s)`);
    if (schema.items) value.forEach((item, i) => errors.push(...validateAgainst(schema.items!, item, join(path, i))));
  }
  if (kindOf(value) === 'object') {
    const object = value as Record<string, unknown>;
    for (const key of schema.required ?? []) {
      if (object[key] === undefined) errors.push(`${join(path, key)}: is required`);
    }
    if (schema.oneOfKeys) {
      const present = schema.oneOfKeys.filter((key) => object[key] !== undefined);
      if (present.length !== 1) {
        errors.push(`${where}: must have exactly one of ${schema.oneOfKeys.join(', ')}${present.length ? ` (has ${present.join(', ')})` : ''}`);
      }
    }
    for (const [key, child] of Object.entries(object)) {
      const known = schema.properties?.[key];
      if (known) {
        errors.push(...validateAgainst(known, child, join(path, key)));
      } else if (schema.additionalProperties === false) {
        const expected = Object.keys(schema.properties ?? {});
        errors.push(`${join(path, key)}: unknown key${expected.length ? ` (expected one of ${expected.join(', ')})` : ''}`);
      } else if (typeof schema.additionalProperties === 'object') {
        errors.push(...validateAgainst(schema.additionalProperties, child, join(path, key)));
      }
    }
  }
  return errors;
}
