/**
 * A query argument the read models cannot answer for (a cursor that no page gave, a limit out of
 * range): the HTTP API answers 400 naming `field` and what it expects, never 500.
 */
export class InvalidQueryError extends Error {
  /** the problem code the HTTP API answers with */
  readonly code: 'invalid_query' | 'invalid_filter' = 'invalid_query';

  constructor(
    readonly field: string,
    /** what the field takes, e.g. "an integer from 1 to 1000" */
    readonly expected: string,
    got?: unknown,
  ) {
    super(`${field}: expected ${expected}${got === undefined ? '' : `, got ${typeof got === 'string' ? JSON.stringify(got) : String(got)}`}`);
    this.name = 'InvalidQueryError';
  }
}

/**
 * The range of an integer query argument and the value taken when it is not given. The read
 * models check their arguments against these objects, and the HTTP API checks its query parameters
 * and declares them in its OpenAPI document (minimum, maximum, default) from the same objects, so
 * what is documented cannot drift from what is accepted. An argument without a natural upper bound
 * has the largest integer a JSON number holds exactly, `Number.MAX_SAFE_INTEGER`: beyond it a
 * number is not an integer any more, and the databases refuse it.
 */
export interface IntegerBounds {
  readonly minimum: number;
  readonly maximum: number;
  readonly default?: number;
}

/** A closed set of values an argument takes, and the one taken when it is not given. */
export interface Choice<T extends string = string> {
  readonly values: readonly T[];
  readonly default?: T;
}

/** what an argument in `bounds` expects, as errors and the API's descriptions word it: "an integer from 1 to 1000" */
export function integerRange(bounds: IntegerBounds): string {
  return `an integer from ${bounds.minimum} to ${bounds.maximum}`;
}

/** `value`, or the default when it is not given, when an integer within `bounds`; otherwise an InvalidQueryError naming `field` */
export function integerWithin(field: string, value: number | undefined, bounds: IntegerBounds & { default: number }): number {
  const v = value ?? bounds.default;
  if (!Number.isInteger(v) || v < bounds.minimum || v > bounds.maximum) throw new InvalidQueryError(field, integerRange(bounds), v);
  return v;
}

/** "a or b", "a, b or c": the values of a closed set as an error names them */
export function orList(values: readonly string[]): string {
  return values.length < 2 ? values.join('') : `${values.slice(0, -1).join(', ')} or ${values[values.length - 1]}`;
}

/**
 * A query that failed because the read models' tables are not there yet: nothing has prepared
 * them (a process serving queries without the projector role, before any projector ran). SQLite
 * says "no such table"; PostgreSQL answers undefined_table (42P01).
 */
export function isReadModelMissing(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const { code, message } = error as { code?: unknown; message?: unknown };
  if (code === '42P01') return true;
  return code === 'SQLITE_ERROR' && typeof message === 'string' && message.startsWith('no such table: ');
}
