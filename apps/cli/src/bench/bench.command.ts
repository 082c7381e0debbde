import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';

import { NestFactory } from '@nestjs/core';

import { ClienteleModule, CommandService, benchBatchedImport, benchBulkImport, benchCommandPath, ingestBatchDispatch, type CommandPathBenchOptions, type CommandPathFigure } from '@clientele/application';
import { SqliteEventStore, benchPostgres, benchSqliteAppends } from '@clientele/event-store';
import { benchEndToEndLatency, benchIngestThroughput, benchProducerCeiling, benchRelayThroughput } from '@clientele/messaging';
import { SqliteReadModelStore, benchRebuild, benchStatistics, type RebuildFigures } from '@clientele/projections';

import { UsageError, type CliContext } from '../cli-context';
import { generateSyntheticCommands } from '@clientele/generator';
import { runSectionInOwnProcess } from './section-process';

export interface BenchOptions {
  quick?: boolean;
  json?: boolean;
  seed: string;
  /** where temporary database files go; default the OS temp dir */
  dir?: string;
  /** PostgreSQL connection string, for sections that need a server */
  pg?: string;
  /** Kafka broker (host:port), for sections that need Kafka */
  kafka?: string;
  /** `--section`: run only these sections (names of BENCH_SECTIONS), in BENCH_SECTIONS order */
  section?: string[];
  /** `--in-process`: run every section in this process instead of each in a process of its own */
  inProcess?: boolean;
  /**
   * `--case`: with one section that has cases, run only this one (its index, from 0). The bench
   * passes it to run each case of such a section in a process of its own.
   */
  case?: string;
}

/** One line of the table. Figures a case does not have stay out (printed as `-`). */
export interface BenchRow {
  section: string;
  name: string;
  durability?: string;
  commandsPerSecond?: number;
  eventsPerSecond?: number;
  appendsPerSecond?: number;
  p50Ms?: number;
  p99Ms?: number;
  cpuMicrosPerCommand?: number;
  note?: string;
}

/**
 * A part of the benchmark. To add one (projection rebuild, statistics, another store), push it on
 * BENCH_SECTIONS: `skip` says in a sentence why it cannot run with these options (a server not
 * given), `run` measures and answers rows. Sections run one after another so they never share the CPU,
 * each in a fresh process of its own (see runBench) so none measures on a heap another one filled.
 */
export interface BenchSection {
  name: string;
  skip?(options: BenchOptions): string | undefined;
  /**
   * Optional: how many cases the section has, when each must be measured in a process of its own
   * (its RSS is then its own, not what an earlier case left). `run` measures every case, or only
   * the one `options.case` names.
   */
  cases?(options: BenchOptions): number;
  run(options: BenchOptions): Promise<BenchRow[]>;
}

/** Workload sizes: the full run is what BENCHMARKS.md reports; `--quick` is a smoke test. */
const sizes = (quick: boolean | undefined) =>
  quick
    ? { customers64: 120, customers8: 80, customers1: 40, importCustomers: 120, importBatch: 200, warmupCustomers: 20 }
    : { customers64: 4000, customers8: 2000, customers1: 600, importCustomers: 4000, importBatch: 10_000, warmupCustomers: 300 };

/** The seeded synthetic workload (same seed, same commands); `prefix` keeps runs on one store apart. */
const workload = (options: BenchOptions, customers: number, prefix: string): unknown[] =>
  generateSyntheticCommands({ customers, seed: options.seed, idPrefix: prefix });

const commandPathRow = (section: string, name: string, f: CommandPathFigure): BenchRow => ({
  section,
  name,
  durability: f.durability,
  commandsPerSecond: f.commandsPerSecond,
  eventsPerSecond: f.eventsPerSecond,
  ...(f.latencyMs ? { p50Ms: f.latencyMs.p50, p99Ms: f.latencyMs.p99 } : {}),
  cpuMicrosPerCommand: f.cpuMicrosPerCommand,
  note: `${f.commands} commands, ${f.events} events${f.outcomes.refused > 0 ? `, ${f.outcomes.refused} refused by rules` : ''}${f.outcomes.no_op > 0 ? `, ${f.outcomes.no_op} no-op` : ''}`,
});

