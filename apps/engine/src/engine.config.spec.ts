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
});
