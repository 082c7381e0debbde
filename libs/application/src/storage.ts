import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import {
  assertPostgresSchemaName,
  createEventStore,
  parseMasterKey,
  PersonalDataEventStore,
  PostgresCustomerKeyStore,
  PostgresEventStore,
  SqliteCustomerKeyStore,
  SqliteEventStore,
  type CustomerKeyStore,
  type EventStore,
  type EventStoreConfig,
} from '@clientele/event-store';
import { SqliteCheckpointStore, type CheckpointStore } from './checkpoint.store';
import { PostgresCheckpointStore } from './postgres-checkpoint.store';

/**
 * Where Clientele keeps its log, customer keys and checkpoints. One description shared by the
 * engine and the CLI, so both open the same file or schema with the same settings.
 */
export interface StorageConfig {
  dataDir: string;
  store: EventStoreConfig;
  /**
   * the key that wraps every customer's data key (32 bytes): given in the environment, or a local
   * file created on first open (never when only the configuration is read)
   */
  masterKey: { kind: 'given'; key: Buffer } | { kind: 'file'; path: string };
}

type Env = Record<string, string | undefined>;

/** The embedded store's file inside the data directory. */
export const STORE_FILE_NAME = 'clientele.db';
const MASTER_KEY_FILE = 'master.key';

/**
 * `CLIENTELE_STORE` sqlite (default) | postgres | eventstoredb; `CLIENTELE_DATA_DIR` (default
 * ./data) holds the SQLite file `clientele.db` unless `CLIENTELE_SQLITE_FILE` says otherwise;
 * `CLIENTELE_DURABILITY` full (default) | normal; `DATABASE_URL` + `CLIENTELE_PG_SCHEMA` (default
 * clientele); `EVENTSTOREDB_URL`. `CLIENTELE_MASTER_KEY` (base64, 32 bytes) seals personal data;
 * without it the embedded default creates `<data dir>/master.key` once, so a newcomer's first start
 * just works — production sets the variable from its secret store.
 */
export function storageConfigFromEnv(env: Env = process.env): StorageConfig {
  const dataDir = resolve(env.CLIENTELE_DATA_DIR || './data');
  const durability = env.CLIENTELE_DURABILITY ?? 'full';
  if (durability !== 'full' && durability !== 'normal') {
    throw new Error(`CLIENTELE_DURABILITY: expected full or normal, got ${JSON.stringify(durability)}`);
  }
  const kind = env.CLIENTELE_STORE || 'sqlite';
  let store: EventStoreConfig;
  switch (kind) {
    case 'sqlite':
      store = { kind, file: sqliteFileFromEnv(env), durability };
      break;
    case 'postgres': {
      const url = required(env, 'DATABASE_URL', 'postgres://user@host:5432/db');
      // anything else reaches the driver as a relative address ("notaurl" looked up a host named "base")
      if (!/^postgres(ql)?:\/\//i.test(url) && !/^socket:/i.test(url)) {
        throw new Error(`DATABASE_URL: expected a PostgreSQL connection string such as postgres://user@host:5432/db, got ${JSON.stringify(withoutPassword(url))}`);
      }
      const schema = env.CLIENTELE_PG_SCHEMA || 'clientele';
      try {
        // the store's own rule, named by the variable it came from
        assertPostgresSchemaName(schema);
      } catch (error) {
        throw new Error((error as Error).message.replace(/^schema:/, 'CLIENTELE_PG_SCHEMA:'));
      }
      store = { kind, url, schema };
      break;
    }
    case 'eventstoredb':
      store = { kind, url: required(env, 'EVENTSTOREDB_URL', 'esdb://host:2113?tls=false') };
      break;
    default:
      throw new Error(`CLIENTELE_STORE: expected sqlite, postgres or eventstoredb, got ${JSON.stringify(kind)}`);
  }
  const raw = env.CLIENTELE_MASTER_KEY;
  if (raw) return { dataDir, store, masterKey: { kind: 'given', key: parseMasterKey(raw) } };
  return { dataDir, store, masterKey: { kind: 'file', path: join(dataDir, MASTER_KEY_FILE) } };
}

/**
 * The event store's server could not be reached or refused the connection: says which setting
 * points at it and the server's or the network's reason, without the stack of the driver.
 */
export class StoreUnreachableError extends Error {
  constructor(
    readonly variable: string,
    message: string,
    options?: { cause: unknown },
  ) {
    super(message, options);
    this.name = 'StoreUnreachableError';
  }
}

/** Connection failures (refused, unknown host, no such database or role, bad password) as StoreUnreachableError; anything else as it is. */
function unreachableStore(store: EventStoreConfig, error: unknown): unknown {
  if (store.kind !== 'postgres') return error;
  const { code, message } = error as { code?: string; message?: string };
  // network errors, and the server's refusals of the connection itself (28: authorization, 3D000: no such database)
  const connecting = /^(ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|EHOSTUNREACH|ECONNRESET|28\w{3}|3D000)$/.test(code ?? '');
  if (!connecting) return error;
  return new StoreUnreachableError(
    'DATABASE_URL',
    `DATABASE_URL: cannot connect to PostgreSQL at ${withoutPassword(store.url)}: ${message ?? code}`,
    { cause: error },
  );
}

