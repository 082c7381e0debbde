import { applyDecorators, BadRequestException } from '@nestjs/common';
import { ApiQuery } from '@nestjs/swagger';
import { plainToInstance, Transform } from 'class-transformer';
import { getMetadataStorage, IsIn, IsInt, IsOptional, Matches, Max, Min, validateSync, type ValidationError } from 'class-validator';
import type { FieldError } from '@clientele/contracts';
import { asOfInstant } from '@clientele/event-store';
import { integerRange, type Choice, type IntegerBounds } from '@clientele/projections';
import { problem } from './problem-details';

/** class-transformer `@Transform` for integer parameters: query strings arrive as text, and only integer text becomes a number */
export const toInt = ({ value }: { value: unknown }): unknown => (typeof value === 'string' && /^-?\d+$/.test(value) ? Number(value) : value);

/**
 * An optional integer parameter within `bounds` (a read model's own, so the HTTP check and the
 * library's are one rule): refused outside them in the words it is described by ("an integer from
 * 1 to 1000", then `meaning`), and declared by ApiQueryFrom with the same minimum, maximum and
 * default.
 */
export function IntegerIn(bounds: IntegerBounds, meaning?: string): PropertyDecorator {
  const message = meaning === undefined ? integerRange(bounds) : `${integerRange(bounds)}: ${meaning}`;
  return applyDecorators(
    IsOptional(),
    Transform(toInt),
    IsInt({ message }),
    Min(bounds.minimum, { message }),
    Max(bounds.maximum, { message }),
    ...(bounds.default === undefined ? [] : [Declares({ default: bounds.default })]),
  );
}

/** An optional parameter that takes one of `choice.values`, refused otherwise with `message`, and declared as that enum with its default. */
export function OneOf(choice: Choice, message: string): PropertyDecorator {
  return applyDecorators(IsOptional(), IsIn([...choice.values], { message }), ...(choice.default === undefined ? [] : [Declares({ default: choice.default })]));
}

const DECLARED = 'clientele:query-parameter-declared';

/** What ApiQueryFrom declares of a parameter beyond its DTO's checks. */
interface Declared {
  /** what is taken when the parameter is not given */
  default?: string | number;
  /** the values it takes, when a library checks them rather than the DTO (a statistics filter) */
  enum?: readonly string[];
}

/**
 * Declares what a parameter's checks cannot say: its default, or the closed set of values the
 * read models check (a statistics filter, answered `invalid_filter` by the library).
 */
export function Declares(declared: Declared): PropertyDecorator {
  return (target, property) => {
    const before = (Reflect.getMetadata(DECLARED, target, property) as Declared | undefined) ?? {};
    Reflect.defineMetadata(DECLARED, { ...before, ...declared }, target, property);
  };
}

/**
 * Query strings are validated like bodies: a class-validator DTO, unknown parameters refused, and
 * a 400 problem naming each bad parameter and what it expects.
 */
export function validQuery<T extends object>(dto: new () => T, query: Record<string, unknown>, only?: readonly string[], refusedBecause: Record<string, string> = {}): T {
  // a route that takes only some of its DTO's parameters (a statistic) names those, and refuses the
  // others as unknown, or with the reason given for one a sibling route takes
  const takes = only ? [...only].sort() : parametersOf(dto);
  const unknown: FieldError[] = only
    ? Object.keys(query).filter((k) => !only.includes(k)).map((field) => (refusedBecause[field] !== undefined ? { field, expected: refusedBecause[field] } : noSuchParameter(field, takes)))
    : [];
  const instance = plainToInstance(dto, query, { enableImplicitConversion: false });
  const errors = validateSync(instance, { whitelist: true, forbidNonWhitelisted: true });
  const described = errors.map((e) => describe(e, takes)).filter((e) => !unknown.some((u) => u.field === e.field));
  if (unknown.length === 0 && described.length === 0) return instance;
  throw invalidQuery([...unknown, ...described]);
}

function noSuchParameter(field: string, takes: readonly string[]): FieldError {
  return { field, expected: `no such parameter (this query takes ${takes.join(', ')})` };
}

/** the 400 for bad query parameters: each one named, with what it expects */
function invalidQuery(errors: FieldError[]): BadRequestException {
  return new BadRequestException(problem(400, 'invalid_query', 'Invalid query', errors.map((e) => `${e.field}: ${e.expected}`).join('; '), { errors }));
}

/** for an endpoint that takes no parameters: each one given is refused by name rather than silently ignored */
export function noParameters(query: Record<string, unknown>): void {
  const errors: FieldError[] = Object.keys(query).map((field) => ({ field, expected: 'no such parameter (this query takes none)' }));
  if (errors.length > 0) throw invalidQuery(errors);
}

