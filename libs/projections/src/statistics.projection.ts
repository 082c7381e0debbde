import { utcMillisOf } from '@clientele/domain';
import type { StoredEvent } from '@clientele/event-store';
import { DEFAULT_RESIDENT_LIMIT } from './resident-limit';
import type { Projection, ReadModelQueries, ReadModelTransaction, SqlParam } from './read-model-store';
import {
  SEGMENT_CASE,
  compareCut,
  compareText,
  cutScore,
  ntileScores,
  quintileStarts,
  quintilesInMemory,
  rfmSegmentOf,
  snapshotPlusMonth,
  totalsBefore,
  type Cut,
} from './statistics.rfm';
import { replaceAll, upsertRows } from './sql-batch';

/**
 * The loyalty and retention read model: compact facts from which every statistic in
 * `statistics.queries.ts` is one cheap SQL query. Per batch it loads the customers the batch
 * touches, folds the events in memory and writes back only those rows plus additive deltas for the
 * aggregate tables, so memory stays flat however long the log is. A rebuild instance
 * (`forRebuild`) keeps its customers resident instead, bounded by the number of customers, and
 * scores them once at `flush` (see `RebuildState`).
 *
 * Times are stored as normalised ISO-8601 UTC text (sortable as text on both SQLite and PostgreSQL);
 * durations are precomputed in days so no dialect-specific date arithmetic is needed in queries.
 */

export const STATISTICS_TABLES = [
  'stat_customers',
  'stat_stage_history',
  'stat_orders',
  'stat_customer_months',
  'stat_sales',
  'stat_customer_sales',
  'stat_campaign_months',
  'stat_employees',
  'stat_employee_months',
  'stat_periods',
  'stat_cohorts',
  'stat_active_spans',
  'stat_churns',
  'stat_rfm_months',
  'stat_meta',
] as const;

const DDL = `
CREATE TABLE IF NOT EXISTS stat_customers (
  customer_id TEXT PRIMARY KEY,
  source TEXT NOT NULL,
  channel TEXT NOT NULL,
  campaign TEXT,
  registered_at TEXT,
  stage TEXT NOT NULL,
  stage_since TEXT,
  history_seq BIGINT NOT NULL,
  converted_at TEXT,
  repeat_at TEXT,
  advocate_at TEXT,
  churned_at TEXT,
  churn_reason TEXT,
  churn_count BIGINT NOT NULL,
  reactivated_count BIGINT NOT NULL,
  first_purchase_at TEXT,
  last_purchase_at TEXT,
  first_purchase_day DOUBLE PRECISION,
  last_purchase_day DOUBLE PRECISION,
  acquisition_month TEXT,
  orders BIGINT NOT NULL,
  revenue BIGINT NOT NULL,
  cost BIGINT NOT NULL,
  days_to_customer DOUBLE PRECISION,
  days_to_repeat DOUBLE PRECISION,
  days_to_advocate DOUBLE PRECISION,
  r_score BIGINT NOT NULL DEFAULT 0,
  f_score BIGINT NOT NULL DEFAULT 0,
  m_score BIGINT NOT NULL DEFAULT 0,
  segment TEXT
);
-- the present RFM segment of every buyer, kept by the projection: segment filters and figures read this index
CREATE INDEX IF NOT EXISTS stat_customers_segment ON stat_customers (segment, customer_id, stage, orders, revenue, cost, first_purchase_day, last_purchase_day, source, channel);
CREATE INDEX IF NOT EXISTS stat_customers_stage ON stat_customers (stage);
CREATE INDEX IF NOT EXISTS stat_customers_source ON stat_customers (source, channel, stage);
CREATE INDEX IF NOT EXISTS stat_customers_channel ON stat_customers (channel, stage);
CREATE INDEX IF NOT EXISTS stat_customers_registered ON stat_customers (registered_at);
CREATE INDEX IF NOT EXISTS stat_customers_acquisition ON stat_customers (acquisition_month);
CREATE INDEX IF NOT EXISTS stat_customers_revenue ON stat_customers (revenue, customer_id, orders);
-- covers the RFM base, so quintile scoring reads one index instead of 100,000 table rows
CREATE INDEX IF NOT EXISTS stat_customers_orders ON stat_customers (orders, customer_id, last_purchase_day, revenue, cost, last_purchase_at);
CREATE INDEX IF NOT EXISTS stat_customers_recency ON stat_customers (last_purchase_day, customer_id, orders);
CREATE TABLE IF NOT EXISTS stat_stage_history (
  customer_id TEXT NOT NULL,
  seq BIGINT NOT NULL,
  stage TEXT NOT NULL,
  from_at TEXT NOT NULL,
  to_at TEXT,
  reason TEXT,
  detail TEXT,
  PRIMARY KEY (customer_id, seq)
);
CREATE INDEX IF NOT EXISTS stat_stage_history_stage ON stat_stage_history (stage, from_at, to_at);
CREATE TABLE IF NOT EXISTS stat_orders (
  customer_id TEXT NOT NULL,
  order_id TEXT NOT NULL,
  at TEXT NOT NULL,
  at_day DOUBLE PRECISION NOT NULL,
  revenue BIGINT NOT NULL,
  cost BIGINT NOT NULL,
  PRIMARY KEY (customer_id, order_id)
);
-- covers figures as of a past date (folded from the orders before it)
CREATE INDEX IF NOT EXISTS stat_orders_cover ON stat_orders (customer_id, at, at_day, revenue, cost);
-- covers the orders of part of a month: a date inside a month and a refreshed snapshot add them to the previous month end
CREATE INDEX IF NOT EXISTS stat_orders_at ON stat_orders (at, customer_id, at_day, revenue, cost);
CREATE TABLE IF NOT EXISTS stat_customer_months (
  customer_id TEXT NOT NULL,
  month TEXT NOT NULL,
  orders BIGINT NOT NULL,
  revenue BIGINT NOT NULL,
  cost BIGINT NOT NULL,
  PRIMARY KEY (customer_id, month)
);
-- covers a period's per-customer sums (golden customers, segment profitability, value by segment)
CREATE INDEX IF NOT EXISTS stat_customer_months_month ON stat_customer_months (month, customer_id, orders, revenue, cost);
CREATE TABLE IF NOT EXISTS stat_sales (
  month TEXT NOT NULL,
  dim TEXT NOT NULL,
  key TEXT NOT NULL,
  source TEXT NOT NULL,
  channel TEXT NOT NULL,
  orders BIGINT NOT NULL,
  revenue BIGINT NOT NULL,
  cost BIGINT NOT NULL,
  PRIMARY KEY (dim, month, key, source, channel)
);
CREATE TABLE IF NOT EXISTS stat_customer_sales (
  customer_id TEXT NOT NULL,
  dim TEXT NOT NULL,
  key TEXT NOT NULL,
  month TEXT NOT NULL,
  orders BIGINT NOT NULL,
  revenue BIGINT NOT NULL,
  cost BIGINT NOT NULL,
  PRIMARY KEY (customer_id, dim, key, month)
)/*customer_sales_storage*/;
CREATE TABLE IF NOT EXISTS stat_campaign_months (
  campaign_id TEXT NOT NULL,
  month TEXT NOT NULL,
  spend BIGINT NOT NULL,
  revenue BIGINT NOT NULL,
  cost BIGINT NOT NULL,
  orders BIGINT NOT NULL,
  PRIMARY KEY (campaign_id, month)
);
-- one row per employment: a rehire after leaving is a new row, so the earlier departure still counts
CREATE TABLE IF NOT EXISTS stat_employees (
  employee_id TEXT NOT NULL,
  seq BIGINT NOT NULL,
  hired_at TEXT,
  left_at TEXT,
  PRIMARY KEY (employee_id, seq)
);
CREATE TABLE IF NOT EXISTS stat_employee_months (
  employee_id TEXT NOT NULL,
  month TEXT NOT NULL,
  feedback BIGINT NOT NULL,
  complaints BIGINT NOT NULL,
  PRIMARY KEY (employee_id, month)
);
CREATE TABLE IF NOT EXISTS stat_periods (
  kind TEXT NOT NULL,
  period TEXT NOT NULL,
  source TEXT NOT NULL,
  channel TEXT NOT NULL,
  active BIGINT NOT NULL,
  orders BIGINT NOT NULL,
  revenue BIGINT NOT NULL,
  cost BIGINT NOT NULL,
  PRIMARY KEY (kind, period, source, channel)
);
CREATE TABLE IF NOT EXISTS stat_cohorts (
  cohort TEXT NOT NULL,
  month TEXT NOT NULL,
  source TEXT NOT NULL,
  channel TEXT NOT NULL,
  active BIGINT NOT NULL,
  PRIMARY KEY (cohort, month, source, channel)
);
CREATE TABLE IF NOT EXISTS stat_active_spans (
  month_in TEXT NOT NULL,
  month_out TEXT NOT NULL,
  source TEXT NOT NULL,
  channel TEXT NOT NULL,
  n BIGINT NOT NULL,
  PRIMARY KEY (month_in, month_out, source, channel)
);
CREATE TABLE IF NOT EXISTS stat_churns (
  month TEXT NOT NULL,
  reason TEXT NOT NULL,
  detail TEXT NOT NULL,
  source TEXT NOT NULL,
  channel TEXT NOT NULL,
  n BIGINT NOT NULL,
  PRIMARY KEY (month, reason, detail, source, channel)
);
-- a funnel median is a walk to the middle of one of these; the stage date and the registration
-- date it is filtered on are in the index, so the walk never reads the table
CREATE INDEX IF NOT EXISTS stat_customers_to_customer ON stat_customers (days_to_customer, customer_id, converted_at, registered_at);
CREATE INDEX IF NOT EXISTS stat_customers_to_repeat ON stat_customers (days_to_repeat, customer_id, repeat_at, registered_at);
CREATE INDEX IF NOT EXISTS stat_customers_to_advocate ON stat_customers (days_to_advocate, customer_id, advocate_at, registered_at);
-- each buyer as of the end of every month the log has left behind (the first instant of the next
-- month is at or before the latest fact): what they had bought, their stage and their RFM scores
-- then, so a figure as of a month end reads one month's rows instead of folding every order
CREATE TABLE IF NOT EXISTS stat_rfm_months (
  month TEXT NOT NULL,
  customer_id TEXT NOT NULL,
  first_day DOUBLE PRECISION NOT NULL,
  last_day DOUBLE PRECISION NOT NULL,
  last_at TEXT NOT NULL,
  orders BIGINT NOT NULL,
  revenue BIGINT NOT NULL,
  cost BIGINT NOT NULL,
  stage TEXT NOT NULL,
  r_score BIGINT NOT NULL,
  f_score BIGINT NOT NULL,
  m_score BIGINT NOT NULL,
  segment TEXT NOT NULL,
  PRIMARY KEY (month, customer_id)
)/*rfm_months_storage*/;
CREATE INDEX IF NOT EXISTS stat_rfm_months_segment ON stat_rfm_months (month, segment, customer_id);
-- a month end's buyers in R and F order: the quintile cuts of a date inside the next month are walks along these
CREATE INDEX IF NOT EXISTS stat_rfm_months_recency ON stat_rfm_months (month, last_day, customer_id);
CREATE INDEX IF NOT EXISTS stat_rfm_months_orders ON stat_rfm_months (month, orders, customer_id);
CREATE TABLE IF NOT EXISTS stat_meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
`;