export const commandPathSection: BenchSection = {
  name: 'command path',
  run: async (options) => {
    const size = sizes(options.quick);
    const rows: BenchRow[] = [];
    for (const durability of ['full', 'normal'] as const) {
      const store = { durability, ...(options.dir ? { dir: options.dir } : {}) };
      rows.push(...(await commandPathRows(options, 'command path', '', [[1, size.customers1], [64, size.customers64]], store)));
    }
    // the store as the engine opens it: personal fields encrypted, a key per customer
    const engineStore = { durability: 'full' as const, personalData: true, ...(options.dir ? { dir: options.dir } : {}) };
    rows.push(...(await commandPathRows(options, 'command path', 'personal data encrypted, ', [[1, size.customers1], [64, size.customers64]], engineStore)));
    return rows;
  },
};

/**
 * How often each command-path and batched-import case runs: untimed rounds first, then the timed ones, each on a fresh
 * store in this process. A first round runs on code V8 has not optimised yet: measured on the
 * 2-core machines, its CPU per command was 60–90 µs where the rounds after it took 45–60, so a
 * single round reported how fast a freshly started process is, not a running engine. The row
 * gives the median of the timed rounds and lists each round in its note. `--quick`: one round.
 */
export const COMMAND_PATH_ROUNDS = { untimed: 1, timed: 3 } as const;

/** The median of each figure over rounds of one case (same workload, so same commands and events). */
export function medianOfRounds(rounds: readonly CommandPathFigure[]): CommandPathFigure {
  if (rounds.length === 0) throw new Error('medianOfRounds: no rounds');
  const median = (pick: (f: CommandPathFigure) => number): number => {
    const values = rounds.map(pick).sort((a, b) => a - b);
    const middle = Math.floor(values.length / 2);
    return values.length % 2 === 1 ? values[middle]! : (values[middle - 1]! + values[middle]!) / 2;
  };
  const first = rounds[0]!;
  return {
    ...first,
    seconds: median((f) => f.seconds),
    commandsPerSecond: median((f) => f.commandsPerSecond),
    eventsPerSecond: median((f) => f.eventsPerSecond),
    cpuMicrosPerCommand: median((f) => f.cpuMicrosPerCommand),
    ...(first.latencyMs
      ? { latencyMs: { p50: median((f) => f.latencyMs!.p50), p99: median((f) => f.latencyMs!.p99), max: median((f) => f.latencyMs!.max) } }
      : {}),
  };
}

/**
 * The full command path per (callers, customers): each caller sends its next command when the
 * previous one is answered, on warm code (a warm-up workload on other ids first in every round,
 * and COMMAND_PATH_ROUNDS.untimed whole rounds before the timed ones), one row each.
 */
async function commandPathRows(
  options: BenchOptions,
  section: string,
  label: string,
  runs: readonly (readonly [callers: number, customers: number])[],
  store: Pick<CommandPathBenchOptions, 'durability' | 'dir' | 'postgresUrl' | 'personalData'>,
): Promise<BenchRow[]> {
  const warmup = workload(options, sizes(options.quick).warmupCustomers, 'warm');
  const rows: BenchRow[] = [];
  for (const [callers, customers] of runs) {
    const envelopes = workload(options, customers, 'bench');
    rows.push(await rowOfRounds(options, section, `${label}${callers} caller${callers > 1 ? 's' : ''}`, () => benchCommandPath({ envelopes, warmup, callers, ...store })));
  }
  return rows;
}

