import type { StoredEvent } from '@clientele/event-store';
import type { ReadModelStore } from './read-model-store';
import { StatisticsProjection } from './statistics.projection';
import { StatisticsQueries } from './statistics.queries';
import type { StatisticsFilter } from './statistics.queries';

/**
 * Builds the statistics read model from a large synthetic log and times every statistic. The
 * workload comes from the caller (tests use `customerDatasetChunks` from `@clientele/testing`, which
 * the production build leaves out), so the same function serves the CLI and the test driver.
 */
export interface StatisticsBenchOptions {
  store: ReadModelStore;
  /** the log in global order, in chunks; each chunk is applied in transactions of `batchSize` events.
   *  Without it the store is timed as it is (a read model built earlier). */
  chunks?: Iterable<StoredEvent[]>;
  batchSize?: number;
  /** timed runs per query (after one warm-up run) */
  runs?: number;
  /** progress lines, for a CLI or a driver to print */
  log?: (line: string) => void;
}

export interface QueryTiming {
  name: string;
  p50Ms: number;
  p99Ms: number;
  /** CPU time of this process (user + system) per call, median: less sensitive to a shared machine than wall time */
  cpuP50Ms: number;
}

export interface StatisticsBenchResult {
  /** events applied; when timing an existing store, the orders it holds */
  events: number;
  customers: number;
  buildSeconds: number;
  eventsPerSecond: number;
  /** CPU seconds spent applying the log (generation excluded) */
  buildCpuSeconds: number;
  /** wall and CPU seconds spent recomputing stale month-end snapshots after the build */
  refreshSeconds: number;
  refreshCpuSeconds: number;
  peakRssMb: number;
  queries: QueryTiming[];
}

