import type { StoredEvent } from '@clientele/event-store';
import { generateCustomerDataset, inMemoryStoreOf } from '@clientele/testing';
import { Projector } from './projector';
import { digest } from './read-model-digest';
import type { ReadModelTransaction } from './read-model-store';
import { ReadModels } from './read-models';
import { replayProjections } from './replay-proof';
import { SqliteReadModelStore } from './sqlite-read-model.store';
import { StatisticsProjection } from './statistics.projection';
import { RFM_SEGMENTS, StatisticsQueries, rfmSegmentOf } from './statistics.queries';
import { compareText, ntileScores, quintilesInMemory } from './statistics.rfm';
import type { RfmSegment, StatisticsFilter } from './statistics.queries';

/**
 * The truth of the numbers: a seeded history goes through the projection, and every statistic is
 * compared with the same figure computed here by a plain fold over the events, written without
 * the projection's tables or SQL.
 */

const DAY = 86_400_000;
const ACTIVE = new Set(['customer', 'repeat_buyer', 'advocate']);

interface OOrder {
  id: string;
  at: string;
  revenue: number;
  cost: number;
  channel: string;
  location: string;
  campaign?: string;
  categories: Map<string, [number, number]>;
}
interface OCustomer {
  id: string;
  source: string;
  channel: string;
  registeredAt: string | null;
  transitions: { stage: string; at: string; reason?: string; detail?: string }[];
  orders: OOrder[];
  convertedAt?: string;
  repeatAt?: string;
  advocateAt?: string;
}

/** The reference fold: what happened to whom, nothing precomputed. */
class Oracle {
  customers = new Map<string, OCustomer>();
  employees = new Map<string, { hiredAt?: string; leftAt?: string }>();
  feedback: { employeeId: string; at: string; complaint: boolean }[] = [];
  spend: { campaign: string; at: string; amount: number }[] = [];
  latest = '';

  constructor(events: readonly StoredEvent[]) {
    for (const e of events) {
      const at = e.metadata.occurredAt;
      if (at > this.latest) this.latest = at;
      const d = e.data as Record<string, unknown>;
      const cid = d['customerId'] as string;
      const c = (): OCustomer => {
        let x = this.customers.get(cid);
        if (!x) {
          x = { id: cid, source: 'unknown', channel: 'unknown', registeredAt: null, transitions: [], orders: [] };
          this.customers.set(cid, x);
        }
        return x;
      };
      switch (e.type) {
        case 'ProspectRegistered': {
          const x = c();
          x.source = d['source'] as string;
          x.channel = (d['channel'] as string | undefined) ?? 'unknown';
          x.registeredAt = at;
          x.transitions.push({ stage: 'prospect', at });
          break;
        }
        case 'PurchaseRecorded': {
          const x = c();
          if (x.orders.some((o) => o.id === d['orderId'])) break;
          const categories = new Map<string, [number, number]>();
          for (const l of d['lines'] as { category: string; quantity: number; unitPriceMinor: number; unitCostMinor: number }[]) {
            const acc = categories.get(l.category) ?? [0, 0];
            categories.set(l.category, [acc[0] + l.quantity * l.unitPriceMinor, acc[1] + l.quantity * l.unitCostMinor]);
          }
          x.orders.push({
            id: d['orderId'] as string,
            at,
            revenue: d['totalMinor'] as number,
            cost: d['costMinor'] as number,
            channel: (d['channel'] as string | undefined) ?? 'unknown',
            location: (d['location'] as string | undefined) ?? 'unknown',
            campaign: d['campaign'] as string | undefined,
            categories,
          });
          break;
        }
        case 'CustomerConverted':
          c().convertedAt ??= at;
          c().transitions.push({ stage: 'customer', at });
          break;
        case 'RepeatBuyerQualified':
          c().repeatAt ??= at;
          c().transitions.push({ stage: 'repeat_buyer', at });
          break;
        case 'AdvocateRecognized':
          c().advocateAt ??= at;
          c().transitions.push({ stage: 'advocate', at });
          break;
        case 'CustomerChurned':
          c().transitions.push({ stage: 'churned', at, reason: d['reason'] as string, detail: d['detail'] as string | undefined });
          break;
        case 'CustomerReactivated':
          c().transitions.push({ stage: 'customer', at });
          break;
        case 'FeedbackReceived':
          if (d['employeeId']) this.feedback.push({ employeeId: d['employeeId'] as string, at, complaint: d['kind'] === 'complaint' });
          break;
        case 'EmployeeHired':
          this.employees.set(d['employeeId'] as string, { hiredAt: at });
          break;
        case 'EmployeeLeft':
          this.employees.get(d['employeeId'] as string)!.leftAt = at;
          break;
        case 'CampaignSpendRecorded':
          this.spend.push({ campaign: d['campaignId'] as string, at, amount: d['amountMinor'] as number });
          break;
      }
    }
  }

  stageAt(c: OCustomer, end?: string): string | undefined {
    const ts = end ? c.transitions.filter((t) => t.at < end) : c.transitions;
    return ts[ts.length - 1]?.stage;
  }

  ordersUntil(c: OCustomer, end?: string): OOrder[] {
    return end ? c.orders.filter((o) => o.at < end) : c.orders;
  }

  /** RFM by hand: sort, cut into 5 buckets the size NTILE gives (earlier buckets take the remainder) */
  rfm(end?: string): Map<string, { r: number; f: number; m: number; segment: RfmSegment; last: number; freq: number; revenue: number; cost: number }> {
    const base = [...this.customers.values()]
      .map((c) => {
        const os = this.ordersUntil(c, end);
        return {
          id: c.id,
          last: Math.max(...os.map((o) => Date.parse(o.at))),
          freq: os.length,
          revenue: sum(os.map((o) => o.revenue)),
          cost: sum(os.map((o) => o.cost)),
        };
      })
      .filter((x) => x.freq > 0);
    const tile = (key: (x: (typeof base)[number]) => number): Map<string, number> => {
      const sorted = [...base].sort((a, b) => key(a) - key(b) || (a.id < b.id ? -1 : 1));
      const n = sorted.length;
      const small = Math.floor(n / 5);
      const big = n % 5;
      const out = new Map<string, number>();
      let i = 0;
      for (let b = 1; b <= 5; b += 1) {
        const size = small + (b <= big ? 1 : 0);
        for (let k = 0; k < size; k += 1) out.set(sorted[i++]!.id, b);
      }
      return out;
    };
    const r = tile((x) => x.last);
    const f = tile((x) => x.freq);
    const m = tile((x) => x.revenue);
    return new Map(
      base.map((x) => [
        x.id,
        { r: r.get(x.id)!, f: f.get(x.id)!, m: m.get(x.id)!, segment: rfmSegmentOf(r.get(x.id)!, f.get(x.id)!), last: x.last, freq: x.freq, revenue: x.revenue, cost: x.cost },
      ]),
    );
  }

