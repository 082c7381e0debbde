import { defaultPolicy, type DomainCommand, type PurchaseLine } from '@clientele/domain';

import type { CommandEnvelope } from '@clientele/contracts';
import { deterministicId } from './deterministic-id';
import { SeededRandom } from './seeded-random';

/**
 * A seeded workload of realistic command envelopes for demos, benchmarks and crash tests:
 * acquisition by source/channel/campaign, Pareto-shaped spend, repeat purchases with dropouts and
 * long pauses (which the monthly churn sweeps catch, and later purchases win back), referrals,
 * feedback naming employees, thanks, staff turnover and campaign spend.
 *
 * Pure in its inputs: the same options give the same envelopes byte for byte. Envelopes come out in
 * business-time order and every cause strictly precedes its effects (registration before purchases,
 * referrer before referee, hire before feedback naming the employee), so a sequential import never
 * refers to something not yet known. The whole workload is built in memory before sorting (about a
 * kilobyte per command).
 */
export interface SyntheticOptions {
  customers: number;
  seed: string;
  /** first business day, ISO date; default 2024-01-01 */
  from?: string;
  /** last business day, ISO date (inclusive); default 2025-12-31 */
  to?: string;
  /** prefix of every generated id, so several workloads can share a store; default `syn` */
  idPrefix?: string;
  /** share of registrations referred by an earlier customer, 0..1; default 0.15 */
  referralShare?: number;
  /** mirrors the policy the sweep applies; default the domain's default policy */
  churnAfterDays?: number;
}

const DAY = 86_400_000;

/** the shortest business period a workload spans, first day to last, so every stage of the lifecycle has room */
export const MIN_WORKLOAD_DAYS = 60;
const HOUR = 3_600_000;

const CHANNELS = ['web', 'store', 'email', 'social', 'phone', 'sms'] as const;
const CAMPAIGNS = [
  { id: 'search-ads', channel: 'web', monthlyMinor: 450_000 },
  { id: 'social-boost', channel: 'social', monthlyMinor: 300_000 },
  { id: 'newsletter', channel: 'email', monthlyMinor: 60_000 },
  { id: 'store-events', channel: 'store', monthlyMinor: 150_000 },
] as const;
const SOURCES: readonly (readonly [string, number])[] = [
  ['organic', 30],
  ['search', 25],
  ['social', 15],
  ['partner', 8],
  ['event', 7],
];
const CAMPAIGN_OF_SOURCE: Record<string, (typeof CAMPAIGNS)[number] | undefined> = {
  search: CAMPAIGNS[0],
  social: CAMPAIGNS[1],
  event: CAMPAIGNS[3],
};
const CATALOGUE = [
  { sku: 'bk-novel', category: 'books', price: 1_499, cost: 820 },
  { sku: 'bk-cook', category: 'books', price: 2_999, cost: 1_650 },
  { sku: 'mu-vinyl', category: 'music', price: 2_450, cost: 1_300 },
  { sku: 'mu-cd', category: 'music', price: 1_299, cost: 610 },
  { sku: 'el-headset', category: 'electronics', price: 8_900, cost: 5_600 },
  { sku: 'el-speaker', category: 'electronics', price: 14_900, cost: 9_800 },
  { sku: 'el-cable', category: 'electronics', price: 999, cost: 240 },
  { sku: 'ga-seeds', category: 'garden', price: 399, cost: 120 },
  { sku: 'ga-tools', category: 'garden', price: 4_599, cost: 2_700 },
  { sku: 'ap-shirt', category: 'apparel', price: 2_900, cost: 1_100 },
  { sku: 'ap-jacket', category: 'apparel', price: 12_900, cost: 6_400 },
  { sku: 'gr-coffee', category: 'grocery', price: 1_150, cost: 700 },
  { sku: 'gr-tea', category: 'grocery', price: 650, cost: 310 },
] as const;
const FIRST_NAMES = ['Ada', 'Bruno', 'Chloe', 'Dmitri', 'Elena', 'Farid', 'Grace', 'Hugo', 'Ines', 'Jonas', 'Keiko', 'Liam', 'Maya', 'Noah', 'Olga', 'Pablo', 'Quinn', 'Rosa', 'Sami', 'Tara'];
const LAST_NAMES = ['Adler', 'Berg', 'Costa', 'Dubois', 'Evans', 'Fischer', 'Garcia', 'Hansen', 'Ito', 'Jensen', 'Kowalski', 'Lopez', 'Moreau', 'Nakamura', 'Okafor', 'Petrov'];
const ROLES = ['cashier', 'advisor', 'courier', 'support'] as const;
const COMPLAINT_TOPICS = ['delivery', 'staff', 'product', 'billing'] as const;
const PRAISE_COMMENTS = ['Quick and friendly service.', 'Great selection, will be back.', 'The advisor found exactly what I needed.'];
const COMPLAINT_COMMENTS = ['Parcel arrived late and damaged.', 'Nobody answered my questions.', 'I was charged twice.', 'Item did not match the description.'];
const SUGGESTION_COMMENTS = ['Please open earlier on Saturdays.', 'An app would be handy.', 'More vegetarian options, please.'];

