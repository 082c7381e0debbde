import type { ReadModelQueries, SqlParam } from './read-model-store';
import { InvalidQueryError, orList, type Choice } from './query-errors';
import { DAY_MS, isoOrUndefined, nextMonth, previousMonth } from './statistics.projection';
import {
  RFM_SEGMENT_RULES,
  RFM_SEGMENTS,
  SEGMENT_CASE,
  compareCut,
  cutScore,
  monthTotals,
  ntileScores,
  quintileStarts,
  rfmSegmentOf,
  snapshotPlusMonth,
  totalsBefore,
} from './statistics.rfm';
import type { Cut, RfmSegment } from './statistics.rfm';

/**
 * Loyalty and retention statistics over the tables `StatisticsProjection` writes. Every figure is
 * defined in `docs/statistics.md`; the definitions below are the executable version. Each query
 * validates its filter first and answers a `StatisticsFilterError` naming the offending field.
 *
 * Orderings that decide a figure (quintiles, top-N, medians) always end with `customer_id`, so the
 * same read model gives the same answer on SQLite and PostgreSQL, every time.
 */

export { RFM_SEGMENT_RULES, RFM_SEGMENTS, rfmSegmentOf } from './statistics.rfm';
export type { RfmSegment } from './statistics.rfm';

export const STAGES = ['prospect', 'customer', 'repeat_buyer', 'advocate', 'churned'] as const;
const ACTIVE_STAGES = `('customer', 'repeat_buyer', 'advocate')`;

export interface StatisticsFilter {
  /** first business day of the period (inclusive), `YYYY-MM-DD` or an ISO instant */
  from?: string;
  /** last business day of the period (inclusive), `YYYY-MM-DD` or an ISO instant */
  to?: string;
  /** the business date a point-in-time figure is taken at (end of that day) */
  asOf?: string;
  /** acquisition source of the customers counted */
  source?: string;
  /** acquisition channel of the customers counted */
  channel?: string;
  /** RFM segment (as of `asOf`, else `to`, else now) of the customers counted */
  segment?: string;
}
export type FilterField = keyof StatisticsFilter;
const FILTER_FIELDS: readonly FilterField[] = ['from', 'to', 'asOf', 'source', 'channel', 'segment'];

/**
 * A filter the statistics cannot answer. `field` names the offending input; the HTTP API answers it
 * 400 `invalid_filter`, the message as the statistic words it ("from: expected a date …").
 */
export class StatisticsFilterError extends InvalidQueryError {
  override readonly code = 'invalid_filter';
  constructor(field: string, message: string) {
    super(field, message.replace(/^expected /, ''));
    this.message = `${field}: ${message}`;
    this.name = 'StatisticsFilterError';
  }
}

interface Resolved {
  fromAt?: string;
  /** exclusive upper bound of the period */
  toEnd?: string;
  fromMonth?: string;
  toMonth?: string;
  /** exclusive upper bound of facts counted for a point-in-time figure; undefined = everything */
  asOfEnd?: string;
  source?: string;
  channel?: string;
  segment?: RfmSegment;
}

const PERIOD: FilterField[] = ['from', 'to'];
const POPULATION: FilterField[] = ['source', 'channel', 'segment'];

/**
 * The filters each statistic takes; any other is refused by name. The HTTP API documents exactly
 * these for each route. Profitability takes `asOf` only by segment, where it dates the segments
 * the customers are grouped by: the other groupings are kept per month, so an answer as of a day
 * would not be exact, and the HTTP API serves the two as separate routes.
 */
export const STATISTIC_FILTERS = {
  stageCounts: ['asOf', ...POPULATION],
  funnel: [...PERIOD, 'asOf', ...POPULATION],
  cohortRetention: [...PERIOD, ...POPULATION],
  churn: [...PERIOD, ...POPULATION],
  repeatRate: ['asOf', ...POPULATION],
  tenure: ['asOf', ...POPULATION],
  value: [...PERIOD, ...POPULATION],
  goldenCustomers: [...PERIOD, ...POPULATION],
  rfmScores: ['asOf', ...POPULATION],
  rfmSegments: ['asOf', ...POPULATION],
  profitability: [...PERIOD, ...POPULATION],
  profitabilityBySegment: [...PERIOD, 'asOf', ...POPULATION],
  campaignReturns: PERIOD,
  complaintsPerEmployee: PERIOD,
  turnover: PERIOD,
} as const satisfies Record<string, readonly FilterField[]>;

export function validateFilter(filter: unknown, allowed: readonly FilterField[]): Resolved {
  if (filter === undefined || filter === null) return {};
  if (typeof filter !== 'object' || Array.isArray(filter)) throw new StatisticsFilterError('filter', 'expected an object');
  const f = filter as Record<string, unknown>;
  for (const [key, value] of Object.entries(f)) {
    if (value === undefined) continue;
    if (!FILTER_FIELDS.includes(key as FilterField))
      throw new StatisticsFilterError(key, `unknown filter field; expected one of ${FILTER_FIELDS.join(', ')}`);
    if (!allowed.includes(key as FilterField))
      throw new StatisticsFilterError(key, `does not apply to this statistic; it accepts ${allowed.join(', ') || 'no filter'}`);
  }
  const out: Resolved = {};
  const from = dateBound(f['from'], 'from', 'start');
  const to = dateBound(f['to'], 'to', 'end');
  const asOf = dateBound(f['asOf'], 'asOf', 'end');
  if (from && to && from >= to) throw new StatisticsFilterError('to', `expected a date on or after from (${String(f['from'])})`);
  if (from) {
    out.fromAt = from;
    out.fromMonth = from.slice(0, 7);
  }
  if (to) {
    out.toEnd = to;
    out.toMonth = new Date(Date.parse(to) - 1).toISOString().slice(0, 7);
  }
  if (asOf) out.asOfEnd = asOf;
  for (const key of ['source', 'channel'] as const) {
    const v = f[key];
    if (v === undefined) continue;
    if (typeof v !== 'string' || v.length === 0 || v.length > 200)
      throw new StatisticsFilterError(key, 'expected a non-empty string of at most 200 characters');
    out[key] = v;
  }
  if (f['segment'] !== undefined) {
    if (typeof f['segment'] !== 'string' || !RFM_SEGMENTS.includes(f['segment'] as RfmSegment))
      throw new StatisticsFilterError('segment', `expected one of ${RFM_SEGMENTS.join(', ')}`);
    out.segment = f['segment'] as RfmSegment;
  }
  return out;
}

/** the most months a churn answer lists (a row each): a hundred years */
export const MAX_CHURN_MONTHS = 1200;

function monthIndex(month: string): number {
  return Number(month.slice(0, 4)) * 12 + Number(month.slice(5, 7)) - 1;
}

/** a date-time with its zone: without one, Date.parse reads it in the server's time zone */
const INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})$/i;

/**
 * The latest exclusive bound a figure takes: the end of year 9999. Times are compared as ISO text,
 * and the day after 9999-12-31 would be written "+010000-01-01…", which sorts before every time.
 * Business times end one day after now, so nothing is ever dated in that last millisecond.
 */
const LAST_BOUND = '9999-12-31T23:59:59.999Z';

/**
 * The last instant counted before an exclusive bound, as an answer shows `asOf`: the end of the
 * day asked about (`2024-06-30T23:59:59.999Z`), not the next day's first instant, which read as a
 * day later.
 */
function lastInstantBefore(bound: string): string {
  return bound === LAST_BOUND ? bound : new Date(Date.parse(bound) - 1).toISOString();
}

function dateBound(v: unknown, field: string, side: 'start' | 'end'): string | undefined {
  if (v === undefined) return undefined;
  const expected = 'expected a date YYYY-MM-DD or an ISO-8601 date-time with a zone (Z or ±hh:mm)';
  if (typeof v !== 'string') throw new StatisticsFilterError(field, expected);
  let t: number;
  if (/^\d{4}-\d{2}-\d{2}$/.test(v)) {
    t = Date.parse(`${v}T00:00:00.000Z`);
    if (!Number.isFinite(t) || new Date(t).toISOString().slice(0, 10) !== v)
      throw new StatisticsFilterError(field, `expected a real calendar date, got ${v}`);
    if (side === 'end') t += DAY_MS;
  } else {
    const iso = INSTANT.test(v) ? isoOrUndefined(v) : undefined;
    if (!iso || !/^\d{4}-/.test(iso)) throw new StatisticsFilterError(field, `${expected}, got ${v}`);
    t = Date.parse(iso) + (side === 'end' ? 1 : 0);
  }
  const bound = new Date(t).toISOString();
  return /^\d{4}-/.test(bound) ? bound : LAST_BOUND;
}

// ---------- answers ----------

