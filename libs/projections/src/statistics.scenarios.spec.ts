import type { JsonObject, StoredEvent } from '@clientele/event-store';
import { SqliteReadModelStore } from './sqlite-read-model.store';
import { StatisticsProjection } from './statistics.projection';
import { MAX_CHURN_MONTHS, RFM_SEGMENT_RULES, StatisticsFilterError, StatisticsQueries } from './statistics.queries';

/** Small histories whose every figure was worked out by hand (the arithmetic is in the comments). */

let position = 0;
function ev(type: string, at: string, data: JsonObject, streamId = `customer-${String(data['customerId'])}`): StoredEvent {
  position += 1;
  const occurredAt = `${at}T00:00:00.000Z`;
  return {
    id: `e${position}`,
    streamId,
    revision: 0,
    position,
    type,
    data: { ...data, occurredAt },
    metadata: { occurredAt, schemaVersion: 1 },
    recordedAt: occurredAt,
    hash: '',
    prevHash: '',
  };
}
const reg = (c: string, at: string, source = 'web'): StoredEvent =>
  ev('ProspectRegistered', at, { customerId: c, source, channel: 'email', personal: {}, implicit: false });
const buy = (c: string, order: string, at: string, total = 10_000, cost = 6_000, campaign?: string): StoredEvent =>
  ev('PurchaseRecorded', at, {
    customerId: c,
    orderId: order,
    lines: [{ sku: 's', category: 'books', quantity: 1, unitPriceMinor: total, unitCostMinor: cost }],
    totalMinor: total,
    costMinor: cost,
    channel: 'web',
    location: 'paris',
    ...(campaign ? { campaign } : {}),
  });
const converted = (c: string, order: string, at: string) => ev('CustomerConverted', at, { customerId: c, orderId: order });
const repeat = (c: string, at: string) => ev('RepeatBuyerQualified', at, { customerId: c, distinctOrders: 2 });

/**
 * A: registered 01-05, buys 01-10, 02-15 (exactly midnight), 04-01 (campaign "spring", 200.00/50.00)
 * B: registered 01-20, buys 01-25, 03-03
 * C: registered 01-02, buys 02-01 (midnight: not active at the start of February), 02-20; promoter 03-01 → advocate
 * D: registered 02-10, buys 02-11, marked lost 03-31 (price)
 * E: registered 02-12, never buys
 */
function history(): StoredEvent[] {
  return [
    ev('EmployeeHired', '2025-01-01', { employeeId: 'e1', name: 'One' }, 'employee-e1'),
    ev('EmployeeHired', '2025-01-01', { employeeId: 'e2', name: 'Two' }, 'employee-e2'),
    reg('C', '2025-01-02'),
    reg('A', '2025-01-05'),
    buy('A', 'a1', '2025-01-10'),
    converted('A', 'a1', '2025-01-10'),
    reg('B', '2025-01-20'),
    buy('B', 'b1', '2025-01-25'),
    converted('B', 'b1', '2025-01-25'),
    ev('EmployeeHired', '2025-02-01', { employeeId: 'e3', name: 'Three' }, 'employee-e3'),
    buy('C', 'c1', '2025-02-01'),
    converted('C', 'c1', '2025-02-01'),
    reg('D', '2025-02-10', 'store'),
    buy('D', 'd1', '2025-02-11'),
    converted('D', 'd1', '2025-02-11'),
    reg('E', '2025-02-12'),
    buy('A', 'a2', '2025-02-15'),
    repeat('A', '2025-02-15'),
    ev('CampaignSpendRecorded', '2025-02-16', { campaignId: 'spring', spendId: 's1', channel: 'email', amountMinor: 5_000 }, 'campaign-spring'),
    buy('C', 'c2', '2025-02-20'),
    repeat('C', '2025-02-20'),
    ev('FeedbackReceived', '2025-03-01', { customerId: 'C', feedbackId: 'f1', score: 10, kind: 'praise', employeeId: 'e1' }),
    ev('AdvocateRecognized', '2025-03-01', { customerId: 'C', reason: 'promoter_feedback', convertedReferrals: 0, score: 10 }),
    buy('B', 'b2', '2025-03-03'),
    repeat('B', '2025-03-03'),
    ev('EmployeeLeft', '2025-03-15', { employeeId: 'e2' }, 'employee-e2'),
    ev('FeedbackReceived', '2025-03-20', { customerId: 'D', feedbackId: 'f2', score: 1, kind: 'complaint', employeeId: 'e3' }),
    ev('CustomerChurned', '2025-03-31', { customerId: 'D', reason: 'marked_lost', detail: 'price', previousStage: 'customer' }),
    buy('A', 'a3', '2025-04-01', 20_000, 5_000, 'spring'),
  ];
}

