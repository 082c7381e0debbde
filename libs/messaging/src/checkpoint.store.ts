import Database from 'better-sqlite3';

/**
 * Where a relay remembers how far it has published: the global position of the last event the
 * broker acknowledged. Saved only after the acknowledgement, so a crash re-publishes (at least
 * once) and never skips.
 */
export interface CheckpointStore {
  /** 0 when nothing was saved under this name */
  load(name: string): Promise<number>;
  save(name: string, position: number): Promise<void>;
}

export class InMemoryCheckpointStore implements CheckpointStore {
  private readonly positions = new Map<string, number>();

  async load(name: string): Promise<number> {
    return this.positions.get(name) ?? 0;
  }

  async save(name: string, position: number): Promise<void> {
    this.positions.set(name, position);
  }
}

/**
 * Checkpoints in a SQLite file, in their own table: the embedded event store's file can hold it
 * beside the events, or any other file can.
 */
export class SqliteCheckpointStore implements CheckpointStore {
  private readonly db: Database.Database;
  private readonly owned: boolean;
  private readonly selectStmt: Database.Statement<[string], { position: number }>;
  private readonly upsertStmt: Database.Statement<[string, number]>;

  /** `database`: a file path (opened and closed here) or an open connection (left open). */
  constructor(database: string | Database.Database) {
    this.owned = typeof database === 'string';
    this.db = typeof database === 'string' ? new Database(database) : database;
    if (this.owned) this.db.pragma('journal_mode = WAL');
    this.db.exec(
      `CREATE TABLE IF NOT EXISTS relay_checkpoints (
         name TEXT PRIMARY KEY,
         position INTEGER NOT NULL CHECK (position >= 0)
       )`,
    );
    this.selectStmt = this.db.prepare('SELECT position FROM relay_checkpoints WHERE name = ?');
    this.upsertStmt = this.db.prepare(
      'INSERT INTO relay_checkpoints (name, position) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET position = excluded.position',
    );
  }

  async load(name: string): Promise<number> {
    return this.selectStmt.get(name)?.position ?? 0;
  }

  async save(name: string, position: number): Promise<void> {
    if (!Number.isInteger(position) || position < 0) throw new Error(`checkpoint position: expected an integer >= 0, got ${position}`);
    this.upsertStmt.run(name, position);
  }

  close(): void {
    if (this.owned) this.db.close();
  }
}
