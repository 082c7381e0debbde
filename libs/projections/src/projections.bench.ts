import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { chainHash, GENESIS_HASH, SqliteEventStore, type EventStore, type JsonObject, type LogReadAhead, type StoredEvent } from '@clientele/event-store';
import { allProjections } from './all-projections';
import { Projector } from './projector';
import { digest } from './read-model-digest';
import { ProfilesProjection } from './profiles.projection';
import { ProfileQueries } from './profiles.queries';
import type { Projection } from './read-model-store';
import { ReadModels } from './read-models';
import { measureRebuildFloor, type RebuildFloor } from './rebuild-floor.bench';
import { ReferralsProjection } from './referrals.projection';
import { SqliteReadModelStore } from './sqlite-read-model.store';

/** which read models a rebuild benchmark folds: every one (what a real rebuild does), or the two of the older figures */
export type RebuildBenchModels = 'all' | 'profiles+referrals';

export interface RebuildFigures {
  models: RebuildBenchModels;
  events: number;
  customers: number;
  /** wall-clock time of the rebuild */
  seconds: number;
  eventsPerSecond: number;
  /** CPU time of this process during the rebuild: the figure to compare on a shared, busy machine */
  cpuSeconds: number;
  eventsPerCpuSecond: number;
  /**
   * CPU time of the event loop's thread alone during the rebuild (Linux, from /proc; absent
   * elsewhere): with the log read ahead on another thread, the part that bounds the rebuild
   */
  mainThreadCpuSeconds?: number;
  lookups: number;
  lookupP50Ms: number;
  lookupP99Ms: number;
  /** CPU time of the 99th-percentile lookup: what the query costs without waiting for a core */
  lookupCpuP99Ms: number;
  peakRssMb: number;
  /** RSS when the rebuild began (the log was written before it in the same process) */
  startRssMb: number;
  /**
   * when asked for (`retainedHeap: true`): the largest JS heap still in use after a full garbage
   * collection, taken every `rebuildBatchSize` events read and after the rebuild's last write: what
   * the rebuild holds, apart from garbage the collector had not reclaimed yet
   */
  peakRetainedHeapMb?: number;
  /** each rebuilt read model's digest, when asked for (`digests: true`) */
  digests?: Record<string, string>;
  /** what the same rows and log cost SQLite alone, when asked for (`floor: true`) */
  floor?: RebuildFloor;
}

export interface RebuildBenchOptions {
  /** default `all`, as `clientele replay` and a version change rebuild */
  models?: RebuildBenchModels;
  rebuildBatchSize?: number;
  lookups?: number;
  /** where the SQLite files go; default the OS temp dir */
  dir?: string;
  /** also answer the digest of every rebuilt read model (untimed), to check that a change folds the same */
  digests?: boolean;
  /** read the log ahead on a worker thread (the projector's default); false reads it on the event loop */
  readAhead?: boolean;
  /** also time the rebuilt rows written again and the log read by SQLite alone, after the rebuild (see measureRebuildFloor) */
  floor?: boolean;
  /**
   * customers in the synthetic log; default one per twelve events. Fixed while the events grow,
   * each customer has more events: what "memory stays flat as events grow" is measured on.
   */
  customers?: number;
  /** customers each rebuild instance keeps in memory (the projections' own default when not given) */
  residentLimit?: number;
  /** also answer `peakRetainedHeapMb` (full collections during the rebuild: its time is not comparable then) */
  retainedHeap?: boolean;
}

/**
 * Writes `eventCount` synthetic events into an embedded event store file (untimed), then rebuilds
 * read models from that file into a fresh SQLite file through `Projector.rebuild()`, as
 * `clientele replay` and a version change do, and times profile lookups. The workload is fixed
 * (seeded), so figures compare across runs and machines. Peak RSS is the rebuild's own: it must
 * not grow with the number of events.
 */