export const UNKNOWN_KEY = 'unknown';
export const DAY_MS = 86_400_000;
const ACTIVE: ReadonlySet<string> = new Set(['customer', 'repeat_buyer', 'advocate']);

type Stage = 'prospect' | 'customer' | 'repeat_buyer' | 'advocate' | 'churned';

interface CustomerRow {
  customer_id: string;
  source: string;
  channel: string;
  campaign: string | null;
  registered_at: string | null;
  stage: Stage;
  stage_since: string | null;
  history_seq: number;
  converted_at: string | null;
  repeat_at: string | null;
  advocate_at: string | null;
  churned_at: string | null;
  churn_reason: string | null;
  churn_count: number;
  reactivated_count: number;
  first_purchase_at: string | null;
  last_purchase_at: string | null;
  first_purchase_day: number | null;
  last_purchase_day: number | null;
  acquisition_month: string | null;
  orders: number;
  revenue: number;
  cost: number;
  days_to_customer: number | null;
  days_to_repeat: number | null;
  days_to_advocate: number | null;
}

const CUSTOMER_COLUMNS: readonly (keyof CustomerRow)[] = [
  'customer_id',
  'source',
  'channel',
  'campaign',
  'registered_at',
  'stage',
  'stage_since',
  'history_seq',
  'converted_at',
  'repeat_at',
  'advocate_at',
  'churned_at',
  'churn_reason',
  'churn_count',
  'reactivated_count',
  'first_purchase_at',
  'last_purchase_at',
  'first_purchase_day',
  'last_purchase_day',
  'acquisition_month',
  'orders',
  'revenue',
  'cost',
  'days_to_customer',
  'days_to_repeat',
  'days_to_advocate',
];

const SCORED_CUSTOMER_COLUMNS: readonly string[] = [...CUSTOMER_COLUMNS, 'r_score', 'f_score', 'm_score', 'segment'];

const RFM_MONTH_COLUMNS = [
  'month', 'customer_id', 'first_day', 'last_day', 'last_at', 'orders', 'revenue', 'cost', 'stage', 'r_score', 'f_score', 'm_score', 'segment',
] as const;

/**
 * (customer, period) pairs known to hold a purchase, as a list of periods per customer: a
 * customer has a few, and looking up the customer id costs less than building and hashing a
 * joined key per purchase, which was most of the time of this check.
 */
class KnownPeriods {
  private readonly byCustomer = new Map<string, string[]>();
  /** pairs held */
  size = 0;
  /** adds the pair; false when it was there already */
  add(customerId: string, period: string): boolean {
    const periods = this.byCustomer.get(customerId);
    if (!periods) {
      this.byCustomer.set(customerId, [period]);
    } else {
      if (periods.includes(period)) return false;
      periods.push(period);
    }
    this.size += 1;
    return true;
  }
  clear(): void {
    this.byCustomer.clear();
    this.size = 0;
  }
}

/** Additive deltas for one aggregate row, keyed by its primary key. */
class Deltas {
  /**
   * Nested maps, one level per key part, rather than one map on a joined or JSON key: building and
   * hashing a new key string for every add was the biggest single cost of folding purchases.
   */
  private readonly root = new Map<SqlParam, unknown>();
  private readonly rows: { key: SqlParam[]; values: number[] }[] = [];
  add(key: SqlParam[], values: number[]): void {
    let level = this.root;
    const last = key.length - 1;
    for (let i = 0; i < last; i += 1) {
      let next = level.get(key[i] as SqlParam) as Map<SqlParam, unknown> | undefined;
      if (!next) {
        next = new Map();
        level.set(key[i] as SqlParam, next);
      }
      level = next;
    }
    const row = level.get(key[last] as SqlParam) as { key: SqlParam[]; values: number[] } | undefined;
    if (!row) {
      const created = { key, values: [...values] };
      level.set(key[last] as SqlParam, created);
      this.rows.push(created);
      return;
    }
    for (let i = 0; i < values.length; i += 1) row.values[i] = (row.values[i] ?? 0) + (values[i] as number);
  }
  /** many rows per statement: per-row statements were most of a rebuild's write time */
  async flush(tx: ReadModelTransaction, table: string, keyCols: string[], valueCols: string[]): Promise<void> {
    if (this.rows.length === 0) return;
    const rows: SqlParam[][] = [];
    for (const { key, values } of this.rows) rows.push([...key, ...values]);
    await upsertRows(tx, table, [...keyCols, ...valueCols], keyCols,
      `DO UPDATE SET ${valueCols.map((c) => `${c} = ${table}.${c} + excluded.${c}`).join(', ')}`, rows);
  }
}

