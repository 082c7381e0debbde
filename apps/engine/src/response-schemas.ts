/**
 * OpenAPI schemas of the answers clients generate code from: a customer's state and history, the
 * intimacy profile and the two paged lists. Every object is closed (`additionalProperties: false`)
 * and the engine specs validate real answers against the served document, so a field added to an
 * answer without its description here fails a spec instead of drifting from the document.
 */
import { commandDataSchemas, commandEnvelopeSchema, commandSchemaName, EXTERNAL_COMMAND_TYPES, ProfileSchema } from '@clientele/contracts';
import { RFM_SEGMENTS } from '@clientele/projections';

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

/** the profile's schema is shared with the profiles topic (libs/contracts), which publishes it without the personal fields */
export const profileSchema: Schema = { ...ProfileSchema };

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
    stage: { ...stage, enum: [...stage.enum, null], nullable: true, description: 'null: not registered yet at that time' },
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

// ---- statistics (docs/statistics.md defines every figure) ----

const rate = { type: 'number', nullable: true, description: 'null where the base is empty' };
const month = { type: 'string', description: 'YYYY-MM' };
const arrayOf = (items: Schema): Schema => ({ type: 'array', items });
const funnelStage = { type: 'string', enum: ['prospect', 'customer', 'repeat_buyer', 'advocate'] };
const segment = { type: 'string', enum: [...RFM_SEGMENTS] };

export const stageCountsSchema: Schema = object({
  asOf: { ...dateTime, nullable: true, description: 'null: now' },
  total: int,
  stages: object({ prospect: int, customer: int, repeat_buyer: int, advocate: int, churned: int }),
});

export const funnelSchema: Schema = object({
  steps: arrayOf(object({ stage: funnelStage, reached: int, conversionRate: rate, medianDaysFromPrevious: { type: 'number', nullable: true } })),
  overallConversionRate: rate,
});

export const cohortsSchema: Schema = arrayOf(
  object({ cohort: month, size: int, retention: arrayOf(num), active: arrayOf(int) }),
);

export const churnSchema: Schema = optional(
  {
    months: arrayOf(object({ month, activeAtStart: int, churned: int, rate })),
    periods: arrayOf(object({ period: { ...str, description: '2024-Q3 or 2024' }, months: int, activeAtStart: int, churned: int, rate })),
    reasons: arrayOf(object({ reason: str, detail: { ...str, nullable: true }, count: int })),
  },
  'months',
  'reasons',
);

export const repeatRateSchema: Schema = object({ buyers: int, repeatBuyers: int, rate });

export const tenureSchema: Schema = object({ customers: int, averageDays: { type: 'number', nullable: true } });

export const valueSchema: Schema = arrayOf(
  object({
    period: { ...str, description: 'YYYY-MM, or YYYY with per=year' },
    activeCustomers: int,
    orders: int,
    revenue: int,
    cost: int,
    margin: int,
    revenuePerActiveCustomer: { type: 'number', nullable: true },
    marginPerActiveCustomer: { type: 'number', nullable: true },
  }),
);

export const goldenSchema: Schema = object({
  customersWithRevenue: int,
  totalRevenue: int,
  tiers: arrayOf(object({ share: { type: 'number', enum: [0.1, 0.2] }, customers: int, revenue: int, revenueShare: rate })),
});

export const rfmSchema: Schema = arrayOf(object({ segment, customers: int, revenue: int, cost: int, profit: int }));

export const profitabilitySchema: Schema = arrayOf(object({ key: str, orders: int, revenue: int, cost: int, profit: int }));

export const campaignsSchema: Schema = arrayOf(
  object({ campaignId: str, spend: int, revenue: int, orders: int, returnOnSpend: { type: 'number', nullable: true } }),
);

export const complaintsSchema: Schema = arrayOf(object({ employeeId: str, feedback: int, complaints: int }));

export const turnoverSchema: Schema = object({
  from: { ...dateTime, nullable: true },
  to: { ...dateTime, nullable: true },
  leavers: int,
  headcountAtStart: int,
  headcountAtEnd: int,
  averageHeadcount: num,
  rate,
});

// ---- referrals ----

const referralTimes = { referredAt: dateTime, creditedAt: dateTime, convertedAt: dateTime };

/** a referee in a referral tree, with the referees below them: recursive, so it is a named component */
const referralTreeNodeSchema: Schema = optional(
  {
    customerId: str,
    ...referralTimes,
    revenueMinor: { ...int, description: 'everything this referee has bought so far' },
    referees: arrayOf({ $ref: '#/components/schemas/ReferralTreeNode' }),
    refereesNotShown: { ...int, description: 'on a node at the depth asked for: how many people they referred, left out of the answer; absent when none' },
  },
  'customerId',
  'referredAt',
  'revenueMinor',
  'referees',
);

export const referralTreeSchema: Schema = object({
  customerId: str,
  referees: arrayOf({ $ref: '#/components/schemas/ReferralTreeNode' }),
});

export const advocatePageSchema: Schema = optional(
  { items: arrayOf(object({ customerId: str, referees: int, convertedReferees: int, refereeRevenueMinor: int })), nextCursor: cursor },
  'items',
);

export const viralCoefficientSchema: Schema = object({ convertedReferees: int, customers: int, coefficient: num });

