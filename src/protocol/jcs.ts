/**
 * RFC 8785 JSON Canonicalization Scheme. Signatures in this project are over
 * this form so that anyone can re-derive the signed bytes with any JCS tool.
 * ES2019 JSON.stringify already serialises strings and finite numbers exactly
 * as JCS requires; what is left is key order (UTF-16 code units) and rejecting
 * values JSON cannot carry.
 */
export function canonicalize(value: unknown): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) throw new TypeError('JCS: non-finite number');
      return JSON.stringify(value);
    case 'string':
      return JSON.stringify(value);
    case 'object': {
      if (Array.isArray(value)) return '[' + value.map((item) => canonicalize(item === undefined ? null : item)).join(',') + ']';
      const record = value as Record<string, unknown>;
      const keys = Object.keys(record).filter((key) => record[key] !== undefined).sort();
      return '{' + keys.map((key) => JSON.stringify(key) + ':' + canonicalize(record[key])).join(',') + '}';
    }
    default:
      throw new TypeError(`JCS: cannot canonicalise a ${typeof value}`);
  }
}