  population(f: StatisticsFilter): OCustomer[] {
    const segEnd = f.asOf ? endOf(f.asOf) : f.to ? endOf(f.to) : undefined;
    const rfm = f.segment ? this.rfm(segEnd) : undefined;
    return [...this.customers.values()].filter(
      (c) =>
        (!f.source || c.source === f.source) &&
        (!f.channel || c.channel === f.channel) &&
        (!f.segment || rfm!.get(c.id)?.segment === f.segment),
    );
  }
}

const endOf = (date: string): string => new Date(Date.parse(`${date}T00:00:00.000Z`) + DAY).toISOString();
const sum = (xs: number[]): number => xs.reduce((s, x) => s + x, 0);
const ratio = (a: number, b: number): number | null => (b === 0 ? null : a / b);
const median = (xs: number[]): number | null => {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor((s.length - 1) / 2);
  return s.length % 2 ? s[mid]! : (s[mid]! + s[mid + 1]!) / 2;
};
const inMonths = (month: string, f: StatisticsFilter): boolean =>
  (!f.from || month >= f.from.slice(0, 7)) && (!f.to || month <= f.to.slice(0, 7));
const monthsBetween = (a: string, b: string): number => (Number(b.slice(0, 4)) - Number(a.slice(0, 4))) * 12 + Number(b.slice(5, 7)) - Number(a.slice(5, 7));

/** floats compared to 9 significant decimals; everything else exactly */
function rounded<T>(v: T): T {
  return JSON.parse(JSON.stringify(v, (_k, x: unknown) => (typeof x === 'number' && !Number.isInteger(x) ? Number(x.toPrecision(10)) : x))) as T;
}

async function project(events: readonly StoredEvent[], batch: number): Promise<SqliteReadModelStore> {
  const store = new SqliteReadModelStore(':memory:');
  const projection = new StatisticsProjection();
  await store.transaction((tx) => projection.migrate(tx));
  for (let i = 0; i < events.length; i += batch) {
    await store.transaction((tx) => projection.apply(events.slice(i, i + batch), tx));
  }
  return store;
}

/** what the projector does once caught up: refresh steps, one transaction each; answers the number of steps */
async function refreshAll(store: SqliteReadModelStore): Promise<number> {
  const projection = new StatisticsProjection();
  let steps = 0;
  for (let more = true; more; steps += 1) more = await store.transaction((tx) => projection.refreshSnapshots(tx));
  return steps;
}

