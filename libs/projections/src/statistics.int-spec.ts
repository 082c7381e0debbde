import type { StoredEvent } from '@clientele/event-store';
import { PostgresServer, describeWithServer, generateCustomerDataset, inMemoryStoreOf } from '@clientele/testing';
import { PostgresReadModelStore } from './postgres-read-model.store';
import { digest } from './read-model-digest';
import type { ReadModelStore } from './read-model-store';
import { replayProjections } from './replay-proof';
import { SqliteReadModelStore } from './sqlite-read-model.store';
import { StatisticsProjection } from './statistics.projection';
import { StatisticsQueries } from './statistics.queries';
import type { StatisticsFilter } from './statistics.queries';

async function fold(store: ReadModelStore, events: readonly StoredEvent[], batch: number): Promise<void> {
  const projection = new StatisticsProjection();
  await store.transaction((tx) => projection.migrate(tx));
  for (let i = 0; i < events.length; i += batch) await store.transaction((tx) => projection.apply(events.slice(i, i + batch), tx));
}

/** sums of doubles may differ in the last bits between engines; everything else must be equal */
function rounded<T>(v: T): T {
  return JSON.parse(JSON.stringify(v, (_k, x: unknown) => (typeof x === 'number' && !Number.isInteger(x) ? Number(x.toPrecision(10)) : x))) as T;
}

