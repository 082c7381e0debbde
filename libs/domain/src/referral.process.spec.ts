import type { CustomerEvent } from './events';
import { foldCustomer } from './customer.decider';
import { needsReferrerLookup, referralCommandId, referralReactions } from './referral.process';

const T0 = '2026-01-10T09:00:00Z';
const T1 = '2026-02-10T09:00:00Z';
const refereeRegistered: CustomerEvent = {
  type: 'ProspectRegistered',
  data: { customerId: 'r-1', source: 'friend', referredBy: 'c-1', personal: {}, implicit: false, occurredAt: T0 },
};
const refereeConverted: CustomerEvent = { type: 'CustomerConverted', data: { customerId: 'r-1', orderId: 'o-9', occurredAt: T1 } };

describe('referral process manager', () => {
  it('given a referred registration, then the referrer is credited', () => {
    expect(referralReactions(refereeRegistered)).toEqual([
      { type: 'CreditReferral', data: { customerId: 'c-1', refereeId: 'r-1', occurredAt: T0 } },
    ]);
  });
  it('given an unreferred registration, then nothing', () => {
    const { referredBy: _omit, ...data } = refereeRegistered.data;
    expect(referralReactions({ type: 'ProspectRegistered', data })).toEqual([]);
  });
  it("given a referee's conversion, then the referrer found from the referee's stream converts the referral", () => {
    const refereeStream = [refereeRegistered];
    const referredByOf = (customerId: string) => {
      const state = foldCustomer(refereeStream);
      return state.phase !== 'unknown' && state.customerId === customerId ? state.referredBy : undefined;
    };
    expect(needsReferrerLookup(refereeConverted)).toBe(true);
    expect(referralReactions(refereeConverted, referredByOf)).toEqual([
      { type: 'ConvertReferral', data: { customerId: 'c-1', refereeId: 'r-1', orderId: 'o-9', occurredAt: T1 } },
    ]);
  });
  it('given a conversion of someone nobody referred, or any other event, then nothing', () => {
    expect(referralReactions(refereeConverted, () => undefined)).toEqual([]);
    expect(referralReactions({ type: 'PurchaseRecorded', data: {} })).toEqual([]);
    expect(needsReferrerLookup(refereeRegistered)).toBe(false);
  });
  it('derives one stable command id per causing event', () => {
    expect(referralCommandId('ev-7')).toBe('referral:ev-7');
    expect(referralCommandId('ev-7')).toBe(referralCommandId('ev-7'));
    expect(referralCommandId('ev-8')).not.toBe(referralCommandId('ev-7'));
  });
});
