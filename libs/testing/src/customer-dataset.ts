import { seededRandom } from './customer-log.generator';
import { GENESIS_HASH, chainHash } from '@clientele/event-store';
import type { JsonObject, StoredEvent } from '@clientele/event-store';
import { customerStream, campaignStream, employeeStream, defaultPolicy } from '@clientele/domain';
import type { LifecyclePolicy } from '@clientele/domain';

/**
 * A seeded synthetic history of customers, shaped like the log the engine writes: registrations
 * with source/channel/campaign, purchases across months, referrals, feedback and complaints against
 * employees, churn by the inactivity sweep and by explicit loss, win-backs, campaign spend, hires and
 * leavers. Lifecycle transitions are emitted by a small time-ordered simulation of the default
 * policy, in the same append as their cause, so the log is consistent with the lifecycle rules.
 *
 * The same options always give the same events (no clock, no Math.random).
 */
export interface CustomerDatasetOptions {
  seed?: number;
  customers?: number;
  /** first business day, `YYYY-MM-DD` */
  start?: string;
  months?: number;
  employees?: number;
  campaigns?: number;
  /** chance that a buyer buys again after each purchase (default 0.72): more means longer histories */
  repeatProbability?: number;
  policy?: LifecyclePolicy;
}

export const DATASET_SOURCES = ['web', 'store', 'ads', 'partner', 'referral'] as const;
export const DATASET_ACQUISITION_CHANNELS = ['email', 'web', 'store', 'social', 'phone'] as const;
export const DATASET_PURCHASE_CHANNELS = ['web', 'store', 'phone', 'app'] as const;
export const DATASET_LOCATIONS = ['paris', 'lyon', 'berlin', 'madrid', 'online'] as const;
export const DATASET_CATEGORIES = ['books', 'music', 'video', 'games', 'garden'] as const;

const DAY = 86_400_000;

/** All events of a dataset in global order (positions 1..n). */
export function generateCustomerDataset(options: CustomerDatasetOptions = {}): StoredEvent[] {
  const out: StoredEvent[] = [];
  for (const chunk of customerDatasetChunks(options, options.customers ?? 300)) out.push(...chunk);
  return out;
}

/**
 * The same kind of history in chunks of `chunkSize` customers, so benchmarks can build very large
 * logs with flat memory. Referrals stay inside a chunk; employees and campaign spend come with the
 * first chunk. Positions continue across chunks.
 */
export function* customerDatasetChunks(options: CustomerDatasetOptions, chunkSize: number): Generator<StoredEvent[]> {
  const total = options.customers ?? 300;
  const log = new LogWriter();
  for (let offset = 0, n = 0; offset < total; offset += chunkSize, n += 1) {
    const size = Math.min(chunkSize, total - offset);
    yield simulate(options, offset, size, n === 0, log);
  }
}

class LogWriter {
  private position = 0;
  private prevHash = GENESIS_HASH;
  private readonly revisions = new Map<string, number>();

  write(streamId: string, type: string, data: JsonObject, occurredAt: string, causationId?: string): StoredEvent {
    this.position += 1;
    const revision = (this.revisions.get(streamId) ?? -1) + 1;
    // revisions only matter per stream; customer streams never span chunks, so old ones can go
    this.revisions.set(streamId, revision);
    const base = {
      id: `evt-${String(this.position).padStart(9, '0')}`,
      streamId,
      revision,
      position: this.position,
      type,
      data: { ...data, occurredAt },
      metadata: { occurredAt, schemaVersion: 1, ...(causationId ? { causationId } : {}) },
      recordedAt: occurredAt,
    };
    const hash = chainHash(this.prevHash, base);
    const event: StoredEvent = { ...base, hash, prevHash: this.prevHash };
    this.prevHash = hash;
    return event;
  }

  forgetStreams(prefix: string): void {
    for (const k of this.revisions.keys()) if (k.startsWith(prefix)) this.revisions.delete(k);
  }
}

type Stage = 'none' | 'prospect' | 'customer' | 'repeat_buyer' | 'advocate' | 'churned';

