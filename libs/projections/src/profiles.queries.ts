import type { ReadModelQueries, SqlParam } from './read-model-store';
import type { ProfileRow, ProfileState } from './profiles.projection';
import { integerWithin, InvalidQueryError, type Choice, type IntegerBounds } from './query-errors';
import { count, decodeCursor, encodeCursor, pageOf, type CursorPosition } from './list-cursor';
import { DAY_MS, parseAsOf } from './sql-batch';
import { STAGES } from './statistics.queries';

const WEEKDAYS = ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday'] as const;

export interface CustomerProfile {
  customerId: string;
  /** true after `PersonalDataErased`: identity, birthday and contact data are gone */
  erased: boolean;
  identity: { name?: string; email?: string; phone?: string };
  birthday?: string;
  daysToNextBirthday?: number;
  preferences: Record<string, string>;
  consents: Record<string, boolean>;
  /** the channel with the most touchpoints and purchases together (ties: alphabetical) */
  preferredChannel?: string;
  habits: {
    topCategories: Array<{ category: string; quantity: number }>;
    topProducts: Array<{ sku: string; quantity: number }>;
    averageBasketMinor?: number;
    /** orders per 30 days over the tenure (registration to asOf) */
    ordersPer30Days: number;
    usualWeekday?: (typeof WEEKDAYS)[number];
    usualHourUtc?: number;
  };
  firstPurchaseAt?: string;
  lastPurchaseAt?: string;
  stage?: string;
  stageSince?: string;
  /**
   * Each change of stage: the transition event itself (`eventId`) and what caused it (`causationId`:
   * the fact before it in the same decision, the event a process manager reacted to, or the command id
   * when a command changed the stage directly), as `GET /customers/:id` names them. A transition
   * stored without a cause has no `causationId`.
   */
  stageHistory: Array<{ stage: string; at: string; eventId: string; causationId?: string }>;
  acquisition: { source?: string; channel?: string; campaign?: string; registeredAt?: string };
  referredBy?: string;
  referees: Array<{ customerId: string; creditedAt?: string; convertedAt?: string }>;
  feedback: { count: number; averageScore?: number; complaints: number };
  thanks: { count: number; recent: Array<{ at: string; gesture: string; reason: string; valueMinor?: number }> };
  value: { revenueMinor: number; costMinor: number; marginMinor: number };
  rfm: { recencyDays?: number; frequency: number; monetaryMinor: number };
}

export interface ProfileSummary {
  customerId: string;
  name?: string;
  erased: boolean;
  stage?: string;
  source?: string;
  orders: number;
  revenueMinor: number;
  lastPurchaseAt?: string;
}

export const PROFILE_SORTS = ['customerId', 'revenue', 'orders', 'lastPurchase'] as const;
export type ProfileSort = (typeof PROFILE_SORTS)[number];

/**
 * The arguments of a profile list that are bounded or take a closed set, each with what is taken
 * when it is not given (the offset only without a cursor). The HTTP API checks and declares
 * `GET /profiles` from these.
 */
export const PROFILE_LIST = {
  stage: { values: STAGES },
  sort: { values: PROFILE_SORTS, default: 'customerId' },
  direction: { values: ['asc', 'desc'], default: 'asc' },
  limit: { minimum: 1, maximum: 1000, default: 50 },
  offset: { minimum: 0, maximum: Number.MAX_SAFE_INTEGER, default: 0 },
} as const satisfies { stage: Choice; sort: Choice<ProfileSort>; direction: Choice; limit: IntegerBounds; offset: IntegerBounds };

/** The bounded arguments of the birthdays list, each with what is taken when it is not given; `GET /birthdays` is checked and declared from these. */
export const BIRTHDAY_LIST = {
  withinDays: { minimum: 0, maximum: 366, default: 30 },
  limit: { minimum: 1, maximum: 1000, default: 100 },
} as const satisfies Record<string, IntegerBounds>;

export interface ListProfilesOptions {
  stage?: string;
  source?: string;
  /** within PROFILE_LIST.limit */
  limit?: number;
  /** from a previous page's `nextCursor` (stable under inserts); takes precedence over offset */
  cursor?: string;
  offset?: number;
  sort?: ProfileSort;
  direction?: 'asc' | 'desc';
}

