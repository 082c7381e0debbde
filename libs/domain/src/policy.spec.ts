import { defaultPolicy, lifecyclePolicy } from './policy';

describe('lifecycle policy', () => {
  it('given no overrides, then the defaults', () => {
    expect(lifecyclePolicy()).toEqual({ repeatPurchaseThreshold: 2, advocateMinConvertedReferrals: 1, promoterMinScore: 9, churnAfterDays: 180 });
    expect(lifecyclePolicy()).toEqual(defaultPolicy);
  });
  it('given overrides, then they replace only what they name', () => {
    expect(lifecyclePolicy({ churnAfterDays: 90 })).toEqual({ ...defaultPolicy, churnAfterDays: 90 });
  });
  it.each([
    [{ churnAfterDays: 0 }, /churnAfterDays must be a positive integer/],
    [{ repeatPurchaseThreshold: 1.5 }, /repeatPurchaseThreshold/],
    [{ advocateMinConvertedReferrals: Number.NaN }, /advocateMinConvertedReferrals/],
    [{ promoterMinScore: 11 }, /promoterMinScore must be an integer from 0 to 10/],
  ])('given %j, then a clear error', (overrides, message) => {
    expect(() => lifecyclePolicy(overrides)).toThrow(message);
  });
});