/** One case in COMMAND_PATH_ROUNDS (one round with `--quick`), each on a fresh store: the row of their medians. */
async function rowOfRounds(options: BenchOptions, section: string, name: string, round: () => Promise<CommandPathFigure>): Promise<BenchRow> {
  const { untimed, timed } = options.quick ? { untimed: 0, timed: 1 } : COMMAND_PATH_ROUNDS;
  const rounds: CommandPathFigure[] = [];
  for (let i = 0; i < untimed + timed; i += 1) {
    const figure = await round();
    if (i >= untimed) rounds.push(figure);
  }
  const row = commandPathRow(section, name, medianOfRounds(rounds));
  if (rounds.length > 1) row.note += `; median of ${roundsNote(rounds, untimed)}`;
  return row;
}

/** `3 rounds (1 untimed before): 18,311 · 23,605 · 28,967 commands/s, p99 8.48 · 5.63 · 5.57 ms` */
export function roundsNote(rounds: readonly CommandPathFigure[], untimed: number): string {
  const each = (values: number[]): string => values.map((v) => v.toLocaleString('en-US')).join(' · ');
  const p99s = rounds.flatMap((f) => (f.latencyMs ? [f.latencyMs.p99] : []));
  return (
    `${rounds.length} rounds${untimed > 0 ? ` (${untimed} untimed before)` : ''}: ${each(rounds.map((f) => Math.round(f.commandsPerSecond)))} commands/s` +
    (p99s.length === rounds.length ? `, p99 ${each(p99s)} ms` : '')
  );
}

const IMPORT_CONCURRENCY = 256;

export const batchedImportSection: BenchSection = {
  name: 'batched import',
  run: async (options) => {
    const size = sizes(options.quick);
    const rows: BenchRow[] = [];
    const envelopes = workload(options, size.importCustomers, 'import');
    const warmup = workload(options, size.warmupCustomers, 'warm');
    for (const durability of ['full', 'normal'] as const) {
      const run = () =>
        benchBatchedImport({
          envelopes,
          warmup,
          batchSize: size.importBatch,
          // Larger groups per fsync than the default 64: a backfill has no caller waiting per command.
          concurrency: IMPORT_CONCURRENCY,
          durability,
          ...(options.dir ? { dir: options.dir } : {}),
        });
      rows.push(await rowOfRounds(options, 'batched import', `executeBatch of ${size.importBatch}, ${IMPORT_CONCURRENCY} in flight`, run));
    }
    // the store alone at both durabilities, then as the engine opens it (personal fields encrypted)
    const bulkRuns = [
      { durability: 'full', personalData: false },
      { durability: 'normal', personalData: false },
      { durability: 'full', personalData: true },
    ] as const;
    for (const { durability, personalData } of bulkRuns) {
      const run = () =>
        benchBulkImport({ envelopes, warmup, batchSize: size.importBatch, durability, personalData, ...(options.dir ? { dir: options.dir } : {}) });
      const name = personalData ? `importBatch of ${size.importBatch}, personal data encrypted` : `importBatch of ${size.importBatch} (bulk: one append per stream)`;
      rows.push(await rowOfRounds(options, 'batched import', name, run));
    }
    return rows;
  },
};

export const sqliteAppendsSection: BenchSection = {
  name: 'sqlite appends',
  run: async (options) => {
    const result = await benchSqliteAppends({
      ...(options.quick ? { batchedEvents: 2000, singleAppends: 100, concurrentAppends: 1000 } : {}),
      ...(options.dir ? { dir: options.dir } : {}),
    });
    return result.figures.map((f) => ({
      section: 'sqlite appends',
      name: f.name,
      durability: f.durability,
      eventsPerSecond: f.eventsPerSecond,
      appendsPerSecond: f.appendsPerSecond,
      note: `${f.events} events`,
    }));
  },
};