export interface StageCounts {
  asOf: string | null;
  total: number;
  stages: Record<(typeof STAGES)[number], number>;
}
export interface FunnelStep {
  stage: 'prospect' | 'customer' | 'repeat_buyer' | 'advocate';
  reached: number;
  /** reached / reached at the previous step (null for the first step or an empty previous step) */
  conversionRate: number | null;
  /** median days from the previous stage to this one, among customers who reached both */
  medianDaysFromPrevious: number | null;
}
export interface Funnel {
  steps: FunnelStep[];
  overallConversionRate: number | null;
}
export interface CohortRow {
  cohort: string;
  size: number;
  /** share of the cohort that purchased in month cohort+k, k = 0.. (only months with data) */
  retention: number[];
  active: number[];
}
export interface ChurnMonth {
  month: string;
  activeAtStart: number;
  churned: number;
  rate: number | null;
}
/**
 * Churn over a quarter (`2024-Q3`) or a year (`2024`): `rate` compounds the rates of its months,
 * 1 − Π(1 − monthly rate), the share of a base lost if each month's churn struck the customers the
 * months before left; it stays between 0 and 1 however many customers joined meanwhile.
 * `activeAtStart` is its first month's, `churned` the sum of its months' churns.
 */
export interface ChurnPeriod {
  period: string;
  /** how many of its months the answer covers (fewer where `from`/`to` cut it) */
  months: number;
  activeAtStart: number;
  churned: number;
  rate: number | null;
}
/** what churn is counted per (`per`), and what is taken when it is not given; the HTTP API checks and declares `per` from it */
export const CHURN_PER = { values: ['month', 'quarter', 'year'], default: 'month' } as const satisfies Choice;
export type ChurnPer = (typeof CHURN_PER.values)[number];
export interface ChurnAnswer {
  months: ChurnMonth[];
  /** with `per` quarter or year: the months summed per period */
  periods?: ChurnPeriod[];
  reasons: { reason: string; detail: string | null; count: number }[];
}
export interface RepeatRate {
  buyers: number;
  repeatBuyers: number;
  rate: number | null;
}
export interface Tenure {
  customers: number;
  averageDays: number | null;
}
export interface ValuePeriod {
  period: string;
  activeCustomers: number;
  orders: number;
  revenue: number;
  cost: number;
  margin: number;
  revenuePerActiveCustomer: number | null;
  marginPerActiveCustomer: number | null;
}
export interface GoldenTier {
  share: 0.1 | 0.2;
  customers: number;
  revenue: number;
  revenueShare: number | null;
}
export interface GoldenCustomers {
  customersWithRevenue: number;
  totalRevenue: number;
  tiers: GoldenTier[];
}
export interface RfmScore {
  customerId: string;
  lastPurchaseAt: string;
  /** days from the last purchase to `asOf` (default: the latest business time seen) */
  recencyDays: number;
  frequency: number;
  monetary: number;
  r: number;
  f: number;
  m: number;
  segment: RfmSegment;
}
export interface RfmSegmentSummary {
  segment: RfmSegment;
  customers: number;
  revenue: number;
  cost: number;
  profit: number;
}
export interface Profitability {
  key: string;
  orders: number;
  revenue: number;
  cost: number;
  profit: number;
}
/** what customer value is summed per (`per`), and what is taken when it is not given */
export const VALUE_PER = { values: ['month', 'year'], default: 'month' } as const satisfies Choice;
export type ValuePer = (typeof VALUE_PER.values)[number];
/** what profitability is grouped by */
export const PROFITABILITY_DIMENSIONS = ['segment', 'channel', 'source', 'category', 'location'] as const;
export type ProfitabilityDimension = (typeof PROFITABILITY_DIMENSIONS)[number];
export interface CampaignReturn {
  campaignId: string;
  spend: number;
  revenue: number;
  orders: number;
  returnOnSpend: number | null;
}
export interface EmployeeComplaints {
  employeeId: string;
  feedback: number;
  complaints: number;
}
export interface Turnover {
  from: string | null;
  to: string | null;
  leavers: number;
  headcountAtStart: number;
  headcountAtEnd: number;
  averageHeadcount: number;
  rate: number | null;
}

type Row = Record<string, unknown>;

export class StatisticsQueries {
  constructor(private readonly db: ReadModelQueries) {}

  /** Customers in each stage, now or as of the end of `asOf`. */
  async stageCounts(filter?: StatisticsFilter): Promise<StageCounts> {
    const r = validateFilter(filter, STATISTIC_FILTERS.stageCounts);
    const pop = await this.population(r, 'c');
    const rows = r.asOfEnd
      ? await this.db.all<Row>(
          `${pop.with} SELECT h.stage AS stage, COUNT(*) AS n FROM stat_stage_history h
           ${pop.joins ? 'JOIN stat_customers c ON c.customer_id = h.customer_id' : ''}
           WHERE h.from_at < ? AND (h.to_at IS NULL OR h.to_at >= ?) ${pop.where} GROUP BY h.stage`,
          [...pop.withParams, r.asOfEnd, r.asOfEnd, ...pop.params],
        )
      : await this.db.all<Row>(
          `${pop.with} SELECT c.stage AS stage, COUNT(*) AS n FROM stat_customers c WHERE 1 = 1 ${pop.where} GROUP BY c.stage`,
          [...pop.withParams, ...pop.params],
        );
    const stages = Object.fromEntries(STAGES.map((s) => [s, 0])) as StageCounts['stages'];
    for (const row of rows) if ((STAGES as readonly string[]).includes(String(row['stage']))) stages[row['stage'] as (typeof STAGES)[number]] = num(row['n']);
    return { asOf: r.asOfEnd === undefined ? null : lastInstantBefore(r.asOfEnd), total: STAGES.reduce((s, k) => s + stages[k], 0), stages };
  }

  /**
   * The ladder prospect → customer → repeat_buyer → advocate for customers registered in
   * [from, to], as of `asOf`. A customer has reached a step when they reached it or any later step.
   */
  async funnel(filter?: StatisticsFilter): Promise<Funnel> {
    const r = validateFilter(filter, STATISTIC_FILTERS.funnel);
    const pop = await this.population(r, 'c');
    const where: string[] = ['1 = 1'];
    const params: SqlParam[] = [];
    if (r.fromAt) (where.push('c.registered_at >= ?'), params.push(r.fromAt));
    if (r.toEnd) (where.push('c.registered_at < ?'), params.push(r.toEnd));
    // asOfEnd is our own toISOString() output, so inlining it cannot inject; it keeps the
    // parameter order of the four reached-by conditions and three medians simple
    const reachedBy = (col: string): string => (r.asOfEnd ? `(${col} IS NOT NULL AND ${col} < '${r.asOfEnd}')` : `${col} IS NOT NULL`);
    if (r.asOfEnd) (where.push('(c.registered_at IS NULL OR c.registered_at < ?)'), params.push(r.asOfEnd));
    const adv = reachedBy('c.advocate_at');
    const rep = `(${reachedBy('c.repeat_at')} OR ${adv})`;
    const cus = `(${reachedBy('c.converted_at')} OR ${rep})`;
    const base = `FROM stat_customers c WHERE ${where.join(' AND ')} ${pop.where}`;
    const counts = await this.db.get<Row>(
      `${pop.with} SELECT COUNT(*) AS prospect,
         SUM(CASE WHEN ${cus} THEN 1 ELSE 0 END) AS customer,
         SUM(CASE WHEN ${rep} THEN 1 ELSE 0 END) AS repeat_buyer,
         SUM(CASE WHEN ${adv} THEN 1 ELSE 0 END) AS advocate,
         SUM(CASE WHEN c.days_to_customer IS NOT NULL AND ${reachedBy('c.converted_at')} THEN 1 ELSE 0 END) AS n_customer,
         SUM(CASE WHEN c.days_to_repeat IS NOT NULL AND ${reachedBy('c.repeat_at')} THEN 1 ELSE 0 END) AS n_repeat,
         SUM(CASE WHEN c.days_to_advocate IS NOT NULL AND ${reachedBy('c.advocate_at')} THEN 1 ELSE 0 END) AS n_advocate ${base}`,
      [...pop.withParams, ...params, ...pop.params],
    );
    const reached = [num(counts?.['prospect']), num(counts?.['customer']), num(counts?.['repeat_buyer']), num(counts?.['advocate'])];
    const medians = [
      null,
      await this.median('c.days_to_customer', reachedBy('c.converted_at'), num(counts?.['n_customer']), base, pop, params),
      await this.median('c.days_to_repeat', reachedBy('c.repeat_at'), num(counts?.['n_repeat']), base, pop, params),
      await this.median('c.days_to_advocate', reachedBy('c.advocate_at'), num(counts?.['n_advocate']), base, pop, params),
    ];
    const names = ['prospect', 'customer', 'repeat_buyer', 'advocate'] as const;
    const steps = names.map((stage, i) => ({
      stage,
      reached: reached[i] ?? 0,
      conversionRate: i === 0 ? null : ratio(reached[i] ?? 0, reached[i - 1] ?? 0),
      medianDaysFromPrevious: medians[i] ?? null,
    }));
    return { steps, overallConversionRate: ratio(reached[3] ?? 0, reached[0] ?? 0) };
  }