export async function benchStatistics(options: StatisticsBenchOptions): Promise<StatisticsBenchResult> {
  const { store } = options;
  const batchSize = options.batchSize ?? 5_000;
  const runs = options.runs ?? 15;
  const log = options.log ?? (() => undefined);
  const projection = new StatisticsProjection();
  let peakRss = process.memoryUsage().rss;
  const sampleRss = (): void => {
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
  };

  await store.transaction((tx) => projection.migrate(tx));
  let events = 0;
  let latest = '';
  const started = performance.now();
  let buildCpu = 0;
  for (const chunk of options.chunks ?? []) {
    for (let i = 0; i < chunk.length; i += batchSize) {
      const batch = chunk.slice(i, i + batchSize);
      const c = process.cpuUsage();
      await store.transaction((tx) => projection.apply(batch, tx));
      const used = process.cpuUsage(c);
      buildCpu += (used.user + used.system) / 1e6;
      events += batch.length;
    }
    for (const e of chunk) if (e.metadata.occurredAt > latest) latest = e.metadata.occurredAt;
    sampleRss();
    log(`applied ${events} events`);
  }
  const buildSeconds = (performance.now() - started) / 1000;
  // what the projector does once it has caught up with the log: stale month-end snapshots are
  // recomputed one month per transaction (a read model built by an older version is refreshed too)
  const refreshStarted = performance.now();
  const refreshCpuStart = process.cpuUsage();
  let refreshedMonths = 0;
  for (let more = true; more; refreshedMonths += 1) more = await store.transaction((tx) => projection.refreshSnapshots(tx));
  const refreshCpu = process.cpuUsage(refreshCpuStart);
  const refreshSeconds = (performance.now() - refreshStarted) / 1000;
  log(`refreshed stale snapshots: ${refreshedMonths} steps in ${refreshSeconds.toFixed(1)} s, ${((refreshCpu.user + refreshCpu.system) / 1e6).toFixed(1)} CPU s`);
  const customers = Number((await store.get<{ n: unknown }>('SELECT COUNT(*) AS n FROM stat_customers'))?.n ?? 0);

  const q = new StatisticsQueries(store);
  if (!latest) latest = (await q.latestAt()) ?? '';
  events = events || Number((await store.get<{ n: unknown }>('SELECT COUNT(*) AS n FROM stat_orders'))?.n ?? 0);
  const year = latest.slice(0, 4);
  const mid = `${Number(year) - 1}-06-30`;
  // a date inside a month: no month-end snapshot answers it directly
  const midMonth = `${Number(year) - 1}-06-17`;
  const period: StatisticsFilter = { from: `${Number(year) - 1}-01-01`, to: `${Number(year) - 1}-12-31` };
  const cases: [string, () => Promise<unknown>][] = [
    ['stageCounts', () => q.stageCounts()],
    ['stageCounts source', () => q.stageCounts({ source: 'web' })],
    ['stageCounts asOf', () => q.stageCounts({ asOf: mid })],
    ['stageCounts segment', () => q.stageCounts({ segment: 'champions' })],
    ['funnel', () => q.funnel()],
    ['funnel period asOf', () => q.funnel({ ...period, asOf: mid })],
    ['cohortRetention', () => q.cohortRetention({}, 12)],
    ['cohortRetention channel', () => q.cohortRetention({ channel: 'email' }, 12)],
    ['churn', () => q.churn()],
    ['churn period source', () => q.churn({ ...period, source: 'ads' })],
    ['repeatRate', () => q.repeatRate()],
    ['repeatRate asOf', () => q.repeatRate({ asOf: mid })],
    ['tenure', () => q.tenure()],
    ['tenure asOf', () => q.tenure({ asOf: mid })],
    ['value month', () => q.value(period)],
    ['value year', () => q.value({}, 'year')],
    ['value month source', () => q.value({ ...period, source: 'store' })],
    ['goldenCustomers', () => q.goldenCustomers()],
    ['goldenCustomers period', () => q.goldenCustomers(period)],
    ['rfmSegments', () => q.rfmSegments()],
    ['rfmSegments asOf', () => q.rfmSegments({ asOf: mid })],
    ['rfmSegments asOf mid-month', () => q.rfmSegments({ asOf: midMonth })],
    ['stageCounts segment asOf mid-month', () => q.stageCounts({ segment: 'at_risk', asOf: midMonth })],
    ['repeatRate asOf mid-month', () => q.repeatRate({ asOf: midMonth })],
    ['tenure asOf mid-month', () => q.tenure({ asOf: midMonth })],
    ['funnel segment', () => q.funnel({ segment: 'loyal' })],
    ['goldenCustomers period segment', () => q.goldenCustomers({ ...period, segment: 'champions' })],
    ['rfmScores page', () => q.rfmScores({}, { limit: 100 })],
    ['profitability segment', () => q.profitability('segment')],
    ['profitability segment period', () => q.profitability('segment', period)],
    ['profitability channel', () => q.profitability('channel', period)],
    ['profitability source', () => q.profitability('source')],
    ['profitability category source', () => q.profitability('category', { source: 'web' })],
    ['profitability location', () => q.profitability('location')],
    ['profitability category segment', () => q.profitability('category', { segment: 'loyal' })],
    ['campaignReturns', () => q.campaignReturns(period)],
    ['complaintsPerEmployee', () => q.complaintsPerEmployee()],
    ['turnover', () => q.turnover(period)],
  ];
  const queries: QueryTiming[] = [];
  for (const [name, run] of cases) {
    await run();
    const times: number[] = [];
    const cpu: number[] = [];
    for (let i = 0; i < runs; i += 1) {
      const c = process.cpuUsage();
      const t = performance.now();
      await run();
      times.push(performance.now() - t);
      const used = process.cpuUsage(c);
      cpu.push((used.user + used.system) / 1000);
    }
    sampleRss();
    times.sort((a, b) => a - b);
    cpu.sort((a, b) => a - b);
    const timing = { name, p50Ms: round(percentile(times, 0.5)), p99Ms: round(percentile(times, 0.99)), cpuP50Ms: round(percentile(cpu, 0.5)) };
    queries.push(timing);
    log(
      `${name.padEnd(36)} p50 ${timing.p50Ms.toFixed(1).padStart(8)} ms   p99 ${timing.p99Ms.toFixed(1).padStart(8)} ms   cpu p50 ${timing.cpuP50Ms.toFixed(1).padStart(8)} ms`,
    );
  }
  return {
    events,
    customers,
    buildSeconds: round(buildSeconds),
    eventsPerSecond: options.chunks ? Math.round(events / buildSeconds) : 0,
    buildCpuSeconds: round(buildCpu),
    refreshSeconds: round(refreshSeconds),
    refreshCpuSeconds: round((refreshCpu.user + refreshCpu.system) / 1e6),
    peakRssMb: Math.round(peakRss / 1_048_576),
    queries,
  };
}

/** nearest-rank percentile of sorted samples */
function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))] ?? 0;
}

function round(x: number): number {
  return Math.round(x * 10) / 10;
}