interface SimCustomer {
  id: string;
  stage: Stage;
  orders: number;
  lastPurchaseAt: number | null;
  referredBy: string | null;
  convertedReferrals: number;
}

type Intent =
  | { t: number; seq: number; kind: 'register'; c: string; data: JsonObject }
  | { t: number; seq: number; kind: 'purchase'; c: string; data: JsonObject }
  | { t: number; seq: number; kind: 'feedback'; c: string; data: JsonObject }
  | { t: number; seq: number; kind: 'touchpoint'; c: string; data: JsonObject }
  | { t: number; seq: number; kind: 'lost'; c: string; detail: string }
  | { t: number; seq: number; kind: 'sweep' }
  | { t: number; seq: number; kind: 'org'; streamId: string; type: string; data: JsonObject };

type WithoutSeq<T> = T extends unknown ? Omit<T, 'seq'> : never;

function simulate(
  options: CustomerDatasetOptions,
  offset: number,
  size: number,
  withOrganisation: boolean,
  log: LogWriter,
): StoredEvent[] {
  const rnd = seededRandom((options.seed ?? 42) * 1_000_003 + offset);
  const policy = options.policy ?? defaultPolicy;
  const start = Date.parse(`${options.start ?? '2024-01-01'}T00:00:00.000Z`);
  const months = options.months ?? 24;
  const end = addMonths(start, months);
  const employeeCount = options.employees ?? 8;
  const campaignCount = options.campaigns ?? 5;
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)] as T;
  const intents: Intent[] = [];
  let seq = 0;
  const push = (i: WithoutSeq<Intent>): void => {
    if (i.t < end) intents.push({ ...i, seq: seq++ } as Intent);
  };

  const employees = Array.from({ length: employeeCount }, (_, i) => `emp-${i + 1}`);
  const campaigns = Array.from({ length: campaignCount }, (_, i) => `cmp-${i + 1}`);
  if (withOrganisation) {
    employees.forEach((e, i) => {
      const hired = i < employeeCount / 2 ? start : start + Math.floor(rnd() * (end - start) * 0.5);
      push({ t: hired, kind: 'org', streamId: employeeStream(e), type: 'EmployeeHired', data: { employeeId: e, name: `Employee ${i + 1}` } });
      if (rnd() < 0.35) {
        const left = hired + Math.floor(rnd() * (end - hired));
        push({ t: left, kind: 'org', streamId: employeeStream(e), type: 'EmployeeLeft', data: { employeeId: e, reason: 'resigned' } });
      }
    });
    for (let m = 0; m < months; m += 1) {
      for (const cmp of campaigns) {
        if (rnd() < 0.6) {
          push({
            t: addMonths(start, m) + Math.floor(rnd() * 20 * DAY),
            kind: 'org',
            streamId: campaignStream(cmp),
            type: 'CampaignSpendRecorded',
            data: { campaignId: cmp, spendId: `sp-${cmp}-${m}`, channel: pick(DATASET_ACQUISITION_CHANNELS), amountMinor: 10_000 + Math.floor(rnd() * 90_000) },
          });
        }
      }
    }
  }
  for (let m = 1; m <= months; m += 1) push({ t: addMonths(start, m) - 1, kind: 'sweep' });

  const registrations = Array.from({ length: size }, () => start + Math.floor(rnd() * (end - start) * 0.9)).sort((a, b) => a - b);
  const ids = registrations.map((_, i) => `c${String(offset + i + 1).padStart(6, '0')}`);
  registrations.forEach((reg, i) => {
    const c = ids[i] as string;
    const referredBy = i > 0 && rnd() < 0.15 ? (ids[Math.floor(rnd() * i)] as string) : undefined;
    const explicit = rnd() < 0.93;
    if (explicit) {
      const campaign = rnd() < 0.5 ? pick(campaigns) : undefined;
      push({
        t: reg,
        kind: 'register',
        c,
        data: {
          customerId: c,
          source: referredBy ? 'referral' : pick(DATASET_SOURCES.slice(0, 4)),
          channel: pick(DATASET_ACQUISITION_CHANNELS),
          ...(campaign ? { campaign } : {}),
          ...(referredBy ? { referredBy } : {}),
          personal: { name: `Customer ${c}` },
          implicit: false,
        },
      });
    }
    if (rnd() < 0.4) push({ t: reg + Math.floor(rnd() * 10 * DAY), kind: 'touchpoint', c, data: { customerId: c, channel: 'email', direction: 'outbound', kind: 'welcome' } });
    // roughly three in four buy at least once; a few come back after a long silence (win-back)
    if (explicit && rnd() > 0.75) return;
    let t = reg + (explicit ? Math.floor(rnd() * 40 * DAY) : 0);
    let n = 0;
    do {
      n += 1;
      const lines = Array.from({ length: 1 + Math.floor(rnd() * 3) }, (_, li) => {
        const unitPriceMinor = 500 + Math.floor(rnd() * 19_500);
        return {
          sku: `sku-${li}-${Math.floor(rnd() * 50)}`,
          category: pick(DATASET_CATEGORIES),
          quantity: 1 + Math.floor(rnd() * 3),
          unitPriceMinor,
          unitCostMinor: Math.floor(unitPriceMinor * (0.4 + rnd() * 0.4)),
        };
      });
      const orderCampaign = rnd() < 0.3 ? pick(campaigns) : undefined;
      push({
        t,
        kind: 'purchase',
        c,
        data: {
          customerId: c,
          orderId: `o-${c}-${n}`,
          lines,
          totalMinor: lines.reduce((s, l) => s + l.quantity * l.unitPriceMinor, 0),
          costMinor: lines.reduce((s, l) => s + l.quantity * l.unitCostMinor, 0),
          channel: pick(DATASET_PURCHASE_CHANNELS),
          location: pick(DATASET_LOCATIONS),
          ...(orderCampaign ? { campaign: orderCampaign } : {}),
        },
      });
      if (rnd() < 0.25) {
        const complaint = rnd() < 0.4;
        push({
          t: t + Math.floor(rnd() * 5 * DAY) + 1,
          kind: 'feedback',
          c,
          data: {
            customerId: c,
            feedbackId: `f-${c}-${n}`,
            score: complaint ? Math.floor(rnd() * 4) : 6 + Math.floor(rnd() * 5),
            kind: complaint ? 'complaint' : 'praise',
            employeeId: pick(employees),
          },
        });
      }
      const longGap = rnd() < 0.12;
      t += Math.floor((longGap ? 200 + rnd() * 200 : 5 + rnd() * 90) * DAY);
    } while (rnd() < (options.repeatProbability ?? 0.72));
    if (rnd() < 0.05) push({ t: t - Math.floor(rnd() * 30 * DAY), kind: 'lost', c, detail: pick(['moved away', 'price', 'service']) });
  });

  intents.sort((a, b) => a.t - b.t || a.seq - b.seq);
  const customers = new Map<string, SimCustomer>();
  const churnTimes = new Map<string, string>();
  const out: StoredEvent[] = [];
  const iso = (t: number): string => new Date(t).toISOString();
  const sim = (id: string): SimCustomer => {
    let s = customers.get(id);
    if (!s) {
      s = { id, stage: 'none', orders: 0, lastPurchaseAt: null, referredBy: null, convertedReferrals: 0 };
      customers.set(id, s);
    }
    return s;
  };
  const emit = (streamId: string, type: string, data: JsonObject, t: number, cause?: StoredEvent): StoredEvent => {
    const e = log.write(streamId, type, data, iso(t), cause?.id);
    out.push(e);
    return e;
  };
  const register = (s: SimCustomer, t: number, data: JsonObject): StoredEvent => {
    const e = emit(customerStream(s.id), 'ProspectRegistered', data, t);
    s.stage = 'prospect';
    const referrer = typeof data['referredBy'] === 'string' ? customers.get(data['referredBy']) : undefined;
    if (referrer && referrer.stage !== 'none') {
      s.referredBy = referrer.id;
      emit(customerStream(referrer.id), 'ReferralCredited', { customerId: referrer.id, refereeId: s.id }, t, e);
    }
    return e;
  };
  const active = (s: SimCustomer): boolean => s.stage === 'customer' || s.stage === 'repeat_buyer' || s.stage === 'advocate';

  for (const i of intents) {
    switch (i.kind) {
      case 'org':
        emit(i.streamId, i.type, i.data, i.t);
        break;
      case 'register':
        register(sim(i.c), i.t, i.data);
        break;
      case 'touchpoint': {
        const s = sim(i.c);
        if (s.stage === 'none') register(s, i.t, { customerId: s.id, source: 'unknown', personal: {}, implicit: true });
        emit(customerStream(s.id), 'TouchpointRecorded', i.data, i.t);
        break;
      }
      case 'purchase': {
        const s = sim(i.c);
        if (s.stage === 'none') register(s, i.t, { customerId: s.id, source: 'unknown', personal: {}, implicit: true });
        const p = emit(customerStream(s.id), 'PurchaseRecorded', i.data, i.t);
        s.orders += 1;
        s.lastPurchaseAt = i.t;
        const orderId = i.data['orderId'] as string;
        if (s.stage === 'prospect') {
          emit(customerStream(s.id), 'CustomerConverted', { customerId: s.id, orderId }, i.t, p);
          s.stage = 'customer';
          const referrer = s.referredBy ? customers.get(s.referredBy) : undefined;
          if (referrer) {
            const rc = emit(customerStream(referrer.id), 'ReferralConverted', { customerId: referrer.id, refereeId: s.id, orderId }, i.t, p);
            referrer.convertedReferrals += 1;
            if ((referrer.stage === 'customer' || referrer.stage === 'repeat_buyer') && referrer.convertedReferrals >= policy.advocateMinConvertedReferrals) {
              emit(customerStream(referrer.id), 'AdvocateRecognized', { customerId: referrer.id, reason: 'converted_referrals', convertedReferrals: referrer.convertedReferrals }, i.t, rc);
              referrer.stage = 'advocate';
            }
          }
        } else if (s.stage === 'churned') {
          const churnedAt = churnTimes.get(s.id) ?? iso(i.t);
          emit(customerStream(s.id), 'CustomerReactivated', { customerId: s.id, orderId, churnedAt }, i.t, p);
          s.stage = 'customer';
        }
        if (s.stage === 'customer' && s.orders >= policy.repeatPurchaseThreshold) {
          emit(customerStream(s.id), 'RepeatBuyerQualified', { customerId: s.id, distinctOrders: s.orders }, i.t, p);
          s.stage = 'repeat_buyer';
        }
        break;
      }
      case 'feedback': {
        const s = sim(i.c);
        const f = emit(customerStream(s.id), 'FeedbackReceived', i.data, i.t);
        if (s.stage === 'repeat_buyer' && (i.data['score'] as number) >= policy.promoterMinScore) {
          emit(customerStream(s.id), 'AdvocateRecognized', { customerId: s.id, reason: 'promoter_feedback', convertedReferrals: s.convertedReferrals, score: i.data['score'] as number }, i.t, f);
          s.stage = 'advocate';
        }
        break;
      }
      case 'lost': {
        const s = sim(i.c);
        if (!active(s)) break;
        emit(customerStream(s.id), 'CustomerChurned', { customerId: s.id, reason: 'marked_lost', detail: i.detail, previousStage: s.stage, ...(s.lastPurchaseAt ? { lastPurchaseAt: iso(s.lastPurchaseAt) } : {}) }, i.t);
        churnTimes.set(s.id, iso(i.t));
        s.stage = 'churned';
        break;
      }
      case 'sweep': {
        for (const s of customers.values()) {
          if (!active(s) || s.lastPurchaseAt === null || i.t - s.lastPurchaseAt < policy.churnAfterDays * DAY) continue;
          emit(customerStream(s.id), 'CustomerChurned', { customerId: s.id, reason: 'inactive', previousStage: s.stage, lastPurchaseAt: iso(s.lastPurchaseAt) }, i.t);
          churnTimes.set(s.id, iso(i.t));
          s.stage = 'churned';
        }
        break;
      }
    }
  }
  log.forgetStreams('customer-');
  return out;
}

function addMonths(t: number, n: number): number {
  const d = new Date(t);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + n, d.getUTCDate());
}

