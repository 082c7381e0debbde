import { utcMillisOf } from '@clientele/domain';
import type { JsonObject, StoredEvent } from '@clientele/event-store';
import { DEFAULT_RESIDENT_LIMIT } from './resident-limit';
import type { Projection, ReadModelTransaction, SqlParam } from './read-model-store';
import { replaceAll, selectIn, textKey, upsertRows } from './sql-batch';

/**
 * Intimacy profiles: one row per customer plus small per-customer tables (categories, products,
 * channels, stage history, referees, last thanks). Per batch the touched profiles are loaded once,
 * folded in memory and written back; child tables take summed deltas. Memory is bounded by the
 * batch, never by the log, except in a rebuild instance, which also keeps up to `residentLimit`
 * profiles it folded.
 */
export const PROFILE_TABLES = [
  'profiles',
  'profile_categories',
  'profile_products',
  'profile_channels',
  'profile_stage_history',
  'profile_referees',
  'profile_thanks',
] as const;

/** how many thanks a profile keeps in full */
export const PROFILE_RECENT_THANKS = 10;

/**
 * The indexed face of a profile: the columns queries filter and sort on. Everything else about the
 * customer lives in `state` (JSON, fixed key order): one wide column binds and writes far faster
 * than thirty narrow ones, which is most of a rebuild's cost.
 */
export interface ProfileRow {
  customer_id: string;
  erased: number;
  stage: string | null;
  source: string | null;
  orders: number;
  revenue_minor: number;
  /** '' before the first purchase (not NULL: both databases then sort it the same, first) */
  last_purchase_at: string;
  /** `MM-DD` of the birthday: indexable for upcoming-birthday queries */
  birth_md: string | null;
  state: string;
}

export interface ProfileState {
  name: string | null;
  email: string | null;
  phone: string | null;
  birthday: string | null;
  preferences: Record<string, string>;
  consents: Record<string, boolean>;
  stageSince: string | null;
  stageSeq: number;
  acquisitionChannel: string | null;
  campaign: string | null;
  referredBy: string | null;
  registeredAt: string | null;
  firstSeenAt: string;
  firstPurchaseAt: string | null;
  costMinor: number;
  /** purchases per UTC weekday, 0 = Sunday */
  weekdays: number[];
  /** purchases per UTC hour */
  hours: number[];
  feedbackCount: number;
  feedbackScoreSum: number;
  complaints: number;
  thanksCount: number;
  referees: number;
}

const PROFILE_COLUMNS: readonly (keyof ProfileRow)[] = [
  'customer_id', 'erased', 'stage', 'source', 'orders', 'revenue_minor', 'last_purchase_at', 'birth_md', 'state',
];

const UPDATABLE_COLUMNS = PROFILE_COLUMNS.filter((c) => c !== 'customer_id');
const updateStatements = new Map<string, string>();

function updateSql(columns: readonly string[]): string {
  const key = columns.join(',');
  let sql = updateStatements.get(key);
  if (sql === undefined) {
    sql = `UPDATE profiles SET ${columns.map((c) => `${c} = ?`).join(', ')} WHERE customer_id = ?`;
    updateStatements.set(key, sql);
  }
  return sql;
}

const STAGE_OF: Readonly<Record<string, string>> = {
  ProspectRegistered: 'prospect',
  CustomerConverted: 'customer',
  RepeatBuyerQualified: 'repeat_buyer',
  AdvocateRecognized: 'advocate',
  CustomerChurned: 'churned',
  CustomerReactivated: 'customer',
};

const CUSTOMER_EVENT_TYPES = new Set([
  'ProspectRegistered', 'TouchpointRecorded', 'PurchaseRecorded', 'CustomerConverted', 'RepeatBuyerQualified',
  'AdvocateRecognized', 'CustomerChurned', 'CustomerReactivated', 'ReferralCredited', 'ReferralConverted',
  'FeedbackReceived', 'CustomerThanked', 'ProfileUpdated', 'PersonalDataErased',
]);

interface Working {
  row: ProfileRow;
  s: ProfileState;
  /**
   * Quantities per category and per product, and touchpoints/purchases per channel, summed since
   * the profile's child rows were last written (they are written as deltas added to the stored
   * sums). Kept on the profile so the fold finds them without another lookup by customer id.
   */
  categories: Map<string, number> | undefined;
  products: Map<string, number> | undefined;
  channels: Map<string, ChannelSums> | undefined;
  /** rebuild instance: changed since last written, and listed in `unwritten` */
  dirty: boolean;
}

