import { randomUUID } from 'node:crypto';
import { PostgresEventStore, type PostgresEventStoreOptions } from './postgres.event-store';
import { dropSchema } from './postgres.migrations';

export { dropSchema };

/** A schema name no other test uses. */
export function uniqueSchema(prefix = 't'): string {
  return `${prefix}_${randomUUID().replace(/-/g, '').slice(0, 20)}`;
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
