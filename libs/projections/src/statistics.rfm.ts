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

/** the segment of a row with `r_score` and `f_score` columns, as SQL */
export const SEGMENT_CASE = `CASE ${RFM_SEGMENT_RULES.map(
  (x) => `WHEN r_score BETWEEN ${x.r[0]} AND ${x.r[1]} AND f_score BETWEEN ${x.f[0]} AND ${x.f[1]} THEN '${x.segment}'`,
).join(' ')} ELSE 'lost' END`;

/**
 * Scores every row of `base` (columns customer_id, last_day, f, m, …) in quintiles: `NTILE(5)` over
 * all rows ordered by (value, customer id), so ties split by id the same way on both engines.
 * Answers the base's columns plus r_score, f_score, m_score.
 */
export function ntileScores(base: string, withM = true): string {
  return `SELECT b.*, NTILE(5) OVER (ORDER BY b.last_day, b.customer_id) AS r_score,
      NTILE(5) OVER (ORDER BY b.f, b.customer_id) AS f_score,
      ${withM ? 'NTILE(5) OVER (ORDER BY b.m, b.customer_id)' : '0'} AS m_score FROM (${base}) b`;
}
