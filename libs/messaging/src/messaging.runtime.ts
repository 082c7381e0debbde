import type { EventStore } from '@clientele/event-store';
import { Counter, Gauge, type Registry } from 'prom-client';
import { Partitioners, type Admin, type Kafka, type Producer } from 'kafkajs';
import type { CheckpointStore } from './checkpoint.store';
import { CommandIngest, type CommandBatchDispatch, type CommandDispatch, type IngestStats } from './command-ingest';
import { EventRelay, RELAY_CHECKPOINT, type RelayLogger, type RelayStats } from './event-relay';
import { createKafka, type KafkaConfig } from './kafka-config';
import { ProfileSnapshotFeed, publishProfileSnapshots, type ProfileSnapshotStats, type ProfileSource } from './profile-snapshots';
import { ensureTopics, isUnknownTopic, type TopicNames } from './topics';

/** Which of the Kafka parts a process runs. */
export interface MessagingRoles {
  relay: boolean;
  ingest: boolean;
}

const ROLES = ['relay', 'ingest', 'http', 'projector'] as const;

/**
 * The Kafka roles asked for by the environment: CLIENTELE_ROLES (comma separated: relay, ingest,
 * http, projector) when set, else CLIENTELE_KAFKA=on for both relay and ingest (off, the default:
 * neither). The http and projector roles are the engine's; they are accepted and checked here so
 * one variable names everything a process does.
 */
export function messagingRolesFromEnv(env: NodeJS.ProcessEnv = process.env): MessagingRoles {
  const listed = env.CLIENTELE_ROLES?.trim();
  if (listed) {
    const roles = listed.split(',').map((r) => r.trim().toLowerCase()).filter((r) => r.length > 0);
    for (const r of roles) {
      if (!(ROLES as readonly string[]).includes(r)) throw new Error(`CLIENTELE_ROLES: expected a list of ${ROLES.join(', ')}, got "${r}"`);
    }
    return { relay: roles.includes('relay'), ingest: roles.includes('ingest') };
  }
  const kafka = (env.CLIENTELE_KAFKA ?? 'off').trim().toLowerCase();
  if (kafka !== 'on' && kafka !== 'off') throw new Error(`CLIENTELE_KAFKA: expected on or off, got "${env.CLIENTELE_KAFKA ?? ''}"`);
  return { relay: kafka === 'on', ingest: kafka === 'on' };
}

export interface StartMessagingOptions {
  /** the store the relay reads: hand it the raw (encrypted) store, the relay strips personal fields */
  store: EventStore;
  /** the ingest's commands, one at a time (up to `ingestConcurrency` at once); give this or `dispatchBatch` */
  dispatch?: CommandDispatch;
  /** the ingest's commands, a fetched batch per call (the application's bulk path); preferred when given */
  dispatchBatch?: CommandBatchDispatch;
  checkpoints: CheckpointStore;
  config: KafkaConfig;
  roles: MessagingRoles;
  /** metrics go here; none are registered without one */
  registry?: Registry;
  logger?: RelayLogger;
  /** consumer group of the ingest; default `<clientId>-ingest` */
  groupId?: string;
  /** how often the ingest's per-partition lag is fetched from the cluster; default 15 s */
  lagIntervalMs?: number;
  /** with `dispatch`: commands of one fetched batch handled at once (same key still in order); default 32 */
  ingestConcurrency?: number;
  /** partitions of the commands topic the ingest handles at the same time; default 6 */
  ingestPartitionsAtOnce?: number;
  /** relay tuning; see EventRelayOptions */
  relayBatchSize?: number;
  relayLingerMs?: number;
  /**
   * the read models' profiles: with the relay role, the latest profile of every customer a projected
   * batch touched goes to the compacted profiles topic (see ProfileSnapshotFeed)
   */
  profiles?: ProfileSource;
  /** a Kafka client to use instead of one made from `config` (tests, benchmarks) */
  kafka?: Kafka;
}

export interface MessagingStats {
  relay?: RelayStats;
  /** lag: committed offsets behind the high watermarks, as last fetched from the cluster */
  ingest?: IngestStats & { lagByPartition: Record<number, number> };
  profileSnapshots?: ProfileSnapshotStats;
}

