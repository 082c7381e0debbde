import {
  CommandEnvelopeShapeSchema,
  formatIssues,
  Headers as H,
  MessageKinds,
  validateAgainstSchema,
  type CommandEnvelope,
  type DeadLetterMessage,
} from '@clientele/contracts';
import { Partitioners, type Consumer, type EachBatchPayload, type Kafka, type KafkaMessage, type Message, type Producer } from 'kafkajs';
import type { RelayLogger } from './event-relay';
import { isUnknownTopic, type TopicNames } from './topics';

/** A refusal's code, and the fields at fault when the application names them (see DeadLetterMessage). */
export interface RefusalDetail {
  code?: string;
  errors?: { field: string; expected: string }[];
  field?: string;
}
export type DispatchResult = { ok: true } | ({ ok: false; reason: string; retryable: boolean } & RefusalDetail);

/** the code and fields of a refusal, as the dead letter carries them */
function refusalDetail(result: RefusalDetail): RefusalDetail {
  return { ...(result.code !== undefined ? { code: result.code } : {}), ...(result.errors ? { errors: result.errors } : {}), ...(result.field !== undefined ? { field: result.field } : {}) };
}

/** Validates a command per its type and executes it (the application layer supplies it). */
export type CommandDispatch = (envelope: CommandEnvelope) => Promise<DispatchResult>;

/**
 * Validates and executes the commands of one fetched batch, in the order given (a partition's
 * offset order), and answers one result per command, in the same order. A retryable answer says the
 * command was not stored and may be handed over again; a dispatch that answers a command retryable
 * must answer every later command of the same customer retryable too, without running it, so the
 * retry keeps their order. Throwing means nothing is known: the whole batch is handed over again.
 */
export type CommandBatchDispatch = (envelopes: readonly CommandEnvelope[]) => Promise<DispatchResult[]>;

export interface CommandIngestOptions {
  kafka: Kafka;
  topics: Pick<TopicNames, 'commands' | 'commandsDeadLetter'>;
  groupId: string;
  /** executes one command at a time (see `concurrency`); give this or `dispatchBatch` */
  dispatch?: CommandDispatch;
  /**
   * executes each fetched batch's commands in one call (the application's bulk path: one look-up and
   * one append per customer); when given, `concurrency` does not apply
   */
  dispatchBatch?: CommandBatchDispatch;
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
  /** creates the topics again when the commands or dead-letter topic is found missing (deleted while the ingest ran) */
  recreateTopics?: () => Promise<void>;
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
  private stopped = false;

  constructor(private readonly options: CommandIngestOptions) {
    if ((options.dispatch === undefined) === (options.dispatchBatch === undefined)) {
      throw new Error('CommandIngest: give either dispatch or dispatchBatch');
    }
  }