interface ChannelSums {
  touchpoints: number;
  purchases: number;
}

export class ProfilesProjection implements Projection {
  readonly name = 'profiles';
  /** 2: the recent thanks are the latest by business time, not the last recorded */
  readonly version = 2;
  readonly tables = PROFILE_TABLES;

  /**
   * Only in a rebuild instance: every profile this instance folded, written or not, so later
   * batches neither read nor parse it back. Cleared (after writing what is unwritten) when it
   * outgrows `residentLimit`, then profiles are read from the store again: memory follows the
   * number of customers up to that limit, never the number of events.
   */
  private readonly resident: Map<string, Working> | undefined;
  /** resident profiles changed since they were last written (`dirty`): written by `flush` or on overflow */
  private unwritten: Working[] = [];
  /** a rebuild instance knows the store held no profiles and it dropped none since: nothing to read back */
  private storeHoldsOnlyResident: boolean | undefined;
  private readonly residentLimit: number;
  /** a rebuild instance keeps what it folds across `apply` calls: it takes a rebuild's log page by page */
  readonly foldsPages: boolean;

  constructor(options: { keepWrittenProfiles?: boolean; residentLimit?: number } = {}) {
    this.foldsPages = options.keepWrittenProfiles === true;
    this.resident = options.keepWrittenProfiles ? new Map() : undefined;
    this.residentLimit = options.residentLimit ?? DEFAULT_RESIDENT_LIMIT;
  }

  forRebuild(): ProfilesProjection {
    return new ProfilesProjection({ keepWrittenProfiles: true, residentLimit: this.residentLimit });
  }

  async migrate(tx: ReadModelTransaction): Promise<void> {
    const key = textKey(tx.dialect);
    await tx.exec(`
      CREATE TABLE IF NOT EXISTS profiles (
        customer_id ${key} PRIMARY KEY, erased BIGINT NOT NULL, stage ${key}, source ${key},
        orders BIGINT NOT NULL, revenue_minor BIGINT NOT NULL, last_purchase_at ${key} NOT NULL, birth_md ${key},
        state TEXT NOT NULL
      );
      CREATE INDEX IF NOT EXISTS profiles_stage ON profiles (stage, customer_id);
      CREATE INDEX IF NOT EXISTS profiles_source ON profiles (source, customer_id);
      CREATE INDEX IF NOT EXISTS profiles_revenue ON profiles (revenue_minor, customer_id);
      CREATE INDEX IF NOT EXISTS profiles_orders ON profiles (orders, customer_id);
      CREATE INDEX IF NOT EXISTS profiles_last_purchase ON profiles (last_purchase_at, customer_id);
      CREATE INDEX IF NOT EXISTS profiles_birth_md ON profiles (birth_md, customer_id);
      CREATE TABLE IF NOT EXISTS profile_categories (
        customer_id ${key} NOT NULL, category ${key} NOT NULL, quantity BIGINT NOT NULL, PRIMARY KEY (customer_id, category));
      CREATE TABLE IF NOT EXISTS profile_products (
        customer_id ${key} NOT NULL, sku ${key} NOT NULL, quantity BIGINT NOT NULL, PRIMARY KEY (customer_id, sku));
      CREATE TABLE IF NOT EXISTS profile_channels (
        customer_id ${key} NOT NULL, channel ${key} NOT NULL, touchpoints BIGINT NOT NULL, purchases BIGINT NOT NULL,
        PRIMARY KEY (customer_id, channel));
      CREATE TABLE IF NOT EXISTS profile_stage_history (
        customer_id ${key} NOT NULL, seq BIGINT NOT NULL, stage TEXT NOT NULL, at TEXT NOT NULL,
        cause_event_id TEXT NOT NULL, event_id TEXT NOT NULL, PRIMARY KEY (customer_id, seq));
      CREATE TABLE IF NOT EXISTS profile_referees (
        customer_id ${key} NOT NULL, referee_id ${key} NOT NULL, credited_at TEXT, converted_at TEXT,
        PRIMARY KEY (customer_id, referee_id));
      CREATE TABLE IF NOT EXISTS profile_thanks (
        customer_id ${key} NOT NULL, seq BIGINT NOT NULL, at TEXT NOT NULL, gesture TEXT NOT NULL, reason TEXT NOT NULL,
        value_minor BIGINT, event_id TEXT NOT NULL, PRIMARY KEY (customer_id, seq));
    `);
  }

