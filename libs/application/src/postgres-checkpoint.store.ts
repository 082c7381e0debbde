import { Pool } from 'pg';
import { createUnderLock } from '@clientele/event-store';
import type { CheckpointStore } from './checkpoint.store';

/** Checkpoints and the churn sweep's customer index in the PostgreSQL schema of the events. */
export class PostgresCheckpointStore implements CheckpointStore {
  private constructor(
    private readonly pool: Pool,
    private readonly schema: string,
  ) {}

  static async open(options: { connectionString: string; schema: string }): Promise<PostgresCheckpointStore> {
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(options.schema)) {
      throw new Error(`schema: expected a lower-case SQL identifier, got ${JSON.stringify(options.schema)}`);
    }
    const pool = new Pool({ connectionString: options.connectionString, max: 2 });
    const s = options.schema;
    // several engine processes start at once: "if not exists" alone races in the catalog
    await createUnderLock(pool, `clientele.checkpoints:${s}`, [
      `create schema if not exists ${s}`,
      `create table if not exists ${s}.process_checkpoints (name text primary key, position bigint not null)`,
      `create table if not exists ${s}.process_customers (customer_id text primary key, registered_position bigint not null)`,
    ]);
    return new PostgresCheckpointStore(pool, s);
  }

  async load(name: string): Promise<number> {
    const { rows } = await this.pool.query<{ position: string }>(
      `select position from ${this.schema}.process_checkpoints where name = $1`,
      [name],
    );
    return rows[0] ? Number(rows[0].position) : 0;
  }

  async save(name: string, position: number, registeredCustomers: readonly string[] = []): Promise<void> {
    const client = await this.pool.connect();
    try {
      await client.query('begin');
      if (registeredCustomers.length > 0) {
        await client.query(
          `insert into ${this.schema}.process_customers (customer_id, registered_position)
           select unnest($1::text[]), $2 on conflict do nothing`,
          [registeredCustomers, position],
        );
      }
      await client.query(
        `insert into ${this.schema}.process_checkpoints (name, position) values ($1, $2)
         on conflict (name) do update set position = excluded.position`,
        [name, position],
      );
      await client.query('commit');
    } catch (error) {
      await client.query('rollback').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  }

  async customers(afterId: string | undefined, limit: number): Promise<string[]> {
    const { rows } = await this.pool.query<{ customer_id: string }>(
      `select customer_id from ${this.schema}.process_customers where customer_id > $1 order by customer_id limit $2`,
      [afterId ?? '', limit],
    );
    return rows.map((r) => r.customer_id);
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
