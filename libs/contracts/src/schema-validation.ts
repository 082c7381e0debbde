import Ajv2020, { type ErrorObject, type ValidateFunction } from 'ajv/dist/2020';

/** The JSON Schema (draft 2020-12) shape Clientele's public schemas are written in. */
export interface JsonSchema {
  $schema?: string;
  $id?: string;
  title?: string;
  description?: string;
  type?: JsonType | JsonType[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  propertyNames?: JsonSchema;
  maxProperties?: number;
  items?: JsonSchema;
  minItems?: number;
  maxItems?: number;
  $ref?: string;
  $defs?: Record<string, JsonSchema>;
  allOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  if?: JsonSchema;
  then?: JsonSchema;
  enum?: readonly (string | number | boolean | null)[];
  const?: string | number | boolean | null;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  /** only date-time in the published schemas (the one format the validator below knows); date in OpenAPI documents */
  format?: 'date-time' | 'date';
}
export type JsonType = 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean' | 'null';

export interface SchemaIssue {
  /** JSON Pointer to the offending value, '' for the root */
  path: string;
  message: string;
}

// RFC 3339 date-time with a zone, as JSON Schema's `date-time` format means it (ajv-formats is not
// installed, and this one format is all the schemas use)
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

// strict: an unknown keyword or format in a schema throws when it is compiled, so nothing goes unchecked;
// verbose: errors carry the offending value, so messages can say what was found
const ajv = new Ajv2020({ allErrors: true, strict: true, verbose: true });
ajv.addFormat('date-time', { type: 'string', validate: (s: string) => DATE_TIME.test(s) && !Number.isNaN(Date.parse(s)) });

const compiled = new WeakMap<JsonSchema, ValidateFunction>();

function validatorFor(schema: JsonSchema): ValidateFunction {
  let validate = compiled.get(schema);
  if (!validate) {
    // a schema with an $id compiled before (an equal copy) is reused rather than registered twice
    validate = (schema.$id ? ajv.getSchema(schema.$id) : undefined) ?? ajv.compile(schema);
    compiled.set(schema, validate);
  }
  return validate;
}

/** Every way `value` breaks `schema`, with JSON Pointer paths; [] when it conforms. */
export function validateAgainstSchema(schema: JsonSchema, value: unknown): SchemaIssue[] {
  const validate = validatorFor(schema);
  if (validate(value)) return [];
  // an if/then that failed reports its `then`'s errors, each at its field, and then itself at the
  // object: 'must match "then" schema' says nothing those did not
  return (validate.errors ?? []).filter((e) => e.keyword !== 'if').map(toIssue);
}

/** One line per issue, for error messages and dead-letter reasons. */
export function formatIssues(issues: readonly SchemaIssue[]): string {
  return issues.map((i) => `${i.path || '(root)'}: ${i.message}`).join('; ');
}

function toIssue(e: ErrorObject): SchemaIssue {
  const params = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'required':
      return { path: `${e.instancePath}/${pointer(String(params.missingProperty))}`, message: 'required property is missing' };
    case 'additionalProperties':
      return { path: `${e.instancePath}/${pointer(String(params.additionalProperty))}`, message: 'property is not allowed here' };
    case 'type':
      return { path: e.instancePath, message: `expected ${String(params.type).replace(/,/g, ' or ')}, got ${describe(e.data)}` };
    case 'enum':
      return {
        path: e.instancePath,
        message: `expected one of ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}, got ${JSON.stringify(e.data)}`,
      };
    case 'const':
      return { path: e.instancePath, message: `expected ${JSON.stringify(params.allowedValue)}, got ${JSON.stringify(e.data)}` };
    case 'format':
      return { path: e.instancePath, message: 'expected an ISO-8601 date-time with a zone, like 2026-01-31T10:00:00.000Z' };
    case 'minimum':
      return { path: e.instancePath, message: `expected >= ${String(params.limit)}, got ${String(e.data)}` };
    case 'maximum':
      return { path: e.instancePath, message: `expected <= ${String(params.limit)}, got ${String(e.data)}` };
    case 'minLength':
      return { path: e.instancePath, message: `expected at least ${String(params.limit)} characters` };
    case 'maxLength':
      return { path: e.instancePath, message: `expected at most ${String(params.limit)} characters` };
    case 'pattern':
      return { path: e.instancePath, message: `expected to match ${String(params.pattern)}` };
    default:
      return { path: e.instancePath, message: e.message ?? e.keyword };
  }
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
