import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { NewEvent } from '../event-store.port';
import { SqliteEventStore, type SqliteDurability } from './sqlite.event-store';

export interface SqliteBenchOptions {
  /** where the temporary database files go; default the OS temp dir */
  dir?: string;
  /** events appended in each batched run; default 100,000 */
  batchedEvents?: number;
  /** sequential one-event appends at full durability; default 2,000 */
  singleAppends?: number;
  /** appends made by the concurrent callers in total; default 20,000 */
  concurrentAppends?: number;
  /** default 64 */
  concurrency?: number;
  /** also measure with a global unique index on event ids, to show what it would cost; default false */
  compareEventIdIndex?: boolean;
}

export interface SqliteBenchFigure {
  name: string;
  durability: SqliteDurability;
  events: number;
  appends: number;
  seconds: number;
  eventsPerSecond: number;
  appendsPerSecond: number;
  /** events per second of this process's own CPU time (user + system): steadier than wall time when the machine is shared */
  eventsPerCpuSecond: number;
}

export interface SqliteBenchFigures {
  machine: { cpus: number; cpuModel: string; node: string; date: string };
  figures: SqliteBenchFigure[];
}

/**
 * Append throughput of the embedded store on this machine, through the public port only. The
 * concurrent case is what a command handler does: read the stream, then append one event at the
 * revision it read, 64 callers at once (so group commit decides the figure).
 */
export async function benchSqliteAppends(opts: SqliteBenchOptions = {}): Promise<SqliteBenchFigures> {
  const batchedEvents = opts.batchedEvents ?? 100_000;
  const singleAppends = opts.singleAppends ?? 2_000;
  const concurrentAppends = opts.concurrentAppends ?? 20_000;
  const concurrency = opts.concurrency ?? 64;
  const root = mkdtempSync(join(opts.dir ?? tmpdir(), 'clientele-bench-sqlite-'));
  const figures: SqliteBenchFigure[] = [];
  const variants = opts.compareEventIdIndex ? [false, true] : [false];

  try {
    // the ceiling of any store on this disk: rows alone, at the sizes of the appends below and larger
    for (const rowsPerTransaction of [100, 1000, 10_000]) {
      figures.push(rawBaseline(root, Math.max(rowsPerTransaction, Math.min(batchedEvents, rowsPerTransaction === 100 ? 50_000 : 100_000)), rowsPerTransaction));
    }
    for (const idIndex of variants) {
      const suffix = idIndex ? ' + global event-id index' : '';
      for (const batch of [100, 1000]) {
        for (const durability of ['full', 'normal'] as const) {
          figures.push(
            await run(root, `appends of ${batch} events${suffix}`, durability, idIndex, () => {
              // Made before the clock starts: the figure is the store's, not the generator's.
              const appends = Array.from({ length: Math.max(1, Math.floor(batchedEvents / batch)) }, () => events(batch));
              return async (store) => {
                for (const [i, batchOfEvents] of appends.entries()) {
                  await store.appendToStream(`import-${i}`, batchOfEvents, { expectedRevision: 'no_stream' });
                }
                return { events: appends.length * batch, appends: appends.length };
              };
            }),
          );
        }
      }
      figures.push(
        await run(root, `single appends, one caller${suffix}`, 'full', idIndex, () => async (store) => {
          for (let i = 0; i < singleAppends; i++) {
            await store.appendToStream(`customer-${i % 500}`, events(1));
          }
          return { events: singleAppends, appends: singleAppends };
        }),
      );
      for (const durability of ['full', 'normal'] as const) {
        figures.push(
          await run(
            root,
            `${concurrency} concurrent callers, read then append 1 event${suffix}`,
            durability,
            idIndex,
            () => async (store) => {
              let remaining = concurrentAppends;
              const customers = Math.max(concurrency, Math.floor(concurrentAppends / 4));
              const caller = async (k: number): Promise<void> => {
                for (let i = 0; remaining > 0; i++) {
                  remaining -= 1;
                  // Each caller owns its customers, so the revision it read is still current.
                  const streamId = `customer-${(k + i * concurrency) % customers}`;
                  const [last] = await store.readStream(streamId, { direction: 'backwards', maxCount: 1 });
                  await store.appendToStream(streamId, events(1), {
                    expectedRevision: last ? last.revision : 'no_stream',
                  });
                }
              };
              await Promise.all(Array.from({ length: concurrency }, (_, k) => caller(k)));
              return { events: concurrentAppends, appends: concurrentAppends };
            },
          ),
        );
      }
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }

  return {
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? 'unknown',
      node: process.version,
      date: new Date().toISOString(),
    },
    figures,
  };
}

