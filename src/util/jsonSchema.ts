/**
 * The one validator of the project's JSON Schemas (draft-07): dock and server config files,
 * replay scenarios, the protocol documents. Every schema is a plain JSON Schema object (what
 * docs/schemas/*.schema.json publish, byte for byte); ajv checks it, and its errors are turned into
 * lines that name the exact place in the document (`steps[2].after.segmentsUploaded: must be an
 * integer, got string`), because the person reading them is fixing a file by hand.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';

/** JSON Schema as the project writes it: a plain (readonly) object. */
export type JsonSchema = Readonly<Record<string, unknown>>;

export interface SchemaValidator {
  /** Every problem of `value`, each "place: what was expected"; empty when it conforms. */
  problems(value: unknown): string[];
  /** ajv's own errors of one run (empty when it conforms): what an HTTP answer lists. */
  errors(value: unknown): readonly ErrorObject[];
  /** The schema it checks (with `$id`/`$schema` as published). */
  readonly schema: JsonSchema;
}

// One engine for every schema: all errors (a person fixes a file once), no coercion, no defaults
// filled in (a validated document is the document as written). strict: unknown keywords are a
// mistake in a schema, never silently ignored.
const ajv = new Ajv({ allErrors: true, strict: true, strictRequired: false, verbose: true, coerceTypes: false, useDefaults: false, removeAdditional: false, validateSchema: true, addUsedSchema: false });
/** An annotation of ours: what a value of an `anyOf` looks like, in words ("a duration: 30s, 10m, 1h, 7y"). */
ajv.addVocabulary(['x-expects']);
// Documents that arrive over the network (a manifest, a possession challenge): the first problem
// only, as fastify's own validator (all errors of a hostile body is work an attacker chooses), and
// errors without the document's data in them (they go back in the answer). Nothing coerced either.
const wire = new Ajv({ allErrors: false, strict: true, strictRequired: false, verbose: false, coerceTypes: false, useDefaults: false, removeAdditional: false, validateSchema: true, addUsedSchema: false });
wire.addVocabulary(['x-expects']);

