import type { StoredEvent } from '@clientele/event-store';
import { DEFAULT_RESIDENT_LIMIT } from './resident-limit';
import type { Projection, ReadModelTransaction, SqlParam } from './read-model-store';
import { replaceAll, selectIn, textKey, upsertRows } from './sql-batch';

/**
 * The referral graph. An edge per referee (a person is referred at most once, the first referrer
 * wins), created by the referee's registration (`referredBy`) or by the referrer's
 * `ReferralCredited`, converted by `ReferralConverted`. Every person's own revenue is kept, and each
 * referrer's totals (referees, converted referees, revenue their referees brought) are kept up to
 * date as referees buy, so top advocates read from one index.
 */
export const REFERRAL_TABLES = ['referral_people', 'referral_edges', 'referral_advocates', 'referral_totals'] as const;

export interface PersonRow {
  customer_id: string;
  revenue_minor: number;
  orders: number;
}
export interface EdgeRow {
  referee_id: string;
  referrer_id: string;
  referred_at: string;
  credited_at: string | null;
  converted_at: string | null;
}
export interface AdvocateRow {
  referrer_id: string;
  referees: number;
  converted_referees: number;
  referee_revenue_minor: number;
}

const PEOPLE_COLUMNS = ['customer_id', 'revenue_minor', 'orders'] as const;
const EDGE_COLUMNS = ['referee_id', 'referrer_id', 'referred_at', 'credited_at', 'converted_at'] as const;
const ADVOCATE_COLUMNS = ['referrer_id', 'referees', 'converted_referees', 'referee_revenue_minor'] as const;

/**
 * What a rebuild instance keeps across batches: every row it folded, and which of them are not
 * written yet. Nobody reads the store before `flush` (a failed rebuild discards it), so each row is
 * written once with its final value; past `residentLimit` people everything is written and dropped.
 */
interface Kept {
  people: Map<string, PersonRow>;
  edges: Map<string, EdgeRow>;
  advocates: Map<string, AdvocateRow>;
  totals: Map<string, number>;
  dirtyPeople: Set<string>;
  dirtyEdges: Set<string>;
  dirtyAdvocates: Set<string>;
  /** the store held no referral rows and nothing was dropped since: nothing to read back */
  storeHoldsOnlyKept?: boolean;
}

export class ReferralsProjection implements Projection {
  readonly name = 'referrals';
  readonly version = 1;
  readonly tables = REFERRAL_TABLES;
  private readonly kept: Kept | undefined;
  private readonly residentLimit: number;
  /** a rebuild instance keeps what it folds across `apply` calls: it takes a rebuild's log page by page */
  readonly foldsPages: boolean;

  constructor(options: { rebuild?: boolean; residentLimit?: number } = {}) {
    this.foldsPages = options.rebuild === true;
    this.kept = options.rebuild ? emptyKept() : undefined;
    this.residentLimit = options.residentLimit ?? DEFAULT_RESIDENT_LIMIT;
  }

  forRebuild(): ReferralsProjection {
    return new ReferralsProjection({ rebuild: true, residentLimit: this.residentLimit });
  }

  async migrate(tx: ReadModelTransaction): Promise<void> {
    const key = textKey(tx.dialect);
    await tx.exec(`
      CREATE TABLE IF NOT EXISTS referral_people (
        customer_id ${key} PRIMARY KEY, revenue_minor BIGINT NOT NULL, orders BIGINT NOT NULL);
      CREATE TABLE IF NOT EXISTS referral_edges (
        referee_id ${key} PRIMARY KEY, referrer_id ${key} NOT NULL, referred_at TEXT NOT NULL,
        credited_at TEXT, converted_at TEXT);
      CREATE INDEX IF NOT EXISTS referral_edges_referrer ON referral_edges (referrer_id, referee_id);
      CREATE TABLE IF NOT EXISTS referral_advocates (
        referrer_id ${key} PRIMARY KEY, referees BIGINT NOT NULL, converted_referees BIGINT NOT NULL,
        referee_revenue_minor BIGINT NOT NULL);
      CREATE INDEX IF NOT EXISTS referral_advocates_rank
        ON referral_advocates (converted_referees, referee_revenue_minor, referrer_id);
      CREATE TABLE IF NOT EXISTS referral_totals (name ${key} PRIMARY KEY, value BIGINT NOT NULL);
    `);
  }

