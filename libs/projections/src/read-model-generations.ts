import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'pg';
import { PostgresReadModelStore, createSchemaUnderLock } from './postgres-read-model.store';
import type { ReadModelQueries, ReadModelStore } from './read-model-store';
import { SqliteReadModelStore } from './sqlite-read-model.store';

/**
 * Which store is live survives restarts: every rebuild writes a new generation (an SQLite file or
 * a PostgreSQL schema) and `promote` records it as current once the projector swapped to it.
 * Opening the current generation removes the ones a finished or crashed rebuild left behind.
 * Wire it as `freshStore: () => g.openFresh()` and `onSwap: (s) => g.promote(s)`.
 */
export interface ReadModelGenerations {
  openCurrent(): Promise<ReadModelStore>;
  openFresh(): Promise<ReadModelStore>;
  promote(store: ReadModelStore): Promise<void>;
  /**
   * the live generation as it is, for reading beside a running engine: nothing is created or
   * removed (a rebuild in progress keeps its files); `undefined` when no read models exist yet
   */
  openLive(): Promise<ReadModelStore | undefined>;
  /**
   * the generation the pointer names now (a file name or a schema), read through `reader` where the
   * pointer is a table; `undefined` when no generation was made current yet
   */
  currentName(reader: ReadModelQueries): Promise<string | undefined>;
  /** the generation `store` was opened as by these generations, if it was */
  nameOf(store: ReadModelStore): string | undefined;
  /** an empty store of the same kind outside the generations (a temp file or schema), removed by `discard` */
  openScratch(): Promise<{ store: ReadModelStore; discard(): Promise<void> }>;
  /**
   * Optional: removes every generation but the current one now, rather than at the next start. For
   * the process that swapped and closed the previous generation itself: a generation nobody folds
   * into any more would otherwise keep, until then, personal data erased since.
   */
  removeStale?(): Promise<void>;
}

/** the name of an SQLite read-model generation file; `CURRENT` names one */
export const READ_MODEL_FILE = /^read-models-(\d+)\.sqlite$/;

/** generations as `read-models-<n>.sqlite` in one directory; `CURRENT` names the live one */
export class SqliteReadModelGenerations implements ReadModelGenerations {
  private readonly files = new Map<ReadModelStore, string>();

  constructor(private readonly dir: string) {}

  async openCurrent(): Promise<ReadModelStore> {
    mkdirSync(this.dir, { recursive: true });
    const current = this.currentFile() ?? 'read-models-1.sqlite';
    this.removeAllBut(current);
    if (!this.currentFile()) this.writePointer(current);
    return this.open(current);
  }

  async removeStale(): Promise<void> {
    const current = this.currentFile();
    if (current) this.removeAllBut(current);
  }

  private removeAllBut(current: string): void {
    for (const name of readdirSync(this.dir)) {
      const base = name.replace(/-(wal|shm)$/, '');
      if (READ_MODEL_FILE.test(base) && base !== current) rmSync(join(this.dir, name), { force: true });
    }
  }

  async openFresh(): Promise<ReadModelStore> {
    mkdirSync(this.dir, { recursive: true });
    const numbers = readdirSync(this.dir).map((n) => READ_MODEL_FILE.exec(n)?.[1]).filter((n): n is string => n !== undefined).map(Number);
    const name = `read-models-${Math.max(0, ...numbers) + 1}.sqlite`;
    return this.open(name);
  }

  async promote(store: ReadModelStore): Promise<void> {
    const name = this.files.get(store);
    if (!name) throw new Error('promote: the store was not opened by these generations');
    this.writePointer(name);
  }

  async openLive(): Promise<ReadModelStore | undefined> {
    const current = this.currentFile();
    if (!current || !existsSync(join(this.dir, current))) return undefined;
    return this.open(current);
  }

  async currentName(): Promise<string | undefined> {
    return this.currentFile();
  }

  nameOf(store: ReadModelStore): string | undefined {
    return this.files.get(store);
  }