export interface MessagingRuntime {
  readonly topics: TopicNames;
  stats(): Promise<MessagingStats>;
  /** the ingest's lag per partition, fetched now (also done every lagIntervalMs) */
  refreshIngestLag(): Promise<Record<number, number>>;
  stop(): Promise<void>;
}

/**
 * Starts the Kafka side of the engine: makes sure the topics exist, then runs the relay and/or the
 * ingest and exposes their figures as Prometheus metrics. Stopping ends both and removes the metrics,
 * so a process can start messaging again (a test, a reconfiguration).
 */
export async function startMessaging(options: StartMessagingOptions): Promise<MessagingRuntime> {
  const { config, roles } = options;
  const kafka = options.kafka ?? createKafka(config);
  await reachCluster(config);
  const admin = kafka.admin();
  await admin.connect();
  let relay: EventRelay | undefined;
  let ingest: CommandIngest | undefined;
  let snapshots: ProfileSnapshotFeed | undefined;
  let snapshotProducer: Producer | undefined;
  let timer: NodeJS.Timeout | undefined;
  const metricNames: string[] = [];
  try {
    const topicSettings = { topicPrefix: config.topicPrefix, partitions: config.partitions ?? 6, replicationFactor: config.replicationFactor ?? -1 };
    const topics = await ensureTopics(admin, topicSettings);
    // A topic deleted while the engine runs is made again by whichever part finds it missing, with
    // an admin client of its own: the long-lived one tracks the topics it was asked about (the lag
    // fetch asks about the commands topic) and refreshes their metadata before any request, so once
    // one of them is gone every request it makes fails, creating the topic included.
    const recreateTopics = async (): Promise<void> => {
      const fresh = kafka.admin();
      await fresh.connect();
      try {
        await ensureTopics(fresh, topicSettings);
      } finally {
        await fresh.disconnect().catch(() => undefined);
      }
    };
    const groupId = options.groupId ?? `${config.clientId}-ingest`;
    let lagByPartition: Record<number, number> = {};
    const refreshIngestLag = async (): Promise<Record<number, number>> => {
      lagByPartition = await ingestLag(admin, groupId, topics.commands);
      return lagByPartition;
    };

    if (roles.relay) {
      relay = new EventRelay({
        store: options.store,
        kafka,
        topics,
        checkpoints: options.checkpoints,
        ...((options.relayBatchSize ?? options.config.relayBatchSize) !== undefined && { batchSize: options.relayBatchSize ?? options.config.relayBatchSize }),
        ...(options.relayLingerMs !== undefined && { lingerMs: options.relayLingerMs }),
        ...(options.logger && { logger: options.logger }),
        recreateTopics,
      });
      relay.start();
      if (options.profiles) {
        const profilesTopic = topics.profiles;
        // connected on first use and dropped after a failure, so a broker that comes back is found again
        const publish = async (batch: Parameters<typeof publishProfileSnapshots>[2]): Promise<void> => {
          if (!snapshotProducer) {
            const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
            await producer.connect();
            snapshotProducer = producer;
          }
          try {
            await publishProfileSnapshots(snapshotProducer, profilesTopic, batch);
          } catch (err) {
            const broken = snapshotProducer;
            snapshotProducer = undefined;
            await broken.disconnect().catch(() => undefined);
            // the feed retries; the topic is there again for that retry
            if (isUnknownTopic(err)) await recreateTopics().catch(() => undefined);
            throw err;
          }
        };
        snapshots = new ProfileSnapshotFeed({
          source: options.profiles,
          store: options.store,
          checkpoints: options.checkpoints,
          publish,
          ...(options.logger && { logger: options.logger }),
        });
        await snapshots.start();
      }
    }
    if (roles.ingest) {
      ingest = new CommandIngest({
        kafka,
        topics,
        groupId,
        ...(options.dispatchBatch ? { dispatchBatch: options.dispatchBatch } : { dispatch: options.dispatch }),
        concurrency: options.ingestConcurrency ?? 32,
        partitionsAtOnce: options.ingestPartitionsAtOnce ?? 6,
        ...(options.logger && { logger: options.logger }),
        recreateTopics,
      });
      await ingest.start();
      const every = options.lagIntervalMs ?? 15_000;
      const refresh = (): void => {
        refreshIngestLag().catch((err: unknown) => options.logger?.warn({ err }, 'could not fetch the ingest lag'));
      };
      // once at start too: a backlog waiting for a new process is its lag from the first answer, not 0 for an interval
      refresh();
      timer = setInterval(refresh, every);
      timer.unref();
    }

    const stats = async (): Promise<MessagingStats> => {
      const out: MessagingStats = {};
      if (relay) out.relay = await relay.stats();
      if (snapshots) out.profileSnapshots = snapshots.stats();
      if (ingest) {
        const s = ingest.stats();
        out.ingest = { ...s, lag: Object.values(lagByPartition).reduce((a, b) => a + b, 0), lagByPartition: { ...lagByPartition } };
      }
      return out;
    };
    if (options.registry) metricNames.push(...registerMessagingMetrics(options.registry, stats, { ...roles, profileSnapshots: snapshots !== undefined }));

    return {
      topics,
      stats,
      refreshIngestLag,
      async stop() {
        if (timer) clearInterval(timer);
        await Promise.all([relay?.stop(), ingest?.stop(), snapshots?.stop()]);
        await snapshotProducer?.disconnect().catch(() => undefined);
        for (const name of metricNames) options.registry?.removeSingleMetric(name);
        await admin.disconnect();
      },
    };
  } catch (err) {
    if (timer) clearInterval(timer);
    await Promise.allSettled([relay?.stop(), ingest?.stop(), snapshots?.stop()]);
    await snapshotProducer?.disconnect().catch(() => undefined);
    for (const name of metricNames) options.registry?.removeSingleMetric(name);
    await admin.disconnect().catch(() => undefined);
    throw err;
  }
}

