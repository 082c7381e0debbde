/**
 * A small JSON Schema validator for the keywords Clientele's public schemas use. No schema library
 * is installed; this one checks a fixed subset strictly and throws on any keyword outside it, so
 * adding a keyword to a schema without teaching the validator fails loudly instead of passing.
 */

export interface JsonSchema {
  $schema?: string;
  $id?: string;
  title?: string;
  description?: string;
  type?: JsonType | JsonType[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  items?: JsonSchema;
  enum?: readonly (string | number | boolean | null)[];
  const?: string | number | boolean | null;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  format?: 'date-time';
}
export type JsonType = 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean' | 'null';

export interface SchemaIssue {
  /** JSON Pointer to the offending value, '' for the root */
  path: string;
  message: string;
}

const KNOWN = new Set([
  '$schema', '$id', 'title', 'description', 'type', 'properties', 'required', 'additionalProperties',
  'items', 'enum', 'const', 'minimum', 'maximum', 'minLength', 'maxLength', 'pattern', 'format',
]);
// RFC 3339 date-time with a zone, as JSON Schema's `date-time` format means it
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/** Every way `value` breaks `schema`; [] when it conforms. */
export function validateAgainstSchema(schema: JsonSchema, value: unknown, path = ''): SchemaIssue[] {
  for (const keyword of Object.keys(schema)) {
    if (!KNOWN.has(keyword)) throw new Error(`schema keyword "${keyword}" at "${path}" is not supported by this validator`);
  }
  const issues: SchemaIssue[] = [];
  const fail = (message: string, at = path): void => {
    issues.push({ path: at, message });
  };

  if (schema.type !== undefined) {
    const types = Array.isArray(schema.type) ? schema.type : [schema.type];
    if (!types.some((t) => hasType(value, t))) {
      fail(`expected ${types.join(' or ')}, got ${describe(value)}`);
      return issues;
    }
  }
  if (schema.const !== undefined && value !== schema.const) fail(`expected ${JSON.stringify(schema.const)}, got ${JSON.stringify(value)}`);
  if (schema.enum !== undefined && !schema.enum.some((v) => v === value)) {
    fail(`expected one of ${schema.enum.map((v) => JSON.stringify(v)).join(', ')}, got ${JSON.stringify(value)}`);
  }
  if (typeof value === 'string') {
    if (schema.minLength !== undefined && [...value].length < schema.minLength) fail(`expected at least ${schema.minLength} characters`);
    if (schema.maxLength !== undefined && [...value].length > schema.maxLength) fail(`expected at most ${schema.maxLength} characters`);
    if (schema.pattern !== undefined && !new RegExp(schema.pattern, 'u').test(value)) fail(`expected to match ${schema.pattern}`);
    if (schema.format === 'date-time' && !(DATE_TIME.test(value) && !Number.isNaN(Date.parse(value)))) {
      fail('expected an ISO-8601 date-time with a zone, like 2026-01-31T10:00:00.000Z');
    }
  }
  if (typeof value === 'number') {
    if (schema.minimum !== undefined && value < schema.minimum) fail(`expected >= ${schema.minimum}, got ${value}`);
    if (schema.maximum !== undefined && value > schema.maximum) fail(`expected <= ${schema.maximum}, got ${value}`);
  }
  if (Array.isArray(value) && schema.items) {
    value.forEach((item, i) => issues.push(...validateAgainstSchema(schema.items as JsonSchema, item, `${path}/${i}`)));
  }
  if (isObject(value)) {
    for (const name of schema.required ?? []) {
      if (!(name in value)) fail(`required property is missing`, `${path}/${pointer(name)}`);
    }
    for (const [name, child] of Object.entries(value)) {
      const at = `${path}/${pointer(name)}`;
      const declared = schema.properties?.[name];
      if (declared) issues.push(...validateAgainstSchema(declared, child, at));
      else if (schema.additionalProperties === false) fail('property is not allowed here', at);
      else if (typeof schema.additionalProperties === 'object') issues.push(...validateAgainstSchema(schema.additionalProperties, child, at));
    }
  }
  return issues;
}

/** One line per issue, for error messages and dead-letter reasons. */
export function formatIssues(issues: readonly SchemaIssue[]): string {
  return issues.map((i) => `${i.path || '(root)'}: ${i.message}`).join('; ');
}

function hasType(value: unknown, type: JsonType): boolean {
  switch (type) {
    case 'object':
      return isObject(value);
    case 'array':
      return Array.isArray(value);
    case 'integer':
      return typeof value === 'number' && Number.isInteger(value);
    case 'number':
      return typeof value === 'number' && Number.isFinite(value);
    case 'null':
      return value === null;
    default:
      return typeof value === type;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number' && Number.isInteger(value)) return 'integer';
  return typeof value;
}

function pointer(name: string): string {
  return name.replace(/~/g, '~0').replace(/\//g, '~1');
}
