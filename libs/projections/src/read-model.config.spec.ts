import { join, resolve } from 'node:path';
import { readModelConfigFromEnv } from './read-model.config';

describe('readModelConfigFromEnv', () => {
  it('defaults to SQLite files under the data directory with 1000-event batches', () => {
    expect(readModelConfigFromEnv({})).toEqual({ kind: 'sqlite', dir: join(resolve('./data'), 'read-models'), batchSize: 1000, rebuildBatchSize: 25_000 });
  });

  it('follows a PostgreSQL event store to PostgreSQL read models and reads the schema and batch sizes', () => {
    expect(
      readModelConfigFromEnv({
        CLIENTELE_STORE: 'postgres',
        DATABASE_URL: 'postgres://db/x',
        CLIENTELE_READ_MODELS_PG_SCHEMA: 'tenant_rm',
        CLIENTELE_PROJECTOR_BATCH_SIZE: '250',
      }),
    ).toEqual({ kind: 'postgres', connectionString: 'postgres://db/x', schema: 'tenant_rm', batchSize: 250, rebuildBatchSize: 25_000 });
  });

  it('names the variable and what it expected when a value is wrong', () => {
    expect(() => readModelConfigFromEnv({ CLIENTELE_READ_MODELS: 'mysql' })).toThrow('CLIENTELE_READ_MODELS: expected sqlite or postgres, got "mysql"');
    expect(() => readModelConfigFromEnv({ CLIENTELE_READ_MODELS: 'postgres' })).toThrow(/^DATABASE_URL: expected a connection string/);
    expect(() => readModelConfigFromEnv({ CLIENTELE_PROJECTOR_BATCH_SIZE: '0' })).toThrow('CLIENTELE_PROJECTOR_BATCH_SIZE: expected a whole number ≥ 1, got "0"');
    expect(() => readModelConfigFromEnv({ CLIENTELE_STORE: 'postgres', DATABASE_URL: 'postgres://db/x', CLIENTELE_READ_MODELS_PG_SCHEMA: 'Bad-Name' })).toThrow(
      /CLIENTELE_READ_MODELS_PG_SCHEMA: expected lower-case/,
    );
  });
});