  /** the median of `col` over `n` qualifying rows: one index walk to the middle, ties by customer id */
  private async median(col: string, cond: string, n: number, base: string, pop: Population, params: SqlParam[]): Promise<number | null> {
    const sql = `${base} AND ${col} IS NOT NULL AND ${cond}`;
    if (n === 0) return null;
    const rows = await this.db.all<Row>(
      `${pop.with} SELECT ${col} AS d ${sql} ORDER BY ${col}, c.customer_id LIMIT ${n % 2 === 0 ? 2 : 1} OFFSET ${Math.floor((n - 1) / 2)}`,
      [...pop.withParams, ...params, ...pop.params],
    );
    const vals = rows.map((x) => Number(x['d']));
    return vals.reduce((s, v) => s + v, 0) / vals.length;
  }

  /**
   * Cohort = month of first purchase. Cell k = share of the cohort with at least one purchase in
   * the k-th month after it (k = 0 is the cohort month itself, always 1). Cells run up to the latest
   * business month the read model has seen, at most `maxMonths`.
   */
  async cohortRetention(filter?: StatisticsFilter, maxMonths = 12): Promise<CohortRow[]> {
    const r = validateFilter(filter, STATISTIC_FILTERS.cohortRetention);
    if (!Number.isInteger(maxMonths) || maxMonths < 0 || maxMonths > 120)
      throw new StatisticsFilterError('maxMonths', 'expected an integer between 0 and 120');
    const pop = await this.population(r, 'c');
    const where: string[] = ['c.acquisition_month IS NOT NULL'];
    const params: SqlParam[] = [];
    if (r.fromMonth) (where.push('c.acquisition_month >= ?'), params.push(r.fromMonth));
    if (r.toMonth) (where.push('c.acquisition_month <= ?'), params.push(r.toMonth));
    const cond = `${where.join(' AND ')} ${pop.where}`;
    let sizes: Row[];
    let cells: Row[];
    if (!r.segment) {
      cells = (await this.cohortCells(r)).filter((c) => num(c['n']) > 0);
      // every member buys in their cohort month, so the cohort's own cell is its size
      sizes = cells.filter((c) => c['cohort'] === c['month']).sort((a, b) => (String(a['cohort']) < String(b['cohort']) ? -1 : 1));
    } else {
      sizes = await this.db.all<Row>(
        `${pop.with} SELECT c.acquisition_month AS cohort, COUNT(*) AS n FROM stat_customers c WHERE ${cond} GROUP BY c.acquisition_month ORDER BY c.acquisition_month`,
        [...pop.withParams, ...params, ...pop.params],
      );
      cells = await this.db.all<Row>(
        `${pop.with} SELECT c.acquisition_month AS cohort, m.month AS month, COUNT(*) AS n
         FROM stat_customers c JOIN stat_customer_months m ON m.customer_id = c.customer_id
         WHERE ${cond} GROUP BY c.acquisition_month, m.month`,
        [...pop.withParams, ...params, ...pop.params],
      );
    }
    const latest = (await this.latestAt())?.slice(0, 7);
    const byCohort = new Map<string, Map<number, number>>();
    for (const c of cells) {
      const k = monthDiff(String(c['cohort']), String(c['month']));
      if (k < 0 || k > maxMonths) continue;
      const m = byCohort.get(String(c['cohort'])) ?? new Map<number, number>();
      m.set(k, num(c['n']));
      byCohort.set(String(c['cohort']), m);
    }
    return sizes.map((s) => {
      const cohort = String(s['cohort']);
      const size = num(s['n']);
      const span = latest ? Math.min(maxMonths, monthDiff(cohort, latest)) : 0;
      const active = Array.from({ length: Math.max(0, span) + 1 }, (_, k) => byCohort.get(cohort)?.get(k) ?? 0);
      return { cohort, size, active, retention: active.map((a) => (size === 0 ? 0 : a / size)) };
    });
  }

  /** cohort × month activity kept by the projection, narrowed by source and channel */
  private async cohortCells(r: Resolved): Promise<Row[]> {
    const where: string[] = [];
    const params: SqlParam[] = [];
    if (r.fromMonth) (where.push('AND cohort >= ?'), params.push(r.fromMonth));
    if (r.toMonth) (where.push('AND cohort <= ?'), params.push(r.toMonth));
    if (r.source) (where.push('AND source = ?'), params.push(r.source));
    if (r.channel) (where.push('AND channel = ?'), params.push(r.channel));
    return this.db.all<Row>(
      `SELECT cohort, month, CAST(SUM(active) AS BIGINT) AS n FROM stat_cohorts WHERE 1 = 1 ${where.join(' ')} GROUP BY cohort, month`,
      params,
    );
  }

  /**
   * Per month: customers churned in it / customers active (customer, repeat buyer or advocate) at
   * its first instant; and churns counted by reason over the period.
   */
  async churn(filter?: StatisticsFilter, per: ChurnPer = CHURN_PER.default): Promise<ChurnAnswer> {
    const r = validateFilter(filter, STATISTIC_FILTERS.churn);
    if (!CHURN_PER.values.includes(per)) throw new StatisticsFilterError('per', `expected ${orList(CHURN_PER.values)}`);
    const pop = await this.population(r, 'c');
    const join = pop.joins ? 'JOIN stat_customers c ON c.customer_id = h.customer_id' : '';
    const churnRows = r.segment
      ? await this.db.all<Row>(
          `${pop.with} SELECT substr(h.from_at, 1, 7) AS month, h.reason AS reason, h.detail AS detail, COUNT(*) AS n
           FROM stat_stage_history h ${join} WHERE h.stage = 'churned' ${pop.where}
           GROUP BY substr(h.from_at, 1, 7), h.reason, h.detail`,
          [...pop.withParams, ...pop.params],
        )
      : await this.db.all<Row>(
          `SELECT month, reason, detail, CAST(SUM(n) AS BIGINT) AS n FROM stat_churns s
           WHERE 1 = 1 ${r.source ? 'AND s.source = ?' : ''} ${r.channel ? 'AND s.channel = ?' : ''} GROUP BY month, reason, detail`,
          [...(r.source ? [r.source] : []), ...(r.channel ? [r.channel] : [])],
        );
    const inPeriod = churnRows.filter((x) => (!r.fromMonth || String(x['month']) >= r.fromMonth) && (!r.toMonth || String(x['month']) <= r.toMonth));
    const churnedBy = new Map<string, number>();
    const reasonsBy = new Map<string, { reason: string; detail: string | null; count: number }>();
    for (const x of inPeriod) {
      const month = String(x['month']);
      churnedBy.set(month, (churnedBy.get(month) ?? 0) + num(x['n']));
      const detail = x['detail'] === null || x['detail'] === undefined || x['detail'] === '' ? null : String(x['detail']);
      const key = JSON.stringify([String(x['reason']), detail]);
      const acc = reasonsBy.get(key) ?? { reason: String(x['reason']), detail, count: 0 };
      acc.count += num(x['n']);
      reasonsBy.set(key, acc);
    }
    const reasons = [...reasonsBy.values()].sort((a, b) => cmp(a.reason, b.reason) || cmp(a.detail ?? '', b.detail ?? ''));
    const spans = r.segment
      ? await this.db.all<Row>(
          `${pop.with} SELECT substr(h.from_at, 1, 7) AS month_in, substr(h.to_at, 1, 7) AS month_out, COUNT(*) AS n
           FROM stat_stage_history h ${join} WHERE h.stage IN ${ACTIVE_STAGES} ${pop.where}
           GROUP BY substr(h.from_at, 1, 7), substr(h.to_at, 1, 7)`,
          [...pop.withParams, ...pop.params],
        )
      : await this.db.all<Row>(
          `SELECT month_in, CASE WHEN month_out = '' THEN NULL ELSE month_out END AS month_out, CAST(SUM(n) AS BIGINT) AS n
           FROM stat_active_spans s WHERE n <> 0 ${r.source ? 'AND s.source = ?' : ''} ${r.channel ? 'AND s.channel = ?' : ''}
           GROUP BY month_in, month_out`,
          [...(r.source ? [r.source] : []), ...(r.channel ? [r.channel] : [])],
        );
    const latest = await this.latestAt();
    const first = [...spans.map((s) => String(s['month_in'])), ...churnRows.map((x) => String(x['month']))].sort()[0];
    const fromMonth = r.fromMonth ?? first;
    const toMonth = r.toMonth ?? latest?.slice(0, 7);
    const months: ChurnMonth[] = [];
    if (fromMonth && toMonth) {
      // a row a month: a period of centuries would be a long answer, and a slow one (to=9999-12-31 asked for 95,000 rows)
      const span = monthIndex(toMonth) - monthIndex(fromMonth) + 1;
      if (span > MAX_CHURN_MONTHS) {
        throw new StatisticsFilterError(r.toMonth ? 'to' : 'from', `expected a period of at most ${MAX_CHURN_MONTHS} months (from ${fromMonth} to ${toMonth} is ${span})`);
      }
      for (let m = fromMonth; m <= toMonth; m = nextMonth(m)) {
        let activeAtStart = 0;
        for (const s of spans) {
          const out = s['month_out'] === null || s['month_out'] === undefined ? null : String(s['month_out']);
          if (String(s['month_in']) < m && (out === null || out >= m)) activeAtStart += num(s['n']);
        }
        const n = churnedBy.get(m) ?? 0;
        months.push({ month: m, activeAtStart, churned: n, rate: ratio(n, activeAtStart) });
      }
    }
    return per === 'month' ? { months, reasons } : { months, periods: churnPeriods(months, per), reasons };
  }