  async apply(events: readonly StoredEvent[], tx: ReadModelTransaction): Promise<void> {
    const resident = this.resident;
    if (resident && this.storeHoldsOnlyResident === undefined) {
      this.storeHoldsOnlyResident = (await tx.get('SELECT customer_id FROM profiles LIMIT 1')) === undefined;
    }
    // while the store holds only what a rebuild instance keeps, the fold works on the kept profiles
    // directly: no profile to read back, so no pass to collect the batch's customers first
    const direct = resident !== undefined && this.storeHoldsOnlyResident === true;
    const profiles = direct ? resident : new Map<string, Working>();
    const before = new Map<string, ProfileRow>();
    if (!direct) {
      const ids = new Set<string>();
      for (const e of events) {
        if (CUSTOMER_EVENT_TYPES.has(e.type) && typeof e.data.customerId === 'string') ids.add(e.data.customerId);
      }
      if (ids.size === 0) return;
      const unknown: string[] = [];
      for (const id of ids) {
        const kept = resident?.get(id);
        if (kept) profiles.set(id, kept);
        else unknown.push(id);
      }
      if (unknown.length > 0 && !this.storeHoldsOnlyResident) {
        const loaded = await selectIn<ProfileRow>(tx, `SELECT ${PROFILE_COLUMNS.join(', ')} FROM profiles`, 'customer_id', unknown);
        for (const r of loaded) {
          profiles.set(r.customer_id, working({ ...r }, JSON.parse(r.state) as ProfileState));
          before.set(r.customer_id, r);
        }
      }
    }

    const unwritten = this.unwritten;
    const history: SqlParam[][] = [];
    const referees = new Map<string, { referrer: string; referee: string; credited: string | null; converted: string | null }>();
    const thanks: SqlParam[][] = [];

    for (const e of events) {
      const customerId = e.data.customerId;
      if (!CUSTOMER_EVENT_TYPES.has(e.type) || typeof customerId !== 'string') continue;
      const at = e.metadata.occurredAt;
      let p = profiles.get(customerId);
      if (!p) {
        p = blankProfile(customerId, at);
        profiles.set(customerId, p);
      }
      if (resident && !p.dirty) {
        p.dirty = true;
        unwritten.push(p);
      }
      const { row, s } = p;
      const d = e.data;

      const stage = STAGE_OF[e.type];
      if (stage) {
        row.stage = stage;
        s.stageSince = at;
        s.stageSeq += 1;
        const cause = typeof e.metadata.causationId === 'string' ? e.metadata.causationId : e.id;
        history.push([customerId, s.stageSeq, stage, at, cause, e.id]);
      }

      switch (e.type) {
        case 'ProspectRegistered':
          row.source = str(d.source) ?? row.source;
          s.acquisitionChannel = str(d.channel) ?? s.acquisitionChannel;
          s.campaign = str(d.campaign) ?? s.campaign;
          s.referredBy = str(d.referredBy) ?? s.referredBy;
          s.registeredAt = s.registeredAt ?? at;
          applyPersonal(p, d.personal);
          break;
        case 'TouchpointRecorded': {
          const channel = str(d.channel);
          if (channel) addChannel(p, channel, 1, 0);
          break;
        }
        case 'PurchaseRecorded': {
          row.orders += 1;
          row.revenue_minor += num(d.totalMinor);
          s.costMinor += num(d.costMinor);
          if (!s.firstPurchaseAt || at < s.firstPurchaseAt) s.firstPurchaseAt = at;
          if (!row.last_purchase_at || at > row.last_purchase_at) row.last_purchase_at = at;
          const when = utcWeekdayAndHour(at);
          if (when >= 0) {
            const weekday = when >> 5;
            const hour = when & 31;
            s.weekdays[weekday] = (s.weekdays[weekday] ?? 0) + 1;
            s.hours[hour] = (s.hours[hour] ?? 0) + 1;
          }
          const channel = str(d.channel);
          if (channel) addChannel(p, channel, 0, 1);
          for (const line of Array.isArray(d.lines) ? d.lines : []) {
            if (!isObject(line)) continue;
            const quantity = num(line.quantity);
            const category = str(line.category);
            const sku = str(line.sku);
            if (category) p.categories = addTo(p.categories, category, quantity);
            if (sku) p.products = addTo(p.products, sku, quantity);
          }
          break;
        }
        case 'ReferralCredited':
        case 'ReferralConverted': {
          const referee = str(d.refereeId);
          if (!referee) break;
          const k = `${customerId}\u0000${referee}`;
          const entry = referees.get(k) ?? { referrer: customerId, referee, credited: null, converted: null };
          if (e.type === 'ReferralCredited') {
            if (!entry.credited) {
              entry.credited = at;
              s.referees += 1; // taken back below when the stored edge was already credited
            }
          } else entry.converted = entry.converted ?? at;
          referees.set(k, entry);
          break;
        }
        case 'FeedbackReceived':
          s.feedbackCount += 1;
          s.feedbackScoreSum += num(d.score);
          if (d.kind === 'complaint') s.complaints += 1;
          break;
        case 'CustomerThanked':
          s.thanksCount += 1;
          thanks.push([
            customerId, s.thanksCount, at, str(d.gesture) ?? '', str(d.reason) ?? '',
            typeof d.valueMinor === 'number' ? d.valueMinor : null, e.id,
          ]);
          break;
        case 'ProfileUpdated':
          applyPersonal(p, d.personal);
          if (isObject(d.preferences)) {
            for (const [k, v] of Object.entries(d.preferences)) if (typeof v === 'string') s.preferences[k] = v;
          }
          if (isObject(d.consents)) {
            for (const [k, v] of Object.entries(d.consents)) if (typeof v === 'boolean') s.consents[k] = v;
          }
          break;
        case 'PersonalDataErased':
          row.erased = 1;
          row.birth_md = null;
          s.name = s.email = s.phone = s.birthday = null;
          break;
        default:
          break;
      }
    }

    await this.writeReferees(tx, referees, profiles);
    await upsertRows(tx, 'profile_stage_history', ['customer_id', 'seq', 'stage', 'at', 'cause_event_id', 'event_id'],
      ['customer_id', 'seq'], 'DO NOTHING', history);
    await upsertRows(tx, 'profile_thanks', ['customer_id', 'seq', 'at', 'gesture', 'reason', 'value_minor', 'event_id'],
      ['customer_id', 'seq'], 'DO NOTHING', thanks);

    if (resident) {
      // thanks past the last ten are trimmed by `flush`, once per profile rather than once per page
      if (!direct) for (const [id, p] of profiles) resident.set(id, p);
      if (resident.size > this.residentLimit) {
        await this.flush(tx);
        resident.clear();
        this.storeHoldsOnlyResident = false;
      }
      return;
    }
    await this.writeProfiles(tx, profiles, before);
    await writeChildSums(tx, profiles.values());
    const thanked = new Set(thanks.map((t) => String(t[0])));
    for (const id of thanked) await trimThanks(tx, id, profiles.get(id)?.s.thanksCount ?? 0);
  }

