import { Controller, Get, Inject, NotFoundException, Param, Query } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiParam, ApiResponse, ApiTags } from '@nestjs/swagger';
import { CustomerQueries, type CustomerView, type HistoryEntry, type OpenedStorage } from '@clientele/application';
import type { CustomerStage, LifecyclePolicy, StageChange } from '@clientele/domain';
import { readCustomerAsOf, type CustomerAsOf } from '@clientele/event-store';
import type { IntegerBounds } from '@clientele/projections';
import type { EngineConfig } from './engine.config';
import { ENGINE_CONFIG, ENGINE_STORAGE } from './engine.tokens';
import { problem } from './problem-details';
import { customerAsOfSchema, customerSchema, historySchema, PROBLEM_ANSWER, STOPPING_RESPONSE } from './response-schemas';
import { ApiQueryFrom, AsOfQuery, asOfParam, IntegerIn, validQuery } from './query-params';

/** `GET /customers/:id?asOf=…`: the customer as the recorded facts described them at that business time. */
export interface CustomerAsOfView {
  customerId: string;
  /** null: not registered yet at that time */
  stage: CustomerStage | null;
  registeredAt?: string;
  source?: string;
  referredBy?: string;
  erased: boolean;
  orders: number;
  firstPurchaseAt?: string;
  lastPurchaseAt?: string;
  churnedAt?: string;
  daysSinceLastPurchase?: number;
  /** inactive long enough that a churn sweep run then would churn them; the stage changes only when one ran */
  churnDue: boolean;
  stageHistory: StageChange[];
  asOf: {
    at: string;
    events: { id: string; position: number; type: string; occurredAt: string }[];
    /** events of the stream whose business time is after `at` */
    eventsLater: number;
    policy: LifecyclePolicy;
  };
}

function asOfView(a: CustomerAsOf): CustomerAsOfView {
  const optional = <K extends keyof CustomerAsOf>(k: K) => (a[k] === undefined ? {} : { [k]: a[k] });
  return {
    customerId: a.customerId,
    stage: a.stage ?? null,
    ...optional('registeredAt'),
    ...optional('source'),
    ...optional('referredBy'),
    erased: a.erased,
    orders: a.orders,
    ...optional('firstPurchaseAt'),
    ...optional('lastPurchaseAt'),
    ...optional('churnedAt'),
    ...optional('daysSinceLastPurchase'),
    churnDue: a.churnDue,
    stageHistory: a.stageHistory,
    asOf: {
      at: a.asOf,
      events: a.eventsUsed.map((e) => ({ id: e.id, position: e.position, type: e.type, occurredAt: e.occurredAt })),
      eventsLater: a.eventsLater,
      policy: a.policy,
    },
  };
}

/**
 * `GET /customers/:id/events?fromRevision=&limit=`: the whole history by default, or a page of it.
 * Only this route reads these, so their bounds live here; a revision is at most the largest integer
 * a JSON number holds exactly.
 */
const HISTORY_PAGE = {
  fromRevision: { minimum: 0, maximum: Number.MAX_SAFE_INTEGER, default: 0 },
  limit: { minimum: 1, maximum: 10_000 },
} as const satisfies Record<string, IntegerBounds>;

class HistoryQuery {
  @IntegerIn(HISTORY_PAGE.fromRevision, 'the first revision to answer') fromRevision?: number;
  @IntegerIn(HISTORY_PAGE.limit, 'the most events to answer (without it: all from fromRevision on)') limit?: number;
}

@ApiTags('customers')
@ApiResponse(STOPPING_RESPONSE)
@ApiResponse({ status: 400, description: 'a query parameter that is unknown, given twice or malformed: problem details naming it in errors[{ field, expected }]', ...PROBLEM_ANSWER })
@Controller('customers')
export class CustomersController {
  constructor(
    private readonly queries: CustomerQueries,
    @Inject(ENGINE_STORAGE) private readonly storage: OpenedStorage,
    @Inject(ENGINE_CONFIG) private readonly config: EngineConfig,
  ) {}

  @Get(':id')
  @ApiOperation({
    summary: 'Current lifecycle state, with each stage change and the event that caused it; with asOf, the state at that business time',
  })
  @ApiParam({ name: 'id', description: 'customer id' })
  @ApiQueryFrom(AsOfQuery)
  @ApiOkResponse({ description: 'without asOf: the current state; with asOf: the state at that business time', schema: { oneOf: [customerSchema, customerAsOfSchema] } })
  @ApiResponse({ status: 404, description: 'no event was ever stored for this customer', ...PROBLEM_ANSWER })
  async customer(@Param('id') id: string, @Query() query: Record<string, unknown>): Promise<CustomerView | CustomerAsOfView> {
    const asOf = asOfParam(query);
    if (asOf !== undefined) {
      // the engine's own policy, so churnDue is judged by the thresholds its sweep uses
      const answer = await readCustomerAsOf(this.storage.store, id, asOf, this.config.policy);
      if (answer.eventsUsed.length === 0 && answer.eventsLater === 0) throw notFound(id);
      return asOfView(answer);
    }
    const view = await this.queries.customer(id);
    if (view === undefined) throw notFound(id);
    return view;
  }

  @Get(':id/events')
  @ApiOperation({ summary: 'Full history (or a page of it): positions, revisions, business and record time, causation and correlation' })
  @ApiParam({ name: 'id', description: 'customer id' })
  @ApiResponse({ status: 404, description: 'no event was ever stored for this customer', ...PROBLEM_ANSWER })
  @ApiQueryFrom(HistoryQuery)
  @ApiOkResponse({ schema: historySchema })
  async events(@Param('id') id: string, @Query() query: Record<string, unknown>): Promise<{ customerId: string; events: HistoryEntry[]; nextRevision?: number }> {
    const { fromRevision, limit } = validQuery(HistoryQuery, query);
    const page = await this.queries.history(id, { ...(fromRevision !== undefined ? { fromRevision } : {}), ...(limit !== undefined ? { limit } : {}) });
    if (page === undefined) throw notFound(id);
    return { customerId: id, ...page };
  }
}

function notFound(id: string): NotFoundException {
  return new NotFoundException(problem(404, 'unknown_customer', 'Unknown customer', `no customer with id ${JSON.stringify(id)}`));
}