  /** Customers with at least 2 orders / customers with at least 1, counting orders up to `asOf`. */
  async repeatRate(filter?: StatisticsFilter): Promise<RepeatRate> {
    const r = validateFilter(filter, STATISTIC_FILTERS.repeatRate);
    const pop = await this.population(r, 'c');
    const row = (await this.isPast(r.asOfEnd))
      ? await (async () => {
          const past = await this.pastBuyers(r.asOfEnd!);
          return this.db.get<Row>(
            `${pop.with}, o AS (${past.sql})
             SELECT COUNT(*) AS buyers, SUM(CASE WHEN o.f >= 2 THEN 1 ELSE 0 END) AS repeaters FROM o
             ${pop.joins ? 'JOIN stat_customers c ON c.customer_id = o.customer_id' : ''} WHERE 1 = 1 ${pop.where}`,
            [...pop.withParams, ...past.params, ...pop.params],
          );
        })()
      : await this.db.get<Row>(
          `${pop.with} SELECT COUNT(*) AS buyers, SUM(CASE WHEN c.orders >= 2 THEN 1 ELSE 0 END) AS repeaters
           FROM stat_customers c WHERE c.orders >= 1 ${pop.where}`,
          [...pop.withParams, ...pop.params],
        );
    const buyers = num(row?.['buyers']);
    const repeatBuyers = num(row?.['repeaters']);
    return { buyers, repeatBuyers, rate: ratio(repeatBuyers, buyers) };
  }

  /**
   * Average days from first purchase to the end of the relationship: the last purchase for a
   * customer churned at `asOf`, otherwise `asOf` itself (default: the latest business time seen).
   */
  async tenure(filter?: StatisticsFilter): Promise<Tenure> {
    const r = validateFilter(filter, STATISTIC_FILTERS.tenure);
    const pop = await this.population(r, 'c');
    const refAt = r.asOfEnd ?? (await this.latestAt());
    if (!refAt) return { customers: 0, averageDays: null };
    const refDay = Date.parse(refAt) / DAY_MS;
    let row: Row | undefined;
    if (await this.isPast(r.asOfEnd)) {
      const past = await this.pastBuyers(r.asOfEnd!, { firstDay: true, lastDay: true });
      // a month-end snapshot holds each buyer's stage then; inside a month it comes from the history
      const stage = past.scored
        ? 'o.stage'
        : `(SELECT h.stage FROM stat_stage_history h WHERE h.customer_id = o.customer_id
             AND h.from_at < ? AND (h.to_at IS NULL OR h.to_at >= ?) ORDER BY h.seq DESC LIMIT 1)`;
      row = await this.db.get<Row>(
        `${pop.with}, o AS (${past.sql})
         SELECT COUNT(*) AS n, SUM(CASE WHEN ${stage} = 'churned' THEN o.last_day - o.first_day ELSE ? - o.first_day END) AS total
         FROM o ${pop.joins ? 'JOIN stat_customers c ON c.customer_id = o.customer_id' : ''} WHERE 1 = 1 ${pop.where}`,
        [...pop.withParams, ...past.params, ...(past.scored ? [] : [r.asOfEnd!, r.asOfEnd!]), refDay, ...pop.params],
      );
    } else {
      row = await this.db.get<Row>(
        `${pop.with} SELECT COUNT(*) AS n, SUM(CASE WHEN c.stage = 'churned' THEN c.last_purchase_day - c.first_purchase_day ELSE ? - c.first_purchase_day END) AS total
         FROM stat_customers c WHERE c.segment IS NOT NULL ${pop.where}`,
        [...pop.withParams, refDay, ...pop.params],
      );
    }
    const n = num(row?.['n']);
    return { customers: n, averageDays: n === 0 ? null : Number(row?.['total']) / n };
  }

  /** Revenue, cost, margin and active customers per month (or per year) of the period. */
  async value(filter?: StatisticsFilter, per: ValuePer = VALUE_PER.default): Promise<ValuePeriod[]> {
    const r = validateFilter(filter, STATISTIC_FILTERS.value);
    if (!VALUE_PER.values.includes(per)) throw new StatisticsFilterError('per', `expected ${orList(VALUE_PER.values)}`);
    const pop = await this.population(r, 'c');
    const { sql: range, params } = monthRange(r, 'm.month');
    const period = per === 'month' ? 'm.month' : 'substr(m.month, 1, 4)';
    const preAggregated = !r.segment && (per === 'month' || (!r.fromMonth && !r.toMonth));
    const rows = preAggregated
      ? await this.periodTotals(r, per)
      : await this.db.all<Row>(
      `${pop.with} SELECT ${period} AS period, COUNT(DISTINCT m.customer_id) AS active, CAST(SUM(m.orders) AS BIGINT) AS orders,
         CAST(SUM(m.revenue) AS BIGINT) AS revenue, CAST(SUM(m.cost) AS BIGINT) AS cost
       FROM stat_customer_months m ${pop.joins ? 'JOIN stat_customers c ON c.customer_id = m.customer_id' : ''}
       WHERE 1 = 1 ${range} ${pop.where} GROUP BY ${period} ORDER BY ${period}`,
      [...pop.withParams, ...params, ...pop.params],
    );
    return rows.map((x) => {
      const active = num(x['active']);
      const revenue = num(x['revenue']);
      const cost = num(x['cost']);
      return {
        period: String(x['period']),
        activeCustomers: active,
        orders: num(x['orders']),
        revenue,
        cost,
        margin: revenue - cost,
        revenuePerActiveCustomer: ratio(revenue, active),
        marginPerActiveCustomer: ratio(revenue - cost, active),
      };
    });
  }

  /** per-period totals kept by the projection; `active` counts each customer once per period */
  private async periodTotals(r: Resolved, per: 'month' | 'year'): Promise<Row[]> {
    const where: string[] = [];
    const params: SqlParam[] = [per];
    if (per === 'month') {
      const range = monthRange(r, 'period');
      where.push(range.sql);
      params.push(...range.params);
    }
    if (r.source) (where.push('AND source = ?'), params.push(r.source));
    if (r.channel) (where.push('AND channel = ?'), params.push(r.channel));
    return this.db.all<Row>(
      `SELECT period, CAST(SUM(active) AS BIGINT) AS active, CAST(SUM(orders) AS BIGINT) AS orders,
         CAST(SUM(revenue) AS BIGINT) AS revenue, CAST(SUM(cost) AS BIGINT) AS cost
       FROM stat_periods WHERE kind = ? ${where.join(' ')} GROUP BY period ORDER BY period`,
      params,
    );
  }

  /**
   * The top 10% and 20% of customers by revenue in the period (ceil of the share of customers with
   * revenue; ties by customer id) and their share of total revenue.
   */
  async goldenCustomers(filter?: StatisticsFilter): Promise<GoldenCustomers> {
    const r = validateFilter(filter, STATISTIC_FILTERS.goldenCustomers);
    const pop = await this.population(r, 'c');
    let source: string;
    let params: SqlParam[];
    if (r.fromMonth || r.toMonth) {
      const range = monthRange(r, 'm.month');
      source = `SELECT m.customer_id AS customer_id, CAST(SUM(m.revenue) AS BIGINT) AS revenue FROM stat_customer_months m
        ${pop.joins ? 'JOIN stat_customers c ON c.customer_id = m.customer_id' : ''} WHERE 1 = 1 ${range.sql} ${pop.where} GROUP BY m.customer_id`;
      params = [...range.params, ...pop.params];
    } else {
      source = `SELECT c.customer_id AS customer_id, c.revenue AS revenue FROM stat_customers c WHERE c.revenue > 0 ${pop.where}`;
      params = [...pop.params];
    }
    const tiers: GoldenTier[] = [];
    if (r.fromMonth || r.toMonth) {
      // a period's revenues must be summed per customer first: done once and ranked twice in one
      // statement (ceil(n / 10) and ceil(n / 5) in integer arithmetic) instead of once per answer
      const row = await this.db.get<Row>(
        `${pop.with}, g AS MATERIALIZED (SELECT customer_id, revenue FROM (${source}) x WHERE x.revenue > 0),
           gn AS (SELECT COUNT(*) AS n, CAST(SUM(revenue) AS BIGINT) AS total FROM g)
         SELECT gn.n AS n, gn.total AS total,
           (SELECT CAST(SUM(revenue) AS BIGINT) FROM (SELECT revenue FROM g ORDER BY revenue DESC, customer_id ASC LIMIT (SELECT (n + 9) / 10 FROM gn)) t) AS top10,
           (SELECT CAST(SUM(revenue) AS BIGINT) FROM (SELECT revenue FROM g ORDER BY revenue DESC, customer_id ASC LIMIT (SELECT (n + 4) / 5 FROM gn)) t) AS top20
         FROM gn`,
        [...pop.withParams, ...params],
      );
      const n = num(row?.['n']);
      const total = num(row?.['total']);
      for (const [share, key] of [[0.1, 'top10'], [0.2, 'top20']] as const) {
        const revenue = num(row?.[key]);
        tiers.push({ share, customers: Math.ceil(n * share - 1e-9), revenue, revenueShare: ratio(revenue, total) });
      }
      return { customersWithRevenue: n, totalRevenue: total, tiers };
    }
    const totals = await this.db.get<Row>(
      `${pop.with} SELECT COUNT(*) AS n, CAST(SUM(revenue) AS BIGINT) AS total FROM (${source}) g WHERE g.revenue > 0`,
      [...pop.withParams, ...params],
    );
    const n = num(totals?.['n']);
    const total = num(totals?.['total']);
    for (const share of [0.1, 0.2] as const) {
      const k = Math.ceil(n * share - 1e-9);
      const top = await this.db.get<Row>(
        `${pop.with} SELECT CAST(SUM(revenue) AS BIGINT) AS s FROM (SELECT g.revenue AS revenue FROM (${source}) g WHERE g.revenue > 0
         ORDER BY g.revenue DESC, g.customer_id ASC LIMIT ${k}) t`,
        [...pop.withParams, ...params],
      );
      const revenue = num(top?.['s']);
      tiers.push({ share, customers: k, revenue, revenueShare: ratio(revenue, total) });
    }
    return { customersWithRevenue: n, totalRevenue: total, tiers };
  }

