/**
 * OpenAPI schemas of the answers clients generate code from: a customer's state and history, the
 * intimacy profile and the two paged lists. Every object is closed (`additionalProperties: false`)
 * and the engine specs validate real answers against the served document, so a field added to an
 * answer without its description here fails a spec instead of drifting from the document.
 */
type Schema = Record<string, unknown>;

const str = { type: 'string' };
const int = { type: 'integer' };
const num = { type: 'number' };
const bool = { type: 'boolean' };
const dateTime = { type: 'string', format: 'date-time' };
const date = { type: 'string', format: 'date' };
const stage = { type: 'string', enum: ['prospect', 'customer', 'repeat_buyer', 'advocate', 'churned'] };

/** a closed object: `required` lists what every answer has, the other properties may be absent */
function object(properties: Record<string, Schema>, required: string[] = Object.keys(properties)): Schema {
  return { type: 'object', properties, required, additionalProperties: false };
}

function optional(properties: Record<string, Schema>, ...required: string[]): Schema {
  return object(properties, required);
}

const stageEntry = optional(
  {
    stage,
    at: { ...dateTime, description: 'business time of the transition' },
    eventId: str,
    eventType: str,
    position: int,
    causationId: { ...str, description: 'the fact (or command) that caused the transition' },
  },
  'stage',
  'at',
  'eventId',
  'eventType',
  'position',
);

/** what both views of a customer (now, and as of a date) say of their registration and purchases */
const registration = {
  customerId: str,
  registeredAt: dateTime,
  source: str,
  referredBy: str,
  erased: bool,
  orders: int,
  firstPurchaseAt: dateTime,
  lastPurchaseAt: dateTime,
};

export const customerSchema: Schema = optional(
  {
    ...registration,
    streamId: str,
    stage,
    revision: { ...int, description: 'revision of the last event' },
    referees: object({ credited: { type: 'array', items: str }, converted: { type: 'array', items: str } }),
    stageHistory: { type: 'array', items: stageEntry },
  },
  'customerId',
  'streamId',
  'stage',
  'revision',
  'registeredAt',
  'source',
  'erased',
  'orders',
  'referees',
  'stageHistory',
);

const historyEntry = optional(
  {
    id: str,
    type: str,
    revision: int,
    position: int,
    occurredAt: { ...dateTime, description: 'business time' },
    recordedAt: { ...dateTime, description: 'record time' },
    commandId: str,
    correlationId: str,
    causationId: str,
    data: { type: 'object', description: "the event's payload; personal fields decrypted, or erased" },
    hash: { ...str, description: 'the chain hash of this event' },
  },
  'id',
  'type',
  'revision',
  'position',
  'occurredAt',
  'recordedAt',
  'data',
  'hash',
);

export const historySchema: Schema = optional(
  {
    customerId: str,
    events: { type: 'array', items: historyEntry },
    nextRevision: { ...int, description: 'present when more events follow: the fromRevision of the next page' },
  },
  'customerId',
  'events',
);

export const profileSchema: Schema = optional(
  {
    customerId: str,
    erased: bool,
    identity: optional({ name: str, email: str, phone: str }),
    birthday: date,
    daysToNextBirthday: int,
    preferences: { type: 'object', additionalProperties: str },
    consents: { type: 'object', additionalProperties: bool },
    preferredChannel: str,
    habits: optional(
      {
        topCategories: { type: 'array', items: object({ category: str, quantity: int }) },
        topProducts: { type: 'array', items: object({ sku: str, quantity: int }) },
        averageBasketMinor: int,
        ordersPer30Days: num,
        usualWeekday: { type: 'string', enum: ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday'] },
        usualHourUtc: int,
      },
      'topCategories',
      'topProducts',
      'ordersPer30Days',
    ),
    firstPurchaseAt: dateTime,
    lastPurchaseAt: dateTime,
    stage,
    stageSince: dateTime,
    stageHistory: { type: 'array', items: optional({ stage, at: dateTime, eventId: str, causationId: str }, 'stage', 'at', 'eventId') },
    acquisition: optional({ source: str, channel: str, campaign: str, registeredAt: dateTime }),
    referredBy: str,
    referees: { type: 'array', items: optional({ customerId: str, creditedAt: dateTime, convertedAt: dateTime }, 'customerId') },
    feedback: optional({ count: int, averageScore: num, complaints: int }, 'count', 'complaints'),
    thanks: object({
      count: int,
      recent: { type: 'array', items: optional({ at: dateTime, gesture: str, reason: str, valueMinor: int }, 'at', 'gesture', 'reason') },
    }),
    value: object({ revenueMinor: int, costMinor: int, marginMinor: int }),
    rfm: optional({ recencyDays: int, frequency: int, monetaryMinor: int }, 'frequency', 'monetaryMinor'),
  },
  'customerId',
  'erased',
  'identity',
  'preferences',
  'consents',
  'habits',
  'stageHistory',
  'acquisition',
  'referees',
  'feedback',
  'thanks',
  'value',
  'rfm',
);

const cursor = { ...str, description: 'present when more follow: pass it as cursor for the next page' };

export const profilePageSchema: Schema = optional(
  {
    items: {
      type: 'array',
      items: optional(
        { customerId: str, name: str, erased: bool, stage, source: str, orders: int, revenueMinor: int, lastPurchaseAt: dateTime },
        'customerId',
        'erased',
        'orders',
        'revenueMinor',
      ),
    },
    nextCursor: cursor,
  },
  'items',
);

export const birthdayPageSchema: Schema = optional(
  {
    items: {
      type: 'array',
      items: optional(
        { customerId: str, name: str, birthday: date, nextBirthday: { ...date, description: 'Feb 29 falls on Feb 28 in common years' }, daysUntil: int },
        'customerId',
        'birthday',
        'nextBirthday',
        'daysUntil',
      ),
    },
    nextCursor: cursor,
  },
  'items',
);

/** `GET /customers/:id?asOf=…`: the customer as the facts recorded up to then described them */
export const customerAsOfSchema: Schema = optional(
  {
    ...registration,
    stage: { ...stage, nullable: true, description: 'null: not registered yet at that time' },
    churnedAt: dateTime,
    daysSinceLastPurchase: int,
    churnDue: { ...bool, description: 'inactive long enough that a churn sweep run then would churn them' },
    stageHistory: { type: 'array', items: object({ stage, at: dateTime }) },
    asOf: object({
      at: dateTime,
      events: { type: 'array', items: object({ id: str, position: int, type: str, occurredAt: dateTime }) },
      eventsLater: { ...int, description: 'events of the stream whose business time is after at' },
      policy: object({ repeatPurchaseThreshold: int, advocateMinConvertedReferrals: int, promoterMinScore: int, churnAfterDays: int }),
    }),
  },
  'customerId',
  'stage',
  'erased',
  'orders',
  'churnDue',
  'stageHistory',
  'asOf',
);
