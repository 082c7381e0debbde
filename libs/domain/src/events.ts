/**
 * The facts Clientele records. Each `type` string is a stored contract: never derive it from a
 * class name, never rename it. A breaking change to a payload gets a new type (`X.v2`) plus an
 * upcaster in the event store, not an edit here.
 *
 * Every payload carries `occurredAt` (business time, ISO-8601 UTC). Record time is the store's.
 * Money is integer minor units (cents): sums never drift.
 */

export type IsoDateTime = string; // '2026-01-31T10:00:00.000Z'
export type IsoDate = string; // '1990-05-17'
export type MinorUnits = number; // integer, >= 0

export type CustomerStage = 'prospect' | 'customer' | 'repeat_buyer' | 'advocate' | 'churned';

export interface PersonalData {
  name?: string;
  email?: string;
  phone?: string;
  birthday?: IsoDate;
}

export interface PurchaseLine {
  sku: string;
  category: string;
  quantity: number; // integer > 0
  unitPriceMinor: MinorUnits;
  unitCostMinor: MinorUnits;
}

export const EventTypes = {
  ProspectRegistered: 'ProspectRegistered',
  TouchpointRecorded: 'TouchpointRecorded',
  PurchaseRecorded: 'PurchaseRecorded',
  CustomerConverted: 'CustomerConverted',
  RepeatBuyerQualified: 'RepeatBuyerQualified',
  AdvocateRecognized: 'AdvocateRecognized',
  CustomerChurned: 'CustomerChurned',
  CustomerReactivated: 'CustomerReactivated',
  ReferralCredited: 'ReferralCredited',
  ReferralConverted: 'ReferralConverted',
  FeedbackReceived: 'FeedbackReceived',
  CustomerThanked: 'CustomerThanked',
  ProfileUpdated: 'ProfileUpdated',
  PersonalDataErased: 'PersonalDataErased',
  EmployeeHired: 'EmployeeHired',
  EmployeeLeft: 'EmployeeLeft',
  CampaignSpendRecorded: 'CampaignSpendRecorded',
} as const;
export type EventType = (typeof EventTypes)[keyof typeof EventTypes];

type Ev<T extends EventType, D> = { type: T; data: D & { occurredAt: IsoDateTime } };

// ---- customer stream: `customer-{customerId}` ----
export type ProspectRegistered = Ev<
  'ProspectRegistered',
  {
    customerId: string;
    source: string; // acquisition source; 'unknown' for implicit registration
    channel?: string;
    campaign?: string;
    referredBy?: string;
    personal: PersonalData;
    implicit: boolean; // true when created by a purchase/touchpoint/referral for an unknown id
  }
>;
export type TouchpointRecorded = Ev<
  'TouchpointRecorded',
  { customerId: string; channel: string; direction: 'inbound' | 'outbound'; kind: string; note?: string }
>;
export type PurchaseRecorded = Ev<
  'PurchaseRecorded',
  {
    customerId: string;
    orderId: string;
    lines: PurchaseLine[];
    totalMinor: MinorUnits; // sum(quantity * unitPriceMinor)
    costMinor: MinorUnits; // sum(quantity * unitCostMinor)
    channel?: string;
    location?: string;
    campaign?: string;
  }
>;
/** Lifecycle transitions. `cause` is the id of the stored event that caused the transition. */
export type CustomerConverted = Ev<'CustomerConverted', { customerId: string; orderId: string }>;
export type RepeatBuyerQualified = Ev<'RepeatBuyerQualified', { customerId: string; distinctOrders: number }>;
export type AdvocateRecognized = Ev<
  'AdvocateRecognized',
  { customerId: string; reason: 'converted_referrals' | 'promoter_feedback'; convertedReferrals: number; score?: number }
>;
export type CustomerChurned = Ev<
  'CustomerChurned',
  {
    customerId: string;
    reason: 'inactive' | 'marked_lost';
    detail?: string; // free text reason for marked_lost
    previousStage: Exclude<CustomerStage, 'churned' | 'prospect'>;
    lastPurchaseAt?: IsoDateTime;
  }
>;
export type CustomerReactivated = Ev<'CustomerReactivated', { customerId: string; orderId: string; churnedAt: IsoDateTime }>;
export type ReferralCredited = Ev<'ReferralCredited', { customerId: string; refereeId: string }>;
export type ReferralConverted = Ev<'ReferralConverted', { customerId: string; refereeId: string; orderId: string }>;
export type FeedbackReceived = Ev<
  'FeedbackReceived',
  {
    customerId: string;
    feedbackId: string;
    score: number; // integer 0..10
    kind: 'praise' | 'complaint' | 'suggestion';
    topic?: string;
    employeeId?: string;
    comment?: string; // personal free text
  }
>;
export type CustomerThanked = Ev<
  'CustomerThanked',
  { customerId: string; gesture: string; reason: string; valueMinor?: MinorUnits }
>;
export type ProfileUpdated = Ev<
  'ProfileUpdated',
  {
    customerId: string;
    personal?: PersonalData;
    preferences?: Record<string, string>;
    consents?: Record<string, boolean>;
  }
>;
export type PersonalDataErased = Ev<'PersonalDataErased', { customerId: string; requestedBy?: string }>;

// ---- employee stream: `employee-{employeeId}` ----
export type EmployeeHired = Ev<'EmployeeHired', { employeeId: string; name: string; role?: string }>;
export type EmployeeLeft = Ev<'EmployeeLeft', { employeeId: string; reason?: string }>;

// ---- campaign stream: `campaign-{campaignId}` ----
export type CampaignSpendRecorded = Ev<
  'CampaignSpendRecorded',
  { campaignId: string; spendId: string; channel: string; amountMinor: MinorUnits }
>;

export type CustomerEvent =
  | ProspectRegistered
  | TouchpointRecorded
  | PurchaseRecorded
  | CustomerConverted
  | RepeatBuyerQualified
  | AdvocateRecognized
  | CustomerChurned
  | CustomerReactivated
  | ReferralCredited
  | ReferralConverted
  | FeedbackReceived
  | CustomerThanked
  | ProfileUpdated
  | PersonalDataErased;
export type EmployeeEvent = EmployeeHired | EmployeeLeft;
export type CampaignEvent = CampaignSpendRecorded;
export type DomainEvent = CustomerEvent | EmployeeEvent | CampaignEvent;

/** Transitions between lifecycle stages, the events marketing systems subscribe to. */
export const LifecycleTransitionTypes: ReadonlySet<string> = new Set([
  EventTypes.ProspectRegistered,
  EventTypes.CustomerConverted,
  EventTypes.RepeatBuyerQualified,
  EventTypes.AdvocateRecognized,
  EventTypes.CustomerChurned,
  EventTypes.CustomerReactivated,
]);

export const customerStream = (customerId: string): string => `customer-${customerId}`;
export const employeeStream = (employeeId: string): string => `employee-${employeeId}`;
export const campaignStream = (campaignId: string): string => `campaign-${campaignId}`;
