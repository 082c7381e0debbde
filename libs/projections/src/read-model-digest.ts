import { createHash } from 'node:crypto';
import type { Projection, ReadModelQueries, SqlParam } from './read-model-store';

const PAGE = 5000;

interface Column {
  name: string;
  text: boolean;
  pk: number; // 1-based position in the primary key, 0 when not part of it
}

/**
 * sha256 over every table of a projection, rows read in primary-key order (keyset pages, so memory
 * stays flat) and encoded canonically: columns by name, integers as integers, booleans as 0/1, text
 * compared bytewise. The same events folded twice, or on SQLite and PostgreSQL, give the same digest.
 */
export async function digest(store: ReadModelQueries, projection: Pick<Projection, 'name' | 'tables'>): Promise<string> {
  const hash = createHash('sha256');
  hash.update(`projection ${projection.name}\n`);
  for (const table of projection.tables) {
    const rows = tableRows(store, table);
    const { names } = await rows.columns;
    hash.update(`table ${table} ${JSON.stringify(names)}\n`);
    for await (const row of rows) hash.update(`${JSON.stringify(row.values)}\n`);
  }
  return hash.digest('hex');
}

/** One row as the digest sees it: its key and every column (sorted by name) in canonical form. */
export interface CanonicalRow {
  key: Record<string, string | number | null>;
  values: (string | number | null)[];
}

export interface TableRows extends AsyncIterable<CanonicalRow> {
  /** the column names (sorted) and the primary-key columns (in key order) */
  columns: Promise<{ names: string[]; key: string[] }>;
}

/**
 * Every row of a table in primary-key order (keyset pages, so memory stays flat), encoded as the
 * digest encodes it. Two stores walked side by side meet the same keys in the same order, which is
 * how a replay proof finds the first row that differs.
 */
export function tableRows(store: ReadModelQueries, table: string): TableRows {
  const columns = describeTable(store, table).then((cols) => {
    const key = cols.filter((c) => c.pk > 0).sort((a, b) => a.pk - b.pk);
    if (key.length === 0) throw new Error(`digest: table ${table} has no primary key, so its rows have no stable order`);
    return { cols, key, names: cols.map((c) => c.name).sort() };
  });
  // a caller that only iterates must not leave a rejected promise unobserved
  columns.catch(() => undefined);
  return {
    columns: columns.then(({ names, key }) => ({ names, key: key.map((c) => c.name) })),
    async *[Symbol.asyncIterator]() {
      const { key, names } = await columns;
      const order = key.map((c) => orderTerm(store.dialect, c)).join(', ');
      const keyTuple = `(${order})`;
      const placeholders = `(${key.map(() => '?').join(', ')})`;
      let after: SqlParam[] | undefined;
      for (;;) {
        const where = after ? `WHERE ${keyTuple} > ${placeholders}` : '';
        const rows = await store.all<Record<string, unknown>>(
          `SELECT ${names.map(quote).join(', ')} FROM ${table} ${where} ORDER BY ${order} LIMIT ${PAGE}`,
          after ?? [],
        );
        for (const row of rows) {
          yield {
            key: Object.fromEntries(key.map((c) => [c.name, canonical(row[c.name])])),
            values: names.map((n) => canonical(row[n])),
          };
        }
        const last = rows[rows.length - 1];
        if (!last || rows.length < PAGE) break;
        after = key.map((c) => last[c.name] as SqlParam);
      }
    },
  };
}

async function describeTable(store: ReadModelQueries, table: string): Promise<Column[]> {
  if (store.dialect === 'sqlite') {
    const rows = await store.all<{ name: string; type: string; pk: number }>(
      'SELECT name, type, pk FROM pragma_table_info(?)',
      [table],
    );
    if (rows.length === 0) throw new Error(`digest: table ${table} does not exist`);
    return rows.map((r) => ({ name: r.name, text: /CHAR|TEXT|CLOB/i.test(r.type), pk: Number(r.pk) }));
  }
  // indkey is an int2vector whose subscripts start at 0; through text it becomes a 1-based array
  const rows = await store.all<{ name: string; type: string; pk: number | null }>(
    `SELECT c.column_name AS name, c.data_type AS type,
            (SELECT array_position(string_to_array(i.indkey::text, ' ')::int2[], a.attnum)
               FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid
              WHERE i.indrelid = (quote_ident(current_schema()) || '.' || quote_ident(c.table_name))::regclass
                AND i.indisprimary AND a.attname = c.column_name) AS pk
       FROM information_schema.columns c
      WHERE c.table_schema = current_schema() AND c.table_name = ?
      ORDER BY c.ordinal_position`,
    [table],
  );
  if (rows.length === 0) throw new Error(`digest: table ${table} does not exist`);
  return rows.map((r) => ({ name: r.name, text: /char|text/i.test(r.type), pk: Number(r.pk ?? 0) }));
}

function orderTerm(dialect: 'sqlite' | 'postgres', c: Column): string {
  // PostgreSQL sorts text by locale; "C" sorts bytewise like SQLite, so both read rows in one order
  return dialect === 'postgres' && c.text ? `${quote(c.name)} COLLATE "C"` : quote(c.name);
}

function quote(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

function canonical(value: unknown): string | number | null {
  if (value === null || value === undefined) return null;
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'number') return value;
  if (value instanceof Date) return value.toISOString();
  if (Buffer.isBuffer(value)) return value.toString('hex');
  return String(value);
}