/** One step of a place: `.name` for a plain key, `[2]` for an index, `["a.b"]` for any other key (one line, unambiguous). */
export function placeStep(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`;
  if (/^[A-Za-z_$][\w$-]*$/.test(key)) return path ? `${path}.${key}` : key;
  return `${path}[${JSON.stringify(key)}]`;
}

/** "/steps/2/after" → "steps[2].after"; the top level is "". */
export function placeOf(instancePath: string): string {
  if (!instancePath) return '';
  return instancePath.split('/').slice(1).map((part) => part.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce<string>((path, part) => placeStep(path, /^\d+$/.test(part) ? Number(part) : part), '');
}

function join(path: string, key: string): string {
  return placeStep(path, key);
}

function kindOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

function shown(value: unknown): string {
  const text = JSON.stringify(value);
  return text === undefined ? String(value) : text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/** The keys of a `oneOf: [{required: [k]}, ...]` (how a document names exactly one of its actions). */
function oneOfKeys(branches: unknown): string[] | undefined {
  if (!Array.isArray(branches)) return undefined;
  const keys = branches.map((b) => (b && typeof b === 'object' && Array.isArray((b as { required?: unknown }).required) && (b as { required: unknown[] }).required.length === 1 ? String((b as { required: unknown[] }).required[0]) : undefined));
  return keys.every((k) => k !== undefined) ? (keys as string[]) : undefined;
}

function lineOf(error: ErrorObject, secretPlaces: ReadonlySet<string>): string {
  const path = placeOf(error.instancePath);
  const where = path || '(top level)';
  const params = error.params as Record<string, unknown>;
  // A secret's value is never repeated in a message (it may end up in a log or a terminal).
  const value = secretPlaces.has(path) ? '(secret)' : shown(error.data);
  switch (error.keyword) {
    case 'required': return `${join(path, String(params.missingProperty))}: is required`;
    case 'additionalProperties': {
      const known = Object.keys(((error.parentSchema ?? {}) as { properties?: object }).properties ?? {});
      const expected = known.length ? ` (expected one of ${known.join(', ')})` : '';
      // At the top level the key alone names the place; below it, the path does.
      return path ? `${join(path, String(params.additionalProperty))}: unknown key${expected}` : `unknown key ${JSON.stringify(String(params.additionalProperty))}${expected}`;
    }
    case 'type': {
      const type = String(params.type).replace(/,/g, ' or ');
      return `${where}: must be ${/^[aeiou]/.test(type) ? 'an' : 'a'} ${type}, got ${kindOf(error.data)}`;
    }
    case 'const': return `${where}: must be ${shown(params.allowedValue)}`;
    case 'enum': return `${where}: must be one of ${(params.allowedValues as unknown[]).map((v) => shown(v)).join(', ')}, got ${value}`;
    case 'minimum': case 'maximum': case 'exclusiveMinimum': case 'exclusiveMaximum':
      return `${where}: must be ${String(params.comparison)} ${String(params.limit)}`;
    case 'minLength': return Number(params.limit) === 1 ? `${where}: must not be empty` : `${where}: must be at least ${String(params.limit)} characters`;
    case 'maxLength': return `${where}: must be at most ${String(params.limit)} characters`;
    case 'pattern': return `${where}: ${value} does not match ${String(params.pattern)}`;
    case 'minItems': return `${where}: needs at least ${String(params.limit)} item(s)`;
    case 'maxItems': return `${where}: takes at most ${String(params.limit)} item(s)`;
    case 'uniqueItems': return `${where}: items ${String(params.j)} and ${String(params.i)} are the same`;
    case 'oneOf': {
      const keys = oneOfKeys(error.schema);
      if (keys && error.data && typeof error.data === 'object') {
        const present = keys.filter((k) => (error.data as Record<string, unknown>)[k] !== undefined);
        return `${where}: must have exactly one of ${keys.join(', ')}${present.length ? ` (has ${present.join(', ')})` : ''}`;
      }
      return `${where}: must match exactly one of its alternatives`;
    }
    default: return `${where}: ${error.message ?? 'is invalid'}`;
  }
}

/** The problems of one ajv run as lines; the sub-errors of a failed alternative are left out (its own line says it). */
export function formatErrors(errors: readonly ErrorObject[] | null | undefined, secretPlaces: ReadonlySet<string> = new Set()): string[] {
  const list = errors ?? [];
  const alternatives = list.filter((e) => e.keyword === 'oneOf' || e.keyword === 'anyOf').map((e) => e.schemaPath);
  // A failed anyOf of a type and a pattern (number or "16MiB") reports once, as the anyOf line.
  const kept = list.filter((e) => !alternatives.some((alt) => e.schemaPath !== alt && e.schemaPath.startsWith(`${alt}/`)));
  const lines = kept.map((e) => (e.keyword === 'anyOf' ? anyOfLine(e, secretPlaces) : lineOf(e, secretPlaces)));
  return [...new Set(lines)];
}

function anyOfLine(error: ErrorObject, secretPlaces: ReadonlySet<string>): string {
  const path = placeOf(error.instancePath);
  const about = (error.parentSchema as Record<string, unknown> | undefined)?.['x-expects'];
  return `${path || '(top level)'}: ${typeof about === 'string' ? `expected ${about}` : 'is not any of the allowed forms'}, got ${secretPlaces.has(path) ? '(secret)' : shown(error.data)}`;
}

/**
 * Compile a JSON Schema once; its `$id` is kept out of the shared engine (many schemas, one engine).
 * `wire`: for a document from the network, checked up to its first problem (see `wire` above).
 */
export function compileSchema(schema: JsonSchema, options: { secretPlaces?: readonly string[]; wire?: boolean } = {}): SchemaValidator {
  const validate: ValidateFunction = (options.wire ? wire : ajv).compile(schema);
  const secrets = new Set(options.secretPlaces ?? []);
  return {
    schema,
    problems(value: unknown): string[] {
      return validate(value) ? [] : formatErrors(validate.errors, secrets);
    },
    errors(value: unknown): readonly ErrorObject[] {
      return validate(value) ? [] : [...(validate.errors ?? [])];
    },
  };
}

/** The text of docs/schemas/<name>.schema.json for a schema object. */
export function schemaFileText(schema: JsonSchema): string {
  return JSON.stringify(schema, null, 2) + '\n';
}

type Node = Record<string, unknown>;

/** A schema node's type in a few words: "string", "integer ≥ 1", one of "a", "b", or "bodycam-ingest/1". */
function typeText(node: Node): string {
  if (node.const !== undefined) return `\`${JSON.stringify(node.const)}\``;
  if (Array.isArray(node.enum)) return node.enum.map((v) => `\`${JSON.stringify(v)}\``).join(', ');
  if (typeof node['x-expects'] === 'string') return String(node['x-expects']).split(':')[0]!;
  const bounds = [node.minimum !== undefined ? `≥ ${String(node.minimum)}` : '', node.exclusiveMinimum !== undefined ? `> ${String(node.exclusiveMinimum)}` : '', node.maximum !== undefined ? `≤ ${String(node.maximum)}` : ''].filter(Boolean).join(', ');
  const type = typeof node.type === 'string' ? node.type : Array.isArray(node.oneOf) ? 'object' : 'any';
  return `${type}${bounds ? ` ${bounds}` : ''}${node.pattern ? ` (\`${String(node.pattern).replace(/\|/g, '\\|')}\`)` : ''}`;
}

/**
 * Markdown reference of a document schema: one row per field, by its path (`steps[].after.seconds`,
 * `cameras.<name>.record.layout`), with its type, whether it is required and its description.
 */
export function schemaReferenceMarkdown(schema: JsonSchema): string {
  const rows = ['| field | type | required | description |', '|---|---|---|---|'];
  const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
  const walk = (node: Node, path: string, depth: number): void => {
    if (depth > 8) return;
    const exactlyOne = Array.isArray(node.oneOf) ? oneOfKeys(node.oneOf) : undefined;
    const required = new Set([...(Array.isArray(node.required) ? node.required.map(String) : []), ...(exactlyOne && exactlyOne.length === 1 ? exactlyOne : [])]);
    const properties = (node.properties ?? {}) as Record<string, Node>;
    for (const [key, child] of Object.entries(properties)) {
      const where = path ? `${path}.${key}` : key;
      const isArray = child.type === 'array';
      const item = (isArray ? child.items : undefined) as Node | undefined;
      const shownType = isArray ? `array of ${item ? typeText(item) : 'any'}` : typeText(child);
      const how = required.has(key) ? 'yes' : exactlyOne?.includes(key) ? `one of ${exactlyOne.join(', ')}` : '';
      rows.push(`| \`${where}\` | ${cell(shownType)} | ${how} | ${cell(String(child.description ?? ''))} |`);
      if (item && (item.properties || item.additionalProperties)) walk(item, `${where}[]`, depth + 1);
      else if (child.properties || (child.additionalProperties && typeof child.additionalProperties === 'object')) walk(child, where, depth + 1);
    }
    if (node.additionalProperties && typeof node.additionalProperties === 'object') walk(node.additionalProperties as Node, `${path}.<name>`, depth + 1);
  };
  walk(schema as Node, '', 0);
  return rows.join('\n');
}