/**
 * kafkajs' connection tries when a start first reaches for the cluster: one try and one retry,
 * 300 ms apart, instead of the client's six over about 10 s.
 */
const START_CONNECT_RETRIES = 1;

/**
 * Connects to the cluster and lets go, failing after START_CONNECT_RETRIES: with every broker down,
 * a start fails in about a second and the caller's own loop decides when to try again (the engine
 * pauses 1 s, 2 s, … 30 s), and a stop waits for no more than that second. kafkajs' default retries
 * stay on every other operation, where a broker that is reachable may still be settling (leaders of
 * a topic just made, a group coordinator moving).
 */
async function reachCluster(config: KafkaConfig): Promise<void> {
  // a client of its own: kafkajs retries connections with the client's settings, not the admin's
  const probe = createKafka(config, { retry: { retries: START_CONNECT_RETRIES } }).admin();
  try {
    await probe.connect();
  } finally {
    await probe.disconnect().catch(() => undefined);
  }
}

/** Per partition: the high watermark minus the group's committed offset (the low watermark when none). */
async function ingestLag(admin: Admin, groupId: string, topic: string): Promise<Record<number, number>> {
  const [ends, committed] = await Promise.all([admin.fetchTopicOffsets(topic), admin.fetchOffsets({ groupId, topics: [topic] })]);
  const committedBy = new Map((committed[0]?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]));
  const lag: Record<number, number> = {};
  for (const end of ends) {
    const c = committedBy.get(end.partition) ?? -1;
    const from = c >= 0 ? c : Number(end.low);
    lag[end.partition] = Math.max(0, Number(end.high) - from);
  }
  return lag;
}

/** The figures of a relay that does not run (yet): where its checkpoint stands against the log. */
export async function relayStatsAtRest(store: Pick<EventStore, 'headPosition'>, checkpoints: CheckpointStore, name = RELAY_CHECKPOINT): Promise<RelayStats> {
  const [position, headPosition] = await Promise.all([checkpoints.load(name), store.headPosition()]);
  return { position, headPosition, lag: Math.max(0, headPosition - position), publishedEvents: 0, failedSends: 0, failingSends: 0 };
}

/** Which metrics registerMessagingMetrics registers, and, when given, what says whether the Kafka side runs. */
export interface MessagingMetricParts extends MessagingRoles {
  profileSnapshots: boolean;
  /** adds `clientele_kafka_up`: 1 while this answers true, else 0 */
  running?: () => boolean;
}

