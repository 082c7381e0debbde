import { randomBytes } from 'node:crypto';
import { Pool } from 'pg';
import { unwrapKey, wrapKey, type CustomerKeyStore } from './customer-keys';

/** The keys table of a schema; a migration creates it on its target the same way. */
export function postgresCustomerKeysTable(schema: string): string {
  return `create table if not exists ${schema}.customer_keys (
    customer_id text primary key,
    wrapped_key bytea,
    erased_at   text
  )`;
}

/** Customer data keys in the PostgreSQL schema that holds the events, wrapped by the master key. */
export class PostgresCustomerKeyStore implements CustomerKeyStore {
  private readonly cache = new Map<string, Buffer | 'erased'>();
  private readonly table: string;

  private constructor(
    private readonly pool: Pool,
    schema: string,
    private readonly master: Buffer,
  ) {
    this.table = `${schema}.customer_keys`;
  }

  static async open(options: { connectionString: string; schema: string; masterKey: Buffer }): Promise<PostgresCustomerKeyStore> {
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(options.schema)) {
      throw new Error(`schema: expected a lower-case SQL identifier, got ${JSON.stringify(options.schema)}`);
    }
    const pool = new Pool({ connectionString: options.connectionString, max: 2 });
    // several engine processes start at once: "if not exists" alone races in the catalog
    await createUnderLock(pool, `clientele.keys:${options.schema}`, [
      `create schema if not exists ${options.schema}`,
      postgresCustomerKeysTable(options.schema),
    ]);
    return new PostgresCustomerKeyStore(pool, options.schema, options.masterKey);
  }

  async existingKey(customerId: string): Promise<Buffer | 'erased' | undefined> {
    const cached = this.cache.get(customerId);
    if (cached) return cached;
    const { rows } = await this.pool.query<{ wrapped_key: Buffer | null; erased_at: string | null }>(
      `select wrapped_key, erased_at from ${this.table} where customer_id = $1`,
      [customerId],
    );
    const row = rows[0];
    if (!row) return undefined;
    const key = row.erased_at || !row.wrapped_key ? 'erased' : unwrapKey(this.master, row.wrapped_key);
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(customerId, key);
    return key;
  }

  async keyFor(customerId: string): Promise<Buffer | 'erased'> {
    const existing = await this.existingKey(customerId);
    if (existing) return existing;
    // another engine process may create the key at the same moment: the first insert wins, both read it back
    await this.pool.query(`insert into ${this.table} (customer_id, wrapped_key) values ($1, $2) on conflict do nothing`, [
      customerId,
      wrapKey(this.master, randomBytes(32)),
    ]);
    const stored = await this.existingKey(customerId);
    if (!stored) throw new Error(`customer key for ${customerId} was not stored`);
    return stored;
  }

  async destroyKey(customerId: string, erasedAt: string): Promise<void> {
    await this.pool.query(
      `insert into ${this.table} (customer_id, wrapped_key, erased_at) values ($1, null, $2)
       on conflict (customer_id) do update set wrapped_key = null, erased_at = excluded.erased_at`,
      [customerId, erasedAt],
    );
    this.cache.set(customerId, 'erased');
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

/** Runs DDL in one transaction under an advisory lock named by `lockName`, so concurrent starters take turns. */
export async function createUnderLock(pool: Pool, lockName: string, statements: readonly string[]): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('begin');
    await client.query('select pg_advisory_xact_lock(hashtext($1))', [lockName]);
    for (const sql of statements) await client.query(sql);
    await client.query('commit');
  } catch (error) {
    await client.query('rollback').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}
