import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import { NestFactory } from '@nestjs/core';
import { commandTarget, type DomainCommand } from '@clientele/domain';
import { createEventStore, dropPostgresSchema, type EventStore, type EventStoreConfig, type SqliteDurability } from '@clientele/event-store';
import { ClienteleModule } from './clientele.module';
import { CommandService, type BatchItemResult } from './command.service';
import { describeFailure, type CommandResult } from './command-result';
import { openStorage } from './storage';

export interface CommandPathBenchOptions {
  /** the workload: command envelopes, each stream's commands in the order they must run */
  envelopes: readonly unknown[];
  /** run first, untimed, on the same store, so the figures are of warm code (use other ids) */
  warmup?: readonly unknown[];
  /** callers sending one command at a time each; default 64 */
  callers?: number;
  durability?: SqliteDurability;
  /** where the temporary database goes; default the OS temp dir */
  dir?: string;
  /**
   * The store as the engine opens it (openStorage): personal fields encrypted with a key per
   * customer, keys in the same file or schema; default the store alone.
   */
  personalData?: boolean;
  /**
   * A PostgreSQL server to run on instead of a SQLite file: the store works in a fresh schema that
   * is dropped afterwards (`durability` then does not apply: every commit is on disk when answered).
   */
  postgresUrl?: string;
}

export interface BatchedImportBenchOptions {
  envelopes: readonly unknown[];
  warmup?: readonly unknown[];
  /** envelopes per `executeBatch` (or `importBatch`) call; default 10,000 */
  batchSize?: number;
  /** commands of a batch in flight at once (`batchConcurrency`); default the module's default */
  concurrency?: number;
  durability?: SqliteDurability;
  dir?: string;
  /** as in CommandPathBenchOptions */
  personalData?: boolean;
}

/** How the commands of a run ended: `refused` are rule refusals and conflicts the workload provoked. */
export interface CommandOutcomes {
  applied: number;
  duplicate: number;
  no_op: number;
  refused: number;
}

export interface CommandPathFigure {
  /** `full` on PostgreSQL: an answered command is on disk (synchronous_commit on) */
  durability: SqliteDurability;
  /** concurrent callers (command path) or the batch size (batched import) */
  callers: number;
  commands: number;
  events: number;
  seconds: number;
  commandsPerSecond: number;
  eventsPerSecond: number;
  /** per command, from the call to its answer; absent for batched imports (answered per batch) */
  latencyMs?: { p50: number; p99: number; max: number };
  /** process CPU (user + system) per command: steadier than wall time on a shared machine */
  cpuMicrosPerCommand: number;
  outcomes: CommandOutcomes;
}

/**
 * The full command path as a caller meets it (`CommandService.execute`: validate, load or look up
 * the stream state, decide, append with group commit, answer after the commit), with `callers`
 * callers each sending its next command when the previous one is answered. Each stream belongs to
 * one caller, so a stream's commands keep their order. A fresh SQLite file per run; prints nothing.
 */
export async function benchCommandPath(options: CommandPathBenchOptions): Promise<CommandPathFigure> {
  const callers = options.callers ?? 64;
  const durability = options.postgresUrl ? 'full' : (options.durability ?? 'full');
  const open = options.postgresUrl ? postgresStore(options.postgresUrl, options.personalData) : sqliteStore(durability, options.dir, options.personalData);
  return withCommandService(open, callers, async (commands, store) => {
    if (options.warmup) await runCallers(commands, queuesFor(options.warmup, callers));
    const queues = queuesFor(options.envelopes, callers);
    const eventsBefore = await store.headPosition();
    const cpu = process.cpuUsage();
    const started = process.hrtime.bigint();
    const { latencies, outcomes } = await runCallers(commands, queues);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const cpuUsed = process.cpuUsage(cpu);
    const events = (await store.headPosition()) - eventsBefore;
    latencies.sort((a, b) => a - b);
    return figure(durability, callers, options.envelopes.length, events, seconds, cpuUsed, outcomes, {
      p50: round(percentile(latencies, 0.5), 2),
      p99: round(percentile(latencies, 0.99), 2),
      max: round(latencies[latencies.length - 1] ?? 0, 2),
    });
  });
}