export const referralGraphSchema: Schema = object({
  nodes: arrayOf(object({ customerId: str, revenueMinor: int, orders: int })),
  edges: arrayOf(
    optional({ referrerId: str, refereeId: str, ...referralTimes, refereeRevenueMinor: int }, 'referrerId', 'refereeId', 'referredAt', 'refereeRevenueMinor'),
  ),
});

export const projectionsSchema: Schema = arrayOf(
  optional({ name: str, version: int, position: int, head: int, lag: int, lastError: str }, 'name', 'version', 'position', 'head', 'lag'),
);

// ---- operations ----

const counters = (names: string[], descriptions: Record<string, string> = {}): Record<string, Schema> =>
  Object.fromEntries(names.map((n) => [n, descriptions[n] ? { ...int, description: descriptions[n] } : int]));

export const healthSchema: Schema = optional(
  {
    status: { type: 'string', enum: ['ok', 'degraded', 'down', 'stopping'], description: 'down (answered 503) when the store cannot be reached; stopping (answered 503) while the process stops' },
    store: optional({ reachable: bool, head: int, error: str }, 'reachable'),
    processManager: optional({ running: bool, position: int, head: int, lag: int, lastError: str }, 'running'),
    kafka: optional({
      relay: object(counters(['position', 'headPosition', 'lag', 'publishedEvents', 'failedSends', 'failingSends'])),
      ingest: object({
        ...counters(['accepted', 'deadLettered', 'retries', 'lag']),
        lagByPartition: { type: 'object', additionalProperties: int, description: 'records behind, per partition of the commands topic' },
      }),
      profileSnapshots: object(counters(['position', 'pending', 'publishedSnapshots', 'failedSends'])),
      starting: { type: 'boolean', enum: [true], description: 'present while the Kafka side is not running yet (it starts in the background and retries)' },
      attempts: { ...int, description: 'starts tried so far, while starting' },
      lastError: { ...str, description: 'why the last start failed, while starting' },
    }),
    projections: projectionsSchema,
  },
  'status',
  'store',
  'processManager',
);

/** named schemas the document's components carry (the recursive ones, referenced by `$ref`) */
// ---- commands ----

/** RFC 9457 problem details, the one error shape of the API */
export const problemSchema: Schema = optional(
  {
    type: str,
    title: str,
    status: int,
    detail: str,
    code: { ...str, description: 'stable, machine-readable: a domain error code or one of the API’s own' },
    errors: { ...arrayOf(object({ field: str, expected: str })), description: 'for 400: every field that was wrong and what was expected there' },
    field: { ...str, description: 'for 422: the input a business rule blames, when one is' },
  },
  'type',
  'title',
  'status',
  'detail',
  'code',
);

/** an error answer in the document: problem details, served as application/problem+json */
export const PROBLEM_ANSWER = { content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } } };

/** what every route but /health and /metrics answers while the engine stops (see refuseWhileStopping) */
export const STOPPING_RESPONSE = {
  status: 503,
  description: 'the engine process is stopping and takes no new work (code `stopping`, with Retry-After): send the request again, to another process or once this one runs again',
  ...PROBLEM_ANSWER,
};

export const commandResultSchema: Schema = object({
  commandId: str,
  streamId: str,
  status: { type: 'string', enum: ['applied', 'duplicate', 'no_op'] },
  events: arrayOf(object({ id: str, type: str, revision: int, position: int })),
});

export const batchAnswerSchema: Schema = object({
  results: arrayOf(
    optional(
      {
        index: int,
        status: { ...int, description: 'the HTTP status this command would have had alone' },
        commandId: str,
        result: { $ref: '#/components/schemas/CommandResult' },
        problem: { $ref: '#/components/schemas/Problem' },
      },
      'index',
      'status',
    ),
  ),
});

export const sweepReportSchema: Schema = object({
  asOf: dateTime,
  customers: int,
  churned: int,
  refused: { ...int, description: 'customers the decider would not judge' },
  conflicts: { ...int, description: 'customers whose stream kept changing during the sweep; run it again to judge them' },
});

export const RESPONSE_COMPONENTS: Record<string, Schema> = {
  ReferralTreeNode: referralTreeNodeSchema,
  Problem: problemSchema,
  CommandResult: commandResultSchema,
};

// ---- command request bodies ----

const COMPONENT = '#/components/schemas/';

/**
 * The request bodies' schemas, from libs/contracts (the published command.v1 says the same): one
 * named envelope per command type (RecordPurchaseCommand), its data (RecordPurchaseData) and the
 * shapes they share, so a generated client has a named type for each command.
 */
export const COMMAND_COMPONENTS: Record<string, Schema> = {
  ...(commandDataSchemas(COMPONENT, 'openapi-3.0') as Record<string, Schema>),
  ...Object.fromEntries(EXTERNAL_COMMAND_TYPES.map((type) => [commandSchemaName(type), commandEnvelopeSchema(type, COMPONENT, 'openapi-3.0') as Schema])),
};

/** one command of any type, told apart by `type` (the discriminator a generated client switches on) */
export const commandSchema: Schema = {
  oneOf: EXTERNAL_COMMAND_TYPES.map((type) => ({ $ref: `${COMPONENT}${commandSchemaName(type)}` })),
  discriminator: {
    propertyName: 'type',
    mapping: Object.fromEntries(EXTERNAL_COMMAND_TYPES.map((type) => [type, `${COMPONENT}${commandSchemaName(type)}`])),
  },
};
