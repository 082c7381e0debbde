import type { Admin, ITopicConfig } from 'kafkajs';
import { DEFAULT_TOPIC_PREFIX } from './kafka-config';

export interface TopicNames {
  /** every stored event, keyed by stream id */
  events: string;
  /** lifecycle transitions, keyed by stream id */
  lifecycle: string;
  /** latest profile per customer, compacted, keyed by customer id */
  profiles: string;
  /** referral edges, keyed by the referrer's stream id */
  referrals: string;
  /** commands in from platforms */
  commands: string;
  /** commands that could not be accepted */
  commandsDeadLetter: string;
}

export function topicNames(prefix: string = DEFAULT_TOPIC_PREFIX): TopicNames {
  return {
    events: `${prefix}events`,
    lifecycle: `${prefix}lifecycle`,
    profiles: `${prefix}profiles`,
    referrals: `${prefix}referrals`,
    commands: `${prefix}commands`,
    commandsDeadLetter: `${prefix}commands.dlq`,
  };
}

export interface TopicSettings {
  topicPrefix: string;
  /** partitions of the keyed topics; order holds per key, so more partitions only add parallelism */
  partitions?: number;
  /** -1: the cluster's default.replication.factor */
  replicationFactor?: number;
  /** largest message a topic accepts (dead letters may carry an oversized original); default 4 MiB */
  maxMessageBytes?: number;
}

/** Creates Clientele's topics where missing (existing ones are left as they are). */
export async function ensureTopics(admin: Admin, settings: TopicSettings): Promise<TopicNames> {
  const names = topicNames(settings.topicPrefix);
  const partitions = settings.partitions ?? 6;
  const replicationFactor = settings.replicationFactor ?? -1;
  const maxBytes = String(settings.maxMessageBytes ?? 4 * 1024 * 1024);
  const topic = (name: string, numPartitions: number, config: Record<string, string> = {}): ITopicConfig => ({
    topic: name,
    numPartitions,
    replicationFactor,
    configEntries: Object.entries({ 'max.message.bytes': maxBytes, ...config }).map(([name, value]) => ({ name, value })),
  });
  const wanted: ITopicConfig[] = [
    topic(names.events, partitions),
    topic(names.lifecycle, partitions),
    // a consumer rebuilding its copy reads only the latest profile per customer
    topic(names.profiles, partitions, { 'cleanup.policy': 'compact' }),
    topic(names.referrals, partitions),
    topic(names.commands, partitions),
    topic(names.commandsDeadLetter, 1, { 'retention.ms': String(30 * 24 * 3600 * 1000) }),
  ];
  try {
    // only the missing ones: asking for existing topics makes kafkajs log an ERROR at every start
    const existing = new Set(await admin.listTopics());
    const missing = wanted.filter((t) => !existing.has(t.topic));
    // another process may create them meanwhile: kafkajs answers false when all already exist
    if (missing.length > 0) await admin.createTopics({ waitForLeaders: true, topics: missing });
  } catch (error) {
    throw topicCreationError(error);
  }
  return names;
}

/**
 * The cluster's reasons for refusing to create the topics, each with its topic, and the settings
 * that decide them; kafkajs keeps them in an aggregate error whose own message says only
 * "Topic creation errors".
 */
export function topicCreationError(error: unknown): Error {
  const inner = (error as { errors?: unknown[] }).errors;
  if (!Array.isArray(inner) || inner.length === 0) return error instanceof Error ? error : new Error(String(error));
  const reasons = inner.map((e) => {
    const { topic, type, message } = e as { topic?: string; type?: string; message?: string };
    return `${topic ?? '?'}: ${type ?? 'error'}${message ? ` (${message})` : ''}`;
  });
  const unique = [...new Set(reasons)];
  return new Error(
    `Kafka refused to create Clientele's topics: ${unique.join('; ')}. ` +
      'They follow KAFKA_TOPIC_PREFIX, KAFKA_TOPIC_PARTITIONS and KAFKA_REPLICATION_FACTOR (a replication factor above the number of brokers is refused, as is a prefix with characters a topic name cannot hold).',
    { cause: error },
  );
}

/**
 * Whether a kafkajs error, or one it wraps (`originalError`, `errors`), matches `test`: kafkajs
 * reports a broker's refusal inside retry and aggregate errors.
 */
export function kafkaErrorMatches(err: unknown, test: (e: { type?: string; message?: string }) => boolean): boolean {
  for (let e: unknown = err, depth = 0; e && depth < 5; depth += 1) {
    const inner = e as { type?: string; message?: string; originalError?: unknown; errors?: unknown[] };
    if (test(inner)) return true;
    if (Array.isArray(inner.errors) && inner.errors.some((x) => kafkaErrorMatches(x, test))) return true;
    e = inner.originalError;
  }
  return false;
}

/** the broker does not know a topic written to: it was deleted (or never made) on a cluster that does not create topics on use */
export function isUnknownTopic(err: unknown): boolean {
  return kafkaErrorMatches(err, ({ type, message }) => type === 'UNKNOWN_TOPIC_OR_PARTITION' || /does not host this topic-partition/i.test(message ?? ''));
}
