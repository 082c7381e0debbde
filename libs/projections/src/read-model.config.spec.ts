import { join, resolve } from 'node:path';
import { configuredProjections, readModelConfigFromEnv } from './read-model.config';

describe('readModelConfigFromEnv', () => {
  it('defaults to SQLite files under the data directory with 1000-event batches', () => {
    expect(readModelConfigFromEnv({})).toEqual({ kind: 'sqlite', dir: join(resolve('./data'), 'read-models'), batchSize: 1000, rebuildBatchSize: 25_000, residentLimit: 500_000 });
  });

  it('follows a PostgreSQL event store to PostgreSQL read models and reads the schema and batch sizes', () => {
    expect(
      readModelConfigFromEnv({
        CLIENTELE_STORE: 'postgres',
        DATABASE_URL: 'postgres://db/x',
        CLIENTELE_READ_MODELS_PG_SCHEMA: 'tenant_rm',
        CLIENTELE_PROJECTOR_BATCH_SIZE: '250',
        CLIENTELE_REBUILD_RESIDENT_CUSTOMERS: '20000',
      }),
    ).toEqual({ kind: 'postgres', connectionString: 'postgres://db/x', schema: 'tenant_rm', batchSize: 250, rebuildBatchSize: 25_000, residentLimit: 20_000 });
  });

  it('puts the read models of a PostgreSQL log beside it by default: two logs in one database never share read models', () => {
    const pg = { CLIENTELE_STORE: 'postgres', DATABASE_URL: 'postgres://db/x' };
    expect(readModelConfigFromEnv(pg)).toMatchObject({ kind: 'postgres', schema: 'clientele_read_models' });
    expect(readModelConfigFromEnv({ ...pg, CLIENTELE_PG_SCHEMA: 'staging' })).toMatchObject({ schema: 'staging_read_models' });
    expect(readModelConfigFromEnv({ ...pg, CLIENTELE_PG_SCHEMA: 'prod' })).toMatchObject({ schema: 'prod_read_models' });
    // the store on SQLite with read models on PostgreSQL: the store schema plays no part
    expect(readModelConfigFromEnv({ CLIENTELE_READ_MODELS: 'postgres', DATABASE_URL: 'postgres://db/x', CLIENTELE_PG_SCHEMA: 'ignored' })).toMatchObject({
      schema: 'clientele_read_models',
    });
    // a derived name too long for the generations' suffixes names both variables
    expect(() => readModelConfigFromEnv({ ...pg, CLIENTELE_PG_SCHEMA: 'x'.repeat(45) })).toThrow(
      /^CLIENTELE_READ_MODELS_PG_SCHEMA \(unset, so derived from CLIENTELE_PG_SCHEMA\): expected lower-case letters, digits and _ \(at most 50\), got "x{45}_read_models"$/,
    );
  });

  it('names the variable and what it expected when a value is wrong', () => {
    expect(() => readModelConfigFromEnv({ CLIENTELE_READ_MODELS: 'mysql' })).toThrow('CLIENTELE_READ_MODELS: expected sqlite or postgres, got "mysql"');
    expect(() => readModelConfigFromEnv({ CLIENTELE_READ_MODELS: 'postgres' })).toThrow(/^DATABASE_URL: expected a connection string/);
    expect(() => readModelConfigFromEnv({ CLIENTELE_PROJECTOR_BATCH_SIZE: '0' })).toThrow('CLIENTELE_PROJECTOR_BATCH_SIZE: expected a whole number ≥ 1, got "0"');
    expect(() => readModelConfigFromEnv({ CLIENTELE_REBUILD_RESIDENT_CUSTOMERS: '5e5' })).toThrow('CLIENTELE_REBUILD_RESIDENT_CUSTOMERS: expected a whole number ≥ 1, got "5e5"');
    expect(() => readModelConfigFromEnv({ CLIENTELE_STORE: 'postgres', DATABASE_URL: 'postgres://db/x', CLIENTELE_READ_MODELS_PG_SCHEMA: 'Bad-Name' })).toThrow(
      /CLIENTELE_READ_MODELS_PG_SCHEMA: expected lower-case/,
    );
  });

  it("given a resident limit, then every read model's rebuild instance keeps at most that many customers", () => {
    const projections = configuredProjections(readModelConfigFromEnv({ CLIENTELE_REBUILD_RESIDENT_CUSTOMERS: '1234' }));
    expect(projections.map((p) => p.name)).toEqual(['profiles', 'referrals', 'statistics']);
    for (const p of projections) {
      const rebuild = p.forRebuild?.() as unknown as { residentLimit: number } | undefined;
      expect(rebuild?.residentLimit).toBe(1234);
    }
  });
});
