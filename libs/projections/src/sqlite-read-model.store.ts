import Database from 'better-sqlite3';
import type { ReadModelStore, ReadModelTransaction, SqlParam } from './read-model-store';

/**
 * Read models in an SQLite file (or `:memory:`). better-sqlite3 is synchronous; the async surface
 * lets the same projection code run on PostgreSQL. Statements are cached per SQL text.
 */
export class SqliteReadModelStore implements ReadModelStore {
  readonly dialect = 'sqlite' as const;
  private readonly db: Database.Database;
  private readonly statements = new Map<string, Database.Statement>();
  private inTransaction = false;

  constructor(readonly file: string) {
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('foreign_keys = OFF');
    // read models are rewritten row by row on every batch: a page cache that holds the hot tables
    // (64 MiB instead of the 2 MiB default) keeps rebuilds from re-reading pages through the WAL
    this.db.pragma('cache_size = -65536');
  }

  private prepare(sql: string): Database.Statement {
    let st = this.statements.get(sql);
    if (!st) {
      st = this.db.prepare(sql);
      this.statements.set(sql, st);
    }
    return st;
  }

  async all<T>(sql: string, params: SqlParam[] = []): Promise<T[]> {
    return this.prepare(sql).all(...params.map(bind)) as T[];
  }

  async get<T>(sql: string, params: SqlParam[] = []): Promise<T | undefined> {
    return this.prepare(sql).get(...params.map(bind)) as T | undefined;
  }

  async transaction<T>(work: (tx: ReadModelTransaction) => Promise<T>): Promise<T> {
    if (this.inTransaction) throw new Error('read-model transactions do not nest');
    this.inTransaction = true;
    this.db.exec('BEGIN IMMEDIATE');
    const tx: ReadModelTransaction = {
      dialect: 'sqlite',
      all: (sql, params) => this.all(sql, params),
      get: (sql, params) => this.get(sql, params),
      exec: async (sql) => {
        this.db.exec(sql);
      },
      run: async (sql, params = []) => this.prepare(sql).run(...params.map(bind)).changes,
    };
    try {
      const result = await work(tx);
      this.db.exec('COMMIT');
      return result;
    } catch (err) {
      this.db.exec('ROLLBACK');
      throw err;
    } finally {
      this.inTransaction = false;
    }
  }

  async close(): Promise<void> {
    this.statements.clear();
    this.db.close();
  }
}

function bind(p: SqlParam): string | number | bigint | null {
  return typeof p === 'boolean' ? (p ? 1 : 0) : p;
}
