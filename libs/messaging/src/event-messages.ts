import { Headers as H, LIFECYCLE_TRANSITION_TYPES, MessageKinds, STAGE_AFTER } from '@clientele/contracts';
import type { EventEnvelope, LifecycleTransitionMessage, LifecycleTransitionType, ReferralEdgeMessage } from '@clientele/contracts';
import { isEncryptedField, PERSONAL_FIELDS, type JsonObject, type StoredEvent } from '@clientele/event-store';
import type { IHeaders } from 'kafkajs';

/** A record ready for a producer: where it goes, its key, value and headers. */
export interface OutgoingRecord {
  topic: string;
  key: string;
  value: string | null;
  headers: IHeaders;
}

const transitionTypes: ReadonlySet<string> = new Set(LIFECYCLE_TRANSITION_TYPES);
const referralTypes: ReadonlySet<string> = new Set(['ReferralCredited', 'ReferralConverted']);

export function toEnvelope(event: StoredEvent): EventEnvelope {
  const m = event.metadata;
  const envelope: EventEnvelope = {
    id: event.id,
    type: event.type,
    schemaVersion: m.schemaVersion,
    streamId: event.streamId,
    revision: event.revision,
    position: event.position,
    occurredAt: m.occurredAt,
    recordedAt: event.recordedAt,
    data: withoutPersonalData(event.type, event.data),
  };
  if (m.correlationId !== undefined) envelope.correlationId = m.correlationId;
  if (m.causationId !== undefined) envelope.causationId = m.causationId;
  return envelope;
}

/**
 * The event's data without personal fields: neither their ciphertext (the raw store's
 * `{ "$personal": "enc:v1:…" }`) nor their clear text (a decrypting store) may reach topics that keep
 * records for months, where destroying a customer's key could not reach them. Events that lost a
 * field say so with `personalDataRedacted: true`; consumers needing the fields ask the API.
 */
export function withoutPersonalData(type: string, data: JsonObject): JsonObject {
  const listed = PERSONAL_FIELDS[type] ?? [];
  let redacted: JsonObject | undefined;
  for (const [field, value] of Object.entries(data)) {
    if (listed.includes(field) || isEncryptedField(value)) {
      redacted ??= { ...data };
      delete redacted[field];
    }
  }
  return redacted ? { ...redacted, personalDataRedacted: true } : data;
}

/**
 * What a consumer needs to route, deduplicate and order a record without parsing its value: the
 * contract, the event's ids and its type. Each header costs kafkajs a buffer of its own per record
 * (a third of the relay's CPU with the ten it once carried), so what the value already says plainly
 * stays there: the content type (every `clientele-message` kind is JSON), the schema version and the
 * revision.
 */
export function eventHeaders(e: EventEnvelope, kind: string): IHeaders {
  const headers: IHeaders = {
    [H.messageKind]: kind,
    [H.eventId]: e.id,
    [H.eventType]: e.type,
    [H.streamId]: e.streamId,
    [H.position]: String(e.position),
  };
  if (e.correlationId !== undefined) headers[H.correlationId] = e.correlationId;
  if (e.causationId !== undefined) headers[H.causationId] = e.causationId;
  return headers;
}

export type RelayTopics = { events: string; lifecycle: string; referrals: string; profiles: string };

/**
 * The records one stored event becomes: always one on `events`, plus its lifecycle or referral view;
 * an erasure also becomes a tombstone on the compacted `profiles` topic, so compaction removes the
 * customer's last profile snapshot from Kafka.
 */
export function recordsFor(event: StoredEvent, topics: RelayTopics): OutgoingRecord[] {
  const envelope = toEnvelope(event);
  const records: OutgoingRecord[] = [
    { topic: topics.events, key: event.streamId, value: JSON.stringify(envelope), headers: eventHeaders(envelope, MessageKinds.event) },
  ];
  const customerId = typeof event.data.customerId === 'string' ? event.data.customerId : undefined;
  if (transitionTypes.has(event.type) && customerId) {
    const type = event.type as LifecycleTransitionType;
    const transition = { ...envelope, type, customerId, toStage: STAGE_AFTER[type] } as LifecycleTransitionMessage;
    records.push({
      topic: topics.lifecycle,
      key: event.streamId,
      value: JSON.stringify(transition),
      headers: eventHeaders(envelope, MessageKinds.lifecycleTransition),
    });
  }
  if (referralTypes.has(event.type) && customerId && typeof event.data.refereeId === 'string') {
    const edge: ReferralEdgeMessage = {
      eventId: event.id,
      type: event.type as ReferralEdgeMessage['type'],
      referrerId: customerId,
      refereeId: event.data.refereeId,
      status: event.type === 'ReferralConverted' ? 'converted' : 'credited',
      occurredAt: envelope.occurredAt,
      position: event.position,
    };
    if (typeof event.data.orderId === 'string') edge.orderId = event.data.orderId;
    records.push({
      topic: topics.referrals,
      key: event.streamId,
      value: JSON.stringify(edge),
      headers: eventHeaders(envelope, MessageKinds.referralEdge),
    });
  }
  if (event.type === 'PersonalDataErased' && customerId) {
    records.push({
      topic: topics.profiles,
      key: customerId,
      value: null,
      headers: { [H.messageKind]: MessageKinds.profileSnapshot, [H.eventId]: event.id, [H.position]: String(event.position) },
    });
  }
  return records;
}
