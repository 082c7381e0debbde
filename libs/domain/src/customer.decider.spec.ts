import { deciderSpec } from '@clientele/testing';
import type { CustomerCommand } from './commands';
import {
  customerDecider,
  decideCustomer,
  evolveCustomer,
  foldCustomer,
  initialCustomerState,
  type CustomerState,
} from './customer.decider';
import type { CustomerEvent, PurchaseLine } from './events';
import { defaultPolicy, type LifecyclePolicy } from './policy';

const specWith = (policy: LifecyclePolicy) =>
  deciderSpec<CustomerState, CustomerCommand, CustomerEvent>({
    ...customerDecider,
    decide: (command, state) => decideCustomer(command, state, policy),
  });
const spec = specWith(defaultPolicy);

const T0 = '2026-01-10T09:00:00.000Z';
const T1 = '2026-02-10T09:00:00.000Z';
const T2 = '2026-03-10T09:00:00.000Z';
const T3 = '2026-04-10T09:00:00.000Z';
const id = 'c-1';
const line: PurchaseLine = { sku: 'cd-1', category: 'jazz', quantity: 2, unitPriceMinor: 1250, unitCostMinor: 700 };

// ---- event builders: the facts as the decider should write them ----
const registered = (at = T0, extra: { referredBy?: string; source?: string } = {}): CustomerEvent => ({
  type: 'ProspectRegistered',
  data: { customerId: id, source: extra.source ?? 'web', ...(extra.referredBy && { referredBy: extra.referredBy }), personal: { name: 'Ada' }, implicit: false, occurredAt: at },
});
const implicitlyRegistered = (at: string, customerId = id): CustomerEvent => ({
  type: 'ProspectRegistered',
  data: { customerId, source: 'unknown', personal: {}, implicit: true, occurredAt: at },
});
const purchased = (orderId: string, at: string): CustomerEvent => ({
  type: 'PurchaseRecorded',
  data: { customerId: id, orderId, lines: [line], totalMinor: 2500, costMinor: 1400, occurredAt: at },
});
const converted = (orderId: string, at: string): CustomerEvent => ({
  type: 'CustomerConverted',
  data: { customerId: id, orderId, occurredAt: at },
});
const qualified = (distinctOrders: number, at: string): CustomerEvent => ({
  type: 'RepeatBuyerQualified',
  data: { customerId: id, distinctOrders, occurredAt: at },
});
const advocateByReferrals = (convertedReferrals: number, at: string): CustomerEvent => ({
  type: 'AdvocateRecognized',
  data: { customerId: id, reason: 'converted_referrals', convertedReferrals, occurredAt: at },
});
const churned = (
  at: string,
  previousStage: 'customer' | 'repeat_buyer' | 'advocate',
  lastPurchaseAt: string,
  reason: 'inactive' | 'marked_lost' = 'inactive',
): CustomerEvent => ({
  type: 'CustomerChurned',
  data: { customerId: id, reason, ...(reason === 'marked_lost' && { detail: 'moved away' }), previousStage, lastPurchaseAt, occurredAt: at },
});
const referralCredited = (refereeId: string, at: string): CustomerEvent => ({
  type: 'ReferralCredited',
  data: { customerId: id, refereeId, occurredAt: at },
});
const referralConverted = (refereeId: string, at: string, orderId = `o-${refereeId}`): CustomerEvent => ({
  type: 'ReferralConverted',
  data: { customerId: id, refereeId, orderId, occurredAt: at },
});
const feedback = (feedbackId: string, score: number, at: string): CustomerEvent => ({
  type: 'FeedbackReceived',
  data: { customerId: id, feedbackId, score, kind: 'praise', occurredAt: at },
});
const erased = (at: string): CustomerEvent => ({ type: 'PersonalDataErased', data: { customerId: id, occurredAt: at } });

// ---- command builders ----
const register = (at = T0, extra: { referredBy?: string; source?: string; customerId?: string } = {}): CustomerCommand => ({
  type: 'RegisterProspect',
  data: { customerId: extra.customerId ?? id, source: extra.source ?? 'web', ...(extra.referredBy && { referredBy: extra.referredBy }), personal: { name: 'Ada' }, occurredAt: at },
});
const purchase = (orderId: string, at: string, lines: PurchaseLine[] = [line]): CustomerCommand => ({
  type: 'RecordPurchase',
  data: { customerId: id, orderId, lines, occurredAt: at },
});
const giveFeedback = (feedbackId: string, score: number, at: string, comment?: string): CustomerCommand => ({
  type: 'RecordFeedback',
  data: { customerId: id, feedbackId, score, kind: 'praise', ...(comment !== undefined && { comment }), occurredAt: at },
});
const credit = (refereeId: string, at: string): CustomerCommand => ({
  type: 'CreditReferral',
  data: { customerId: id, refereeId, occurredAt: at },
});
const convert = (refereeId: string, at: string): CustomerCommand => ({
  type: 'ConvertReferral',
  data: { customerId: id, refereeId, orderId: `o-${refereeId}`, occurredAt: at },
});
const markLost = (at: string): CustomerCommand => ({
  type: 'MarkCustomerLost',
  data: { customerId: id, reason: 'moved away', occurredAt: at },
});
const sweep = (at: string): CustomerCommand => ({ type: 'ChurnIfInactive', data: { customerId: id, occurredAt: at } });
const erase = (at: string): CustomerCommand => ({ type: 'EraseCustomerPersonalData', data: { customerId: id, occurredAt: at } });

