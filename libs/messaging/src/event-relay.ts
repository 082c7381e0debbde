import type { EventStore, EventSubscription, StoredEvent } from '@clientele/event-store';
import { CompressionTypes, type Kafka, type Producer, type TopicMessages } from 'kafkajs';
import type { CheckpointStore } from './checkpoint.store';
import { recordsFor } from './event-messages';
import { KeyHashPartitioner } from './partitioner';
import { isUnknownTopic, kafkaErrorMatches, type TopicNames } from './topics';

/** The little a relay says about itself; pino's logger fits. */
export interface RelayLogger {
  warn(detail: object, message: string): void;
}

/** the relay's checkpoint name unless given another */
export const RELAY_CHECKPOINT = 'kafka-relay';

export interface EventRelayOptions {
  store: EventStore;
  kafka: Kafka;
  topics: Pick<TopicNames, 'events' | 'lifecycle' | 'referrals' | 'profiles'>;
  checkpoints: CheckpointStore;
  /** checkpoint name; two relays with different names publish independently */
  name?: string;
  /** most events per send; default 2000 (500 measured at half the throughput) */
  batchSize?: number;
  /** how long after its first event a partial batch is sent; default 5 ms */
  lingerMs?: number;
  /** gzip record batches (zlib runs off the main thread; fewer bytes to the broker); default none */
  compression?: 'none' | 'gzip';
  /** pause before retrying after the broker or store failed; default 1000 ms */
  retryBackoffMs?: number;
  logger?: RelayLogger;
  /** creates the topics again when a send finds one missing (deleted while the relay ran) */
  recreateTopics?: () => Promise<void>;
}

export interface RelayStats {
  /** global position of the last event the broker acknowledged */
  position: number;
  /** the store's head position when last looked at */
  headPosition: number;
  /** events stored but not yet acknowledged by the broker */
  lag: number;
  /** events acknowledged since start (re-publications after a failure count again) */
  publishedEvents: number;
  /** sends that failed and were retried */
  failedSends: number;
  /** sends failed since the last one the broker acknowledged: above 0, the relay is failing now */
  failingSends: number;
}

/**
 * Publishes every stored event, in log order, keyed by stream id: all to `events`, transitions also
 * to `lifecycle`, referral events also to `referrals`. At least once: the checkpoint moves only
 * after the broker acknowledged a batch, and any failure resumes from the checkpoint. The producer
 * is idempotent with one request in flight, so retries inside a session neither duplicate nor reorder.
 */
export class EventRelay {
  private readonly name: string;
  private readonly batchSize: number;
  private readonly lingerMs: number;
  private readonly retryBackoffMs: number;
  /**
   * Events per batch now: the configured size, halved after the broker refused a request as too
   * large (a run of big events), and grown back after a run of acknowledged batches.
   */
  private currentBatchSize: number;
  private acknowledgedInARow = 0;
  /** failures since the last acknowledged batch: each waits twice as long as the one before, up to 30 s */
  private failuresInARow = 0;
  private running = false;
  private loop: Promise<void> | undefined;
  private subscription: EventSubscription | undefined;
  private producer: Producer | undefined;
  private wake: (() => void) | undefined;
  private readonly counters: RelayStats = { position: 0, headPosition: 0, lag: 0, publishedEvents: 0, failedSends: 0, failingSends: 0 };

