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
