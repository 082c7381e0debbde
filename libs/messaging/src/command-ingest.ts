import {
  CommandEnvelopeSchema,
  formatIssues,
  Headers as H,
  MessageKinds,
  validateAgainstSchema,
  type CommandEnvelope,
  type DeadLetterMessage,
} from '@clientele/contracts';
import { Partitioners, type Consumer, type EachBatchPayload, type Kafka, type KafkaMessage, type Producer } from 'kafkajs';
import type { RelayLogger } from './event-relay';
import type { TopicNames } from './topics';

export type DispatchResult = { ok: true } | { ok: false; reason: string; retryable: boolean };

/** Validates a command per its type and executes it (the application layer supplies it). */
export type CommandDispatch = (envelope: CommandEnvelope) => Promise<DispatchResult>;

export interface CommandIngestOptions {
  kafka: Kafka;
  topics: Pick<TopicNames, 'commands' | 'commandsDeadLetter'>;
  groupId: string;
  dispatch: CommandDispatch;
  /** records larger than this are dead-lettered unread; default 1 MiB */
  maxCommandBytes?: number;
  /** the dead letter keeps at most this many of the original bytes; default 256 KiB */
  maxDeadLetterValueBytes?: number;
  /** first pause before retrying a retryable failure; doubles up to 30 s; default 500 ms */
  retryBackoffMs?: number;
  /**
   * commands of one fetched batch handled at once; default 1 (strictly one after another). Above 1,
   * records with the same key still run in order, different keys run side by side, and the offset
   * is committed once the whole batch is done (a crash mid-batch replays it: commands are idempotent
   * by commandId). A retryable failure then holds only its key's records, and the batch's commit.
   */
  concurrency?: number;
  /**
   * partitions whose batches are handled at the same time; default 1. Order and commits are per
   * partition, so several at once keep every key's order and only add commands in flight, which the
   * application turns into fewer, larger fsync groups.
   */
  partitionsAtOnce?: number;
  /** read the topic from its start when the group has no offsets yet; default true */
  fromBeginning?: boolean;
  logger?: RelayLogger;
  /** the dead letter's timestamp; injectable for tests */
  now?: () => Date;
}

export interface IngestStats {
  accepted: number;
  deadLettered: number;
  /** retryable failures seen (each retry counts) */
  retries: number;
  /** records behind the end of the topic, summed over the partitions last fetched */
  lag: number;
}

/**
 * Reads commands from `<prefix>commands` in a consumer group. A record that is not a command goes
 * to `<prefix>commands.dlq` with the reason and its bytes, and the partition goes on. Offsets are
 * committed only once dispatch answered (or the record was dead-lettered), so a crash replays
 * commands (idempotent by commandId) rather than losing them; a retryable failure holds the
 * partition and retries the same record.
 */
export class CommandIngest {
  private consumer: Consumer | undefined;
  private producer: Producer | undefined;
  private readonly lagByPartition = new Map<number, number>();
  private readonly counters = { accepted: 0, deadLettered: 0, retries: 0 };
  private deadLetterSends: Promise<void> = Promise.resolve();

  constructor(private readonly options: CommandIngestOptions) {}

