import type { IsoDateTime, PersonalData, PurchaseLine, MinorUnits } from './events';

/**
 * What callers ask for. The same envelope `{ type, commandId, data }` arrives over HTTP, Kafka and
 * file import; after validation at the edge it becomes one of these. Time and ids come in the
 * command (deciders never read a clock): `occurredAt` is business time.
 */
export const CommandTypes = {
  RegisterProspect: 'RegisterProspect',
  RecordTouchpoint: 'RecordTouchpoint',
  RecordPurchase: 'RecordPurchase',
  RecordFeedback: 'RecordFeedback',
  ThankCustomer: 'ThankCustomer',
  UpdateProfile: 'UpdateProfile',
  MarkCustomerLost: 'MarkCustomerLost',
  ChurnIfInactive: 'ChurnIfInactive',
  EraseCustomerPersonalData: 'EraseCustomerPersonalData',
  HireEmployee: 'HireEmployee',
  RecordEmployeeLeft: 'RecordEmployeeLeft',
  RecordCampaignSpend: 'RecordCampaignSpend',
  // issued by the referral process manager, not by callers
  CreditReferral: 'CreditReferral',
  ConvertReferral: 'ConvertReferral',
} as const;
export type CommandType = (typeof CommandTypes)[keyof typeof CommandTypes];

type Cmd<T extends CommandType, D> = { type: T; data: D & { occurredAt: IsoDateTime } };

export type RegisterProspect = Cmd<
  'RegisterProspect',
  { customerId: string; source: string; channel?: string; campaign?: string; referredBy?: string; personal?: PersonalData }
>;
export type RecordTouchpoint = Cmd<
  'RecordTouchpoint',
  { customerId: string; channel: string; direction: 'inbound' | 'outbound'; kind: string; note?: string }
>;
export type RecordPurchase = Cmd<
  'RecordPurchase',
  { customerId: string; orderId: string; lines: PurchaseLine[]; channel?: string; location?: string; campaign?: string }
>;
export type RecordFeedback = Cmd<
  'RecordFeedback',
  {
    customerId: string;
    feedbackId: string;
    score: number;
    kind: 'praise' | 'complaint' | 'suggestion';
    topic?: string;
    employeeId?: string;
    comment?: string;
  }
>;
export type ThankCustomer = Cmd<
  'ThankCustomer',
  { customerId: string; gesture: string; reason: string; valueMinor?: MinorUnits }
>;
export type UpdateProfile = Cmd<
  'UpdateProfile',
  { customerId: string; personal?: PersonalData; preferences?: Record<string, string>; consents?: Record<string, boolean> }
>;
export type MarkCustomerLost = Cmd<'MarkCustomerLost', { customerId: string; reason: string }>;
/** The churn sweep sends one per customer: churn if no purchase for `churnAfterDays` before `occurredAt`. */
export type ChurnIfInactive = Cmd<'ChurnIfInactive', { customerId: string }>;
export type EraseCustomerPersonalData = Cmd<'EraseCustomerPersonalData', { customerId: string; requestedBy?: string }>;
export type HireEmployee = Cmd<'HireEmployee', { employeeId: string; name: string; role?: string }>;
export type RecordEmployeeLeft = Cmd<'RecordEmployeeLeft', { employeeId: string; reason?: string }>;
export type RecordCampaignSpend = Cmd<
  'RecordCampaignSpend',
  { campaignId: string; spendId: string; channel: string; amountMinor: MinorUnits }
>;
export type CreditReferral = Cmd<'CreditReferral', { customerId: string; refereeId: string }>;
export type ConvertReferral = Cmd<'ConvertReferral', { customerId: string; refereeId: string; orderId: string }>;

export type CustomerCommand =
  | RegisterProspect
  | RecordTouchpoint
  | RecordPurchase
  | RecordFeedback
  | ThankCustomer
  | UpdateProfile
  | MarkCustomerLost
  | ChurnIfInactive
  | EraseCustomerPersonalData
  | CreditReferral
  | ConvertReferral;
export type EmployeeCommand = HireEmployee | RecordEmployeeLeft;
export type CampaignCommand = RecordCampaignSpend;
export type DomainCommand = CustomerCommand | EmployeeCommand | CampaignCommand;