  async apply(events: readonly StoredEvent[], tx: ReadModelTransaction): Promise<void> {
    const kept = this.kept;
    if (kept && kept.storeHoldsOnlyKept === undefined) {
      let empty = true;
      for (const table of ['referral_people', 'referral_edges', 'referral_advocates', 'referral_totals']) {
        if (await tx.get(`SELECT 1 AS one FROM ${table} LIMIT 1`)) empty = false;
      }
      kept.storeHoldsOnlyKept = empty;
    }
    const people = kept?.people ?? new Map<string, PersonRow>();
    const edges = kept?.edges ?? new Map<string, EdgeRow>();
    const advocates = kept?.advocates ?? new Map<string, AdvocateRow>();
    // a rebuild instance whose store holds only what it keeps has every row it could read back:
    // no pass to collect the ids the batch touches
    if (!kept?.storeHoldsOnlyKept && !(await this.readTouchedRows(events, tx, people, edges, advocates))) return;
    const totals =
      kept && kept.totals.size > 0
        ? kept.totals
        : new Map((await tx.all<{ name: string; value: number }>('SELECT name, value FROM referral_totals')).map((r) => [r.name, Number(r.value)]));
    if (kept) kept.totals = totals;
    const dirtyPeople = kept?.dirtyPeople ?? new Set<string>();
    const dirtyEdges = kept?.dirtyEdges ?? new Set<string>();
    const dirtyAdvocates = kept?.dirtyAdvocates ?? new Set<string>();

    const person = (id: string): PersonRow => {
      let p = people.get(id);
      if (!p) {
        p = { customer_id: id, revenue_minor: 0, orders: 0 };
        people.set(id, p);
      }
      dirtyPeople.add(id);
      return p;
    };
    const advocate = (id: string): AdvocateRow => {
      let a = advocates.get(id);
      if (!a) {
        a = { referrer_id: id, referees: 0, converted_referees: 0, referee_revenue_minor: 0 };
        advocates.set(id, a);
      }
      dirtyAdvocates.add(id);
      return a;
    };
    const bump = (name: string, by: number) => totals.set(name, (totals.get(name) ?? 0) + by);
    /** the edge for a referee, created on first mention; a second, different referrer is ignored */
    const edge = (referrer: string, referee: string, at: string): EdgeRow | undefined => {
      if (referrer === referee) return undefined;
      const existing = edges.get(referee);
      if (existing) return existing.referrer_id === referrer ? existing : undefined;
      const created: EdgeRow = { referee_id: referee, referrer_id: referrer, referred_at: at, credited_at: null, converted_at: null };
      edges.set(referee, created);
      dirtyEdges.add(referee);
      const a = advocate(referrer);
      a.referees += 1;
      a.referee_revenue_minor += person(referee).revenue_minor;
      bump('referees', 1);
      return created;
    };

    for (const e of events) {
      const d = e.data;
      const c = d.customerId;
      if (typeof c !== 'string') continue;
      const at = e.metadata.occurredAt;
      switch (e.type) {
        case 'ProspectRegistered':
          person(c);
          if (typeof d.referredBy === 'string') edge(d.referredBy, c, at);
          break;
        case 'PurchaseRecorded': {
          const amount = typeof d.totalMinor === 'number' ? d.totalMinor : 0;
          const p = person(c);
          p.orders += 1;
          p.revenue_minor += amount;
          if (p.orders === 1) bump('customers', 1);
          const ed = edges.get(c);
          if (ed) advocate(ed.referrer_id).referee_revenue_minor += amount;
          break;
        }
        case 'ReferralCredited':
        case 'ReferralConverted': {
          if (typeof d.refereeId !== 'string') break;
          const ed = edge(c, d.refereeId, at);
          if (!ed) break;
          if (e.type === 'ReferralCredited' && !ed.credited_at) {
            ed.credited_at = at;
            dirtyEdges.add(ed.referee_id);
          }
          if (e.type === 'ReferralConverted' && !ed.converted_at) {
            ed.converted_at = at;
            dirtyEdges.add(ed.referee_id);
            advocate(c).converted_referees += 1;
            bump('converted_referees', 1);
          }
          break;
        }
        default:
          break;
      }
    }

    if (!kept) {
      await writeRows(tx, { people, edges, advocates, totals, dirtyPeople, dirtyEdges, dirtyAdvocates });
      return;
    }
    if (kept.people.size > this.residentLimit) {
      await this.flush(tx);
      this.dropKept();
    }
  }