describe('statistics over a seeded customer history', () => {
  const events = generateCustomerDataset({ seed: 11, customers: 400, months: 24, start: '2024-01-01' });
  const oracle = new Oracle(events);
  let store: SqliteReadModelStore;
  let q: StatisticsQueries;

  beforeAll(async () => {
    store = await project(events, 173);
    q = new StatisticsQueries(store);
  });
  afterAll(async () => store.close());

  const populations: StatisticsFilter[] = [{}, { source: 'web' }, { channel: 'email' }, { segment: 'champions' }, { segment: 'at_risk', source: 'ads' }];
  const asOfs = [undefined, '2024-09-30', '2025-06-15'];

  it('given the dataset, then it exercises every lifecycle path the statistics count', () => {
    const types = new Set(events.map((e) => e.type));
    for (const t of ['CustomerConverted', 'RepeatBuyerQualified', 'AdvocateRecognized', 'CustomerChurned', 'CustomerReactivated', 'ReferralConverted', 'EmployeeLeft', 'CampaignSpendRecorded'])
      expect(types).toContain(t);
    expect(oracle.customers.size).toBe(400);
  });

  it('counts customers per stage, now and as of past dates, for every population', async () => {
    for (const asOf of asOfs)
      for (const p of populations) {
        const f = { ...p, ...(asOf ? { asOf } : {}) };
        const end = asOf ? endOf(asOf) : undefined;
        const expected = { prospect: 0, customer: 0, repeat_buyer: 0, advocate: 0, churned: 0 } as Record<string, number>;
        for (const c of oracle.population(f)) {
          const s = oracle.stageAt(c, end);
          if (s) expected[s]! += 1;
        }
        const got = await q.stageCounts(f);
        expect({ f, stages: got.stages }).toEqual({ f, stages: expected });
      }
  });

  it('builds the stage funnel with conversion rates and median days between stages', async () => {
    const filters: StatisticsFilter[] = [{}, { from: '2024-03-01', to: '2024-12-31' }, { asOf: '2025-01-31' }, { source: 'store', asOf: '2025-06-30' }, { segment: 'loyal' }];
    for (const f of filters) {
      const end = f.asOf ? endOf(f.asOf) : undefined;
      const before = (t?: string): boolean => t !== undefined && (!end || t < end);
      const pop = oracle
        .population(f)
        .filter((c) => c.registeredAt && (!f.from || c.registeredAt >= `${f.from}T`) && (!f.to || c.registeredAt < endOf(f.to)) && (!end || c.registeredAt < end));
      const adv = pop.filter((c) => before(c.advocateAt));
      const rep = pop.filter((c) => before(c.repeatAt) || before(c.advocateAt));
      const cus = pop.filter((c) => before(c.convertedAt) || before(c.repeatAt) || before(c.advocateAt));
      const days = (a: string | null | undefined, b: string): number => (Date.parse(b) - Date.parse(a!)) / DAY;
      const reached = [pop.length, cus.length, rep.length, adv.length];
      const medians = [
        null,
        median(pop.filter((c) => before(c.convertedAt)).map((c) => days(c.registeredAt, c.convertedAt!))),
        median(pop.filter((c) => before(c.repeatAt) && c.convertedAt).map((c) => days(c.convertedAt, c.repeatAt!))),
        median(pop.filter((c) => before(c.advocateAt) && c.repeatAt && c.repeatAt <= c.advocateAt!).map((c) => days(c.repeatAt, c.advocateAt!))),
      ];
      const got = await q.funnel(f);
      expect(rounded({ f, got })).toEqual(
        rounded({
          f,
          got: {
            steps: (['prospect', 'customer', 'repeat_buyer', 'advocate'] as const).map((stage, i) => ({
              stage,
              reached: reached[i],
              conversionRate: i === 0 ? null : ratio(reached[i]!, reached[i - 1]!),
              medianDaysFromPrevious: medians[i],
            })),
            overallConversionRate: ratio(reached[3]!, reached[0]!),
          },
        }),
      );
    }
  });

  it('tabulates cohort retention by month of first purchase', async () => {
    const latestMonth = oracle.latest.slice(0, 7);
    for (const f of [{}, { from: '2024-04-01', to: '2024-10-31' }, { channel: 'web' }, { segment: 'hibernating' }] as StatisticsFilter[]) {
      const cohorts = new Map<string, OCustomer[]>();
      for (const c of oracle.population(f)) {
        if (c.orders.length === 0) continue;
        const first = c.orders.map((o) => o.at).sort()[0]!.slice(0, 7);
        if (!inMonths(first, f)) continue;
        cohorts.set(first, [...(cohorts.get(first) ?? []), c]);
      }
      const expected = [...cohorts.keys()].sort().map((cohort) => {
        const members = cohorts.get(cohort)!;
        const span = Math.min(6, monthsBetween(cohort, latestMonth));
        const active = Array.from({ length: span + 1 }, (_, k) => members.filter((c) => c.orders.some((o) => monthsBetween(cohort, o.at.slice(0, 7)) === k)).length);
        return { cohort, size: members.length, active, retention: active.map((a) => a / members.length) };
      });
      expect(rounded(await q.cohortRetention(f, 6))).toEqual(rounded(expected));
    }
  });

  it('measures churn per month against customers active at its start, per quarter and year compounding their months, and churn reasons', async () => {
    for (const f of [{}, { from: '2024-07-11', to: '2025-06-03' }, { source: 'partner' }, { segment: 'lost' }, { segment: 'at_risk', from: '2024-09-20' }] as StatisticsFilter[]) {
      const pop = oracle.population(f);
      const churns = pop.flatMap((c) => c.transitions.filter((t) => t.stage === 'churned' && inMonths(t.at.slice(0, 7), f)));
      const allMonths = pop.flatMap((c) => c.transitions.filter((t) => ACTIVE.has(t.stage) || t.stage === 'churned').map((t) => t.at.slice(0, 7))).sort();
      const fromMonth = f.from?.slice(0, 7) ?? allMonths[0]!;
      const toMonth = f.to?.slice(0, 7) ?? oracle.latest.slice(0, 7);
      const months = [];
      for (let m = fromMonth; m <= toMonth; m = new Date(Date.UTC(Number(m.slice(0, 4)), Number(m.slice(5, 7)), 1)).toISOString().slice(0, 7)) {
        const start = `${m}-01T00:00:00.000Z`;
        const activeAtStart = pop.filter((c) => ACTIVE.has(oracle.stageAt(c, start) ?? '')).length;
        const churned = churns.filter((t) => t.at.slice(0, 7) === m).length;
        months.push({ month: m, activeAtStart, churned, rate: ratio(churned, activeAtStart) });
      }
      const reasons = new Map<string, { reason: string; detail: string | null; count: number }>();
      for (const t of churns) {
        const k = `${t.reason}|${t.detail ?? ''}`;
        const r = reasons.get(k) ?? { reason: t.reason!, detail: t.detail ?? null, count: 0 };
        r.count += 1;
        reasons.set(k, r);
      }
      const expectedReasons = [...reasons.values()].sort((a, b) => (a.reason + (a.detail ?? '') < b.reason + (b.detail ?? '') ? -1 : 1));
      const got = await q.churn(f);
      expect(rounded({ f, got })).toEqual(rounded({ f, got: { months, reasons: expectedReasons } }));

      // per quarter and per year: the months' churns summed, their rates compounded (1 − Π(1 − r))
      for (const per of ['quarter', 'year'] as const) {
        const keyOf = (m: string) => (per === 'year' ? m.slice(0, 4) : `${m.slice(0, 4)}-Q${Math.ceil(Number(m.slice(5, 7)) / 3)}`);
        const periods: { period: string; months: number; activeAtStart: number; churned: number; rate: number | null }[] = [];
        for (const period of [...new Set(months.map((m) => keyOf(m.month)))]) {
          const own = months.filter((m) => keyOf(m.month) === period);
          const rated = own.filter((m) => m.activeAtStart > 0);
          const kept = rated.reduce((k, m) => k * (1 - Math.min(1, m.churned / m.activeAtStart)), 1);
          periods.push({ period, months: own.length, activeAtStart: own[0]!.activeAtStart, churned: own.reduce((n, m) => n + m.churned, 0), rate: rated.length > 0 ? 1 - kept : null });
        }
        expect(periods.length).toBeGreaterThan(per === 'year' ? 0 : 1);
        for (const p of periods) if (p.rate !== null) expect(p.rate).toBeLessThanOrEqual(1);
        const perPeriod = await q.churn(f, per);
        expect(rounded({ f, per, got: perPeriod })).toEqual(rounded({ f, per, got: { months, periods, reasons: expectedReasons } }));
      }
    }
    await expect(q.churn({}, 'week' as 'month')).rejects.toThrow(/per: expected month, quarter or year/);
  });

  it('computes the repeat-purchase rate and the average tenure, now and as of past dates', async () => {
    for (const asOf of asOfs)
      for (const p of populations) {
        const f = { ...p, ...(asOf ? { asOf } : {}) };
        const end = asOf ? endOf(asOf) : undefined;
        const buyers = oracle.population(f).filter((c) => oracle.ordersUntil(c, end).length > 0);
        const repeat = buyers.filter((c) => oracle.ordersUntil(c, end).length >= 2).length;
        const ref = Date.parse(end ?? oracle.latest);
        const tenures = buyers.map((c) => {
          const os = oracle.ordersUntil(c, end).map((o) => Date.parse(o.at));
          const last = oracle.stageAt(c, end) === 'churned' ? Math.max(...os) : ref;
          return (last - Math.min(...os)) / DAY;
        });
        expect(rounded({ f, rate: await q.repeatRate(f), tenure: await q.tenure(f) })).toEqual(
          rounded({
            f,
            rate: { buyers: buyers.length, repeatBuyers: repeat, rate: ratio(repeat, buyers.length) },
            tenure: { customers: buyers.length, averageDays: buyers.length ? sum(tenures) / buyers.length : null },
          }),
        );
      }
  });

  it('reports customer value per month and per year', async () => {
    for (const f of [{}, { from: '2024-05-10', to: '2025-02-03' }, { source: 'ads' }, { segment: 'potential', to: '2025-08-31' }] as StatisticsFilter[]) {
      for (const per of ['month', 'year'] as const) {
        const cut = (at: string): string => (per === 'month' ? at.slice(0, 7) : at.slice(0, 4));
        const by = new Map<string, { active: Set<string>; orders: number; revenue: number; cost: number }>();
        for (const c of oracle.population(f))
          for (const o of c.orders) {
            if (!inMonths(o.at.slice(0, 7), f)) continue;
            const x = by.get(cut(o.at)) ?? { active: new Set(), orders: 0, revenue: 0, cost: 0 };
            x.active.add(c.id);
            x.orders += 1;
            x.revenue += o.revenue;
            x.cost += o.cost;
            by.set(cut(o.at), x);
          }
        const expected = [...by.entries()]
          .sort(([a], [b]) => (a < b ? -1 : 1))
          .map(([period, x]) => ({
            period,
            activeCustomers: x.active.size,
            orders: x.orders,
            revenue: x.revenue,
            cost: x.cost,
            margin: x.revenue - x.cost,
            revenuePerActiveCustomer: x.revenue / x.active.size,
            marginPerActiveCustomer: (x.revenue - x.cost) / x.active.size,
          }));
        expect(rounded({ f, per, got: await q.value(f, per) })).toEqual(rounded({ f, per, got: expected }));
      }
    }
  });

  it('finds the golden 10% and 20% of customers and their share of revenue', async () => {
    for (const f of [{}, { from: '2024-01-01', to: '2024-12-31' }, { channel: 'social' }] as StatisticsFilter[]) {
      const revenues = oracle
        .population(f)
        .map((c) => ({ id: c.id, revenue: sum(c.orders.filter((o) => inMonths(o.at.slice(0, 7), f)).map((o) => o.revenue)) }))
        .filter((x) => x.revenue > 0)
        .sort((a, b) => b.revenue - a.revenue || (a.id < b.id ? -1 : 1));
      const total = sum(revenues.map((x) => x.revenue));
      const tiers = ([0.1, 0.2] as const).map((share) => {
        const k = Math.ceil(revenues.length * share - 1e-9);
        const revenue = sum(revenues.slice(0, k).map((x) => x.revenue));
        return { share, customers: k, revenue, revenueShare: ratio(revenue, total) };
      });
      expect(rounded(await q.goldenCustomers(f))).toEqual(rounded({ customersWithRevenue: revenues.length, totalRevenue: total, tiers }));
    }
  });

  it('scores every customer R, F and M in quintiles with ties broken by customer id, and names segments', async () => {
    for (const asOf of asOfs) {
      const end = asOf ? endOf(asOf) : undefined;
      const rfm = oracle.rfm(end);
      const ref = Date.parse(end ?? oracle.latest);
      const expected = [...rfm.entries()]
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([customerId, x]) => ({ customerId, lastPurchaseAt: new Date(x.last).toISOString(), recencyDays: (ref - x.last) / DAY, frequency: x.freq, monetary: x.revenue, r: x.r, f: x.f, m: x.m, segment: x.segment }));
      const f = asOf ? { asOf } : {};
      expect(rounded(await q.rfmScores(f, { limit: 10_000 }))).toEqual(rounded(expected));
      const segments = RFM_SEGMENTS.map((segment) => {
        const xs = [...rfm.values()].filter((x) => x.segment === segment);
        const revenue = sum(xs.map((x) => x.revenue));
        const cost = sum(xs.map((x) => x.cost));
        return { segment, customers: xs.length, revenue, cost, profit: revenue - cost };
      });
      expect(await q.rfmSegments(f)).toEqual(segments);
      expect(new Set(expected.map((x) => x.segment)).size).toBeGreaterThanOrEqual(4);
    }
  });

  it('breaks profitability down by segment, purchase channel, acquisition source, category and location', async () => {
    const filters: StatisticsFilter[] = [{}, { from: '2024-06-01', to: '2025-05-31' }, { source: 'web', channel: 'store' }, { segment: 'champions' }];
    for (const f of filters)
      for (const by of ['channel', 'location', 'category', 'source', 'segment'] as const) {
        const segs = oracle.rfm(f.asOf ? endOf(f.asOf) : f.to ? endOf(f.to) : undefined);
        const acc = new Map<string, { orders: number; revenue: number; cost: number }>();
        const add = (key: string, r: number, c: number): void => {
          const x = acc.get(key) ?? { orders: 0, revenue: 0, cost: 0 };
          x.orders += 1;
          x.revenue += r;
          x.cost += c;
          acc.set(key, x);
        };
        for (const c of oracle.population(f)) {
          if (by === 'segment' && !segs.has(c.id)) continue;
          for (const o of c.orders) {
            if (!inMonths(o.at.slice(0, 7), f)) continue;
            if (by === 'category') for (const [cat, [r, k]] of o.categories) add(cat, r, k);
            else add(by === 'channel' ? o.channel : by === 'location' ? o.location : by === 'source' ? c.source : segs.get(c.id)!.segment, o.revenue, o.cost);
          }
        }
        const expected = [...acc.entries()]
          .sort(([a], [b]) => (a < b ? -1 : 1))
          .map(([key, x]) => ({ key, ...x, profit: x.revenue - x.cost }));
        expect({ f, by, got: await q.profitability(by, f) }).toEqual({ f, by, got: expected });
      }
  });

  it('computes campaign return on spend, complaints per employee and employee turnover', async () => {
    for (const f of [{}, { from: '2024-03-01', to: '2024-11-30' }] as StatisticsFilter[]) {
      const camp = new Map<string, { spend: number; revenue: number; orders: number }>();
      const get = (id: string) => camp.get(id) ?? (camp.set(id, { spend: 0, revenue: 0, orders: 0 }), camp.get(id)!);
      for (const s of oracle.spend) if (inMonths(s.at.slice(0, 7), f)) get(s.campaign).spend += s.amount;
      for (const c of oracle.customers.values())
        for (const o of c.orders)
          if (o.campaign && inMonths(o.at.slice(0, 7), f)) {
            get(o.campaign).revenue += o.revenue;
            get(o.campaign).orders += 1;
          }
      const campaigns = [...camp.entries()]
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([campaignId, x]) => ({ campaignId, ...x, returnOnSpend: ratio(x.revenue - x.spend, x.spend) }));
      expect(rounded(await q.campaignReturns(f))).toEqual(rounded(campaigns));

      const complaints = [...oracle.employees.keys()]
        .map((employeeId) => {
          const fb = oracle.feedback.filter((x) => x.employeeId === employeeId && inMonths(x.at.slice(0, 7), f));
          return { employeeId, feedback: fb.length, complaints: fb.filter((x) => x.complaint).length };
        })
        .sort((a, b) => b.complaints - a.complaints || (a.employeeId < b.employeeId ? -1 : 1));
      expect(await q.complaintsPerEmployee(f)).toEqual(complaints);

      const emps = [...oracle.employees.values()];
      const start = f.from ? `${f.from}T00:00:00.000Z` : emps.map((e) => e.hiredAt!).sort()[0]!;
      const end = f.to ? endOf(f.to) : new Date(Date.parse(oracle.latest) + 1).toISOString();
      const employedAt = (t: string, inclusive: boolean) =>
        emps.filter((e) => (inclusive ? e.hiredAt! <= t : e.hiredAt! < t) && (!e.leftAt || (inclusive ? e.leftAt > t : e.leftAt >= t))).length;
      const leavers = emps.filter((e) => e.leftAt && e.leftAt >= start && e.leftAt < end).length;
      const headcountAtStart = employedAt(start, true);
      const headcountAtEnd = employedAt(end, false);
      const averageHeadcount = (headcountAtStart + headcountAtEnd) / 2;
      expect(await q.turnover(f)).toEqual({ from: start, to: end, leavers, headcountAtStart, headcountAtEnd, averageHeadcount, rate: ratio(leavers, averageHeadcount) });
    }
  });

  it('given a date inside a month, then segments found from the month end snapshot\'s cuts equal those of every buyer ranked with NTILE', async () => {
    // the statements the segment figures send: none may rank the buyers
    const sent: string[] = [];
    const watched = new StatisticsQueries({
      dialect: store.dialect,
      all: (sql, params) => (sent.push(sql), store.all(sql, params)),
      get: (sql, params) => (sent.push(sql), store.get(sql, params)),
    });
    let compared = 0;
    for (const asOf of ['2024-02-01', '2024-07-14', '2024-12-31', '2025-01-01', '2025-03-09', '2025-06-15', '2025-10-28', '2025-11-30', '2025-12-30']) {
      // rfmScores ranks every buyer with NTILE; rfmSegments of a date inside a month scores them from cuts
      const scores = await q.rfmScores({ asOf }, { limit: 100_000 });
      const bySegment = new Map<string, { customers: number; revenue: number }>();
      for (const x of scores) {
        const acc = bySegment.get(x.segment) ?? { customers: 0, revenue: 0 };
        bySegment.set(x.segment, { customers: acc.customers + 1, revenue: acc.revenue + x.monetary });
      }
      sent.length = 0;
      const segments = await watched.rfmSegments({ asOf });
      expect(sent.filter((sql) => /NTILE|ROW_NUMBER/.test(sql))).toEqual([]);
      expect({ asOf, segments: segments.map((x) => [x.segment, x.customers, x.revenue]) }).toEqual({
        asOf,
        segments: RFM_SEGMENTS.map((seg) => [seg, bySegment.get(seg)?.customers ?? 0, bySegment.get(seg)?.revenue ?? 0]),
      });
      for (const segment of RFM_SEGMENTS) {
        const ids = scores.filter((x) => x.segment === segment).map((x) => x.customerId);
        expect({ asOf, segment, n: (await watched.stageCounts({ asOf, segment })).total }).toEqual({ asOf, segment, n: ids.length });
      }
      // the same with a population: only the buyers acquired on the web, then one segment
      const web = await q.rfmScores({ asOf, source: 'web' }, { limit: 100_000 });
      const webSegments = (await watched.rfmSegments({ asOf, source: 'web' })).map((x) => [x.segment, x.customers]);
      expect({ asOf, webSegments }).toEqual({ asOf, webSegments: RFM_SEGMENTS.map((seg) => [seg, web.filter((x) => x.segment === seg).length]) });
      const loyal = (await watched.rfmSegments({ asOf, segment: 'loyal' })).filter((x) => x.customers > 0).map((x) => [x.segment, x.customers]);
      expect({ asOf, loyal }).toEqual({ asOf, loyal: bySegment.has('loyal') ? [['loyal', bySegment.get('loyal')!.customers]] : [] });
      compared += scores.length;
    }
    expect(compared).toBeGreaterThan(1000);
  });

  it('given purchases that arrive after their month was snapshotted, then figures as of past dates stay right until a refresh recomputes the snapshots', async () => {
    // every fifth purchase is held back to the end of the log: each one makes the snapshots from its month on stale
    const purchases = events.filter((e) => e.type === 'PurchaseRecorded');
    const late = new Set(purchases.filter((_e, i) => i % 5 === 0));
    const delayed = await project([...events.filter((e) => !late.has(e)), ...late], 173);
    const ordered = await project(events, 173);
    const dq = new StatisticsQueries(delayed);
    const oq = new StatisticsQueries(ordered);
    const filters: StatisticsFilter[] = [{ asOf: '2024-09-30' }, { asOf: '2025-06-15' }, { asOf: '2025-03-31', segment: 'loyal' }, { segment: 'at_risk', to: '2024-12-31' }];
    const answers = async (x: StatisticsQueries, f: StatisticsFilter): Promise<unknown> =>
      rounded([await x.rfmSegments({ ...f, to: undefined }), await x.tenure({ ...f, to: undefined }), await x.repeatRate({ ...f, to: undefined }), await x.value({ to: f.to, segment: f.segment })]);
    for (const f of filters) expect({ f, got: await answers(dq, f) }).toEqual({ f, got: await answers(q, f) });
    expect(await delayed.get(`SELECT value FROM stat_meta WHERE key = 'rfm_stale_from'`)).toEqual({ value: '2024-01' });
    expect(await ordered.get(`SELECT value FROM stat_meta WHERE key = 'rfm_stale_from'`)).toBeUndefined();

    // a fact that opens the next month snapshots it in both read models; the stale mark stays until a refresh
    const next = { ...events[events.length - 1]!, id: 'next-month', position: events.length + 1, type: 'ProspectRegistered', data: { customerId: 'newcomer', source: 'web' }, metadata: { occurredAt: '2026-02-01T00:00:00.000Z', schemaVersion: 1 } };
    for (const st of [ordered, delayed]) await st.transaction((tx) => new StatisticsProjection().apply([next], tx));
    expect(await delayed.get(`SELECT value FROM stat_meta WHERE key = 'rfm_stale_from'`)).toEqual({ value: '2024-01' });
    expect(await refreshAll(delayed)).toBe(25);
    const sorted = (rows: unknown[]): string[] => rows.map((r) => JSON.stringify(r)).sort();
    const snapshots = await ordered.all<{ month: string }>('SELECT * FROM stat_rfm_months');
    expect(new Set(snapshots.map((r) => r.month)).size).toBeGreaterThanOrEqual(25);
    expect(await delayed.get(`SELECT value FROM stat_meta WHERE key = 'rfm_stale_from'`)).toBeUndefined();
    expect(sorted(await delayed.all('SELECT * FROM stat_rfm_months'))).toEqual(sorted(snapshots));
    for (const f of filters) expect({ f, got: await answers(dq, f) }).toEqual({ f, got: await answers(oq, f) });
    await delayed.close();
    await ordered.close();
  });

  it('gives the same read model whatever the batch size', async () => {
    const other = await project(events, 1_000_000);
    const sorted = (rows: unknown[]): string[] => rows.map((r) => JSON.stringify(r)).sort();
    for (const table of new StatisticsProjection().tables) {
      const rows = await store.all(`SELECT * FROM ${table}`);
      expect(rows.length).toBeGreaterThan(0);
      expect({ table, rows: sorted(await other.all(`SELECT * FROM ${table}`)) }).toEqual({ table, rows: sorted(rows) });
    }
    await other.close();
  });
});

