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

export function wrapKey(master: Buffer, dataKey: Buffer): Buffer {
  const iv = randomBytes(12);
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

/** Keys in a table of the embedded SQLite file (the same file as the events, or another one). */
export class SqliteCustomerKeyStore implements CustomerKeyStore {
  private readonly db: Database.Database;
  private readonly cache = new Map<string, Buffer | 'erased'>();

  constructor(
    file: string,
    private readonly master: Buffer,
  ) {
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = FULL');
    this.db.pragma('busy_timeout = 5000');
    // an erased key must not linger in free pages
    this.db.pragma('secure_delete = ON');
    this.db.exec(SQLITE_CUSTOMER_KEYS_TABLE);
  }

  async existingKey(customerId: string): Promise<Buffer | 'erased' | undefined> {
    const cached = this.cache.get(customerId);
    if (cached) return cached;
    const row = this.db
      .prepare('SELECT wrapped_key, erased_at FROM customer_keys WHERE customer_id = ?')
      .get(customerId) as { wrapped_key: Buffer | null; erased_at: string | null } | undefined;
    if (!row) return undefined;
    const key = row.erased_at || !row.wrapped_key ? 'erased' : unwrapKey(this.master, row.wrapped_key);
    this.remember(customerId, key);
    return key;
  }

  async keyFor(customerId: string): Promise<Buffer | 'erased'> {
    const existing = await this.existingKey(customerId);
    if (existing) return existing;
    const key = randomBytes(32);
    // INSERT OR IGNORE: if another writer created the key first, read theirs back.
    this.db
      .prepare('INSERT OR IGNORE INTO customer_keys (customer_id, wrapped_key) VALUES (?, ?)')
      .run(customerId, wrapKey(this.master, key));
    this.cache.delete(customerId);
    const stored = await this.existingKey(customerId);
    if (!stored) throw new Error(`customer key for ${customerId} was not stored`);
    return stored;
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
    // bounded: personal fields are rare in the log, so a small cache covers rebuilds
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(customerId, key);
  }
}