  /**
   * Reads the stored rows of everyone the events touch (people, their edges, the advocates on
   * either end) into the maps, except those already there; answers false when the events touch
   * nobody.
   */
  private async readTouchedRows(
    events: readonly StoredEvent[],
    tx: ReadModelTransaction,
    people: Map<string, PersonRow>,
    edges: Map<string, EdgeRow>,
    advocates: Map<string, AdvocateRow>,
  ): Promise<boolean> {
    const peopleIds = new Set<string>();
    const edgeIds = new Set<string>();
    for (const e of events) {
      const c = e.data.customerId;
      if (typeof c !== 'string') continue;
      if (e.type === 'PurchaseRecorded') {
        peopleIds.add(c);
        edgeIds.add(c);
      } else if (e.type === 'ProspectRegistered') {
        peopleIds.add(c);
        edgeIds.add(c);
      } else if (e.type === 'ReferralCredited' || e.type === 'ReferralConverted') {
        if (typeof e.data.refereeId === 'string') {
          peopleIds.add(e.data.refereeId);
          edgeIds.add(e.data.refereeId);
        }
      }
    }
    if (peopleIds.size === 0) return false;
    for (const r of await selectIn<PersonRow>(tx, 'SELECT * FROM referral_people', 'customer_id', missing(peopleIds, people))) people.set(r.customer_id, r);
    for (const r of await selectIn<EdgeRow>(tx, 'SELECT * FROM referral_edges', 'referee_id', missing(edgeIds, edges))) edges.set(r.referee_id, r);
    const advocateIds = new Set<string>();
    for (const id of edgeIds) {
      const stored = edges.get(id);
      if (stored) advocateIds.add(stored.referrer_id);
    }
    for (const e of events) {
      if ((e.type === 'ReferralCredited' || e.type === 'ReferralConverted') && typeof e.data.customerId === 'string') advocateIds.add(e.data.customerId);
      if (e.type === 'ProspectRegistered' && typeof e.data.referredBy === 'string') advocateIds.add(e.data.referredBy);
    }
    for (const r of await selectIn<AdvocateRow>(tx, 'SELECT * FROM referral_advocates', 'referrer_id', missing(advocateIds, advocates))) advocates.set(r.referrer_id, r);
    return true;
  }

  async flush(tx: ReadModelTransaction): Promise<void> {
    const kept = this.kept;
    if (!kept) return;
    await writeRows(tx, kept);
    kept.dirtyPeople.clear();
    kept.dirtyEdges.clear();
    kept.dirtyAdvocates.clear();
  }

  /** after a flush: drop what is kept; later batches read rows back from the store */
  private dropKept(): void {
    const kept = this.kept;
    if (!kept) return;
    kept.people.clear();
    kept.edges.clear();
    kept.advocates.clear();
    kept.totals.clear();
    kept.storeHoldsOnlyKept = false;
  }
}

function emptyKept(): Kept {
  return {
    people: new Map(), edges: new Map(), advocates: new Map(), totals: new Map(),
    dirtyPeople: new Set(), dirtyEdges: new Set(), dirtyAdvocates: new Set(),
  };
}

function missing<R>(ids: Set<string>, have: Map<string, R>): string[] {
  const out: string[] = [];
  for (const id of ids) if (!have.has(id)) out.push(id);
  return out;
}

/** the changed rows, 100 a statement, and every total */
async function writeRows(tx: ReadModelTransaction, k: Omit<Kept, 'storeHoldsOnlyKept'>): Promise<void> {
  const rowsOf = <R>(ids: Set<string>, map: Map<string, R>, columns: readonly (keyof R)[]): SqlParam[][] =>
    [...ids].map((id) => columns.map((col) => (map.get(id) as R)[col] as SqlParam));
  await upsertRows(tx, 'referral_people', PEOPLE_COLUMNS, ['customer_id'], replaceAll(PEOPLE_COLUMNS, ['customer_id']), rowsOf(k.dirtyPeople, k.people, PEOPLE_COLUMNS));
  await upsertRows(tx, 'referral_edges', EDGE_COLUMNS, ['referee_id'], replaceAll(EDGE_COLUMNS, ['referee_id']), rowsOf(k.dirtyEdges, k.edges, EDGE_COLUMNS));
  await upsertRows(tx, 'referral_advocates', ADVOCATE_COLUMNS, ['referrer_id'], replaceAll(ADVOCATE_COLUMNS, ['referrer_id']), rowsOf(k.dirtyAdvocates, k.advocates, ADVOCATE_COLUMNS));
  await upsertRows(tx, 'referral_totals', ['name', 'value'], ['name'], 'DO UPDATE SET value = excluded.value', [...k.totals.entries()].sort().map(([key, v]) => [key, v]));
}
