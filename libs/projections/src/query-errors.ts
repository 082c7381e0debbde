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
