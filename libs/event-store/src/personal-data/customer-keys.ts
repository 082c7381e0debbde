import Database from 'better-sqlite3';
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { AppendOptions, AppendResult, NewEvent } from '../event-store.port';
import { openSqliteReadOnly, type ReadOnlySqlite } from '../sqlite/sqlite-read-only';

/**
 * Per-customer data keys, stored wrapped (AES-256-GCM) by a master key that comes from
 * configuration. Destroying a customer's key is how personal data is erased: the events stay and
 * the hash chain still verifies, but their personal fields can never be read again.
 */
export interface CustomerKeyStore {
  /** the customer's data key, created on first use; `erased` once the key was destroyed */
  keyFor(customerId: string): Promise<Buffer | 'erased'>;
  /** the key if one exists (never creates one) */
  existingKey(customerId: string): Promise<Buffer | 'erased' | undefined>;
  destroyKey(customerId: string, erasedAt: string): Promise<void>;
  /**
   * The customer's key was destroyed, as an event read says (their PersonalDataErased, which another
   * process may have recorded): a key kept in memory is not used again.
   */
  noteErased?(customerId: string): void;
  /** opens one stored key, if there is any: throws WrongMasterKeyError when the master key is not the one the keys were wrapped with */
  checkMasterKey?(): Promise<void>;
  close(): Promise<void>;
  /** present when an event store writes this store's new keys together with events (see CarriedKeys) */
  readonly carried?: CarriedKeys;
}

/**
 * An event store that writes a new customer's key in the same transaction as the events encrypted
 * with it (its own file or schema holds the keys table): a new customer costs no write of its own,
 * and a key is never stored without the events it was made for, nor the events without it.
 */
export interface CustomerKeyCarrier {
  /**
   * appendToStream, and `key` inserted with the events. Refused with CustomerKeyTakenError, writing
   * nothing, when the customer already has another key (stored by another process, or before this
   * one started); the same key sent again is no refusal.
   */
  appendWithCustomerKey(streamId: string, events: NewEvent[], options: AppendOptions | undefined, key: NewKeyRow): Promise<AppendResult>;
}

/** The customer already has a data key other than the one the events were encrypted with. */
export class CustomerKeyTakenError extends Error {
  constructor(readonly customerId: string) {
    super(`customer ${customerId} already has a data key: the events were encrypted with another one`);
    this.name = 'CustomerKeyTakenError';
  }
}

/** A new customer's key before it is stored: the key itself and the row that stores it. */
export interface ProvisionalKey {
  key: Buffer;
  row: NewKeyRow;
}

/**
 * A key store's new keys as its carrier writes them: a registration is encrypted with a
 * provisional key, which the carrier stores with the events, and only then is it the customer's key.
 */
export interface CarriedKeys {
  readonly carrier: CustomerKeyCarrier;
  /** the key kept in memory, if any (nothing is read) */
  kept(customerId: string): Buffer | 'erased' | undefined;
  /** a new key for the customer, not stored; the same one to every caller until settled */
  provisional(customerId: string): ProvisionalKey;
  /** after the carrier's answer: kept as the customer's key when it was written with the events */
  settle(customerId: string, provisional: ProvisionalKey, written: boolean): void;
}

export function parseMasterKey(raw: string, variable = 'CLIENTELE_MASTER_KEY'): Buffer {
  const key = Buffer.from(raw, 'base64');
  if (key.length !== 32) {
    throw new Error(`${variable} must be 32 bytes encoded as base64 (44 characters); got ${key.length} bytes`);
  }
  return key;
}

/**
 * Random bytes from a pool filled 64 KiB at a time: asking the system for 32 and then 12 bytes per
 * new customer took ~16 µs a customer on the event loop here. A pool is never refilled in place (a
 * fresh one replaces it), so bytes handed out never change.
 */
let pool = Buffer.alloc(0);
let pooled = 0;
export function randomFromPool(size: number): Buffer {
  if (pooled + size > pool.length) {
    pool = randomBytes(Math.max(65_536, size));
    pooled = 0;
  }
  const bytes = pool.subarray(pooled, pooled + size);
  pooled += size;
  return bytes;
}

