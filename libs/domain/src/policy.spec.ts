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
  it('given a field it does not know (a typo), then an error naming it and the known fields', () => {
    const typo = JSON.parse('{"churnAfterDay":90}') as Partial<typeof defaultPolicy>;
    expect(() => lifecyclePolicy(typo)).toThrow(
      'lifecycle policy has no field "churnAfterDay"; the fields are repeatPurchaseThreshold, advocateMinConvertedReferrals, promoterMinScore, churnAfterDays',
    );
  });
  it('given an inherited name such as __proto__ from JSON, then it is refused as unknown', () => {
    const sneaky = JSON.parse('{"__proto__":{"churnAfterDays":1}}') as Partial<typeof defaultPolicy>;
    expect(() => lifecyclePolicy(sneaky)).toThrow(/no field "__proto__"/);
  });
});