export const postgresSection: BenchSection = {
  name: 'postgresql appends',
  skip: (options) => (options.pg ? undefined : 'no server given (pass --pg <url>)'),
  run: async (options) => {
    // A fresh schema, dropped afterwards: safe against any database the operator points at.
    const f = await benchPostgres(
      options.pg!,
      options.quick ? { appends: 200, batchedEvents: 2000, batchSize: 500 } : {},
    );
    const row = (name: string, value: number, per: 'appends' | 'events'): BenchRow => ({
      section: 'postgresql appends',
      name,
      ...(per === 'appends' ? { appendsPerSecond: value, eventsPerSecond: value } : { eventsPerSecond: value }),
    });
    // The full command path (validate, decide, append, answer after the commit) on a PostgreSQL store,
    // each caller sending its next command when the previous one is answered.
    const size = sizes(options.quick);
    const commandPath = await commandPathRows(options, 'postgresql appends', 'command path, ', [[1, size.customers1], [8, size.customers8]], { postgresUrl: options.pg! });
    // the same on the store as the engine opens it: personal fields encrypted, keys in the schema
    const encrypted = await commandPathRows(options, 'postgresql appends', 'command path, personal data encrypted, ', [[8, size.customers8]], {
      postgresUrl: options.pg!,
      personalData: true,
    });
    return [
      ...commandPath,
      ...encrypted,
      row('single appends, one caller', f.singleWriterAppendsPerSecond, 'appends'),
      row('8 callers, one process (group commit)', f.eightWritersOneProcessAppendsPerSecond, 'appends'),
      row('8 callers, 8 pools (as 8 processes)', f.eightWritersEightPoolsAppendsPerSecond, 'appends'),
      row('batched appends', f.batchedEventsPerSecond, 'events'),
      row('catch-up subscription read', f.catchUpEventsPerSecond, 'events'),
    ];
  },
};

export const projectionRebuildSection: BenchSection = {
  name: 'projection rebuild',
  run: async (options) => {
    const events = options.quick ? 5_000 : 200_000;
    const lookups = options.quick ? 200 : 2_000;
    const dir = options.dir ? { dir: options.dir } : {};
    // every read model, as `clientele replay` and a version change rebuild; then the two of the older figures, for comparison
    const all = await benchRebuild(events, { models: 'all', lookups, floor: true, ...dir });
    const two = await benchRebuild(events, { models: 'profiles+referrals', lookups: 0, ...dir });
    const note = (f: RebuildFigures) =>
      `${f.events} events, ${f.customers} customers, ${Math.round(f.eventsPerCpuSecond).toLocaleString('en-US')} events per CPU second, peak RSS ${f.peakRssMb} MB`;
    return [
      { section: 'projection rebuild', name: 'every read model from the log', eventsPerSecond: all.eventsPerSecond, note: note(all) },
      { section: 'projection rebuild', name: 'profiles + referrals from the log', eventsPerSecond: two.eventsPerSecond, note: note(two) },
      {
        section: 'projection rebuild',
        name: 'profile lookup after the rebuild',
        p50Ms: all.lookupP50Ms,
        p99Ms: all.lookupP99Ms,
        note: `${all.lookups} lookups, CPU p99 ${all.lookupCpuP99Ms} ms`,
      },
      ...rebuildFloorRows(all),
    ];
  },
};

/**
 * What a rebuild keeps in memory as the log grows, for "memory stays flat as events grow": the JS
 * heap still in use after full collections during the rebuild (garbage the collector had not reclaimed yet
 * is not memory the rebuild holds), and the process's RSS beside it. Two series: the same customers
 * with ever more events each, and customers growing with the log past a low resident limit, where
 * the rebuild instances write customers out and read them back instead of keeping them all. Each
 * case runs in a process of its own (unless `--in-process`), so its RSS is not what an earlier one
 * left. The collections cost time, so these rows give no speed.
 */
export const rebuildMemorySection: BenchSection = {
  name: 'rebuild memory',
  cases: (options) => rebuildMemoryCases(options).length,
  run: async (options) => {
    const dir = options.dir ? { dir: options.dir } : {};
    const cases = rebuildMemoryCases(options);
    const rows: BenchRow[] = [];
    for (const c of options.case === undefined ? cases : [cases[caseIndex(options.case, cases.length)]!]) {
      const f = await benchRebuild(c.events, { ...c.options, lookups: 0, retainedHeap: true, ...dir });
      const limit = c.options.residentLimit !== undefined ? `, ${c.options.residentLimit.toLocaleString('en-US')} resident` : '';
      rows.push({
        section: 'rebuild memory',
        name: `${f.customers.toLocaleString('en-US')} customers, ${c.events.toLocaleString('en-US')} events${limit}`,
        note: `retained heap peak ${f.peakRetainedHeapMb ?? '-'} MB, RSS ${f.startRssMb} → ${f.peakRssMb} MB`,
      });
    }
    return rows;
  },
};