/**
 * The same events as an import writes them: employees and campaigns first, then each customer's
 * facts together, customer after customer, so nearly every purchase is dated in a month the log
 * has already left behind.
 */
function customerByCustomer(events: readonly StoredEvent[]): StoredEvent[] {
  const others: StoredEvent[] = [];
  const byCustomer = new Map<string, StoredEvent[]>();
  for (const e of events) {
    const id = typeof e.data['customerId'] === 'string' ? e.data['customerId'] : undefined;
    if (!id) others.push(e);
    else byCustomer.set(id, [...(byCustomer.get(id) ?? []), e]);
  }
  return [...others, ...[...byCustomer.values()].flat()].map((e, i) => ({ ...e, position: i + 1 }));
}

describe('stale month-end snapshots of a log imported customer by customer', () => {
  const events = generateCustomerDataset({ seed: 3, customers: 200, months: 18, start: '2024-03-01' });
  const imported = customerByCustomer(events);
  const sorted = (rows: unknown[]): string[] => rows.map((r) => JSON.stringify(r)).sort();
  const staleFrom = async (store: SqliteReadModelStore): Promise<unknown> =>
    (await store.get<{ value: string }>(`SELECT value FROM stat_meta WHERE key = 'rfm_stale_from'`))?.value;
  const monthsBefore = async (store: SqliteReadModelStore, month: string): Promise<string[]> =>
    sorted(await store.all('SELECT * FROM stat_rfm_months WHERE month < ?', [month]));
  let ordered: SqliteReadModelStore;

  beforeAll(async () => {
    ordered = await project(events, 250);
  });
  afterAll(async () => ordered.close());

  it('given the import, when its stale snapshots are refreshed, then every table holds the same rows as the same events folded in business-time order', async () => {
    const store = await project(imported, 250);
    expect(await staleFrom(store)).toBe('2024-03');
    expect(await staleFrom(ordered)).toBeUndefined();

    // one step per month the log has left behind: March 2024 to July 2025
    expect(await refreshAll(store)).toBe(17);

    expect(await staleFrom(store)).toBeUndefined();
    for (const table of new StatisticsProjection().tables) {
      const rows = await ordered.all(`SELECT * FROM ${table}`);
      expect(rows.length).toBeGreaterThan(0);
      expect({ table, rows: sorted(await store.all(`SELECT * FROM ${table}`)) }).toEqual({ table, rows: sorted(rows) });
    }
    await store.close();
  });

  it('given stale snapshots, then figures as of past dates fold the orders; after the refresh they read the snapshots and answer the same', async () => {
    const store = await project(imported, 250);
    const q = new StatisticsQueries(store);
    const period: StatisticsFilter = { from: '2024-07-01', to: '2024-12-31' };
    const figures = async (x: StatisticsQueries): Promise<unknown> =>
      rounded([
        await x.rfmSegments({ asOf: '2024-09-30' }),
        await x.rfmSegments({ asOf: '2025-02-17' }),
        await x.rfmScores({ asOf: '2024-11-30' }, { limit: 10_000 }),
        await x.stageCounts({ segment: 'at_risk', asOf: '2025-02-17' }),
        await x.repeatRate({ asOf: '2025-02-17' }),
        await x.tenure({ asOf: '2024-09-30' }),
        await x.goldenCustomers({ ...period, segment: 'champions' }),
        await x.profitability('segment', period),
      ]);
    const stale = await figures(q);
    expect(JSON.stringify(stale)).toMatch(/champions/);
    await refreshAll(store);
    expect(await figures(q)).toEqual(stale);
    expect(await figures(q)).toEqual(await figures(new StatisticsQueries(ordered)));

    // the figures now come from the snapshots: a month end reads its rows, a date inside a month the previous month end's
    await store.transaction((tx) => tx.run(`UPDATE stat_rfm_months SET segment = 'lost' WHERE month = '2024-09'`));
    const before = await q.repeatRate({ asOf: '2025-02-17' });
    await store.transaction((tx) => tx.run(`UPDATE stat_rfm_months SET orders = orders + 10 WHERE month = '2025-01'`));
    const snapshotted = Number((await store.get<{ n: number }>(`SELECT COUNT(*) AS n FROM stat_rfm_months WHERE month = '2025-01'`))?.n);
    const september = await q.rfmSegments({ asOf: '2024-09-30' });
    expect(september.filter((x) => x.customers > 0).map((x) => x.segment)).toEqual(['lost']);
    // every buyer of the January snapshot now has 10 orders more, so is a repeat buyer
    const after = await q.repeatRate({ asOf: '2025-02-17' });
    expect(before.repeatBuyers).toBeLessThan(snapshotted);
    expect(after.buyers).toBe(before.buyers);
    expect(after.repeatBuyers).toBeGreaterThanOrEqual(snapshotted);
    await store.close();
  });

  it('given a refresh that fails inside a month, then that month keeps its rows and the stale mark, and the refresh resumes there', async () => {
    const store = await project(imported, 250);
    const projection = new StatisticsProjection();
    for (let i = 0; i < 4; i += 1) expect(await store.transaction((tx) => projection.refreshSnapshots(tx))).toBe(true);
    // every month before the mark is final: the same rows as in business-time order
    expect(await staleFrom(store)).toBe('2024-07');
    expect(await monthsBefore(store, '2024-07')).toEqual(await monthsBefore(ordered, '2024-07'));
    const july = sorted(await store.all(`SELECT * FROM stat_rfm_months WHERE month = '2024-07'`));

    // the step deletes the month's rows, then fails writing the new ones: the whole step rolls back
    const crashing = (tx: ReadModelTransaction): ReadModelTransaction => ({
      dialect: tx.dialect,
      all: (sql, params) => tx.all(sql, params),
      get: (sql, params) => tx.get(sql, params),
      exec: (sql) => tx.exec(sql),
      run: async (sql, params) => {
        if (sql.trimStart().startsWith('INSERT INTO stat_rfm_months')) throw new Error('crash while writing the month');
        return tx.run(sql, params);
      },
    });
    await expect(store.transaction((tx) => projection.refreshSnapshots(crashing(tx)))).rejects.toThrow('crash while writing the month');
    expect(await staleFrom(store)).toBe('2024-07');
    expect(sorted(await store.all(`SELECT * FROM stat_rfm_months WHERE month = '2024-07'`))).toEqual(july);

    // a backfill folded between steps moves the mark back to its month
    const backfill: StoredEvent = {
      ...imported[imported.length - 1]!,
      id: 'backfill',
      position: imported.length + 1,
      type: 'PurchaseRecorded',
      data: { customerId: String(imported.find((e) => e.type === 'PurchaseRecorded')!.data['customerId']), orderId: 'backfill', lines: [], totalMinor: 90_000, costMinor: 1_000 },
      metadata: { occurredAt: '2024-05-20T10:00:00.000Z', schemaVersion: 1 },
    };
    for (const st of [store, ordered]) await st.transaction((tx) => new StatisticsProjection().apply([backfill], tx));
    expect(await staleFrom(store)).toBe('2024-05');
    expect(await staleFrom(ordered)).toBe('2024-05');

    await refreshAll(store);
    await refreshAll(ordered);
    expect(sorted(await store.all('SELECT * FROM stat_rfm_months'))).toEqual(sorted(await ordered.all('SELECT * FROM stat_rfm_months')));
    await store.close();
  });
});

