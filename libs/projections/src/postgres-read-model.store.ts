import { createUnderLock } from '@clientele/event-store';
import { Pool, types as pgTypes } from 'pg';
import type { PoolClient, QueryResultRow } from 'pg';
import type { ReadModelStore, ReadModelTransaction, SqlParam } from './read-model-store';

export interface PostgresReadModelStoreOptions {
  connectionString: string;
  /** the schema that holds the read models; every connection reads and writes only there */
  schema: string;
  /** pool size; default 4 */
  max?: number;
}

const INT8_OID = 20;
const NUMERIC_OID = 1700;
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * Read models in one PostgreSQL schema. Projections and queries use the portable SQL of
 * `read-model-store.ts`: `?` placeholders are rewritten to `$n`, and BIGINT/NUMERIC come back as
 * JS numbers (read-model integers stay far below 2^53: sums of minor units, counts, positions).
 */
export class PostgresReadModelStore implements ReadModelStore {
  readonly dialect = 'postgres' as const;
  readonly schema: string;
  private readonly pool: Pool;
  private readonly rewritten = new Map<string, string>();

  private constructor(options: PostgresReadModelStoreOptions) {
    this.schema = options.schema;
    this.pool = new Pool({
      connectionString: options.connectionString,
      max: options.max ?? 4,
      // search_path as a startup parameter: it holds for every connection before its first query
      options: `-c search_path=${options.schema}`,
      types: { getTypeParser: typeParser },
    });
  }

  /** connects and creates the schema when missing */
  static async open(options: PostgresReadModelStoreOptions): Promise<PostgresReadModelStore> {
    if (!SCHEMA_NAME.test(options.schema)) {
      throw new Error(`read-model schema: expected lower-case letters, digits and _ (at most 63), got "${options.schema}"`);
    }
    const store = new PostgresReadModelStore(options);
    try {
      await createSchemaUnderLock(store.pool, options.schema);
    } catch (err) {
      await store.pool.end();
      throw err;
    }
    return store;
  }

  async all<T = Record<string, unknown>>(sql: string, params: SqlParam[] = []): Promise<T[]> {
    const result = await this.pool.query<QueryResultRow>(this.rewrite(sql), params.map(bind));
    return result.rows as T[];
  }

  async get<T = Record<string, unknown>>(sql: string, params: SqlParam[] = []): Promise<T | undefined> {
    return (await this.all<T>(sql, params))[0];
  }

  async transaction<T>(work: (tx: ReadModelTransaction) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      const tx = this.transactionOn(client);
      const result = await work(tx);
      await client.query('COMMIT');
      return result;
    } catch (err) {
      await client.query('ROLLBACK').catch((rollbackErr: Error) => {
        broken = rollbackErr;
      });
      throw err;
    } finally {
      // a connection whose rollback failed is in an unknown state: drop it instead of reusing it
      client.release(broken);
    }
  }

  /** drops the schema and everything in it (used when a rebuilt generation replaces this one) */
  async dropSchema(): Promise<void> {
    await this.pool.query(`DROP SCHEMA IF EXISTS ${this.schema} CASCADE`);
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  private transactionOn(client: PoolClient): ReadModelTransaction {
    const all = async <T>(sql: string, params: SqlParam[] = []): Promise<T[]> =>
      (await client.query<QueryResultRow>(this.rewrite(sql), params.map(bind))).rows as T[];
    return {
      dialect: 'postgres',
      all,
      get: async <T>(sql: string, params: SqlParam[] = []) => (await all<T>(sql, params))[0],
      exec: async (sql) => {
        await client.query(sql);
      },
      run: async (sql, params = []) => (await client.query(this.rewrite(sql), params.map(bind))).rowCount ?? 0,
    };
  }

  private rewrite(sql: string): string {
    let out = this.rewritten.get(sql);
    if (out === undefined) {
      out = numberPlaceholders(sql);
      this.rewritten.set(sql, out);
    }
    return out;
  }
}

/** `?` → `$1, $2, …`, leaving question marks inside quoted strings and identifiers alone */
export function numberPlaceholders(sql: string): string {
  let out = '';
  let n = 0;
  let quote: "'" | '"' | undefined;
  for (const ch of sql) {
    if (quote) {
      if (ch === quote) quote = undefined;
      out += ch;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
      out += ch;
    } else if (ch === '?') {
      n += 1;
      out += `$${n}`;
    } else {
      out += ch;
    }
  }
  return out;
}

function typeParser(oid: number, format?: string): (value: string) => unknown {
  if (oid === INT8_OID || oid === NUMERIC_OID) return Number;
  // the default parsers for every other type
  return (pgTypes.getTypeParser as (oid: number, format?: string) => (value: string) => unknown)(oid, format);
}

function bind(p: SqlParam): string | number | null | boolean {
  if (typeof p === 'bigint') return p.toString();
  if (typeof p === 'boolean') return p ? 1 : 0;
  return p;
}

/**
 * CREATE SCHEMA IF NOT EXISTS (and `more` DDL) under an advisory lock named by the schema: two
 * processes creating the same schema at once would otherwise have one fail on a duplicate key in
 * PostgreSQL's catalogue.
 */
export function createSchemaUnderLock(pool: Pool, schema: string, more: readonly string[] = []): Promise<void> {
  return createUnderLock(pool, `clientele.read-models.schema:${schema}`, [`CREATE SCHEMA IF NOT EXISTS ${schema}`, ...more]);
}
