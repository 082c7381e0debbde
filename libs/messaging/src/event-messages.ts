import { Headers as H, LIFECYCLE_TRANSITION_TYPES, MessageKinds, STAGE_AFTER } from '@clientele/contracts';
import type { EventEnvelope, LifecycleTransitionMessage, LifecycleTransitionType, ReferralEdgeMessage } from '@clientele/contracts';
import type { StoredEvent } from '@clientele/event-store';
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
    data: event.data,
  };
  if (m.correlationId !== undefined) envelope.correlationId = m.correlationId;
  if (m.causationId !== undefined) envelope.causationId = m.causationId;
  return envelope;
}

export function eventHeaders(e: EventEnvelope, kind: string): IHeaders {
  const headers: IHeaders = {
    [H.contentType]: 'application/json',
    [H.messageKind]: kind,
    [H.eventId]: e.id,
    [H.eventType]: e.type,
    [H.schemaVersion]: String(e.schemaVersion),
    [H.streamId]: e.streamId,
    [H.revision]: String(e.revision),
    [H.position]: String(e.position),
  };
  if (e.correlationId !== undefined) headers[H.correlationId] = e.correlationId;
  if (e.causationId !== undefined) headers[H.causationId] = e.causationId;
  return headers;
}

/** The records one stored event becomes: always one on `events`, plus its lifecycle or referral view. */
export function recordsFor(event: StoredEvent, topics: { events: string; lifecycle: string; referrals: string }): OutgoingRecord[] {
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
  return records;
}
