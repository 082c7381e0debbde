import { count, decodeCursor, encodeCursor, pageOf, type CursorPosition } from './list-cursor';
import type { ReadModelQueries } from './read-model-store';
import { integerWithin, type IntegerBounds } from './query-errors';
import type { AdvocateRow, EdgeRow } from './referrals.projection';
import { selectIn } from './sql-batch';

export interface ReferralNode {
  customerId: string;
  referredAt: string;
  creditedAt?: string;
  convertedAt?: string;
  /** everything this referee has bought so far */
  revenueMinor: number;
  referees: ReferralNode[];
  /**
   * On a node at the depth asked for: how many people they referred, left out of the answer (ask
   * for a deeper tree, or the tree below them); absent when they referred nobody, so an empty
   * `referees` there is not taken for "referred nobody"
   */
  refereesNotShown?: number;
}

export interface Advocate {
  customerId: string;
  referees: number;
  convertedReferees: number;
  refereeRevenueMinor: number;
}

/** a page of advocates, ranked; `nextCursor` is present when more follow: pass it as `cursor` for the next page */
export interface AdvocatePage {
  items: Advocate[];
  nextCursor?: string;
}

/** a top-advocates cursor's position: the last advocate's converted referees and their referees' revenue */
const ADVOCATE_POSITION: CursorPosition = {
  what: 'converted referees and their referees\' revenue in minor units, as "<converted>:<revenue>" (non-negative integers)',
  holds: (v) => typeof v === 'string' && /^\d+:\d+$/.test(v) && v.split(':').every((n) => count(Number(n))),
};

export interface ReferralGraph {
  nodes: Array<{ customerId: string; revenueMinor: number; orders: number }>;
  edges: Array<{ referrerId: string; refereeId: string; referredAt: string; creditedAt?: string; convertedAt?: string; refereeRevenueMinor: number }>;
}

const PAGE = 2000;

/**
 * The bounded arguments of the referral questions, each with what is taken when it is not given:
 * the depth of a tree below a customer, and how many top advocates. The HTTP API checks and
 * declares `GET /referrals/tree/:id` and `GET /referrals/top-advocates` from these.
 */
export const REFERRAL_QUERIES = {
  depth: { minimum: 1, maximum: 20, default: 3 },
  limit: { minimum: 1, maximum: 1000, default: 10 },
} as const satisfies Record<string, IntegerBounds>;

export class ReferralQueries {
  constructor(private readonly db: ReadModelQueries) {}

  /** the people `customerId` referred, and whom they referred, down to `depth` levels (1 = direct; by default REFERRAL_QUERIES.depth) */
  async treeBelow(customerId: string, depthAsked?: number): Promise<ReferralNode[]> {
    const depth = integerWithin('depth', depthAsked, REFERRAL_QUERIES.depth);
    const roots: ReferralNode[] = [];
    const childrenOf = new Map<string, ReferralNode[]>([[customerId, roots]]);
    const nodes = new Map<string, ReferralNode>();
    const seen = new Set([customerId]);
    let level = [customerId];
    for (let d = 0; d < depth && level.length > 0; d += 1) {
      const edges = await selectIn<EdgeRow & { revenue_minor: number | null }>(
        this.db,
        `SELECT e.referee_id, e.referrer_id, e.referred_at, e.credited_at, e.converted_at, p.revenue_minor
           FROM referral_edges e LEFT JOIN referral_people p ON p.customer_id = e.referee_id`,
        'e.referrer_id',
        level,
      );
      edges.sort((a, b) => cmp(a.referrer_id, b.referrer_id) || cmp(a.referee_id, b.referee_id));
      const next: string[] = [];
      for (const e of edges) {
        if (seen.has(e.referee_id)) continue;
        seen.add(e.referee_id);
        const node: ReferralNode = {
          customerId: e.referee_id,
          referredAt: e.referred_at,
          ...(e.credited_at ? { creditedAt: e.credited_at } : {}),
          ...(e.converted_at ? { convertedAt: e.converted_at } : {}),
          revenueMinor: Number(e.revenue_minor ?? 0),
          referees: [],
        };
        childrenOf.get(e.referrer_id)?.push(node);
        childrenOf.set(e.referee_id, node.referees);
        nodes.set(e.referee_id, node);
        next.push(e.referee_id);
      }
      level = next;
    }
    // the deepest level shown: say who referred people the answer leaves out
    const below = await selectIn<{ referrer_id: string }>(this.db, 'SELECT referrer_id FROM referral_edges', 'referrer_id', level);
    for (const { referrer_id } of below) {
      const node = nodes.get(referrer_id);
      if (node) node.refereesNotShown = (node.refereesNotShown ?? 0) + 1;
    }
    return roots;
  }