  /**
   * New profiles go in with multi-row inserts; stored ones are updated in only the columns that
   * changed, because SQLite rewrites an index entry only when its column is assigned, and most
   * events (touchpoints, feedback, thanks) change nothing but `state`.
   */
  private async writeProfiles(tx: ReadModelTransaction, profiles: Map<string, Working>, before: Map<string, ProfileRow>): Promise<void> {
    const inserts: SqlParam[][] = [];
    for (const p of profiles.values()) {
      p.row.state = serializeState(p.s);
      const old = before.get(p.row.customer_id);
      if (!old) {
        inserts.push(PROFILE_COLUMNS.map((c) => p.row[c]));
        continue;
      }
      const changed = UPDATABLE_COLUMNS.filter((c) => p.row[c] !== old[c]);
      if (changed.length === 0) continue;
      await tx.run(updateSql(changed), [...changed.map((c) => p.row[c]), p.row.customer_id]);
    }
    await upsertRows(tx, 'profiles', PROFILE_COLUMNS, ['customer_id'], replaceAll(PROFILE_COLUMNS, ['customer_id']), inserts);
  }

  /**
   * A rebuild instance writes each profile once with its latest state rather than once per batch
   * that touched it: whole rows, 100 a statement (the store being rebuilt builds its secondary
   * indexes after the load, so narrow updates would save nothing).
   */
  async flush(tx: ReadModelTransaction): Promise<void> {
    if (!this.resident) return;
    const unwritten = this.unwritten;
    if (unwritten.length === 0) return;
    this.unwritten = [];
    await writeChildSums(tx, unwritten);
    const rows: SqlParam[][] = [];
    for (const p of unwritten) {
      p.dirty = false;
      p.row.state = serializeState(p.s);
      rows.push(PROFILE_COLUMNS.map((c) => p.row[c]));
      await trimThanks(tx, p.row.customer_id, p.s.thanksCount);
    }
    await upsertRows(tx, 'profiles', PROFILE_COLUMNS, ['customer_id'], replaceAll(PROFILE_COLUMNS, ['customer_id']), rows);
  }