/** the same customers with ever more events each; then customers growing with the log past a low resident limit */
const rebuildMemoryCases = (options: BenchOptions): { events: number; options: { customers?: number; residentLimit?: number } }[] => {
  const fixed = options.quick ? { customers: 100, events: [2_000, 4_000] } : { customers: 10_000, events: [100_000, 200_000, 400_000, 800_000] };
  const bounded = options.quick ? { residentLimit: 100, events: [2_400, 4_800] } : { residentLimit: 5_000, events: [100_000, 200_000, 400_000, 800_000] };
  return [
    ...fixed.events.map((events) => ({ events, options: { customers: fixed.customers } })),
    ...bounded.events.map((events) => ({ events, options: { residentLimit: bounded.residentLimit } })),
  ];
};

/** `--case` as an index into a section's cases */
const caseIndex = (value: string, count: number): number => {
  const index = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!(index < count)) throw new UsageError(`--case: expected a case number from 0 to ${count - 1}, got ${JSON.stringify(value)}`);
  return index;
};

/**
 * The rebuild's floor on this machine: its rows written again by better-sqlite3 alone, and its log
 * read alone, each as events of the log per second, so the rebuild row reads against them.
 */
function rebuildFloorRows(f: RebuildFigures): BenchRow[] {
  if (!f.floor) return [];
  const { rows, insertSeconds, indexSeconds, readSeconds } = f.floor;
  const write = insertSeconds + indexSeconds;
  return [
    {
      section: 'projection rebuild',
      name: 'baseline: its rows written again by better-sqlite3 alone',
      eventsPerSecond: Math.round(f.events / write),
      note: `${rows.toLocaleString('en-US')} rows of every read model: ${insertSeconds.toFixed(2)} s of inserts, ${indexSeconds.toFixed(2)} s of deferred indexes`,
    },
    {
      section: 'projection rebuild',
      name: 'baseline: its log read and parsed alone',
      eventsPerSecond: Math.round(f.events / readSeconds),
      note: `${f.events} events in pages of 1,000, ${readSeconds.toFixed(2)} s`,
    },
  ];
}

/**
 * The statistics read model built from a log the command path wrote (the seeded workload imported
 * first, untimed), then every statistic timed. The log comes from real commands because the large
 * synthetic event logs of the tests are not part of the production build.
 */
export const statisticsSection: BenchSection = {
  name: 'statistics',
  run: async (options) => {
    const root = mkdtempSync(join(options.dir ?? tmpdir(), 'clientele-bench-statistics-'));
    const store = new SqliteEventStore({ file: join(root, 'events.sqlite'), durability: 'normal' });
    const readModels = new SqliteReadModelStore(join(root, 'read-models.sqlite'));
    try {
      const app = await NestFactory.createApplicationContext(
        ClienteleModule.forRoot({ store, processManager: false, closeOnShutdown: false }),
        { logger: false },
      );
      try {
        const envelopes = workload(options, options.quick ? 100 : 10_000, 'stats');
        for (let i = 0; i < envelopes.length; i += 10_000) {
          await app.get(CommandService).executeBatch(envelopes.slice(i, i + 10_000));
        }
      } finally {
        await app.close();
      }
      const events = await store.readAll();
      const f = await benchStatistics({ store: readModels, chunks: [events], runs: options.quick ? 3 : 15 });
      return [
        {
          section: 'statistics',
          name: 'build the statistics read model',
          eventsPerSecond: f.eventsPerSecond,
          note: `${f.events} events, ${f.customers} customers`,
        },
        ...f.queries.map((q) => ({ section: 'statistics', name: `query ${q.name}`, p50Ms: q.p50Ms, p99Ms: q.p99Ms })),
      ];
    } finally {
      await readModels.close();
      await store.close();
      rmSync(root, { recursive: true, force: true });
    }
  },
};

