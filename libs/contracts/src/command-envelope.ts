import { plainToInstance } from 'class-transformer';
import { ValidationError, validateSync } from 'class-validator';
import { COMMAND_DTOS, EXTERNAL_COMMAND_TYPES, type ExternalCommandType } from './command.dtos';
import { EXPECTED, EXPECTED_CONSTRAINT, businessTimeOutOfRange, copyIfPassesFieldRules, copyJson, fieldRulesOf, isPlainObject, isWellFormedText, recordEntryErrors } from './field-rules';

/**
 * The command envelope: the one shape a command has on every wire (HTTP body, Kafka message, a line
 * of an NDJSON import). `commandId` is the caller's idempotency key; `correlationId` ties the
 * command to a wider conversation and defaults to the command id downstream.
 */
export interface CommandEnvelope<T extends string = string, D = unknown> {
  type: T;
  commandId: string;
  correlationId?: string;
  data: D;
}

/** A validated command: `data` has exactly the shape of its type's DTO, `occurredAt` in UTC. */
export type ValidCommand = {
  [T in ExternalCommandType]: CommandEnvelope<T, InstanceType<(typeof COMMAND_DTOS)[T]>>;
}[ExternalCommandType];

/** `field` is a path into the envelope (`data.lines[0].unitPriceMinor`); `expected` says what would be accepted. */
export interface FieldError {
  field: string;
  expected: string;
}

export type EnvelopeValidation = { ok: true; command: ValidCommand } | { ok: false; errors: FieldError[] };

const ENVELOPE_FIELDS = new Set(['type', 'commandId', 'correlationId', 'data']);
/** the longest commandId or correlationId */
export const MAX_KEY_LENGTH = 200;
export const KEY_PATTERN = new RegExp(`^[^\\s\\u0000-\\u001f]{1,${MAX_KEY_LENGTH}}$`);
export const EXPECTED_KEY = `a non-empty string of at most ${MAX_KEY_LENGTH} characters without spaces`;
const UNKNOWN_FIELD = 'no such field (remove it)';
const NOTHING: ReadonlySet<string> = new Set();

/**
 * Validates anything that claims to be a command. Pure and synchronous so HTTP, Kafka ingest and
 * file import share it without a framework. Reports every problem at once, each with its exact path.
 */
