import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EventStore, JsonObject, ReadAllOptions, StoredEvent } from '@clientele/event-store';
import { Projector } from './projector';
import { ProfilesProjection } from './profiles.projection';
import { ProfileQueries } from './profiles.queries';
import { ReadModels } from './read-models';
import { ReferralsProjection } from './referrals.projection';
import { SqliteReadModelStore } from './sqlite-read-model.store';

export interface RebuildFigures {
  events: number;
  customers: number;
  /** wall-clock time of the rebuild */
  seconds: number;
  eventsPerSecond: number;
  /** CPU time of this process during the rebuild: the figure to compare on a shared, busy machine */
  cpuSeconds: number;
  eventsPerCpuSecond: number;
  lookups: number;
  lookupP50Ms: number;
  lookupP99Ms: number;
  /** CPU time of the 99th-percentile lookup: what the query costs without waiting for a core */
  lookupCpuP99Ms: number;
  peakRssMb: number;
}

/**
 * Rebuilds the profile and referral read models from `eventCount` synthetic events into a fresh
 * SQLite file, then times profile lookups. The workload is fixed (seeded), so figures compare
 * across runs and machines.
 */
export async function benchRebuild(eventCount: number, options: { rebuildBatchSize?: number; lookups?: number } = {}): Promise<RebuildFigures> {
  const { events, customers } = syntheticLog(eventCount);
  const dir = mkdtempSync(join(tmpdir(), 'clientele-bench-'));
  let peakRss = process.memoryUsage().rss;
  const sample = () => {
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
  };
  // the live store starts empty; the timed part is the rebuild into a second, fresh file
  const readModels = new ReadModels(new SqliteReadModelStore(join(dir, 'live.sqlite')));
  try {
    const projector = new Projector(arrayEventStore(events, sample), readModels, [new ProfilesProjection(), new ReferralsProjection()], {
      ...(options.rebuildBatchSize ? { rebuildBatchSize: options.rebuildBatchSize } : {}),
      freshStore: async () => new SqliteReadModelStore(join(dir, 'rebuilt.sqlite')),
    });
    await projector.start();
    const started = process.hrtime.bigint();
    const cpu = process.cpuUsage();
    await projector.rebuild();
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const used = process.cpuUsage(cpu);
    const cpuSeconds = (used.user + used.system) / 1e6;
    const store = readModels.current;

    const queries = new ProfileQueries(store);
    const lookups = options.lookups ?? 2000;
    const timings: number[] = [];
    const cpuTimings: number[] = [];
    let seed = 12345;
    for (let i = 0; i < lookups; i += 1) {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      const id = customerId(seed % customers);
      const t0 = process.hrtime.bigint();
      const c0 = process.cpuUsage();
      await queries.getProfile(id, '2026-06-01');
      const c = process.cpuUsage(c0);
      timings.push(Number(process.hrtime.bigint() - t0) / 1e6);
      cpuTimings.push((c.user + c.system) / 1000);
    }
    sample();
    timings.sort((a, b) => a - b);
    cpuTimings.sort((a, b) => a - b);
    const at = (q: number, xs = timings) => xs[Math.min(xs.length - 1, Math.floor(q * xs.length))] ?? 0;
    return {
      events: events.length,
      customers,
      seconds: round(seconds, 3),
      eventsPerSecond: Math.round(events.length / seconds),
      cpuSeconds: round(cpuSeconds, 3),
      eventsPerCpuSecond: Math.round(events.length / cpuSeconds),
      lookups,
      lookupP50Ms: round(at(0.5), 3),
      lookupP99Ms: round(at(0.99), 3),
      lookupCpuP99Ms: round(at(0.99, cpuTimings), 3),
      peakRssMb: Math.round(peakRss / 1048576),
    };
  } finally {
    await readModels.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

function customerId(n: number): string {
  return `bench-${String(n).padStart(7, '0')}`;
}

/** about twelve events per customer: registration, touchpoints, purchases with transitions, feedback, thanks, referrals */
function syntheticLog(count: number): { events: StoredEvent[]; customers: number } {
  const customers = Math.max(1, Math.floor(count / 12));
  const events: StoredEvent[] = [];
  const revisions = new Map<string, number>();
  let seed = 42;
  const random = () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed / 2147483648;
  };
  const start = Date.parse('2025-01-01T00:00:00.000Z');
  const push = (type: string, data: JsonObject) => {
    const position = events.length + 1;
    const occurredAt = new Date(start + position * 60_000).toISOString();
    const customer = String(data.customerId);
    const streamId = `customer-${customer}`;
    const revision = (revisions.get(streamId) ?? -1) + 1;
    revisions.set(streamId, revision);
    events.push({
      id: `bench-evt-${position}`, streamId, revision, position, type, data: { ...data, occurredAt },
      metadata: { occurredAt, schemaVersion: 1 }, recordedAt: occurredAt, hash: '', prevHash: '',
    });
  };
  const orders = new Map<number, number>();
  while (events.length < count) {
    const c = Math.floor(random() * customers);
    const id = customerId(c);
    const n = orders.get(c);
    if (n === undefined) {
      orders.set(c, 0);
      const referrer = c > 0 && random() < 0.3 ? customerId(Math.floor(random() * c)) : undefined;
      push('ProspectRegistered', {
        customerId: id, source: 'web', channel: 'email', implicit: false,
        ...(referrer ? { referredBy: referrer } : {}),
        personal: { name: `Name ${c}`, email: `${c}@example.test`, birthday: `19${50 + (c % 50)}-${String(1 + (c % 12)).padStart(2, '0')}-${String(1 + (c % 28)).padStart(2, '0')}` },
      });
      if (referrer) push('ReferralCredited', { customerId: referrer, refereeId: id });
      continue;
    }
    const r = random();
    if (r < 0.45) {
      const lines = [1, 2].map((k) => ({ sku: `sku-${(c + k * 7) % 200}`, category: `cat-${(c + k) % 12}`, quantity: 1 + k, unitPriceMinor: 500 + k, unitCostMinor: 300 }));
      push('PurchaseRecorded', { customerId: id, orderId: `o-${events.length}`, lines, totalMinor: 1503 + 1002, costMinor: 900 * 2 - 900 + 900, channel: 'web' });
      orders.set(c, n + 1);
      if (n === 0) push('CustomerConverted', { customerId: id, orderId: `o-${events.length}` });
      if (n === 1) push('RepeatBuyerQualified', { customerId: id, distinctOrders: 2 });
    } else if (r < 0.75) push('TouchpointRecorded', { customerId: id, channel: 'email', direction: 'outbound', kind: 'newsletter' });
    else if (r < 0.9) push('FeedbackReceived', { customerId: id, feedbackId: `f-${events.length}`, score: Math.floor(random() * 11), kind: 'praise' });
    else push('CustomerThanked', { customerId: id, gesture: 'coupon', reason: 'loyalty' });
  }
  return { events: events.slice(0, count), customers };
}

/** just enough of the port for a rebuild: the global log from an array */
function arrayEventStore(events: readonly StoredEvent[], onRead: () => void): EventStore {
  const unsupported = async (): Promise<never> => {
    throw new Error('not part of the rebuild benchmark');
  };
  return {
    readAll: async (options: ReadAllOptions = {}) => {
      onRead();
      const after = options.afterPosition ?? 0;
      return events.slice(after, options.maxCount === undefined ? undefined : after + options.maxCount);
    },
    headPosition: async () => events.length,
    appendToStream: unsupported,
    readStream: unsupported,
    subscribeToAll: () => {
      throw new Error('not part of the rebuild benchmark');
    },
    close: async () => undefined,
  };
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
