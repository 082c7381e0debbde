/** Every lifecycle threshold in one pure object, so a business can tune it and audits can cite it. */
export interface LifecyclePolicy {
  /** distinct orders that make a customer a repeat buyer */
  repeatPurchaseThreshold: number;
  /** converted referees that make a customer an advocate */
  advocateMinConvertedReferrals: number;
  /** feedback score from a repeat buyer that makes them an advocate */
  promoterMinScore: number;
  /** business days without a purchase after which the sweep churns a customer */
  churnAfterDays: number;
}

export const defaultPolicy: LifecyclePolicy = Object.freeze({
  repeatPurchaseThreshold: 2,
  advocateMinConvertedReferrals: 1,
  promoterMinScore: 9,
  churnAfterDays: 180,
});

/**
 * A policy from partial overrides (configuration), checked so a typo cannot silently make every
 * customer an advocate: each threshold must be a positive integer (`promoterMinScore` 0..10), and a
 * misspelt field is refused rather than ignored, which would leave its default in force unnoticed.
 */
export function lifecyclePolicy(overrides: Partial<LifecyclePolicy> = {}): LifecyclePolicy {
  const known = Object.keys(defaultPolicy);
  for (const field of Object.keys(overrides)) {
    if (!known.includes(field)) {
      throw new RangeError(`lifecycle policy has no field ${JSON.stringify(field)}; the fields are ${known.join(', ')}`);
    }
  }
  const policy = { ...defaultPolicy, ...overrides };
  for (const [field, value] of Object.entries(policy)) {
    const max = field === 'promoterMinScore' ? 10 : Number.MAX_SAFE_INTEGER;
    if (!Number.isSafeInteger(value) || value < (field === 'promoterMinScore' ? 0 : 1) || value > max) {
      throw new RangeError(
        `lifecycle policy ${field} must be ${field === 'promoterMinScore' ? 'an integer from 0 to 10' : 'a positive integer'}, got ${JSON.stringify(value)}`,
      );
    }
  }
  return Object.freeze(policy);
}
