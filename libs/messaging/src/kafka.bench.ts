import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CommandEnvelope } from '@clientele/contracts';
import { SqliteEventStore, type NewEvent, type StoredEvent } from '@clientele/event-store';
import { CompressionTypes, Kafka, logLevel, Partitioners, type TopicMessages } from 'kafkajs';
import { InMemoryCheckpointStore } from './checkpoint.store';
import { CommandIngest, type CommandBatchDispatch, type CommandDispatch, type DispatchResult } from './command-ingest';
import { EventRelay } from './event-relay';
import { recordsFor } from './event-messages';
import { KeyHashPartitioner } from './partitioner';
import { ensureTopics, type TopicNames } from './topics';

/**
 * Kafka benchmarks the `bench` CLI calls, each against a running broker (`host:port`). They print
 * nothing and return figures; every run uses fresh topics (`bench-<random>.` prefix) and temporary
 * SQLite files, removed afterwards.
 */

export interface RelayBenchOptions {
  /** events pre-filled into the store; default 200,000 */
  events?: number;
  /** relay batch size; default the relay's */
  batchSize?: number;
  partitions?: number;
  compression?: 'none' | 'gzip';
  dir?: string;
}

export interface ThroughputFigure {
  items: number;
  seconds: number;
  perSecond: number;
  /** this process's CPU time (every thread) over the timed part, per item */
  cpuMicrosPerItem: number;
  /** what was measured, in words (store, dispatch, settings) */
  setup: string;
}

export interface LatencyFigure {
  events: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  setup: string;
}

function benchKafka(brokers: string): Kafka {
  return new Kafka({ clientId: 'clientele-bench', brokers: [brokers], logLevel: logLevel.NOTHING });
}

async function freshTopics(kafka: Kafka, partitions: number): Promise<TopicNames> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return await ensureTopics(admin, { topicPrefix: `bench-${randomUUID().slice(0, 8)}.`, partitions, replicationFactor: 1 });
  } finally {
    await admin.disconnect();
  }
}

/** a purchase-sized event of the catalogue's shape (about 300 bytes of JSON) */
function purchase(customer: number, n: number): NewEvent {
  const at = new Date(Date.UTC(2026, 0, 1) + n * 60_000).toISOString();
  return {
    id: randomUUID(),
    type: 'PurchaseRecorded',
    data: {
      customerId: `c${customer}`,
      orderId: `o${customer}-${n}`,
      occurredAt: at,
      lines: [{ sku: `SKU-${n % 50}`, category: 'books', quantity: 1 + (n % 3), unitPriceMinor: 1250, unitCostMinor: 700 }],
      totalMinor: 1250 * (1 + (n % 3)),
    },
    metadata: { occurredAt: at, schemaVersion: 1, correlationId: `bench-${customer}` },
  };
}

/** Fills a SQLite store with `events` purchases over 1 customer per 10 events, 100 events per append. */
async function filledStore(file: string, events: number): Promise<SqliteEventStore> {
  const store = new SqliteEventStore({ file, durability: 'normal' });
  const perStream = 10;
  const appends: Promise<unknown>[] = [];
  for (let first = 0; first < events; first += 100) {
    const group: NewEvent[] = [];
    for (let i = first; i < Math.min(first + 100, events); i++) group.push(purchase(Math.floor(i / perStream), i % perStream));
    // a group of 100 events of 10 customers: one append per customer stream
    for (let c = 0; c < group.length; c += perStream) {
      appends.push(store.appendToStream(`customer-c${Math.floor((first + c) / perStream)}`, group.slice(c, c + perStream)));
    }
    if (appends.length >= 200) await Promise.all(appends.splice(0));
  }
  await Promise.all(appends);
  return store;
}

