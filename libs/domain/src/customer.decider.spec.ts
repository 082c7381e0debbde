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
    [[{ ...line, quantity: Number.MAX_SAFE_INTEGER, unitPriceMinor: Number.MAX_SAFE_INTEGER }], 'lines'],
    [[{ ...line, unitCostMinor: Number.MAX_SAFE_INTEGER }, { ...line, unitCostMinor: 1 }], 'lines'],
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

describe('customer decider: win-back after churn', () => {
  const churnedCustomer = (): CustomerEvent[] => [...repeatBuyerSince(), churned(T3, 'repeat_buyer', T2)];
  const T4 = '2026-05-10T09:00:00.000Z';
  const T5 = '2026-06-10T09:00:00.000Z';

  it('reactivates a churned customer on a purchase after the churn, back at customer', () => {
    spec
      .given(churnedCustomer())
      .when(purchase('o-3', T4))
      .then([
        purchased('o-3', T4),
        { type: 'CustomerReactivated', data: { customerId: id, orderId: 'o-3', churnedAt: T3, occurredAt: T4 } },
      ]);
  });
  it('re-qualifies repeat buyer on the next purchase, counting lifetime orders', () => {
    const reactivated: CustomerEvent = {
      type: 'CustomerReactivated',
      data: { customerId: id, orderId: 'o-3', churnedAt: T3, occurredAt: T4 },
    };
    spec
      .given([...churnedCustomer(), purchased('o-3', T4), reactivated])
      .when(purchase('o-4', T5))
      .then([purchased('o-4', T5), qualified(4, T5)]);
  });
  it('re-recognizes a churned advocate with converted referees on the purchase after the win-back', () => {
    const reactivated: CustomerEvent = {
      type: 'CustomerReactivated',
      data: { customerId: id, orderId: 'o-3', churnedAt: T3, occurredAt: T4 },
    };
    spec
      .given([
        ...repeatBuyerSince(),
        referralConverted('r-1', T2),
        advocateByReferrals(1, T2),
        churned(T3, 'advocate', T2),
        purchased('o-3', T4),
        reactivated,
      ])
      .when(purchase('o-4', T5))
      .then([purchased('o-4', T5), qualified(4, T5), advocateByReferrals(1, T5)]);
  });
  it('records an order dated before the churn without reactivating', () => {
    spec.given(churnedCustomer()).when(purchase('o-late', T2)).then([purchased('o-late', T2)]);
  });
  it('records a replayed order of a churned customer once', () => {
    spec.given(churnedCustomer()).when(purchase('o-2', T4)).thenNothing();
  });
});

describe('customer decider: feedback', () => {
  it('recognizes a promoter among repeat buyers as advocate', () => {
    spec
      .given(repeatBuyerSince())
      .when(giveFeedback('f-1', 9, T3))
      .then([
        feedback('f-1', 9, T3),
        {
          type: 'AdvocateRecognized',
          data: { customerId: id, reason: 'promoter_feedback', convertedReferrals: 0, score: 9, occurredAt: T3 },
        },
      ]);
  });
  it('records feedback below the promoter score, or from a mere customer, without a transition', () => {
    spec.given(repeatBuyerSince()).when(giveFeedback('f-1', 8, T3)).then([feedback('f-1', 8, T3)]);
    spec.given(customerSince()).when(giveFeedback('f-1', 10, T3)).then([feedback('f-1', 10, T3)]);
  });
  it('reads the promoter score from the policy', () => {
    specWith({ ...defaultPolicy, promoterMinScore: 10 })
      .given(repeatBuyerSince())
      .when(giveFeedback('f-1', 9, T3))
      .then([feedback('f-1', 9, T3)]);
    specWith({ ...defaultPolicy, promoterMinScore: 7 })
      .given(repeatBuyerSince())
      .when(giveFeedback('f-1', 7, T3))
      .then([
        feedback('f-1', 7, T3),
        {
          type: 'AdvocateRecognized',
          data: { customerId: id, reason: 'promoter_feedback', convertedReferrals: 0, score: 7, occurredAt: T3 },
        },
      ]);
  });
  it.each([-1, 11, 7.5, Number.NaN])('refuses score %p', (score) => {
    spec.given([registered()]).when(giveFeedback('f-1', score, T1)).thenThrows('invalid_score', 'score');
  });
  it('records a repeated feedback id once', () => {
    spec.given([registered(), feedback('f-1', 3, T1)]).when(giveFeedback('f-1', 3, T2)).thenNothing();
  });
  it('registers an unknown author implicitly', () => {
    spec.given([]).when(giveFeedback('f-1', 5, T1)).then([implicitlyRegistered(T1), feedback('f-1', 5, T1)]);
  });
});

