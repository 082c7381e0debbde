import { Kafka, logLevel, type KafkaConfig as KafkaJsConfig, type logCreator, type SASLOptions } from 'kafkajs';

/** How Clientele reaches a Kafka cluster and names its topics. */
export interface KafkaConfig {
  brokers: string[];
  clientId: string;
  /** prepended to every topic name, e.g. `clientele.` → `clientele.events` */
  topicPrefix: string;
  ssl: boolean;
  sasl?: { mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512'; username: string; password: string };
  /** partitions of topics Clientele creates (KAFKA_TOPIC_PARTITIONS); default 6 */
  partitions?: number;
  /** replication factor of topics Clientele creates (KAFKA_REPLICATION_FACTOR); default -1, the cluster's */
  replicationFactor?: number;
  /** most events the relay sends in one request (KAFKA_RELAY_BATCH_SIZE); default 2000, halved by itself while the broker refuses a request as too large */
  relayBatchSize?: number;
  /** kafkajs' own logging; default warnings and errors */
  logLevel?: logLevel;
  /** where kafkajs' own log entries go; default its console lines */
  logCreator?: logCreator;
}

export const DEFAULT_TOPIC_PREFIX = 'clientele.';

const MECHANISMS = ['plain', 'scram-sha-256', 'scram-sha-512'] as const;

/**
 * Reads KAFKA_BROKERS (comma separated, default 127.0.0.1:9092), KAFKA_CLIENT_ID (default
 * `clientele`), KAFKA_TOPIC_PREFIX (default `clientele.`), KAFKA_SSL (`true`/`false`, default false),
 * KAFKA_SASL_MECHANISM / KAFKA_SASL_USERNAME / KAFKA_SASL_PASSWORD (all three or none),
 * KAFKA_TOPIC_PARTITIONS and KAFKA_REPLICATION_FACTOR (for topics Clientele creates),
 * KAFKA_RELAY_BATCH_SIZE (most events per relay request, default 2000).
 */
export function kafkaConfigFromEnv(env: NodeJS.ProcessEnv = process.env): KafkaConfig {
  const brokers = (env.KAFKA_BROKERS ?? '127.0.0.1:9092')
    .split(',')
    .map((b) => b.trim())
    .filter((b) => b.length > 0);
  if (brokers.length === 0) throw new Error('KAFKA_BROKERS: expected host:port[,host:port…], got an empty list');
  for (const b of brokers) {
    if (!/^[^\s:]+:\d{1,5}$/.test(b)) throw new Error(`KAFKA_BROKERS: expected host:port, got "${b}"`);
  }
  const ssl = env.KAFKA_SSL ?? 'false';
  if (ssl !== 'true' && ssl !== 'false') throw new Error(`KAFKA_SSL: expected true or false, got "${ssl}"`);
  const topicPrefix = env.KAFKA_TOPIC_PREFIX ?? DEFAULT_TOPIC_PREFIX;
  // what Kafka allows in a topic name, with room left for the longest suffix
  if (!/^[A-Za-z0-9._-]{0,200}$/.test(topicPrefix)) {
    throw new Error(`KAFKA_TOPIC_PREFIX: expected letters, digits, '.', '_' or '-' (at most 200), as Kafka topic names take, got "${topicPrefix}"`);
  }
  const config: KafkaConfig = {
    brokers,
    clientId: env.KAFKA_CLIENT_ID || 'clientele',
    topicPrefix,
    ssl: ssl === 'true',
  };
  if (env.KAFKA_TOPIC_PARTITIONS) config.partitions = wholeNumber(env.KAFKA_TOPIC_PARTITIONS, 'KAFKA_TOPIC_PARTITIONS', 1);
  if (env.KAFKA_REPLICATION_FACTOR) config.replicationFactor = wholeNumber(env.KAFKA_REPLICATION_FACTOR, 'KAFKA_REPLICATION_FACTOR', -1);
  if (env.KAFKA_RELAY_BATCH_SIZE) config.relayBatchSize = wholeNumber(env.KAFKA_RELAY_BATCH_SIZE, 'KAFKA_RELAY_BATCH_SIZE', 1);
  const { KAFKA_SASL_MECHANISM: mechanism, KAFKA_SASL_USERNAME: username, KAFKA_SASL_PASSWORD: password } = env;
  if (mechanism || username || password) {
    const m = (mechanism ?? '').toLowerCase();
    if (!(MECHANISMS as readonly string[]).includes(m)) {
      throw new Error(`KAFKA_SASL_MECHANISM: expected one of ${MECHANISMS.join(', ')}, got "${mechanism ?? ''}"`);
    }
    if (!username) throw new Error('KAFKA_SASL_USERNAME: required when KAFKA_SASL_MECHANISM is set');
    if (!password) throw new Error('KAFKA_SASL_PASSWORD: required when KAFKA_SASL_MECHANISM is set');
    config.sasl = { mechanism: m as (typeof MECHANISMS)[number], username, password };
  }
  return config;
}

function wholeNumber(raw: string, variable: string, min: number): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || (variable === 'KAFKA_REPLICATION_FACTOR' && n === 0)) {
    throw new Error(`${variable}: expected a whole number >= ${min}${min < 0 ? ' other than 0' : ''}, got "${raw}"`);
  }
  return n;
}

/** `retry`: kafkajs' retries for this client instead of its defaults (see reachCluster) */
export function createKafka(config: KafkaConfig, tuning: Pick<KafkaJsConfig, 'retry'> = {}): Kafka {
  const options: KafkaJsConfig = {
    clientId: config.clientId,
    brokers: config.brokers,
    ssl: config.ssl,
    logLevel: config.logLevel ?? logLevel.WARN,
    ...tuning,
  };
  if (config.sasl) options.sasl = config.sasl as SASLOptions;
  if (config.logCreator) options.logCreator = config.logCreator;
  return new Kafka(options);
}