const customerSince = (at = T1): CustomerEvent[] => [registered(), purchased('o-1', at), converted('o-1', at)];
const repeatBuyerSince = (at = T2): CustomerEvent[] => [...customerSince(), purchased('o-2', at), qualified(2, at)];

describe('customer decider: registration', () => {
  it('registers a prospect once', () => {
    spec.given([]).when(register()).then([registered()]);
  });
  it('treats the same registration repeated as a no-op', () => {
    spec.given([registered()]).when(register(T1)).thenNothing();
  });
  it('refuses a different registration of a known customer', () => {
    spec.given([registered()]).when(register(T1, { source: 'store' })).thenThrows('already_registered', 'customerId');
  });
  it('refuses a second, different referrer', () => {
    spec
      .given([registered(T0, { referredBy: 'c-2' })])
      .when(register(T1, { referredBy: 'c-3' }))
      .thenThrows('already_referred', 'referredBy');
  });
  it('refuses a self-referral', () => {
    spec.given([]).when(register(T0, { referredBy: id })).thenThrows('self_referral', 'referredBy');
  });
  it('refuses an unparseable or zoneless business time', () => {
    spec.given([]).when(register('2026-02-30')).thenThrows('invalid_date', 'occurredAt');
    spec.given([]).when(register('2026-01-10T09:00:00')).thenThrows('invalid_date', 'occurredAt');
    spec.given([]).when(register('last tuesday')).thenThrows('invalid_date', 'occurredAt');
  });
});

describe('customer decider: purchases and stages', () => {
  it('converts a prospect on the first purchase, computing totals exactly', () => {
    spec.given([registered()]).when(purchase('o-1', T1)).then([purchased('o-1', T1), converted('o-1', T1)]);
  });
  it('registers an unknown buyer implicitly before the purchase', () => {
    spec
      .given([])
      .when(purchase('o-1', T1))
      .then([implicitlyRegistered(T1), purchased('o-1', T1), converted('o-1', T1)]);
  });
  it('records a replayed order id once', () => {
    spec.given(customerSince()).when(purchase('o-1', T2)).thenNothing();
  });
  it('qualifies a repeat buyer at the threshold of distinct orders', () => {
    spec.given(customerSince()).when(purchase('o-2', T2)).then([purchased('o-2', T2), qualified(2, T2)]);
  });
  it('reads the repeat threshold from the policy', () => {
    const policy = { ...defaultPolicy, repeatPurchaseThreshold: 3 };
    specWith(policy).given(customerSince()).when(purchase('o-2', T2)).then([purchased('o-2', T2)]);
    specWith(policy)
      .given([...customerSince(), purchased('o-2', T2)])
      .when(purchase('o-3', T3))
      .then([purchased('o-3', T3), qualified(3, T3)]);
    specWith({ ...defaultPolicy, repeatPurchaseThreshold: 1 })
      .given([registered()])
      .when(purchase('o-1', T1))
      .then([purchased('o-1', T1), converted('o-1', T1), qualified(1, T1)]);
  });
  it('never moves an advocate backwards on a purchase', () => {
    spec
      .given([...repeatBuyerSince(), advocateByReferrals(1, T2)])
      .when(purchase('o-3', T3))
      .then([purchased('o-3', T3)]);
  });
  it.each([
    [[], 'lines'],
    [[{ ...line, quantity: 0 }], 'lines[0].quantity'],
    [[{ ...line, quantity: 1.5 }], 'lines[0].quantity'],
    [[line, { ...line, unitPriceMinor: -1 }], 'lines[1].unitPriceMinor'],
    [[{ ...line, unitPriceMinor: 12.5 }], 'lines[0].unitPriceMinor'],
    [[{ ...line, unitCostMinor: -3 }], 'lines[0].unitCostMinor'],
  ])('refuses invalid lines %j naming %s', (lines, field) => {
    spec.given([registered()]).when(purchase('o-1', T1, lines as PurchaseLine[])).thenThrows('invalid_amount', field);
  });
  it('sums many lines exactly in minor units', () => {
    const lines: PurchaseLine[] = [
      { sku: 'a', category: 'x', quantity: 3, unitPriceMinor: 10, unitCostMinor: 1 },
      { sku: 'b', category: 'y', quantity: 7, unitPriceMinor: 20, unitCostMinor: 3 },
    ];
    const [recorded] = decideCustomer(purchase('o-9', T1, lines), foldCustomer([registered()]));
    expect(recorded?.data).toMatchObject({ totalMinor: 3 * 10 + 7 * 20, costMinor: 3 + 21 });
  });
});