  /**
   * Ranked by converted referees, then the revenue their referees brought, then id: `limit` of
   * them (by default REFERRAL_QUERIES.limit), from the start or after `cursor` (a page's
   * `nextCursor`), so the whole ranking can be walked page by page.
   */
  async topAdvocates(options: { limit?: number; cursor?: string } = {}): Promise<AdvocatePage> {
    const limit = integerWithin('limit', options.limit, REFERRAL_QUERIES.limit);
    let after = '';
    const params: (string | number)[] = [];
    if (options.cursor !== undefined) {
      const [position, id] = decodeCursor(options.cursor, 'top-advocates', '', ADVOCATE_POSITION);
      const [converted, revenue] = String(position).split(':').map(Number) as [number, number];
      // the ranking's order is descending, descending, then ascending by id: no single row-value comparison
      after = `WHERE converted_referees < ? OR (converted_referees = ? AND (referee_revenue_minor < ? OR (referee_revenue_minor = ? AND referrer_id > ?)))`;
      params.push(converted, converted, revenue, revenue, id);
    }
    const rows = await this.db.all<AdvocateRow>(
      `SELECT referrer_id, referees, converted_referees, referee_revenue_minor FROM referral_advocates ${after}
        ORDER BY converted_referees DESC, referee_revenue_minor DESC, referrer_id LIMIT ${limit + 1}`,
      params,
    );
    return pageOf(
      rows,
      limit,
      (r) => ({ customerId: r.referrer_id, referees: r.referees, convertedReferees: r.converted_referees, refereeRevenueMinor: r.referee_revenue_minor }),
      (last) => encodeCursor('top-advocates', `${Number(last.converted_referees)}:${Number(last.referee_revenue_minor)}`, last.referrer_id, ''),
    );
  }

  /** converted referees per customer (people with at least one purchase); 0 before the first customer */
  async viralCoefficient(): Promise<{ convertedReferees: number; customers: number; coefficient: number }> {
    const rows = await this.db.all<{ name: string; value: number }>('SELECT name, value FROM referral_totals');
    const totals = new Map(rows.map((r) => [r.name, Number(r.value)]));
    const convertedReferees = totals.get('converted_referees') ?? 0;
    const customers = totals.get('customers') ?? 0;
    return { convertedReferees, customers, coefficient: customers === 0 ? 0 : convertedReferees / customers };
  }

  /** the whole graph: people who take part in a referral, and every edge, in id order */
  async exportGraph(): Promise<ReferralGraph> {
    const edges: ReferralGraph['edges'] = [];
    let after = '';
    for (;;) {
      const page = await this.db.all<EdgeRow & { revenue_minor: number | null }>(
        `SELECT e.referee_id, e.referrer_id, e.referred_at, e.credited_at, e.converted_at, p.revenue_minor
           FROM referral_edges e LEFT JOIN referral_people p ON p.customer_id = e.referee_id
          WHERE e.referee_id > ? ORDER BY e.referee_id LIMIT ${PAGE}`,
        [after],
      );
      for (const e of page) {
        edges.push({
          referrerId: e.referrer_id,
          refereeId: e.referee_id,
          referredAt: e.referred_at,
          ...(e.credited_at ? { creditedAt: e.credited_at } : {}),
          ...(e.converted_at ? { convertedAt: e.converted_at } : {}),
          refereeRevenueMinor: Number(e.revenue_minor ?? 0),
        });
      }
      const last = page[page.length - 1];
      if (!last || page.length < PAGE) break;
      after = last.referee_id;
    }
    edges.sort((a, b) => cmp(a.referrerId, b.referrerId) || cmp(a.refereeId, b.refereeId));
    const ids = [...new Set(edges.flatMap((e) => [e.referrerId, e.refereeId]))].sort(cmp);
    const people = new Map(
      (await selectIn<{ customer_id: string; revenue_minor: number; orders: number }>(this.db, 'SELECT customer_id, revenue_minor, orders FROM referral_people', 'customer_id', ids)).map(
        (p) => [p.customer_id, p],
      ),
    );
    return {
      nodes: ids.map((id) => ({ customerId: id, revenueMinor: Number(people.get(id)?.revenue_minor ?? 0), orders: Number(people.get(id)?.orders ?? 0) })),
      edges,
    };
  }

  /** Graphviz DOT: converted referrals drawn solid, the others dashed; labels carry revenue in minor units */
  async toDot(): Promise<string> {
    const graph = await this.exportGraph();
    const lines = ['digraph referrals {', '  rankdir=LR;', '  node [shape=box];'];
    for (const n of graph.nodes) lines.push(`  ${dotId(n.customerId)} [label=${dotId(`${n.customerId}\n${n.revenueMinor}`)}];`);
    for (const e of graph.edges) {
      lines.push(`  ${dotId(e.referrerId)} -> ${dotId(e.refereeId)} [label=${dotId(String(e.refereeRevenueMinor))}${e.convertedAt ? '' : ', style=dashed'}];`);
    }
    lines.push('}');
    return `${lines.join('\n')}\n`;
  }
}

function dotId(s: string): string {
  return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
