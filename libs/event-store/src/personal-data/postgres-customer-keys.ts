import { Pool } from 'pg';
import { READ_ONLY_SESSION, tableExists } from '../postgres/read-only-session';
import { CustomerKeyCache, unwrapKey, type CarriedKeys, type CustomerKeyCarrier, type CustomerKeyStore, type NewKeyRow, type StoredKeyRow } from './customer-keys';

/**
 * The keys table of a schema, as the key store, migration 6 of the event store and a log migration's
 * target create it. Migration 6 runs this text: change it only together with a new migration.
 */
export function postgresCustomerKeysTable(schema: string): string {
  return `create table if not exists ${schema}.customer_keys (
    customer_id text primary key,
    wrapped_key bytea,
    erased_at   text
  )`;
}

/** An event store that writes new keys into a schema's keys table (the PostgreSQL event store). */
export interface PostgresKeyCarrier extends CustomerKeyCarrier {
  readonly customerKeysTable: string;
}

interface KeyRow {
  customer_id: string;
  wrapped_key: Buffer | null;
  erased_at: string | null;
}

/** Customer data keys in the PostgreSQL schema that holds the events, wrapped by the master key. */
export class PostgresCustomerKeyStore implements CustomerKeyStore {
  private readonly table: string;
  private readonly keys: CustomerKeyCache;
  readonly carried?: CarriedKeys;

  private constructor(
    private readonly pool: Pool,
    schema: string,
    private readonly master: Buffer,
    carrier: PostgresKeyCarrier | undefined,
  ) {
    this.table = `${schema}.customer_keys`;
    this.keys = new CustomerKeyCache(master, (rows) => this.insertAndRead(rows));
    if (carrier) this.carried = this.keys.carriedBy(carrier);
  }