/** One employment: from a hire to a departure (or still open). */
interface Employment {
  seq: number;
  hired_at: string | null;
  left_at: string | null;
  /** changed by this batch, so written back */
  changed: boolean;
}

interface HistoryRow {
  customerId: string;
  seq: number;
  stage: Stage;
  at: string;
  toAt: string | null;
  reason: string | null;
  detail: string | null;
}

interface BatchState {
  customers: Map<string, CustomerRow>;
  /** stage-history rows to insert, and the previous rows whose interval they close */
  history: Map<string, HistoryRow>;
  closeHistory: { customerId: string; seq: number; at: string }[];
  orders: SqlParam[][];
  orderIds: Set<string>;
  /** orders of this batch that earlier batches stored already */
  storedOrders: Set<string>;
  customerMonths: Deltas;
  /** (customer, month) and (customer, year) keys known to have a purchase already */
  knownPeriods: KnownPeriods;
  /** months first bought in during this batch, per customer (for a cohort move) */
  newMonths: Map<string, string[]>;
  periods: Deltas;
  cohorts: Deltas;
  spans: Deltas;
  churns: Deltas;
  sales: Deltas;
  customerSales: Deltas;
  campaignMonths: Deltas;
  employeeMonths: Deltas;
  /** per employee of the batch: their latest stored employment and those the batch opened, the latest last */
  employees: Map<string, Employment[]>;
  latestAt: string | null;
  /** accepted orders and stage transitions so far: tells whether a fact changed what a snapshot holds */
  changes: number;
}

/**
 * What a rebuild instance keeps between batches. Customer rows stay resident instead of being read
 * back per batch, and are written when something reads them from the store: before a month-end
 * snapshot ranked in SQL, when the resident rows outgrow the limit, and at `flush`. Between those
 * points the store's `stat_customers` runs behind the checkpoint, which a rebuild may do.
 */
interface RebuildState {
  /** (customer, period) keys known to hold a purchase, instead of queried again */
  periods: KnownPeriods;
  /**
   * `periods` holds every key with a stored purchase (the store held none when the rebuild began,
   * and none were dropped since): a key it lacks has none, without asking the store
   */
  periodsComplete: boolean | undefined;
  /** every customer this instance folded, written or not */
  customers: Map<string, CustomerRow>;
  /** resident customers changed since they were last written */
  unwritten: Map<string, CustomerRow>;
  /** the store held no customers when the rebuild began, and none were dropped since: nothing to read back */
  storeHoldsOnlyResident: boolean | undefined;
  /** a run was folded since the present scores were last computed */
  scoresDue: boolean;
}

export class StatisticsProjection implements Projection {
  readonly name = 'statistics';
  /**
   * 3: present RFM scores kept on `stat_customers`, month-end snapshots of every buyer (`stat_rfm_months`), wider funnel indexes;
   * 4: one `stat_employees` row per employment, so a rehire no longer erases the departure before it
   */
  readonly version = 4;
  readonly tables = STATISTICS_TABLES;

  /**
   * Only in a rebuild instance, which nobody reads before `flush` (a failed rebuild discards it):
   * what it folded is kept across batches, bounded by the number of customers (`residentLimit`),
   * never by events, and the present RFM scores are computed once, by `flush`, instead of after
   * every run of events. See `RebuildState`.
   */
  private readonly rebuild: RebuildState | undefined;
  private readonly residentLimit: number;

  constructor(options: { rebuild?: boolean; residentLimit?: number } = {}) {
    this.rebuild = options.rebuild
      ? { periods: new KnownPeriods(), periodsComplete: undefined, customers: new Map(), unwritten: new Map(), storeHoldsOnlyResident: undefined, scoresDue: false }
      : undefined;
    this.residentLimit = options.residentLimit ?? DEFAULT_RESIDENT_LIMIT;
  }

  forRebuild(): StatisticsProjection {
    return new StatisticsProjection({ rebuild: true, residentLimit: this.residentLimit });
  }

  async migrate(tx: ReadModelTransaction): Promise<void> {
    // SQLite keeps a WITHOUT ROWID table in primary-key order, so a segment's per-customer sales
    // are read in place instead of one table lookup per row (PostgreSQL has no such clause)
    const withoutRowid = tx.dialect === 'sqlite' ? ' WITHOUT ROWID' : '';
    await tx.exec(DDL.replace('/*customer_sales_storage*/', withoutRowid).replace('/*rfm_months_storage*/', withoutRowid));
  }