export interface ProfilePage {
  items: ProfileSummary[];
  nextCursor?: string;
}

export interface BirthdayPage {
  items: UpcomingBirthday[];
  /** present when more birthdays follow in the window: pass it as `cursor` for the next page */
  nextCursor?: string;
}

export interface UpcomingBirthday {
  customerId: string;
  name?: string;
  birthday: string;
  /** the date of the next birthday (Feb 29 falls on Feb 28 in common years) */
  nextBirthday: string;
  daysUntil: number;
}

const SORT_COLUMN: Readonly<Record<ProfileSort, string>> = {
  customerId: 'customer_id',
  revenue: 'revenue_minor',
  orders: 'orders',
  lastPurchase: 'last_purchase_at',
};

/**
 * Questions asked of the profile read model. Date-relative figures take `asOf` (the HTTP layer
 * passes today); nothing here reads the clock.
 */
export class ProfileQueries {
  constructor(private readonly db: ReadModelQueries) {}

  async getProfile(customerId: string, asOf: string | Date): Promise<CustomerProfile | undefined> {
    const now = parseAsOf(asOf);
    const row = await this.db.get<ProfileRow>('SELECT * FROM profiles WHERE customer_id = ?', [customerId]);
    if (!row) return undefined;
    const [categories, products, channel, history, referees, thanks] = await Promise.all([
      this.db.all<{ category: string; quantity: number }>(
        'SELECT category, quantity FROM profile_categories WHERE customer_id = ? ORDER BY quantity DESC, category LIMIT 5', [customerId]),
      this.db.all<{ sku: string; quantity: number }>(
        'SELECT sku, quantity FROM profile_products WHERE customer_id = ? ORDER BY quantity DESC, sku LIMIT 5', [customerId]),
      this.db.get<{ channel: string }>(
        'SELECT channel FROM profile_channels WHERE customer_id = ? ORDER BY touchpoints + purchases DESC, channel LIMIT 1', [customerId]),
      this.db.all<{ stage: string; at: string; cause_event_id: string; event_id: string }>(
        'SELECT stage, at, cause_event_id, event_id FROM profile_stage_history WHERE customer_id = ? ORDER BY seq', [customerId]),
      this.db.all<{ referee_id: string; credited_at: string | null; converted_at: string | null }>(
        'SELECT referee_id, credited_at, converted_at FROM profile_referees WHERE customer_id = ? ORDER BY referee_id', [customerId]),
      this.db.all<{ at: string; gesture: string; reason: string; value_minor: number | null }>(
        'SELECT at, gesture, reason, value_minor FROM profile_thanks WHERE customer_id = ? ORDER BY at DESC, seq DESC', [customerId]),
    ]);
    const erased = Number(row.erased) === 1;
    const st = JSON.parse(row.state) as ProfileState;
    const since = Date.parse(st.registeredAt ?? st.firstSeenAt);
    const tenureDays = Math.max(1, (now - since) / DAY_MS);
    const next = st.birthday && !erased ? nextBirthday(st.birthday, now) : undefined;
    const weekday = mode(st.weekdays);
    return {
      customerId: row.customer_id,
      erased,
      identity: erased ? {} : defined({ name: st.name, email: st.email, phone: st.phone }),
      ...defined({ birthday: erased ? null : st.birthday, daysToNextBirthday: next?.daysUntil }),
      preferences: st.preferences,
      consents: st.consents,
      ...defined({ preferredChannel: channel?.channel }),
      habits: {
        topCategories: categories.map((c) => ({ category: c.category, quantity: Number(c.quantity) })),
        topProducts: products.map((p) => ({ sku: p.sku, quantity: Number(p.quantity) })),
        ...defined({
          averageBasketMinor: row.orders > 0 ? Math.round(row.revenue_minor / row.orders) : undefined,
          usualWeekday: weekday === undefined ? undefined : WEEKDAYS[weekday],
          usualHourUtc: mode(st.hours),
        }),
        ordersPer30Days: round2((row.orders * 30) / tenureDays),
      },
      ...defined({
        firstPurchaseAt: st.firstPurchaseAt,
        lastPurchaseAt: row.last_purchase_at || undefined,
        stage: row.stage,
        stageSince: st.stageSince,
      }),
      // the projection stores the event's own id as its cause when it has none: an event never causes itself
      stageHistory: history.map((h) => ({
        stage: h.stage,
        at: h.at,
        eventId: h.event_id,
        ...(h.cause_event_id !== h.event_id ? { causationId: h.cause_event_id } : {}),
      })),
      acquisition: defined({ source: row.source, channel: st.acquisitionChannel, campaign: st.campaign, registeredAt: st.registeredAt }),
      ...defined({ referredBy: st.referredBy }),
      referees: referees.map((r) => ({ customerId: r.referee_id, ...defined({ creditedAt: r.credited_at, convertedAt: r.converted_at }) })),
      feedback: {
        count: st.feedbackCount,
        complaints: st.complaints,
        ...defined({ averageScore: st.feedbackCount > 0 ? round2(st.feedbackScoreSum / st.feedbackCount) : undefined }),
      },
      thanks: {
        count: st.thanksCount,
        recent: thanks.map((t) => ({ at: t.at, gesture: t.gesture, reason: t.reason, ...defined({ valueMinor: t.value_minor }) })),
      },
      value: { revenueMinor: row.revenue_minor, costMinor: st.costMinor, marginMinor: row.revenue_minor - st.costMinor },
      rfm: {
        ...defined({
          recencyDays: row.last_purchase_at ? Math.max(0, utcDay(now) - utcDay(Date.parse(row.last_purchase_at))) : undefined,
        }),
        frequency: row.orders,
        monetaryMinor: row.revenue_minor,
      },
    };
  }

