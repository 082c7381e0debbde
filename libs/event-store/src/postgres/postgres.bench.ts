import { randomUUID } from 'node:crypto';
import { loadavg } from 'node:os';
import type { NewEvent } from '../event-store.port';
import { PostgresEventStore } from './postgres.event-store';
import { dropSchema } from './postgres.migrations';

export interface PostgresBenchOptions {
  /** single-event appends per writer scenario; default 2,000 */
  appends?: number;
  /** events appended in batches; default 100,000 */
  batchedEvents?: number;
  /** events per batched append; default 1,000 */
  batchSize?: number;
}

export interface PostgresBenchFigures {
  /** one caller, one event per append, each awaited */
  singleWriterAppendsPerSecond: number;
  /** eight callers in one process sharing a store (group commit) */
  eightWritersOneProcessAppendsPerSecond: number;
  /** sixty-four callers in one process: how far group commit carries */
  sixtyFourWritersOneProcessAppendsPerSecond: number;
  /** eight stores on one schema, as eight processes would be (they contend on the append lock) */
  eightWritersEightPoolsAppendsPerSecond: number;
  /** appends of `batchSize` events */
  batchedEventsPerSecond: number;
  /** a subscription from 0 reading everything above */
  catchUpEventsPerSecond: number;
  eventsInLog: number;
  /** the machine's 1-minute load average when the run ended (figures on a busy machine are lower) */
  loadAverage: number;
}

/**
 * Measures the PostgreSQL store on the synthetic workload (a ~200-byte purchase event). Works in
 * a fresh schema that it drops afterwards. Figures vary with the machine; print them, never
 * assert on them.
 */
export async function benchPostgres(url: string, options: PostgresBenchOptions = {}): Promise<PostgresBenchFigures> {
  const appends = options.appends ?? 2_000;
  const batchedEvents = options.batchedEvents ?? 100_000;
  const batchSize = options.batchSize ?? 1_000;
  const schema = `bench_${randomUUID().replace(/-/g, '').slice(0, 16)}`;
  const store = await PostgresEventStore.open({ connectionString: url, schema });
  const pools: PostgresEventStore[] = [];
  try {
    const singleWriterAppendsPerSecond = await rate(appends, async () => {
      for (let i = 0; i < appends; i++) await store.appendToStream(`customer-single-${i % 100}`, [purchase()]);
    });

    const eightWritersOneProcessAppendsPerSecond = await rate(appends, () =>
      writers(8, appends, (w, i) => store.appendToStream(`customer-one-${w}-${i % 50}`, [purchase()])),
    );

    const sixtyFourWritersOneProcessAppendsPerSecond = await rate(appends * 2, () =>
      writers(64, appends * 2, (w, i) => store.appendToStream(`customer-wide-${w}-${i % 50}`, [purchase()])),
    );

    for (let i = 0; i < 8; i++) pools.push(await PostgresEventStore.open({ connectionString: url, schema, poolSize: 2 }));
    const eightWritersEightPoolsAppendsPerSecond = await rate(appends, () =>
      writers(8, appends, (w, i) => pools[w]!.appendToStream(`customer-many-${w}-${i % 50}`, [purchase()])),
    );

    // Made before the clock starts, as the SQLite section does: the figure is the store's, not the generator's.
    const batches = Array.from({ length: Math.ceil(batchedEvents / batchSize) }, () => Array.from({ length: batchSize }, () => purchase()));
    const batchedEventsPerSecond = await rate(batches.length * batchSize, async () => {
      for (const [b, events] of batches.entries()) await store.appendToStream(`campaign-bench-${b}`, events);
    });

    const eventsInLog = await store.headPosition();
    const catchUpEventsPerSecond = await rate(eventsInLog, async () => {
      const subscription = store.subscribeToAll({ batchSize: 1_000 });
      let seen = 0;
      for await (const _event of subscription) {
        seen += 1;
        if (seen === eventsInLog) break;
      }
    });

    return {
      singleWriterAppendsPerSecond,
      eightWritersOneProcessAppendsPerSecond,
      sixtyFourWritersOneProcessAppendsPerSecond,
      eightWritersEightPoolsAppendsPerSecond,
      batchedEventsPerSecond,
      catchUpEventsPerSecond,
      eventsInLog,
      loadAverage: Math.round(loadavg()[0]! * 100) / 100,
    };
  } finally {
    await Promise.all(pools.map((p) => p.close()));
    await store.close();
    await dropSchema(url, schema);
  }
}

/** `count` appends shared among `n` concurrent callers, each awaiting its own append before the next. */
async function writers(n: number, count: number, append: (writer: number, i: number) => Promise<unknown>): Promise<void> {
  await Promise.all(
    Array.from({ length: n }, async (_, w) => {
      for (let i = w; i < count; i += n) await append(w, i);
    }),
  );
}

async function rate(units: number, work: () => Promise<void>): Promise<number> {
  const started = process.hrtime.bigint();
  await work();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  return Math.round(units / seconds);
}

function purchase(): NewEvent {
  return {
    id: randomUUID(),
    type: 'PurchaseRecorded',
    data: {
      orderId: randomUUID(),
      lines: [{ sku: 'cd-0421', category: 'rock', quantity: 2, unitPriceMinor: 1299, unitCostMinor: 700 }],
      channel: 'web',
    },
    metadata: { occurredAt: '2026-01-15T12:00:00.000Z', schemaVersion: 1, commandId: randomUUID() },
  };
}
