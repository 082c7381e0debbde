import { closeSync, fsyncSync, openSync } from 'node:fs';
import Database from 'better-sqlite3';
import type { ReadModelStore, ReadModelTransaction, SqlParam } from './read-model-store';

/**
 * A bulk load keeps its rollback journal in memory while the file is smaller than this: the journal
 * holds a copy of every page a transaction changes that existed when it began, so on a large file it
 * grows with the file (73 MB more RSS at 1.6 million events), not with the batch. Past it, the
 * journal goes to a file beside the store, still without fsync.
 */
export const BULK_JOURNAL_IN_MEMORY_UP_TO_BYTES = 64 * 1024 * 1024;

/**
 * Read models in an SQLite file (or `:memory:`). better-sqlite3 is synchronous; the async surface
 * lets the same projection code run on PostgreSQL. Statements are cached per SQL text.
 */
export class SqliteReadModelStore implements ReadModelStore {
  readonly dialect = 'sqlite' as const;
  private readonly db: Database.Database;
  private readonly statements = new Map<string, Database.Statement>();
  private inTransaction = false;
  /** secondary indexes held back while bulk loading; `undefined` outside a bulk load */
  private deferredIndexes: string[] | undefined;
  /** `purgeOldPages` could not truncate the write-ahead log (a reader held it): try after the next commit */
  private purgePending = false;
  /** a bulk load's rollback journal is in memory and moves to a file once the store outgrows `bulkJournalInMemoryUpTo` */
  private bulkJournalInMemory = false;
  private readonly bulkJournalInMemoryUpTo: number;

  constructor(
    readonly file: string,
    options: { bulkJournalInMemoryUpTo?: number } = {},
  ) {
    this.bulkJournalInMemoryUpTo = options.bulkJournalInMemoryUpTo ?? BULK_JOURNAL_IN_MEMORY_UP_TO_BYTES;
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.pragma('foreign_keys = OFF');
    // read models are rewritten row by row on every batch: a page cache that holds the hot tables
    // (64 MiB instead of the 2 MiB default) keeps rebuilds from re-reading pages through the WAL
    this.db.pragma('cache_size = -65536');
    // erased personal data must not linger in freed space or free pages: they are overwritten with zeros
    this.db.pragma('secure_delete = ON');
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
    return this.prepare(sql).all(bindAll(params)) as T[];
  }

  async get<T>(sql: string, params: SqlParam[] = []): Promise<T | undefined> {
    return this.prepare(sql).get(bindAll(params)) as T | undefined;
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
        this.db.exec(this.deferredIndexes ? this.deferIndexes(sql) : sql);
      },
      run: async (sql, params = []) => this.prepare(sql).run(bindAll(params)).changes,
    };
    let result: T;
    try {
      result = await work(tx);
      this.db.exec('COMMIT');
    } catch (err) {
      this.db.exec('ROLLBACK');
      throw err;
    } finally {
      this.inTransaction = false;
    }
    if (this.purgePending) this.checkpointWal();
    if (this.bulkJournalInMemory) this.journalToFileWhenLarge();
    return result;
  }

  /** between a bulk load's transactions: the journal leaves memory once the file has grown past the bound */
  private journalToFileWhenLarge(): void {
    const pages = this.db.pragma('page_count', { simple: true }) as number;
    const pageSize = this.db.pragma('page_size', { simple: true }) as number;
    if (pages * pageSize <= this.bulkJournalInMemoryUpTo) return;
    this.db.pragma('journal_mode = TRUNCATE');
    this.bulkJournalInMemory = false;
  }

  /**
   * Secure delete has already zeroed what the erasure removed in the pages it wrote; the pages as
   * they were before stay in the write-ahead log until a checkpoint. A truncating checkpoint copies
   * the new pages into the file and empties the log, as the event store does for an erased key.
   * Outside a write-ahead log (`:memory:`, a bulk load's journal) there is nothing to purge.
   */
  async purgeOldPages(): Promise<void> {
    if (this.inTransaction) throw new Error('old pages cannot be purged inside a transaction');
    this.purgePending = true;
    this.checkpointWal();
  }

  /**
   * Never waits for another process reading the file (an engine serving queries, an audit): that
   * would stall this event loop for the busy timeout. While one reads, the log keeps its pages, and
   * the checkpoint is tried again after the next commit.
   */
  private checkpointWal(): void {
    const timeout = this.db.pragma('busy_timeout', { simple: true }) as number;
    this.db.pragma('busy_timeout = 0');
    try {
      const [result] = this.db.pragma('wal_checkpoint(TRUNCATE)') as { busy: number }[];
      this.purgePending = result?.busy === 1;
    } finally {
      this.db.pragma(`busy_timeout = ${timeout}`);
    }
  }

  /**
   * No fsync and a rollback journal in memory (on a file once the store outgrows
   * `bulkJournalInMemoryUpTo`) while a rebuild fills this file: a transaction can still roll back,
   * but a crash may leave the file corrupt, which is fine only because nobody reads it yet and the
   * generations remove an unpromoted file on the next start.
   */
  async beginBulkLoad(): Promise<void> {
    if (this.inTransaction) throw new Error('bulk load cannot begin inside a transaction');
    this.db.pragma('synchronous = OFF');
    this.db.pragma('journal_mode = MEMORY');
    // an in-memory database has no file to put a journal beside
    this.bulkJournalInMemory = this.file !== ':memory:' && this.file !== '';
    this.deferredIndexes = [];
  }

  /**
   * Non-unique indexes are built once from the loaded rows instead of row by row during the load
   * (a sorted build, several times cheaper). Unique indexes stay: conflict handling relies on them.
   */
  private deferIndexes(sql: string): string {
    return sql.replace(/CREATE\s+INDEX\s+IF\s+NOT\s+EXISTS\s[^;]*;?/gi, (statement) => {
      this.deferredIndexes?.push(statement);
      return '';
    });
  }

  /** back to WAL with NORMAL sync, and the file forced to disk before anything can point at it */
  async endBulkLoad(): Promise<void> {
    if (this.inTransaction) throw new Error('bulk load cannot end inside a transaction');
    const indexes = this.deferredIndexes ?? [];
    this.deferredIndexes = undefined;
    this.bulkJournalInMemory = false;
    if (indexes.length > 0) {
      this.db.exec('BEGIN IMMEDIATE');
      try {
        for (const index of indexes) this.db.exec(index);
        this.db.exec('COMMIT');
      } catch (err) {
        this.db.exec('ROLLBACK');
        throw err;
      }
    }
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    if (this.file !== ':memory:' && this.file !== '') {
      const fd = openSync(this.file, 'r+');
      try {
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    }
  }

  async close(): Promise<void> {
    this.statements.clear();
    this.db.close();
  }
}

/**
 * better-sqlite3 takes an array as the list of anonymous parameters, so a multi-row statement's
 * hundreds of values are neither spread into arguments nor copied unless a boolean needs mapping.
 */
function bindAll(params: readonly SqlParam[]): (string | number | bigint | null)[] {
  for (const p of params) {
    if (typeof p === 'boolean') return params.map((x) => (typeof x === 'boolean' ? (x ? 1 : 0) : x));
  }
  return params as (string | number | bigint | null)[];
}
