import {
  businessTime,
  customerStage,
  customerStream,
  daysBetween,
  defaultPolicy,
  evolveCustomer,
  initialCustomerState,
  type CustomerEvent,
  type CustomerStage,
  type CustomerState,
  type LifecyclePolicy,
  type StageChange,
} from '@clientele/domain';
import type { EventStore, StoredEvent } from './event-store.port';
import { eventsOfStream } from './read-in-batches';

export interface AsOfEvent {
  id: string;
  position: number;
  revision: number;
  type: string;
  occurredAt: string;
}

/** A customer as the recorded facts described them at the end of a business date. */
export interface CustomerAsOf {
  customerId: string;
  /** the instant asked about: the end of the day (UTC) when a date alone was given */
  asOf: string;
  /** `undefined`: the person was not registered yet at that time */
  stage: CustomerStage | undefined;
  registeredAt?: string;
  source?: string;
  referredBy?: string;
  erased: boolean;
  orders: number;
  firstPurchaseAt?: string;
  lastPurchaseAt?: string;
  churnedAt?: string;
  stageHistory: StageChange[];
  /** whole UTC days from the last purchase to `asOf` */
  daysSinceLastPurchase?: number;
  /**
   * Inactive for `churnAfterDays` or more while still active: a sweep run at `asOf` would churn
   * them. Stages change only through recorded events, so `stage` stays as recorded until then.
   */
  churnDue: boolean;
  /** the events folded, in stream order */
  eventsUsed: AsOfEvent[];
  /** events of the stream dated after `asOf` (recorded, but not yet true at that time) */
  eventsLater: number;
  /** the thresholds the answer was judged by */
  policy: LifecyclePolicy;
}

const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/;

/**
 * The instant an as-of question is about. A date alone means the end of that day in UTC, so
 * everything that happened on that date counts. A time needs a zone (the domain's rule).
 */
export function asOfInstant(input: string, field = 'date'): string {
  if (DATE_ONLY.test(input)) {
    businessTime(input, field);
    return `${input}T23:59:59.999Z`;
  }
  return new Date(businessTime(input, field)).toISOString();
}

function refOf(e: StoredEvent): AsOfEvent {
  return { id: e.id, position: e.position, revision: e.revision, type: e.type, occurredAt: e.metadata.occurredAt };
}

/**
 * Folds the customer's events whose business time (`metadata.occurredAt`) is at or before `asOf`,
 * in stream order, with the domain's own evolve, so the answer is the one the deciders would have
 * seen had nothing later been recorded. Pure: the caller supplies the events.
 */
export function customerAsOf(
  customerId: string,
  events: Iterable<StoredEvent>,
  asOf: string,
  policy: LifecyclePolicy = defaultPolicy,
): CustomerAsOf {
  const instant = asOfInstant(asOf);
  const cutoff = Date.parse(instant);
  let state: CustomerState = initialCustomerState();
  const eventsUsed: AsOfEvent[] = [];
  // the orders recorded by then, counted from the purchases themselves: a purchase dated before a
  // conversion recorded for a later date (a backfill) is an order by then, though not yet a stage
  const orders = new Set<string>();
  let eventsLater = 0;
  for (const e of events) {
    const at = Date.parse(e.metadata.occurredAt);
    if (!(at <= cutoff)) {
      eventsLater += 1;
      continue;
    }
    state = evolveCustomer(state, { type: e.type, data: e.data } as unknown as CustomerEvent);
    if (e.type === 'PurchaseRecorded' && typeof e.data['orderId'] === 'string') orders.add(e.data['orderId']);
    eventsUsed.push(refOf(e));
  }
  return describe(customerId, instant, state, eventsUsed, eventsLater, policy, orders.size);
}

function describe(
  customerId: string,
  asOf: string,
  state: CustomerState,
  eventsUsed: AsOfEvent[],
  eventsLater: number,
  policy: LifecyclePolicy,
  orders: number,
): CustomerAsOf {
  const base = { customerId, asOf, eventsUsed, eventsLater, policy: { ...policy } };
  if (state.phase === 'unknown') {
    return { ...base, stage: undefined, erased: false, orders: 0, stageHistory: [], churnDue: false };
  }
  const bought = state.phase === 'prospect' ? undefined : state;
  const daysSinceLastPurchase = bought ? daysBetween(bought.lastPurchaseAt, asOf) : undefined;
  const active = state.phase === 'customer' || state.phase === 'repeat_buyer' || state.phase === 'advocate';
  return {
    ...base,
    stage: customerStage(state),
    registeredAt: state.registeredAt,
    source: state.source,
    ...(state.referredBy !== undefined ? { referredBy: state.referredBy } : {}),
    erased: state.erased,
    orders,
    ...(bought ? { firstPurchaseAt: bought.firstPurchaseAt, lastPurchaseAt: bought.lastPurchaseAt } : {}),
    ...(state.phase === 'churned' ? { churnedAt: state.churnedAt } : {}),
    stageHistory: [...state.history],
    ...(daysSinceLastPurchase !== undefined ? { daysSinceLastPurchase } : {}),
    churnDue: active && daysSinceLastPurchase !== undefined && daysSinceLastPurchase >= policy.churnAfterDays,
  };
}

/** Reads the customer's stream (page by page) and answers `customerAsOf`. */
export async function readCustomerAsOf(
  store: Pick<EventStore, 'readStream'>,
  customerId: string,
  asOf: string,
  policy: LifecyclePolicy = defaultPolicy,
): Promise<CustomerAsOf> {
  asOfInstant(asOf);
  const events: StoredEvent[] = [];
  for await (const e of eventsOfStream(store, customerStream(customerId))) events.push(e);
  return customerAsOf(customerId, events, asOf, policy);
}
