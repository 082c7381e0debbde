import { Inject, Injectable, Logger, type LoggerService, type OnApplicationBootstrap, type OnApplicationShutdown, type OnModuleDestroy } from '@nestjs/common';
import { ClienteleMetrics, CommandService, ingestBatchDispatch, type OpenedStorage } from '@clientele/application';
import { logLevel, type logCreator } from 'kafkajs';
import { kafkaConfigFromEnv, registerMessagingMetrics, relayStatsAtRest, startMessaging, type MessagingRuntime, type MessagingStats } from '@clientele/messaging';
import type { EngineConfig } from './engine.config';
import { EngineReadModels } from './engine-read-models';
import { ENGINE_CONFIG, ENGINE_STORAGE } from './engine.tokens';

/** While the Kafka side is not running yet: how many starts were tried, and why the last one failed. */
export interface KafkaStarting {
  starting: true;
  attempts: number;
  lastError?: string;
}

const KAFKAJS_LEVEL: Record<EngineConfig['logLevel'], logLevel> = {
  silent: logLevel.NOTHING,
  fatal: logLevel.ERROR,
  error: logLevel.ERROR,
  warn: logLevel.WARN,
  info: logLevel.WARN,
  debug: logLevel.WARN,
  trace: logLevel.WARN,
};

/** how long an entry kafkajs repeats word for word is kept out of the log after it was written */
export const KAFKAJS_REPEAT_WINDOW_MS = 60_000;
/** distinct entries remembered for that; beyond it the oldest are forgotten (an entry seen again is then written) */
const KAFKAJS_REPEATS_REMEMBERED = 500;

export interface KafkajsThroughOptions {
  /** default KAFKAJS_REPEAT_WINDOW_MS */
  repeatWindowMs?: number;
  /** the clock, for tests; default Date.now */
  now?: () => number;
}

/**
 * kafkajs' entries through the engine's logger (one format and one destination for every line):
 * its level picks the method, its fields stay fields, its own timestamp and logger name go.
 *
 * While a broker is down kafkajs writes the same two errors at every try of every connection (a
 * dozen lines a start attempt, stack included). An entry of the same level, namespace and message
 * as one written less than `repeatWindowMs` ago is counted instead of written; the next one written
 * after the window says how many were left out (`repeatedSinceLastLine`).
 */
export function kafkajsThrough(logger: Pick<LoggerService, 'error' | 'warn' | 'log' | 'debug'>, options: KafkajsThroughOptions = {}): logCreator {
  const windowMs = options.repeatWindowMs ?? KAFKAJS_REPEAT_WINDOW_MS;
  const now = options.now ?? Date.now;
  // by key: when it was last written, and how many like it were left out since
  const written = new Map<string, { at: number; leftOut: number }>();
  return () =>
    ({ namespace, level, log }) => {
      const { message, timestamp: _timestamp, logger: _name, ...fields } = log as { message: string; timestamp?: string; logger?: string; [field: string]: unknown };
      const key = `${level} ${namespace} ${message}`;
      const at = now();
      const last = written.get(key);
      if (last && at - last.at < windowMs) {
        last.leftOut += 1;
        return;
      }
      // re-inserted, so the Map's order is the order of last writing and the first key the oldest
      written.delete(key);
      if (written.size >= KAFKAJS_REPEATS_REMEMBERED) written.delete(written.keys().next().value!);
      written.set(key, { at, leftOut: 0 });
      const entry = { ...fields, namespace, msg: message, ...(last && last.leftOut > 0 && { repeatedSinceLastLine: last.leftOut }) };
      if (level === logLevel.ERROR || level === logLevel.NOTHING) logger.error(entry);
      else if (level === logLevel.WARN) logger.warn(entry);
      else if (level === logLevel.INFO) logger.log(entry);
      else logger.debug?.(entry);
    };
}

/** the pause after a failed Kafka start, doubled after each further failure up to the maximum */
export const KAFKA_START_RETRY_FIRST_MS = 1_000;
export const KAFKA_START_RETRY_MAX_MS = 30_000;

/**
 * The engine's background parts, started after the application is up and stopped before the store
 * closes: the Kafka relay (reads the raw log; personal fields never leave encrypted or at all) and
 * the Kafka ingest (commands go through the same CommandService as HTTP, each fetched batch through
 * its bulk path).
 *
 * The Kafka side starts in the background: the API answers at once, whatever the cluster does. A
 * start that fails (no broker, topics that cannot be created, a consumer group still holding a
 * dead member) is logged and tried again after 1 s, 2 s, 4 s … up to 30 s; until one succeeds,
 * `/health` shows `kafka.starting` with the last error and says `degraded`. Events stored meanwhile
 * wait in the log and the relay publishes them once it runs; commands on the Kafka topic wait
 * there.
 */
@Injectable()
export class EngineRuntime implements OnApplicationBootstrap, OnModuleDestroy, OnApplicationShutdown {
  private readonly logger = new Logger('EngineRuntime');
  private messaging?: MessagingRuntime;
  private starting?: Promise<void>;
  private startState?: KafkaStarting;
  private stopping = false;
  private stopped?: Promise<void>;
  private wake?: () => void;

