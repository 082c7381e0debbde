import { Inject, Injectable } from '@nestjs/common';
import {
  LifecycleTransitionTypes,
  customerStage,
  customerStream,
  evolveCustomer,
  initialCustomerState,
  type CustomerEvent,
  type CustomerStage,
  type CustomerState,
} from '@clientele/domain';
import type { EventStore, JsonObject, StoredEvent } from '@clientele/event-store';
import { EVENT_STORE } from './clientele.tokens';

export interface StageEntry {
  stage: CustomerStage;
  /** business time of the transition */
  at: string;
  eventId: string;
  eventType: string;
  position: number;
  /** the event (or command) that caused this transition */
  causationId?: string;
}

export interface CustomerView {
  customerId: string;
  streamId: string;
  stage: CustomerStage;
  /** revision of the last event: pass it back as an expected revision when it matters */
  revision: number;
  registeredAt: string;
  source: string;
  referredBy?: string;
  erased: boolean;
  orders: number;
  firstPurchaseAt?: string;
  lastPurchaseAt?: string;
  referees: { credited: string[]; converted: string[] };
  stageHistory: StageEntry[];
}

export interface HistoryPage {
  events: HistoryEntry[];
  /** present when more events follow: the `fromRevision` of the next page */
  nextRevision?: number;
}

export interface HistoryEntry {
  id: string;
  type: string;
  revision: number;
  position: number;
  occurredAt: string;
  recordedAt: string;
  commandId?: string;
  correlationId?: string;
  causationId?: string;
  data: JsonObject;
  hash: string;
}

/** Reads answered straight from a customer's stream: always current, whatever the projections' lag. */
@Injectable()
export class CustomerQueries {
  constructor(@Inject(EVENT_STORE) private readonly store: EventStore) {}

  /** `undefined` when no event was ever stored for this id. */
  async customer(customerId: string): Promise<CustomerView | undefined> {
    const events = await this.store.readStream(customerStream(customerId));
    const last = events[events.length - 1];
    if (last === undefined) return undefined;

    let state: CustomerState = initialCustomerState();
    const stageHistory: StageEntry[] = [];
    for (const event of events) {
      const before = customerStage(state);
      state = evolveCustomer(state, event as unknown as CustomerEvent);
      const after = customerStage(state);
      if (after !== undefined && LifecycleTransitionTypes.has(event.type) && (after !== before || stageHistory.length === 0)) {
        stageHistory.push({
          stage: after,
          at: event.metadata.occurredAt,
          eventId: event.id,
          eventType: event.type,
          position: event.position,
          ...(event.metadata.causationId !== undefined ? { causationId: event.metadata.causationId } : {}),
        });
      }
    }
    if (state.phase === 'unknown') return undefined;
    const bought = state.phase === 'prospect' ? undefined : state;
    return {
      customerId,
      streamId: customerStream(customerId),
      stage: state.phase,
      revision: last.revision,
      registeredAt: state.registeredAt,
      source: state.source,
      ...(state.referredBy !== undefined ? { referredBy: state.referredBy } : {}),
      erased: state.erased,
      orders: bought?.orderIds.size ?? 0,
      ...(bought ? { firstPurchaseAt: bought.firstPurchaseAt, lastPurchaseAt: bought.lastPurchaseAt } : {}),
      referees: { credited: [...state.creditedReferees].sort(), converted: [...state.convertedReferees].sort() },
      stageHistory,
    };
  }

  /**
   * The stored history from `fromRevision` (default the first event), at most `limit` events when
   * given, with `nextRevision` when more follow; `undefined` for an unknown customer (a known one
   * read past its last event gets no events).
   */
  async history(customerId: string, page: { fromRevision?: number; limit?: number } = {}): Promise<HistoryPage | undefined> {
    const streamId = customerStream(customerId);
    const fromRevision = page.fromRevision ?? 0;
    const events = await this.store.readStream(streamId, {
      fromRevision,
      ...(page.limit !== undefined ? { maxCount: page.limit + 1 } : {}),
    });
    if (events.length === 0) {
      if (fromRevision === 0) return undefined;
      const [last] = await this.store.readStream(streamId, { direction: 'backwards', maxCount: 1 });
      return last === undefined ? undefined : { events: [] };
    }
    const more = page.limit !== undefined && events.length > page.limit;
    const shown = more ? events.slice(0, page.limit) : events;
    return { events: shown.map(toHistoryEntry), ...(more ? { nextRevision: shown[shown.length - 1]!.revision + 1 } : {}) };
  }
}

function toHistoryEntry(e: StoredEvent): HistoryEntry {
  const { commandId, correlationId, causationId } = e.metadata;
  return {
    id: e.id,
    type: e.type,
    revision: e.revision,
    position: e.position,
    occurredAt: e.metadata.occurredAt,
    recordedAt: e.recordedAt,
    ...(commandId !== undefined ? { commandId } : {}),
    ...(correlationId !== undefined ? { correlationId } : {}),
    ...(causationId !== undefined ? { causationId } : {}),
    data: e.data,
    hash: e.hash,
  };
}
