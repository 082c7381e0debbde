import Database from 'better-sqlite3';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Client } from 'pg';
import { anchorWatch, assertPostgresSchemaName, type ChainReport, type StoredEvent } from '@clientele/event-store';
import { numberPlaceholders, READ_MODEL_FILE, readLogAnchor, type LogAnchor, type ReadModelConfig, type ReadModelQueries, type SqlParam } from '@clientele/projections';

/**
 * Where a set of read models is: the generations of a data directory or read-model directory (the
 * one its `CURRENT` names), one SQLite read-model file, or PostgreSQL (a read-model schema base,
 * whose pointer names the current generation, or a generation schema itself).
 */
export type ReadModelsLocation = { kind: 'sqlite'; path: string } | { kind: 'postgres'; url: string; schema: string };

/** The anchor of the read models found at a location, and where exactly they were. */
export interface ReadModelsAnchor {
  /** the file, or `PostgreSQL schema <name>`, that holds the read models read */
  where: string;
  /** `undefined` when they folded nothing yet, or were written before the anchor existed */
  anchor: LogAnchor | undefined;
}

/** whether PostgreSQL can take `name` as a schema, by the store's own rule */
function isSchemaName(name: string): boolean {
  try {
    assertPostgresSchemaName(name);
    return true;
  } catch {
    return false;
  }
}

/** the read models the engine configuration names (CLIENTELE_READ_MODELS, CLIENTELE_DATA_DIR, CLIENTELE_READ_MODELS_PG_SCHEMA) */
export function configuredReadModels(config: ReadModelConfig): ReadModelsLocation {
  return config.kind === 'sqlite' ? { kind: 'sqlite', path: config.dir } : { kind: 'postgres', url: config.connectionString, schema: config.schema };
}

/**
 * `postgres:<url>[#schema]` (or a bare `postgres://…` URL; the schema defaults to
 * `clientele_read_models`), `sqlite:<path>`, or a path: a data directory, a read-model directory
 * or a read-model file. Errors name `option`.
 */
export function parseReadModelsLocation(text: string, option: string): ReadModelsLocation {
  const pg = /^postgres(?:ql)?:\/\//.test(text) ? text : text.startsWith('postgres:') ? text.slice('postgres:'.length) : undefined;
  if (pg !== undefined) {
    const hash = pg.indexOf('#');
    const url = hash < 0 ? pg : pg.slice(0, hash);
    const schema = hash < 0 ? 'clientele_read_models' : pg.slice(hash + 1);
    if (!/^postgres(?:ql)?:\/\//.test(url)) throw new Error(`${option}: expected postgres:postgres://user@host:port/db[#schema], got ${JSON.stringify(text)}`);
    if (!isSchemaName(schema)) throw new Error(`${option}: expected a schema of lower-case letters, digits and _, got ${JSON.stringify(schema)}`);
    return { kind: 'postgres', url, schema };
  }
  const path = text.startsWith('sqlite:') ? text.slice('sqlite:'.length) : text;
  if (path === '') throw new Error(`${option}: expected a data directory, a read-model directory or file, or postgres:<url>[#schema]`);
  return { kind: 'sqlite', path: resolve(path) };
}

/**
 * The anchor the read models at `location` keep, read without writing anything (an SQLite file is
 * opened read-only, a PostgreSQL schema only queried); `undefined` when no read models are there.
 * A path that exists but holds no read models is refused by `option`'s name.
 */
export async function readReadModelsAnchor(location: ReadModelsLocation, option: string): Promise<ReadModelsAnchor | undefined> {
  return location.kind === 'sqlite' ? readSqliteAnchor(location.path, option) : readPostgresAnchor(location.url, location.schema, option);
}

async function readSqliteAnchor(path: string, option: string): Promise<ReadModelsAnchor | undefined> {
  if (!existsSync(path)) return undefined;
  let file = path;
  if (statSync(path).isDirectory()) {
    // a data directory holds its read models in read-models/; a read-model directory holds CURRENT itself
    const dir = existsSync(join(path, 'CURRENT')) ? path : join(path, 'read-models');
    const pointer = join(dir, 'CURRENT');
    if (!existsSync(pointer)) return undefined;
    const name = readFileSync(pointer, 'utf8').trim();
    if (!READ_MODEL_FILE.test(name)) throw new Error(`${option}: ${pointer} names no read-model generation (${JSON.stringify(name)})`);
    file = join(dir, name);
    if (!existsSync(file)) return undefined;
  }
  let db: Database.Database;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
  } catch (error) {
    throw new Error(`${option}: ${file} cannot be opened as an SQLite file (${(error as Error).message})`);
  }
  try {
    const queries: ReadModelQueries = {
      dialect: 'sqlite',
      all: async <T>(sql: string, params: SqlParam[] = []) => db.prepare(sql).all(...params) as T[],
      get: async <T>(sql: string, params: SqlParam[] = []) => db.prepare(sql).get(...params) as T | undefined,
    };
    try {
      return { where: file, anchor: await readLogAnchor(queries) };
    } catch (error) {
      throw new Error(`${option}: ${file} is not an SQLite database of read models (${(error as Error).message})`);
    }
  } finally {
    db.close();
  }
}

