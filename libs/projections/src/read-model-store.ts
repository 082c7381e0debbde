import type { StoredEvent } from '@clientele/event-store';

/**
 * Read models are SQL tables. Projections and queries speak one portable SQL: `?` placeholders,
 * `BIGINT` for integers (money sums outgrow 32 bits), `TEXT`, `DOUBLE PRECISION` only for derived
 * ratios, `INSERT … ON CONFLICT … DO UPDATE` for upserts. The PostgreSQL store rewrites `?` to `$n`
 * and returns BIGINT as a JS number.
 */
export type SqlParam = string | number | bigint | null | boolean;

export interface ReadModelQueries {
  readonly dialect: 'sqlite' | 'postgres';
  all<T = Record<string, unknown>>(sql: string, params?: SqlParam[]): Promise<T[]>;
  get<T = Record<string, unknown>>(sql: string, params?: SqlParam[]): Promise<T | undefined>;
}

export interface ReadModelTransaction extends ReadModelQueries {
  /** DDL or several statements without parameters */
  exec(sql: string): Promise<void>;
  /** one statement; answers the number of rows changed */
  run(sql: string, params?: SqlParam[]): Promise<number>;
}

/**
 * One place read models live: an SQLite file or a PostgreSQL schema. A rebuild writes into a fresh
 * store and then becomes the live one, so every table name is unqualified.
 */
export interface ReadModelStore extends ReadModelQueries {
  /** runs `work` in one transaction: everything in it commits together or not at all */
  transaction<T>(work: (tx: ReadModelTransaction) => Promise<T>): Promise<T>;
  close(): Promise<void>;
  /**
   * Optional: the store is an unpublished generation being filled by a rebuild, so it may trade
   * crash safety for speed (a crashed rebuild's generation is thrown away anyway).
   */
  beginBulkLoad?(): Promise<void>;
  /** Optional: restores the durable settings and makes everything written so far durable; called before the store goes live */
  endBulkLoad?(): Promise<void>;
  /**
   * Optional: makes what earlier transactions deleted or overwrote unreadable in the store's files
   * (old page images a write-ahead log still holds). The projector calls it after committing a live
   * batch that erased personal data, outside any transaction, never on a store being rebuilt. The
   * PostgreSQL store has none: dead row versions and its WAL are the server's to vacuum and recycle.
   */
  purgeOldPages?(): Promise<void>;
}

/**
 * A read model: a fold of the global log into tables. The projector calls `apply` with consecutive
 * batches of events in global order, inside the same transaction that advances its checkpoint.
 * `apply` never throws on a stored fact it does not understand: it skips it.
 */
export interface Projection {
  readonly name: string;
  /** bump when the fold changes; a different version makes the projector rebuild */
  readonly version: number;
  /** the tables this projection owns, in the order a digest reads them */
  readonly tables: readonly string[];
  /** creates the tables and indexes if missing (idempotent) */
  migrate(tx: ReadModelTransaction): Promise<void>;
  apply(events: readonly StoredEvent[], tx: ReadModelTransaction): Promise<void>;
  /**
   * Optional: an instance for one rebuild into one fresh store. It may keep what it wrote in memory
   * across batches (nothing else writes that store, and a failed rebuild discards store and instance
   * together); it must write exactly what this projection would.
   */
  forRebuild?(): Projection;
  /**
   * Optional, on rebuild instances: folding a batch in several consecutive `apply` calls within one
   * transaction writes the same and costs about the same as one call. A projector rebuild then hands
   * the instance the log page by page as it reads it, so each page's events can be collected once
   * folded instead of living until the batch commits (they otherwise outlive the young generation,
   * and the collector copies and promotes them).
   */
  readonly foldsPages?: boolean;
  /**
   * Only on rebuild instances: writes the rows the instance still holds in memory. A rebuild
   * instance may keep rows it folded unwritten past a batch's commit, so each row is written once
   * with its final value instead of once per batch that touched it (nobody reads a store being
   * rebuilt, and a failed rebuild discards it). The projector calls `flush` in one transaction
   * after the last batch, before the store can go live; until then the store's checkpoints run
   * ahead of its rows.
   */
  flush?(tx: ReadModelTransaction): Promise<void>;
  /**
   * Optional: one bounded step of work the projection put off while folding (e.g. recomputing
   * derived rows a backfill made stale); answers true while more remains. The projector runs one
   * step per transaction once the read model has caught up with the log, folding any newer events
   * first, and runs every step before a rebuilt or replayed store can be read or digested. A step
   * never changes what the queries answer, and once no step remains the tables must be the same
   * whenever the steps ran.
   */
  settle?(tx: ReadModelTransaction): Promise<boolean>;
  /** Optional, with `settle`: true while a store holds work `settle` has not done yet */
  unsettled?(store: ReadModelQueries): Promise<boolean>;
}