  /** whether the read model holds a profile for this customer (erased ones included) */
  async knows(customerId: string): Promise<boolean> {
    return (await this.db.get<{ one: number }>('SELECT 1 AS one FROM profiles WHERE customer_id = ?', [customerId])) !== undefined;
  }

  async listProfiles(options: ListProfilesOptions = {}): Promise<ProfilePage> {
    const limit = integerWithin('limit', options.limit, PROFILE_LIST.limit);
    const sort = options.sort ?? PROFILE_LIST.sort.default;
    const expr = SORT_COLUMN[sort];
    if (!expr) throw new InvalidQueryError('sort', `one of ${PROFILE_SORTS.join(', ')}`, String(sort));
    const direction = options.direction ?? PROFILE_LIST.direction.default;
    if (direction !== 'asc' && direction !== 'desc') throw new InvalidQueryError('direction', 'asc or desc', String(direction));
    const offset = integerWithin('offset', options.offset, PROFILE_LIST.offset);
    // a page is found by one or the other: an offset beside a cursor would be ignored
    if (options.cursor !== undefined && options.offset !== undefined) throw new InvalidQueryError('offset', 'no offset with a cursor (the cursor already says where the page starts)', offset);

    const where: string[] = [];
    const params: SqlParam[] = [];
    if (options.stage !== undefined) {
      where.push('stage = ?');
      params.push(options.stage);
    }
    if (options.source !== undefined) {
      where.push('source = ?');
      params.push(options.source);
    }
    const cmp = direction === 'asc' ? '>' : '<';
    const filters = new URLSearchParams(defined({ stage: options.stage, source: options.source })).toString();
    if (options.cursor !== undefined) {
      const [value, id] = decodeCursor(options.cursor, `${sort} ${direction}`, filters, PROFILE_POSITION[sort]);
      if (sort === 'customerId') {
        where.push(`customer_id ${cmp} ?`);
        params.push(id);
      } else {
        // a row-value comparison lets both databases seek the (sort, id) index to the cursor
        where.push(`(${expr}, customer_id) ${cmp} (?, ?)`);
        params.push(value, id);
      }
    }
    const dir = direction.toUpperCase();
    const order = sort === 'customerId' ? `customer_id ${dir}` : `${expr} ${dir}, customer_id ${dir}`;
    const rows = await this.db.all<ProfileRow & { sort_value: string | number }>(
      `SELECT customer_id, erased, stage, source, orders, revenue_minor, last_purchase_at, state, ${expr} AS sort_value
         FROM profiles ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
        ORDER BY ${order} LIMIT ${limit + 1} ${options.cursor === undefined && offset > 0 ? `OFFSET ${offset}` : ''}`,
      params,
    );
    return pageOf(
      rows,
      limit,
      (r) => ({
        customerId: r.customer_id,
        erased: Number(r.erased) === 1,
        orders: r.orders,
        revenueMinor: r.revenue_minor,
        ...defined({ name: (JSON.parse(r.state) as ProfileState).name, stage: r.stage, source: r.source, lastPurchaseAt: r.last_purchase_at || undefined }),
      }),
      (last) => encodeCursor(`${sort} ${direction}`, last.sort_value, last.customer_id, filters),
    );
  }

