import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadEngineConfig } from './engine.config';

describe('loadEngineConfig', () => {
  it('given no variables, then the documented defaults apply', () => {
    const config = loadEngineConfig({});
    expect(config).toMatchObject({
      port: 3000,
      store: 'sqlite',
      durability: 'full',
      processManager: true,
      batchConcurrency: 64,
      maxBatchItems: 5000,
      maxBodyBytes: 262144,
      maxBatchBodyBytes: 10485760,
      policy: { repeatPurchaseThreshold: 2, advocateMinConvertedReferrals: 1, promoterMinScore: 9, churnAfterDays: 180 },
      jsonLogs: false,
    });
    expect(config.dataDir.endsWith('/data')).toBe(true);
  });

  it('given policy thresholds and switches, then they are read', () => {
    const config = loadEngineConfig({
      NODE_ENV: 'production',
      CLIENTELE_REPEAT_PURCHASE_THRESHOLD: '3',
      CLIENTELE_CHURN_AFTER_DAYS: '90',
      CLIENTELE_DURABILITY: 'normal',
      CLIENTELE_PROCESS_MANAGER: 'off',
    });
    expect(config).toMatchObject({ durability: 'normal', processManager: false, jsonLogs: true });
    expect(config.policy).toMatchObject({ repeatPurchaseThreshold: 3, churnAfterDays: 90 });
  });

  it.each([
    ['PORT', 'eighty'],
    ['PORT', '70000'],
    ['CLIENTELE_STORE', 'mongodb'],
    ['CLIENTELE_DURABILITY', 'sometimes'],
    ['CLIENTELE_REPEAT_PURCHASE_THRESHOLD', '0'],
    ['CLIENTELE_PROMOTER_MIN_SCORE', '11'],
    ['CLIENTELE_CHURN_AFTER_DAYS', '-5'],
    ['CLIENTELE_PROCESS_MANAGER', 'maybe'],
    ['CLIENTELE_ROLES', 'http,bogus'],
    ['CLIENTELE_OPS_PORT', 'ninety'],
  ])('given %s=%s, then start-up fails naming the variable', (name, value) => {
    expect(() => loadEngineConfig({ [name]: value })).toThrow(ConfigError);
    expect(() => loadEngineConfig({ [name]: value })).toThrow(new RegExp(`^${name}: expected .*got "${value}"`));
  });

  it('given a role that does not exist, then the message names it once, with the roles there are', () => {
    expect(() => loadEngineConfig({ CLIENTELE_ROLES: 'http,bogus' })).toThrow(
      'CLIENTELE_ROLES: expected a list of relay, ingest, http, projector ("bogus" is not one), got "http,bogus"',
    );
  });

  it.each([
    [{ KAFKA_BROKERS: 'localhost' }, 'KAFKA_BROKERS: expected host:port, got "localhost"'],
    [{ KAFKA_SSL: 'yes' }, 'KAFKA_SSL: expected true or false, got "yes"'],
    [{ KAFKA_TOPIC_PARTITIONS: '0' }, 'KAFKA_TOPIC_PARTITIONS: expected a whole number >= 1, got "0"'],
  ])('given Kafka on and %j, then start-up fails naming the variable, before the app boots', (kafka, message) => {
    expect(() => loadEngineConfig({ CLIENTELE_KAFKA: 'on', ...kafka })).toThrow(ConfigError);
    expect(() => loadEngineConfig({ CLIENTELE_KAFKA: 'on', ...kafka })).toThrow(message);
    // without Kafka the broker settings are not read
    expect(() => loadEngineConfig(kafka)).not.toThrow();
  });

  describe('given PostgreSQL settings that cannot work, then start-up fails naming the variable, before anything is created', () => {
    const pg = { CLIENTELE_STORE: 'postgres', DATABASE_URL: 'postgres://app:s3cret@db:5432/crm' };
    it.each([
      [{ DATABASE_URL: undefined }, 'DATABASE_URL: expected a connection string such as postgres://user@host:5432/db when CLIENTELE_STORE=postgres, got ""'],
      [{ DATABASE_URL: 'notaurl' }, 'DATABASE_URL: expected a PostgreSQL connection string such as postgres://user@host:5432/db, got "notaurl"'],
      // the password is not repeated in the message
      [{ DATABASE_URL: 'mysql://app:s3cret@db/crm' }, 'DATABASE_URL: expected a PostgreSQL connection string such as postgres://user@host:5432/db, got "mysql://app:…@db/crm"'],
      [{ CLIENTELE_PG_SCHEMA: 'crm-live' }, 'CLIENTELE_PG_SCHEMA: expected a lower-case PostgreSQL identifier (letters, digits, underscore; at most 63), got "crm-live"'],
      [
        { CLIENTELE_PG_SCHEMA: 'c'.repeat(39) },
        `CLIENTELE_PG_SCHEMA: expected at most 38 characters while CLIENTELE_READ_MODELS_PG_SCHEMA is unset (the read models' schema is named after it, with _read_models, in at most 50), got "${'c'.repeat(39)}"`,
      ],
      [{ CLIENTELE_READ_MODELS_PG_SCHEMA: 'rm-x' }, 'CLIENTELE_READ_MODELS_PG_SCHEMA: expected lower-case letters, digits and _ (at most 50), got "rm-x"'],
    ])('%j', (settings, message) => {
      const env = { ...pg, ...settings };
      expect(() => loadEngineConfig(env)).toThrow(ConfigError);
      expect(() => loadEngineConfig(env)).toThrow(message);
    });

    it('a master key that is not 32 bytes of base64 is named, without its value', () => {
      expect(() => loadEngineConfig({ CLIENTELE_MASTER_KEY: 'notbase64' })).toThrow(
        'CLIENTELE_MASTER_KEY: expected 32 bytes encoded as base64 (44 characters), got "6 bytes once decoded"',
      );
    });

    it('a read-model schema is not checked by a process that keeps no read models', () => {
      expect(() => loadEngineConfig({ ...pg, CLIENTELE_READ_MODELS_PG_SCHEMA: 'rm-x', CLIENTELE_ROLES: 'relay' })).not.toThrow();
      expect(loadEngineConfig({ ...pg, CLIENTELE_PG_SCHEMA: 'c'.repeat(38) }).storage.store).toMatchObject({ schema: 'c'.repeat(38) });
    });
  });
});