/**
 * A backfill: `executeBatch` over `batchSize` envelopes at a time. The batch runs its streams
 * concurrently, so the store's group commit writes many commands in each transaction.
 */
export async function benchBatchedImport(options: BatchedImportBenchOptions): Promise<CommandPathFigure> {
  const batchSize = options.batchSize ?? 10_000;
  const durability = options.durability ?? 'full';
  return withCommandService(sqliteStore(durability, options.dir, options.personalData), options.concurrency, async (commands, store) => {
    if (options.warmup) await importInBatches(commands, options.warmup, batchSize, newOutcomes());
    const eventsBefore = await store.headPosition();
    const outcomes = newOutcomes();
    const cpu = process.cpuUsage();
    const started = process.hrtime.bigint();
    await importInBatches(commands, options.envelopes, batchSize, outcomes);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const cpuUsed = process.cpuUsage(cpu);
    const events = (await store.headPosition()) - eventsBefore;
    return figure(durability, batchSize, options.envelopes.length, events, seconds, cpuUsed, outcomes);
  });
}

/**
 * The bulk path of imports: `importBatch` over `batchSize` envelopes at a time (each stream's
 * commands decided together and stored in one append; all appends of a batch in one go).
 */
export async function benchBulkImport(options: Omit<BatchedImportBenchOptions, 'concurrency'>): Promise<CommandPathFigure> {
  const batchSize = options.batchSize ?? 10_000;
  const durability = options.durability ?? 'full';
  return withCommandService(sqliteStore(durability, options.dir, options.personalData), undefined, async (commands, store) => {
    const importAll = async (envelopes: readonly unknown[], outcomes: CommandOutcomes): Promise<void> => {
      for (let i = 0; i < envelopes.length; i += batchSize) {
        const results = await commands.importBatch(envelopes.slice(i, i + batchSize));
        for (const item of results) count(item, outcomes);
      }
    };
    if (options.warmup) await importAll(options.warmup, newOutcomes());
    const eventsBefore = await store.headPosition();
    const outcomes = newOutcomes();
    const cpu = process.cpuUsage();
    const started = process.hrtime.bigint();
    await importAll(options.envelopes, outcomes);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const cpuUsed = process.cpuUsage(cpu);
    const events = (await store.headPosition()) - eventsBefore;
    return figure(durability, batchSize, options.envelopes.length, events, seconds, cpuUsed, outcomes);
  });
}

/** A store for one run, and how to remove everything it wrote. */
interface BenchStore {
  store: EventStore;
  remove(): Promise<void>;
}

function sqliteStore(durability: SqliteDurability, dir: string | undefined, personalData = false): () => Promise<BenchStore> {
  return async () => {
    const root = mkdtempSync(join(dir ?? tmpdir(), 'clientele-command-bench-'));
    return {
      store: await openBenchStore({ kind: 'sqlite', file: join(root, 'bench.sqlite'), durability }, root, personalData),
      remove: async () => rmSync(root, { recursive: true, force: true }),
    };
  };
}

function postgresStore(url: string, personalData = false): () => Promise<BenchStore> {
  return async () => {
    const schema = `bench_${randomUUID().replace(/-/g, '').slice(0, 16)}`;
    return {
      store: await openBenchStore({ kind: 'postgres', url, schema }, tmpdir(), personalData),
      remove: () => dropPostgresSchema(url, schema),
    };
  };
}

/**
 * The event store alone, or as the engine opens it (openStorage, with a fresh master key: personal
 * fields encrypted, keys in the same file or schema). The bench keeps no checkpoints; the
 * application closes the store.
 */
async function openBenchStore(config: EventStoreConfig, dataDir: string, personalData: boolean): Promise<EventStore> {
  if (!personalData) return createEventStore(config);
  const opened = await openStorage({ dataDir, store: config, masterKey: { kind: 'given', key: randomBytes(32) } });
  await opened.checkpoints.close();
  return opened.store;
}