interface Employee {
  id: string;
  hiredAt: number;
  leftAt?: number;
}

interface Referrer {
  customerId: string;
  convertedAt: number;
  weight: number;
}

interface Timed {
  at: number;
  seq: number;
  command: DomainCommand;
}

const parseDay = (text: string, name: string): number => {
  const at = /^\d{4}-\d{2}-\d{2}$/.test(text) ? Date.parse(`${text}T00:00:00.000Z`) : Number.NaN;
  if (Number.isNaN(at)) throw new Error(`${name}: expected an ISO date (YYYY-MM-DD), found '${text}'`);
  return at;
};

const pad = (n: number, width: number): string => String(n).padStart(width, '0');

export const generateSyntheticCommands = (options: SyntheticOptions): CommandEnvelope[] => {
  if (!Number.isInteger(options.customers) || options.customers < 1) {
    throw new Error(`customers: expected a positive integer, found ${options.customers}`);
  }
  const start = parseDay(options.from ?? '2024-01-01', 'from');
  const end = parseDay(options.to ?? '2025-12-31', 'to') + DAY - 1;
  if (end - start < MIN_WORKLOAD_DAYS * DAY) throw new Error(`to: expected at least ${MIN_WORKLOAD_DAYS} days after from`);
  const churnAfterDays = options.churnAfterDays ?? defaultPolicy.churnAfterDays;
  const prefix = options.idPrefix ?? 'syn';
  const referralShare = options.referralShare ?? 0.15;
  if (!(referralShare >= 0 && referralShare <= 1)) throw new Error(`referralShare: expected a number from 0 to 1, found ${referralShare}`);
  const rng = new SeededRandom(`clientele-generate:${options.seed}`);
  const out: Timed[] = [];
  let seq = 0;
  const emit = (at: number, command: DomainCommand): void => {
    out.push({ at, seq: seq++, command });
  };
  const iso = (at: number): string => new Date(at).toISOString();
  /** a moment in business hours on the day of `at` */
  const businessHour = (at: number): number => Math.floor(at / DAY) * DAY + rng.int(8, 20) * HOUR + rng.int(0, 59) * 60_000;

  // ---- staff: a team at the start, hires through the period, some leave
  const employees: Employee[] = [];
  const staffCount = Math.max(3, Math.ceil(options.customers / 40));
  for (let i = 1; i <= staffCount; i++) {
    const initial = i <= Math.ceil(staffCount * 0.6);
    const hiredAt = initial ? start + i * 60_000 : businessHour(start + rng.int(1, Math.floor((end - start) / DAY) - 30) * DAY);
    const employee: Employee = { id: `${prefix}-e${pad(i, 4)}`, hiredAt };
    emit(hiredAt, {
      type: 'HireEmployee',
      data: { employeeId: employee.id, name: `${rng.pick(FIRST_NAMES)} ${rng.pick(LAST_NAMES)}`, role: rng.pick(ROLES), occurredAt: iso(hiredAt) },
    });
    const leaves = rng.chance(0.25) ? businessHour(hiredAt + rng.int(60, 540) * DAY) : undefined;
    if (leaves !== undefined && leaves < end) {
      employee.leftAt = leaves;
      emit(leaves, {
        type: 'RecordEmployeeLeft',
        data: { employeeId: employee.id, reason: rng.pick(['resigned', 'relocated', 'contract ended']), occurredAt: iso(leaves) },
      });
    }
    employees.push(employee);
  }
  const activeEmployee = (at: number): string | undefined => {
    const active = employees.filter((e) => e.hiredAt < at - HOUR && (e.leftAt === undefined || e.leftAt > at + HOUR));
    return active.length === 0 ? undefined : rng.pick(active).id;
  };

  // ---- campaign spend, monthly per campaign
  for (const campaign of CAMPAIGNS) {
    for (let month = new Date(start); month.getTime() <= end; month.setUTCMonth(month.getUTCMonth() + 1)) {
      const at = month.getTime() + 9 * HOUR;
      const amountMinor = Math.round(campaign.monthlyMinor * (0.7 + rng.next() * 0.6));
      emit(at, {
        type: 'RecordCampaignSpend',
        data: {
          campaignId: campaign.id,
          spendId: `${prefix}-${campaign.id}-${iso(at).slice(0, 7)}`,
          channel: campaign.channel,
          amountMinor,
          occurredAt: iso(at),
        },
      });
    }
  }

  // ---- customers, in order of registration so referrers always exist before their referees
  const lastAcquisition = end - 30 * DAY;
  const registrations = Array.from({ length: options.customers }, () => start + DAY + Math.floor(rng.next() * (lastAcquisition - start - DAY)));
  registrations.sort((a, b) => a - b);
  const referrers: Referrer[] = [];
  const sweepDays: number[] = [];
  for (let month = new Date(start); month.getTime() <= end; month.setUTCMonth(month.getUTCMonth() + 1)) {
    sweepDays.push(month.getTime() + 2 * HOUR);
  }

  registrations.forEach((day, index) => {
    const customerId = `${prefix}-c${pad(index + 1, 6)}`;
    const registeredAt = businessHour(day);
    const first = rng.pick(FIRST_NAMES);
    const last = rng.pick(LAST_NAMES);
    const eligible = referrers.filter((r) => r.convertedAt < registeredAt - DAY);
    let referredBy: string | undefined;
    if (eligible.length > 0 && rng.chance(referralShare)) {
      // advocates refer more: the heaviest of three candidates
      const candidates = [rng.pick(eligible), rng.pick(eligible), rng.pick(eligible)];
      referredBy = candidates.reduce((best, c) => (c.weight > best.weight ? c : best)).customerId;
    }
    const source = referredBy !== undefined ? 'referral' : rng.weighted(SOURCES);
    const campaign = CAMPAIGN_OF_SOURCE[source];
    const channel = campaign?.channel ?? rng.pick(CHANNELS);
    emit(registeredAt, {
      type: 'RegisterProspect',
      data: {
        customerId,
        source,
        channel,
        ...(campaign !== undefined ? { campaign: campaign.id } : {}),
        ...(referredBy !== undefined ? { referredBy } : {}),
        personal: {
          name: `${first} ${last}`,
          email: `${first}.${last}.${index + 1}@example.com`.toLowerCase(),
          phone: `+1555${pad(rng.int(0, 9_999_999), 7)}`,
          birthday: `${rng.int(1950, 2005)}-${pad(rng.int(1, 12), 2)}-${pad(rng.int(1, 28), 2)}`,
        },
        occurredAt: iso(registeredAt),
      },
    });

    // a few touches before anything is bought
    const touches = rng.int(0, 3);
    for (let t = 0; t < touches; t++) {
      const at = registeredAt + rng.int(1, 60) * HOUR;
      if (at >= end) break;
      emit(at, {
        type: 'RecordTouchpoint',
        data: {
          customerId,
          channel: rng.pick(CHANNELS),
          direction: rng.chance(0.6) ? 'outbound' : 'inbound',
          kind: rng.pick(['newsletter', 'visit', 'call', 'offer']),
          occurredAt: iso(at),
        },
      });
    }
    if (rng.chance(0.2)) {
      const at = registeredAt + rng.int(1, 30) * DAY;
      if (at < end) {
        emit(at, {
          type: 'UpdateProfile',
          data: { customerId, preferences: { newsletter: rng.pick(['weekly', 'monthly']), channel: rng.pick(CHANNELS) }, consents: { email: true, sms: rng.chance(0.4) }, occurredAt: iso(at) },
        });
      }
    }

    // ---- purchases: weight drives frequency, basket size and loyalty
    const weight = Math.min(rng.pareto(1.3), 60);
    const converts = rng.chance(referredBy !== undefined ? 0.75 : 0.65);
    if (!converts) return;
    const purchases: number[] = [];
    let at = registeredAt + Math.max(HOUR, Math.floor(rng.exponential(10 * DAY) / 60_000) * 60_000);
    const stopChance = Math.min(0.6, 0.45 / Math.pow(weight, 0.6));
    let markedLostAt: number | undefined;
    while (at < end) {
      const inHours = businessHour(at);
      const when = inHours > at ? inHours : at;
      purchases.push(when);
      if (rng.chance(stopChance)) {
        if (rng.chance(0.05)) markedLostAt = when + rng.int(20, 120) * DAY;
        break;
      }
      const pause = rng.chance(0.12) ? rng.int(churnAfterDays + 15, churnAfterDays + 200) * DAY : 0;
      at = when + pause + Math.max(DAY, Math.floor(rng.exponential((75 * DAY) / Math.sqrt(weight)) / 60_000) * 60_000);
    }
    let purchaseCount = 0;
    for (const when of purchases) {
      purchaseCount += 1;
      const orderId = `${prefix}-o${pad(index + 1, 6)}-${purchaseCount}`;
      const lineCount = Math.min(1 + Math.floor(rng.exponential(0.6 + weight / 8)), 8);
      const lines: PurchaseLine[] = [];
      for (let l = 0; l < lineCount; l++) {
        const product = rng.pick(CATALOGUE);
        lines.push({ sku: product.sku, category: product.category, quantity: rng.weighted([[1, 70], [2, 20], [3, 10]]), unitPriceMinor: product.price, unitCostMinor: product.cost });
      }
      emit(when, {
        type: 'RecordPurchase',
        data: {
          customerId,
          orderId,
          lines,
          channel: rng.weighted([['web', 55], ['store', 35], ['phone', 10]]),
          ...(rng.chance(0.3) ? { location: rng.pick(['north', 'south', 'city-centre', 'airport']) } : {}),
          ...(campaign !== undefined && purchaseCount === 1 ? { campaign: campaign.id } : {}),
          occurredAt: iso(when),
        },
      });
      if (purchaseCount === 1 && referredBy !== undefined && when + DAY < end) {
        emit(when + DAY, { type: 'ThankCustomer', data: { customerId: referredBy, gesture: 'coupon', reason: 'referral', valueMinor: 500, occurredAt: iso(when + DAY) } });
      }
      if (purchaseCount === 5 && when + 2 * DAY < end) {
        emit(when + 2 * DAY, { type: 'ThankCustomer', data: { customerId, gesture: 'gift', reason: 'loyalty', valueMinor: 1_500, occurredAt: iso(when + 2 * DAY) } });
      }
      if (rng.chance(0.15)) {
        const fedAt = when + rng.int(1, 5) * DAY;
        if (fedAt < end) emitFeedback(customerId, orderId, fedAt, weight);
      }
    }
    const firstPurchase = purchases[0];
    if (firstPurchase !== undefined) referrers.push({ customerId, convertedAt: firstPurchase, weight });
    if (markedLostAt !== undefined && markedLostAt < end) {
      emit(markedLostAt, { type: 'MarkCustomerLost', data: { customerId, reason: rng.pick(['moved abroad', 'closed account', 'switched to a competitor']), occurredAt: iso(markedLostAt) } });
    }

    // ---- the monthly sweeps this customer's inactivity would trigger (once per quiet spell)
    let sweptSince: number | undefined;
    for (const sweep of sweepDays) {
      if (markedLostAt !== undefined && sweep > markedLostAt) break;
      const lastBefore = purchases.filter((p) => p < sweep).pop();
      if (lastBefore === undefined || sweep - lastBefore < churnAfterDays * DAY) continue;
      if (sweptSince === lastBefore) continue;
      sweptSince = lastBefore;
      emit(sweep, { type: 'ChurnIfInactive', data: { customerId, occurredAt: iso(sweep) } });
    }
  });

  function emitFeedback(customerId: string, orderId: string, at: number, weight: number): void {
    const kind = rng.weighted<'praise' | 'complaint' | 'suggestion'>([['praise', 50], ['complaint', 25], ['suggestion', 25]]);
    const employeeId = kind === 'suggestion' ? undefined : rng.chance(0.7) ? activeEmployee(at) : undefined;
    const score = kind === 'praise' ? (weight > 3 ? rng.int(9, 10) : rng.int(7, 10)) : kind === 'complaint' ? rng.int(0, 4) : rng.int(5, 8);
    const comments = kind === 'praise' ? PRAISE_COMMENTS : kind === 'complaint' ? COMPLAINT_COMMENTS : SUGGESTION_COMMENTS;
    emit(at, {
      type: 'RecordFeedback',
      data: {
        customerId,
        feedbackId: `${orderId}-fb`,
        score,
        kind,
        topic: kind === 'complaint' ? rng.pick(COMPLAINT_TOPICS) : 'service',
        ...(employeeId !== undefined ? { employeeId } : {}),
        comment: rng.pick(comments),
        occurredAt: iso(at),
      },
    });
    if (kind === 'complaint' && rng.chance(0.5) && at + DAY < end) {
      emit(at + DAY, { type: 'ThankCustomer', data: { customerId, gesture: 'apology-note', reason: 'apology', occurredAt: iso(at + DAY) } });
    }
  }

  out.sort((a, b) => a.at - b.at || a.seq - b.seq);
  return out.map(({ command }, n) => ({
    type: command.type,
    commandId: deterministicId(`generate:${prefix}:${options.seed}:${n}`),
    data: command.data,
  }));
};