  /**
   * `carrier`: the event store of the same schema, which then writes a new customer's key in the
   * transaction of their registration (CarriedKeys); keys it does not carry are written here.
   */
  /**
   * `readOnly`: as an auditor opens it, with a role that may only SELECT: nothing is created, every
   * transaction is read-only, and the schema must hold the keys table.
   */
  static async open(options: {
    connectionString: string;
    schema: string;
    masterKey: Buffer;
    carrier?: PostgresKeyCarrier;
    readOnly?: boolean;
  }): Promise<PostgresCustomerKeyStore> {
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(options.schema)) {
      throw new Error(`schema: expected a lower-case SQL identifier, got ${JSON.stringify(options.schema)}`);
    }
    if (options.carrier && options.carrier.customerKeysTable !== `${options.schema}.customer_keys`) {
      throw new Error(`carrier: expected the event store of schema ${options.schema}, got one that writes ${options.carrier.customerKeysTable}`);
    }
    if (options.readOnly) {
      const pool = new Pool({ connectionString: options.connectionString, max: 2, options: READ_ONLY_SESSION });
      const table = `${options.schema}.customer_keys`;
      const found = await tableExists(pool, table).catch(async (error: unknown) => {
        await pool.end();
        throw error;
      });
      if (!found) {
        await pool.end();
        throw new Error(`schema ${options.schema} holds no customer keys table (${table}); opened to read only, nothing was created`);
      }
      return new PostgresCustomerKeyStore(pool, options.schema, options.masterKey, options.carrier);
    }
    const pool = new Pool({ connectionString: options.connectionString, max: 2 });
    // several engine processes start at once: "if not exists" alone races in the catalog
    await createUnderLock(pool, `clientele.keys:${options.schema}`, [
      `create schema if not exists ${options.schema}`,
      postgresCustomerKeysTable(options.schema),
      // the erased keys, counted by every process (see CustomerKeyCache.forgetIfErasedElsewhere)
      `create index if not exists customer_keys_erased on ${options.schema}.customer_keys (erased_at) where erased_at is not null`,
    ]);
    return new PostgresCustomerKeyStore(pool, options.schema, options.masterKey, options.carrier);
  }

  async checkMasterKey(): Promise<void> {
    const { rows } = await this.pool.query<{ wrapped_key: Buffer }>(`select wrapped_key from ${this.table} where wrapped_key is not null limit 1`);
    if (rows[0]) unwrapKey(this.master, rows[0].wrapped_key);
  }

  async existingKey(customerId: string): Promise<Buffer | 'erased' | undefined> {
    const counting = this.keys.forgetIfErasedElsewhere(async () => {
      const { rows } = await this.pool.query<{ n: string }>(`select count(*) as n from ${this.table} where erased_at is not null`);
      return Number(rows[0]?.n ?? 0);
    });
    if (counting) await counting;
    const kept = this.keys.get(customerId);
    if (kept) return kept;
    const { rows } = await this.pool.query<{ wrapped_key: Buffer | null; erased_at: string | null }>(
      `select wrapped_key, erased_at from ${this.table} where customer_id = $1`,
      [customerId],
    );
    const row = rows[0];
    if (!row) return undefined;
    return this.keys.remember(customerId, row.wrapped_key, row.erased_at);
  }

  /**
   * A new customer's key is created once: the keys asked for in one turn of the event loop are
   * inserted and read back by one statement (`on conflict do nothing`: another engine process may
   * create one at the same moment, and the first insert wins; see insertAndRead and
   * CustomerKeyCache), so each caller gets the key as stored (also one stored long before: a customer
   * this process has not cached yet), on disk before any event encrypted with it.
   */
  keyFor(customerId: string): Promise<Buffer | 'erased'> {
    return this.keys.keyFor(customerId);
  }

  /**
   * One statement: insert the keys that are new, answer every row as stored. Its commit does not
   * wait for the WAL flush (`synchronous_commit` off for this transaction only): the key only has to
   * be on disk no later than the first event encrypted with it, and that event's commit, which
   * waits for the flush, comes later in the one WAL of the server and so flushes the key with it.
   * A row another transaction committed while this one ran (and this insert skipped) is not in
   * this statement's snapshot: it is read once more.
   */
  private async insertAndRead(newKeys: readonly NewKeyRow[]): Promise<StoredKeyRow[]> {
    const ids = newKeys.map((k) => k.customerId);
    const wrapped = newKeys.map((k) => Buffer.from(k.wrappedKey));
    const { rows } = await this.pool.query<KeyRow>(
      `with relaxed as (select set_config('synchronous_commit', 'off', true)),
            inserted as (
              insert into ${this.table} (customer_id, wrapped_key)
              select * from unnest($1::text[], $2::bytea[]) on conflict do nothing
              returning customer_id, wrapped_key)
       select i.customer_id, i.wrapped_key, null::text as erased_at from inserted i cross join relaxed
       union all
       select k.customer_id, k.wrapped_key, k.erased_at from ${this.table} k cross join relaxed
        where k.customer_id = any($1::text[]) and not exists (select 1 from inserted i where i.customer_id = k.customer_id)`,
      [ids, wrapped],
    );
    const found = new Set(rows.map((r) => r.customer_id));
    const missing = ids.filter((id) => !found.has(id));
    const again =
      missing.length === 0
        ? []
        : (await this.pool.query<KeyRow>(`select customer_id, wrapped_key, erased_at from ${this.table} where customer_id = any($1::text[])`, [missing]))
            .rows;
    return [...rows, ...again].map((r) => ({ customerId: r.customer_id, wrappedKey: r.wrapped_key, erasedAt: r.erased_at }));
  }

  async destroyKey(customerId: string, erasedAt: string): Promise<void> {
    await this.pool.query(
      `insert into ${this.table} (customer_id, wrapped_key, erased_at) values ($1, null, $2)
       on conflict (customer_id) do update set wrapped_key = null, erased_at = excluded.erased_at`,
      [customerId, erasedAt],
    );
    this.keys.erased(customerId);
  }

  noteErased(customerId: string): void {
    this.keys.erased(customerId);
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