export async function benchRebuild(eventCount: number, options: RebuildBenchOptions = {}): Promise<RebuildFigures> {
  const models = options.models ?? 'all';
  const dir = mkdtempSync(join(options.dir ?? tmpdir(), 'clientele-bench-'));
  let readModels: ReadModels | undefined;
  let events: SqliteEventStore | undefined;
  let sampler: NodeJS.Timeout | undefined;
  try {
    const file = join(dir, 'events.sqlite');
    const customers = await writeSyntheticLog(file, eventCount, options.customers);
    // opened again to read only, as a rebuild finds it: no writer thread, nothing cached from the import
    events = new SqliteEventStore({ file });
    // rss() alone: memoryUsage() also walks the heap's spaces, which, sampled at every page the
    // projector reads, showed up in the rebuild's profile
    const collect = options.retainedHeap ? fullCollection() : undefined;
    collect?.();
    const startRss = process.memoryUsage.rss();
    let peakRss = startRss;
    let peakRetained = 0;
    const retainedEvery = options.rebuildBatchSize ?? 25_000;
    let readSinceCollection = 0;
    const retained = () => {
      if (!collect) return;
      collect();
      peakRetained = Math.max(peakRetained, process.memoryUsage().heapUsed);
    };
    const sample = (read = 0) => {
      peakRss = Math.max(peakRss, process.memoryUsage.rss());
      readSinceCollection += read;
      if (readSinceCollection >= retainedEvery) {
        readSinceCollection = 0;
        retained();
      }
    };
    // batches are large: sample between them too, so a peak inside one is not missed
    sampler = setInterval(sample, 50);
    sampler.unref();
    // the live store starts empty; the timed part is the rebuild into a second, fresh file
    readModels = new ReadModels(new SqliteReadModelStore(join(dir, 'live.sqlite')));
    const limit = options.residentLimit !== undefined ? { residentLimit: options.residentLimit } : {};
    const projections: Projection[] = models === 'all' ? allProjections(limit) : [new ProfilesProjection(limit), new ReferralsProjection(limit)];
    const projector = new Projector(sampledReads(events, sample), readModels, projections, {
      ...(options.rebuildBatchSize ? { rebuildBatchSize: options.rebuildBatchSize } : {}),
      ...(options.readAhead === false ? { rebuildReadAhead: false } : {}),
      freshStore: async () => new SqliteReadModelStore(join(dir, 'rebuilt.sqlite')),
    });
    await projector.start();
    const started = process.hrtime.bigint();
    const cpu = process.cpuUsage();
    const mainCpu = mainThreadCpuSeconds();
    await projector.rebuild();
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const used = process.cpuUsage(cpu);
    const mainCpuAfter = mainThreadCpuSeconds();
    const cpuSeconds = (used.user + used.system) / 1e6;
    sample();
    retained();
    clearInterval(sampler);
    const rebuildPeakRss = peakRss;
    const store = readModels.current;

    const queries = new ProfileQueries(store);
    const lookups = options.lookups ?? 2000;
    const timings: number[] = [];
    const cpuTimings: number[] = [];
    let seed = 12345;
    for (let i = 0; i < lookups; i += 1) {
      seed = nextSeed(seed);
      const id = customerId(seed % customers);
      const t0 = process.hrtime.bigint();
      const c0 = process.cpuUsage();
      await queries.getProfile(id, '2026-06-01');
      const c = process.cpuUsage(c0);
      timings.push(Number(process.hrtime.bigint() - t0) / 1e6);
      cpuTimings.push((c.user + c.system) / 1000);
    }
    sample();
    const digests: Record<string, string> = {};
    if (options.digests) for (const p of projections) digests[p.name] = await digest(store, p);
    const floor = options.floor ? measureRebuildFloor(join(dir, 'rebuilt.sqlite'), file, join(dir, 'floor.sqlite')) : undefined;
    timings.sort((a, b) => a - b);
    cpuTimings.sort((a, b) => a - b);
    const at = (q: number, xs = timings) => xs[Math.min(xs.length - 1, Math.floor(q * xs.length))] ?? 0;
    return {
      models,
      events: eventCount,
      customers,
      seconds: round(seconds, 3),
      eventsPerSecond: Math.round(eventCount / seconds),
      cpuSeconds: round(cpuSeconds, 3),
      eventsPerCpuSecond: Math.round(eventCount / cpuSeconds),
      ...(mainCpu !== undefined && mainCpuAfter !== undefined ? { mainThreadCpuSeconds: round(mainCpuAfter - mainCpu, 3) } : {}),
      lookups,
      lookupP50Ms: round(at(0.5), 3),
      lookupP99Ms: round(at(0.99), 3),
      lookupCpuP99Ms: round(at(0.99, cpuTimings), 3),
      peakRssMb: Math.round(rebuildPeakRss / 1048576),
      startRssMb: Math.round(startRss / 1048576),
      ...(collect ? { peakRetainedHeapMb: Math.round(peakRetained / 1048576) } : {}),
      ...(options.digests ? { digests } : {}),
      ...(floor ? { floor } : {}),
    };
  } finally {
    clearInterval(sampler);
    await readModels?.close();
    await events?.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** the synthetic log of `count` events written into a new embedded store file; answers how many customers it has */
async function writeSyntheticLog(file: string, count: number, customers?: number): Promise<number> {
  const log = new SyntheticLog(count, customers);
  const store = new SqliteEventStore({ file, durability: 'normal' });
  try {
    for (let chunk = log.take(10_000); chunk.length > 0; chunk = log.take(10_000)) await store.importStored(chunk);
  } finally {
    await store.close();
  }
  return log.customers;
}

/**
 * V8's full garbage collection, for a measurement of what stays in use: the flag is set at run time,
 * so neither the bench nor the CLI needs `--expose-gc` on its command line
 */
function fullCollection(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

/** the store as the projector reads it, sampling the RSS at every read (and telling how many events each page held) */
function sampledReads(store: SqliteEventStore, sample: (read?: number) => void): EventStore & LogReadAhead {
  const reads: EventStore & LogReadAhead = {
    readAll: async (options) => {
      sample();
      const page = await store.readAll(options);
      sample(page.length);
      return page;
    },
    readPagesAhead: (options) => {
      const pages = store.readPagesAhead(options);
      return {
        close: () => pages.close(),
        async *[Symbol.asyncIterator]() {
          for await (const page of pages) {
            sample(page.length);
            yield page;
          }
        },
      };
    },
    headPosition: () => store.headPosition(),
    appendToStream: (streamId, events, options) => store.appendToStream(streamId, events, options),
    readStream: (streamId, options) => store.readStream(streamId, options),
    subscribeToAll: (options) => store.subscribeToAll(options),
    close: async () => undefined,
  };
  return reads;
}

/** CPU seconds of this process's main thread so far (Linux); undefined where /proc does not say */
function mainThreadCpuSeconds(): number | undefined {
  try {
    const stat = readFileSync(`/proc/self/task/${process.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime, fields 14 and 15 of stat(5), in clock ticks (100 a second on Linux)
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return undefined;
  }
}

function customerId(n: number): string {
  return `bench-${String(n).padStart(7, '0')}`;
}

/**
 * About twelve events per customer: registration, touchpoints, purchases with transitions,
 * feedback, thanks, referrals, customers interleaved, each event chained to the one before (as a
 * store would record it, so it can be imported). What the generator keeps (each customer's
 * revision and order count) grows with customers, not with events. Customers default to one per
 * twelve events; given, they stay that many however long the log is.
 */
class SyntheticLog {
  readonly customers: number;
  private produced = 0;
  private seed = 42;
  private prevHash = GENESIS_HASH;
  private readonly revisions = new Map<number, number>();
  private readonly orders = new Map<number, number>();
  private pending: StoredEvent[] = [];

  constructor(readonly count: number, customers?: number) {
    if (customers !== undefined && (!Number.isInteger(customers) || customers < 1)) {
      throw new Error(`rebuild bench customers: expected a positive integer, got ${String(customers)}`);
    }
    this.customers = customers ?? Math.max(1, Math.floor(count / 12));
  }

  /** the next `max` events of the log (fewer at its end) */
  take(max: number): StoredEvent[] {
    const out: StoredEvent[] = [];
    while (out.length < max) {
      if (this.pending.length === 0) this.generate();
      const next = this.pending.shift();
      if (!next) break;
      out.push(next);
    }
    return out;
  }

  private random(): number {
    this.seed = nextSeed(this.seed);
    return this.seed / 2147483648;
  }

  /** the next customer fact (and the transition or credit it causes); nothing once the log is full */
  private generate(): void {
    if (this.produced >= this.count) return;
    const start = Date.parse('2025-01-01T00:00:00.000Z');
    const push = (type: string, customer: number, data: JsonObject) => {
      if (this.produced >= this.count) return;
      const position = ++this.produced;
      const occurredAt = new Date(start + position * 60_000).toISOString();
      const revision = (this.revisions.get(customer) ?? -1) + 1;
      this.revisions.set(customer, revision);
      const event: StoredEvent = {
        id: `bench-evt-${position}`, streamId: `customer-${customerId(customer)}`, revision, position, type,
        data: { ...data, occurredAt }, metadata: { occurredAt, schemaVersion: 1 }, recordedAt: occurredAt, hash: '', prevHash: this.prevHash,
      };
      event.hash = chainHash(this.prevHash, event);
      this.prevHash = event.hash;
      this.pending.push(event);
    };
    const c = Math.floor(this.random() * this.customers);
    const id = customerId(c);
    const n = this.orders.get(c);
    if (n === undefined) {
      this.orders.set(c, 0);
      const referrer = c > 0 && this.random() < 0.3 ? Math.floor(this.random() * c) : undefined;
      push('ProspectRegistered', c, {
        customerId: id, source: 'web', channel: 'email', implicit: false,
        ...(referrer !== undefined ? { referredBy: customerId(referrer) } : {}),
        personal: { name: `Name ${c}`, email: `${c}@example.test`, birthday: `19${50 + (c % 50)}-${String(1 + (c % 12)).padStart(2, '0')}-${String(1 + (c % 28)).padStart(2, '0')}` },
      });
      if (referrer !== undefined) push('ReferralCredited', referrer, { customerId: customerId(referrer), refereeId: id });
      return;
    }
    const r = this.random();
    if (r < 0.45) {
      const lines = [1, 2].map((k) => ({ sku: `sku-${(c + k * 7) % 200}`, category: `cat-${(c + k) % 12}`, quantity: 1 + k, unitPriceMinor: 500 + k, unitCostMinor: 300 }));
      push('PurchaseRecorded', c, { customerId: id, orderId: `o-${this.produced}`, lines, totalMinor: 1503 + 1002, costMinor: 900 * 2 - 900 + 900, channel: 'web' });
      this.orders.set(c, n + 1);
      if (n === 0) push('CustomerConverted', c, { customerId: id, orderId: `o-${this.produced}` });
      if (n === 1) push('RepeatBuyerQualified', c, { customerId: id, distinctOrders: 2 });
    } else if (r < 0.75) push('TouchpointRecorded', c, { customerId: id, channel: 'email', direction: 'outbound', kind: 'newsletter' });
    else if (r < 0.9) push('FeedbackReceived', c, { customerId: id, feedbackId: `f-${this.produced}`, score: Math.floor(this.random() * 11), kind: 'praise' });
    else push('CustomerThanked', c, { customerId: id, gesture: 'coupon', reason: 'loyalty' });
  }
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/**
 * The workload's linear congruential step, seed · 1103515245 + 12345 mod 2³¹, in 32-bit integer
 * arithmetic: the product overflows a double's 53 exact bits, which had made the sequence repeat
 * early and left about half of the bench's customers without a single event.
 */
export function nextSeed(seed: number): number {
  return (Math.imul(seed, 1103515245) + 12345) & 0x7fffffff;
}