  /**
   * Birthdays in the next `withinDays` days from `asOf` (0 = today only), soonest first, then by
   * customer id, `limit` to a page; `nextCursor` (when more follow) asks for the next page. The
   * cursor names the last birthday's date and customer, so pages asked for with the same `asOf`
   * never skip or repeat anyone.
   */
  async upcomingBirthdays(options: { asOf: string | Date; withinDays?: number; limit?: number; cursor?: string }): Promise<BirthdayPage> {
    const now = parseAsOf(options.asOf);
    const withinDays = integerWithin('withinDays', options.withinDays, BIRTHDAY_LIST.withinDays);
    const limit = integerWithin('limit', options.limit, BIRTHDAY_LIST.limit);
    const today = Date.UTC(new Date(now).getUTCFullYear(), new Date(now).getUTCMonth(), new Date(now).getUTCDate());
    // the window the pages walk: a cursor from another window would skip or repeat birthdays
    const window = new URLSearchParams({ from: new Date(today).toISOString().slice(0, 10), withinDays: String(withinDays) }).toString();
    // after the cursor: its day from its customer on, then the later days of the window
    let after: { days: number; customerId: string } | undefined;
    if (options.cursor !== undefined) {
      const [date, customerId, carriesWindow] = decodeCursor(options.cursor, 'birthdays', window, BIRTHDAY_POSITION);
      const days = Math.round((Date.parse(`${date}T00:00:00.000Z`) - today) / DAY_MS);
      // a cursor of this window names a birthday in it: another day was not given by a page
      if (carriesWindow && (days < 0 || days > withinDays)) {
        const [first, last] = [today, today + withinDays * DAY_MS].map((t) => new Date(t).toISOString().slice(0, 10));
        throw new InvalidQueryError('cursor', `the nextCursor of a previous page (birthdays), whose position is a date of its window, ${first} to ${last}`, date);
      }
      after = { days, customerId };
    }
    const firstDay = Math.max(0, after?.days ?? 0);
    const out: UpcomingBirthday[] = [];
    if (firstDay <= withinDays) {
      const from = monthDay(today + firstDay * DAY_MS);
      const to = monthDay(today + withinDays * DAY_MS);
      // the window wraps past Dec 31 when its last day falls in a later year than its first
      const wraps = new Date(today + withinDays * DAY_MS).getUTCFullYear() > new Date(today + firstDay * DAY_MS).getUTCFullYear();
      const leap = 'SELECT customer_id, state FROM profiles WHERE erased = 0 AND birth_md IS NOT NULL AND';
      // Feb 29 birthdays are fetched on their own below: in the ranges they would take places of the LIMIT
      const select = `${leap} birth_md <> '02-29' AND`;
      const ordered = `ORDER BY birth_md, customer_id LIMIT ${limit + 1}`;
      // on the cursor's own day, only the customers after the cursor's
      const start = after && after.days === firstDay ? { sql: '(birth_md > ? OR (birth_md = ? AND customer_id > ?))', params: [from, from, after.customerId] } : { sql: 'birth_md >= ?', params: [from] };
      type Row = { customer_id: string; state: string };
      const wholeYear = withinDays - firstDay >= 365;
      // one range of MM-DD within a year; a window past Dec 31 is two: to Dec 31, then from Jan 1 up
      // to its last day (a whole year: up to the day before its first, which the first range holds)
      const ranges: [where: string, params: SqlParam[]][] =
        wraps || wholeYear
          ? [[start.sql, start.params], wholeYear ? ['birth_md < ?', [from]] : ['birth_md <= ?', [to]]]
          : [[`${start.sql} AND birth_md <= ?`, [...start.params, to]]];
      const candidates: Row[] = [];
      for (const [where, params] of ranges) candidates.push(...(await this.db.all<Row>(`${select} ${where} ${ordered}`, params)));
      // Feb 29 birthdays fall on Feb 28 in common years, out of MM-DD order: fetch them on their own
      candidates.push(...(await this.db.all<Row>(`${leap} birth_md = '02-29' ORDER BY customer_id`)));
      const seen = new Set<string>();
      for (const c of candidates) {
        if (seen.has(c.customer_id)) continue;
        seen.add(c.customer_id);
        const st = JSON.parse(c.state) as ProfileState;
        if (!st.birthday) continue;
        const next = nextBirthday(st.birthday, now);
        if (next.daysUntil > withinDays) continue;
        if (after && (next.daysUntil < after.days || (next.daysUntil === after.days && c.customer_id <= after.customerId))) continue;
        out.push({ customerId: c.customer_id, birthday: st.birthday, nextBirthday: next.date, daysUntil: next.daysUntil, ...defined({ name: st.name }) });
      }
      out.sort((a, b) => a.daysUntil - b.daysUntil || (a.customerId < b.customerId ? -1 : a.customerId > b.customerId ? 1 : 0));
    }
    return pageOf(out, limit, (b) => b, (last) => encodeCursor('birthdays', last.nextBirthday, last.customerId, window));
  }
}