describe('customer decider: referrals', () => {
  it('credits a referee once, registering an unknown referrer implicitly', () => {
    spec.given([]).when(credit('r-1', T1)).then([implicitlyRegistered(T1), referralCredited('r-1', T1)]);
    spec.given([registered()]).when(credit('r-1', T1)).then([referralCredited('r-1', T1)]);
    spec.given([registered(), referralCredited('r-1', T1)]).when(credit('r-1', T2)).thenNothing();
  });
  it('refuses crediting or converting oneself', () => {
    spec.given([registered()]).when(credit(id, T1)).thenThrows('self_referral', 'refereeId');
    spec.given([registered()]).when(convert(id, T1)).thenThrows('self_referral', 'refereeId');
  });
  it('recognizes a customer as advocate when enough referees converted', () => {
    spec
      .given([...customerSince(), referralCredited('r-1', T1)])
      .when(convert('r-1', T2))
      .then([referralConverted('r-1', T2), advocateByReferrals(1, T2)]);
  });
  it('converts a referral for a prospect without a transition, then recognizes them when they buy', () => {
    spec
      .given([registered(), referralCredited('r-1', T1)])
      .when(convert('r-1', T2))
      .then([referralConverted('r-1', T2)]);
    spec
      .given([registered(), referralCredited('r-1', T1), referralConverted('r-1', T2)])
      .when(purchase('o-1', T3))
      .then([purchased('o-1', T3), converted('o-1', T3), advocateByReferrals(1, T3)]);
  });
  it('credits a referee whose credit never arrived before converting them', () => {
    spec.given(customerSince()).when(convert('r-1', T2)).then([
      referralCredited('r-1', T2),
      referralConverted('r-1', T2),
      advocateByReferrals(1, T2),
    ]);
  });
  it('reads the converted-referrals threshold from the policy', () => {
    const policy = { ...defaultPolicy, advocateMinConvertedReferrals: 2 };
    const given = [...repeatBuyerSince(), referralCredited('r-1', T1), referralCredited('r-2', T1)];
    specWith(policy).given(given).when(convert('r-1', T2)).then([referralConverted('r-1', T2)]);
    specWith(policy)
      .given([...given, referralConverted('r-1', T2)])
      .when(convert('r-2', T3))
      .then([referralConverted('r-2', T3), advocateByReferrals(2, T3)]);
  });
  it('converts a referee once', () => {
    spec
      .given([...customerSince(), referralCredited('r-1', T1), referralConverted('r-1', T2), advocateByReferrals(1, T2)])
      .when(convert('r-1', T3))
      .thenNothing();
  });
  it('does not recognize an advocate twice', () => {
    spec
      .given([...customerSince(), referralConverted('r-1', T2), advocateByReferrals(1, T2)])
      .when(convert('r-2', T3))
      .then([referralCredited('r-2', T3), referralConverted('r-2', T3)]);
  });
});