export function validateCommandEnvelope(input: unknown): EnvelopeValidation {
  if (!isPlainObject(input)) {
    return { ok: false, errors: [{ field: '', expected: 'a JSON object with type, commandId and data' }] };
  }
  const errors: FieldError[] = [];
  for (const key of Object.keys(input)) {
    if (!ENVELOPE_FIELDS.has(key)) errors.push({ field: isWellFormedText(key) ? key : `[${JSON.stringify(key)}]`, expected: UNKNOWN_FIELD });
  }
  const { type, commandId, correlationId, data } = input;
  const knownType = typeof type === 'string' && Object.hasOwn(COMMAND_DTOS, type);
  if (!knownType) errors.push({ field: 'type', expected: EXPECTED.oneOf(EXTERNAL_COMMAND_TYPES) });
  if (typeof commandId !== 'string' || !KEY_PATTERN.test(commandId)) {
    errors.push({ field: 'commandId', expected: EXPECTED_KEY });
  }
  if (correlationId !== undefined && (typeof correlationId !== 'string' || !KEY_PATTERN.test(correlationId))) {
    errors.push({ field: 'correlationId', expected: `${EXPECTED_KEY}, or absent` });
  }
  let copy: Record<string, unknown> | undefined;
  let dataTextChecked = false;
  if (!isPlainObject(data)) {
    errors.push({ field: 'data', expected: EXPECTED.object });
  } else if (knownType) {
    // The caller's object is never shared or changed: the command carries a copy.
    copy = copyIfPassesFieldRules(COMMAND_DTOS[type as ExternalCommandType], data);
    // The table also refuses text a store cannot hold, so the data it copied is not walked for it below.
    dataTextChecked = copy !== undefined;
    // The table accepts only a command's own shape, never deep nor with a __proto__ name. What it
    // refused is looked at for those first: they are named, and not handed to class-validator, whose
    // recursion a deep enough body would exhaust (a 500 for a caller's mistake).
    if (copy === undefined && !outOfShape(data, ['data'], 0, errors)) {
      // The table only ever says "valid"; class-validator has the last word and names each problem.
      const found = validateData(type as ExternalCommandType, data);
      if (found.length > 0) errors.push(...namingMapEntries(type as ExternalCommandType, data, found));
      else copy = copyJson(data) as Record<string, unknown>;
    }
  }
  // Named here for every string at once rather than by each field's rule, so no field (nested, in a
  // map, an id) can forget it. Not where the table already checked it, nor below a field already
  // refused or in the data of an unknown type: anything may be nested there to any depth, and the
  // caller has that to fix first.
  const skip: ReadonlySet<string> = errors.length === 0 ? NOTHING : new Set(errors.map((e) => e.field));
  for (const key of Object.keys(input)) {
    if (key !== 'data' || (knownType && !dataTextChecked)) malformedText(input[key], skip, [key], errors);
  }
  if (errors.length === 0 && copy !== undefined && typeof copy.occurredAt === 'string') {
    const outOfRange = businessTimeOutOfRange(Date.parse(copy.occurredAt));
    if (outOfRange !== undefined) errors.push({ field: 'data.occurredAt', expected: outOfRange });
  }
  if (errors.length > 0 || copy === undefined) return { ok: false, errors };

  // The checks above proved the shape; the compiler cannot follow them through class-validator.
  const command = (
    correlationId !== undefined
      ? { type, commandId, correlationId, data: normaliseData(copy) }
      : { type, commandId, data: normaliseData(copy) }
  ) as unknown as ValidCommand;
  return { ok: true, command };
}

/**
 * Every string in `value`, at any depth and map keys included, that a store could not hold: the
 * SQLite store would take it, but PostgreSQL's json refuses it, so a command accepted on one store
 * would fail on the other (and an event could not be migrated). Paths are written out only for a
 * find, or to skip what was already refused.
 */
function malformedText(value: unknown, skip: ReadonlySet<string>, path: (string | number)[], out: FieldError[]): void {
  if (skip.size > 0 && skip.has(pathText(path))) return;
  if (typeof value === 'string') {
    if (!isWellFormedText(value)) out.push({ field: pathText(path), expected: EXPECTED.wellFormedText });
  } else if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      path.push(i);
      malformedText(value[i], skip, path, out);
      path.pop();
    }
  } else if (isPlainObject(value)) {
    for (const key of Object.keys(value)) {
      if (isWellFormedText(key)) {
        path.push(key);
        malformedText(value[key], skip, path, out);
        path.pop();
        continue;
      }
      const at = pathText(path);
      // Named escaped, so the answer does not carry the text it refuses; not twice if already refused
      // (an unknown field is named the same escaped way).
      const escaped = `${at}[${JSON.stringify(key)}]`;
      if (!skip.has(escaped)) out.push({ field: escaped, expected: EXPECTED.wellFormedNames });
    }
  }
}

/**
 * A map field (preferences, consents) refused as a whole is named by its entries at fault instead,
 * each with what that entry must be: `data.consents.email` expected "true or false".
 */
function namingMapEntries(type: ExternalCommandType, data: Record<string, unknown>, found: FieldError[]): FieldError[] {
  const rules = fieldRulesOf(COMMAND_DTOS[type]);
  return found.flatMap((error) => {
    const name = error.field.startsWith('data.') ? error.field.slice('data.'.length) : undefined;
    const entries = name === undefined ? undefined : rules.get(name)?.entries;
    return (entries && recordEntryErrors(data[name!], error.field, entries)) ?? [error];
  });
}

/** Deeper than any command's data goes (data.lines[0].sku is 3 levels): a body nested past it is a mistake, or an attack. */
const MAX_DEPTH = 64;

