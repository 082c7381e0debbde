import { existsSync, statSync } from 'node:fs';
import { Client } from 'pg';
import { openSqliteReadOnly, StoreNeedsWriteAccessError, type EventStoreConfig, type ReadOnlySqlite } from '@clientele/event-store';

/**
 * What a command that reads a store (or a keys file) checks before opening it: the adapters create
 * their tables on open, so a mistyped path or schema would otherwise become an empty store, read
 * as an empty log, and a keys file that holds no keys would make every customer read as erased.
 * Each refusal names the option it came from (`label`).
 */

/**
 * An SQLite file holding `table`, opened read-only to look, writing nothing to the file or its
 * folder (see openSqliteReadOnly); refused by name otherwise.
 */
export function assertSqliteFileHolds(file: string, table: 'events' | 'customer_keys', label: string): void {
  if (!existsSync(file)) throw new Error(`${label}: ${file} does not exist`);
  if (!statSync(file).isFile()) throw new Error(`${label}: ${file} is a directory, not a file`);
  let opened: ReadOnlySqlite;
  try {
    opened = openSqliteReadOnly(file);
  } catch (error) {
    throw cannotRead(file, label, error);
  }
  const db = opened.db;
  try {
    let found: unknown;
    try {
      found = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?").get(table);
    } catch (error) {
      throw cannotRead(file, label, error);
    }
    if (!found) {
      throw new Error(
        table === 'events'
          ? `${label}: ${file} is not a Clientele event store (it has no events table)`
          : `${label}: ${file} holds no customer keys (it has no customer_keys table): not a Clientele store or keys file`,
      );
    }
    // a keys file given on purpose with no key in it would make every customer read as erased
    if (table === 'customer_keys' && db.prepare('SELECT 1 FROM customer_keys LIMIT 1').get() === undefined) {
      throw new Error(`${label}: ${file} holds no customer keys (its customer_keys table is empty): every customer would read as erased`);
    }
  } finally {
    opened.close();
  }
}

/** Only a file SQLite finds no database in is "not an SQLite database"; any other failure is named as it is. */
function cannotRead(file: string, label: string, error: unknown): Error {
  if (error instanceof StoreNeedsWriteAccessError) return new Error(`${label}: ${error.message}`);
  const message = (error as Error).message;
  if ((error as { code?: unknown }).code === 'SQLITE_NOTADB') return new Error(`${label}: ${file} is not an SQLite database (${message})`);
  return new Error(`${label}: ${file} cannot be read as an SQLite file (${message})`);
}

/** whether a PostgreSQL schema holds an event log (its events table), without creating anything */
export async function postgresSchemaHasLog(url: string, schema: string): Promise<boolean> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ t: string | null }>('select to_regclass($1)::text as t', [`${schema}.events`]);
    return rows[0]?.t != null;
  } finally {
    await client.end();
  }
}

/**
 * The store the engine is configured with (CLIENTELE_STORE, CLIENTELE_DATA_DIR…) must already hold
 * a log: a command that only reads or rebuilds from it must not create an empty one, with a new
 * master key beside it, where the directory or schema was mistyped. EventStoreDB is not checked.
 */
export async function assertConfiguredStoreExists(store: EventStoreConfig): Promise<void> {
  if (store.kind === 'sqlite') {
    if (!existsSync(store.file)) {
      throw new Error(`CLIENTELE_DATA_DIR: no store at ${store.file}; give the directory the engine keeps its data in (nothing was created)`);
    }
    assertSqliteFileHolds(store.file, 'events', 'CLIENTELE_DATA_DIR');
  } else if (store.kind === 'postgres' && !(await postgresSchemaHasLog(store.url, store.schema))) {
    throw new Error(`CLIENTELE_PG_SCHEMA: schema ${store.schema} holds no event log (nothing was created)`);
  }
}
