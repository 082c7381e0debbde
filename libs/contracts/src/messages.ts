/**
 * The public messages Clientele publishes to Kafka and accepts from it. Other teams depend on these
 * shapes: add optional fields only; anything breaking gets a new version (`.v2`) beside the old one.
 * JSON Schemas for each are in `schemas.ts`; a test keeps the two in step.
 */

/** Every stored event, on the `events` topic (and transitions on `lifecycle`), keyed by stream id. */
export interface EventEnvelope<D extends object = Record<string, unknown>> {
  /** the event's id (a UUID): the key to deduplicate on, since delivery is at least once */
  id: string;
  type: string;
  /** version of `data`'s shape for this type */
  schemaVersion: number;
  streamId: string;
  /** place in its stream, from 0 */
  revision: number;
  /** place in the global log, from 1; strictly increasing in publication order */
  position: number;
  /** business time, ISO-8601 UTC */
  occurredAt: string;
  /** when the store recorded it, ISO-8601 UTC */
  recordedAt: string;
  correlationId?: string;
  causationId?: string;
  data: D;
}

export type CustomerStage = 'prospect' | 'customer' | 'repeat_buyer' | 'advocate' | 'churned';

/** The lifecycle transition events, as they appear on the `lifecycle` topic. */
export const LIFECYCLE_TRANSITION_TYPES = [
  'ProspectRegistered',
  'CustomerConverted',
  'RepeatBuyerQualified',
  'AdvocateRecognized',
  'CustomerChurned',
  'CustomerReactivated',
] as const;
export type LifecycleTransitionType = (typeof LIFECYCLE_TRANSITION_TYPES)[number];

/** The stage each transition leads to, so subscribers need not know the event catalogue. */
export const STAGE_AFTER: Readonly<Record<LifecycleTransitionType, CustomerStage>> = {
  ProspectRegistered: 'prospect',
  CustomerConverted: 'customer',
  RepeatBuyerQualified: 'repeat_buyer',
  AdvocateRecognized: 'advocate',
  CustomerChurned: 'churned',
  CustomerReactivated: 'customer',
};

/** A transition on the `lifecycle` topic: the event envelope plus who moved and where to. */
export interface LifecycleTransitionMessage extends EventEnvelope<{ customerId: string; occurredAt: string }> {
  type: LifecycleTransitionType;
  customerId: string;
  toStage: CustomerStage;
}

/**
 * The latest read-model profile of a customer, on the compacted `profiles` topic, keyed by customer
 * id. A null value (tombstone) means the profile is gone (personal data erased). The profile body is
 * the projection's; this contract only promises it is an object.
 */
export interface ProfileSnapshotMessage {
  customerId: string;
  snapshotVersion: 1;
  /** global position of the last event folded into the profile, when known */
  position?: number;
  /** when the profile was read: its recency and frequency figures are as of then (absent before 2026-12-01) */
  asOf?: string;
  profile: Record<string, unknown>;
}

/** Who referred whom, on the `referrals` topic, keyed by the referrer's stream id. */
export interface ReferralEdgeMessage {
  /** id of the event that created or converted the edge */
  eventId: string;
  type: 'ReferralCredited' | 'ReferralConverted';
  referrerId: string;
  refereeId: string;
  status: 'credited' | 'converted';
  orderId?: string;
  occurredAt: string;
  position: number;
}

// A command sent on the ingest topic is a `CommandEnvelope` (command-envelope.ts), one shape for HTTP, Kafka and import.

/** What the ingest could not accept, on `commands.dlq`, with enough to find and resend it. */
export interface DeadLetterMessage {
  reason: string;
  /**
   * what went wrong, for a program to act on: `empty_record`, `record_too_large`, `not_json`,
   * `not_a_command` (the record), or the application's code for a refused command (the codes of
   * the HTTP API's problem details: `invalid_command`, `self_referral`, `unknown_customer`, …)
   */
  code?: string;
  /** with `not_a_command` and `invalid_command`: each field at fault and what was expected */
  errors?: { field: string; expected: string }[];
  /** with a business rule's refusal: the one field to blame, when there is one */
  field?: string;
  /** the original record's bytes, base64; cut to a bounded size when `valueTruncated` */
  value: string | null;
  valueBytes: number;
  valueTruncated: boolean;
  key: string | null;
  sourceTopic: string;
  sourcePartition: number;
  sourceOffset: string;
  commandId?: string;
  /** the command's correlationId, when it had one */
  correlationId?: string;
  deadLetteredAt: string;
}

/**
 * Kafka header names. Values are UTF-8 strings; consumers can route, deduplicate and order on them
 * alone. Relayed events (events, lifecycle, referrals) carry the message kind, event id and type,
 * stream id, position and, when the event has them, the correlation and causation ids; the schema
 * version and revision are in the value only.
 */
export const Headers = {
  contentType: 'content-type',
  messageKind: 'clientele-message',
  eventId: 'clientele-event-id',
  eventType: 'clientele-event-type',
  streamId: 'clientele-stream-id',
  position: 'clientele-position',
  correlationId: 'clientele-correlation-id',
  causationId: 'clientele-causation-id',
  reason: 'clientele-dead-letter-reason',
} as const;

/** Values of the `clientele-message` header: which contract (and version) the value follows. */
export const MessageKinds = {
  event: 'event.v1',
  lifecycleTransition: 'lifecycle-transition.v1',
  profileSnapshot: 'profile-snapshot.v1',
  referralEdge: 'referral-edge.v1',
  deadLetter: 'dead-letter.v1',
} as const;