  /** a referee counts once however often the credit is repeated across batches */
  private async writeReferees(
    tx: ReadModelTransaction,
    referees: Map<string, { referrer: string; referee: string; credited: string | null; converted: string | null }>,
    profiles: Map<string, Working>,
  ): Promise<void> {
    if (referees.size === 0) return;
    const referrers = [...new Set([...referees.values()].map((r) => r.referrer))];
    const stored = await selectIn<{ customer_id: string; referee_id: string; credited_at: string | null }>(
      tx, 'SELECT customer_id, referee_id, credited_at FROM profile_referees', 'customer_id', referrers);
    for (const row of stored) {
      const entry = referees.get(`${row.customer_id}\u0000${row.referee_id}`);
      const p = profiles.get(row.customer_id);
      if (entry && entry.credited && row.credited_at && p) p.s.referees -= 1;
    }
    await upsertRows(tx, 'profile_referees', ['customer_id', 'referee_id', 'credited_at', 'converted_at'], ['customer_id', 'referee_id'],
      'DO UPDATE SET credited_at = COALESCE(profile_referees.credited_at, excluded.credited_at), converted_at = COALESCE(profile_referees.converted_at, excluded.converted_at)',
      [...referees.values()].map((r) => [r.referrer, r.referee, r.credited, r.converted]));
  }
}

/**
 * keeps the `PROFILE_RECENT_THANKS` most recent thanks, by business time (then by arrival), of a
 * customer who has been thanked `count` times: a thank-you recorded late for an earlier date does
 * not push out a later one
 */
async function trimThanks(tx: ReadModelTransaction, customerId: string, count: number): Promise<void> {
  if (count > PROFILE_RECENT_THANKS) {
    await tx.run(
      `DELETE FROM profile_thanks WHERE customer_id = ? AND seq NOT IN (
         SELECT seq FROM profile_thanks WHERE customer_id = ? ORDER BY at DESC, seq DESC LIMIT ${PROFILE_RECENT_THANKS})`,
      [customerId, customerId],
    );
  }
}

/** the child sums the profiles hold, added to the stored ones, then forgotten by the profiles */
async function writeChildSums(tx: ReadModelTransaction, profiles: Iterable<Working>): Promise<void> {
  const categories: SqlParam[][] = [];
  const products: SqlParam[][] = [];
  const channels: SqlParam[][] = [];
  for (const p of profiles) {
    const id = p.row.customer_id;
    if (p.categories) for (const [key, quantity] of p.categories) categories.push([id, key, quantity]);
    if (p.products) for (const [key, quantity] of p.products) products.push([id, key, quantity]);
    if (p.channels) for (const [key, sums] of p.channels) channels.push([id, key, sums.touchpoints, sums.purchases]);
    p.categories = p.products = p.channels = undefined;
  }
  await upsertRows(tx, 'profile_categories', ['customer_id', 'category', 'quantity'], ['customer_id', 'category'],
    'DO UPDATE SET quantity = profile_categories.quantity + excluded.quantity', categories);
  await upsertRows(tx, 'profile_products', ['customer_id', 'sku', 'quantity'], ['customer_id', 'sku'],
    'DO UPDATE SET quantity = profile_products.quantity + excluded.quantity', products);
  await upsertRows(tx, 'profile_channels', ['customer_id', 'channel', 'touchpoints', 'purchases'], ['customer_id', 'channel'],
    'DO UPDATE SET touchpoints = profile_channels.touchpoints + excluded.touchpoints, purchases = profile_channels.purchases + excluded.purchases',
    channels);
}

