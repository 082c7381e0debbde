import type { EventStore } from './event-store.port';
import { EventStoreDbEventStore } from './eventstoredb/eventstoredb.event-store';
import { PostgresEventStore } from './postgres/postgres.event-store';
import { SqliteEventStore, sqliteEventStoreOptionsFromEnv, type SqliteEventStoreOptions } from './sqlite/sqlite.event-store';

export type EventStoreConfig =
  | ({ kind: 'sqlite' } & SqliteEventStoreOptions)
  | { kind: 'postgres'; url: string; schema: string; poolSize?: number }
  | { kind: 'eventstoredb'; url: string };

/** Opens the configured adapter; the PostgreSQL one migrates its schema first. */
export async function createEventStore(config: EventStoreConfig): Promise<EventStore> {
  switch (config.kind) {
    case 'sqlite': {
      const { kind: _kind, ...options } = config;
      return new SqliteEventStore(options);
    }
    case 'postgres':
      return PostgresEventStore.open({ connectionString: config.url, schema: config.schema, poolSize: config.poolSize });
    case 'eventstoredb':
      return EventStoreDbEventStore.open({ connectionString: config.url });
    default: {
      const kind: unknown = (config as { kind?: unknown }).kind;
      throw new Error(`kind: expected 'sqlite', 'postgres' or 'eventstoredb', got ${JSON.stringify(kind)}`);
    }
  }
}

/**
 * Reads the store configuration from the environment: `CLIENTELE_STORE` (sqlite | postgres |
 * eventstoredb, default sqlite), the `CLIENTELE_SQLITE_*` settings (see sqliteEventStoreOptionsFromEnv),
 * `DATABASE_URL` and `CLIENTELE_PG_SCHEMA` (default clientele) for PostgreSQL, `EVENTSTOREDB_URL`.
 */
export function eventStoreConfigFromEnv(env: NodeJS.ProcessEnv = process.env): EventStoreConfig {
  const kind = env.CLIENTELE_STORE ?? 'sqlite';
  switch (kind) {
    case 'sqlite':
      return { kind, ...sqliteEventStoreOptionsFromEnv(env) };
    case 'postgres':
      return { kind, url: required(env, 'DATABASE_URL', 'postgres://user@host:5432/db'), schema: env.CLIENTELE_PG_SCHEMA ?? 'clientele' };
    case 'eventstoredb':
      return { kind, url: required(env, 'EVENTSTOREDB_URL', 'esdb://host:2113?tls=false') };
    default:
      throw new Error(`CLIENTELE_STORE: expected sqlite, postgres or eventstoredb, got ${JSON.stringify(kind)}`);
  }
}

function required(env: NodeJS.ProcessEnv, name: string, example: string): string {
  const value = env[name];
  if (!value) throw new Error(`${name}: expected a connection string such as ${example} when CLIENTELE_STORE=${env.CLIENTELE_STORE}`);
  return value;
}