export function wrapKey(master: Buffer, dataKey: Buffer): Buffer {
  const iv = randomFromPool(12);
  const cipher = createCipheriv('aes-256-gcm', master, iv);
  const body = Buffer.concat([cipher.update(dataKey), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), body]);
}

/** A customer key that the master key in use did not wrap: the store was written with another one. */
export class WrongMasterKeyError extends Error {
  constructor(readonly customerId?: string) {
    super(
      `the master key in use cannot open ${customerId === undefined ? "this store's customer keys" : `the key of customer ${customerId}`}: ` +
        'they were wrapped with another one. Start with the master key the store was written with ' +
        '(CLIENTELE_MASTER_KEY, or the master.key file of the data directory it was created in)',
    );
    this.name = 'WrongMasterKeyError';
  }
}

export function unwrapKey(master: Buffer, wrapped: Buffer, customerId?: string): Buffer {
  const decipher = createDecipheriv('aes-256-gcm', master, wrapped.subarray(0, 12));
  decipher.setAuthTag(wrapped.subarray(12, 28));
  try {
    return Buffer.concat([decipher.update(wrapped.subarray(28)), decipher.final()]);
  } catch {
    // GCM's tag check is the only way this fails for a well-formed row: another key wrapped it
    throw new WrongMasterKeyError(customerId);
  }
}

/** The keys table of an SQLite file; a migration creates it on its target the same way. */
export const SQLITE_CUSTOMER_KEYS_TABLE = `CREATE TABLE IF NOT EXISTS customer_keys (
  customer_id TEXT PRIMARY KEY,
  wrapped_key BLOB,
  erased_at TEXT
)`;

/** The erased keys, counted by every key store on the file (see CustomerKeyCache.forgetIfErasedElsewhere). */
const SQLITE_ERASED_KEYS_INDEX = 'CREATE INDEX IF NOT EXISTS customer_keys_erased ON customer_keys (erased_at) WHERE erased_at IS NOT NULL';

/** A customer's key from its stored row: the unwrapped key, or `erased` once destroyed. */
function keyOfRow(master: Buffer, wrappedKey: Uint8Array | null, erasedAt: string | null, customerId?: string): Buffer | 'erased' {
  return erasedAt || !wrappedKey ? 'erased' : unwrapKey(master, asBuffer(wrappedKey), customerId);
}

/** A Buffer over the same bytes (a Buffer sent to a worker thread arrives as a plain Uint8Array). */
function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

interface SqliteKeyStatements {
  insert: Database.Statement;
  select: Database.Statement;
  /** the given keys inserted unless present and every row read back, in one IMMEDIATE transaction */
  storeAll(rows: readonly NewKeyRow[]): StoredKeyRow[];
}

const sqliteKeyStatements = new WeakMap<Database.Database, SqliteKeyStatements>();

/** The key statements of a connection that writes keys, prepared once (the table created first). */
function keyStatementsOf(db: Database.Database): SqliteKeyStatements {
  let statements = sqliteKeyStatements.get(db);
  if (statements === undefined) {
    db.exec(SQLITE_CUSTOMER_KEYS_TABLE);
    const insert = db.prepare('INSERT OR IGNORE INTO customer_keys (customer_id, wrapped_key) VALUES (?, ?)');
    const select = db.prepare('SELECT wrapped_key, erased_at FROM customer_keys WHERE customer_id = ?');
    const transaction = db.transaction((batch: readonly NewKeyRow[]): StoredKeyRow[] => {
      for (const { customerId, wrappedKey } of batch) insert.run(customerId, asBuffer(wrappedKey));
      return batch.map(({ customerId }) => {
        const row = select.get(customerId) as { wrapped_key: Buffer | null; erased_at: string | null };
        return { customerId, wrappedKey: row.wrapped_key, erasedAt: row.erased_at };
      });
    });
    statements = { insert, select, storeAll: (batch) => transaction.immediate(batch) };
    sqliteKeyStatements.set(db, statements);
  }
  return statements;
}

/**
 * In one IMMEDIATE transaction on `db`: each new key inserted unless the customer has one already
 * (INSERT OR IGNORE), and every customer's row as stored, so the key stored first wins. Used by the
 * key store's own connection and by the embedded event store's writer.
 */