  async start(): Promise<void> {
    const { kafka, topics, groupId } = this.options;
    this.producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
    await this.producer.connect();
    const maxBytes = (this.options.maxCommandBytes ?? 1024 * 1024) * 4;
    // fetch sizes above the command limit, so an oversized record is fetched whole and dead-lettered
    this.consumer = kafka.consumer({ groupId, maxBytesPerPartition: maxBytes, maxBytes: maxBytes * 2 });
    await this.consumer.connect();
    await this.consumer.subscribe({ topic: topics.commands, fromBeginning: this.options.fromBeginning ?? true });
    await this.consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: this.options.partitionsAtOnce ?? 1,
      eachBatch: (payload) => this.handleBatch(payload),
    });
  }

  async stop(): Promise<void> {
    await this.consumer?.disconnect();
    await this.producer?.disconnect();
    this.consumer = undefined;
    this.producer = undefined;
  }

  stats(): IngestStats {
    let lag = 0;
    for (const l of this.lagByPartition.values()) lag += l;
    return { ...this.counters, lag };
  }

  private handleBatch(payload: EachBatchPayload): Promise<void> {
    const concurrency = this.options.concurrency ?? 1;
    return concurrency > 1 ? this.handleBatchByKey(payload, concurrency) : this.handleBatchInOrder(payload);
  }

  private async handleBatchByKey({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload, concurrency: number): Promise<void> {
    const consumer = this.consumer;
    const last = batch.messages[batch.messages.length - 1];
    if (!consumer || !last) return;
    // same key, same order: each key's records form a chain; records without a key form one chain
    const chains = new Map<string, KafkaMessage[]>();
    for (const message of batch.messages) {
      const key = message.key ? `k${message.key.toString('base64')}` : '-';
      let chain = chains.get(key);
      if (!chain) chains.set(key, (chain = []));
      chain.push(message);
    }
    const queue = [...chains.values()];
    let interrupted = false;
    const worker = async (): Promise<void> => {
      for (let chain = queue.shift(); chain; chain = queue.shift()) {
        for (const message of chain) {
          let backoff = this.options.retryBackoffMs ?? 500;
          for (;;) {
            if (!isRunning() || isStale()) {
              interrupted = true;
              return;
            }
            if ((await this.process(batch.topic, batch.partition, message)) === 'done') break;
            this.counters.retries += 1;
            await sleep(backoff);
            backoff = Math.min(backoff * 2, 30_000);
          }
          await heartbeat();
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, queue.length) }, worker));
    // interrupted (stop or rebalance): nothing of this batch is committed, the next owner replays it
    if (interrupted) return;
    resolveOffset(last.offset);
    await consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: (BigInt(last.offset) + 1n).toString() }]);
    this.lagByPartition.set(batch.partition, Number(batch.offsetLag()));
  }

  private async handleBatchInOrder({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> {
    const consumer = this.consumer;
    if (!consumer) return;
    const commit = async (offset: string): Promise<void> => {
      resolveOffset(offset);
      await consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: (BigInt(offset) + 1n).toString() }]);
    };
    let uncommitted: string | undefined;
    for (const message of batch.messages) {
      if (!isRunning() || isStale()) break;
      let backoff = this.options.retryBackoffMs ?? 500;
      for (;;) {
        const outcome = await this.process(batch.topic, batch.partition, message);
        if (outcome === 'done') break;
        // hold the partition: commit what is done, wait, and try the same record again
        this.counters.retries += 1;
        if (uncommitted !== undefined) await commit(uncommitted);
        uncommitted = undefined;
        await sleep(backoff);
        backoff = Math.min(backoff * 2, 30_000);
        await heartbeat();
        if (!isRunning() || isStale()) return;
      }
      uncommitted = message.offset;
      resolveOffset(message.offset);
      await heartbeat();
    }
    if (uncommitted !== undefined) await commit(uncommitted);
    this.lagByPartition.set(batch.partition, Number(batch.offsetLag()));
  }

  /** 'done' once the record is dispatched or dead-lettered; 'retry' when it must be tried again. */
  private async process(topic: string, partition: number, message: KafkaMessage): Promise<'done' | 'retry'> {
    const limit = this.options.maxCommandBytes ?? 1024 * 1024;
    const bytes = message.value;
    if (!bytes || bytes.length === 0) return this.deadLetter(topic, partition, message, 'empty record: expected a JSON command');
    if (bytes.length > limit) {
      return this.deadLetter(topic, partition, message, `record is ${bytes.length} bytes: commands are at most ${limit} bytes`);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(bytes.toString('utf8'));
    } catch (err) {
      return this.deadLetter(topic, partition, message, `not JSON: ${(err as Error).message}`);
    }
    const issues = validateAgainstSchema(CommandEnvelopeSchema, parsed);
    if (issues.length > 0) return this.deadLetter(topic, partition, message, `not a command: ${formatIssues(issues)}`, parsed);
    const envelope = parsed as CommandEnvelope;
    let result;
    try {
      result = await this.options.dispatch(envelope);
    } catch (err) {
      // an exception is not a verdict on the command (store down, bug): keep it and retry
      this.options.logger?.warn({ err, commandId: envelope.commandId }, 'command dispatch threw; retrying');
      return 'retry';
    }
    if (result.ok) {
      this.counters.accepted += 1;
      return 'done';
    }
    if (result.retryable) {
      this.options.logger?.warn({ commandId: envelope.commandId, reason: result.reason }, 'command failed for now; retrying');
      return 'retry';
    }
    return this.deadLetter(topic, partition, message, result.reason, parsed);
  }

  private async deadLetter(topic: string, partition: number, message: KafkaMessage, reason: string, parsed?: unknown): Promise<'done'> {
    const keep = this.options.maxDeadLetterValueBytes ?? 256 * 1024;
    const value = message.value;
    const letter: DeadLetterMessage = {
      reason,
      value: value ? value.subarray(0, keep).toString('base64') : null,
      valueBytes: value?.length ?? 0,
      valueTruncated: (value?.length ?? 0) > keep,
      key: message.key ? message.key.toString('utf8') : null,
      sourceTopic: topic,
      sourcePartition: partition,
      sourceOffset: message.offset,
      deadLetteredAt: (this.options.now?.() ?? new Date()).toISOString(),
    };
    const commandId = (parsed as { commandId?: unknown } | undefined)?.commandId;
    if (typeof commandId === 'string' && commandId.length > 0) letter.commandId = commandId;
    const send = this.deadLetterSends.then(() => this.producer?.send({
      topic: this.options.topics.commandsDeadLetter,
      acks: -1,
      messages: [
        {
          key: message.key,
          value: JSON.stringify(letter),
          headers: { [H.messageKind]: MessageKinds.deadLetter, [H.contentType]: 'application/json', [H.reason]: reason.slice(0, 500) },
        },
      ],
    }));
    // dead letters from records handled side by side go out one after another, in the order decided
    this.deadLetterSends = send.then(() => undefined, () => undefined);
    await send;
    this.counters.deadLettered += 1;
    return 'done';
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
