import { Type } from 'class-transformer';
import { ValidateBy, ValidateIf, ValidateNested } from 'class-validator';

/**
 * Field rules for command DTOs. Each rule is one predicate with one sentence saying what was
 * expected, so every boundary (HTTP, Kafka ingest, file import) answers with the same words.
 * We use our own predicates rather than class-validator's built-ins because their messages name
 * the constraint, not what the caller should send, and because `IsOptional` also lets `null` in.
 */

/** The constraint name our rules carry; the envelope validator reads the message of this one first. */
export const EXPECTED_CONSTRAINT = 'expected';

export function Expect(expected: string, predicate: (value: unknown) => boolean): PropertyDecorator {
  const validateBy = ValidateBy({
    name: EXPECTED_CONSTRAINT,
    validator: { validate: (value: unknown) => predicate(value), defaultMessage: () => expected },
  });
  return (target, key) => {
    validateBy(target, key);
    ruleOf(target, key).predicates.push(predicate);
  };
}

/** Absent is fine; `null` is not (a field is either there with a value or not there). */
export function Optional(): PropertyDecorator {
  const validateIf = ValidateIf((_object: unknown, value: unknown) => value !== undefined);
  return (target, key) => {
    validateIf(target, key);
    ruleOf(target, key).optional = true;
  };
}

/** An object of the shape of `cls`, validated field by field. */
export function Nested(cls: () => new () => object): PropertyDecorator {
  return (target, key) => {
    Expect(EXPECTED.object, isPlainObject)(target, key);
    ValidateNested()(target, key);
    Type(cls)(target, key);
    ruleOf(target, key).nested = { cls, each: false };
  };
}

/** Each element an object of the shape of `cls` (the array itself is checked by an `Expect`). */
export function NestedEach(cls: () => new () => object): PropertyDecorator {
  return (target, key) => {
    ValidateNested({ each: true })(target, key);
    Type(cls)(target, key);
    ruleOf(target, key).nested = { cls, each: true };
  };
}

/**
 * The same rules as the decorators above give class-validator, kept as a plain table so a valid
 * command is recognised without class-transformer and class-validator: on the command path their
 * generic machinery cost more than deciding and storing the command. The table only ever says
 * "valid"; anything it does not accept goes through class-validator, which names every problem.
 * A spec checks that each DTO's class-validator metadata and this table describe the same rules.
 */
interface FieldRule {
  predicates: ((value: unknown) => boolean)[];
  optional: boolean;
  nested?: { cls: () => new () => object; each: boolean };
  /** a map of names to values (RecordOf): what each entry must be, so an error can name the entry */
  entries?: RecordEntries;
}

/** What each entry of a map field must be (see RecordOf). */
export interface RecordEntries {
  /** the sentence for one value, e.g. "true or false" */
  expected: string;
  valueOk: (value: unknown) => boolean;
}

const RULES = new Map<object, Map<string, FieldRule>>();

function ruleOf(target: object, key: string | symbol): FieldRule {
  let fields = RULES.get(target);
  if (fields === undefined) RULES.set(target, (fields = new Map()));
  let rule = fields.get(String(key));
  if (rule === undefined) fields.set(String(key), (rule = { predicates: [], optional: false }));
  return rule;
}

const plans = new Map<abstract new () => object, ReadonlyMap<string, FieldRule>>();

/** The field rules of a DTO class with those of its ancestors (a base class's fields are inherited). */
export function fieldRulesOf(cls: abstract new () => object): ReadonlyMap<string, FieldRule> {
  let plan = plans.get(cls);
  if (plan === undefined) {
    const merged = new Map<string, FieldRule>();
    const chain: object[] = [];
    for (let proto: unknown = cls.prototype; proto !== null && proto !== Object.prototype; proto = Object.getPrototypeOf(proto)) {
      chain.unshift(proto as object);
    }
    for (const proto of chain) for (const [key, rule] of RULES.get(proto) ?? []) merged.set(key, rule);
    plans.set(cls, (plan = merged));
  }
  return plan;
}

/** True only when `value` (a plain object) has exactly the fields of `cls` and every rule holds. */
export function passesFieldRules(cls: abstract new () => object, value: Record<string, unknown>): boolean {
  return copyIfPassesFieldRules(cls, value) !== undefined;
}