async function readPostgresAnchor(url: string, schema: string, option: string): Promise<ReadModelsAnchor | undefined> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    const exists = async (table: string) => (await client.query<{ t: string | null }>('SELECT to_regclass($1)::text AS t', [table])).rows[0]?.t != null;
    let generation = schema;
    // a schema base holds the pointer to its current generation; a generation holds the read models
    if (await exists(`${schema}.current_generation`)) {
      const row = await client.query<{ schema_name: string }>(`SELECT schema_name FROM ${schema}.current_generation WHERE k = 1`);
      const current = row.rows[0]?.schema_name;
      if (current === undefined) return undefined;
      if (!isSchemaName(current)) throw new Error(`${option}: ${schema}.current_generation names no schema (${JSON.stringify(current)})`);
      generation = current;
    }
    const found = (await client.query<{ n: string }>('SELECT COUNT(*)::text AS n FROM information_schema.schemata WHERE schema_name = $1', [generation])).rows[0]?.n !== '0';
    if (!found) return undefined;
    const queries: ReadModelQueries = {
      dialect: 'postgres',
      all: async <T>(sql: string, params: SqlParam[] = []) => (await client.query(numberPlaceholders(sql), params)).rows as T[],
      get: async <T>(sql: string, params: SqlParam[] = []) => (await client.query(numberPlaceholders(sql), params)).rows[0] as T | undefined,
    };
    await client.query(`SET search_path TO ${generation}`);
    return { where: `PostgreSQL schema ${generation}`, anchor: await readLogAnchor(queries) };
  } finally {
    await client.end();
  }
}

/** what the verification found at the read models' anchor */
export type ReadModelsAnchorStatus = 'held' | 'other_hash' | 'ends_before' | 'not_reached';

/** the read models' anchor as `audit verify --json` reports it */
export interface ReadModelsAnchorReport {
  where: string;
  position: number;
  hash: string;
  status: ReadModelsAnchorStatus;
  /** with `other_hash`: the hash the log has at that position */
  logHash?: string;
}

/**
 * Holds a verification to the anchor of a set of read models, as `--expect` holds it to a noted
 * one (`anchorWatch` judges; this adds what was found there, and a break that names the read models
 * and both of its causes: the anchor cannot tell a rewritten or cut log from another log).
 */
export function readModelsAnchorWatch(found: ReadModelsAnchor & { anchor: LogAnchor }): {
  tap(events: AsyncIterable<StoredEvent>): AsyncIterable<StoredEvent>;
  /** `walked`: the chain's own report, before any anchor judged it; `report`: as judged so far */
  judge(walked: ChainReport, report: ChainReport): { report: ChainReport; anchor: ReadModelsAnchorReport };
} {
  const { anchor, where } = found;
  const watch = anchorWatch(anchor);
  let seen: StoredEvent | undefined;
  return {
    async *tap(events) {
      for await (const e of watch.tap(events)) {
        if (e.position === anchor.position) seen = e;
        yield e;
      }
    },
    judge(walked, report) {
      const status: ReadModelsAnchorStatus = seen ? (seen.hash === anchor.hash ? 'held' : 'other_hash') : walked.ok ? 'ends_before' : 'not_reached';
      const judged = watch.judge(report);
      const b = judged.firstBreak;
      const theirs = status !== 'held' && status !== 'not_reached' && b !== undefined && b !== report.firstBreak && b.position === anchor.position;
      const detail =
        status === 'other_hash'
          ? `hash ${seen!.hash.slice(0, 12)}…, the read models in ${where} folded ${anchor.hash.slice(0, 12)}… there: this log was rewritten up to here after they folded it, or they were folded from another log`
          : `the log ends at position ${walked.lastPosition}, before position ${anchor.position}, the last event the read models in ${where} folded: events were cut from its end after they folded it, or they were folded from another log`;
      return {
        report: theirs ? { ...judged, firstBreak: { ...b, detail } } : judged,
        anchor: { where, position: anchor.position, hash: anchor.hash, status, ...(status === 'other_hash' ? { logHash: seen!.hash } : {}) },
      };
    },
  };
}

/** the line a text report adds about the read models' anchor, when the break above does not already say it */
export function readModelsAnchorLine(a: ReadModelsAnchorReport): string | undefined {
  if (a.status === 'held') return `read models' anchor (${a.where}): position ${a.position} still has hash ${a.hash}`;
  if (a.status === 'not_reached') return `read models' anchor (${a.where}, position ${a.position}) not judged: the chain breaks before it`;
  return undefined;
}