  /** Per-customer RFM scores as of `asOf`, ordered by customer id, one page at a time. */
  async rfmScores(filter?: StatisticsFilter, page: { limit?: number; offset?: number } = {}): Promise<RfmScore[]> {
    const r = validateFilter(filter, STATISTIC_FILTERS.rfmScores);
    const limit = page.limit ?? 1000;
    const offset = page.offset ?? 0;
    if (!Number.isInteger(limit) || limit < 1 || limit > 100_000) throw new StatisticsFilterError('limit', 'expected an integer between 1 and 100000');
    if (!Number.isInteger(offset) || offset < 0) throw new StatisticsFilterError('offset', 'expected a non-negative integer');
    const refAt = r.asOfEnd ?? (await this.latestAt());
    const refMs = refAt ? Date.parse(refAt) : 0;
    const rfm = await this.rfmCte(r.asOfEnd, true);
    const where = this.customerFilter(r, 's');
    const rows = await this.db.all<Row>(
      `WITH ${rfm.sql} SELECT s.customer_id, s.last_at, s.f, s.m, s.r_score, s.f_score, s.m_score, s.segment FROM rfm_seg s
       ${where.joins} WHERE 1 = 1 ${where.sql} ORDER BY s.customer_id LIMIT ${limit} OFFSET ${offset}`,
      [...rfm.params, ...where.params],
    );
    return rows.map((x) => ({
      customerId: String(x['customer_id']),
      lastPurchaseAt: String(x['last_at']),
      recencyDays: (refMs - Date.parse(String(x['last_at']))) / DAY_MS,
      frequency: num(x['f']),
      monetary: num(x['m']),
      r: num(x['r_score']),
      f: num(x['f_score']),
      m: num(x['m_score']),
      segment: x['segment'] as RfmSegment,
    }));
  }

  /** Customers, lifetime revenue, cost and profit (as of `asOf`) per RFM segment. */
  async rfmSegments(filter?: StatisticsFilter): Promise<RfmSegmentSummary[]> {
    const r = validateFilter(filter, STATISTIC_FILTERS.rfmSegments);
    const by = new Map<string, { n: number; revenue: number; cost: number }>();
    const cells = await this.cellsFromCuts(r);
    if (cells) {
      // totals per (R, F) cell, named here as the segment CASE names them
      for (const x of cells) {
        const segment = rfmSegmentOf(num(x['r_score']), num(x['f_score']));
        if (r.segment && segment !== r.segment) continue;
        const acc = by.get(segment) ?? { n: 0, revenue: 0, cost: 0 };
        by.set(segment, { n: acc.n + num(x['n']), revenue: acc.revenue + num(x['revenue']), cost: acc.cost + num(x['cost']) });
      }
    } else {
      const rfm = await this.rfmCte(r.asOfEnd);
      const where = this.customerFilter(r, 's');
      const rows = await this.db.all<Row>(
        `WITH ${rfm.sql} SELECT s.segment AS segment, COUNT(*) AS n, CAST(SUM(s.m) AS BIGINT) AS revenue, CAST(SUM(s.cost) AS BIGINT) AS cost
         FROM rfm_seg s ${where.joins} WHERE 1 = 1 ${where.sql} GROUP BY s.segment`,
        [...rfm.params, ...where.params],
      );
      for (const x of rows) by.set(String(x['segment']), { n: num(x['n']), revenue: num(x['revenue']), cost: num(x['cost']) });
    }
    return RFM_SEGMENTS.map((segment) => {
      const x = by.get(segment);
      const revenue = x?.revenue ?? 0;
      const cost = x?.cost ?? 0;
      return { segment, customers: x?.n ?? 0, revenue, cost, profit: revenue - cost };
    });
  }

  /**
   * As of a date inside a month (where `midMonthCuts` applies): buyers, revenue and cost per (R, F)
   * score cell, each buyer scored against the cuts in one pass with no copy of the scored buyers
   * kept; the segment filter is left to the caller. Undefined elsewhere.
   */
  private async cellsFromCuts(r: Resolved): Promise<Row[] | undefined> {
    if (!r.asOfEnd || !(await this.isPast(r.asOfEnd))) return undefined;
    const past = await this.pastBuyers(r.asOfEnd, { lastDay: true, money: true });
    const cuts = past.merged ? await this.midMonthCuts(r.asOfEnd) : undefined;
    if (!cuts) return undefined;
    const rScore = cutScore('b.last_day', cuts.r, 'b.customer_id');
    const fScore = cutScore('b.f', cuts.f, 'b.customer_id');
    const where = this.customerFilter({ ...r, segment: undefined }, 'b');
    return this.db.all<Row>(
      `SELECT ${rScore.sql} AS r_score, ${fScore.sql} AS f_score, COUNT(*) AS n, CAST(SUM(b.m) AS BIGINT) AS revenue,
         CAST(SUM(b.cost) AS BIGINT) AS cost FROM (${past.sql}) b ${where.joins} WHERE 1 = 1 ${where.sql} GROUP BY 1, 2`,
      [...rScore.params, ...fScore.params, ...past.params, ...where.params],
    );
  }

  /**
   * Revenue − cost of purchases in the period, grouped by purchase channel, location, product
   * category, acquisition source, or RFM segment (as of `asOf`, else `to`).
   */
  async profitability(by: ProfitabilityDimension, filter?: StatisticsFilter): Promise<Profitability[]> {
    if (!PROFITABILITY_DIMENSIONS.includes(by)) throw new StatisticsFilterError('by', `expected one of ${PROFITABILITY_DIMENSIONS.join(', ')}`);
    const r = validateFilter(filter, by === 'segment' ? STATISTIC_FILTERS.profitabilityBySegment : STATISTIC_FILTERS.profitability);
    let rows: Row[];
    if (by === 'segment') {
      const rfm = await this.rfmCte(r.asOfEnd ?? r.toEnd);
      const range = monthRange(r, 'm.month');
      const where = this.customerFilter(r, 's');
      // without a period, the RFM base already holds the totals of every purchase up to its date
      // (asOf, or now); with one, the month rows join the scores directly (no per-customer
      // regrouping before the segment one)
      const lifetime = !r.fromMonth && !r.toMonth;
      rows = await this.db.all<Row>(
        lifetime
          ? `WITH ${rfm.sql}
             SELECT s.segment AS key, CAST(SUM(s.f) AS BIGINT) AS orders, CAST(SUM(s.m) AS BIGINT) AS revenue, CAST(SUM(s.cost) AS BIGINT) AS cost
             FROM rfm_seg s ${where.joins} WHERE 1 = 1 ${where.sql} GROUP BY s.segment ORDER BY s.segment`
          : `WITH ${rfm.sql}
             SELECT s.segment AS key, CAST(SUM(m.orders) AS BIGINT) AS orders, CAST(SUM(m.revenue) AS BIGINT) AS revenue, CAST(SUM(m.cost) AS BIGINT) AS cost
             FROM rfm_seg s JOIN stat_customer_months m ON m.customer_id = s.customer_id ${where.joins}
             WHERE 1 = 1 ${range.sql} ${where.sql} GROUP BY s.segment ORDER BY s.segment`,
        lifetime ? [...rfm.params, ...where.params] : [...rfm.params, ...range.params, ...where.params],
      );
    } else if (r.segment) {
      const pop = await this.population(r, 'c');
      const range = monthRange(r, 's.month');
      const dim = by === 'source' ? 'channel' : by;
      const key = by === 'source' ? 'c.source' : 's.key';
      rows = await this.db.all<Row>(
        `${pop.with} SELECT ${key} AS key, CAST(SUM(s.orders) AS BIGINT) AS orders, CAST(SUM(s.revenue) AS BIGINT) AS revenue, CAST(SUM(s.cost) AS BIGINT) AS cost
         FROM stat_customer_sales s JOIN stat_customers c ON c.customer_id = s.customer_id
         WHERE s.dim = ? ${range.sql} ${pop.where} GROUP BY ${key} ORDER BY ${key}`,
        [...pop.withParams, dim, ...range.params, ...pop.params],
      );
    } else {
      // every order has exactly one purchase-channel row, so grouping those by source counts each order once
      const dim = by === 'source' ? 'channel' : by;
      const key = by === 'source' ? 's.source' : 's.key';
      const range = monthRange(r, 's.month');
      const where: string[] = [];
      const params: SqlParam[] = [];
      if (r.source) (where.push('AND s.source = ?'), params.push(r.source));
      if (r.channel) (where.push('AND s.channel = ?'), params.push(r.channel));
      rows = await this.db.all<Row>(
        `SELECT ${key} AS key, CAST(SUM(s.orders) AS BIGINT) AS orders, CAST(SUM(s.revenue) AS BIGINT) AS revenue, CAST(SUM(s.cost) AS BIGINT) AS cost
         FROM stat_sales s WHERE s.dim = ? ${range.sql} ${where.join(' ')} GROUP BY ${key} ORDER BY ${key}`,
        [dim, ...range.params, ...params],
      );
    }
    return rows.map((x) => {
      const revenue = num(x['revenue']);
      const cost = num(x['cost']);
      return { key: String(x['key']), orders: num(x['orders']), revenue, cost, profit: revenue - cost };
    });
  }

