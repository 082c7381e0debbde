/** The small, stable set of errors the domain raises. Codes are a public contract (HTTP maps them). */
export const DomainErrorCodes = {
  SelfReferral: 'self_referral',
  AlreadyReferred: 'already_referred',
  AlreadyRegistered: 'already_registered',
  InvalidAmount: 'invalid_amount',
  InvalidScore: 'invalid_score',
  InvalidDate: 'invalid_date',
  CustomerErased: 'customer_erased',
  NotACustomer: 'not_a_customer',
  AlreadyChurned: 'already_churned',
  EmployeeNotHired: 'employee_not_hired',
  EmployeeAlreadyHired: 'employee_already_hired',
  EmployeeAlreadyLeft: 'employee_already_left',
  DateOutOfOrder: 'date_out_of_order',
  UnknownCustomer: 'unknown_customer',
  ConcurrencyConflict: 'concurrency_conflict',
} as const;
export type DomainErrorCode = (typeof DomainErrorCodes)[keyof typeof DomainErrorCodes];

/** A business rule said no. Carries a stable code; `field` names the offending input when there is one. */
export class DomainError extends Error {
  constructor(
    readonly code: DomainErrorCode,
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = 'DomainError';
  }
}
