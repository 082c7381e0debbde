import type { JsonObject } from '@clientele/event-store';
import { StoredEventLog } from './stored-events';

/** A small seeded PRNG (mulberry32): the same seed always gives the same dataset. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface CustomerLogOptions {
  seed: number;
  customers: number;
  /** business days the activity spans; default 365 */
  days?: number;
  /** first business day, default 2025-01-01 */
  start?: string;
  /** average purchases per customer; default 3 */
  purchasesPerCustomer?: number;
}

const SOURCES = ['web', 'store', 'partner', 'ads'];
const CHANNELS = ['email', 'phone', 'sms', 'web', 'store', 'social'];
const CAMPAIGNS = ['spring', 'summer', 'winter'];
const CATEGORIES = ['books', 'music', 'garden', 'toys', 'food', 'tools'];
const GESTURES = ['coupon', 'gift', 'note'];
const REASONS = ['referral', 'loyalty', 'apology'];

interface Planned {
  at: number;
  seq: number;
  customer: number;
  kind: 'register' | 'touch' | 'purchase' | 'feedback' | 'thanks' | 'update' | 'erase' | 'lost' | 'employee' | 'spend';
}

interface Lifecycle {
  stage: 'prospect' | 'customer' | 'repeat_buyer' | 'advocate' | 'churned';
  orders: number;
  referredBy?: string;
  convertedReferrals: number;
  erased: boolean;
  lastPurchaseAt?: string;
}

/**
 * A plausible customer log with the lifecycle transitions the deciders would write (default policy),
 * each right after its cause with `causationId` in the metadata, and referral credits/conversions on
 * the referrer's stream. Business time ascends with the log. Deterministic for a given seed.
 */