async function withCommandService<T>(
  open: () => Promise<BenchStore>,
  concurrency: number | undefined,
  work: (commands: CommandService, store: EventStore) => Promise<T>,
): Promise<T> {
  const { store, remove } = await open();
  try {
    const app = await NestFactory.createApplicationContext(
      ClienteleModule.forRoot({ store, processManager: false, ...(concurrency ? { batchConcurrency: concurrency } : {}) }),
      { logger: false },
    ).catch(async (error: unknown) => {
      await store.close(); // the application closes it on shutdown, but there is none
      throw error;
    });
    try {
      return await work(app.get(CommandService), store);
    } finally {
      await app.close();
    }
  } finally {
    await remove();
  }
}

/** Streams are dealt to callers in order of first appearance; each caller keeps its streams' order. */
function queuesFor(envelopes: readonly unknown[], callers: number): unknown[][] {
  const queues: unknown[][] = Array.from({ length: Math.max(1, callers) }, () => []);
  const owner = new Map<string, number>();
  for (const envelope of envelopes) {
    const streamId = streamOf(envelope);
    let caller = owner.get(streamId);
    if (caller === undefined) {
      caller = owner.size % queues.length;
      owner.set(streamId, caller);
    }
    queues[caller]!.push(envelope);
  }
  return queues;
}

function streamOf(envelope: unknown): string {
  try {
    // Routing only reads the id field of the command's data; validation happens in the timed call.
    return commandTarget(envelope as DomainCommand).streamId;
  } catch {
    return '';
  }
}

async function runCallers(
  commands: CommandService,
  queues: unknown[][],
): Promise<{ latencies: number[]; outcomes: CommandOutcomes }> {
  const latencies: number[] = [];
  const outcomes = newOutcomes();
  const caller = async (queue: unknown[]): Promise<void> => {
    for (const envelope of queue) {
      const sent = process.hrtime.bigint();
      let result: CommandResult | undefined;
      try {
        result = await commands.execute(envelope);
      } catch (error) {
        countFailure(error, outcomes);
      }
      latencies.push(Number(process.hrtime.bigint() - sent) / 1e6);
      if (result) outcomes[result.status] += 1;
    }
  };
  await Promise.all(queues.map(caller));
  return { latencies, outcomes };
}

async function importInBatches(
  commands: CommandService,
  envelopes: readonly unknown[],
  batchSize: number,
  outcomes: CommandOutcomes,
): Promise<void> {
  for (let i = 0; i < envelopes.length; i += batchSize) {
    const results = await commands.executeBatch(envelopes.slice(i, i + batchSize));
    for (const item of results) count(item, outcomes);
  }
}

function count(item: BatchItemResult, outcomes: CommandOutcomes): void {
  if (item.ok) {
    outcomes[item.result.status] += 1;
    return;
  }
  if (item.failure.kind === 'internal' || item.failure.kind === 'invalid') {
    throw new Error(`bench command ${item.commandId ?? item.index} failed: ${item.failure.message}`);
  }
  outcomes.refused += 1;
}

// A workload may provoke rule refusals (that is a figure); an invalid or broken command is a bug.
function countFailure(error: unknown, outcomes: CommandOutcomes): void {
  const { kind } = describeFailure(error);
  if (kind === 'rule' || kind === 'conflict') outcomes.refused += 1;
  else throw error;
}

function newOutcomes(): CommandOutcomes {
  return { applied: 0, duplicate: 0, no_op: 0, refused: 0 };
}

function figure(
  durability: SqliteDurability,
  callers: number,
  commands: number,
  events: number,
  seconds: number,
  cpu: NodeJS.CpuUsage,
  outcomes: CommandOutcomes,
  latencyMs?: CommandPathFigure['latencyMs'],
): CommandPathFigure {
  return {
    durability,
    callers,
    commands,
    events,
    seconds: round(seconds, 3),
    commandsPerSecond: Math.round(commands / seconds),
    eventsPerSecond: Math.round(events / seconds),
    ...(latencyMs ? { latencyMs } : {}),
    cpuMicrosPerCommand: Math.round((cpu.user + cpu.system) / commands),
    outcomes,
  };
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)] ?? 0;
}

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
