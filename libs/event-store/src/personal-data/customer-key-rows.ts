import Database from 'better-sqlite3';
import { Pool } from 'pg';
import { assertSchemaName } from '../postgres/postgres.migrations';
import { SQLITE_CUSTOMER_KEYS_TABLE } from './customer-keys';
import { postgresCustomerKeysTable } from './postgres-customer-keys';

/**
 * The `customer_keys` table as rows, for moving a log between stores. Keys stay wrapped: the
 * master key never enters a migration, and both sides must run with the same one.
 */
export interface WrappedKeyRow {
  customerId: string;
  /** AES-GCM-wrapped data key; null once erased */
  wrappedKey: Buffer | null;
  erasedAt: string | null;
}

export interface KeyMergeResult {
  /** rows the target did not have */
  added: number;
  /** of those, the keys the source had erased: they arrive erased */
  addedErased: number;
  /** keys the source had erased that the target still held: destroyed on the target too */
  erased: number;
  /** rows already the same on the target (or erased there, which stays so) */
  unchanged: number;
}

export interface CustomerKeyTable {
  /** every row, in customer id order */
  readRows(): Promise<WrappedKeyRow[]>;
  /** see mergeKeyRow: in one transaction, so a conflict leaves the table as it was */
  mergeRows(rows: readonly WrappedKeyRow[]): Promise<KeyMergeResult>;
  close(): Promise<void>;
}

/** Two different live keys for one customer: copying would make some of their data unreadable. */
export class CustomerKeyConflictError extends Error {
  constructor(readonly customerId: string) {
    super(`customer ${customerId}: the target holds a different key for this customer; it was written by another log`);
    this.name = 'CustomerKeyConflictError';
  }
}

type Action = 'add' | 'erase' | 'keep';

/** Erasure wins in both directions: a key erased on either side is never brought back. */
function mergeAction(source: WrappedKeyRow, target: WrappedKeyRow | undefined): Action {
  if (!target) return 'add';
  const targetErased = target.erasedAt !== null || target.wrappedKey === null;
  const sourceErased = source.erasedAt !== null || source.wrappedKey === null;
  if (targetErased) return 'keep';
  if (sourceErased) return 'erase';
  if (!source.wrappedKey!.equals(target.wrappedKey!)) throw new CustomerKeyConflictError(source.customerId);
  return 'keep';
}

function tally(actions: Action[], rows: readonly WrappedKeyRow[]): KeyMergeResult {
  return {
    added: actions.filter((a) => a === 'add').length,
    addedErased: rows.filter((r, i) => actions[i] === 'add' && (r.erasedAt !== null || r.wrappedKey === null)).length,
    erased: actions.filter((a) => a === 'erase').length,
    unchanged: actions.filter((a) => a === 'keep').length,
  };
}

interface SqliteKeyRow {
  customer_id: string;
  wrapped_key: Buffer | null;
  erased_at: string | null;
}