export function generateCustomerLog(options: CustomerLogOptions): StoredEventLog {
  const random = seededRandom(options.seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)] as T;
  const int = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1));
  const days = options.days ?? 365;
  const start = Date.parse(options.start ?? '2025-01-01T00:00:00.000Z');
  const span = days * 86_400_000;
  const perCustomer = options.purchasesPerCustomer ?? 3;

  const plan: Planned[] = [];
  let seq = 0;
  const add = (at: number, customer: number, kind: Planned['kind']) => plan.push({ at: Math.floor(at), seq: seq++, customer, kind });
  const registeredAt: number[] = [];
  for (let c = 0; c < options.customers; c += 1) {
    const at = start + (span * 0.7 * c) / Math.max(1, options.customers) + random() * 3_600_000;
    registeredAt.push(at);
    add(at, c, 'register');
    const after = () => at + 60_000 + random() * (start + span - at - 60_000);
    for (let i = int(0, 4); i > 0; i -= 1) add(after(), c, 'touch');
    const purchases = random() < 0.2 ? 0 : int(1, perCustomer * 2 - 1);
    for (let i = 0; i < purchases; i += 1) add(after(), c, 'purchase');
    for (let i = int(0, 2); i > 0; i -= 1) add(after(), c, 'feedback');
    if (random() < 0.3) for (let i = int(1, 12); i > 0; i -= 1) add(after(), c, 'thanks');
    if (random() < 0.3) add(after(), c, 'update');
    if (random() < 0.05) add(after(), c, 'erase');
    if (random() < 0.04) add(after(), c, 'lost');
    if (random() < 0.02) add(after(), c, random() < 0.5 ? 'employee' : 'spend');
  }
  plan.sort((a, b) => a.at - b.at || a.seq - b.seq);

  const referrers = new Map<number, number>();
  for (let c = 1; c < options.customers; c += 1) if (random() < 0.3) referrers.set(c, int(0, c - 1));

  const log = new StoredEventLog();
  const state = new Map<string, Lifecycle>();
  let orderSeq = 0;
  let tick = 0;
  const id = (c: number) => `cust-${String(c).padStart(5, '0')}`;
  // business time strictly ascending even for facts planned at the same millisecond
  const iso = (at: number) => new Date(at + (tick++ % 1000)).toISOString();

  const transition = (customerId: string, type: string, data: JsonObject, at: string, cause: string, next: Lifecycle['stage']) => {
    log.append(type, { customerId, ...data, occurredAt: at }, { metadata: { causationId: cause } });
    const s = state.get(customerId);
    if (s) s.stage = next;
  };

  for (const p of plan) {
    const customerId = id(p.customer);
    const at = iso(p.at);
    const s = state.get(customerId);
    switch (p.kind) {
      case 'register': {
        const referrer = referrers.get(p.customer);
        const referredBy = referrer === undefined ? undefined : id(referrer);
        const birthday = random() < 0.85 ? `${int(1950, 2005)}-${pad(int(1, 12))}-${pad(int(1, 28))}` : p.customer % 97 === 0 ? '1992-02-29' : undefined;
        log.append('ProspectRegistered', {
          customerId,
          source: pick(SOURCES),
          channel: pick(CHANNELS),
          ...(random() < 0.5 ? { campaign: pick(CAMPAIGNS) } : {}),
          ...(referredBy ? { referredBy } : {}),
          personal: { name: `Customer ${p.customer}`, email: `c${p.customer}@example.test`, phone: `+100000${p.customer}`, ...(birthday ? { birthday } : {}) },
          implicit: false,
          occurredAt: at,
        });
        state.set(customerId, { stage: 'prospect', orders: 0, convertedReferrals: 0, erased: false, ...(referredBy ? { referredBy } : {}) });
        if (referredBy && state.has(referredBy)) {
          log.append('ReferralCredited', { customerId: referredBy, refereeId: customerId, occurredAt: at }, { metadata: { causationId: log.events[log.head - 1]!.id } });
        }
        break;
      }
      case 'touch':
        log.append('TouchpointRecorded', { customerId, channel: pick(CHANNELS), direction: random() < 0.5 ? 'inbound' : 'outbound', kind: 'visit', occurredAt: at });
        break;
      case 'purchase': {
        if (!s) break;
        const lines = [];
        for (let i = int(1, 3); i > 0; i -= 1) {
          const product = int(0, 29);
          lines.push({ sku: `sku-${product}`, category: CATEGORIES[product % CATEGORIES.length]!, quantity: int(1, 4), unitPriceMinor: 199 + product * 100, unitCostMinor: 99 + product * 60 });
        }
        const orderId = `order-${orderSeq++}`;
        const purchase = log.append('PurchaseRecorded', {
          customerId,
          orderId,
          lines,
          totalMinor: lines.reduce((sum, l) => sum + l.quantity * l.unitPriceMinor, 0),
          costMinor: lines.reduce((sum, l) => sum + l.quantity * l.unitCostMinor, 0),
          ...(random() < 0.8 ? { channel: pick(CHANNELS) } : {}),
          location: pick(['north', 'south']),
          occurredAt: at,
        });
        s.orders += 1;
        const previous = s.lastPurchaseAt;
        s.lastPurchaseAt = at;
        if (s.stage === 'prospect') {
          transition(customerId, 'CustomerConverted', { orderId }, at, purchase.id, 'customer');
          if (s.referredBy) {
            log.append('ReferralConverted', { customerId: s.referredBy, refereeId: customerId, orderId, occurredAt: at }, { metadata: { causationId: purchase.id } });
            const r = state.get(s.referredBy);
            if (r) {
              r.convertedReferrals += 1;
              if (r.stage === 'customer' || r.stage === 'repeat_buyer') {
                transition(s.referredBy, 'AdvocateRecognized', { reason: 'converted_referrals', convertedReferrals: r.convertedReferrals }, at, log.events[log.head - 1]!.id, 'advocate');
              }
            }
          }
        } else if (s.stage === 'churned') {
          transition(customerId, 'CustomerReactivated', { orderId, churnedAt: previous ?? at }, at, purchase.id, 'customer');
        }
        if (s.stage === 'customer' && s.orders >= 2) {
          transition(customerId, 'RepeatBuyerQualified', { distinctOrders: s.orders }, at, purchase.id, 'repeat_buyer');
        }
        break;
      }
      case 'feedback': {
        if (!s) break;
        const score = int(0, 10);
        const kind = score <= 4 ? 'complaint' : score >= 8 ? 'praise' : 'suggestion';
        const fb = log.append('FeedbackReceived', { customerId, feedbackId: `fb-${log.head}`, score, kind, topic: 'service', employeeId: `emp-${int(1, 5)}`, occurredAt: at });
        if (s.stage === 'repeat_buyer' && score >= 9) {
          transition(customerId, 'AdvocateRecognized', { reason: 'promoter_feedback', convertedReferrals: s.convertedReferrals, score }, at, fb.id, 'advocate');
        }
        break;
      }
      case 'thanks':
        log.append('CustomerThanked', { customerId, gesture: pick(GESTURES), reason: pick(REASONS), ...(random() < 0.5 ? { valueMinor: int(100, 2000) } : {}), occurredAt: at });
        break;
      case 'update':
        if (!s) break;
        log.append('ProfileUpdated', {
          customerId,
          ...(s.erased ? {} : { personal: { email: `new${p.customer}@example.test`, ...(random() < 0.5 ? { birthday: `${int(1960, 2000)}-${pad(int(1, 12))}-${pad(int(1, 28))}` } : {}) } }),
          preferences: { language: pick(['en', 'fr', 'de']), newsletter: pick(['weekly', 'monthly']) },
          consents: { email: random() < 0.7, sms: random() < 0.3 },
          occurredAt: at,
        });
        break;
      case 'erase':
        if (!s || s.erased) break;
        s.erased = true;
        log.append('PersonalDataErased', { customerId, requestedBy: 'customer', occurredAt: at });
        break;
      case 'lost':
        if (!s || s.stage === 'prospect' || s.stage === 'churned') break;
        {
          const previousStage = s.stage;
          log.append('CustomerChurned', { customerId, reason: 'marked_lost', detail: 'moved away', previousStage, occurredAt: at }, { metadata: { causationId: `cmd-lost-${p.customer}` } });
          s.stage = 'churned';
        }
        break;
      case 'employee':
        log.append('EmployeeHired', { employeeId: `emp-${p.customer}`, name: 'Employee', occurredAt: at });
        break;
      case 'spend':
        log.append('CampaignSpendRecorded', { campaignId: pick(CAMPAIGNS), spendId: `spend-${p.customer}`, channel: pick(CHANNELS), amountMinor: int(1000, 50000), occurredAt: at });
        break;
    }
  }
  return log;
}

function pad(n: number): string {
  return String(n).padStart(2, '0');
}