/** Time for the relay to publish a pre-filled SQLite store into the broker, from its start to the last acknowledgement. */
export async function benchRelayThroughput(brokers: string, options: RelayBenchOptions = {}): Promise<ThroughputFigure> {
  const events = options.events ?? 200_000;
  const partitions = options.partitions ?? 6;
  const dir = mkdtempSync(join(options.dir ?? tmpdir(), 'clientele-relay-bench-'));
  const store = await filledStore(join(dir, 'events.sqlite'), events);
  const kafka = benchKafka(brokers);
  try {
    const topics = await freshTopics(kafka, partitions);
    const relay = new EventRelay({ store, kafka, topics, checkpoints: new InMemoryCheckpointStore(),
      compression: options.compression ?? 'none',
      ...(options.batchSize && { batchSize: options.batchSize }),
    });
    const head = await store.headPosition();
    const figure = await timed(
      head,
      `SQLite store, ${partitions} partitions, acks=-1 idempotent, batch ${options.batchSize ?? 'default'}, compression ${options.compression ?? 'none'}`,
      async () => {
        relay.start();
        await relay.waitForPosition(head, 600_000);
      },
    );
    await relay.stop();
    return figure;
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface ProducerCeilingOptions {
  /** events sent; default 200,000 */
  events?: number;
  /** events per request, as the relay's batch; default 2000 */
  batchSize?: number;
  partitions?: number;
  /** send each record with the headers the relay gives it; default true */
  headers?: boolean;
}

/**
 * What kafkajs alone does on this machine with the relay's records: the same keys, values and
 * headers (built by the relay's own `recordsFor` from purchase events, before the clock starts), sent
 * the way the relay sends them (idempotent producer, acks -1, one request in flight, `batchSize`
 * events per request, every topic in one request). No store is read and nothing is built while timed,
 * so the relay can at best come this close; `headers: false` shows what the headers cost kafkajs.
 */
export async function benchProducerCeiling(brokers: string, options: ProducerCeilingOptions = {}): Promise<ThroughputFigure> {
  const events = options.events ?? 200_000;
  const batchSize = options.batchSize ?? 2000;
  const partitions = options.partitions ?? 6;
  const headers = options.headers ?? true;
  const kafka = benchKafka(brokers);
  const topics = await freshTopics(kafka, partitions);
  const requests: TopicMessages[][] = [];
  for (let first = 0; first < events; first += batchSize) {
    const byTopic = new Map<string, TopicMessages>();
    for (let i = first; i < Math.min(first + batchSize, events); i++) {
      const customer = Math.floor(i / 10);
      const event: StoredEvent = {
        ...purchase(customer, i % 10),
        streamId: `customer-c${customer}`,
        revision: i % 10,
        position: i + 1,
        recordedAt: new Date(Date.UTC(2026, 0, 1) + i).toISOString(),
        hash: '',
        prevHash: '',
      };
      for (const record of recordsFor(event, topics)) {
        let entry = byTopic.get(record.topic);
        if (!entry) byTopic.set(record.topic, (entry = { topic: record.topic, messages: [] }));
        entry.messages.push({ key: record.key, value: record.value, ...(headers && { headers: record.headers }) });
      }
    }
    requests.push([...byTopic.values()]);
  }
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: KeyHashPartitioner });
  await producer.connect();
  try {
    return await timed(
      events,
      `kafkajs producer alone, records built beforehand, ${headers ? 'with the relay\'s headers' : 'no headers'}, ${partitions} partitions, acks=-1 idempotent, ${batchSize} per request`,
      async () => {
        for (const topicMessages of requests) await producer.sendBatch({ topicMessages, acks: -1, compression: CompressionTypes.None });
      },
    );
  } finally {
    await producer.disconnect();
  }
}

export interface IngestBenchOptions {
  /** commands produced before the ingest starts; default 50,000 */
  commands?: number;
  partitions?: number;
  /** what executes each command; default: accepts everything without work */
  dispatch?: CommandDispatch;
  /** what executes each fetched batch's commands instead (the bulk path); `concurrency` then does not apply */
  dispatchBatch?: CommandBatchDispatch;
  /** says which dispatch ran, for the report; default 'trivial dispatch (no work)' */
  dispatchLabel?: string;
  /** commands handled at once per partition (different keys); default the ingest's */
  concurrency?: number;
  /** partitions handled at the same time; default the ingest's */
  partitionsAtOnce?: number;
}

/** RecordPurchase envelopes for `commands / 3` customers: a registration and two purchases each. */
export function benchCommandEnvelopes(commands: number): CommandEnvelope[] {
  const out: CommandEnvelope[] = [];
  for (let i = 0; out.length < commands; i++) {
    const customerId = `bench-${i}`;
    out.push({ type: 'RegisterProspect', commandId: `r-${i}`, data: { customerId, source: 'bench', occurredAt: '2026-01-01T10:00:00Z', personal: { name: `Customer ${i}` } } });
    for (const order of [1, 2]) {
      if (out.length >= commands) break;
      out.push({
        type: 'RecordPurchase',
        commandId: `p-${i}-${order}`,
        data: {
          customerId,
          orderId: `o-${i}-${order}`,
          occurredAt: `2026-01-0${order + 1}T10:00:00Z`,
          lines: [{ sku: 'SKU-1', category: 'books', quantity: 2, unitPriceMinor: 1250, unitCostMinor: 700 }],
        },
      });
    }
  }
  return out;
}