  /** Per campaign: (revenue of orders that name it − spend) / spend, over the months of the period. */
  async campaignReturns(filter?: StatisticsFilter): Promise<CampaignReturn[]> {
    const r = validateFilter(filter, STATISTIC_FILTERS.campaignReturns);
    const range = monthRange(r, 'month');
    const rows = await this.db.all<Row>(
      `SELECT campaign_id, CAST(SUM(spend) AS BIGINT) AS spend, CAST(SUM(revenue) AS BIGINT) AS revenue, CAST(SUM(orders) AS BIGINT) AS orders
       FROM stat_campaign_months WHERE 1 = 1 ${range.sql} GROUP BY campaign_id ORDER BY campaign_id`,
      range.params,
    );
    return rows.map((x) => {
      const spend = num(x['spend']);
      const revenue = num(x['revenue']);
      return { campaignId: String(x['campaign_id']), spend, revenue, orders: num(x['orders']), returnOnSpend: ratio(revenue - spend, spend) };
    });
  }

  /** Feedback and complaints naming each employee over the months of the period (every known employee listed). */
  async complaintsPerEmployee(filter?: StatisticsFilter): Promise<EmployeeComplaints[]> {
    const r = validateFilter(filter, STATISTIC_FILTERS.complaintsPerEmployee);
    const range = monthRange(r, 'month');
    const rows = await this.db.all<Row>(
      `SELECT employee_id, CAST(SUM(feedback) AS BIGINT) AS feedback, CAST(SUM(complaints) AS BIGINT) AS complaints
       FROM stat_employee_months WHERE 1 = 1 ${range.sql} GROUP BY employee_id`,
      range.params,
    );
    const employees = await this.db.all<Row>('SELECT DISTINCT employee_id FROM stat_employees');
    const by = new Map<string, EmployeeComplaints>();
    for (const e of employees) by.set(String(e['employee_id']), { employeeId: String(e['employee_id']), feedback: 0, complaints: 0 });
    for (const x of rows)
      by.set(String(x['employee_id']), { employeeId: String(x['employee_id']), feedback: num(x['feedback']), complaints: num(x['complaints']) });
    return [...by.values()].sort((a, b) => b.complaints - a.complaints || (a.employeeId < b.employeeId ? -1 : 1));
  }

  /**
   * Leavers in [from, to] / average of the headcount at the first and at the last instant of the
   * period. Defaults: from the first hire, to the latest business time seen. Rows are employments:
   * someone who left and was hired again counts as a leaver in the period they left, and in the
   * headcount of each instant they were employed.
   */
  async turnover(filter?: StatisticsFilter): Promise<Turnover> {
    const r = validateFilter(filter, STATISTIC_FILTERS.turnover);
    const first = await this.db.get<Row>('SELECT MIN(hired_at) AS t FROM stat_employees');
    const latest = await this.latestAt();
    const start = r.fromAt ?? (first?.['t'] ? String(first['t']) : undefined);
    const end = r.toEnd ?? (latest ? new Date(Date.parse(latest) + 1).toISOString() : undefined);
    if (!start || !end) return { from: null, to: null, leavers: 0, headcountAtStart: 0, headcountAtEnd: 0, averageHeadcount: 0, rate: null };
    // a period reversed by a default (to before the first hire, from after the latest time) is as wrong as one given reversed
    if (start >= end) {
      throw r.fromAt
        ? new StatisticsFilterError('from', `expected a date before to (by default the latest business time, ${latest ?? end})`)
        : new StatisticsFilterError('to', `expected a date on or after from (by default the first hire, ${start})`);
    }
    const row = await this.db.get<Row>(
      `SELECT
         SUM(CASE WHEN left_at IS NOT NULL AND left_at >= ? AND left_at < ? THEN 1 ELSE 0 END) AS leavers,
         SUM(CASE WHEN hired_at <= ? AND (left_at IS NULL OR left_at > ?) THEN 1 ELSE 0 END) AS at_start,
         SUM(CASE WHEN hired_at < ? AND (left_at IS NULL OR left_at >= ?) THEN 1 ELSE 0 END) AS at_end
       FROM stat_employees WHERE hired_at IS NOT NULL`,
      [start, end, start, start, end, end],
    );
    const leavers = num(row?.['leavers']);
    const headcountAtStart = num(row?.['at_start']);
    const headcountAtEnd = num(row?.['at_end']);
    const averageHeadcount = (headcountAtStart + headcountAtEnd) / 2;
    return { from: start, to: end, leavers, headcountAtStart, headcountAtEnd, averageHeadcount, rate: ratio(leavers, averageHeadcount) };
  }

  /** The latest business time the read model has seen: the default "now" of every statistic. */
  async latestAt(): Promise<string | undefined> {
    const row = await this.db.get<Row>(`SELECT value FROM stat_meta WHERE key = 'latest_at'`);
    return row ? String(row['value']) : undefined;
  }

  // ---------- building blocks ----------

  /** true when `asOfEnd` excludes some stored fact, so a figure as of it cannot read the present rows */
  private async isPast(asOfEnd: string | undefined): Promise<boolean> {
    if (!asOfEnd) return false;
    const latest = await this.latestAt();
    return latest !== undefined && asOfEnd <= latest;
  }

  /**
   * Every buyer as of a past `asOfEnd` (exclusive): columns customer_id, first_day, last_day,
   * last_at, f (orders), m (revenue), cost. At a month end it is the projection's snapshot, which
   * also holds stage and r_score, f_score, m_score, segment (`scored`); inside a month it is the
   * previous month end's snapshot plus the orders of the month before `asOfEnd`, found through the
   * customers who bought that month. Where the snapshot is stale (facts arrived after it was
   * taken, see the projection) every order before `asOfEnd` is folded instead.
   */
  private async pastBuyers(
    asOfEnd: string,
    need: { firstDay?: boolean; lastDay?: boolean; lastAt?: boolean; money?: boolean } = {},
  ): Promise<{ sql: string; params: SqlParam[]; scored: boolean; merged?: boolean }> {
    const month = asOfEnd.slice(0, 7);
    const monthEnd = asOfEnd.slice(7) === '-01T00:00:00.000Z';
    const snapshot = previousMonth(month);
    const stale = await this.db.get<Row>(`SELECT value FROM stat_meta WHERE key = 'rfm_stale_from'`);
    if (stale && snapshot >= String(stale['value'])) {
      return { ...totalsBefore(asOfEnd, need), scored: false };
    }
    if (monthEnd) {
      return {
        sql: `SELECT customer_id, first_day, last_day, last_at, orders AS f, revenue AS m, cost, stage, r_score, f_score, m_score, segment
          FROM stat_rfm_months WHERE month = ?`,
        params: [snapshot],
        scored: true,
      };
    }
    return { ...snapshotPlusMonth(snapshot, month, asOfEnd), scored: false, merged: true };
  }