describe('loadEngineConfig: the read models and Kafka settings come from the environment it is given', () => {
  it('given read models and Kafka settings in the environment passed, then the config holds them, whatever the process environment says', () => {
    const config = loadEngineConfig({
      CLIENTELE_DATA_DIR: '/tmp/clientele-config-spec',
      CLIENTELE_READ_MODELS: 'postgres',
      DATABASE_URL: 'postgres://someone@db.example:5432/crm',
      CLIENTELE_READ_MODELS_PG_SCHEMA: 'crm_views',
      CLIENTELE_KAFKA: 'on',
      KAFKA_BROKERS: 'broker-1.example:9092',
    });
    expect(config.readModels).toMatchObject({ kind: 'postgres', connectionString: 'postgres://someone@db.example:5432/crm', schema: 'crm_views' });
    expect(config.kafka?.brokers).toEqual(['broker-1.example:9092']);
  });

  it('given a process without the http and projector roles, then it holds no read-model settings', () => {
    const config = loadEngineConfig({ CLIENTELE_DATA_DIR: '/tmp/clientele-config-spec', CLIENTELE_ROLES: 'relay', KAFKA_BROKERS: 'broker-1.example:9092' });
    expect(config.readModels).toBeUndefined();
    expect(config.kafka?.brokers).toEqual(['broker-1.example:9092']);
  });
});

describe('loadEngineConfig: the data directory', () => {
  it('given CLIENTELE_DATA_DIR naming a file, then it is a configuration error naming the variable, before anything is opened', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'clientele-config-file-')), 'not-a-dir');
    writeFileSync(file, 'x');
    expect(() => loadEngineConfig({ CLIENTELE_DATA_DIR: file })).toThrow(ConfigError);
    expect(() => loadEngineConfig({ CLIENTELE_DATA_DIR: file })).toThrow(`CLIENTELE_DATA_DIR: expected a directory (made when missing), not a file, got "${file}"`);
  });
});