/** How the engine's ingest runs (`startMessaging`'s defaults): commands at once per partition, partitions at once. */
const INGEST_CONCURRENCY = 32;
const INGEST_PARTITIONS_AT_ONCE = 6;

/**
 * The ingest's full path as the engine runs it: consume, validate, hand each fetched batch to the
 * application's bulk path (`importBatch`, holding a customer after a failure for now) so the events
 * are stored (SQLite, durability full), commit offsets. Answers the figure and how many events the
 * store holds afterwards, which shows the commands really ran.
 */
async function benchIngestFullPath(brokers: string, commands: number, dir: string | undefined) {
  const root = mkdtempSync(join(dir ?? tmpdir(), 'clientele-bench-ingest-'));
  const store = new SqliteEventStore({ file: join(root, 'events.sqlite'), durability: 'full' });
  try {
    const app = await NestFactory.createApplicationContext(
      ClienteleModule.forRoot({ store, processManager: false, closeOnShutdown: false }),
      { logger: false },
    );
    try {
      const service = app.get(CommandService);
      const figure = await benchIngestThroughput(brokers, {
        commands,
        partitionsAtOnce: INGEST_PARTITIONS_AT_ONCE,
        // the engine's own dispatch (the same bulk path and answers)
        dispatchBatch: ingestBatchDispatch(service),
        dispatchLabel: 'CommandService.importBatch (validate, one look-up and one append per customer, SQLite durability full)',
      });
      return { figure, storedEvents: await store.headPosition() };
    } finally {
      await app.close();
    }
  } finally {
    await store.close();
    rmSync(root, { recursive: true, force: true });
  }
}

export const kafkaSection: BenchSection = {
  name: 'kafka',
  skip: (options) => (options.kafka ? undefined : 'no broker given (pass --kafka <host:port>)'),
  run: async (options) => {
    const brokers = options.kafka!;
    const dir = options.dir ? { dir: options.dir } : {};
    const events = options.quick ? 2_000 : 200_000;
    // the ceiling: kafkajs alone sending the relay's records, with and without their headers
    const ceiling = await benchProducerCeiling(brokers, { events });
    const bare = await benchProducerCeiling(brokers, { events, headers: false });
    const relay = await benchRelayThroughput(brokers, { events, ...dir });
    const ingest = await benchIngestThroughput(brokers, {
      commands: options.quick ? 1_000 : 50_000,
      concurrency: INGEST_CONCURRENCY,
      partitionsAtOnce: INGEST_PARTITIONS_AT_ONCE,
    });
    const stored = await benchIngestFullPath(brokers, options.quick ? 1_000 : 20_000, options.dir);
    const latency = await benchEndToEndLatency(brokers, { events: options.quick ? 100 : 2_000, ...dir });
    const baseline = (name: string, f: typeof ceiling): BenchRow => ({
      section: 'kafka',
      name,
      eventsPerSecond: f.perSecond,
      note: `${f.setup}, ${f.cpuMicrosPerItem} µs CPU per event`,
    });
    return [
      baseline('baseline: kafkajs alone, the relay\'s records', ceiling),
      baseline('baseline: kafkajs alone, no headers', bare),
      { section: 'kafka', name: 'relay: store → events topic', eventsPerSecond: relay.perSecond, note: `${relay.setup}, ${relay.cpuMicrosPerItem} µs CPU per event` },
      { section: 'kafka', name: 'ingest: commands topic → dispatch (transport only)', commandsPerSecond: ingest.perSecond, note: ingest.setup },
      {
        section: 'kafka',
        name: 'ingest: commands topic → events stored',
        commandsPerSecond: stored.figure.perSecond,
        eventsPerSecond: Math.round(stored.storedEvents / stored.figure.seconds),
        cpuMicrosPerCommand: stored.figure.cpuMicrosPerItem,
        note: `${stored.figure.items} commands, ${stored.storedEvents} events stored; ${stored.figure.setup}`,
      },
      { section: 'kafka', name: 'append → consumer received', p50Ms: latency.p50Ms, p99Ms: latency.p99Ms, note: latency.setup },
    ];
  },
};