describe('statistics of an imported log through the projector', () => {
  const events = customerByCustomer(generateCustomerDataset({ seed: 4, customers: 120, months: 12, start: '2025-01-01' }));

  it('given a live projector catching up in small batches, then no snapshot is left stale and its digest equals a replay in large batches', async () => {
    const log = await inMemoryStoreOf(events);
    const live = new SqliteReadModelStore(':memory:');
    const projector = new Projector(log, new ReadModels(live), [new StatisticsProjection()], { batchSize: 37 });
    await projector.start();
    await projector.catchUp();
    const scratch = new SqliteReadModelStore(':memory:');
    await replayProjections(log, scratch, [new StatisticsProjection()], { batchSize: 25_000 });

    expect(await live.get(`SELECT value FROM stat_meta WHERE key = 'rfm_stale_from'`)).toBeUndefined();
    expect(await live.get(`SELECT COUNT(DISTINCT month) AS n FROM stat_rfm_months`)).toEqual({ n: 11 });
    expect(await digest(live, new StatisticsProjection())).toBe(await digest(scratch, new StatisticsProjection()));
    await live.close();
    await scratch.close();
  });
});

describe('statistics rebuilt by its rebuild instance', () => {
  // in business-time order over 14 months; the rebuild instance scores buyers once at the end and ranks each month-end snapshot as it writes it
  const events = generateCustomerDataset({ seed: 6, customers: 150, months: 14, start: '2024-05-01' });
  const purchases = events.filter((e) => e.type === 'PurchaseRecorded');
  const held = new Set(purchases.filter((_e, i) => i % 4 === 0));
  // every fourth purchase arrives at the end of the log, in months already snapshotted, then some
  // orders are recorded again (a replay the fold must skip, batches after the first time)
  const replayed = purchases.filter((_e, i) => i % 7 === 3).map((e) => ({ ...e, id: `${e.id}-again` }));
  const late = [...events.filter((e) => !held.has(e)), ...held, ...replayed].map((e, i) => ({ ...e, position: i + 1 }));
  const sorted = (rows: unknown[]): string[] => rows.map((r) => JSON.stringify(r)).sort();

  /** the live instance folding in batches, then every settle step, as a projector that has caught up */
  async function liveFold(log: readonly StoredEvent[]): Promise<SqliteReadModelStore> {
    const store = await project(log, 173);
    await refreshAll(store);
    return store;
  }

  async function rebuilt(log: readonly StoredEvent[], batchSize: number, residentLimit?: number): Promise<SqliteReadModelStore> {
    const scratch = new SqliteReadModelStore(':memory:');
    const projection = new StatisticsProjection(residentLimit === undefined ? {} : { residentLimit });
    await replayProjections(await inMemoryStoreOf(log), scratch, [projection], { batchSize, pageSize: 13 });
    return scratch;
  }

  const cases: [string, StoredEvent[], number, number | undefined][] = [
    ['in business-time order, batches of 41 that cut months in the middle', events, 41, undefined],
    ['in business-time order, one batch', events, 25_000, undefined],
    ['in business-time order, batches of 41, resident limit below the customers', events, 41, 30],
    ['with late and replayed purchases, batches of 41', late, 41, undefined],
    ['with late and replayed purchases, batches of 41, resident limit below the customers', late, 41, 30],
    ['with late and replayed purchases, one batch', late, 25_000, undefined],
  ];
  it.each(cases)('given a log %s, then every table holds the rows of the live fold', async (_name, log, batchSize, residentLimit) => {
    const live = await liveFold(log);
    const scratch = await rebuilt(log, batchSize, residentLimit);
    const projection = new StatisticsProjection();
    for (const table of projection.tables) {
      const rows = await live.all(`SELECT * FROM ${table}`);
      expect(rows.length).toBeGreaterThan(0);
      expect({ table, rows: sorted(await scratch.all(`SELECT * FROM ${table}`)) }).toEqual({ table, rows: sorted(rows) });
    }
    expect(await digest(scratch, projection)).toBe(await digest(live, projection));
    // the rows compared hold what the rebuild defers: present scores and snapshots of many months
    expect(await live.get(`SELECT COUNT(DISTINCT segment) AS n FROM stat_customers`)).toEqual({ n: 6 });
    expect(Number((await live.get<{ n: number }>(`SELECT COUNT(DISTINCT month) AS n FROM stat_rfm_months`))?.n)).toBeGreaterThanOrEqual(12);
    await live.close();
    await scratch.close();
  });
});