async function run(
  root: string,
  name: string,
  durability: SqliteDurability,
  idIndex: boolean,
  prepare: () => (store: SqliteEventStore) => Promise<{ events: number; appends: number }>,
): Promise<SqliteBenchFigure> {
  const work = prepare();
  const file = join(root, `${randomUUID()}.db`);
  const store = new SqliteEventStore({ file, durability });
  if (idIndex) {
    const db = new Database(file);
    db.exec('CREATE UNIQUE INDEX events_id ON events (id)');
    db.close();
  }
  const started = process.hrtime.bigint();
  const cpuBefore = process.cpuUsage();
  const done = await work(store);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const cpu = cpuSeconds(cpuBefore);
  await store.close();
  return {
    name,
    durability,
    events: done.events,
    appends: done.appends,
    seconds: round(seconds, 3),
    eventsPerSecond: Math.round(done.events / seconds),
    appendsPerSecond: Math.round(done.appends / seconds),
    eventsPerCpuSecond: Math.round(done.events / cpu),
  };
}

/**
 * better-sqlite3 alone (same schema, FULL transactions of `rowsPerTransaction` rows, no hashing,
 * JSON or checks): what this disk and SQLite allow before the store does any work of its own.
 * These machines are shared and noisy, so the store's figures are read against these from the same run.
 */
function rawBaseline(root: string, rows: number, rowsPerTransaction: number): SqliteBenchFigure {
  const file = join(root, `baseline-${rowsPerTransaction}.db`);
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec(`CREATE TABLE events (position INTEGER PRIMARY KEY, stream_id TEXT NOT NULL, revision INTEGER NOT NULL,
    id TEXT NOT NULL, type TEXT NOT NULL, data TEXT NOT NULL, metadata TEXT NOT NULL, recorded_at TEXT NOT NULL,
    hash TEXT NOT NULL, prev_hash TEXT NOT NULL, UNIQUE (stream_id, revision))`);
  const insert = db.prepare('INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)');
  const sample = events(1)[0]!;
  const data = JSON.stringify(sample.data);
  const metadata = JSON.stringify(sample.metadata);
  const hash = 'a'.repeat(64);
  const write = db.transaction((batch: number) => {
    for (let i = 0; i < rowsPerTransaction; i++) {
      insert.run(batch * rowsPerTransaction + i + 1, `import-${batch}`, i, randomUUID(), sample.type, data, metadata, '2026-01-01T00:00:00.000Z', hash, hash);
    }
  });
  const batches = Math.max(1, Math.floor(rows / rowsPerTransaction));
  const started = process.hrtime.bigint();
  const cpuBefore = process.cpuUsage();
  for (let b = 0; b < batches; b++) write(b);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const cpu = cpuSeconds(cpuBefore);
  db.close();
  rmSync(file, { force: true });
  rmSync(`${file}-wal`, { force: true });
  rmSync(`${file}-shm`, { force: true });
  return {
    name: `baseline: better-sqlite3 alone, ${rowsPerTransaction}-row transactions`,
    durability: 'full',
    events: batches * rowsPerTransaction,
    appends: batches,
    seconds: round(seconds, 3),
    eventsPerSecond: Math.round((batches * rowsPerTransaction) / seconds),
    appendsPerSecond: Math.round(batches / seconds),
    eventsPerCpuSecond: Math.round((batches * rowsPerTransaction) / cpu),
  };
}

/** About 300 bytes of JSON per event, shaped like a recorded purchase. */
function events(count: number): NewEvent[] {
  return Array.from({ length: count }, () => ({
    id: randomUUID(),
    type: 'PurchaseRecorded',
    data: {
      customerId: 'c-10442',
      orderId: randomUUID(),
      lines: [{ sku: 'cd-7731', category: 'rock', quantity: 2, unitPriceMinor: 1299, unitCostMinor: 820 }],
      channel: 'web',
      location: 'online',
    },
    metadata: { occurredAt: '1997-03-14T00:00:00.000Z', schemaVersion: 1, commandId: randomUUID() },
  }));
}

function cpuSeconds(before: NodeJS.CpuUsage): number {
  const used = process.cpuUsage(before);
  return (used.user + used.system) / 1e6;
}

function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