/** facts the statistics must survive without a change: a replayed order, nonsense, an unknown type */
function noise(): StoredEvent[] {
  const replay = buy('A', 'a1', '2025-01-10');
  const negative = buy('B', 'bx', '2025-03-04', -5, 0);
  const undated = { ...buy('B', 'by', '2025-03-05'), metadata: { schemaVersion: 1, occurredAt: 'yesterday' }, data: { customerId: 'B' } };
  const mystery = ev('SomethingNew.v9', '2025-03-06', { customerId: 'A', whatever: [1, 2, 3] });
  const noLines = ev('PurchaseRecorded', '2025-03-07', { customerId: 'Z' });
  return [replay, negative, undated as StoredEvent, mystery, noLines];
}

async function storeWith(events: StoredEvent[], batch = events.length): Promise<{ store: SqliteReadModelStore; q: StatisticsQueries }> {
  const store = new SqliteReadModelStore(':memory:');
  const p = new StatisticsProjection();
  await store.transaction(async (tx) => {
    await p.migrate(tx);
    await p.migrate(tx); // idempotent
  });
  for (let i = 0; i < events.length; i += batch) await store.transaction((tx) => p.apply(events.slice(i, i + batch), tx));
  return { store, q: new StatisticsQueries(store) };
}

describe('statistics on a hand-checked history of five customers', () => {
  let store: SqliteReadModelStore;
  let q: StatisticsQueries;
  beforeAll(async () => ({ store, q } = await storeWith(history())));
  afterAll(async () => store.close());

  it('given five customers, then the cohort table by month of first purchase is the one worked out by hand', async () => {
    // cohort 2025-01 = {A, B}: Jan both, Feb A, Mar B, Apr A; cohort 2025-02 = {C, D}: Feb both, then nobody
    expect(await q.cohortRetention()).toEqual([
      { cohort: '2025-01', size: 2, active: [2, 1, 1, 1], retention: [1, 0.5, 0.5, 0.5] },
      { cohort: '2025-02', size: 2, active: [2, 0, 0], retention: [1, 0, 0] },
    ]);
    expect(await q.cohortRetention({ from: '2025-02-01' }, 1)).toEqual([{ cohort: '2025-02', size: 2, active: [2, 0], retention: [1, 0] }]);
  });

  it('counts stages now, and as of a date whose end is exactly the instant of a transition', async () => {
    expect((await q.stageCounts()).stages).toEqual({ prospect: 1, customer: 0, repeat_buyer: 2, advocate: 1, churned: 1 });
    // A qualifies as repeat buyer at 2025-02-15T00:00Z, the first instant after 2025-02-14: still a customer then
    expect((await q.stageCounts({ asOf: '2025-02-14' })).stages).toEqual({ prospect: 1, customer: 4, repeat_buyer: 0, advocate: 0, churned: 0 });
    // the answer names the last instant it counted, the end of the day asked about, not the next day
    expect((await q.stageCounts({ asOf: '2025-02-14' })).asOf).toBe('2025-02-14T23:59:59.999Z');
    expect((await q.stageCounts({ asOf: '2025-02-14T10:00:00Z' })).asOf).toBe('2025-02-14T10:00:00.000Z');
    expect((await q.stageCounts({ asOf: '2025-02-15' })).stages).toEqual({ prospect: 1, customer: 3, repeat_buyer: 1, advocate: 0, churned: 0 });
    expect((await q.stageCounts({ source: 'store' })).stages).toEqual({ prospect: 0, customer: 0, repeat_buyer: 0, advocate: 0, churned: 1 });
  });

  it('takes the last day there is as a date, counting everything, as a date-time the same, and every offset the same instant', async () => {
    const now = await q.stageCounts();
    // the day after 9999-12-31 would be written +010000-…, which sorts before every stored time
    expect(await q.stageCounts({ asOf: '9999-12-31' })).toEqual({ ...now, asOf: '9999-12-31T23:59:59.999Z' });
    expect((await q.stageCounts({ asOf: '9999-12-31T23:59:59.999Z' })).stages).toEqual(now.stages);
    // a row a month: not for eight thousand years
    await expect(q.churn({ from: '2025-01-01', to: '9999-12-31' })).rejects.toMatchObject({ field: 'to', code: 'invalid_filter' });
    expect((await q.churn({ from: '2025-01-01', to: '2124-12-31' })).months).toHaveLength(MAX_CHURN_MONTHS);
    expect(await q.stageCounts({ asOf: '2025-02-15T02:00:00+02:00' })).toEqual(await q.stageCounts({ asOf: '2025-02-15T00:00:00Z' }));
  });

  it('builds the funnel: 5 → 4 → 3 → 1, medians 5, 36 and 9 days', async () => {
    // prospect→customer: A 5, B 5, C 30, D 1 → median (5+5)/2; customer→repeat: A 36, B 37, C 19 → 36; C 02-20→03-01 = 9
    expect(await q.funnel()).toEqual({
      steps: [
        { stage: 'prospect', reached: 5, conversionRate: null, medianDaysFromPrevious: null },
        { stage: 'customer', reached: 4, conversionRate: 0.8, medianDaysFromPrevious: 5 },
        { stage: 'repeat_buyer', reached: 3, conversionRate: 0.75, medianDaysFromPrevious: 36 },
        { stage: 'advocate', reached: 1, conversionRate: 1 / 3, medianDaysFromPrevious: 9 },
      ],
      overallConversionRate: 0.2,
    });
    // registered in January: C, A, B; as of 2025-02-28 C and A are repeat buyers, B a customer
    const jan = await q.funnel({ from: '2025-01-01', to: '2025-01-31', asOf: '2025-02-28' });
    expect(jan.steps.map((s) => s.reached)).toEqual([3, 3, 2, 0]);
    expect(jan.steps[2]?.medianDaysFromPrevious).toBe((36 + 19) / 2);
  });

  it('measures churn against customers active at the first instant of each month', async () => {
    // Feb 1: A, B (C converts at that very instant); Mar 1: A, B, C, D; Apr 1: A, B, C
    expect(await q.churn()).toEqual({
      months: [
        { month: '2025-01', activeAtStart: 0, churned: 0, rate: null },
        { month: '2025-02', activeAtStart: 2, churned: 0, rate: 0 },
        { month: '2025-03', activeAtStart: 4, churned: 1, rate: 0.25 },
        { month: '2025-04', activeAtStart: 3, churned: 0, rate: 0 },
      ],
      reasons: [{ reason: 'marked_lost', detail: 'price', count: 1 }],
    });
  });

  it('computes repeat rate 3/4 and average tenure (81 + 66 + 59 + 0) / 4 days', async () => {
    expect(await q.repeatRate()).toEqual({ buyers: 4, repeatBuyers: 3, rate: 0.75 });
    expect(await q.tenure()).toEqual({ customers: 4, averageDays: 51.5 });
    // as of 2025-01-31 (end = Feb 1): A 22 days, B 7 days
    expect(await q.tenure({ asOf: '2025-01-31' })).toEqual({ customers: 2, averageDays: 14.5 });
    expect(await q.repeatRate({ asOf: '2025-01-31' })).toEqual({ buyers: 2, repeatBuyers: 0, rate: 0 });
  });

  it('reports value per month and year, golden customers, campaign return, complaints and turnover', async () => {
    const months = await q.value();
    expect(months.map((m) => [m.period, m.activeCustomers, m.orders, m.revenue, m.cost])).toEqual([
      ['2025-01', 2, 2, 20_000, 12_000],
      ['2025-02', 3, 4, 40_000, 24_000],
      ['2025-03', 1, 1, 10_000, 6_000],
      ['2025-04', 1, 1, 20_000, 5_000],
    ]);
    expect(await q.value({}, 'year')).toEqual([
      { period: '2025', activeCustomers: 4, orders: 8, revenue: 90_000, cost: 47_000, margin: 43_000, revenuePerActiveCustomer: 22_500, marginPerActiveCustomer: 10_750 },
    ]);
    const golden = await q.goldenCustomers();
    expect(golden.tiers.map((t) => [t.customers, t.revenue])).toEqual([
      [1, 40_000],
      [1, 40_000],
    ]);
    expect(golden.tiers[0]?.revenueShare).toBeCloseTo(4 / 9, 12);
    expect(await q.campaignReturns()).toEqual([{ campaignId: 'spring', spend: 5_000, revenue: 20_000, orders: 1, returnOnSpend: 3 }]);
    expect(await q.complaintsPerEmployee()).toEqual([
      { employeeId: 'e3', feedback: 1, complaints: 1 },
      { employeeId: 'e1', feedback: 1, complaints: 0 },
      { employeeId: 'e2', feedback: 0, complaints: 0 },
    ]);
    // a period reversed by a default is refused as one given reversed: before the first hire, after the latest time
    await expect(q.turnover({ to: '2020-01-01' })).rejects.toMatchObject({ field: 'to', code: 'invalid_filter' });
    await expect(q.turnover({ from: '2090-01-01' })).rejects.toMatchObject({ field: 'from', code: 'invalid_filter' });
    // leavers 1 (e2); headcount 2 on Jan 1 (e1, e2) and 2 at the end of March (e1, e3)
    expect(await q.turnover({ from: '2025-01-01', to: '2025-03-31' })).toEqual({
      from: '2025-01-01T00:00:00.000Z',
      to: '2025-04-01T00:00:00.000Z',
      leavers: 1,
      headcountAtStart: 2,
      headcountAtEnd: 2,
      averageHeadcount: 2,
      rate: 0.5,
    });
  });

  it('counts only the purchases up to the date in segment profitability as of a past date, as the other figures as of it do', async () => {
    // up to the end of February: a1, a2, b1, c1, c2, d1 at 100.00 revenue and 60.00 cost each; a3 (April) and b2 (March) come later
    const rows = await q.profitability('segment', { asOf: '2025-02-28' });
    const sum = (k: 'orders' | 'revenue' | 'cost') => rows.reduce((n, row) => n + row[k], 0);
    expect([sum('orders'), sum('revenue'), sum('cost')]).toEqual([6, 60_000, 36_000]);
    const lifetime = await q.profitability('segment');
    expect(lifetime.reduce((n, row) => n + row.orders, 0)).toBe(8);
  });

  it.each([0, 1])('keeps a departure in the turnover after the same person is hired again (batches of %i, 0 = all)', async (batch) => {
    const staff = (type: string, at: string) => ev(type, at, { employeeId: 'e2', name: 'Two' }, 'employee-e2');
    const events = [...history(), staff('EmployeeHired', '2025-06-01'), staff('EmployeeLeft', '2025-08-01'), staff('EmployeeHired', '2025-09-01')];
    const { store: rehired, q: r } = await storeWith(events, batch || events.length);
    try {
      // the first quarter as before the rehire: e2 left on 03-15, headcount 2 on Jan 1 and 2 at the end of March
      expect(await r.turnover({ from: '2025-01-01', to: '2025-03-31' })).toMatchObject({ leavers: 1, headcountAtStart: 2, headcountAtEnd: 2, rate: 0.5 });
      // Jan–Aug: e2 left twice (03-15 and 08-01); headcount 2 on Jan 1 (e1, e2), 2 at the end of August (e1, e3)
      expect(await r.turnover({ from: '2025-01-01', to: '2025-08-31' })).toMatchObject({ leavers: 2, headcountAtStart: 2, headcountAtEnd: 2, rate: 1 });
      // June–July: e2 back in the staff the whole time: three employed on June 1 and at the end of July
      expect(await r.turnover({ from: '2025-06-01', to: '2025-07-31' })).toMatchObject({ leavers: 0, headcountAtStart: 3, headcountAtEnd: 3, rate: 0 });
      expect((await r.complaintsPerEmployee()).map((e) => e.employeeId)).toEqual(['e3', 'e1', 'e2']);
    } finally {
      await rehired.close();
    }
  });

  it.each([0, 3])('skips a replayed order, nonsense payloads and unknown facts without throwing or changing a figure (batches of %i, 0 = all)', async (batch) => {
    // in batches of 3 the replayed order arrives long after the batch that stored it
    const events = [...history(), ...noise()];
    const noisy = await storeWith(events, batch || events.length);
    for (const table of new StatisticsProjection().tables) {
      const rows = (s: SqliteReadModelStore) => s.all<Record<string, unknown>>(`SELECT * FROM ${table} ORDER BY 1, 2`);
      // the only trace of the noise: customer Z, whose purchase had no usable order
      const clean = (await rows(noisy.store)).filter((r) => r['customer_id'] !== 'Z');
      expect({ table, rows: clean }).toEqual({ table, rows: await rows(store) });
    }
    await noisy.store.close();
  });
});