describe('quintile scores', () => {
  it('given 0 to 13 buyers with tied values, then the scores equal NTILE(5) over (value, customer id)', async () => {
    const store = new SqliteReadModelStore(':memory:');
    await store.transaction((tx) => tx.exec('CREATE TABLE buyers (customer_id TEXT PRIMARY KEY, last_day DOUBLE PRECISION, f BIGINT, m BIGINT)'));
    for (let n = 0; n <= 13; n += 1) {
      await store.transaction(async (tx) => {
        await tx.run('DELETE FROM buyers');
        // ids in an order unlike the values; few distinct values, so ties are split by id
        for (let i = 0; i < n; i += 1) await tx.run('INSERT INTO buyers VALUES (?, ?, ?, ?)', [`c${(i * 7) % 13}-${i}`, (i * 5) % 4, (i * 3) % 2, (i * 11) % 6]);
      });
      const expected = await store.all(`SELECT customer_id, NTILE(5) OVER (ORDER BY last_day, customer_id) AS r_score,
        NTILE(5) OVER (ORDER BY f, customer_id) AS f_score, NTILE(5) OVER (ORDER BY m, customer_id) AS m_score FROM buyers ORDER BY customer_id`);
      const got = await store.all(`SELECT customer_id, r_score, f_score, m_score FROM (${ntileScores('SELECT * FROM buyers')}) s ORDER BY customer_id`);
      expect({ n, got }).toEqual({ n, got: expected });
      expect(got).toHaveLength(n);
    }
    await store.close();
  });

  it('given 0 to 13 buyers held in memory, with ids beyond the basic plane, then their scores equal NTILE(5) over (value, customer id) in SQLite', async () => {
    const store = new SqliteReadModelStore(':memory:');
    await store.transaction((tx) => tx.exec('CREATE TABLE buyers (customer_id TEXT PRIMARY KEY, last_day DOUBLE PRECISION, f BIGINT, m BIGINT)'));
    // U+1F600 is stored as surrogates, which JS `<` puts before U+FF21; SQLite compares code points
    const prefixes = ['c', '\u{1F600}', '\uFF21', '\u00E9', 'C'];
    for (let n = 0; n <= 13; n += 1) {
      const buyers = Array.from({ length: n }, (_v, i) => ({ id: `${prefixes[(i * 3) % 5]}${i % 2}-${i}`, values: [(i * 5) % 4, (i * 3) % 2, i % 3 === 0 ? 7 : 2] }));
      await store.transaction(async (tx) => {
        await tx.run('DELETE FROM buyers');
        for (const b of buyers) await tx.run('INSERT INTO buyers VALUES (?, ?, ?, ?)', [b.id, ...b.values]);
      });
      const expected = await store.all(`SELECT customer_id, NTILE(5) OVER (ORDER BY last_day, customer_id) AS r_score,
        NTILE(5) OVER (ORDER BY f, customer_id) AS f_score, NTILE(5) OVER (ORDER BY m, customer_id) AS m_score FROM buyers`);
      const scores = [0, 1, 2].map((v) =>
        quintilesInMemory(n, (i, j) => buyers[i]!.values[v]! - buyers[j]!.values[v]! || compareText(buyers[i]!.id, buyers[j]!.id)).scores,
      );
      const got = buyers.map((b, i) => ({ customer_id: b.id, r_score: scores[0]![i], f_score: scores[1]![i], m_score: scores[2]![i] }));
      const byId = (rows: { customer_id: unknown }[]) => new Map(rows.map((r) => [r.customer_id, r]));
      expect({ n, got: byId(got) }).toEqual({ n, got: byId(expected as { customer_id: unknown }[]) });
    }
    await store.close();
  });
});