  async start(): Promise<void> {
    const { kafka, topics, groupId } = this.options;
    this.stopped = false;
    this.producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
    await this.producer.connect();
    const maxBytes = (this.options.maxCommandBytes ?? 1024 * 1024) * 4;
    // fetch sizes above the command limit, so an oversized record is fetched whole and dead-lettered
    this.consumer = kafka.consumer({
      groupId,
      maxBytesPerPartition: maxBytes,
      maxBytes: maxBytes * 2,
      // kafkajs' own default for consumers, and our say on each restart after a crash
      retry: { retries: 5, restartOnFailure: (error) => this.restartAfterCrash(error) },
    });
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
    this.stopped = true;
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

  /**
   * kafkajs asks this before it restarts the consumer after a crash it deems passing. A stopped
   * ingest is not restarted: a restart scheduled after stop() would consume on, and keep the process
   * alive. A crash because the commands topic is gone (deleted while the ingest ran, on a cluster
   * that does not create topics on use) first creates the topics again, so the restart finds it and
   * producers can send to it again; without that the consumer crashed and restarted every few
   * hundred milliseconds for as long as the topic stayed missing.
   */
  private async restartAfterCrash(error: Error): Promise<boolean> {
    if (this.stopped) return false;
    if (isUnknownTopic(error) && this.options.recreateTopics) {
      try {
        await this.options.recreateTopics();
        this.options.logger?.warn({ err: error, topic: this.options.topics.commands }, 'the commands topic was missing; created it again');
      } catch (err) {
        this.options.logger?.warn({ err, topic: this.options.topics.commands }, 'the commands topic is missing and could not be created again; retrying');
      }
    }
    return !this.stopped;
  }

  private handleBatch(payload: EachBatchPayload): Promise<void> {
    if (this.options.dispatchBatch) return this.handleBatchWhole(payload, this.options.dispatchBatch);
    const concurrency = this.options.concurrency ?? 1;
    return concurrency > 1 ? this.handleBatchByKey(payload, concurrency) : this.handleBatchInOrder(payload);
  }

  /**
   * The batch's commands go to `dispatchBatch` in one call, in offset order. Records that are not
   * commands, and commands the application refuses, become dead letters, sent together in offset
   * order once every command of the batch is settled; then the batch's offset is committed. Commands
   * answered retryable are handed over again (alone, in their order) after a growing pause, holding
   * the commit: an offset is never committed before the events of every command below it are stored.
   */
  private async handleBatchWhole({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload, dispatchBatch: CommandBatchDispatch): Promise<void> {
    const consumer = this.consumer;
    const last = batch.messages[batch.messages.length - 1];
    if (!consumer || !last) return;
    const letters: { message: KafkaMessage; reason: string; detail: RefusalDetail; parsed?: unknown }[] = [];
    let pending: { message: KafkaMessage; envelope: CommandEnvelope }[] = [];
    for (const message of batch.messages) {
      const read = this.read(message);
      if ('envelope' in read) pending.push({ message, envelope: read.envelope });
      else letters.push({ message, reason: read.reason, detail: read.detail, parsed: read.parsed });
    }
    let backoff = this.options.retryBackoffMs ?? 500;
    while (pending.length > 0) {
      // interrupted (stop or rebalance): nothing of this batch is committed, the next owner replays it
      if (!isRunning() || isStale()) return;
      let results: DispatchResult[] | undefined;
      try {
        results = await keepingAlive(heartbeat, dispatchBatch(pending.map((p) => p.envelope)));
      } catch (err) {
        // an exception is not a verdict on the commands (store down, bug): keep them all and retry
        this.options.logger?.warn({ err, commands: pending.length }, 'command batch dispatch threw; retrying');
      }
      const again: typeof pending = [];
      let reason: string | undefined;
      pending.forEach((item, i) => {
        const result = results?.[i];
        if (result?.ok) this.counters.accepted += 1;
        else if (result && !result.retryable) letters.push({ message: item.message, reason: result.reason, detail: refusalDetail(result), parsed: item.envelope });
        else {
          again.push(item);
          reason ??= result?.reason;
        }
      });
      if (again.length > 0) {
        if (results) this.options.logger?.warn({ commandId: again[0]?.envelope.commandId, commands: again.length, reason }, 'commands failed for now; retrying');
        this.counters.retries += again.length;
        await keepingAlive(heartbeat, sleep(backoff));
        backoff = Math.min(backoff * 2, 30_000);
      }
      pending = again;
      await heartbeat();
    }
    letters.sort((a, b) => (BigInt(a.message.offset) < BigInt(b.message.offset) ? -1 : 1));
    await this.sendDeadLetters(letters.map((l) => this.letterFor(batch.topic, batch.partition, l.message, l.reason, l.detail, l.parsed)));
    await this.commitThrough(consumer, batch, resolveOffset, last.offset);
    this.lagByPartition.set(batch.partition, Number(batch.offsetLag()));
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
    await this.commitThrough(consumer, batch, resolveOffset, last.offset);
    this.lagByPartition.set(batch.partition, Number(batch.offsetLag()));
  }

  private async handleBatchInOrder({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> {
    const consumer = this.consumer;
    if (!consumer) return;
    const commit = (offset: string): Promise<void> => this.commitThrough(consumer, batch, resolveOffset, offset);
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

  /** Marks the batch handled up to `offset` and commits the offset after it, so the group resumes there. */
  private async commitThrough(
    consumer: Consumer,
    batch: EachBatchPayload['batch'],
    resolveOffset: EachBatchPayload['resolveOffset'],
    offset: string,
  ): Promise<void> {
    resolveOffset(offset);
    await consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: (BigInt(offset) + 1n).toString() }]);
  }

  /** The record's command, or why it is none: empty, too large, not JSON, not a command envelope. */
  private read(message: KafkaMessage): { envelope: CommandEnvelope } | { reason: string; detail: RefusalDetail; parsed?: unknown } {
    const limit = this.options.maxCommandBytes ?? 1024 * 1024;
    const bytes = message.value;
    if (!bytes || bytes.length === 0) return { reason: 'empty record: expected a JSON command', detail: { code: 'empty_record' } };
    if (bytes.length > limit) return { reason: `record is ${bytes.length} bytes: commands are at most ${limit} bytes`, detail: { code: 'record_too_large' } };
    let parsed: unknown;
    try {
      parsed = JSON.parse(bytes.toString('utf8'));
    } catch (err) {
      return { reason: `not JSON: ${(err as Error).message}`, detail: { code: 'not_json' } };
    }
    const issues = validateAgainstSchema(CommandEnvelopeShapeSchema, parsed);
    if (issues.length > 0) {
      const errors = issues.map((i) => ({ field: i.path || '(root)', expected: i.message }));
      return { reason: `not a command: ${formatIssues(issues)}`, detail: { code: 'not_a_command', errors }, parsed };
    }
    return { envelope: parsed as CommandEnvelope };
  }

  /** 'done' once the record is dispatched or dead-lettered; 'retry' when it must be tried again. */
  private async process(topic: string, partition: number, message: KafkaMessage): Promise<'done' | 'retry'> {
    const read = this.read(message);
    if (!('envelope' in read)) return this.deadLetter(topic, partition, message, read.reason, read.detail, read.parsed);
    const { envelope } = read;
    let result;
    try {
      result = await this.options.dispatch!(envelope);
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
    return this.deadLetter(topic, partition, message, result.reason, refusalDetail(result), envelope);
  }

  private async deadLetter(topic: string, partition: number, message: KafkaMessage, reason: string, detail: RefusalDetail, parsed?: unknown): Promise<'done'> {
    await this.sendDeadLetters([this.letterFor(topic, partition, message, reason, detail, parsed)]);
    return 'done';
  }

  /** The dead-letter record of a source record: the reason, the original bytes (cut when large), where it came from. */
  private letterFor(topic: string, partition: number, message: KafkaMessage, reason: string, detail: RefusalDetail, parsed?: unknown): Message {
    const keep = this.options.maxDeadLetterValueBytes ?? 256 * 1024;
    const value = message.value;
    const letter: DeadLetterMessage = {
      reason,
      ...(detail.code !== undefined ? { code: detail.code } : {}),
      ...(detail.errors !== undefined && detail.errors.length > 0 ? { errors: detail.errors } : {}),
      ...(detail.field !== undefined ? { field: detail.field } : {}),
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
    const correlationId = (parsed as { correlationId?: unknown } | undefined)?.correlationId;
    if (typeof correlationId === 'string' && correlationId.length > 0) letter.correlationId = correlationId;
    return {
      key: message.key,
      value: JSON.stringify(letter),
      headers: { [H.messageKind]: MessageKinds.deadLetter, [H.contentType]: 'application/json', [H.reason]: reason.slice(0, 500) },
    };
  }

  /**
   * One send to the dead-letter topic. A topic deleted while the ingest ran is created again
   * (`recreateTopics`) and the send made once more, instead of failing the batch again and again.
   */
  private async sendToDeadLetterTopic(messages: Message[]): Promise<void> {
    const send = () => this.producer?.send({ topic: this.options.topics.commandsDeadLetter, acks: -1, messages });
    try {
      await send();
    } catch (err) {
      if (!isUnknownTopic(err) || !this.options.recreateTopics) throw err;
      await this.options.recreateTopics();
      this.options.logger?.warn({ err, topic: this.options.topics.commandsDeadLetter }, 'the dead-letter topic was missing; created it again');
      await send();
    }
  }

  /** Sends dead letters in one request, after those already on their way: they reach the topic in the order decided. */
  private async sendDeadLetters(messages: Message[]): Promise<void> {
    if (messages.length === 0) return;
    const send = this.deadLetterSends.then(() => this.sendToDeadLetterTopic(messages));
    this.deadLetterSends = send.then(() => undefined, () => undefined);
    await send;
    this.counters.deadLettered += messages.length;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Tells the group this consumer is alive every 3 seconds while `work` runs: a store that stalls, or a
 * retry pause that has grown to 30 s, would otherwise outlast the group's 30 s session, get the
 * consumer thrown out, and have its batch handed over and run again.
 */
async function keepingAlive<T>(heartbeat: () => Promise<void>, work: Promise<T>): Promise<T> {
  const timer = setInterval(() => {
    heartbeat().catch(() => undefined);
  }, 3_000);
  try {
    return await work;
  } finally {
    clearInterval(timer);
  }
}