/**
 * Pushes an error for the first place `value` nests deeper than MAX_DEPTH, and for every key named
 * `__proto__` (JSON.parse makes it an ordinary key, but copying it would set the copy's prototype and
 * drop it, so the caller's data would change without a word); true when it pushed any. Stops at the
 * limit, so its own recursion is bounded.
 */
function outOfShape(value: unknown, path: (string | number)[], depth: number, out: FieldError[]): boolean {
  if (Array.isArray(value) || isPlainObject(value)) {
    if (depth >= MAX_DEPTH) {
      out.push({ field: pathText(path), expected: `at most ${MAX_DEPTH} levels of nesting below data` });
      return true;
    }
    let found = false;
    const entries: [string | number, unknown][] = Array.isArray(value) ? value.map((v, i) => [i, v]) : Object.entries(value);
    for (const [key, child] of entries) {
      path.push(key);
      if (key === '__proto__') {
        out.push({ field: pathText(path), expected: 'no field or name __proto__' });
        found = true;
      } else if (outOfShape(child, path, depth + 1, out)) {
        found = true;
      }
      path.pop();
      if (found && out.length > 20) return true;
    }
    return found;
  }
  return false;
}

/** `['data', 'lines', 0, 'sku']` → `data.lines[0].sku`, as class-validator's paths are written. */
function pathText(path: readonly (string | number)[]): string {
  let text = '';
  for (const part of path) text += typeof part === 'number' ? `[${part}]` : text === '' ? part : `.${part}`;
  return text;
}

function validateData(type: ExternalCommandType, data: Record<string, unknown>): FieldError[] {
  const instance = plainToInstance(COMMAND_DTOS[type] as new () => object, data);
  const found = validateSync(instance, {
    whitelist: true,
    forbidNonWhitelisted: true,
    forbidUnknownValues: true,
    validationError: { target: false, value: true },
  });
  const errors: FieldError[] = [];
  for (const error of found) collect(error, 'data', errors);
  return errors.sort((a, b) => a.field.localeCompare(b.field));
}

function collect(error: ValidationError, parentPath: string, out: FieldError[], parentIsArray = false): void {
  // a name no store can hold is written escaped, so the answer does not carry the text it refuses
  const path = parentIsArray
    ? `${parentPath}[${error.property}]`
    : isWellFormedText(error.property)
      ? `${parentPath}.${error.property}`
      : `${parentPath}[${JSON.stringify(error.property)}]`;
  const expected = describe(error);
  if (expected !== undefined) out.push({ field: path, expected });
  // Children are only meaningful when the value itself had the right shape.
  if (expected === undefined || error.constraints?.[EXPECTED_CONSTRAINT] === undefined) {
    for (const child of error.children ?? []) collect(child, path, out, Array.isArray(error.value));
  }
}

function describe(error: ValidationError): string | undefined {
  const c = error.constraints;
  if (c === undefined) return undefined;
  if (c.whitelistValidation !== undefined) return UNKNOWN_FIELD;
  if (c[EXPECTED_CONSTRAINT] !== undefined) return c[EXPECTED_CONSTRAINT];
  // An array element that is not an object (nested validation on a primitive).
  if (c.nestedValidation !== undefined) return EXPECTED.object;
  return Object.values(c)[0];
}

/** Business time is stored in UTC whatever offset the caller used. */
function normaliseData(data: Record<string, unknown>): Record<string, unknown> {
  const at = data.occurredAt;
  if (typeof at === 'string' && !isUtcMillis(at)) data.occurredAt = new Date(at).toISOString();
  return data;
}

/**
 * Already in toISOString's own form (`2026-01-31T10:00:00.000Z`): validation proved the fields, so
 * converting would give the same string back. Most callers send this form.
 */
function isUtcMillis(at: string): boolean {
  return at.length === 24 && at.charCodeAt(23) === 90 /* Z */ && at.charCodeAt(19) === 46 /* . */;
}