/**
 * Registers the Kafka metrics on `registry`, read from `stats` at scrape time, and answers their
 * names. `startMessaging` registers them when given a registry; a process that starts the Kafka
 * side in the background registers them itself first, with stats that stand in while it does not
 * run (relayStatsAtRest), so the relay lag can be alerted on while the cluster is down from the start.
 * Gauges read the figures at scrape time. Counters cannot be set, so each scrape adds what grew since
 * the last one; a relay that restarts counts on from where the metric was.
 */
export function registerMessagingMetrics(registry: Registry, stats: () => Promise<MessagingStats>, parts: MessagingMetricParts): string[] {
  // one stats() call per scrape, shared by every metric collected in it
  let pending: Promise<MessagingStats> | undefined;
  const current = (): Promise<MessagingStats> => {
    pending ??= stats().finally(() => setImmediate(() => (pending = undefined)));
    return pending;
  };
  const names: string[] = [];
  const gauge = (name: string, help: string, read: (s: MessagingStats) => number | undefined): void => {
    names.push(name);
    new Gauge({
      name,
      help,
      registers: [registry],
      async collect() {
        const v = read(await current());
        if (v !== undefined) this.set(v);
      },
    });
  };
  const counter = (name: string, help: string, read: (s: MessagingStats) => number | undefined): void => {
    names.push(name);
    let seen = 0;
    new Counter({
      name,
      help,
      registers: [registry],
      async collect() {
        const v = read(await current());
        if (v !== undefined && v > seen) {
          this.inc(v - seen);
          seen = v;
        }
      },
    });
  };
  const running = parts.running;
  if (running) {
    names.push('clientele_kafka_up');
    new Gauge({
      name: 'clientele_kafka_up',
      help: "1 while this process's Kafka parts (relay, ingest) run, 0 while they start or try again",
      registers: [registry],
      collect() {
        this.set(running() ? 1 : 0);
      },
    });
  }
  if (parts.relay) {
    gauge('clientele_kafka_relay_position', 'global position of the last event the broker acknowledged', (s) => s.relay?.position);
    gauge('clientele_kafka_relay_head_position', 'head position of the event store', (s) => s.relay?.headPosition);
    gauge('clientele_kafka_relay_lag_events', 'events stored but not yet acknowledged by Kafka', (s) => s.relay?.lag);
    counter('clientele_kafka_relay_published_events_total', 'events acknowledged by Kafka (re-publications count again)', (s) => s.relay?.publishedEvents);
    counter('clientele_kafka_relay_failed_sends_total', 'relay sends that failed and were retried', (s) => s.relay?.failedSends);
  }
  if (parts.profileSnapshots) {
    gauge('clientele_kafka_profile_snapshots_pending', 'customers whose changed profile is not yet acknowledged on the profiles topic', (s) => s.profileSnapshots?.pending);
    counter('clientele_kafka_profile_snapshots_published_total', 'profile snapshots and tombstones acknowledged by Kafka', (s) => s.profileSnapshots?.publishedSnapshots);
    counter('clientele_kafka_profile_snapshots_failed_sends_total', 'profile snapshot sends that failed and were retried', (s) => s.profileSnapshots?.failedSends);
  }
  if (parts.ingest) {
    counter('clientele_kafka_ingest_processed_total', 'commands read from Kafka and accepted by the application', (s) => s.ingest?.accepted);
    counter('clientele_kafka_ingest_dead_lettered_total', 'command records sent to the dead-letter topic', (s) => s.ingest?.deadLettered);
    counter('clientele_kafka_ingest_retries_total', 'retryable command failures (each retry counts)', (s) => s.ingest?.retries);
    names.push('clientele_kafka_ingest_lag_records');
    new Gauge({
      name: 'clientele_kafka_ingest_lag_records',
      help: 'command records behind the end of each partition (high watermark minus committed offset)',
      labelNames: ['partition'],
      registers: [registry],
      async collect() {
        const lag = (await current()).ingest?.lagByPartition ?? {};
        for (const [partition, value] of Object.entries(lag)) this.set({ partition }, value);
      },
    });
  }
  return names;
}
