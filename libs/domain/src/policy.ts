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
