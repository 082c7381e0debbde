import { InvalidQueryError } from './query-errors';
import type { ReadModelQueries, ReadModelTransaction, SqlParam } from './read-model-store';

const CHUNK = 100;

/**
 * Multi-row upsert: one statement per 100 rows instead of one per row, which is most of a rebuild's
 * speed. Rows must have distinct keys (PostgreSQL refuses to update one row twice in a statement):
 * callers fold their batch per key first. `onConflict` is the `DO …` part, e.g. `DO NOTHING`.
 */
export async function upsertRows(
  tx: ReadModelTransaction,
  table: string,
  columns: readonly string[],
  key: readonly string[],
  onConflict: string,
  rows: readonly SqlParam[][],
): Promise<void> {
  for (let i = 0; i < rows.length; i += CHUNK) {
    const end = Math.min(rows.length, i + CHUNK);
    // a plain loop: Array.prototype.flat on hundreds of small rows showed up in rebuild profiles
    const params: SqlParam[] = [];
    for (let r = i; r < end; r += 1) {
      const row = rows[r] as SqlParam[];
      for (let c = 0; c < row.length; c += 1) params.push(row[c] as SqlParam);
    }
    await tx.run(upsertSql(table, columns, key, onConflict, end - i), params);
  }
}

// the same statement text object each time, so the store's statement cache hashes it once
const upsertSqlCache = new Map<string, string>();

function upsertSql(table: string, columns: readonly string[], key: readonly string[], onConflict: string, rows: number): string {
  const cacheKey = `${table}|${columns.join(',')}|${onConflict}|${rows}`;
  let sql = upsertSqlCache.get(cacheKey);
  if (sql === undefined) {
    const tuple = `(${columns.map(() => '?').join(', ')})`;
    sql = `INSERT INTO ${table} (${columns.join(', ')}) VALUES ${new Array<string>(rows).fill(tuple).join(', ')} ON CONFLICT (${key.join(', ')}) ${onConflict}`;
    upsertSqlCache.set(cacheKey, sql);
  }
  return sql;
}

/** `DO UPDATE SET c = excluded.c` for every non-key column */
export function replaceAll(columns: readonly string[], key: readonly string[]): string {
  return `DO UPDATE SET ${columns
    .filter((c) => !key.includes(c))
    .map((c) => `${c} = excluded.${c}`)
    .join(', ')}`;
}

/** rows whose `column` is one of `values`, read 200 at a time */
export async function selectIn<T>(
  db: ReadModelQueries,
  select: string,
  column: string,
  values: readonly string[],
): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < values.length; i += 200) {
    const chunk = values.slice(i, i + 200);
    out.push(...(await db.all<T>(`${select} WHERE ${column} IN (${chunk.map(() => '?').join(', ')})`, chunk)));
  }
  return out;
}

/** a text key column that sorts bytewise on both dialects (PostgreSQL would otherwise sort by locale) */
export function textKey(dialect: 'sqlite' | 'postgres'): string {
  return dialect === 'postgres' ? 'TEXT COLLATE "C"' : 'TEXT';
}

export const DAY_MS = 86_400_000;

/** an `asOf` argument (date or date-time, UTC) as epoch ms; a clear error otherwise */
export function parseAsOf(asOf: string | Date, field = 'asOf'): number {
  const ms = asOf instanceof Date ? asOf.getTime() : Date.parse(/^\d{4}-\d{2}-\d{2}$/.test(asOf) ? `${asOf}T00:00:00.000Z` : asOf);
  if (!Number.isFinite(ms)) throw new InvalidQueryError(field, 'an ISO-8601 date or date-time', String(asOf));
  return ms;
}