/**
 * Every section `clientele bench` runs, in order. Sections of other libraries join here as their
 * bench functions land; a section needing a server skips itself with a
 * reason when its option (`--pg`, `--kafka`) is not given.
 */
export const BENCH_SECTIONS: BenchSection[] = [
  commandPathSection,
  batchedImportSection,
  sqliteAppendsSection,
  projectionRebuildSection,
  rebuildMemorySection,
  statisticsSection,
  postgresSection,
  kafkaSection,
];

export interface BenchReport {
  machine: { cpus: number; cpuModel: string; memoryGiB: number; node: string; date: string; loadAverage: number[] };
  rows: BenchRow[];
  skipped: { section: string; reason: string }[];
  /**
   * With `eachSectionInOwnProcess`, each section's own peak RSS (that of the process that ran it
   * alone). Otherwise the one process's RSS high-water mark after each section ran: it only grows,
   * so a section's own peak is at most its figure.
   */
  peakRssMiBAfter: { section: string; peakRssMiB: number }[];
  /** the highest peak RSS of any process of the run */
  peakRssMiB: number;
  /** true when each section ran in a fresh process of its own; absent or false when one process ran them all */
  eachSectionInOwnProcess?: boolean;
}

/**
 * The sections `--section` names, in the order of `sections`; all of them when it names none. An
 * unknown name refuses the whole run before anything is measured.
 */
const selectSections = (sections: readonly BenchSection[], names: readonly string[] | undefined): readonly BenchSection[] => {
  if (names === undefined) return sections;
  const unknown = names.filter((name) => !sections.some((s) => s.name === name));
  if (unknown.length > 0) {
    const quoted = (list: readonly string[]) => list.map((name) => `'${name}'`).join(', ');
    throw new UsageError(`--section: no section ${quoted(unknown)}; the sections are ${quoted(sections.map((s) => s.name))}`);
  }
  return sections.filter((s) => names.includes(s.name));
};

/**
 * Runs the selected sections one after another and prints the report. Each runs in a fresh child
 * process on the CLI's entry file (`context.cliEntry`): in one process, a section measured after the
 * rebuild and statistics sections ran on their leftover heap (PostgreSQL batched appends: 29,000–39,000
 * events/s there, 51,000–67,000 in a fresh process) and its peak RSS was theirs too. `--in-process`, or a
 * context without an entry file (the specs, on TypeScript sources), runs them all in this process;
 * the sections passed in must then be BENCH_SECTIONS, since a child knows those only, by name.
 */
export const runBench = async (
  options: BenchOptions,
  context: CliContext,
  sections: readonly BenchSection[] = BENCH_SECTIONS,
): Promise<number> => {
  const selected = selectSections(sections, options.section);
  if (options.case !== undefined) {
    const [only, ...more] = selected;
    if (!only?.cases || more.length > 0) throw new UsageError('--case: needs one --section that has cases (rebuild memory)');
    caseIndex(options.case, only.cases(options));
  }
  const cliEntry = options.inProcess ? undefined : context.cliEntry;
  const report: BenchReport = {
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? 'unknown',
      memoryGiB: Math.round(totalmem() / 2 ** 30),
      node: process.version,
      date: new Date().toISOString(),
      loadAverage: loadAverage(),
    },
    rows: [],
    skipped: [],
    peakRssMiBAfter: [],
    peakRssMiB: 0,
    eachSectionInOwnProcess: cliEntry !== undefined,
  };
  for (const section of selected) {
    const reason = section.skip?.(options);
    if (reason !== undefined) {
      report.skipped.push({ section: section.name, reason });
      if (!options.json) context.stderr.write(`skipping ${section.name}: ${reason}\n`);
      continue;
    }
    if (!options.json) context.stderr.write(`running ${section.name}…\n`);
    if (cliEntry === undefined) {
      report.rows.push(...(await section.run(options)));
      report.peakRssMiBAfter.push({ section: section.name, peakRssMiB: peakRssMiB() });
    } else {
      // a section with cases runs each in a process of its own, unless one was asked for
      const cases = options.case === undefined && section.cases ? Array.from({ length: section.cases(options) }, (_, k) => String(k)) : [options.case];
      let peak = 0;
      for (const one of cases) {
        const own = await runSectionInOwnProcess(cliEntry, section.name, { ...options, ...(one !== undefined ? { case: one } : {}) }, context.stderr);
        report.rows.push(...own.rows);
        report.skipped.push(...own.skipped);
        peak = Math.max(peak, own.peakRssMiB);
      }
      report.peakRssMiBAfter.push({ section: section.name, peakRssMiB: peak });
    }
  }
  report.peakRssMiB = Math.max(peakRssMiB(), ...report.peakRssMiBAfter.map((p) => p.peakRssMiB));
  context.stdout.write(options.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report));
  return 0;
};