export function storeKeysInSqlite(db: Database.Database, rows: readonly NewKeyRow[]): StoredKeyRow[] {
  return keyStatementsOf(db).storeAll(rows);
}

/**
 * Inside the caller's transaction on `db` (the embedded event store's writer, carrying a key with
 * the events): inserts the new key unless the customer has one; false when the customer's stored
 * key is another one (or was erased), true when this key is stored (now or by an earlier attempt).
 */
export function storeCarriedKeyInSqlite(db: Database.Database, { customerId, wrappedKey }: NewKeyRow): boolean {
  const { insert, select } = keyStatementsOf(db);
  const wrapped = asBuffer(wrappedKey);
  if (insert.run(customerId, wrapped).changes === 1) return true;
  const stored = select.get(customerId) as { wrapped_key: Buffer | null } | undefined;
  return stored?.wrapped_key != null && wrapped.equals(stored.wrapped_key);
}

/** A new customer's key, wrapped by the master key, as it goes to be stored. */
export interface NewKeyRow {
  customerId: string;
  wrappedKey: Uint8Array;
}

/** A customer's key row as stored: the wrapped key, or none once erased. */
export interface StoredKeyRow {
  customerId: string;
  wrappedKey: Uint8Array | null;
  erasedAt: string | null;
}

/**
 * Writes customers' new keys for a key store that shares its file with a writer (the embedded event
 * store's writer thread): each row inserted unless present, in one transaction, answered as stored.
 */
export interface CustomerKeyWriter {
  storeCustomerKeys(rows: readonly NewKeyRow[]): Promise<StoredKeyRow[]>;
}

interface KeyWaiter {
  resolve(key: Buffer | 'erased'): void;
  reject(error: unknown): void;
}

/**
 * What both key stores keep in memory: customers' unwrapped keys (up to REMEMBERED_KEYS), and new
 * customers' keys, created at most once each. The keys asked for during one turn of the event loop
 * go to `store` together, which inserts those not stored yet and answers every row as stored, so a
 * key another writer created first is the one used. Each caller is answered once its key is stored,
 * so before any event encrypted with it can be appended.
 */
export class CustomerKeyCache {
  private readonly keys = new Map<string, Buffer | 'erased'>();
  private readonly provisionals = new Map<string, ProvisionalKey>();
  private batch: Map<string, { wrapped: Buffer; waiters: KeyWaiter[] }> | undefined;
  /** erased keys in the store when last counted, when that was, and a count under way */
  private erasedSeen: number | undefined;
  private erasedCountedAt = -Infinity;
  private erasedCounting: Promise<void> | undefined;

  constructor(
    private readonly master: Buffer,
    private readonly store: (rows: NewKeyRow[]) => Promise<StoredKeyRow[]> | StoredKeyRow[],
  ) {}

  get(customerId: string): Buffer | 'erased' | undefined {
    return this.keys.get(customerId);
  }

  /**
   * Another process may destroy a key this one keeps (an erasure sent to another engine process
   * of a deployment), and the keys kept here would go on opening the person's data. So before a
   * kept key is used, and at most every ERASURE_CHECK_MS, the store's erased keys are counted
   * (`countErased`, an indexed count); when the number changed, every kept key is forgotten and read
   * again when next needed. Erased keys only ever grow in number, so a change is never missed.
   * Answers undefined when no count is due, without a promise: it runs for every event decrypted,
   * and a rebuild decrypts hundreds of thousands.
   */
  forgetIfErasedElsewhere(countErased: () => Promise<number> | number): Promise<void> | undefined {
    if (this.erasedCounting === undefined && performance.now() - this.erasedCountedAt < ERASURE_CHECK_MS) return undefined;
    this.erasedCounting ??= (async () => {
      try {
        const erased = await countErased();
        if (this.erasedSeen !== undefined && erased !== this.erasedSeen) this.keys.clear();
        this.erasedSeen = erased;
        this.erasedCountedAt = performance.now();
      } finally {
        this.erasedCounting = undefined;
      }
    })();
    return this.erasedCounting;
  }

  /** The key of a stored row, kept. */
  remember(customerId: string, wrappedKey: Uint8Array | null, erasedAt: string | null): Buffer | 'erased' {
    const key = keyOfRow(this.master, wrappedKey, erasedAt, customerId);
    rememberKey(this.keys, customerId, key);
    return key;
  }