describe('statistics when a backfilled purchase predates the first one', () => {
  it.each([1, 4])('moves the customer to the earlier cohort and keeps month and year totals whole (batches of %i)', async (batch) => {
    // X registered in January, bought in March; a January order arrives later in the log
    const log = [reg('X', '2025-01-02'), buy('X', 'x2', '2025-03-10'), buy('X', 'x1', '2025-01-15'), buy('X', 'x3', '2025-03-20')];
    const { store, q } = await storeWith(log, batch);
    expect(await q.cohortRetention()).toEqual([{ cohort: '2025-01', size: 1, active: [1, 0, 1], retention: [1, 0, 1] }]);
    expect((await q.value()).map((m) => [m.period, m.activeCustomers, m.orders])).toEqual([
      ['2025-01', 1, 1],
      ['2025-03', 1, 2],
    ]);
    expect((await q.value({}, 'year')).map((m) => [m.period, m.activeCustomers, m.orders])).toEqual([['2025', 1, 3]]);
    await store.close();
  });
});

describe('statistics filters', () => {
  const q = new StatisticsQueries(new SqliteReadModelStore(':memory:'));
  const cases: [string, () => Promise<unknown>, string][] = [
    ['an impossible date', () => q.funnel({ from: '2025-02-30' }), 'from'],
    ['a date that is not a date', () => q.value({ to: 'last week' }), 'to'],
    ['to before from', () => q.churn({ from: '2025-03-01', to: '2025-02-01' }), 'to'],
    // without a zone the server's own time zone would decide the instant
    ['a date-time without a zone', () => q.stageCounts({ asOf: '2025-02-15T00:00:00' }), 'asOf'],
    ['a from date-time without a zone', () => q.churn({ from: '2025-01-01T00:00' }), 'from'],
    ['an unknown segment', () => q.stageCounts({ segment: 'vip' }), 'segment'],
    ['an empty source', () => q.stageCounts({ source: '' }), 'source'],
    ['an unknown field', () => q.stageCounts({ colour: 'red' } as never), 'colour'],
    ['a field the statistic does not take', () => q.stageCounts({ from: '2025-01-01' }), 'from'],
    ['population filters on campaign spend', () => q.campaignReturns({ source: 'web' }), 'source'],
    ['a bad grouping', () => q.profitability('colour' as never), 'by'],
    ['a bad cohort width', () => q.cohortRetention({}, -1), 'maxMonths'],
  ];
  it.each(cases)('rejects %s with a typed error naming the field', async (_name, call, field) => {
    const err = await call().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(StatisticsFilterError);
    expect(err).toMatchObject({ field, code: 'invalid_filter' });
  });

  it('maps each of the 25 (R, F) score cells to exactly one RFM segment', () => {
    for (let r = 1; r <= 5; r += 1)
      for (let f = 1; f <= 5; f += 1) {
        const first = RFM_SEGMENT_RULES.findIndex((x) => r >= x.r[0] && r <= x.r[1] && f >= x.f[0] && f <= x.f[1]);
        expect({ r, f, matched: first >= 0 }).toEqual({ r, f, matched: true });
      }
  });
});