function addTo(sums: Map<string, number> | undefined, key: string, by: number): Map<string, number> {
  const m = sums ?? new Map<string, number>();
  m.set(key, (m.get(key) ?? 0) + by);
  return m;
}

function addChannel(p: Working, channel: string, touchpoints: number, purchases: number): void {
  const m = (p.channels ??= new Map());
  const sums = m.get(channel);
  if (sums) {
    sums.touchpoints += touchpoints;
    sums.purchases += purchases;
  } else m.set(channel, { touchpoints, purchases });
}

function working(row: ProfileRow, s: ProfileState): Working {
  return { row, s, categories: undefined, products: undefined, channels: undefined, dirty: false };
}

function blankProfile(customerId: string, at: string): Working {
  return working(
    { customer_id: customerId, erased: 0, stage: null, source: null, orders: 0, revenue_minor: 0, last_purchase_at: '', birth_md: null, state: '' },
    {
      name: null, email: null, phone: null, birthday: null, preferences: {}, consents: {}, stageSince: null, stageSeq: 0,
      acquisitionChannel: null, campaign: null, referredBy: null, registeredAt: null, firstSeenAt: at, firstPurchaseAt: null,
      costMinor: 0, weekdays: new Array<number>(7).fill(0), hours: new Array<number>(24).fill(0),
      feedbackCount: 0, feedbackScoreSum: 0, complaints: 0, thanksCount: 0, referees: 0,
    },
  );
}

/** fixed key order and sorted maps: equal states store as equal text, so digests compare */
function serializeState(s: ProfileState): string {
  const ordered: ProfileState = {
    name: s.name, email: s.email, phone: s.phone, birthday: s.birthday,
    preferences: sortedKeys(s.preferences), consents: sortedKeys(s.consents),
    stageSince: s.stageSince, stageSeq: s.stageSeq, acquisitionChannel: s.acquisitionChannel, campaign: s.campaign,
    referredBy: s.referredBy, registeredAt: s.registeredAt, firstSeenAt: s.firstSeenAt, firstPurchaseAt: s.firstPurchaseAt,
    costMinor: s.costMinor, weekdays: s.weekdays, hours: s.hours, feedbackCount: s.feedbackCount,
    feedbackScoreSum: s.feedbackScoreSum, complaints: s.complaints, thanksCount: s.thanksCount, referees: s.referees,
  };
  return JSON.stringify(ordered);
}

function sortedKeys<V>(o: Record<string, V>): Record<string, V> {
  const out: Record<string, V> = {};
  for (const k of Object.keys(o).sort()) out[k] = o[k] as V;
  return out;
}

/** personal data once erased stays erased: the key that could read it is gone */
function applyPersonal(p: Working, personal: unknown): void {
  if (p.row.erased || !isObject(personal)) return;
  if (typeof personal.name === 'string') p.s.name = personal.name;
  if (typeof personal.email === 'string') p.s.email = personal.email;
  if (typeof personal.phone === 'string') p.s.phone = personal.phone;
  if (typeof personal.birthday === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(personal.birthday)) {
    p.s.birthday = personal.birthday;
    p.row.birth_md = personal.birthday.slice(5);
  }
}

const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;

/**
 * The UTC weekday (0 = Sunday) and hour of a timestamp as `weekday << 5 | hour`, or -1 when
 * `Date` cannot read it. Canonical timestamps (`YYYY-MM-DDTHH:MM:SS.sssZ`, what the store
 * records) are read by the domain's arithmetic reader, which costs a fraction of parsing a `Date`;
 * anything else (other forms, impossible days, years before 100) goes through `Date` exactly as
 * before.
 */
export function utcWeekdayAndHour(at: unknown): number {
  const canonical = typeof at === 'string' ? utcMillisOf(at) : undefined;
  if (canonical !== undefined) {
    const days = Math.floor(canonical / DAY_MS);
    // 1970-01-01 was a Thursday
    return ((((days + 4) % 7) + 7) % 7) << 5 | Math.floor((canonical - days * DAY_MS) / HOUR_MS);
  }
  // what metadata claims to be a timestamp may be anything: Date decides, as it always did
  const when = new Date(at as string);
  const ms = when.getTime();
  if (Number.isNaN(ms)) return -1;
  return (when.getUTCDay() << 5) | when.getUTCHours();
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v.length > 0 ? v : undefined;
}

function num(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) ? v : 0;
}

function isObject(v: unknown): v is JsonObject {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