  erased(customerId: string): void {
    rememberKey(this.keys, customerId, 'erased');
  }

  /** See CarriedKeys.provisional. */
  provisional(customerId: string): ProvisionalKey {
    let provisional = this.provisionals.get(customerId);
    if (provisional === undefined) {
      const key = randomFromPool(32);
      provisional = { key, row: { customerId, wrappedKey: wrapKey(this.master, key) } };
      this.provisionals.set(customerId, provisional);
    }
    return provisional;
  }

  /** See CarriedKeys.settle. */
  settle(customerId: string, provisional: ProvisionalKey, written: boolean): void {
    if (this.provisionals.get(customerId) === provisional) this.provisionals.delete(customerId);
    if (written) rememberKey(this.keys, customerId, provisional.key);
  }

  /** The CarriedKeys of a key store whose new keys `carrier` writes with the events. */
  carriedBy(carrier: CustomerKeyCarrier): CarriedKeys {
    return {
      carrier,
      kept: (customerId) => this.get(customerId),
      provisional: (customerId) => this.provisional(customerId),
      settle: (customerId, provisional, written) => this.settle(customerId, provisional, written),
    };
  }

  /** The kept key, or a new customer's key once stored; not read first: the batch's read back answers a key stored earlier just the same. */
  keyFor(customerId: string): Promise<Buffer | 'erased'> {
    const kept = this.keys.get(customerId);
    if (kept) return Promise.resolve(kept);
    return new Promise<Buffer | 'erased'>((resolve, reject) => {
      if (this.batch === undefined) {
        this.batch = new Map();
        setImmediate(() => void this.storeBatch());
      }
      let entry = this.batch.get(customerId);
      if (entry === undefined) {
        entry = { wrapped: wrapKey(this.master, randomFromPool(32)), waiters: [] };
        this.batch.set(customerId, entry);
      }
      entry.waiters.push({ resolve, reject });
    });
  }

  private async storeBatch(): Promise<void> {
    const batch = this.batch;
    this.batch = undefined;
    if (batch === undefined) return;
    try {
      const stored = await this.store([...batch].map(([customerId, { wrapped }]) => ({ customerId, wrappedKey: wrapped })));
      for (const row of stored) {
        const key = this.remember(row.customerId, row.wrappedKey, row.erasedAt);
        for (const waiter of batch.get(row.customerId)?.waiters ?? []) waiter.resolve(key);
        batch.delete(row.customerId);
      }
      for (const [customerId, { waiters }] of batch) {
        for (const waiter of waiters) waiter.reject(new Error(`customer key for ${customerId} was not stored`));
      }
    } catch (error) {
      for (const { waiters } of batch.values()) for (const waiter of waiters) waiter.reject(error);
    }
  }
}

/** Keys in a table of the embedded SQLite file (the same file as the events, or another one). */
export class SqliteCustomerKeyStore implements CustomerKeyStore {
  private readonly db: Database.Database;
  /** set when opened with `readOnly` */
  private readonly readOnly: ReadOnlySqlite | undefined;
  private readonly select: Database.Statement;
  private readonly countErased: Database.Statement;
  private readonly keys: CustomerKeyCache;
  readonly carried?: CarriedKeys;