describe('customer decider: backdated facts keep the stage history in business-time order', () => {
  const MID = '2026-02-20T09:00:00.000Z'; // between T1 (customer) and T2 (repeat buyer)
  it('dates the repeat-buyer qualification a backdated order causes at the conversion, not before it', () => {
    spec
      .given(customerSince(T1))
      .when(purchase('o-early', T0))
      .then([purchased('o-early', T0), qualified(2, T1)]);
  });
  it('dates the qualification at the order when the order is later than the present stage', () => {
    spec.given(customerSince(T1)).when(purchase('o-2', T2)).then([purchased('o-2', T2), qualified(2, T2)]);
  });
  it('dates the conversion an order placed before the registration causes at the registration', () => {
    spec.given([registered(T1)]).when(purchase('o-1', T0)).then([purchased('o-1', T0), converted('o-1', T1)]);
  });
  it('dates a promoter recognition backdated before the repeat-buyer stage at that stage', () => {
    spec
      .given(repeatBuyerSince(T2))
      .when(giveFeedback('f-1', 10, MID))
      .then([
        feedback('f-1', 10, MID),
        { type: 'AdvocateRecognized', data: { customerId: id, reason: 'promoter_feedback', convertedReferrals: 0, score: 10, occurredAt: T2 } },
      ]);
  });
  it('dates an advocate recognition by a backdated referral conversion at the present stage', () => {
    spec
      .given([...customerSince(T2), referralCredited('r-1', T0)])
      .when(convert('r-1', T1))
      .then([referralConverted('r-1', T1), advocateByReferrals(1, T2)]);
  });
  it('refuses a churn dated before the stage it ends, naming occurredAt and the date of the stage', () => {
    const error = spec.given(repeatBuyerSince(T2)).when(markLost(MID)).thenThrows('date_out_of_order', 'occurredAt');
    expect(error.message).toContain(`became repeat buyer (${T2})`);
    spec.given(customerSince(T1)).when(markLost(T0)).thenThrows('date_out_of_order', 'occurredAt');
    spec.given(customerSince(T1)).when(markLost(T1)).then([churned(T1, 'customer', T1, 'marked_lost')]);
  });
  it('does not churn in a sweep dated before the present stage began', () => {
    const advocateLate = [...customerSince(T0), advocateByReferrals(1, '2026-12-01T00:00:00.000Z')];
    spec.given(advocateLate).when(sweep('2026-09-01T00:00:00.000Z')).thenNothing();
    spec.given(advocateLate).when(sweep('2026-12-02T00:00:00.000Z')).then([churned('2026-12-02T00:00:00.000Z', 'advocate', T0)]);
  });
  it('measures inactivity from an order placed before the registration, not from the conversion dated at the registration', () => {
    // registered March 1, her only order February 1: the 180 days run from February 1
    const state = foldCustomer([registered(T1), purchased('o-1', T0), converted('o-1', T1)]);
    expect(state).toMatchObject({ phase: 'customer', firstPurchaseAt: T0, lastPurchaseAt: T0 });
    expect('purchasedBeforeConversion' in state).toBe(false);
    // T0 is 2026-01-10; 180 days later is 2026-07-09
    spec.given([registered(T1), purchased('o-1', T0), converted('o-1', T1)]).when(sweep('2026-07-09T00:00:00.000Z')).then([churned('2026-07-09T00:00:00.000Z', 'customer', T0)]);
  });
  it('takes a late order dated before the first one as the first purchase', () => {
    const state = foldCustomer([...customerSince(T2), purchased('o-early', T0), qualified(2, T2)]);
    expect(state).toMatchObject({ firstPurchaseAt: T0, lastPurchaseAt: T2 });
  });
  it('keeps the history of every backdated order in business-time order', () => {
    const events = [...customerSince(T2)];
    let state = foldCustomer(events);
    for (const [orderId, at] of [['o-a', T0], ['o-b', T1], ['o-c', T0]] as const) {
      const decided = decideCustomer(purchase(orderId, at), state);
      state = foldCustomer(decided, state);
    }
    if (state.phase === 'unknown') throw new Error('expected a known customer');
    const times = state.history.map((h) => Date.parse(h.at));
    expect(times).toEqual([...times].sort((a, b) => a - b));
    expect(state.history.map((h) => h.stage)).toEqual(['prospect', 'customer', 'repeat_buyer']);
  });
});

describe('customer decider: churn', () => {
  it('marks a customer lost with the reason', () => {
    spec.given(customerSince()).when(markLost(T2)).then([churned(T2, 'customer', T1, 'marked_lost')]);
  });
  it('ignores marking a churned customer lost again', () => {
    spec.given([...customerSince(), churned(T2, 'customer', T1)]).when(markLost(T3)).thenNothing();
  });
  it('refuses to mark a prospect or an unknown id lost', () => {
    spec.given([registered()]).when(markLost(T1)).thenThrows('not_a_customer', 'customerId');
    spec.given([]).when(markLost(T1)).thenThrows('unknown_customer', 'customerId');
  });
  it('churns a customer with no purchase for churnAfterDays whole UTC days', () => {
    // T1 is 2026-02-10; 180 days later is 2026-08-09
    spec.given(customerSince()).when(sweep('2026-08-09T00:00:00.000Z')).then([churned('2026-08-09T00:00:00.000Z', 'customer', T1)]);
    spec.given(customerSince()).when(sweep('2026-08-08T23:59:59.999Z')).thenNothing();
  });
  it('keeps the stage it churned from', () => {
    spec
      .given([...repeatBuyerSince(), advocateByReferrals(1, T2)])
      .when(sweep('2027-01-01'))
      .then([churned('2027-01-01', 'advocate', T2)]);
  });
  it('reads churnAfterDays from the policy', () => {
    specWith({ ...defaultPolicy, churnAfterDays: 30 })
      .given(customerSince())
      .when(sweep('2026-03-12T00:00:00Z'))
      .then([churned('2026-03-12T00:00:00Z', 'customer', T1)]);
    specWith({ ...defaultPolicy, churnAfterDays: 30 }).given(customerSince()).when(sweep('2026-03-11T23:00:00Z')).thenNothing();
  });
  it('leaves prospects, churned customers and recent buyers alone', () => {
    spec.given([registered()]).when(sweep('2030-01-01')).thenNothing();
    spec.given([...customerSince(), churned(T2, 'customer', T1)]).when(sweep('2030-01-01')).thenNothing();
    spec.given(repeatBuyerSince()).when(sweep(T3)).thenNothing();
  });
  it('measures inactivity from the latest purchase even when orders arrive out of order', () => {
    spec
      .given([...repeatBuyerSince(), purchased('o-old', T0)])
      .when(sweep('2026-08-09T00:00:00Z'))
      .thenNothing();
  });
  it('refuses a sweep for an unknown id', () => {
    spec.given([]).when(sweep(T1)).thenThrows('unknown_customer', 'customerId');
  });
});