  /**
   * RFM over every customer with a purchase before `asOfEnd` (or ever): quintiles are taken over
   * the whole base, so a customer's segment does not depend on the other filters of a query.
   *
   * The present (or any date after the latest fact) reads the scores the projection keeps on
   * `stat_customers`; a past month end reads the scores it stored then (`stat_rfm_months`); any
   * other past date folds the previous month end's snapshot with the orders since and ranks that
   * with NTILE. `MATERIALIZED` (SQLite ≥ 3.35, PostgreSQL ≥ 12) scores each customer once:
   * inlined, the NTILE windows would be re-evaluated inside every branch of the segment CASE.
   */
  private async rfmCte(asOfEnd: string | undefined, full = false): Promise<{ sql: string; params: SqlParam[] }> {
    if (await this.isPast(asOfEnd)) {
      const past = await this.pastBuyers(asOfEnd!, { lastDay: true, lastAt: full, money: true });
      if (past.scored) return { sql: `rfm_seg AS (${past.sql})`, params: past.params };
      const cut = full || !past.merged ? undefined : await this.midMonthCuts(asOfEnd!);
      if (cut) {
        const r = cutScore('b.last_day', cut.r, 'b.customer_id');
        const f = cutScore('b.f', cut.f, 'b.customer_id');
        return {
          sql: `rfm AS MATERIALIZED (SELECT b.*, ${r.sql} AS r_score, ${f.sql} AS f_score, 0 AS m_score FROM (${past.sql}) b),
            rfm_seg AS (SELECT customer_id, last_day, last_at, f, m, cost, r_score, f_score, m_score, ${SEGMENT_CASE} AS segment FROM rfm)`,
          params: [...r.params, ...f.params, ...past.params],
        };
      }
      return {
        sql: `rfm AS MATERIALIZED (${ntileScores(past.sql, full)}),
          rfm_seg AS (SELECT customer_id, last_day, last_at, f, m, cost, r_score, f_score, m_score, ${SEGMENT_CASE} AS segment FROM rfm)`,
        params: past.params,
      };
    }
    // every buyer has a segment and nobody else has: the condition lets the planner read the segment index
    return {
      sql: `rfm_seg AS (SELECT customer_id, last_purchase_day AS last_day, last_purchase_at AS last_at, orders AS f, revenue AS m, cost,
          r_score, f_score, m_score, segment FROM stat_customers WHERE segment IS NOT NULL)`,
      params: [],
    };
  }

  /**
   * The R and F quintile cuts (the first (value, customer id) of NTILE buckets 2–5) of every buyer
   * as of `asOfEnd`, a date inside a month whose previous month end's snapshot is fresh, found
   * without ranking the buyers: the buyers then are the snapshot's rows with this month's buyers
   * (a few thousand) replaced by their new totals. The k-th of them is found from positions in the
   * snapshot's (month, value, customer id) indexes (`SnapshotOrder`) corrected by how many of this
   * month's buyers lie below, each before and after; only the month's buyers are held in memory.
   * Answers undefined where that does not apply (the caller ranks every buyer instead).
   */
  private async midMonthCuts(asOfEnd: string): Promise<{ r: Cut[]; f: Cut[] } | undefined> {
    const month = asOfEnd.slice(0, 7);
    const snapshot = previousMonth(month);
    const stored = await this.db.get<Row>('SELECT COUNT(*) AS n FROM stat_rfm_months WHERE month = ?', [snapshot]);
    const inSnapshot = num(stored?.['n']);
    if (inSnapshot === 0) return undefined;
    const totals = monthTotals(month, asOfEnd);
    const movers = await this.db.all<Row>(
      `SELECT mo.customer_id AS customer_id, mo.last_day AS last_day, mo.f AS f, s.last_day AS old_last_day, s.orders AS old_f
       FROM (${totals.sql}) mo LEFT JOIN stat_rfm_months s ON s.month = ? AND s.customer_id = mo.customer_id`,
      [...totals.params, snapshot],
    );
    const ids = new Set<string>();
    const before: Record<'r' | 'f', Cut[]> = { r: [], f: [] };
    const after: Record<'r' | 'f', Cut[]> = { r: [], f: [] };
    for (const x of movers) {
      const id = String(x['customer_id']);
      // ties are split by id as the database orders text; outside the basic plane JS compares differently
      if (/[\ud800-\udfff]/.test(id)) return undefined;
      ids.add(id);
      const known = x['old_f'] !== null && x['old_f'] !== undefined;
      if (known) {
        before.r.push([num(x['old_last_day']), id]);
        before.f.push([num(x['old_f']), id]);
      }
      after.r.push([num(x['last_day']), id]);
      after.f.push([num(x['f']) + (known ? num(x['old_f']) : 0), id]);
    }
    const n = inSnapshot - before.f.length + after.f.length;
    const cuts: { r: Cut[]; f: Cut[] } = { r: [], f: [] };
    for (const [dim, column] of [['r', 'last_day'], ['f', 'orders']] as const) {
      const below = before[dim].sort(compareCut);
      const above = after[dim].sort(compareCut);
      const order = new SnapshotOrder(this.db, snapshot, column, inSnapshot);
      for (const k of quintileStarts(n)) {
        const cut = await kthBuyer(k, order, below, above, ids);
        if (!cut) return undefined;
        cuts[dim].push(cut);
      }
    }
    return cuts;
  }

  /**
   * The customers in `segment` as of a date inside a month (where `midMonthCuts` applies): the
   * buyers then, kept where their (value, id) lies in the segment's score ranges, as comparisons
   * with the cuts, so no buyer is scored or stored in between. Undefined elsewhere.
   */
  private async segmentFromCuts(asOfEnd: string, segment: RfmSegment): Promise<{ sql: string; params: SqlParam[] } | undefined> {
    const past = await this.pastBuyers(asOfEnd, { lastDay: true });
    if (!past.merged) return undefined;
    const cuts = await this.midMonthCuts(asOfEnd);
    if (!cuts) return undefined;
    const inSegment = segmentCondition(segment, cuts);
    return { sql: `SELECT b.customer_id AS customer_id FROM (${past.sql}) b WHERE ${inSegment.sql}`, params: [...past.params, ...inSegment.params] };
  }

  /** source/channel/segment conditions on rows of `rfm_seg` aliased `alias` */
  private customerFilter(r: Resolved, alias: string): { joins: string; sql: string; params: SqlParam[] } {
    const sql: string[] = [];
    const params: SqlParam[] = [];
    if (r.segment) (sql.push(`AND ${alias}.segment = ?`), params.push(r.segment));
    if (r.source) (sql.push('AND pc.source = ?'), params.push(r.source));
    if (r.channel) (sql.push('AND pc.channel = ?'), params.push(r.channel));
    const joins = r.source || r.channel ? `JOIN stat_customers pc ON pc.customer_id = ${alias}.customer_id` : '';
    return { joins, sql: sql.join(' '), params };
  }

  /** conditions that narrow the customers (aliased `alias`) a figure counts */
  private async population(r: Resolved, alias: string): Promise<Population> {
    const where: string[] = [];
    const params: SqlParam[] = [];
    if (r.source) (where.push(`AND ${alias}.source = ?`), params.push(r.source));
    if (r.channel) (where.push(`AND ${alias}.channel = ?`), params.push(r.channel));
    let withSql = 'WITH noop AS (SELECT 1 AS one)';
    let withParams: SqlParam[] = [];
    if (r.segment && !(await this.isPast(r.asOfEnd ?? r.toEnd))) {
      where.push(`AND ${alias}.segment = ?`);
      params.push(r.segment);
    } else if (r.segment) {
      const members = await this.segmentFromCuts(r.asOfEnd ?? r.toEnd!, r.segment);
      if (members) {
        withSql = `WITH seg AS (${members.sql})`;
        withParams = members.params;
      } else {
        const rfm = await this.rfmCte(r.asOfEnd ?? r.toEnd);
        withSql = `WITH ${rfm.sql}, seg AS (SELECT customer_id FROM rfm_seg WHERE segment = ?)`;
        withParams = [...rfm.params, r.segment];
      }
      where.push(`AND ${alias}.customer_id IN (SELECT customer_id FROM seg)`);
    }
    return { with: withSql, withParams, where: where.join(' '), params, joins: where.length > 0 };
  }
}

interface Population {
  with: string;
  withParams: SqlParam[];
  where: string;
  params: SqlParam[];
  /** true when the figure must join stat_customers to apply the conditions */
  joins: boolean;
}

/** how many of `sorted` are below `x` */
function countBelow(sorted: readonly Cut[], x: Cut): number {
  return lowerBound(sorted, x, compareCut);
}

/** snapshot rows read around the first estimate of a cut's position, so the search rarely walks again */
const CUT_WINDOW = 256;

/**
 * One month end's buyers in (value, customer id) order, read by position along the snapshot's
 * index: every row read is remembered, and a position is reached from the nearest remembered row
 * before or after it (a row-value seek, then `OFFSET` the distance) instead of from the start, so
 * the four cuts of a dimension together walk the index about once.
 */
class SnapshotOrder {
  private readonly known = new Map<number, Cut>();
  /** the remembered positions, ascending */
  private readonly positions: number[] = [];

  constructor(
    private readonly db: ReadModelQueries,
    private readonly month: string,
    private readonly column: 'last_day' | 'orders',
    readonly size: number,
  ) {}

  async row(t: number): Promise<Cut> {
    if (!this.known.has(t)) await this.read(t, 1);
    const x = this.known.get(t);
    if (!x) throw new Error(`statistics: snapshot row ${t} of ${this.size} vanished while being read`);
    return x;
  }