describeWithServer(PostgresServer, 'statistics on PostgreSQL', (url) => {
  const schema = `rm_stat_${process.pid}_${Date.now().toString(36)}`;
  let pg: PostgresReadModelStore;
  let sqlite: SqliteReadModelStore;
  const events = generateCustomerDataset({ seed: 5, customers: 250, months: 18, start: '2024-03-01' });

  beforeAll(async () => {
    pg = await PostgresReadModelStore.open({ connectionString: url, schema });
    sqlite = new SqliteReadModelStore(':memory:');
    await fold(sqlite, events, 300);
    await fold(pg, events, 300);
  });
  afterAll(async () => {
    await pg?.dropSchema();
    await pg?.close();
    await sqlite?.close();
  });

  it('given the same events, then every statistic answers the same on PostgreSQL as on SQLite', async () => {
    const filters: StatisticsFilter[] = [{}, { source: 'web' }, { channel: 'email' }, { segment: 'champions' }];
    const asOf: StatisticsFilter[] = [{}, { asOf: '2024-12-31' }, { asOf: '2025-05-15', segment: 'at_risk' }];
    const period: StatisticsFilter[] = [{}, { from: '2024-06-01', to: '2025-03-31' }, { from: '2024-06-01', to: '2025-03-31', segment: 'loyal' }];
    const calls: [string, (q: StatisticsQueries) => Promise<unknown>][] = [];
    for (const f of [...filters, ...asOf]) {
      calls.push([`stageCounts ${JSON.stringify(f)}`, (q) => q.stageCounts(f)]);
      calls.push([`repeatRate ${JSON.stringify(f)}`, (q) => q.repeatRate(f)]);
      calls.push([`tenure ${JSON.stringify(f)}`, (q) => q.tenure(f)]);
      calls.push([`rfmSegments ${JSON.stringify(f)}`, (q) => q.rfmSegments(f)]);
      calls.push([`rfmScores ${JSON.stringify(f)}`, (q) => q.rfmScores(f, { limit: 10_000 })]);
      calls.push([`funnel ${JSON.stringify(f)}`, (q) => q.funnel(f)]);
    }
    for (const f of [...filters, ...period]) {
      calls.push([`cohortRetention ${JSON.stringify(f)}`, (q) => q.cohortRetention(f, 8)]);
      calls.push([`churn ${JSON.stringify(f)}`, (q) => q.churn(f)]);
      calls.push([`value month ${JSON.stringify(f)}`, (q) => q.value(f)]);
      calls.push([`value year ${JSON.stringify(f)}`, (q) => q.value(f, 'year')]);
      calls.push([`golden ${JSON.stringify(f)}`, (q) => q.goldenCustomers(f)]);
      for (const by of ['segment', 'channel', 'source', 'category', 'location'] as const)
        calls.push([`profitability ${by} ${JSON.stringify(f)}`, (q) => q.profitability(by, f)]);
    }
    for (const f of period.slice(0, 2)) {
      calls.push([`campaignReturns ${JSON.stringify(f)}`, (q) => q.campaignReturns(f)]);
      calls.push([`complaints ${JSON.stringify(f)}`, (q) => q.complaintsPerEmployee(f)]);
      calls.push([`turnover ${JSON.stringify(f)}`, (q) => q.turnover(f)]);
    }
    const onPg = new StatisticsQueries(pg);
    const onSqlite = new StatisticsQueries(sqlite);
    let nonEmpty = 0;
    for (const [name, call] of calls) {
      const expected = rounded(await call(onSqlite));
      if (JSON.stringify(expected).match(/[1-9]/)) nonEmpty += 1;
      expect({ name, answer: rounded(await call(onPg)) }).toEqual({ name, answer: expected });
    }
    expect(nonEmpty).toBe(calls.length);
  });

  it('given a log imported customer by customer, when the stale snapshots are refreshed on both engines, then they hold the same rows as the business-time fold', async () => {
    // each customer's facts together, customer after customer: nearly every purchase is a backfill
    const byCustomer = new Map<string, StoredEvent[]>();
    for (const e of events) {
      const id = typeof e.data['customerId'] === 'string' ? e.data['customerId'] : '';
      byCustomer.set(id, [...(byCustomer.get(id) ?? []), e]);
    }
    const imported = [...byCustomer.values()].flat();
    const importedSchema = `${schema}_imp`;
    const pgImported = await PostgresReadModelStore.open({ connectionString: url, schema: importedSchema });
    const sqliteImported = new SqliteReadModelStore(':memory:');
    try {
      const projection = new StatisticsProjection();
      const rows = async (store: ReadModelStore): Promise<string[]> =>
        (await store.all('SELECT * FROM stat_rfm_months')).map((r) => JSON.stringify(rounded(r))).sort();
      for (const store of [pgImported, sqliteImported]) {
        await fold(store, imported, 300);
        expect(await store.get(`SELECT value FROM stat_meta WHERE key = 'rfm_stale_from'`)).toEqual({ value: '2024-03' });
        let steps = 0;
        for (let more = true; more; steps += 1) more = await store.transaction((tx) => projection.refreshSnapshots(tx));
        expect(steps).toBe(17);
        expect(await store.get(`SELECT value FROM stat_meta WHERE key = 'rfm_stale_from'`)).toBeUndefined();
      }
      const expected = await rows(sqlite);
      expect(expected.length).toBeGreaterThan(0);
      expect(await rows(sqliteImported)).toEqual(expected);
      expect(await rows(pgImported)).toEqual(expected);
    } finally {
      await pgImported.dropSchema();
      await pgImported.close();
      await sqliteImported.close();
    }
  });

  it('given the same events rebuilt by the rebuild instance in batches that cut months, past its resident limit, then its digest is the live fold\'s', async () => {
    const rebuiltSchema = `${schema}_reb`;
    const scratch = await PostgresReadModelStore.open({ connectionString: url, schema: rebuiltSchema });
    try {
      await replayProjections(await inMemoryStoreOf(events), scratch, [new StatisticsProjection({ residentLimit: 100 })], { batchSize: 97 });
      expect(Number((await scratch.get<{ n: unknown }>(`SELECT COUNT(DISTINCT month) AS n FROM stat_rfm_months`))?.n)).toBeGreaterThanOrEqual(16);
      expect(await digest(scratch, new StatisticsProjection())).toBe(await digest(pg, new StatisticsProjection()));
    } finally {
      await scratch.dropSchema();
      await scratch.close();
    }
  });

  it('given the same events, then the tables hold the same rows on both engines', async () => {
    const sorted = (rows: unknown[]): string[] => rows.map((r) => JSON.stringify(rounded(r))).sort();
    for (const table of new StatisticsProjection().tables) {
      const a = await sqlite.all(`SELECT * FROM ${table}`);
      expect(a.length).toBeGreaterThan(0);
      expect({ table, rows: sorted(await pg.all(`SELECT * FROM ${table}`)) }).toEqual({ table, rows: sorted(a) });
    }
  });
});