function describe(error: ValidationError, takes: readonly string[]): FieldError {
  // class-validator's own words for an unknown parameter are "property x should not exist"
  if (error.constraints?.['whitelistValidation'] !== undefined) return noSuchParameter(error.property, takes);
  // one rule's words are often given to each of its checks (IsInt, Min, Max): said once
  const messages = [...new Set(Object.values(error.constraints ?? {}))];
  const expected = messages.join('; ') || 'a valid value';
  // `?source=a&source=b` arrives as a list: say what is wrong with it, not only what one value must be
  if (Array.isArray(error.value)) return { field: error.property, expected: `${expected}, given once (it was given ${error.value.length} times)` };
  return { field: error.property, expected };
}

/** the parameters a query DTO declares, from class-validator's metadata, in a stable order */
function parametersOf(dto: new () => object): string[] {
  const names = getMetadataStorage()
    .getTargetValidationMetadatas(dto, '', true, false)
    .map((m) => m.propertyName);
  return [...new Set(names)].sort();
}

const DATE = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2}))?$/;

/** `?asOf=` on every business-time question: a date (the end of that UTC day) or a date-time with a zone */
export class AsOfQuery {
  @IsOptional() @Matches(DATE, { message: 'an ISO-8601 date (YYYY-MM-DD) or date-time with a zone' }) asOf?: string;
}

/**
 * `?asOf=` as the instant it means (a date alone: the end of that UTC day), or `undefined` when
 * absent. A well-formed but impossible date (2025-02-30) is a 400 naming asOf, like a malformed one.
 */
export function asOfParam(query: Record<string, unknown>): string | undefined {
  const { asOf } = validQuery(AsOfQuery, query);
  return asOf === undefined ? undefined : asOfInstantParam(asOf);
}

/** a well-formed `asOf` (checked by its DTO) as the instant it means; an impossible calendar date is a 400 naming asOf */
export function asOfInstantParam(asOf: string): string {
  try {
    return asOfInstant(asOf, 'asOf');
  } catch {
    throw invalidQuery([{ field: 'asOf', expected: 'an existing calendar date (YYYY-MM-DD) or date-time with a zone' }]);
  }
}

/**
 * The OpenAPI description of a query DTO's parameters, read from the same class-validator
 * metadata `validQuery` checks against, so the served description cannot drift from what is
 * accepted: each parameter optional, described by the words its errors use ("an integer from 1 to
 * 1000"), `integer` with its `minimum` and `maximum` when it takes whole numbers, its `enum` when
 * it takes a fixed set, and its `default` (see Declares). `only` keeps the named parameters, for a
 * route that refuses some of its DTO's (a statistic).
 */
export function ApiQueryFrom(dto: new () => object, only?: readonly string[]): MethodDecorator {
  type Parameter = { description: string[]; values?: readonly unknown[]; integer: boolean; minimum?: number; maximum?: number };
  const parameters = new Map<string, Parameter>();
  for (const m of getMetadataStorage().getTargetValidationMetadatas(dto, '', true, false)) {
    const p = parameters.get(m.propertyName) ?? { description: [], integer: false };
    parameters.set(m.propertyName, p);
    if (typeof m.message === 'string' && !p.description.includes(m.message)) p.description.push(m.message);
    if (m.name === 'isIn' && Array.isArray(m.constraints?.[0])) p.values = m.constraints[0] as unknown[];
    if (m.name === 'isInt') p.integer = true;
    if (m.name === 'min' && typeof m.constraints?.[0] === 'number') p.minimum = m.constraints[0];
    if (m.name === 'max' && typeof m.constraints?.[0] === 'number') p.maximum = m.constraints[0];
  }
  return applyDecorators(
    ...[...parameters].filter(([name]) => only === undefined || only.includes(name)).map(([name, p]) => {
      const declared = (Reflect.getMetadata(DECLARED, dto.prototype, name) as Declared | undefined) ?? {};
      const values = p.values ?? declared.enum;
      return ApiQuery({
        name,
        required: false,
        ...(p.description.length > 0 ? { description: p.description.join('; ') } : {}),
        schema: {
          type: p.integer ? 'integer' : 'string',
          ...(values ? { enum: [...values] } : {}),
          ...(p.minimum !== undefined ? { minimum: p.minimum } : {}),
          ...(p.maximum !== undefined ? { maximum: p.maximum } : {}),
          ...(declared.default !== undefined ? { default: declared.default } : {}),
        },
      });
    }),
  );
}