/** Time for the ingest to read and dispatch commands already waiting on the topic. */
export async function benchIngestThroughput(brokers: string, options: IngestBenchOptions = {}): Promise<ThroughputFigure> {
  const total = options.commands ?? 50_000;
  const partitions = options.partitions ?? 6;
  const kafka = benchKafka(brokers);
  const topics = await freshTopics(kafka, partitions);
  const envelopes = benchCommandEnvelopes(total);
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, createPartitioner: Partitioners.DefaultPartitioner });
  await producer.connect();
  for (let i = 0; i < envelopes.length; i += 5000) {
    // keyed by customer: a customer's commands stay in order
    const messages = envelopes.slice(i, i + 5000).map((e) => ({ key: String((e.data as { customerId: string }).customerId), value: JSON.stringify(e) }));
    await producer.send({ topic: topics.commands, acks: -1, messages });
  }
  await producer.disconnect();

  let handled = 0;
  let allHandled: () => void = () => undefined;
  const done = new Promise<void>((resolve) => (allHandled = resolve));
  const count = (envelope: CommandEnvelope, result: DispatchResult | undefined): void => {
    if (result && !result.ok && !result.retryable) throw new Error(`bench command ${envelope.commandId} refused: ${result.reason}`);
    if (result?.ok && ++handled === total) allHandled();
  };
  const inner: CommandDispatch = options.dispatch ?? (async (): Promise<DispatchResult> => ({ ok: true }));
  const batchInner = options.dispatchBatch;
  const dispatchBy = batchInner
    ? {
        dispatchBatch: async (batch: readonly CommandEnvelope[]) => {
          const results = await batchInner(batch);
          batch.forEach((envelope, i) => count(envelope, results[i]));
          return results;
        },
      }
    : {
        dispatch: async (envelope: CommandEnvelope) => {
          const result = await inner(envelope);
          count(envelope, result);
          return result;
        },
        ...(options.concurrency !== undefined && { concurrency: options.concurrency }),
      };
  const ingest = new CommandIngest({
    kafka, topics, groupId: `bench-${randomUUID()}`, ...dispatchBy,
    ...(options.partitionsAtOnce !== undefined && { partitionsAtOnce: options.partitionsAtOnce }),
  });
  return timed(
    total,
    `${options.dispatchLabel ?? 'trivial dispatch (no work)'}, ${partitions} partitions, ${batchInner ? 'one dispatch per fetched batch' : `concurrency ${options.concurrency ?? 'default'}`} × ${options.partitionsAtOnce ?? 1} partitions at once, time includes the consumer group join`,
    async () => {
      await ingest.start();
      try {
        await done;
      } finally {
        await ingest.stop();
      }
    },
  );
}

/** Runs `work` and answers its wall-clock rate and this process's CPU time (every thread) per item. */
async function timed(items: number, setup: string, work: () => Promise<void>): Promise<ThroughputFigure> {
  const started = process.hrtime.bigint();
  const cpu = process.cpuUsage();
  await work();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const used = process.cpuUsage(cpu);
  return { items, seconds, perSecond: Math.round(items / seconds), cpuMicrosPerItem: Math.round((used.user + used.system) / Math.max(1, items)), setup };
}

export interface LatencyBenchOptions {
  /** events appended one after another; default 2,000 */
  events?: number;
  dir?: string;
}

/**
 * Appends events one by one to a SQLite store (durability full) with the relay live, and measures
 * from just before each append to the moment a consumer of the events topic receives it.
 */
export async function benchEndToEndLatency(brokers: string, options: LatencyBenchOptions = {}): Promise<LatencyFigure> {
  const count = options.events ?? 2000;
  const dir = mkdtempSync(join(options.dir ?? tmpdir(), 'clientele-latency-bench-'));
  const store = new SqliteEventStore({ file: join(dir, 'events.sqlite'), durability: 'full' });
  const kafka = benchKafka(brokers);
  const topics = await freshTopics(kafka, 1);
  const relay = new EventRelay({ store, kafka, topics, checkpoints: new InMemoryCheckpointStore(), lingerMs: 1 });
  const consumer = kafka.consumer({ groupId: `bench-${randomUUID()}`, maxWaitTimeInMs: 5 });
  const appendedAt = new Map<string, bigint>();
  const latencies: number[] = [];
  let allReceived: () => void = () => undefined;
  const received = new Promise<void>((resolve) => (allReceived = resolve));
  try {
    await consumer.connect();
    await consumer.subscribe({ topic: topics.events, fromBeginning: true });
    const joined = new Promise<void>((resolve) => consumer.on(consumer.events.GROUP_JOIN, () => resolve()));
    await consumer.run({
      eachMessage: async ({ message }) => {
        const id = message.headers?.['clientele-event-id']?.toString();
        const at = id === undefined ? undefined : appendedAt.get(id);
        if (at === undefined) return;
        latencies.push(Number(process.hrtime.bigint() - at) / 1e6);
        if (latencies.length === count) allReceived();
      },
    });
    await joined;
    relay.start();
    for (let i = 0; i < count; i++) {
      const event = purchase(i % 100, i);
      appendedAt.set(event.id, process.hrtime.bigint());
      await store.appendToStream(`customer-c${i % 100}`, [event]);
    }
    await received;
  } finally {
    await relay.stop();
    await consumer.disconnect();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
  latencies.sort((a, b) => a - b);
  const at = (q: number): number => Math.round((latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0) * 10) / 10;
  return {
    events: count,
    p50Ms: at(0.5),
    p99Ms: at(0.99),
    maxMs: at(1),
    setup: 'SQLite store (durability full), appends one at a time, relay linger 1 ms, consumer maxWait 5 ms, 1 partition',
  };
}
