import Database from 'better-sqlite3';

/**
 * Where a process remembers how far it has read the global log, and the customer index the churn
 * sweep walks (saved in the same write as the index's own checkpoint, so they never disagree).
 */
export interface CheckpointStore {
  /** 0 when the process never saved a checkpoint */
  load(name: string): Promise<number>;
  /** saves the checkpoint and indexes newly registered customers, atomically */
  save(name: string, position: number, registeredCustomers?: readonly string[]): Promise<void>;
  /** customer ids in ascending order after `afterId` (exclusive), for paging through everyone */
  customers(afterId: string | undefined, limit: number): Promise<string[]>;
  close(): Promise<void>;
}

export class InMemoryCheckpointStore implements CheckpointStore {
  private readonly positions = new Map<string, number>();
  private readonly known = new Set<string>();

  async load(name: string): Promise<number> {
    return this.positions.get(name) ?? 0;
  }

  async save(name: string, position: number, registeredCustomers: readonly string[] = []): Promise<void> {
    this.positions.set(name, position);
    for (const id of registeredCustomers) this.known.add(id);
  }

  async customers(afterId: string | undefined, limit: number): Promise<string[]> {
    return [...this.known].sort().filter((id) => afterId === undefined || id > afterId).slice(0, limit);
  }

  async close(): Promise<void> {}
}

export interface SqliteCheckpointStoreOptions {
  /** the database file; the event store's own file is fine (tables are prefixed `process_`) */
  file: string;
  /** `full` syncs every save to disk; `normal` may lose the last saves on power loss (re-run is idempotent) */
  durability?: 'full' | 'normal';
}

export class SqliteCheckpointStore implements CheckpointStore {
  private readonly db: Database.Database;
  private readonly loadStmt: Database.Statement<[string], { position: number }>;
  private readonly saveStmt: Database.Statement<[string, number]>;
  private readonly indexStmt: Database.Statement<[string, number]>;
  private readonly pageStmt: Database.Statement<[string, number], { customer_id: string }>;
  private readonly saveAll: (name: string, position: number, ids: readonly string[]) => void;

  constructor(options: SqliteCheckpointStoreOptions) {
    this.db = new Database(options.file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma(`synchronous = ${options.durability === 'normal' ? 'NORMAL' : 'FULL'}`);
    // The event store writes the same file from the same process; wait for its transactions.
    this.db.pragma('busy_timeout = 10000');
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS process_checkpoints (
        name TEXT PRIMARY KEY,
        position INTEGER NOT NULL
      ) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS process_customers (
        customer_id TEXT PRIMARY KEY,
        registered_position INTEGER NOT NULL
      ) WITHOUT ROWID;
    `);
    this.loadStmt = this.db.prepare('SELECT position FROM process_checkpoints WHERE name = ?');
    this.saveStmt = this.db.prepare(
      'INSERT INTO process_checkpoints (name, position) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET position = excluded.position',
    );
    this.indexStmt = this.db.prepare(
      'INSERT INTO process_customers (customer_id, registered_position) VALUES (?, ?) ON CONFLICT (customer_id) DO NOTHING',
    );
    this.pageStmt = this.db.prepare(
      'SELECT customer_id FROM process_customers WHERE customer_id > ? ORDER BY customer_id LIMIT ?',
    );
    this.saveAll = this.db.transaction((name: string, position: number, ids: readonly string[]) => {
      for (const id of ids) this.indexStmt.run(id, position);
      this.saveStmt.run(name, position);
    });
  }

  async load(name: string): Promise<number> {
    return this.loadStmt.get(name)?.position ?? 0;
  }

  async save(name: string, position: number, registeredCustomers: readonly string[] = []): Promise<void> {
    this.saveAll(name, position, registeredCustomers);
  }

  async customers(afterId: string | undefined, limit: number): Promise<string[]> {
    // '' sorts before every non-empty id, so it stands for "from the start".
    return this.pageStmt.all(afterId ?? '', limit).map((row) => row.customer_id);
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }
}
