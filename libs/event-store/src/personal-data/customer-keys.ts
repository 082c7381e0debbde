import Database from 'better-sqlite3';
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

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
  close(): Promise<void>;
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

export function unwrapKey(master: Buffer, wrapped: Buffer): Buffer {
  const decipher = createDecipheriv('aes-256-gcm', master, wrapped.subarray(0, 12));
  decipher.setAuthTag(wrapped.subarray(12, 28));
  return Buffer.concat([decipher.update(wrapped.subarray(28)), decipher.final()]);
}

/** The keys table of an SQLite file; a migration creates it on its target the same way. */
export const SQLITE_CUSTOMER_KEYS_TABLE = `CREATE TABLE IF NOT EXISTS customer_keys (
  customer_id TEXT PRIMARY KEY,
  wrapped_key BLOB,
  erased_at TEXT
)`;

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
 * New customers' keys, created at most once each: the keys asked for during one turn of the event
 * loop go to `store` together, which inserts those not stored yet and answers every row as stored,
 * so a key another writer created first is the one used. Each caller is answered once its key is
 * stored, so before any event encrypted with it can be appended.
 */
export class NewKeyBatches {
  private batch: Map<string, { wrapped: Buffer; waiters: KeyWaiter[] }> | undefined;

  constructor(
    private readonly master: Buffer,
    private readonly store: (rows: NewKeyRow[]) => Promise<StoredKeyRow[]> | StoredKeyRow[],
    /** the key of a stored row, kept by the key store */
    private readonly remember: (row: StoredKeyRow) => Buffer | 'erased',
  ) {}

  keyFor(customerId: string): Promise<Buffer | 'erased'> {
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
        const key = this.remember(row);
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
  private readonly cache = new Map<string, Buffer | 'erased'>();
  private readonly st: { select: Database.Statement; insert: Database.Statement };
  private readonly newKeys: NewKeyBatches;

  /**
   * `writer`: when the file is the embedded event store's, its writer stores new keys, so that
   * creating keys never waits for the file's write lock here on the event loop, and all new keys of
   * a turn of the event loop cost one sync. Without it, this connection writes them, also one
   * transaction per turn.
   */
  constructor(
    file: string,
    private readonly master: Buffer,
    private readonly writer?: CustomerKeyWriter,
  ) {
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.pragma('busy_timeout = 5000');
    // an erased key must not linger in free pages
    this.db.pragma('secure_delete = ON');
    this.db.exec(SQLITE_CUSTOMER_KEYS_TABLE);
    this.st = {
      select: this.db.prepare('SELECT wrapped_key, erased_at FROM customer_keys WHERE customer_id = ?'),
      insert: this.db.prepare('INSERT OR IGNORE INTO customer_keys (customer_id, wrapped_key) VALUES (?, ?)'),
    };
    this.newKeys = new NewKeyBatches(
      master,
      (rows) => (writer ? writer.storeCustomerKeys(rows) : this.insertHere(rows)),
      (row) => this.rememberRow(row.customerId, row.wrappedKey, row.erasedAt),
    );
  }

  async existingKey(customerId: string): Promise<Buffer | 'erased' | undefined> {
    const cached = this.cache.get(customerId);
    if (cached) return cached;
    const row = this.st.select.get(customerId) as { wrapped_key: Buffer | null; erased_at: string | null } | undefined;
    if (!row) return undefined;
    return this.rememberRow(customerId, row.wrapped_key, row.erased_at);
  }

  /** A new customer's key is created at most once, a turn's new keys together (see NewKeyBatches). */
  async keyFor(customerId: string): Promise<Buffer | 'erased'> {
    // not read first: the batch's read back answers a key stored earlier just the same
    const cached = this.cache.get(customerId);
    if (cached) return cached;
    return this.newKeys.keyFor(customerId);
  }

  private insertHere(rows: readonly NewKeyRow[]): StoredKeyRow[] {
    return this.db.transaction(() => {
      for (const { customerId, wrappedKey } of rows) this.st.insert.run(customerId, wrappedKey);
      return rows.map(({ customerId }) => {
        const row = this.st.select.get(customerId) as { wrapped_key: Buffer | null; erased_at: string | null };
        return { customerId, wrappedKey: row.wrapped_key, erasedAt: row.erased_at };
      });
    }).immediate();
  }

  private rememberRow(customerId: string, wrapped: Uint8Array | null, erasedAt: string | null): Buffer | 'erased' {
    const key = erasedAt || !wrapped ? 'erased' : unwrapKey(this.master, Buffer.from(wrapped.buffer, wrapped.byteOffset, wrapped.byteLength));
    this.remember(customerId, key);
    return key;
  }

  async destroyKey(customerId: string, erasedAt: string): Promise<void> {
    this.db
      .prepare(
        `INSERT INTO customer_keys (customer_id, wrapped_key, erased_at) VALUES (?, NULL, ?)
         ON CONFLICT (customer_id) DO UPDATE SET wrapped_key = NULL, erased_at = excluded.erased_at`,
      )
      .run(customerId, erasedAt);
    // and not in the write-ahead log either
    this.db.pragma('wal_checkpoint(TRUNCATE)');
    this.cache.set(customerId, 'erased');
  }

  async close(): Promise<void> {
    this.db.close();
  }

  private remember(customerId: string, key: Buffer | 'erased'): void {
    rememberKey(this.cache, customerId, key);
  }
}

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