  constructor(private readonly options: EventRelayOptions) {
    this.name = options.name ?? RELAY_CHECKPOINT;
    this.batchSize = options.batchSize ?? 2000;
    this.lingerMs = options.lingerMs ?? 5;
    this.retryBackoffMs = options.retryBackoffMs ?? 1000;
    this.currentBatchSize = this.batchSize;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  /** Stops after the batch in flight (if any) is acknowledged or failed; the checkpoint stays where it is. */
  async stop(): Promise<void> {
    this.running = false;
    this.wake?.();
    await this.subscription?.close();
    await this.loop;
    this.loop = undefined;
  }

  async stats(): Promise<RelayStats> {
    this.counters.headPosition = await this.options.store.headPosition();
    this.counters.lag = Math.max(0, this.counters.headPosition - this.counters.position);
    return { ...this.counters, failingSends: this.failuresInARow };
  }

  /** a topic it writes to was deleted while it ran: create the missing topics again, then resume from the checkpoint */
  private async recreateTopics(err: unknown): Promise<void> {
    try {
      await this.options.recreateTopics!();
      this.options.logger?.warn({ err, relay: this.name, position: this.counters.position }, 'a topic the relay writes to was missing; created it again, resuming from the checkpoint');
    } catch (again) {
      this.options.logger?.warn({ err: again, relay: this.name, position: this.counters.position }, 'a topic the relay writes to is missing and could not be created again; retrying');
    }
  }

  /** Resolves once every event up to `position` is acknowledged (tests, graceful hand-over). */
  async waitForPosition(position: number, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.counters.position < position) {
      if (Date.now() > deadline) throw new Error(`relay ${this.name} reached ${this.counters.position}, not ${position}, in ${timeoutMs} ms`);
      await sleep(20);
    }
  }

  private async run(): Promise<void> {
    while (this.running) {
      try {
        await this.publishFromCheckpoint();
      } catch (err) {
        this.counters.failedSends += 1;
        this.failuresInARow += 1;
        this.acknowledgedInARow = 0;
        if (isTooLarge(err) && this.currentBatchSize > 1) {
          // the broker takes each request up to its max.message.bytes: fewer events a request, until one fits
          this.currentBatchSize = Math.max(1, Math.floor(this.currentBatchSize / 2));
          this.options.logger?.warn(
            { err, relay: this.name, position: this.counters.position, batchSize: this.currentBatchSize },
            'relay batch larger than the broker accepts; retrying from its checkpoint with smaller batches',
          );
        } else if (isUnknownTopic(err) && this.options.recreateTopics) {
          await this.recreateTopics(err);
        } else {
          this.options.logger?.warn(
            { err, relay: this.name, position: this.counters.position },
            isTooLarge(err)
              ? 'relay failed: one event is larger than the broker accepts (raise the topics\' max.message.bytes); resuming from its checkpoint'
              : 'relay failed; resuming from its checkpoint',
          );
        }
        await this.dropProducer();
        // a failure that keeps coming back is retried less and less often, rather than every second for good
        await this.pause(Math.min(30_000, this.retryBackoffMs * 2 ** Math.min(this.failuresInARow - 1, 5)));
      }
    }
    await this.dropProducer();
  }

  private async publishFromCheckpoint(): Promise<void> {
    const producer = await this.connectedProducer();
    const from = await this.options.checkpoints.load(this.name);
    this.counters.position = from;
    const subscription = this.options.store.subscribeToAll({ afterPosition: from, batchSize: this.currentBatchSize });
    this.subscription = subscription;
    const iterator = subscription[Symbol.asyncIterator]();
    let batch: StoredEvent[] = [];
    // The batch the broker has not acknowledged yet. While it is out, the next one is read from the
    // store and turned into records, so the store, our encoding and the broker's work overlap. It is
    // only *sent* once this one is acknowledged and checkpointed: a failed batch must never be
    // followed by a later one, or a key's records could land out of order.
    let inFlight: Promise<void> | undefined;
    // settles only if the batch in flight fails: an idle relay waiting for new events must still
    // notice, retry and not leave the batch unpublished until the next event arrives
    let inFlightFailed: Promise<never> | undefined;
    const idle = new Promise<never>(() => undefined);
    const dispatch = async (): Promise<void> => {
      const request = this.recordsOf(batch);
      batch = [];
      await inFlight;
      const sending = this.send(producer, request);
      inFlight = sending;
      inFlightFailed = sending.then(() => idle);
      // rejections are handled where these are awaited; this keeps Node from calling them unhandled meanwhile
      sending.catch(() => undefined);
      inFlightFailed.catch(() => undefined);
    };
    try {
      let pending = iterator.next();
      // like Kafka's linger.ms: a batch goes out at most lingerMs after its first event was read;
      // one timer per batch, not one per event, so catching up costs no timers
      let lingerOver: Promise<undefined> | undefined;
      while (this.running) {
        const next = batch.length > 0 ? await Promise.race([pending, lingerOver]) : await (inFlightFailed ? Promise.race([pending, inFlightFailed]) : pending);
        if (next === undefined) {
          await dispatch();
          lingerOver = undefined;
          continue;
        }
        if (next.done) break;
        batch.push(next.value);
        if (batch.length === 1) lingerOver = sleep(this.lingerMs).then(() => undefined);
        pending = iterator.next();
        if (batch.length >= this.currentBatchSize) {
          await dispatch();
          lingerOver = undefined;
        }
      }
      // stopping: the batch in flight finishes (acknowledged and checkpointed, or failed); what was
      // read but not sent is simply read again next time
      await inFlight;
    } finally {
      inFlight?.catch(() => undefined);
      await subscription.close();
      this.subscription = undefined;
    }
  }