/** A field of a compiled plan: what `fieldRulesOf` says, with the nested class resolved once. */
interface PlannedField {
  predicates: readonly ((value: unknown) => boolean)[];
  optional: boolean;
  nested: { plan: CompiledPlan; each: boolean } | undefined;
}

interface CompiledPlan {
  fields: Map<string, PlannedField>;
  required: number;
}

const compiled = new Map<abstract new () => object, CompiledPlan>();

function compiledPlanOf(cls: abstract new () => object): CompiledPlan {
  let plan = compiled.get(cls);
  if (plan !== undefined) return plan;
  const fields = new Map<string, PlannedField>();
  plan = { fields, required: 0 };
  // Registered before the fields are filled, so a class nested in itself resolves to this plan.
  compiled.set(cls, plan);
  for (const [key, rule] of fieldRulesOf(cls)) {
    if (!rule.optional) plan.required += 1;
    fields.set(key, {
      predicates: rule.predicates,
      optional: rule.optional,
      nested: rule.nested === undefined ? undefined : { plan: compiledPlanOf(rule.nested.cls()), each: rule.nested.each },
    });
  }
  return plan;
}

/**
 * `passesFieldRules` and the defensive copy of an accepted command in one walk: a deep copy of
 * `value` (key order kept) when it has exactly the fields of `cls` and every rule holds, otherwise
 * undefined. Walking the data twice, once to check and once to copy, was a third of validation.
 */
export function copyIfPassesFieldRules(
  cls: abstract new () => object,
  value: Record<string, unknown>,
): Record<string, unknown> | undefined {
  return copyIfPasses(compiledPlanOf(cls), value);
}

function copyIfPasses(plan: CompiledPlan, value: Record<string, unknown>): Record<string, unknown> | undefined {
  const copy: Record<string, unknown> = {};
  let required = 0;
  for (const key in value) {
    if (!Object.hasOwn(value, key)) return undefined;
    const field = plan.fields.get(key);
    if (field === undefined) return undefined;
    const v = value[key];
    if (!field.optional) required += 1;
    else if (v === undefined) {
      copy[key] = undefined;
      continue;
    }
    for (const predicate of field.predicates) if (!predicate(v)) return undefined;
    const nested = field.nested;
    if (nested === undefined) {
      const leaf = copyIfWellFormed(v);
      if (leaf === NOT_WELL_FORMED) return undefined;
      copy[key] = leaf;
    } else if (nested.each) {
      if (!Array.isArray(v)) return undefined;
      const elements: unknown[] = new Array(v.length);
      for (let i = 0; i < v.length; i++) {
        const element: unknown = v[i];
        const elementCopy = isPlainObject(element) ? copyIfPasses(nested.plan, element) : undefined;
        if (elementCopy === undefined) return undefined;
        elements[i] = elementCopy;
      }
      copy[key] = elements;
    } else {
      const nestedCopy = isPlainObject(v) ? copyIfPasses(nested.plan, v) : undefined;
      if (nestedCopy === undefined) return undefined;
      copy[key] = nestedCopy;
    }
  }
  // Every key seen was a field of the plan, once each: the count says whether one is missing.
  return required === plan.required ? copy : undefined;
}

const NOT_WELL_FORMED = Symbol('not well formed');

/**
 * `copyJson` of a field's value, or NOT_WELL_FORMED when a string or a name in it is text a store
 * cannot hold, or a name is `__proto__`: checked in the copy's own walk, so a valid command is not walked again for it. The
 * envelope validator names the field; the table only has to not call such a command valid.
 */
function copyIfWellFormed(value: unknown): unknown {
  if (typeof value === 'string') return isWellFormedText(value) ? value : NOT_WELL_FORMED;
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) {
    const copy: unknown[] = new Array(value.length);
    for (let i = 0; i < value.length; i++) {
      const element = copyIfWellFormed(value[i]);
      if (element === NOT_WELL_FORMED) return NOT_WELL_FORMED;
      copy[i] = element;
    }
    return copy;
  }
  const copy: Record<string, unknown> = {};
  for (const key of Object.keys(value)) {
    // assigning __proto__ would set the copy's prototype and drop the name: not a valid command
    const field = isWellFormedText(key) && key !== '__proto__' ? copyIfWellFormed((value as Record<string, unknown>)[key]) : NOT_WELL_FORMED;
    if (field === NOT_WELL_FORMED) return NOT_WELL_FORMED;
    copy[key] = field;
  }
  return copy;
}