/** A connection string as it may be shown in an error or a log: a password in it replaced by "…". */
export function withoutPassword(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:@/]*):[^@/]*@/i, '$1:…@');
}

/**
 * The store as `clientele audit verify --store` takes it, written for a shell, so a message can give
 * the whole command: `sqlite:<file>`, or `postgres:<url>#<schema>`; a URL with a password in it is
 * given as `"postgres:$DATABASE_URL#<schema>"`, so no password reaches a log. `undefined` for
 * EventStoreDB, whose log the audit commands do not walk.
 */
export function auditStoreAddress(store: EventStoreConfig): string | undefined {
  if (store.kind === 'sqlite') return shellWord(`sqlite:${resolve(store.file)}`);
  if (store.kind !== 'postgres') return undefined;
  if (withoutPassword(store.url) !== store.url) return `"postgres:$DATABASE_URL#${store.schema}"`;
  return shellWord(`postgres:${store.url}#${store.schema}`);
}

/** `text` as one shell word: as it is when nothing in it is special to a shell, else single-quoted */
function shellWord(text: string): string {
  return /^[A-Za-z0-9_@%+=:,./#-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}

/** the embedded store's file as the engine resolves it: `CLIENTELE_SQLITE_FILE`, else `<CLIENTELE_DATA_DIR>/clientele.db` */
export function sqliteFileFromEnv(env: Env = process.env): string {
  return resolve(env.CLIENTELE_SQLITE_FILE || join(resolve(env.CLIENTELE_DATA_DIR || './data'), STORE_FILE_NAME));
}

function required(env: Env, name: string, example: string): string {
  const value = env[name];
  if (!value) throw new Error(`${name}: expected a connection string such as ${example} when CLIENTELE_STORE=${env.CLIENTELE_STORE}`);
  return value;
}

function localMasterKey(file: string): Buffer {
  if (!existsSync(file)) {
    mkdirSync(dirname(file), { recursive: true });
    // wx: two processes starting together must not both write a key
    try {
      writeFileSync(file, `${randomBytes(32).toString('base64')}\n`, { flag: 'wx', mode: 0o600 });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    chmodSync(file, 0o600);
  }
  return parseMasterKey(readFileSync(file, 'utf8').trim(), file);
}

export interface OpenedStorage {
  config: StorageConfig;
  /** the store every command and projection uses: personal fields sealed on write, opened on read */
  store: PersonalDataEventStore;
  /** the events exactly as stored (personal fields encrypted): for audits and the Kafka relay */
  raw: EventStore;
  checkpoints: CheckpointStore;
  close(): Promise<void>;
}

export async function openStorage(config: StorageConfig): Promise<OpenedStorage> {
  if (config.store.kind === 'sqlite') mkdirSync(dirname(config.store.file), { recursive: true });
  const masterKey = config.masterKey.kind === 'given' ? config.masterKey.key : localMasterKey(config.masterKey.path);
  const raw = await createEventStore(config.store).catch((error: unknown) => {
    throw unreachableStore(config.store, error);
  });
  let keys: CustomerKeyStore;
  let checkpoints: CheckpointStore;
  switch (config.store.kind) {
    case 'sqlite':
      // the same database file as the events, its own table; new keys are written by the event
      // store's writer, which holds the file's write lock (see SqliteCustomerKeyStore)
      keys = new SqliteCustomerKeyStore(config.store.file, masterKey, raw instanceof SqliteEventStore ? raw : undefined);
      checkpoints = new SqliteCheckpointStore({ file: config.store.file, durability: config.store.durability });
      break;
    case 'postgres':
      // the same schema as the events; a new customer's key is written with their registration
      keys = await PostgresCustomerKeyStore.open({
        connectionString: config.store.url,
        schema: config.store.schema,
        masterKey,
        ...(raw instanceof PostgresEventStore ? { carrier: raw } : {}),
      });
      checkpoints = await PostgresCheckpointStore.open({ connectionString: config.store.url, schema: config.store.schema });
      break;
    case 'eventstoredb': {
      // EventStoreDB holds events only: keys and checkpoints live in an SQLite file beside the engine
      const file = join(config.dataDir, 'clientele-side.db');
      mkdirSync(config.dataDir, { recursive: true });
      keys = new SqliteCustomerKeyStore(file, masterKey);
      checkpoints = new SqliteCheckpointStore({ file });
      break;
    }
  }
  const store = new PersonalDataEventStore(raw, keys);
  try {
    // a master key other than the one the store's keys were wrapped with would fail every read
    // later, one customer at a time: refuse to start with the reason instead
    await keys.checkMasterKey?.();
  } catch (error) {
    await checkpoints.close().catch(() => undefined);
    await store.close().catch(() => undefined);
    throw error;
  }
  let closed = false;
  return {
    config,
    store,
    raw,
    checkpoints,
    async close() {
      if (closed) return;
      closed = true;
      await checkpoints.close();
      await store.close(); // closes raw and keys
    },
  };
}