  /** One request for a batch: every topic's records together, so a batch costs one round trip. */
  private recordsOf(batch: StoredEvent[]): PreparedBatch {
    const byTopic = new Map<string, TopicMessages>();
    for (const event of batch) {
      for (const record of recordsFor(event, this.options.topics)) {
        let entry = byTopic.get(record.topic);
        if (!entry) byTopic.set(record.topic, (entry = { topic: record.topic, messages: [] }));
        entry.messages.push({ key: record.key, value: record.value, headers: record.headers });
      }
    }
    return { topicMessages: [...byTopic.values()], events: batch.length, lastPosition: batch[batch.length - 1]?.position };
  }

  private async send(producer: Producer, batch: PreparedBatch): Promise<void> {
    if (batch.lastPosition === undefined) return;
    await producer.sendBatch({
      topicMessages: batch.topicMessages,
      acks: -1,
      compression: this.options.compression === 'gzip' ? CompressionTypes.GZIP : CompressionTypes.None,
    });
    await this.options.checkpoints.save(this.name, batch.lastPosition);
    this.counters.position = batch.lastPosition;
    this.counters.publishedEvents += batch.events;
    if (this.failuresInARow > 0) {
      // the outage's end, said as plainly as its start
      this.options.logger?.warn({ relay: this.name, position: batch.lastPosition, failedSends: this.failuresInARow }, 'relay publishing again after failed sends');
    }
    this.failuresInARow = 0;
    // past the run of big events, batches grow back to the configured size
    this.acknowledgedInARow += 1;
    if (this.currentBatchSize < this.batchSize && this.acknowledgedInARow >= 20) {
      this.currentBatchSize = Math.min(this.batchSize, this.currentBatchSize * 2);
      this.acknowledgedInARow = 0;
    }
  }

  private async connectedProducer(): Promise<Producer> {
    if (!this.producer) {
      this.producer = this.options.kafka.producer({
        idempotent: true,
        maxInFlightRequests: 1,
        createPartitioner: KeyHashPartitioner,
      });
      await this.producer.connect();
    }
    return this.producer;
  }

  /** A producer that failed may hold a stale connection or sequence; the next attempt starts afresh. */
  private async dropProducer(): Promise<void> {
    const producer = this.producer;
    this.producer = undefined;
    await producer?.disconnect().catch(() => undefined);
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}

interface PreparedBatch {
  topicMessages: TopicMessages[];
  events: number;
  /** global position of the batch's last event; undefined for an empty batch */
  lastPosition: number | undefined;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** the broker refused a request (or one record) as larger than its max.message.bytes */
function isTooLarge(err: unknown): boolean {
  return kafkaErrorMatches(err, ({ type, message }) => type === 'MESSAGE_TOO_LARGE' || /larger than the max message size/i.test(message ?? ''));
}