/**
 * A deep copy of a value that passed its rules (only strings, numbers, booleans, null, arrays and
 * objects remain by then), so the caller's object is never shared or changed. Several times cheaper
 * than structuredClone, which serialises through the HTML clone algorithm.
 */
export function copyJson(value: unknown): unknown {
  if (typeof value !== 'object' || value === null) return value;
  if (Array.isArray(value)) return value.map(copyJson);
  const copy: Record<string, unknown> = {};
  for (const key of Object.keys(value)) copy[key] = copyJson((value as Record<string, unknown>)[key]);
  return copy;
}

export const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:@+-]{0,127}$/;
export const ISO_DATE_TIME =
  /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/;
export const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

// A NUL, or half of a surrogate pair without its other half: PostgreSQL's json cannot hold either,
// and no other store should hold text that one of them refuses (events move between stores).
const MALFORMED_TEXT = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Text every store can hold: no NUL character and no unpaired UTF-16 surrogate. */
export const isWellFormedText = (s: string): boolean => !MALFORMED_TEXT.test(s);

export const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

export const isId = (v: unknown): boolean => typeof v === 'string' && ID_PATTERN.test(v);

export const isText = (max: number) => (v: unknown) =>
  typeof v === 'string' && v.trim().length > 0 && v.length <= max;

export const isMinorUnits = (v: unknown): boolean => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

export const isIntegerBetween = (min: number, max: number) => (v: unknown) =>
  typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;

export const isOneOf = (values: readonly string[]) => (v: unknown) => typeof v === 'string' && values.includes(v);

function isCalendarDate(year: number, month: number, day: number): boolean {
  // setUTCFullYear, not Date.UTC, which reads years 0–99 as 1900–1999
  const d = new Date(0);
  d.setUTCFullYear(year, month - 1, day);
  return d.getUTCFullYear() === year && d.getUTCMonth() === month - 1 && d.getUTCDate() === day;
}

/** The earliest business time a command may carry: older facts are typing mistakes, not history. */
const EARLIEST_BUSINESS_TIME = Date.UTC(1900, 0, 1);
/** How far past the engine's clock a business time may be: a source's clock may run ahead, a fact cannot be in the future. */
const BUSINESS_TIME_AHEAD_MS = 86_400_000;
/** the range of business times in words, for an error and for a schema, which cannot say "now" */
export const BUSINESS_TIME_RANGE = `from ${new Date(EARLIEST_BUSINESS_TIME).toISOString().slice(0, 10)} up to one day after now`;

/**
 * What is wrong with a business time (`occurredAt`, a sweep's `asOf`), or undefined when it is in
 * range: from 1900-01-01 up to one day after `now`. A fact dated centuries ahead (2206 for 2026)
 * would otherwise be accepted and make every month up to it a month of the statistics.
 */
export function businessTimeOutOfRange(ms: number, now = Date.now()): string | undefined {
  if (ms >= EARLIEST_BUSINESS_TIME && ms <= now + BUSINESS_TIME_AHEAD_MS) return undefined;
  const range = `a business time ${BUSINESS_TIME_RANGE} (${new Date(now + BUSINESS_TIME_AHEAD_MS).toISOString()})`;
  return ms < EARLIEST_BUSINESS_TIME ? `${range}: earlier dates are taken for typing mistakes` : `${range}: a fact cannot be dated in the future`;
}

export function isIsoDateTime(v: unknown): boolean {
  if (typeof v !== 'string') return false;
  if (isValidUtcMillisForm(v)) return true;
  const m = ISO_DATE_TIME.exec(v);
  if (!m) return false;
  const [, y, mo, d, h, mi, s] = m;
  if (!isCalendarDate(Number(y), Number(mo), Number(d))) return false;
  if (Number(h) > 23 || Number(mi) > 59 || Number(s ?? 0) > 59) return false;
  return !Number.isNaN(Date.parse(v));
}

/**
 * True for a real instant written in `toISOString` form (`2026-01-31T10:00:00.000Z`), the form
 * nearly every caller sends: checked by character instead of a regex, Date.parse and a Date
 * object. False means "not sure": the general check above decides (other forms, years before 100).
 */