/** The table in an SQLite store file. `create: false` (a source) never adds a table to the file. */
export function sqliteCustomerKeyTable(file: string, options: { create: boolean }): CustomerKeyTable {
  const db = new Database(file, { fileMustExist: !options.create });
  db.pragma('busy_timeout = 5000');
  if (options.create) {
    db.pragma('journal_mode = WAL');
    // an erased key must not linger in free pages
    db.pragma('secure_delete = ON');
    db.exec(SQLITE_CUSTOMER_KEYS_TABLE);
  }
  const exists = (): boolean => db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'customer_keys'").get() !== undefined;
  return {
    async readRows() {
      if (!exists()) return [];
      const rows = db.prepare('SELECT customer_id, wrapped_key, erased_at FROM customer_keys ORDER BY customer_id').all() as SqliteKeyRow[];
      return rows.map((r) => ({ customerId: r.customer_id, wrappedKey: r.wrapped_key, erasedAt: r.erased_at }));
    },
    async mergeRows(rows) {
      const find = db.prepare('SELECT customer_id, wrapped_key, erased_at FROM customer_keys WHERE customer_id = ?');
      const insert = db.prepare('INSERT INTO customer_keys (customer_id, wrapped_key, erased_at) VALUES (?, ?, ?)');
      const erase = db.prepare('UPDATE customer_keys SET wrapped_key = NULL, erased_at = ? WHERE customer_id = ?');
      const merge = db.transaction((batch: readonly WrappedKeyRow[]) =>
        batch.map((row) => {
          const found = find.get(row.customerId) as SqliteKeyRow | undefined;
          const action = mergeAction(row, found && { customerId: found.customer_id, wrappedKey: found.wrapped_key, erasedAt: found.erased_at });
          if (action === 'add') insert.run(row.customerId, row.wrappedKey, row.erasedAt);
          if (action === 'erase') erase.run(row.erasedAt ?? '', row.customerId);
          return action;
        }),
      );
      const result = tally(merge(rows), rows);
      // a destroyed key must not survive in the write-ahead log either
      if (result.erased > 0) db.pragma('wal_checkpoint(TRUNCATE)');
      return result;
    },
    async close() {
      db.close();
    },
  };
}

/** The table in a PostgreSQL schema. `create: false` (a source) never creates it. */
export async function postgresCustomerKeyTable(url: string, schema: string, options: { create: boolean }): Promise<CustomerKeyTable> {
  assertSchemaName(schema);
  const pool = new Pool({ connectionString: url, max: 1 });
  const table = `${schema}.customer_keys`;
  try {
    if (options.create) {
      await pool.query(`create schema if not exists ${schema}`);
      await pool.query(postgresCustomerKeysTable(schema));
    }
  } catch (error) {
    await pool.end();
    throw error;
  }
  const exists = async (): Promise<boolean> => (await pool.query<{ t: string | null }>('select to_regclass($1)::text as t', [table])).rows[0]?.t != null;
  return {
    async readRows() {
      if (!(await exists())) return [];
      const { rows } = await pool.query<SqliteKeyRow>(`select customer_id, wrapped_key, erased_at from ${table} order by customer_id`);
      return rows.map((r) => ({ customerId: r.customer_id, wrappedKey: r.wrapped_key, erasedAt: r.erased_at }));
    },
    async mergeRows(rows) {
      const client = await pool.connect();
      try {
        await client.query('begin');
        const { rows: found } = await client.query<SqliteKeyRow>(
          `select customer_id, wrapped_key, erased_at from ${table} where customer_id = any($1::text[]) for update`,
          [rows.map((r) => r.customerId)],
        );
        const byId = new Map(found.map((r) => [r.customer_id, { customerId: r.customer_id, wrappedKey: r.wrapped_key, erasedAt: r.erased_at }]));
        const actions = rows.map((row) => mergeAction(row, byId.get(row.customerId)));
        const added = rows.filter((_, i) => actions[i] === 'add');
        const erased = rows.filter((_, i) => actions[i] === 'erase');
        if (added.length > 0) {
          // an engine creating a key meanwhile would make the insert fail, and the transaction with it
          await client.query(
            `insert into ${table} (customer_id, wrapped_key, erased_at) select * from unnest($1::text[], $2::bytea[], $3::text[])`,
            [added.map((r) => r.customerId), added.map((r) => r.wrappedKey), added.map((r) => r.erasedAt)],
          );
        }
        if (erased.length > 0) {
          await client.query(
            `update ${table} t set wrapped_key = null, erased_at = u.erased_at
               from unnest($1::text[], $2::text[]) as u(customer_id, erased_at) where t.customer_id = u.customer_id`,
            [erased.map((r) => r.customerId), erased.map((r) => r.erasedAt ?? '')],
          );
        }
        await client.query('commit');
        return tally(actions, rows);
      } catch (error) {
        await client.query('rollback').catch(() => undefined);
        throw error;
      } finally {
        client.release();
      }
    },
    async close() {
      await pool.end();
    },
  };
}