  /** remembers rows t … t + count − 1 */
  async read(t: number, count: number): Promise<void> {
    const i = lowerBound(this.positions, t, byNumber);
    const before = i > 0 ? this.positions[i - 1]! : undefined;
    const after = this.positions[lowerBound(this.positions, t + count, byNumber)];
    const col = this.column;
    const fromStart = t;
    const fromBefore = before === undefined ? Infinity : t - before - 1;
    const fromAfter = after === undefined ? Infinity : after - t - count;
    let rows: Row[];
    if (fromAfter < Math.min(fromStart, fromBefore)) {
      const [v, id] = this.known.get(after!)!;
      rows = (
        await this.db.all<Row>(
          `SELECT ${col} AS v, customer_id FROM stat_rfm_months WHERE month = ? AND (${col}, customer_id) < (?, ?)
           ORDER BY ${col} DESC, customer_id DESC LIMIT ${count} OFFSET ${fromAfter}`,
          [this.month, v, id],
        )
      ).reverse();
    } else if (fromBefore < fromStart) {
      const [v, id] = this.known.get(before!)!;
      rows = await this.db.all<Row>(
        `SELECT ${col} AS v, customer_id FROM stat_rfm_months WHERE month = ? AND (${col}, customer_id) > (?, ?)
         ORDER BY ${col}, customer_id LIMIT ${count} OFFSET ${fromBefore}`,
        [this.month, v, id],
      );
    } else {
      rows = await this.db.all<Row>(
        `SELECT ${col} AS v, customer_id FROM stat_rfm_months WHERE month = ? ORDER BY ${col}, customer_id LIMIT ${count} OFFSET ${t}`,
        [this.month],
      );
    }
    rows.forEach((x, j) => {
      if (this.known.has(t + j)) return;
      this.known.set(t + j, [num(x['v']), String(x['customer_id'])]);
      this.positions.splice(lowerBound(this.positions, t + j, byNumber), 0, t + j);
    });
  }
}

/** the first index of `sorted` (ascending by `compare`) holding a value ≥ x */
function lowerBound<T>(sorted: readonly T[], x: T, compare: (a: T, b: T) => number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (compare(sorted[mid]!, x) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function byNumber(a: number, b: number): number {
  return a - b;
}

/**
 * The k-th (0-based) of the buyers M = snapshot rows without `moved` ∪ `above`, in (value, id)
 * order, where `order` reads the snapshot's rows by position, `below` holds the moved buyers'
 * snapshot positions and `above` every moved buyer's new position (both sorted). The number of M
 * rows under the snapshot's t-th row is t − (moved under it) + (new positions under it): rising
 * in t, so the last t with at most k under it is found by a secant search with a bisection
 * fallback, reading a window of rows around the first estimate at once; the k-th row is that
 * snapshot row or one of the new positions between it and the next.
 */
async function kthBuyer(
  k: number,
  order: SnapshotOrder,
  below: readonly Cut[],
  above: readonly Cut[],
  moved: ReadonlySet<string>,
): Promise<Cut | undefined> {
  const size = order.size;
  const row = (t: number): Promise<Cut> => order.row(t);
  const under = async (t: number): Promise<number> => {
    const x = await row(t);
    return t - countBelow(below, x) + countBelow(above, x);
  };
  const clamp = (t: number): number => Math.min(size - 1, Math.max(0, t));
  let t = clamp(k);
  const estimate = clamp(t + (k - (await under(t))));
  const from = Math.max(0, estimate - CUT_WINDOW);
  await order.read(from, Math.min(size, estimate + CUT_WINDOW + 1) - from);
  // the answer lies between the snapshot rows `lo` (at most k under it, or none: -1) and `hi` (more than k)
  let lo = -1;
  let hi = size;
  for (let step = 0; hi - lo > 1; step += 1) {
    const u = await under(t);
    if (u <= k) lo = t;
    else hi = t;
    if (hi - lo <= 1) break;
    // under(t) moves almost one for one with t: step by the difference first, then halve
    const guess = u <= k ? Math.max(t + 1, t + (k - u)) : Math.min(t - 1, t + (k - u));
    t = step < 8 && guess > lo && guess < hi ? guess : lo + ((hi - lo) >> 1);
  }
  // M rows from the snapshot row `lo` on, up to the next one: that row (unless it moved) and the moved buyers' new positions
  const start = lo >= 0 ? await row(lo) : undefined;
  const end = hi < size ? await row(hi) : undefined;
  let rank = lo >= 0 ? await under(lo) : 0;
  const candidates: Cut[] = [];
  if (start && !moved.has(start[1])) candidates.push(start);
  for (let i = start ? countBelow(above, start) : 0; i < above.length; i += 1) {
    const x = above[i]!;
    if (end && compareCut(x, end) >= 0) break;
    candidates.push(x);
  }
  candidates.sort(compareCut);
  for (const x of candidates) {
    if (rank === k) return x;
    rank += 1;
  }
  return undefined;
}

/**
 * `SEGMENT_CASE = segment` for rows `b` (columns last_day, f, customer_id) scored against `cuts`,
 * as comparisons of (value, id) with the cuts: a score is at least a when the (a−1)-th cut is at
 * or below the row, at most b when the b-th cut is above it. The first matching rule wins, and a
 * row no rule matches is 'lost', as in the CASE.
 */
function segmentCondition(segment: RfmSegment, cuts: { r: Cut[]; f: Cut[] }): { sql: string; params: SqlParam[] } {
  const params: SqlParam[] = [];
  const range = (column: string, list: readonly Cut[], [lo, hi]: [number, number]): string => {
    const terms: string[] = [];
    if (lo > 1) {
      const c = list[lo - 2];
      if (!c) return '1 = 0';
      terms.push(`(b.${column}, b.customer_id) >= (?, ?)`);
      params.push(c[0], c[1]);
    }
    const c = hi < 5 ? list[hi - 1] : undefined;
    if (c) {
      terms.push(`(b.${column}, b.customer_id) < (?, ?)`);
      params.push(c[0], c[1]);
    }
    return terms.length ? terms.join(' AND ') : '1 = 1';
  };
  const rule = (i: number): string => {
    const x = RFM_SEGMENT_RULES[i]!;
    return `(${range('last_day', cuts.r, x.r)} AND ${range('f', cuts.f, x.f)})`;
  };
  const any = (to: number): string => (to === 0 ? '1 = 0' : Array.from({ length: to }, (_x, i) => rule(i)).join(' OR '));
  const at = RFM_SEGMENT_RULES.findIndex((x) => x.segment === segment);
  // the SQL is written left to right in the order its parameters are pushed
  const own = rule(at);
  const earlier = any(at);
  let sql = `(${own} AND NOT (${earlier}))`;
  if (segment === 'lost') sql = `(${sql} OR NOT (${any(RFM_SEGMENT_RULES.length)}))`;
  return { sql, params };
}

function monthRange(r: Resolved, col: string): { sql: string; params: SqlParam[] } {
  const sql: string[] = [];
  const params: SqlParam[] = [];
  if (r.fromMonth) (sql.push(`AND ${col} >= ?`), params.push(r.fromMonth));
  if (r.toMonth) (sql.push(`AND ${col} <= ?`), params.push(r.toMonth));
  return { sql: sql.join(' '), params };
}

function num(v: unknown): number {
  if (v === null || v === undefined) return 0;
  return Number(v);
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function ratio(a: number, b: number): number | null {
  return b === 0 ? null : a / b;
}

export function monthDiff(from: string, to: string): number {
  const [fy, fm] = from.split('-').map(Number);
  const [ty, tm] = to.split('-').map(Number);
  return ((ty ?? 0) - (fy ?? 0)) * 12 + ((tm ?? 0) - (fm ?? 0));
}

/**
 * Months gathered into quarters or years (a period starts at its first month inside `from`/`to`).
 * Summing monthly rates, or dividing all of a year's churns by its first day's actives, overstates
 * churn wherever customers keep joining (the second gave rates over 1 on the demo data); the rate
 * compounds the monthly ones instead. A month without actives at its start has no rate and adds
 * nothing; a period none of whose months has one has no rate.
 */
function churnPeriods(months: readonly ChurnMonth[], per: 'quarter' | 'year'): ChurnPeriod[] {
  const keyOf = (month: string) => (per === 'year' ? month.slice(0, 4) : `${month.slice(0, 4)}-Q${Math.floor((Number(month.slice(5, 7)) - 1) / 3) + 1}`);
  const periods: (ChurnPeriod & { kept: number; rated: boolean })[] = [];
  for (const m of months) {
    let p = periods[periods.length - 1];
    if (p?.period !== keyOf(m.month)) {
      p = { period: keyOf(m.month), months: 0, activeAtStart: m.activeAtStart, churned: 0, rate: null, kept: 1, rated: false };
      periods.push(p);
    }
    p.months += 1;
    p.churned += m.churned;
    if (m.rate !== null) {
      p.kept *= 1 - Math.min(1, Math.max(0, m.rate));
      p.rated = true;
    }
  }
  return periods.map(({ kept, rated, ...p }) => ({ ...p, rate: rated ? 1 - kept : null }));
}