  constructor(
    @Inject(ENGINE_CONFIG) private readonly config: EngineConfig,
    @Inject(ENGINE_STORAGE) private readonly storage: OpenedStorage,
    private readonly commands: CommandService,
    private readonly metrics: ClienteleMetrics,
    private readonly readModels: EngineReadModels,
  ) {}

  onApplicationBootstrap(): void {
    const roles = this.config.roles;
    if (!roles.relay && !roles.ingest) return;
    // read (and checked) here, not retried: a wrong setting is not an outage. kafkajs logs at the
    // engine's level, at most WARN (its INFO is chatty); LOG_LEVEL=silent silences it too
    const config = { ...(this.config.kafka ?? kafkaConfigFromEnv()), logLevel: KAFKAJS_LEVEL[this.config.logLevel], logCreator: this.kafkajsLog };
    // profile snapshots need the projector's batches, so they come from a process running both
    const profiles = roles.relay ? this.readModels.profileSource() : undefined;
    const start = (): Promise<MessagingRuntime> =>
      startMessaging({
        store: this.storage.raw,
        dispatchBatch: ingestBatchDispatch(this.commands),
        checkpoints: this.storage.checkpoints,
        config,
        roles: { relay: roles.relay, ingest: roles.ingest },
        ...(profiles && { profiles }),
        logger: { warn: (detail: object, message: string) => this.logger.warn({ ...detail, msg: message }) },
      });
    // registered here, not by startMessaging: they exist from the start, the relay's lag read from
    // its checkpoint while the Kafka side does not run, so an alert on it fires when the cluster is
    // down from the start too
    const stats = async (): Promise<MessagingStats> => {
      if (this.messaging) return this.messaging.stats();
      return roles.relay ? { relay: await relayStatsAtRest(this.storage.raw, this.storage.checkpoints) } : {};
    };
    registerMessagingMetrics(this.metrics.registry, stats, { relay: roles.relay, ingest: roles.ingest, profileSnapshots: profiles !== undefined, running: () => this.messaging !== undefined });
    const parts = [roles.relay && 'relay', profiles && 'profile snapshots', roles.ingest && 'ingest'].filter(Boolean).join(', ');
    this.startState = { starting: true, attempts: 0 };
    this.starting = this.startUntilRunning(start, parts);
  }

  /** resolves once the Kafka side runs, or the engine stopped before it did (tests, demo seeding) */
  messagingStarted(): Promise<void> {
    return this.starting ?? Promise.resolve();
  }

  /** the relay and ingest figures once they run; while they do not yet, how the starting goes */
  async messagingStats(): Promise<MessagingStats | KafkaStarting | undefined> {
    if (this.messaging) return this.messaging.stats();
    return this.startState ? { ...this.startState } : undefined;
  }

  /** true once the engine is stopping: HTTP refuses new work (see bootstrap) and the Kafka side is stopped */
  get draining(): boolean {
    return this.stopping;
  }

  /**
   * The first of the stop's hooks (the engine module's destroy hook runs before those of the
   * modules it imports): new work is refused before the work in progress is ended, so nothing
   * comes in while the process manager, the projector and the store close. HTTP answers 503
   * from now on, except /health (503, `stopping`) and /metrics; the Kafka ingest and relay stop
   * after the batch they hold (commands left on the topic and events left in the log wait for
   * the next start).
   */
  onModuleDestroy(): Promise<void> {
    this.stopped ??= this.stop();
    return this.stopped;
  }

  /** the last of the stop's hooks, in case the destroy hooks were not run */
  async onApplicationShutdown(): Promise<void> {
    await this.onModuleDestroy();
  }

  private async stop(): Promise<void> {
    this.stopping = true;
    this.logger.log('stopping: new commands are refused from now on (HTTP answers 503, the Kafka side stops); ending the work in progress (projections, the process manager), then closing the store');
    this.wake?.();
    // a start in progress ends first: with the cluster unreachable it gives up within about a second (reachCluster)
    await this.starting;
    await this.messaging?.stop();
    this.messaging = undefined;
  }

  private readonly kafkajsLog = kafkajsThrough(new Logger('kafkajs'));

  private async startUntilRunning(start: () => Promise<MessagingRuntime>, parts: string): Promise<void> {
    let pause = KAFKA_START_RETRY_FIRST_MS;
    while (!this.stopping) {
      const state = this.startState!;
      state.attempts += 1;
      try {
        const runtime = await start();
        if (this.stopping) {
          await runtime.stop();
          return;
        }
        this.messaging = runtime;
        this.startState = undefined;
        this.logger.log(`Kafka ${parts} started${state.attempts > 1 ? ` (attempt ${state.attempts})` : ''}`);
        return;
      } catch (error) {
        state.lastError = error instanceof Error ? error.message : String(error);
        if (this.stopping) return;
        this.logger.warn(`Kafka ${parts} could not start (attempt ${state.attempts}): ${state.lastError}; the API keeps serving, next attempt in ${pause / 1000} s`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, pause);
          this.wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.wake = undefined;
        pause = Math.min(pause * 2, KAFKA_START_RETRY_MAX_MS);
      }
    }
  }
}
