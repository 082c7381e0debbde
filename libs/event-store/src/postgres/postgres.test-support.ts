import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { PostgresEventStore, type PostgresEventStoreOptions } from './postgres.event-store';

/** A schema name no other test uses. */
export function uniqueSchema(prefix = 't'): string {
  return `${prefix}_${randomUUID().replace(/-/g, '').slice(0, 20)}`;
}

export async function dropSchema(url: string, schema: string): Promise<void> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`drop schema if exists ${schema} cascade`);
  } finally {
    await client.end();
  }
}

/** A fresh store in its own schema, and how to close it and drop the schema. */
export async function openFreshStore(
  url: string,
  options: Partial<PostgresEventStoreOptions> = {},
): Promise<{ store: PostgresEventStore; schema: string; cleanup: () => Promise<void> }> {
  const schema = options.schema ?? uniqueSchema();
  const store = await PostgresEventStore.open({ connectionString: url, schema, poolSize: 4, ...options });
  return {
    store,
    schema,
    cleanup: async () => {
      await store.close();
      await dropSchema(url, schema);
    },
  };
}