// resourceUsage().maxRSS is in kibibytes: the high-water mark of the process so far.
const peakRssMiB = (): number => Math.round(process.resourceUsage().maxRSS / 1024);

// Read at start and printed with the figures: on a shared machine, the load explains a slow run.
const loadAverage = (): number[] => loadavg().map((l) => Math.round(l * 100) / 100);

const COLUMNS: { title: string; value(row: BenchRow): string }[] = [
  { title: 'section', value: (r) => r.section },
  { title: 'case', value: (r) => r.name },
  { title: 'durability', value: (r) => r.durability ?? '-' },
  { title: 'commands/s', value: (r) => thousands(r.commandsPerSecond) },
  { title: 'events/s', value: (r) => thousands(r.eventsPerSecond) },
  { title: 'appends/s', value: (r) => thousands(r.appendsPerSecond) },
  { title: 'p50 ms', value: (r) => (r.p50Ms === undefined ? '-' : r.p50Ms.toFixed(2)) },
  { title: 'p99 ms', value: (r) => (r.p99Ms === undefined ? '-' : r.p99Ms.toFixed(2)) },
  { title: 'cpu µs/cmd', value: (r) => thousands(r.cpuMicrosPerCommand) },
  { title: 'note', value: (r) => r.note ?? '' },
];

const thousands = (n: number | undefined): string => (n === undefined ? '-' : n.toLocaleString('en-US'));

export const formatReport = (report: BenchReport): string => {
  const m = report.machine;
  const lines = [
    `clientele bench — ${m.date}, ${m.cpus} × ${m.cpuModel}, ${m.memoryGiB} GiB, Node ${m.node}, load average ${m.loadAverage.join(' ')}`,
    '',
  ];
  const cells = report.rows.map((row) => COLUMNS.map((c) => c.value(row)));
  const widths = COLUMNS.map((c, i) => Math.max(c.title.length, ...cells.map((r) => r[i]!.length)));
  const line = (values: string[]): string =>
    values
      .map((v, i) => (i >= 3 && i < COLUMNS.length - 1 ? v.padStart(widths[i]!) : v.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  lines.push(line(COLUMNS.map((c) => c.title)), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line));
  for (const s of report.skipped) lines.push(`skipped ${s.section}: ${s.reason}`);
  lines.push('', rssLine(report));
  return `${lines.join('\n')}\n`;
};

const rssLine = (report: BenchReport): string => {
  if (report.eachSectionInOwnProcess && report.peakRssMiBAfter.length > 0) {
    const peaks = report.peakRssMiBAfter.map((p) => `${p.section} ${p.peakRssMiB} MiB`).join(', ');
    return `peak RSS per section, each in its own process: ${peaks}`;
  }
  const after = report.peakRssMiBAfter.map((p) => `${p.peakRssMiB} MiB after ${p.section}`).join(', ');
  return `peak RSS: ${report.peakRssMiB} MiB${after ? ` (${after})` : ''}`;
};
