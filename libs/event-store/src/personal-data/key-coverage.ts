import { Pool } from 'pg';
import type { StoredEvent } from '../event-store.port';
import { openSqliteReadOnly } from '../sqlite/sqlite-read-only';
import { customerOfStream, ERASED_FIELD, isEncryptedField, PERSONAL_DATA_ERASED, PERSONAL_FIELDS } from './personal-data.cipher';


/**
 * A customer whose personal data the log holds encrypted, with no key row to open it and no
 * PersonalDataErased in their stream: the data was not erased (an erasure keeps the row, marked
 * erased, and records the fact), the key is missing — deleted, or kept somewhere else.
 */
export interface MissingCustomerKey {
  kind: 'key_missing';
  customerId: string;
  streamId: string;
  /** the first event seen that holds their encrypted personal data */
  position: number;
  eventId: string;
  /** events seen that hold it */
  encryptedEvents: number;
}

/** Which of the given customers have a key row (live or erased) where the engine keeps the keys. */
export interface CustomerKeyRows {
  /** where the rows are read, for reports: a file, or a schema */
  readonly where: string;
  present(customerIds: readonly string[]): Promise<ReadonlySet<string>>;
  close(): Promise<void>;
}

/** Whether an event holds personal data encrypted with its customer's key (not the mark written after an erasure). */
export function holdsEncryptedPersonalData(event: Pick<StoredEvent, 'type' | 'data'>): boolean {
  const fields = PERSONAL_FIELDS[event.type];
  if (fields === undefined) return false;
  for (const field of fields) {
    const value = event.data[field];
    if (isEncryptedField(value) && value.$personal !== ERASED_FIELD.$personal) return true;
  }
  return false;
}

/**
 * Watches the events a verification walks for customers whose encrypted personal data has no key
 * row: personal-data reads would otherwise answer such a customer as erased, or as having none.
 * Customers are looked up a batch at a time (`batchSize` distinct ones per query) while the walk
 * goes on, and only those found missing are kept, so memory stays flat whatever the number of
 * customers; a customer whose stream records PersonalDataErased is not reported.
 */
export function keyCoverageWatch(
  keys: Pick<CustomerKeyRows, 'present'>,
  options: { batchSize?: number } = {},
): {
  tap(events: AsyncIterable<StoredEvent> | Iterable<StoredEvent>): AsyncIterable<StoredEvent>;
  /** the customers found missing, in the order of their first encrypted event; call once the walk is over */
  missing(): Promise<MissingCustomerKey[]>;
} {
  const batchSize = options.batchSize ?? 1000;
  let pending = new Map<string, MissingCustomerKey>();
  const missing = new Map<string, MissingCustomerKey>();
  const erasedInLog = new Set<string>();

  async function flush(): Promise<void> {
    if (pending.size === 0) return;
    const batch = pending;
    pending = new Map();
    const present = await keys.present([...batch.keys()]);
    for (const [customerId, seen] of batch) {
      if (present.has(customerId)) continue;
      const known = missing.get(customerId);
      if (known) known.encryptedEvents += seen.encryptedEvents;
      else missing.set(customerId, seen);
    }
  }

  return {
    async *tap(events) {
      for await (const e of events) {
        const customerId = customerOfStream(e.streamId);
        if (customerId !== undefined) {
          if (e.type === PERSONAL_DATA_ERASED) erasedInLog.add(customerId);
          else if (holdsEncryptedPersonalData(e)) {
            const known = missing.get(customerId) ?? pending.get(customerId);
            if (known) known.encryptedEvents += 1;
            else {
              pending.set(customerId, { kind: 'key_missing', customerId, streamId: e.streamId, position: e.position, eventId: e.id, encryptedEvents: 1 });
              if (pending.size >= batchSize) await flush();
            }
          }
        }
        yield e;
      }
    },
    async missing() {
      await flush();
      return [...missing.values()].filter((m) => !erasedInLog.has(m.customerId)).sort((a, b) => a.position - b.position);
    },
  };
}

/**
 * The key rows of an SQLite file (the embedded store's own, or a keys file), opened read-only. A
 * file without a customer_keys table holds no key.
 */
export function sqliteCustomerKeyRows(file: string): CustomerKeyRows {
  const opened = openSqliteReadOnly(file);
  const hasTable = opened.db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'customer_keys'").get() !== undefined;
  const select = hasTable ? opened.db.prepare('SELECT customer_id FROM customer_keys WHERE customer_id IN (SELECT value FROM json_each(?))').pluck() : undefined;
  return {
    where: file,
    async present(customerIds) {
      const rows = select ? (select.all(JSON.stringify(customerIds)) as string[]) : [];
      opened.assertUnchanged();
      return new Set(rows);
    },
    async close() {
      opened.close();
    },
  };
}

/** The key rows of a PostgreSQL schema (where the engine keeps them, beside the events), created nowhere: a schema without the table holds no key. */
export async function postgresCustomerKeyRows(url: string, schema: string): Promise<CustomerKeyRows> {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) throw new Error(`schema: expected a lower-case SQL identifier, got ${JSON.stringify(schema)}`);
  const pool = new Pool({ connectionString: url, max: 1 });
  let hasTable: boolean;
  try {
    const { rows } = await pool.query<{ t: string | null }>('select to_regclass($1)::text as t', [`${schema}.customer_keys`]);
    hasTable = rows[0]?.t != null;
  } catch (error) {
    await pool.end();
    throw error;
  }
  return {
    where: `schema ${schema}`,
    async present(customerIds) {
      if (!hasTable) return new Set();
      const { rows } = await pool.query<{ customer_id: string }>(`select customer_id from ${schema}.customer_keys where customer_id = any($1::text[])`, [customerIds]);
      return new Set(rows.map((r) => r.customer_id));
    },
    async close() {
      await pool.end();
    },
  };
}