/** the next occurrence of a birthday on or after the UTC day of `now` */
export function nextBirthday(birthday: string, now: number): { date: string; daysUntil: number } {
  const day = new Date(now);
  const today = Date.UTC(day.getUTCFullYear(), day.getUTCMonth(), day.getUTCDate());
  const month = Number(birthday.slice(5, 7)) - 1;
  const dom = Number(birthday.slice(8, 10));
  const occurrence = (year: number) => {
    const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
    return Date.UTC(year, month, month === 1 && dom === 29 && !leap ? 28 : dom);
  };
  let at = occurrence(day.getUTCFullYear());
  if (at < today) at = occurrence(day.getUTCFullYear() + 1);
  return { date: new Date(at).toISOString().slice(0, 10), daysUntil: Math.round((at - today) / DAY_MS) };
}

/** whole UTC calendar days since the epoch */
function utcDay(ms: number): number {
  return Math.floor(ms / DAY_MS);
}

function monthDay(ms: number): string {
  return new Date(ms).toISOString().slice(5, 10);
}

/** index of the largest count (the earliest on ties), undefined when all are zero */
function mode(counts: readonly number[]): number | undefined {
  let best: number | undefined;
  let bestCount = 0;
  counts.forEach((n, i) => {
    if (n > bestCount) {
      best = i;
      bestCount = n;
    }
  });
  return best;
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

/** drops null/undefined fields so answers carry only what is known */
function defined<T extends Record<string, unknown>>(o: T): { [K in keyof T]?: Exclude<T[K], null> } {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v !== null && v !== undefined) out[k] = v;
  return out as { [K in keyof T]?: Exclude<T[K], null> };
}

/** a date YYYY-MM-DD that is on the calendar (not 2025-02-30, which Date.parse reads as March 2) */
function isCalendarDate(v: string): boolean {
  const t = Date.parse(`${v.slice(0, 10)}T00:00:00.000Z`);
  return /^\d{4}-\d{2}-\d{2}/.test(v) && Number.isFinite(t) && new Date(t).toISOString().slice(0, 10) === v.slice(0, 10);
}

/** the position of a profile list's cursor in each order: the sort value of the page's last row */
const PROFILE_POSITION: Readonly<Record<ProfileSort, CursorPosition>> = {
  customerId: { what: 'the customer id again', holds: (v, id) => v === id },
  revenue: { what: 'a revenue in minor units (a non-negative integer)', holds: count },
  orders: { what: 'an order count (a non-negative integer)', holds: count },
  lastPurchase: {
    what: 'a last purchase time (an ISO-8601 date-time on a date that exists), or "" for none',
    holds: (v) => v === '' || (typeof v === 'string' && /^\d{4}-\d{2}-\d{2}T/.test(v) && isCalendarDate(v) && Number.isFinite(Date.parse(v))),
  },
};

/** the position of a birthdays cursor: the next-birthday date of the page's last item */
const BIRTHDAY_POSITION: CursorPosition = {
  what: 'a date YYYY-MM-DD that exists',
  holds: (v) => typeof v === 'string' && v.length === 10 && isCalendarDate(v),
};
