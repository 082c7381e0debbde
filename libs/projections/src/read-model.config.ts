import { join, resolve } from 'node:path';
import { allProjections } from './all-projections';
import type { ProjectorOptions } from './projector';
import type { Projection } from './read-model-store';
import { DEFAULT_RESIDENT_LIMIT } from './resident-limit';
import { isReadModelSchemaBase, PostgresReadModelGenerations, READ_MODEL_SCHEMA_MAX, SqliteReadModelGenerations } from './read-model-generations';
import type { ReadModelGenerations } from './read-model-generations';

/** how the projector batches, and how many customers each rebuild instance keeps in memory */
interface FoldSettings {
  batchSize: number;
  rebuildBatchSize: number;
  residentLimit: number;
}

export type ReadModelConfig = ({ kind: 'sqlite'; dir: string } | { kind: 'postgres'; connectionString: string; schema: string }) & FoldSettings;

/** what the read models' default schema adds to the event store's schema name */
export const READ_MODEL_SCHEMA_SUFFIX = '_read_models';

/**
 * Where read models live and how the projector batches, from the environment:
 * `CLIENTELE_READ_MODELS` sqlite | postgres (default: postgres when `CLIENTELE_STORE=postgres`,
 * else sqlite); SQLite files in `CLIENTELE_DATA_DIR/read-models` (default `./data/read-models`);
 * PostgreSQL at `DATABASE_URL` in schemas named after `CLIENTELE_READ_MODELS_PG_SCHEMA`
 * (default: the event store's schema and `_read_models`, `clientele_read_models` for the default
 * store schema, so two logs in one database never fold into one set of read models);
 * `CLIENTELE_PROJECTOR_BATCH_SIZE` (default 1000),
 * `CLIENTELE_PROJECTOR_REBUILD_BATCH_SIZE` (default 25000) and
 * `CLIENTELE_REBUILD_RESIDENT_CUSTOMERS` (default 500000: the customers each read model's rebuild
 * keeps in memory, about 2.7 KB each across the three; past it they are written out and read back).
 */
export function readModelConfigFromEnv(env: NodeJS.ProcessEnv = process.env): ReadModelConfig {
  const kind = env.CLIENTELE_READ_MODELS || (env.CLIENTELE_STORE === 'postgres' ? 'postgres' : 'sqlite');
  const batchSize = positiveInt(env, 'CLIENTELE_PROJECTOR_BATCH_SIZE', 1000);
  const fold: FoldSettings = {
    batchSize,
    rebuildBatchSize: positiveInt(env, 'CLIENTELE_PROJECTOR_REBUILD_BATCH_SIZE', 25_000),
    residentLimit: positiveInt(env, 'CLIENTELE_REBUILD_RESIDENT_CUSTOMERS', DEFAULT_RESIDENT_LIMIT),
  };
  if (kind === 'sqlite') {
    return { kind, dir: join(resolve(env.CLIENTELE_DATA_DIR || './data'), 'read-models'), ...fold };
  }
  if (kind === 'postgres') {
    const connectionString = env.DATABASE_URL;
    if (!connectionString) {
      throw new Error('DATABASE_URL: expected a connection string such as postgres://user@host:5432/db when CLIENTELE_READ_MODELS=postgres');
    }
    const given = env.CLIENTELE_READ_MODELS_PG_SCHEMA;
    // the read models of a PostgreSQL log sit beside it: another log's engines (another
    // CLIENTELE_PG_SCHEMA in the same database) get read models of their own by default
    const storeSchema = env.CLIENTELE_STORE === 'postgres' ? env.CLIENTELE_PG_SCHEMA || 'clientele' : 'clientele';
    const schema = given || `${storeSchema}${READ_MODEL_SCHEMA_SUFFIX}`;
    if (!isReadModelSchemaBase(schema)) {
      const what = given ? 'CLIENTELE_READ_MODELS_PG_SCHEMA' : `CLIENTELE_READ_MODELS_PG_SCHEMA (unset, so derived from CLIENTELE_PG_SCHEMA)`;
      throw new Error(`${what}: expected lower-case letters, digits and _ (at most ${READ_MODEL_SCHEMA_MAX}), got ${JSON.stringify(schema)}`);
    }
    return { kind, connectionString, schema, ...fold };
  }
  throw new Error(`CLIENTELE_READ_MODELS: expected sqlite or postgres, got ${JSON.stringify(kind)}`);
}

/** the read models a process with this configuration folds: every one, with its rebuilds' resident limit */
export function configuredProjections(config: Pick<ReadModelConfig, 'residentLimit'>): Projection[] {
  return allProjections({ residentLimit: config.residentLimit });
}

export function readModelGenerations(config: ReadModelConfig): ReadModelGenerations {
  return config.kind === 'sqlite'
    ? new SqliteReadModelGenerations(config.dir)
    : new PostgresReadModelGenerations(config.connectionString, config.schema);
}

/** projector options that rebuild into new generations and remember the promoted one */
export function projectorOptions(config: ReadModelConfig, generations: ReadModelGenerations): ProjectorOptions {
  return {
    batchSize: config.batchSize,
    rebuildBatchSize: config.rebuildBatchSize,
    freshStore: () => generations.openFresh(),
    onSwap: (store) => generations.promote(store),
    ...(generations.removeStale ? { afterSwap: () => generations.removeStale!() } : {}),
  };
}

function positiveInt(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) < 1) throw new Error(`${name}: expected a whole number ≥ 1, got ${JSON.stringify(raw)}`);
  return Number(raw);
}
