import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createEventStore, eventStoreConfigFromEnv, type EventStoreConfig } from './create-event-store';
import { SqliteEventStore } from './sqlite/sqlite.event-store';

describe('store configuration from the environment', () => {
  it('defaults to the embedded SQLite store', () => {
    expect(eventStoreConfigFromEnv({})).toMatchObject({ kind: 'sqlite', file: 'data/clientele.db', durability: 'full' });
  });

  it('reads PostgreSQL from DATABASE_URL with a default schema', () => {
    expect(eventStoreConfigFromEnv({ CLIENTELE_STORE: 'postgres', DATABASE_URL: 'postgres://db/x' })).toEqual({
      kind: 'postgres',
      url: 'postgres://db/x',
      schema: 'clientele',
    });
    expect(
      eventStoreConfigFromEnv({ CLIENTELE_STORE: 'postgres', DATABASE_URL: 'postgres://db/x', CLIENTELE_PG_SCHEMA: 'tenant_a' }),
    ).toMatchObject({ schema: 'tenant_a' });
  });

  it('reads EventStoreDB from EVENTSTOREDB_URL', () => {
    expect(eventStoreConfigFromEnv({ CLIENTELE_STORE: 'eventstoredb', EVENTSTOREDB_URL: 'esdb://h:2113?tls=false' })).toEqual({
      kind: 'eventstoredb',
      url: 'esdb://h:2113?tls=false',
    });
  });

  it('names the missing variable or the unknown store', () => {
    expect(() => eventStoreConfigFromEnv({ CLIENTELE_STORE: 'postgres' })).toThrow(/DATABASE_URL: expected a connection string/);
    expect(() => eventStoreConfigFromEnv({ CLIENTELE_STORE: 'eventstoredb' })).toThrow(/EVENTSTOREDB_URL: expected/);
    expect(() => eventStoreConfigFromEnv({ CLIENTELE_STORE: 'mysql' })).toThrow(
      /CLIENTELE_STORE: expected sqlite, postgres or eventstoredb, got "mysql"/,
    );
  });
});

describe('creating a store', () => {
  it('opens the SQLite store on the given file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'clientele-factory-'));
    try {
      const store = await createEventStore({ kind: 'sqlite', file: join(dir, 'events.db') });
      expect(store).toBeInstanceOf(SqliteEventStore);
      await store.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses an unknown kind', async () => {
    await expect(createEventStore({ kind: 'mysql' } as unknown as EventStoreConfig)).rejects.toThrow(/kind: expected/);
  });
});