describe('customer decider: personal data', () => {
  it('erases once', () => {
    spec.given(customerSince()).when(erase(T2)).then([erased(T2)]);
    spec.given([...customerSince(), erased(T2)]).when(erase(T3)).thenNothing();
    spec.given([]).when(erase(T2)).thenThrows('unknown_customer', 'customerId');
  });
  it('keeps counting purchases after erasure', () => {
    spec.given([...customerSince(), erased(T2)]).when(purchase('o-2', T3)).then([purchased('o-2', T3), qualified(2, T3)]);
  });
  it('refuses new personal data after erasure but accepts preferences', () => {
    const given = [...customerSince(), erased(T2)];
    spec
      .given(given)
      .when({ type: 'UpdateProfile', data: { customerId: id, personal: { email: 'a@b.c' }, occurredAt: T3 } })
      .thenThrows('customer_erased', 'personal');
    spec.given(given).when(giveFeedback('f-1', 2, T3, 'call me')).thenThrows('customer_erased', 'comment');
    spec
      .given(given)
      .when({ type: 'UpdateProfile', data: { customerId: id, preferences: { genre: 'jazz' }, occurredAt: T3 } })
      .then([{ type: 'ProfileUpdated', data: { customerId: id, preferences: { genre: 'jazz' }, occurredAt: T3 } }]);
  });
});

describe('customer decider: touchpoints, thanks, profile', () => {
  it('records each with an implicit registration for an unknown id', () => {
    spec
      .given([])
      .when({ type: 'RecordTouchpoint', data: { customerId: id, channel: 'email', direction: 'outbound', kind: 'newsletter', occurredAt: T1 } })
      .then([
        implicitlyRegistered(T1),
        { type: 'TouchpointRecorded', data: { customerId: id, channel: 'email', direction: 'outbound', kind: 'newsletter', occurredAt: T1 } },
      ]);
    spec
      .given([registered()])
      .when({ type: 'ThankCustomer', data: { customerId: id, gesture: 'coupon', reason: 'loyalty', valueMinor: 500, occurredAt: T1 } })
      .then([{ type: 'CustomerThanked', data: { customerId: id, gesture: 'coupon', reason: 'loyalty', valueMinor: 500, occurredAt: T1 } }]);
    spec
      .given([])
      .when({ type: 'UpdateProfile', data: { customerId: id, consents: { email: true }, occurredAt: T1 } })
      .then([implicitlyRegistered(T1), { type: 'ProfileUpdated', data: { customerId: id, consents: { email: true }, occurredAt: T1 } }]);
  });
  it('records nothing for a profile update that changes nothing, and registers nobody for it', () => {
    spec.given([registered()]).when({ type: 'UpdateProfile', data: { customerId: id, occurredAt: T1 } }).thenNothing();
    spec.given([]).when({ type: 'UpdateProfile', data: { customerId: id, occurredAt: T1 } }).thenNothing();
  });
  it('refuses a negative or fractional thank-you value', () => {
    spec
      .given([registered()])
      .when({ type: 'ThankCustomer', data: { customerId: id, gesture: 'gift', reason: 'apology', valueMinor: -5, occurredAt: T1 } })
      .thenThrows('invalid_amount', 'valueMinor');
  });
});

describe('customer evolve', () => {
  it('leaves the state unchanged for event types it does not know', () => {
    const state = foldCustomer(customerSince());
    const alien = { type: 'SomethingNew', data: { occurredAt: T2 } } as unknown as CustomerEvent;
    expect(evolveCustomer(state, alien)).toBe(state);
    expect(evolveCustomer(initialCustomerState(), alien)).toEqual({ phase: 'unknown' });
  });
  it('keeps the stage history', () => {
    const state = foldCustomer([...repeatBuyerSince(), churned(T3, 'repeat_buyer', T2)]);
    expect(state).toMatchObject({
      phase: 'churned',
      previousStage: 'repeat_buyer',
      churnedAt: T3,
      history: [
        { stage: 'prospect', at: T0 },
        { stage: 'customer', at: T1 },
        { stage: 'repeat_buyer', at: T2 },
        { stage: 'churned', at: T3 },
      ],
    });
  });
});