function isValidUtcMillisForm(s: string): boolean {
  if (
    s.length !== 24 ||
    s.charCodeAt(4) !== 45 /* - */ ||
    s.charCodeAt(7) !== 45 ||
    s.charCodeAt(10) !== 84 /* T */ ||
    s.charCodeAt(13) !== 58 /* : */ ||
    s.charCodeAt(16) !== 58 ||
    s.charCodeAt(19) !== 46 /* . */ ||
    s.charCodeAt(23) !== 90 /* Z */
  ) {
    return false;
  }
  const year = digitsAt(s, 0, 4);
  const month = digitsAt(s, 5, 2);
  const day = digitsAt(s, 8, 2);
  if (year < 100 || month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return false;
  const hour = digitsAt(s, 11, 2);
  const minute = digitsAt(s, 14, 2);
  const second = digitsAt(s, 17, 2);
  return hour >= 0 && hour <= 23 && minute >= 0 && minute <= 59 && second >= 0 && second <= 59 && digitsAt(s, 20, 3) >= 0;
}

/** The number written with `length` decimal digits at `start`; -1 when any of them is not a digit. */
function digitsAt(s: string, start: number, length: number): number {
  let n = 0;
  for (let i = start; i < start + length; i++) {
    const d = s.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}

function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

export function isIsoDate(v: unknown): boolean {
  if (typeof v !== 'string') return false;
  const m = ISO_DATE.exec(v);
  return m !== null && isCalendarDate(Number(m[1]), Number(m[2]), Number(m[3]));
}

/** the most names a map field (preferences, consents) holds, and the longest name */
export const MAX_RECORD_NAMES = 100;
export const MAX_RECORD_NAME_LENGTH = 100;
const isRecordName = (name: string): boolean => name.length > 0 && name.length <= MAX_RECORD_NAME_LENGTH;

/** A small map of names to values (preferences, consents): bounded so a command stays a command. */
export const isRecordOf =
  (valueOk: (v: unknown) => boolean, maxKeys = MAX_RECORD_NAMES) =>
  (v: unknown): boolean =>
    isPlainObject(v) &&
    Object.keys(v).length <= maxKeys &&
    Object.entries(v).every(([k, value]) => isRecordName(k) && valueOk(value));

/**
 * A map of names to values (isRecordOf): the map is checked as one field, as every rule is, and
 * `recordEntryErrors` then names the entries at fault (`data.consents.email`, not `data.consents`).
 */
export function RecordOf(valuesExpected: string, entryExpected: string, valueOk: (v: unknown) => boolean): PropertyDecorator {
  return (target, key) => {
    Expect(`an object of at most ${MAX_RECORD_NAMES} names to ${valuesExpected}`, isRecordOf(valueOk))(target, key);
    ruleOf(target, key).entries = { expected: entryExpected, valueOk };
  };
}

/**
 * The entries of a map `value` that break its RecordOf rule, each named below `path` (a name that is
 * not a plain identifier in brackets, as JSON); undefined when the fault is the map's own (not an
 * object, or too many names), which its field's error says.
 */
export function recordEntryErrors(value: unknown, path: string, entries: RecordEntries): { field: string; expected: string }[] | undefined {
  if (!isPlainObject(value) || Object.keys(value).length > MAX_RECORD_NAMES) return undefined;
  const errors: { field: string; expected: string }[] = [];
  for (const [name, entry] of Object.entries(value)) {
    const field = /^[A-Za-z_$][\w$]*$/.test(name) ? `${path}.${name}` : `${path}[${JSON.stringify(name)}]`;
    if (!isRecordName(name)) errors.push({ field, expected: `a name of 1-${MAX_RECORD_NAME_LENGTH} characters` });
    else if (!entries.valueOk(entry)) errors.push({ field, expected: entries.expected });
  }
  return errors.length > 0 ? errors : undefined;
}

export const EXPECTED = {
  id: 'an id: 1-128 characters, letters, digits and . _ : @ + - (starting with a letter or digit)',
  dateTime: 'an ISO-8601 date-time with a time zone, on a day and at a time that exist (no 2026-02-30, no second 60), e.g. 2026-01-31T10:00:00.000Z',
  date: 'an ISO-8601 calendar date, e.g. 1990-05-17',
  minorUnits: 'a non-negative integer (minor units)',
  object: 'an object',
  wellFormedText: 'text without NUL characters or unpaired surrogates',
  wellFormedNames: 'names without NUL characters or unpaired surrogates',
  text: (max: number) => `a non-empty string of at most ${max} characters`,
  oneOf: (values: readonly string[]) => `one of ${values.map((v) => `'${v}'`).join(', ')}`,
} as const;