  async openScratch(): Promise<{ store: ReadModelStore; discard(): Promise<void> }> {
    const dir = mkdtempSync(join(tmpdir(), 'clientele-replay-'));
    const store = new SqliteReadModelStore(join(dir, 'scratch.sqlite'));
    return {
      store,
      async discard() {
        await store.close().catch(() => undefined);
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }

  private open(name: string): ReadModelStore {
    const store = new SqliteReadModelStore(join(this.dir, name));
    this.files.set(store, name);
    return store;
  }

  private currentFile(): string | undefined {
    const pointer = join(this.dir, 'CURRENT');
    if (!existsSync(pointer)) return undefined;
    const name = readFileSync(pointer, 'utf8').trim();
    return READ_MODEL_FILE.test(name) ? name : undefined;
  }

  /** write then rename: a crash leaves the old pointer or the new one, never half of one */
  private writePointer(name: string): void {
    const tmp = join(this.dir, 'CURRENT.tmp');
    writeFileSync(tmp, `${name}\n`);
    renameSync(tmp, join(this.dir, 'CURRENT'));
  }
}

/**
 * How long a PostgreSQL generation is kept after another one was made current: the engine
 * processes without the projector role read the pointer every 2 s and may query the old schema
 * until they follow (an SQLite file removed under a reader stays readable to it; a dropped schema
 * does not).
 */
export const STALE_GENERATION_GRACE_MS = 10_000;

/**
 * The longest read-model schema base: its generations `<base>_g<n>` must stay within PostgreSQL's
 * 63 characters.
 */
export const READ_MODEL_SCHEMA_MAX = 50;
const READ_MODEL_SCHEMA = new RegExp(`^[a-z_][a-z0-9_]{0,${READ_MODEL_SCHEMA_MAX - 1}}$`);

/** Whether `name` can be a read-model schema base (lower-case letters, digits and _, at most READ_MODEL_SCHEMA_MAX). */
export function isReadModelSchemaBase(name: string): boolean {
  return READ_MODEL_SCHEMA.test(name);
}

/** generations as schemas `<base>_g<n>`; the schema `<base>` holds the pointer */
export class PostgresReadModelGenerations implements ReadModelGenerations {
  private readonly schemas = new Map<ReadModelStore, string>();
  private staleDrop: NodeJS.Timeout | undefined;

  constructor(
    private readonly connectionString: string,
    private readonly base: string,
    private readonly staleGraceMs = STALE_GENERATION_GRACE_MS,
  ) {
    if (!isReadModelSchemaBase(base)) {
      throw new Error(`read-model schema base: expected lower-case letters, digits and _ (at most ${READ_MODEL_SCHEMA_MAX}), got "${base}"`);
    }
  }

  async openCurrent(): Promise<ReadModelStore> {
    return this.withPool(async (pool) => {
      await createSchemaUnderLock(pool, this.base, [
        `CREATE TABLE IF NOT EXISTS ${this.base}.current_generation (k INT PRIMARY KEY, schema_name TEXT NOT NULL)`,
      ]);
      const row = await pool.query<{ schema_name: string }>(`SELECT schema_name FROM ${this.base}.current_generation WHERE k = 1`);
      const current = row.rows[0]?.schema_name ?? `${this.base}_g1`;
      await pool.query(
        `INSERT INTO ${this.base}.current_generation (k, schema_name) VALUES (1, $1) ON CONFLICT (k) DO NOTHING`,
        [current],
      );
      await this.dropOlderThan(pool, current);
      return this.open(current);
    });
  }

  /**
   * The generations older than the current one, dropped STALE_GENERATION_GRACE_MS from now (in the
   * background: the projector goes on meanwhile), so erased personal data does not outlive a
   * rebuild in a schema nobody folds into any more until the next start. A process that stops
   * first leaves them to that start.
   */
  async removeStale(): Promise<void> {
    clearTimeout(this.staleDrop);
    this.staleDrop = setTimeout(() => {
      this.staleDrop = undefined;
      void this.withPool(async (pool) => {
        const row = await pool.query<{ schema_name: string }>(`SELECT schema_name FROM ${this.base}.current_generation WHERE k = 1`);
        if (row.rows[0]) await this.dropOlderThan(pool, row.rows[0].schema_name);
      }).catch(() => undefined);
    }, this.staleGraceMs);
    this.staleDrop.unref();
  }

  /**
   * Only generations older than `current`: a newer one may be a rebuild another engine process is
   * writing right now (an abandoned one is dropped once a later rebuild is promoted).
   */
  private async dropOlderThan(pool: Pool, current: string): Promise<void> {
    const currentNumber = this.generationNumber(current);
    for (const stale of await this.generationSchemas(pool)) {
      if (this.generationNumber(stale) < currentNumber) await pool.query(`DROP SCHEMA IF EXISTS ${stale} CASCADE`);
    }
  }

  async openFresh(): Promise<ReadModelStore> {
    const next = await this.withPool(async (pool) => {
      const numbers = (await this.generationSchemas(pool)).map((s) => this.generationNumber(s));
      return `${this.base}_g${Math.max(0, ...numbers) + 1}`;
    });
    return this.open(next);
  }

  async promote(store: ReadModelStore): Promise<void> {
    const schema = this.schemas.get(store);
    if (!schema) throw new Error('promote: the store was not opened by these generations');
    await this.withPool((pool) => pool.query(`UPDATE ${this.base}.current_generation SET schema_name = $1 WHERE k = 1`, [schema]));
  }

  async openLive(): Promise<ReadModelStore | undefined> {
    const current = await this.withPool(async (pool) => {
      const table = await pool.query<{ t: string | null }>('SELECT to_regclass($1) AS t', [`${this.base}.current_generation`]);
      if (!table.rows[0]?.t) return undefined;
      const row = await pool.query<{ schema_name: string }>(`SELECT schema_name FROM ${this.base}.current_generation WHERE k = 1`);
      return row.rows[0]?.schema_name;
    });
    return current === undefined ? undefined : this.open(current);
  }

  async currentName(reader: ReadModelQueries): Promise<string | undefined> {
    const row = await reader.get<{ schema_name: string }>(`SELECT schema_name FROM ${this.base}.current_generation WHERE k = 1`);
    return row?.schema_name;
  }

  nameOf(store: ReadModelStore): string | undefined {
    return this.schemas.get(store);
  }

  async openScratch(): Promise<{ store: ReadModelStore; discard(): Promise<void> }> {
    // outside the `<base>_g<n>` pattern, so no engine ever takes it for a generation
    const schema = `${this.base}_r${randomBytes(3).toString('hex')}`;
    const store = await PostgresReadModelStore.open({ connectionString: this.connectionString, schema });
    return {
      store,
      async discard() {
        await store.dropSchema().catch(() => undefined);
        await store.close().catch(() => undefined);
      },
    };
  }

  /** removes every generation and the pointer (tests, decommissioning) */
  async dropAll(): Promise<void> {
    await this.withPool(async (pool) => {
      for (const s of await this.generationSchemas(pool)) await pool.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`);
      await pool.query(`DROP SCHEMA IF EXISTS ${this.base} CASCADE`);
    });
  }

  private async open(schema: string): Promise<ReadModelStore> {
    const store = await PostgresReadModelStore.open({ connectionString: this.connectionString, schema });
    this.schemas.set(store, schema);
    return store;
  }

  private generationNumber(schema: string): number {
    return Number(schema.slice(this.base.length + 2));
  }

  private async generationSchemas(pool: Pool): Promise<string[]> {
    const rows = await pool.query<{ nspname: string }>('SELECT nspname FROM pg_namespace WHERE nspname ~ $1', [`^${this.base}_g[0-9]+$`]);
    return rows.rows.map((r) => r.nspname);
  }

  private async withPool<T>(work: (pool: Pool) => Promise<T>): Promise<T> {
    const pool = new Pool({ connectionString: this.connectionString, max: 1 });
    try {
      return await work(pool);
    } finally {
      await pool.end();
    }
  }
}
