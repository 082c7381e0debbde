import type { SqlParam } from './read-model-store';

/**
 * RFM segments: shared by the projection (which stores each buyer's scores at every month end)
 * and the queries (which score the present, or a date inside a month, on demand).
 */

export type RfmSegment = 'champions' | 'loyal' | 'potential' | 'at_risk' | 'hibernating' | 'lost';

/**
 * RFM segments from the recency (R) and frequency (F) quintile scores, first matching rule wins.
 * Monetary (M) is reported beside them but does not choose the segment: in our data it follows F.
 * Every one of the 25 (R, F) cells is covered exactly once (a spec checks it).
 */
export const RFM_SEGMENT_RULES: readonly { segment: RfmSegment; r: [number, number]; f: [number, number] }[] = [
  { segment: 'champions', r: [4, 5], f: [4, 5] },
  { segment: 'loyal', r: [3, 5], f: [3, 5] },
  { segment: 'potential', r: [4, 5], f: [1, 2] },
  { segment: 'at_risk', r: [1, 2], f: [3, 5] },
  { segment: 'hibernating', r: [2, 3], f: [1, 2] },
  { segment: 'lost', r: [1, 1], f: [1, 2] },
];
export const RFM_SEGMENTS: readonly RfmSegment[] = RFM_SEGMENT_RULES.map((r) => r.segment);

export function rfmSegmentOf(r: number, f: number): RfmSegment {
  const rule = RFM_SEGMENT_RULES.find((x) => r >= x.r[0] && r <= x.r[1] && f >= x.f[0] && f <= x.f[1]);
  return rule?.segment ?? 'lost';
}

/** a (value, customer id) position in an RFM order: a quintile cut is the first of its bucket */
export type Cut = [number, string];

/** (value, customer id) order, ids compared as the databases compare text (compareText) */
export function compareCut(a: Cut, b: Cut): number {
  return a[0] - b[0] || compareText(a[1], b[1]);
}

/**
 * Text in the order SQLite (`BINARY`) and PostgreSQL (`C` collation) compare it, i.e. by code
 * point (UTF-8 bytes): JS `<` compares UTF-16 units, which puts code points above U+FFFF (stored
 * as surrogates, U+D800–U+DFFF) before U+E000–U+FFFF.
 */
export function compareText(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i += 1) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return codePointRank(x) - codePointRank(y);
  }
  return a.length - b.length;
}

function codePointRank(unit: number): number {
  if (unit >= 0xd800 && unit <= 0xdfff) return unit + 0x2000;
  return unit >= 0xe000 ? unit - 0x800 : unit;
}

/**
 * For each of `n` items, its NTILE(5) bucket (1–5) in the order `compare` gives them (the first
 * n % 5 buckets hold one item more): what `ntileScores` computes in SQL, for rows held in memory.
 * `order` is the items in that order.
 */
export function quintilesInMemory(n: number, compare: (i: number, j: number) => number): { scores: Uint8Array; order: number[] } {
  const order = Array.from({ length: n }, (_v, i) => i).sort(compare);
  const small = Math.floor(n / 5);
  const big = (n % 5) * (small + 1);
  const scores = new Uint8Array(n);
  order.forEach((item, k) => {
    scores[item] = k < big ? Math.floor(k / (small + 1)) + 1 : (n % 5) + Math.floor((k - big) / small) + 1;
  });
  return { scores, order };
}

/**
 * A quintile score against `cuts`, as SQL: 1 + the number of cuts at or below each row's
 * (`value`, `id`), which is what NTILE(5) over the same order gives.
 */
export function cutScore(value: string, cuts: readonly Cut[], id: string): { sql: string; params: SqlParam[] } {
  const params: SqlParam[] = [];
  const terms = cuts.map((c) => {
    params.push(c[0], c[0], c[1]);
    return `CASE WHEN ${value} > ? OR (${value} = ? AND ${id} >= ?) THEN 1 ELSE 0 END`;
  });
  return { sql: terms.length ? `1 + ${terms.join(' + ')}` : '1', params };
}

/** the segment of a row with `r_score` and `f_score` columns, as SQL */
export const SEGMENT_CASE = `CASE ${RFM_SEGMENT_RULES.map(
  (x) => `WHEN r_score BETWEEN ${x.r[0]} AND ${x.r[1]} AND f_score BETWEEN ${x.f[0]} AND ${x.f[1]} THEN '${x.segment}'`,
).join(' ')} ELSE 'lost' END`;

/**
 * Scores every row of `base` (columns customer_id, last_day, f, m, …) in quintiles: `NTILE(5)` over
 * all rows ordered by (value, customer id), so ties split by id the same way on both engines.
 * Answers the base's columns plus r_score, f_score, m_score.
 *
 * The buckets are computed from `ROW_NUMBER` and the row count as NTILE fills them (the first
 * n % 5 buckets hold one row more): NTILE must know the partition's size before it answers its
 * first row, so it buffers the whole sorted input again, which made it most of the cost of ranking
 * 77,000 buyers.
 */