  /**
   * Folds the batch in runs that stay inside one business month. When a fact opens a later month,
   * every buyer's state is exactly the state at the end of the months left behind (no stored fact
   * is later than the latest one), so those month ends are snapshotted from `stat_customers`.
   *
   * A purchase or stage change dated in a month already snapshotted (a backfill, or a log imported
   * customer by customer) makes the snapshots from its month on stale: `stat_meta.rfm_stale_from`
   * records the first such month and queries do not use snapshots from it on. Folding never
   * recomputes them (on an import that is all backfill that would cost a recomputation per batch);
   * `refreshSnapshots` does, one month per call, when the projector has caught up with the log.
   * Marks and snapshots written here happen at points the log order fixes, so until a refresh the
   * tables are the same whatever the batches were, and after a full refresh they are the same
   * whenever it ran.
   */
  async apply(events: readonly StoredEvent[], tx: ReadModelTransaction): Promise<void> {
    if (events.length === 0) return;
    const stored = await tx.get<{ value: unknown }>(`SELECT value FROM stat_meta WHERE key = 'latest_at'`);
    let latest = stored ? String(stored.value) : undefined;
    const staleRow = await tx.get<{ value: unknown }>(`SELECT value FROM stat_meta WHERE key = 'rfm_stale_from'`);
    let staleFrom = staleRow ? String(staleRow.value) : undefined;
    const storedStale = staleFrom;
    let start = 0;
    const late = (month: string | undefined): void => {
      if (month && (!staleFrom || month < staleFrom)) staleFrom = month;
    };
    for (let i = 0; i < events.length; i += 1) {
      const at = businessTime(events[i]!);
      if (!at) continue;
      const month = at.slice(0, 7);
      if (latest && month > latest.slice(0, 7)) {
        late(await this.applyRun(events.slice(start, i), latest.slice(0, 7), tx));
        start = i;
        // exact even while earlier months are stale: nothing stored is later than the latest fact
        for (let m = latest.slice(0, 7); m < month; m = nextMonth(m)) await this.snapshotFromCustomers(m, tx);
      }
      if (!latest || at > latest) latest = at;
    }
    if (latest) late(await this.applyRun(events.slice(start), latest.slice(0, 7), tx));
    if (staleFrom !== storedStale) {
      if (staleFrom)
        await tx.run(`INSERT INTO stat_meta (key, value) VALUES ('rfm_stale_from', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, [
          staleFrom,
        ]);
      else await tx.run(`DELETE FROM stat_meta WHERE key = 'rfm_stale_from'`);
    }
  }

  /**
   * The buyers' rows as they stand, scores included (kept current by `rescore`). A rebuild instance
   * keeps no present scores until `flush`, so it ranks the buyers here instead: the same NTILE(5)
   * over (value, customer id) the present scores hold. While it holds every customer it ranks
   * them in memory and writes the snapshot rows directly (its customer rows then wait for
   * `flush`); otherwise it writes its customers and ranks them in SQL, with the quintiles a
   * refresh uses.
   */
  private async snapshotFromCustomers(month: string, tx: ReadModelTransaction): Promise<void> {
    if (this.ranksInMemory(tx)) {
      await this.snapshotFromResident(month, (this.rebuild as RebuildState).customers, tx);
      return;
    }
    if (this.rebuild) {
      await this.writeResident(tx);
      await this.snapshot(
        month,
        `SELECT customer_id, first_purchase_day AS first_day, last_purchase_day AS last_day, last_purchase_at AS last_at,
          orders AS f, revenue AS m, cost, stage FROM stat_customers WHERE orders > 0`,
        [],
        tx,
      );
      return;
    }
    await tx.run(
      `INSERT INTO stat_rfm_months (month, customer_id, first_day, last_day, last_at, orders, revenue, cost, stage, r_score, f_score, m_score, segment)
       SELECT ?, customer_id, first_purchase_day, last_purchase_day, last_purchase_at, orders, revenue, cost, stage, r_score, f_score, m_score, segment
       FROM stat_customers WHERE orders > 0`,
      [month],
    );
  }

  /**
   * One step of bringing stale month-end snapshots up to date: recomputes the first stale month
   * and moves `rfm_stale_from` past it (or removes it after the last month the log has left
   * behind). Answers true while stale months remain. Each call is meant to be its own transaction,
   * so a long refresh holds the read model's write lock one month at a time and a crash loses at
   * most the month in progress: its rows and the mark commit together or not at all.
   *
   * The rows are a function of the stored orders and stage history only, the same as a snapshot
   * taken when the log left that month in business-time order.
   */
  async refreshSnapshots(tx: ReadModelTransaction): Promise<boolean> {
    const stale = await tx.get<{ value: unknown }>(`SELECT value FROM stat_meta WHERE key = 'rfm_stale_from'`);
    if (!stale) return false;
    const latest = await tx.get<{ value: unknown }>(`SELECT value FROM stat_meta WHERE key = 'latest_at'`);
    const month = String(stale.value);
    const open = latest ? String(latest.value).slice(0, 7) : month;
    if (month < open) await this.snapshotFromOrders(month, tx);
    const next = nextMonth(month);
    if (month < open && next < open) {
      await tx.run(`UPDATE stat_meta SET value = ? WHERE key = 'rfm_stale_from'`, [next]);
      return true;
    }
    await tx.run(`DELETE FROM stat_meta WHERE key = 'rfm_stale_from'`);
    return false;
  }

  /**
   * A rebuild instance ranks in memory while it holds every customer, and only on SQLite: ids
   * are compared as SQLite compares text (by code point), which is PostgreSQL's order only under
   * the `C` collation, so on PostgreSQL the database ranks them, as the live instance does.
   */
  private ranksInMemory(tx: ReadModelTransaction): boolean {
    return this.rebuild?.storeHoldsOnlyResident === true && tx.dialect === 'sqlite';
  }

  private async snapshotFromResident(month: string, customers: Map<string, CustomerRow>, tx: ReadModelTransaction): Promise<void> {
    const { buyers, scores } = rankInMemory(customers.values());
    const rows: SqlParam[][] = buyers.map((c, i) => {
      const [rs, fs, ms] = [scores.last_purchase_day[i] as number, scores.orders[i] as number, scores.revenue[i] as number];
      return [month, c.customer_id, c.first_purchase_day, c.last_purchase_day, c.last_purchase_at, c.orders, c.revenue, c.cost, c.stage, rs, fs, ms, rfmSegmentOf(rs, fs)];
    });
    // a month is left behind once, so no row is there yet
    await upsertRows(tx, 'stat_rfm_months', RFM_MONTH_COLUMNS, ['month', 'customer_id'], 'DO NOTHING', rows);
  }

  /**
   * Only on a rebuild instance: writes the customer rows it still holds, then scores every buyer
   * once (what the live instance keeps current run by run), so the store is what a live fold
   * writes before the projector's settle steps, swap or digest read it.
   */
  async flush(tx: ReadModelTransaction): Promise<void> {
    const rebuild = this.rebuild;
    if (!rebuild) return;
    if (rebuild.scoresDue && this.ranksInMemory(tx)) {
      rebuild.scoresDue = false;
      await this.writeScoredResident(rebuild, tx);
      return;
    }
    await this.writeResident(tx);
    if (!rebuild.scoresDue) return;
    rebuild.scoresDue = false;
    await this.rescore([], tx, true);
  }

  /**
   * Every customer of a rebuild instance that holds them all, written with the scores ranked in
   * memory (what `rescore` would set) and the cuts it would store: no cut walks and no UPDATEs.
   */
  private async writeScoredResident(rebuild: RebuildState, tx: ReadModelTransaction): Promise<void> {
    const { buyers, scores, cuts } = rankInMemory(rebuild.customers.values());
    const scored = new Map<CustomerRow, SqlParam[]>();
    buyers.forEach((c, i) => {
      const [r, f, m] = [scores.last_purchase_day[i] as number, scores.orders[i] as number, scores.revenue[i] as number];
      scored.set(c, [r, f, m, rfmSegmentOf(r, f)]);
    });
    const rows: SqlParam[][] = [];
    for (const c of rebuild.customers.values()) rows.push([...CUSTOMER_COLUMNS.map((col) => c[col]), ...(scored.get(c) ?? [0, 0, 0, null])]);
    rebuild.unwritten.clear();
    await upsertRows(tx, 'stat_customers', SCORED_CUSTOMER_COLUMNS, ['customer_id'], replaceAll(SCORED_CUSTOMER_COLUMNS, ['customer_id']), rows);
    await storeCuts(tx, cuts);
  }

  /** a rebuild instance's unwritten customer rows, whole (the store being rebuilt builds its secondary indexes after the load) */
  private async writeResident(tx: ReadModelTransaction): Promise<void> {
    if (!this.rebuild || this.rebuild.unwritten.size === 0) return;
    const rows = [...this.rebuild.unwritten.values()];
    this.rebuild.unwritten.clear();
    await writeCustomers(rows, tx);
  }

  /** `refreshSnapshots` for the projector: work deferred until the read model has caught up */
  settle(tx: ReadModelTransaction): Promise<boolean> {
    return this.refreshSnapshots(tx);
  }

  /** true while some month-end snapshot is stale */
  async unsettled(store: ReadModelQueries): Promise<boolean> {
    return (await store.get(`SELECT value FROM stat_meta WHERE key = 'rfm_stale_from'`)) !== undefined;
  }

  /**
   * A month's snapshot computed from the stored facts. The previous month end's snapshot, when it
   * has rows, is exact (only months from `rfm_stale_from` on are stale), so the month is that
   * snapshot plus the month's orders (found through the buyers of the month) instead of a fold of
   * every order before its end; the stage is read from the history as of the month end either way.
   */
  private async snapshotFromOrders(month: string, tx: ReadModelTransaction): Promise<void> {
    const end = `${nextMonth(month)}-01T00:00:00.000Z`;
    const previous = previousMonth(month);
    await tx.run('DELETE FROM stat_rfm_months WHERE month = ?', [month]);
    const stage = `COALESCE((SELECT h.stage FROM stat_stage_history h WHERE h.customer_id = b.customer_id AND h.from_at < ?
           AND (h.to_at IS NULL OR h.to_at >= ?) ORDER BY h.seq DESC LIMIT 1), 'prospect') AS stage`;
    const hasPrevious = await tx.get('SELECT 1 AS one FROM stat_rfm_months WHERE month = ? LIMIT 1', [previous]);
    const totals = hasPrevious
      ? snapshotPlusMonth(previous, month, end)
      : totalsBefore(end, { firstDay: true, lastDay: true, lastAt: true, money: true });
    await this.snapshot(month, `SELECT b.*, ${stage} FROM (${totals.sql}) b`, [end, end, ...totals.params], tx);
  }

  private async snapshot(month: string, base: string, params: SqlParam[], tx: ReadModelTransaction): Promise<void> {
    await tx.run(
      `INSERT INTO stat_rfm_months (month, customer_id, first_day, last_day, last_at, orders, revenue, cost, stage, r_score, f_score, m_score, segment)
       SELECT ?, customer_id, first_day, last_day, last_at, f, m, cost, stage, r_score, f_score, m_score, ${SEGMENT_CASE}
       FROM (${ntileScores(base)}) s`,
      [month, ...params],
    );
  }

  /**
   * Folds events no later than the month `month`; answers the first earlier month a fact changed
   * orders or stages in (those month ends may already be snapshotted), if any.
   */
  private async applyRun(events: readonly StoredEvent[], month: string, tx: ReadModelTransaction): Promise<string | undefined> {
    if (events.length === 0) return undefined;
    const state: BatchState = {
      customers: new Map(),
      history: new Map(),
      closeHistory: [],
      orders: [],
      orderIds: new Set(),
      storedOrders: new Set(),
      customerMonths: new Deltas(),
      knownPeriods: this.rebuild?.periods ?? new KnownPeriods(),
      newMonths: new Map(),
      periods: new Deltas(),
      cohorts: new Deltas(),
      spans: new Deltas(),
      churns: new Deltas(),
      sales: new Deltas(),
      customerSales: new Deltas(),
      campaignMonths: new Deltas(),
      employeeMonths: new Deltas(),
      employees: new Map(),
      latestAt: null,
      changes: 0,
    };
    let lateFrom: string | undefined;
    await this.load(events, state, tx);
    for (const event of events) {
      const at = businessTime(event);
      if (!at) continue; // a fact without a usable business time cannot be placed in any period
      if (!state.latestAt || at > state.latestAt) state.latestAt = at;
      const before = state.changes;
      await this.fold(event, at, state, tx);
      if (state.changes !== before && at.slice(0, 7) < month && (!lateFrom || at.slice(0, 7) < lateFrom)) lateFrom = at.slice(0, 7);
    }
    await this.write(state, tx);
    if (this.rebuild) this.rebuild.scoresDue = true;
    else
      await this.rescore(
        [...state.customers.values()].filter((c) => c.orders > 0).map((c) => c.customer_id),
        tx,
      );
    return lateFrom;
  }

  /**
   * Keeps every buyer's present R, F, M quintile scores and segment equal to what NTILE(5) over
   * all buyers ordered by (value, customer id) gives. A score is 1 + the number of bucket starts
   * (cuts) at or below the customer's (value, id); cuts are index walks. Between two runs only the
   * customers the run touched and those lying between a cut's old and new position can change
   * score, so only those rows are rewritten: a few thousand per run instead of every buyer.
   * `full` rescores every buyer whatever the stored cuts (a rebuild instance's `flush`).
   */
  private async rescore(touched: string[], tx: ReadModelTransaction, full = false): Promise<void> {
    const storedCuts = await tx.get<{ value: unknown }>(`SELECT value FROM stat_meta WHERE key = 'rfm_cuts'`);
    const before = storedCuts ? (JSON.parse(String(storedCuts.value)) as RfmCuts) : undefined;
    const after = await rfmCuts(tx);
    const score = (dim: RfmDimension): { sql: string; params: SqlParam[] } => cutScore(dim, after[dim], 'customer_id');
    const r = score('last_purchase_day');
    const f = score('orders');
    const m = score('revenue');
    const update = async (where: string, params: SqlParam[]): Promise<void> => {
      await tx.run(`UPDATE stat_customers SET r_score = ${r.sql}, f_score = ${f.sql}, m_score = ${m.sql} WHERE orders > 0 AND ${where}`, [
        ...r.params,
        ...f.params,
        ...m.params,
        ...params,
      ]);
      await tx.run(`UPDATE stat_customers SET segment = ${SEGMENT_CASE} WHERE orders > 0 AND ${where}`, params);
    };
    if (!before || full) {
      await update('1 = 1', []);
    } else {
      for (const ids of chunks(touched, 500)) await update(`customer_id IN (${ids.map(() => '?').join(', ')})`, ids);
      for (const dim of RFM_DIMENSIONS) {
        for (let b = 0; b < 4; b += 1) {
          const [lo, hi] = cutRange(before[dim][b], after[dim][b]);
          if (!lo) continue;
          const where = [`(${dim} > ? OR (${dim} = ? AND customer_id >= ?))`];
          const params: SqlParam[] = [lo[0], lo[0], lo[1]];
          if (hi) (where.push(`(${dim} < ? OR (${dim} = ? AND customer_id < ?))`), params.push(hi[0], hi[0], hi[1]));
          await update(where.join(' AND '), params);
        }
      }
    }
    await storeCuts(tx, after);
  }

  private async load(events: readonly StoredEvent[], state: BatchState, tx: ReadModelTransaction): Promise<void> {
    const customerIds = new Set<string>();
    const employeeIds = new Set<string>();
    for (const e of events) {
      const id = str(e.data['customerId']);
      if (id) customerIds.add(id);
      if (e.type === 'EmployeeHired' || e.type === 'EmployeeLeft') {
        const emp = str(e.data['employeeId']);
        if (emp) employeeIds.add(emp);
      }
    }
    // which of the batch's orders are stored already: one query per 200 instead of one per purchase
    const orders: string[] = [];
    for (const e of events) {
      if (e.type !== 'PurchaseRecorded') continue;
      const customerId = str(e.data['customerId']);
      const orderId = str(e.data['orderId']);
      if (customerId && orderId) orders.push(customerId, orderId);
    }
    for (const pairs of chunks(orders, 400)) {
      const rows = await tx.all<{ customer_id: string; order_id: string }>(
        `SELECT customer_id, order_id FROM stat_orders WHERE (customer_id, order_id) IN (VALUES ${new Array<string>(pairs.length / 2).fill('(?, ?)').join(', ')})`,
        pairs,
      );
      for (const o of rows) state.storedOrders.add(`${o.customer_id}\u0000${o.order_id}`);
    }
    const resident = this.rebuild;
    if (resident && resident.storeHoldsOnlyResident === undefined) {
      resident.storeHoldsOnlyResident = (await tx.get('SELECT customer_id FROM stat_customers LIMIT 1')) === undefined;
      resident.periodsComplete = (await tx.get('SELECT customer_id FROM stat_customer_months LIMIT 1')) === undefined;
    }
    const toRead: string[] = [];
    for (const id of customerIds) {
      const row = resident?.customers.get(id);
      if (row) state.customers.set(id, row);
      else if (resident?.storeHoldsOnlyResident !== true) toRead.push(id);
    }
    for (const ids of chunks(toRead, 500)) {
      const rows = await tx.all<CustomerRow>(
        `SELECT * FROM stat_customers WHERE customer_id IN (${ids.map(() => '?').join(', ')})`,
        ids,
      );
      for (const r of rows) state.customers.set(r.customer_id, normaliseRow(r));
    }
    for (const ids of chunks([...employeeIds], 500)) {
      // each employee's latest employment: the one a hire or a departure of this batch follows
      const rows = await tx.all<{ employee_id: string; seq: number | string; hired_at: string | null; left_at: string | null }>(
        `SELECT e.employee_id, e.seq, e.hired_at, e.left_at FROM stat_employees e
         WHERE e.employee_id IN (${ids.map(() => '?').join(', ')})
           AND e.seq = (SELECT MAX(l.seq) FROM stat_employees l WHERE l.employee_id = e.employee_id)`,
        ids,
      );
      for (const r of rows) state.employees.set(r.employee_id, [{ seq: Number(r.seq), hired_at: r.hired_at, left_at: r.left_at, changed: false }]);
    }
  }

  private customer(state: BatchState, customerId: string, at: string): CustomerRow {
    let row = state.customers.get(customerId);
    if (!row) {
      // a fact for a customer never registered here: keep it, as an implicit prospect from an unknown source
      row = emptyCustomer(customerId);
      state.customers.set(customerId, row);
      transition(state, row, 'prospect', at, null, null);
    }
    return row;
  }

  private async fold(event: StoredEvent, at: string, state: BatchState, tx: ReadModelTransaction): Promise<void> {
    const d = event.data;
    const customerId = str(d['customerId']);
    switch (event.type) {
      case 'ProspectRegistered': {
        if (!customerId) return;
        let row = state.customers.get(customerId);
        if (row?.registered_at) return; // registered once; a repeat is not a new prospect
        if (!row) {
          row = emptyCustomer(customerId);
          state.customers.set(customerId, row);
          transition(state, row, 'prospect', at, null, null);
        }
        row.registered_at = at;
        row.source = str(d['source']) ?? UNKNOWN_KEY;
        row.channel = str(d['channel']) ?? UNKNOWN_KEY;
        row.campaign = str(d['campaign']) ?? null;
        return;
      }
      case 'PurchaseRecorded': {
        const orderId = str(d['orderId']);
        if (!customerId || !orderId) return;
        const total = money(d['totalMinor']);
        const cost = money(d['costMinor']);
        if (total === undefined || cost === undefined) return;
        const key = `${customerId}\u0000${orderId}`;
        if (state.orderIds.has(key)) return;
        if (state.storedOrders.has(key)) return; // an order is recorded once: a replay is not a second purchase
        state.orderIds.add(key);
        const row = this.customer(state, customerId, at);
        const month = at.slice(0, 7);
        const day = Date.parse(at) / DAY_MS;
        state.orders.push([customerId, orderId, at, day, total, cost]);
        state.changes += 1;
        row.orders += 1;
        row.revenue += total;
        row.cost += cost;
        if (!row.first_purchase_at || at < row.first_purchase_at) {
          const previous = row.acquisition_month;
          row.first_purchase_at = at;
          row.first_purchase_day = day;
          row.acquisition_month = month;
          // a backfilled earlier first purchase moves the customer to an earlier cohort
          if (previous && previous !== month) await this.moveCohort(row, previous, month, state, tx);
        }
        const newMonth = this.knownFirstTime(state, customerId, month) ?? (await this.storedFirstTime(tx, customerId, month));
        const year = month.slice(0, 4);
        const newYear = this.knownFirstTime(state, customerId, year) ?? (await this.storedFirstTime(tx, customerId, year));
        state.periods.add(['month', month, row.source, row.channel], [newMonth ? 1 : 0, 1, total, cost]);
        state.periods.add(['year', month.slice(0, 4), row.source, row.channel], [newYear ? 1 : 0, 1, total, cost]);
        if (newMonth) {
          state.cohorts.add([row.acquisition_month ?? month, month, row.source, row.channel], [1]);
          state.newMonths.set(customerId, [...(state.newMonths.get(customerId) ?? []), month]);
        }
        if (!row.last_purchase_at || at > row.last_purchase_at) {
          row.last_purchase_at = at;
          row.last_purchase_day = day;
        }
        state.customerMonths.add([customerId, month], [1, total, cost]);
        const channel = str(d['channel']) ?? UNKNOWN_KEY;
        const location = str(d['location']) ?? UNKNOWN_KEY;
        const dims: [string, string, number, number][] = [
          ['channel', channel, total, cost],
          ['location', location, total, cost],
        ];
        const categories = new Map<string, [number, number]>();
        for (const line of Array.isArray(d['lines']) ? d['lines'] : []) {
          if (!line || typeof line !== 'object' || Array.isArray(line)) continue;
          const q = money(line['quantity']);
          const p = money(line['unitPriceMinor']);
          const c = money(line['unitCostMinor']);
          if (q === undefined || p === undefined || c === undefined) continue;
          const cat = str(line['category']) ?? UNKNOWN_KEY;
          const acc = categories.get(cat) ?? [0, 0];
          categories.set(cat, [acc[0] + q * p, acc[1] + q * c]);
        }
        for (const [cat, [r, c]] of categories) dims.push(['category', cat, r, c]);
        for (const [dim, k, r, c] of dims) {
          state.sales.add([dim, month, k, row.source, row.channel], [1, r, c]);
          state.customerSales.add([customerId, dim, k, month], [1, r, c]);
        }
        const campaign = str(d['campaign']);
        if (campaign) state.campaignMonths.add([campaign, month], [0, total, cost, 1]);
        return;
      }
      case 'CustomerConverted': {
        if (!customerId) return;
        const row = this.customer(state, customerId, at);
        if (!row.converted_at) {
          row.converted_at = at;
          row.days_to_customer = days(row.registered_at, at);
        }
        transition(state, row, 'customer', at, null, null);
        return;
      }
      case 'RepeatBuyerQualified': {
        if (!customerId) return;
        const row = this.customer(state, customerId, at);
        if (!row.repeat_at) {
          row.repeat_at = at;
          row.days_to_repeat = days(row.converted_at, at);
        }
        transition(state, row, 'repeat_buyer', at, null, null);
        return;
      }
      case 'AdvocateRecognized': {
        if (!customerId) return;
        const row = this.customer(state, customerId, at);
        if (!row.advocate_at) {
          row.advocate_at = at;
          // measured from the repeat stage only when the customer passed through it
          row.days_to_advocate = row.repeat_at ? days(row.repeat_at, at) : null;
        }
        transition(state, row, 'advocate', at, str(d['reason']) ?? null, null);
        return;
      }
      case 'CustomerChurned': {
        if (!customerId) return;
        const row = this.customer(state, customerId, at);
        const reason = str(d['reason']) ?? UNKNOWN_KEY;
        row.churned_at = at;
        row.churn_reason = reason;
        row.churn_count += 1;
        transition(state, row, 'churned', at, reason, str(d['detail']) ?? null);
        state.churns.add([at.slice(0, 7), reason, str(d['detail']) ?? '', row.source, row.channel], [1]);
        return;
      }
      case 'CustomerReactivated': {
        if (!customerId) return;
        const row = this.customer(state, customerId, at);
        row.reactivated_count += 1;
        transition(state, row, 'customer', at, 'reactivated', null);
        return;
      }
      case 'FeedbackReceived': {
        const employeeId = str(d['employeeId']);
        if (!employeeId) return;
        state.employeeMonths.add([employeeId, at.slice(0, 7)], [1, d['kind'] === 'complaint' ? 1 : 0]);
        return;
      }
      case 'EmployeeHired':
      case 'EmployeeLeft': {
        const employeeId = str(d['employeeId']);
        if (!employeeId) return;
        const employments = state.employees.get(employeeId) ?? [];
        state.employees.set(employeeId, employments);
        const latest = employments[employments.length - 1];
        if (event.type === 'EmployeeHired') {
          if (!latest) employments.push({ seq: 0, hired_at: at, left_at: null, changed: true });
          // a rehire after a departure starts a new employment; the one that ended keeps its dates
          else if (latest.left_at !== null && latest.hired_at !== null) employments.push({ seq: latest.seq + 1, hired_at: at, left_at: null, changed: true });
          // a departure recorded without a hire before it: this hire opens that employment
          else if (latest.hired_at === null) Object.assign(latest, { hired_at: at, changed: true });
          // a second hire while employed (never written by the engine) leaves the first one standing
        } else if (!latest) employments.push({ seq: 0, hired_at: null, left_at: at, changed: true });
        else Object.assign(latest, { left_at: at, changed: true });
        return;
      }
      case 'CampaignSpendRecorded': {
        const campaignId = str(d['campaignId']);
        const amount = money(d['amountMinor']);
        if (!campaignId || amount === undefined) return;
        state.campaignMonths.add([campaignId, at.slice(0, 7)], [amount, 0, 0, 0]);
        return;
      }
      default:
        return; // facts the statistics do not use (touchpoints, thanks, profiles, unknown types)
    }
  }

  /**
   * Whether this is the first time this customer buys in `period` (a month `YYYY-MM` or a year
   * `YYYY`), when that is known without the store; undefined when the store must say.
   */
  private knownFirstTime(state: BatchState, customerId: string, period: string): boolean | undefined {
    if (!state.knownPeriods.add(customerId, period)) return false;
    return this.rebuild?.periodsComplete ? true : undefined;
  }

  /** true when the store holds no purchase of this customer in `period` */
  private async storedFirstTime(tx: ReadModelTransaction, customerId: string, period: string): Promise<boolean> {
    const [lo, hi] = period.length === 4 ? [`${period}-01`, `${period}-12`] : [period, period];
    const known = await tx.get(
      'SELECT 1 AS one FROM stat_customer_months WHERE customer_id = ? AND month >= ? AND month <= ? LIMIT 1',
      [customerId, lo, hi],
    );
    return !known;
  }

  private async moveCohort(row: CustomerRow, from: string, to: string, state: BatchState, tx: ReadModelTransaction): Promise<void> {
    const stored = await tx.all<{ month: string }>('SELECT month FROM stat_customer_months WHERE customer_id = ?', [row.customer_id]);
    for (const m of [...stored.map((x) => x.month), ...(state.newMonths.get(row.customer_id) ?? [])]) {
      state.cohorts.add([from, m, row.source, row.channel], [-1]);
      state.cohorts.add([to, m, row.source, row.channel], [1]);
    }
  }

  private async write(state: BatchState, tx: ReadModelTransaction): Promise<void> {
    const rebuild = this.rebuild;
    if (rebuild) {
      // each key stands for a stored purchase; past the limit they are queried again
      if (rebuild.periods.size > 2 * this.residentLimit) {
        rebuild.periods.clear();
        rebuild.periodsComplete = false;
      }
      for (const [id, row] of state.customers) {
        rebuild.customers.set(id, row);
        rebuild.unwritten.set(id, row);
      }
      // past the limit, customers are written and read back from the store again
      if (rebuild.customers.size > this.residentLimit) {
        await this.writeResident(tx);
        rebuild.customers.clear();
        rebuild.storeHoldsOnlyResident = false;
      }
    } else {
      await writeCustomers(state.customers.values(), tx);
    }
    // intervals opened by earlier batches, closed 100 per statement (VALUES columns are column1… on both dialects)
    for (const chunk of chunks(state.closeHistory, 100)) {
      await tx.run(
        `UPDATE stat_stage_history SET to_at = v.column3 FROM (VALUES ${chunk.map(() => '(?, CAST(? AS BIGINT), ?)').join(', ')}) AS v
WHERE stat_stage_history.customer_id = v.column1 AND stat_stage_history.seq = v.column2`,
        chunk.flatMap((c) => [c.customerId, c.seq, c.at]),
      );
    }
    const history: SqlParam[][] = [];
    for (const h of state.history.values()) history.push([h.customerId, h.seq, h.stage, h.at, h.toAt, h.reason, h.detail]);
    await upsertRows(tx, 'stat_stage_history', ['customer_id', 'seq', 'stage', 'from_at', 'to_at', 'reason', 'detail'],
      ['customer_id', 'seq'], 'DO NOTHING', history);
    await upsertRows(tx, 'stat_orders', ['customer_id', 'order_id', 'at', 'at_day', 'revenue', 'cost'], ['customer_id', 'order_id'],
      'DO NOTHING', state.orders);
    await state.customerMonths.flush(tx, 'stat_customer_months', ['customer_id', 'month'], ['orders', 'revenue', 'cost']);
    await state.sales.flush(tx, 'stat_sales', ['dim', 'month', 'key', 'source', 'channel'], ['orders', 'revenue', 'cost']);
    await state.customerSales.flush(
      tx,
      'stat_customer_sales',
      ['customer_id', 'dim', 'key', 'month'],
      ['orders', 'revenue', 'cost'],
    );
    await state.campaignMonths.flush(
      tx,
      'stat_campaign_months',
      ['campaign_id', 'month'],
      ['spend', 'revenue', 'cost', 'orders'],
    );
    await state.periods.flush(tx, 'stat_periods', ['kind', 'period', 'source', 'channel'], ['active', 'orders', 'revenue', 'cost']);
    await state.cohorts.flush(tx, 'stat_cohorts', ['cohort', 'month', 'source', 'channel'], ['active']);
    await state.churns.flush(tx, 'stat_churns', ['month', 'reason', 'detail', 'source', 'channel'], ['n']);
    await state.spans.flush(tx, 'stat_active_spans', ['month_in', 'month_out', 'source', 'channel'], ['n']);
    await state.employeeMonths.flush(tx, 'stat_employee_months', ['employee_id', 'month'], ['feedback', 'complaints']);
    for (const [id, employments] of state.employees) {
      for (const e of employments) {
        if (!e.changed) continue;
        await tx.run(
          'INSERT INTO stat_employees (employee_id, seq, hired_at, left_at) VALUES (?, ?, ?, ?) ON CONFLICT (employee_id, seq) DO UPDATE SET hired_at = excluded.hired_at, left_at = excluded.left_at',
          [id, e.seq, e.hired_at, e.left_at],
        );
      }
    }
    if (state.latestAt) {
      await tx.run(
        `INSERT INTO stat_meta (key, value) VALUES ('latest_at', ?)
ON CONFLICT (key) DO UPDATE SET value = CASE WHEN excluded.value > stat_meta.value THEN excluded.value ELSE stat_meta.value END`,
        [state.latestAt],
      );
    }
  }
}

/** Records a stage change: closes the open history interval and opens the next one. */
function transition(
  state: BatchState,
  row: CustomerRow,
  stage: Stage,
  at: string,
  reason: string | null,
  detail: string | null,
): void {
  state.changes += 1;
  // spans of active stages by month in and out (month_out '' while open): churn rates read these
  if (ACTIVE.has(row.stage) && row.stage_since) {
    state.spans.add([row.stage_since.slice(0, 7), '', row.source, row.channel], [-1]);
    state.spans.add([row.stage_since.slice(0, 7), at.slice(0, 7), row.source, row.channel], [1]);
  }
  if (ACTIVE.has(stage)) state.spans.add([at.slice(0, 7), '', row.source, row.channel], [1]);
  if (row.history_seq > 0) {
    const prev = state.history.get(`${row.customer_id}\u0000${row.history_seq}`);
    if (prev) prev.toAt = at;
    else state.closeHistory.push({ customerId: row.customer_id, seq: row.history_seq, at });
  }
  row.history_seq += 1;
  row.stage = stage;
  row.stage_since = at;
  state.history.set(`${row.customer_id}\u0000${row.history_seq}`, {
    customerId: row.customer_id,
    seq: row.history_seq,
    stage,
    at,
    toAt: null,
    reason,
    detail,
  });
}

function emptyCustomer(customerId: string): CustomerRow {
  return {
    customer_id: customerId,
    source: UNKNOWN_KEY,
    channel: UNKNOWN_KEY,
    campaign: null,
    registered_at: null,
    stage: 'prospect',
    stage_since: null,
    history_seq: 0,
    converted_at: null,
    repeat_at: null,
    advocate_at: null,
    churned_at: null,
    churn_reason: null,
    churn_count: 0,
    reactivated_count: 0,
    first_purchase_at: null,
    last_purchase_at: null,
    first_purchase_day: null,
    last_purchase_day: null,
    acquisition_month: null,
    orders: 0,
    revenue: 0,
    cost: 0,
    days_to_customer: null,
    days_to_repeat: null,
    days_to_advocate: null,
  };
}

/** BIGINT columns may arrive as strings or bigints from a driver: fold over plain numbers. */
function normaliseRow(r: CustomerRow): CustomerRow {
  return {
    ...r,
    history_seq: Number(r.history_seq),
    churn_count: Number(r.churn_count),
    reactivated_count: Number(r.reactivated_count),
    orders: Number(r.orders),
    revenue: Number(r.revenue),
    cost: Number(r.cost),
    first_purchase_day: r.first_purchase_day === null ? null : Number(r.first_purchase_day),
    last_purchase_day: r.last_purchase_day === null ? null : Number(r.last_purchase_day),
    days_to_customer: r.days_to_customer === null ? null : Number(r.days_to_customer),
    days_to_repeat: r.days_to_repeat === null ? null : Number(r.days_to_repeat),
    days_to_advocate: r.days_to_advocate === null ? null : Number(r.days_to_advocate),
  };
}

function businessTime(e: StoredEvent): string | undefined {
  return isoOrUndefined(e.metadata?.occurredAt) ?? isoOrUndefined(e.data?.['occurredAt']);
}

/**
 * Already canonical UTC (`toISOString` form, a real calendar day): Date would give the same text
 * back, so the parse and reformat (a noticeable share of a rebuild) is skipped. Anything else takes
 * the full path, which also rolls over dates like Feb 30 as before.
 */
export function isoOrUndefined(v: unknown): string | undefined {
  if (typeof v !== 'string' || v.length < 10) return undefined;
  if (utcMillisOf(v) !== undefined) return v;
  const t = Date.parse(v);
  return Number.isFinite(t) ? new Date(t).toISOString() : undefined;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v.length > 0 ? v : undefined;
}

function money(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : undefined;
}

function days(from: string | null, to: string): number | null {
  if (!from) return null;
  return (Date.parse(to) - Date.parse(from)) / DAY_MS;
}

function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

type RfmDimension = 'last_purchase_day' | 'orders' | 'revenue';
const RFM_DIMENSIONS: readonly RfmDimension[] = ['last_purchase_day', 'orders', 'revenue'];
/** per dimension, the first (value, customer id) of buckets 2..5 that are not empty */
type RfmCuts = Record<RfmDimension, Cut[]>;

async function rfmCuts(tx: ReadModelTransaction): Promise<RfmCuts> {
  const n = Number((await tx.get<{ n: unknown }>('SELECT COUNT(*) AS n FROM stat_customers WHERE orders > 0'))?.n ?? 0);
  const starts = quintileStarts(n);
  // each cut is a walk along the (value, customer_id) index; `+orders` keeps the planner from
  // ranging over the orders index and sorting instead (unary plus is valid on both engines)
  const buyers: Record<RfmDimension, string> = { last_purchase_day: 'last_purchase_day IS NOT NULL', orders: 'orders > 0', revenue: '+orders > 0' };
  const cuts = { last_purchase_day: [], orders: [], revenue: [] } as RfmCuts;
  for (const dim of RFM_DIMENSIONS) {
    for (const k of starts) {
      const cut = await tx.get<{ v: unknown; customer_id: string }>(
        `SELECT ${dim} AS v, customer_id FROM stat_customers WHERE ${buyers[dim]} ORDER BY ${dim}, customer_id LIMIT 1 OFFSET ${k}`,
      );
      if (cut) cuts[dim].push([Number(cut.v), String(cut.customer_id)]);
    }
  }
  return cuts;
}

/** customer rows, whole (their scores left as stored) */
async function writeCustomers(customers: Iterable<CustomerRow>, tx: ReadModelTransaction): Promise<void> {
  const rows: SqlParam[][] = [];
  for (const row of customers) rows.push(CUSTOMER_COLUMNS.map((c) => row[c]));
  await upsertRows(tx, 'stat_customers', CUSTOMER_COLUMNS, ['customer_id'], replaceAll(CUSTOMER_COLUMNS, ['customer_id']), rows);
}

/** the cuts the present scores were computed with: the next live run rescores from them */
async function storeCuts(tx: ReadModelTransaction, cuts: RfmCuts): Promise<void> {
  await tx.run(`INSERT INTO stat_meta (key, value) VALUES ('rfm_cuts', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`, [
    JSON.stringify(cuts),
  ]);
}

const RFM_VALUE: Record<RfmDimension, (c: CustomerRow) => number> = {
  last_purchase_day: (c) => c.last_purchase_day as number,
  orders: (c) => c.orders,
  revenue: (c) => c.revenue,
};

/**
 * The buyers among `customers`, in id order, with their R, F and M quintile scores and the cuts
 * they imply: what `rfmCuts` and `rescore` find in the store, for customers held in memory.
 */
function rankInMemory(customers: Iterable<CustomerRow>): { buyers: CustomerRow[]; scores: Record<RfmDimension, Uint8Array>; cuts: RfmCuts } {
  const buyers: CustomerRow[] = [];
  for (const c of customers) if (c.orders > 0) buyers.push(c);
  // in id order once, so ties in each dimension are broken by position: numeric sorts after this one
  buyers.sort((a, b) => compareText(a.customer_id, b.customer_id));
  const starts = quintileStarts(buyers.length);
  const scores = {} as Record<RfmDimension, Uint8Array>;
  const cuts = { last_purchase_day: [], orders: [], revenue: [] } as RfmCuts;
  for (const dim of RFM_DIMENSIONS) {
    const value = RFM_VALUE[dim];
    const ranked = quintilesInMemory(buyers.length, (i, j) => value(buyers[i] as CustomerRow) - value(buyers[j] as CustomerRow) || i - j);
    scores[dim] = ranked.scores;
    for (const k of starts) {
      const b = buyers[ranked.order[k] as number] as CustomerRow;
      cuts[dim].push([value(b), b.customer_id]);
    }
  }
  return { buyers, scores, cuts };
}

/** the (value, id) interval [lo, hi) between a cut's two positions (hi undefined = unbounded); lo undefined = nothing moved */
function cutRange(a: Cut | undefined, b: Cut | undefined): [Cut | undefined, Cut | undefined] {
  if (!a && !b) return [undefined, undefined];
  if (!a || !b) return [a ?? b, undefined];
  const order = compareCut(a, b);
  if (order === 0) return [undefined, undefined];
  return order < 0 ? [a, b] : [b, a];
}

/** the month before `YYYY-MM` */
export function previousMonth(m: string): string {
  const y = Number(m.slice(0, 4));
  const mo = Number(m.slice(5, 7));
  return mo === 1 ? `${String(y - 1).padStart(4, '0')}-12` : `${m.slice(0, 4)}-${String(mo - 1).padStart(2, '0')}`;
}

/** the month after `YYYY-MM` */
export function nextMonth(m: string): string {
  const y = Number(m.slice(0, 4));
  const mo = Number(m.slice(5, 7));
  return mo === 12 ? `${String(y + 1).padStart(4, '0')}-01` : `${m.slice(0, 4)}-${String(mo + 1).padStart(2, '0')}`;
}