  /**
   * `writer`: when the file is the embedded event store's, its writer stores new keys, so that
   * creating keys never waits for the file's write lock here on the event loop, and all new keys of
   * a turn of the event loop cost one sync; a new customer's key goes in the same transaction as
   * their registration (CarriedKeys). Without it, this connection writes them, also one
   * transaction per turn.
   *
   * `readOnly` (audits): the file is opened with openSqliteReadOnly, nothing is written to it or its
   * folder, no table is created (a file without one holds no key), and creating or destroying a
   * key is refused.
   */
  constructor(
    file: string,
    private readonly master: Buffer,
    writer?: CustomerKeyWriter & CustomerKeyCarrier,
    options: { readOnly?: boolean } = {},
  ) {
    if (options.readOnly) {
      this.readOnly = openSqliteReadOnly(file);
      this.db = this.readOnly.db;
      const hasTable = this.db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'customer_keys'").get() !== undefined;
      this.select = hasTable
        ? this.db.prepare('SELECT wrapped_key, erased_at FROM customer_keys WHERE customer_id = ?')
        : this.db.prepare('SELECT NULL AS wrapped_key, NULL AS erased_at WHERE ? IS NULL');
      this.countErased = this.db.prepare(hasTable ? 'SELECT count(*) AS n FROM customer_keys WHERE erased_at IS NOT NULL' : 'SELECT 0 AS n').pluck();
      this.keys = new CustomerKeyCache(master, () => {
        throw new Error(`the customer keys in ${file} were opened read-only: no key can be created`);
      });
      return;
    }
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.pragma('busy_timeout = 5000');
    // an erased key must not linger in free pages
    this.db.pragma('secure_delete = ON');
    this.db.exec(SQLITE_CUSTOMER_KEYS_TABLE);
    this.db.exec(SQLITE_ERASED_KEYS_INDEX);
    this.select = this.db.prepare('SELECT wrapped_key, erased_at FROM customer_keys WHERE customer_id = ?');
    this.countErased = this.db.prepare('SELECT count(*) AS n FROM customer_keys WHERE erased_at IS NOT NULL').pluck();
    this.keys = new CustomerKeyCache(master, (rows) => (writer ? writer.storeCustomerKeys(rows) : storeKeysInSqlite(this.db, rows)));
    if (writer) this.carried = this.keys.carriedBy(writer);
  }

  async checkMasterKey(): Promise<void> {
    if (this.db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'customer_keys'").get() === undefined) return;
    const row = this.db.prepare('SELECT customer_id, wrapped_key FROM customer_keys WHERE wrapped_key IS NOT NULL LIMIT 1').get() as
      | { customer_id: string; wrapped_key: Buffer }
      | undefined;
    if (row) unwrapKey(this.master, row.wrapped_key);
  }

  async existingKey(customerId: string): Promise<Buffer | 'erased' | undefined> {
    const counting = this.keys.forgetIfErasedElsewhere(() => this.countErased.get() as number);
    if (counting) await counting;
    const kept = this.keys.get(customerId);
    if (kept) return kept;
    const row = this.select.get(customerId) as { wrapped_key: Buffer | null; erased_at: string | null } | undefined;
    this.readOnly?.assertUnchanged();
    if (!row) return undefined;
    return this.keys.remember(customerId, row.wrapped_key, row.erased_at);
  }

  /** A new customer's key is created at most once, a turn's new keys together (see CustomerKeyCache). */
  keyFor(customerId: string): Promise<Buffer | 'erased'> {
    return this.keys.keyFor(customerId);
  }

  async destroyKey(customerId: string, erasedAt: string): Promise<void> {
    if (this.readOnly) throw new Error('the customer keys were opened read-only: no key can be destroyed');
    this.db
      .prepare(
        `INSERT INTO customer_keys (customer_id, wrapped_key, erased_at) VALUES (?, NULL, ?)
         ON CONFLICT (customer_id) DO UPDATE SET wrapped_key = NULL, erased_at = excluded.erased_at`,
      )
      .run(customerId, erasedAt);
    // and not in the write-ahead log either
    this.db.pragma('wal_checkpoint(TRUNCATE)');
    this.keys.erased(customerId);
  }

  noteErased(customerId: string): void {
    this.keys.erased(customerId);
  }

  async close(): Promise<void> {
    this.db.close();
  }
}

/** How often a key store counts its erased keys to learn of erasures made by other processes (see CustomerKeyCache). */
export const ERASURE_CHECK_MS = 500;

/** Unwrapped keys kept per key store: every registration may carry personal data, so room for many customers. */
const REMEMBERED_KEYS = 100_000;

/** Keeps a customer's key, forgetting the longest-kept one past REMEMBERED_KEYS (a Map iterates in insertion order). */
export function rememberKey(cache: Map<string, Buffer | 'erased'>, customerId: string, key: Buffer | 'erased'): void {
  cache.delete(customerId);
  if (cache.size >= REMEMBERED_KEYS) {
    const oldest = cache.keys().next();
    if (!oldest.done) cache.delete(oldest.value);
  }
  cache.set(customerId, key);
}