export function ntileScores(base: string, withM = true): string {
  return `WITH nb AS MATERIALIZED (${base}), nn AS (SELECT COUNT(*) AS n FROM nb)
    SELECT b.*, ${quintile('b.last_day')} AS r_score, ${quintile('b.f')} AS f_score,
      ${withM ? quintile('b.m') : '0'} AS m_score FROM nb b CROSS JOIN nn`;
}

/** NTILE(5) OVER (ORDER BY value, customer id), from the row number k and the row count n of `nn` */
function quintile(value: string): string {
  const k = `ROW_NUMBER() OVER (ORDER BY ${value}, b.customer_id)`;
  const big = '(nn.n % 5) * (nn.n / 5 + 1)';
  return `CASE WHEN ${k} <= ${big} THEN (${k} - 1) / (nn.n / 5 + 1) + 1
    ELSE nn.n % 5 + (${k} - 1 - ${big}) / NULLIF(nn.n / 5, 0) + 1 END`;
}

/** the ranks (0-based) at which NTILE(5) over n rows starts buckets 2..5: the first n % 5 buckets hold one row more */
export function quintileStarts(n: number): number[] {
  const starts: number[] = [];
  for (let b = 1, at = 0; b <= 5; b += 1) {
    if (b > 1 && at < n) starts.push(at);
    at += Math.floor(n / 5) + (b <= n % 5 ? 1 : 0);
  }
  return starts;
}

/**
 * Every buyer before `end` (exclusive, inside `month` or its end) as columns customer_id,
 * first_day, last_day, last_at, f (orders), m (revenue), cost: the previous month end's snapshot,
 * which must be fresh, with the month's orders before `end` added to the customers who placed them
 * and new buyers appended. The snapshot is read in its own
 * order and joined to the month's few thousand totals, so nothing the size of the buyer base is sorted.
 */
export function snapshotPlusMonth(snapshot: string, month: string, end: string): { sql: string; params: SqlParam[] } {
  const totals = monthTotals(month, end);
  return {
    sql: `WITH mo AS MATERIALIZED (${totals.sql})
      SELECT s.customer_id AS customer_id, s.first_day AS first_day, COALESCE(mo.last_day, s.last_day) AS last_day,
        COALESCE(mo.last_at, s.last_at) AS last_at, s.orders + COALESCE(mo.f, 0) AS f, s.revenue + COALESCE(mo.m, 0) AS m,
        s.cost + COALESCE(mo.cost, 0) AS cost
      FROM stat_rfm_months s LEFT JOIN mo ON mo.customer_id = s.customer_id WHERE s.month = ?
      UNION ALL
      SELECT mo.customer_id, mo.first_day, mo.last_day, mo.last_at, mo.f, mo.m, mo.cost FROM mo
      WHERE NOT EXISTS (SELECT 1 FROM stat_rfm_months s WHERE s.month = ? AND s.customer_id = mo.customer_id)`,
    params: [...totals.params, snapshot, snapshot],
  };
}

/**
 * per customer who bought in `month` before `end`: first_day, last_day, last_at, f, m, cost of
 * those orders (one range of the `stat_orders_at` index)
 */
export function monthTotals(month: string, end: string): { sql: string; params: SqlParam[] } {
  return {
    sql: `SELECT o.customer_id AS customer_id, MIN(o.at_day) AS first_day, MAX(o.at_day) AS last_day,
        MAX(o.at) AS last_at, COUNT(*) AS f, CAST(SUM(o.revenue) AS BIGINT) AS m, CAST(SUM(o.cost) AS BIGINT) AS cost
      FROM stat_orders o WHERE o.at >= ? AND o.at < ? GROUP BY o.customer_id`,
    params: [`${month}-01T00:00:00.000Z`, end],
  };
}

/**
 * per customer who bought before `end`: first_day, last_day, last_at, f, m, cost of every order
 * before it. This folds every stored order, so columns the caller does not `need` are NULL (f, the
 * order count, always comes).
 */
export function totalsBefore(
  end: string,
  need: { firstDay?: boolean; lastDay?: boolean; lastAt?: boolean; money?: boolean },
): { sql: string; params: SqlParam[] } {
  return {
    sql: `SELECT customer_id, ${need.firstDay ? 'MIN(at_day)' : 'NULL'} AS first_day, ${need.lastDay ? 'MAX(at_day)' : 'NULL'} AS last_day,
        ${need.lastAt ? 'MAX(at)' : 'NULL'} AS last_at, COUNT(*) AS f,
        ${need.money ? 'CAST(SUM(revenue) AS BIGINT)' : 'NULL'} AS m, ${need.money ? 'CAST(SUM(cost) AS BIGINT)' : 'NULL'} AS cost
      FROM stat_orders WHERE at < ? GROUP BY customer_id`,
    params: [end],
  };
}
