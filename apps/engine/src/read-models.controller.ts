import { Controller, Get, Header, Inject, NotFoundException, Param, Query } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiProduces, ApiResponse, ApiTags } from '@nestjs/swagger';
import { IsOptional, IsString } from 'class-validator';
import type { OpenedStorage } from '@clientele/application';
import { customerStream } from '@clientele/domain';
import { eventsOfStream, type StoredEvent } from '@clientele/event-store';
import { BIRTHDAY_LIST, orList, PROFILE_LIST, profileAsOf, REFERRAL_QUERIES, type CustomerProfile, type ProfilePage, type BirthdayPage, type ProfileSort, type AdvocatePage } from '@clientele/projections';
import { ENGINE_STORAGE } from './engine.tokens';
import { EngineReadModels } from './engine-read-models';
import { problem } from './problem-details';
import {
  advocatePageSchema,
  PROBLEM_ANSWER,
  birthdayPageSchema,
  profilePageSchema,
  profileSchema,
  projectionsSchema,
  referralGraphSchema,
  referralTreeSchema,
  viralCoefficientSchema,
  STOPPING_RESPONSE,
} from './response-schemas';
import { ApiQueryFrom, AsOfQuery, asOfInstantParam, asOfParam, IntegerIn, noParameters, OneOf, validQuery } from './query-params';

// the bounds, sets and defaults are the read models' own (PROFILE_LIST, BIRTHDAY_LIST,
// REFERRAL_QUERIES): checked here and there, and declared in the OpenAPI document, from one object
class ListProfilesQuery {
  @OneOf(PROFILE_LIST.stage, `one of ${PROFILE_LIST.stage.values.join(', ')}`) stage?: string;
  @IsOptional() @IsString() source?: string;
  @IntegerIn(PROFILE_LIST.limit) limit?: number;
  @IsOptional() @IsString() cursor?: string;
  @IntegerIn(PROFILE_LIST.offset, 'how many items to skip (not with a cursor)') offset?: number;
  @OneOf(PROFILE_LIST.sort, `one of ${PROFILE_LIST.sort.values.join(', ')}`) sort?: ProfileSort;
  @OneOf(PROFILE_LIST.direction, orList(PROFILE_LIST.direction.values)) direction?: 'asc' | 'desc';
}

class BirthdaysQuery extends AsOfQuery {
  @IntegerIn(BIRTHDAY_LIST.withinDays) withinDays?: number;
  @IntegerIn(BIRTHDAY_LIST.limit) limit?: number;
  @IsOptional() @IsString() cursor?: string;
}

class TreeQuery {
  @IntegerIn(REFERRAL_QUERIES.depth) depth?: number;
}

class AdvocatesQuery {
  @IntegerIn(REFERRAL_QUERIES.limit) limit?: number;
  @IsOptional() @IsString() cursor?: string;
}


@ApiTags('read models')
@ApiResponse(STOPPING_RESPONSE)
@ApiResponse({ status: 400, description: 'a query parameter that is unknown, given twice or malformed: problem details naming it in errors[{ field, expected }]', ...PROBLEM_ANSWER })
@Controller()
export class ReadModelsController {
  constructor(
    private readonly readModels: EngineReadModels,
    @Inject(ENGINE_STORAGE) private readonly storage: OpenedStorage,
  ) {}

  @Get('customers/:id/profile')
  @ApiOperation({
    summary: 'Intimacy profile: identity, birthday, preferences, habits, stage history, referrals, feedback, value, RFM',
    description:
      'Without asOf: the live read model, date-relative figures as of now. With asOf: the profile as it stood then, folded from ' +
      "the customer's own events with a business time at or before asOf (events recorded later about earlier dates included).",
  })
  @ApiQueryFrom(AsOfQuery)
  @ApiOkResponse({ schema: profileSchema })
  @ApiResponse({ status: 404, description: 'no profile for this customer (unknown, or not registered yet as of asOf)', ...PROBLEM_ANSWER })
  async profile(@Param('id') id: string, @Query() query: Record<string, unknown>): Promise<CustomerProfile> {
    const asOf = asOfParam(query);
    const profile = asOf === undefined ? await this.readModels.profiles.getProfile(id, new Date().toISOString()) : await this.profileAsOf(id, asOf);
    if (!profile) throw unknownCustomer(id);
    return profile;
  }

  /** folds the customer's own stream (read through the decrypting store, as the projector reads it) up to asOf */
  private async profileAsOf(id: string, asOf: string): Promise<CustomerProfile | undefined> {
    const events: StoredEvent[] = [];
    for await (const e of eventsOfStream(this.storage.store, customerStream(id))) events.push(e);
    return (await profileAsOf(id, events, asOf)).profile;
  }

  @Get('profiles')
  @ApiOperation({ summary: 'Profiles, filtered by stage or source, sorted and paginated (cursor or offset)' })
  @ApiQueryFrom(ListProfilesQuery)
  @ApiOkResponse({ schema: profilePageSchema })
  async profiles(@Query() query: Record<string, unknown>): Promise<ProfilePage> {
    return this.readModels.profiles.listProfiles(validQuery(ListProfilesQuery, query));
  }

  @Get('birthdays')
  @ApiOperation({ summary: 'Customers whose birthday falls within the next days (for greetings)' })
  @ApiQueryFrom(BirthdaysQuery)
  @ApiOkResponse({ schema: birthdayPageSchema })
  async birthdays(@Query() query: Record<string, unknown>): Promise<BirthdayPage> {
    const q = validQuery(BirthdaysQuery, query);
    return this.readModels.profiles.upcomingBirthdays({
      // now, unless the caller asks about another date (a date alone: the end of that UTC day)
      asOf: q.asOf === undefined ? new Date().toISOString() : asOfInstantParam(q.asOf),
      ...(q.withinDays !== undefined ? { withinDays: q.withinDays } : {}),
      ...(q.limit !== undefined ? { limit: q.limit } : {}),
      ...(q.cursor !== undefined ? { cursor: q.cursor } : {}),
    });
  }

  @Get('referrals/tree/:id')
  @ApiOperation({ summary: 'Who this customer referred, and whom they referred, down to a depth (404 for a customer the read models do not know)' })
  @ApiQueryFrom(TreeQuery)
  @ApiOkResponse({ schema: referralTreeSchema })
  @ApiResponse({ status: 404, description: 'unknown customer', ...PROBLEM_ANSWER })
  async tree(@Param('id') id: string, @Query() query: Record<string, unknown>) {
    const { depth } = validQuery(TreeQuery, query);
    if (!(await this.readModels.profiles.knows(id))) throw unknownCustomer(id);
    return { customerId: id, referees: await this.readModels.referrals.treeBelow(id, depth) };
  }

  @Get('referrals/top-advocates')
  @ApiOperation({ summary: 'Customers with the most converted referees, then the most revenue those referees brought, paginated by cursor' })
  @ApiQueryFrom(AdvocatesQuery)
  @ApiOkResponse({ schema: advocatePageSchema })
  async topAdvocates(@Query() query: Record<string, unknown>): Promise<AdvocatePage> {
    return this.readModels.referrals.topAdvocates(validQuery(AdvocatesQuery, query));
  }

  @Get('referrals/viral-coefficient')
  @ApiOperation({ summary: 'Converted referees per customer' })
  @ApiOkResponse({ schema: viralCoefficientSchema })
  async viralCoefficient(@Query() query: Record<string, unknown>) {
    noParameters(query);
    return this.readModels.referrals.viralCoefficient();
  }

  @Get('referrals/graph')
  @ApiOperation({ summary: 'The whole referral graph as JSON (nodes and edges with conversion and revenue)' })
  @ApiOkResponse({ schema: referralGraphSchema })
  async graph(@Query() query: Record<string, unknown>) {
    noParameters(query);
    return this.readModels.referrals.exportGraph();
  }

  @Get('referrals/graph.dot')
  @Header('Content-Type', 'text/vnd.graphviz; charset=utf-8')
  @ApiOperation({ summary: 'The whole referral graph in Graphviz DOT' })
  @ApiProduces('text/vnd.graphviz')
  @ApiOkResponse({ content: { 'text/vnd.graphviz': { schema: { type: 'string' } } } })
  async graphDot(@Query() query: Record<string, unknown>): Promise<string> {
    noParameters(query);
    return this.readModels.referrals.toDot();
  }

  @Get('projections')
  @ApiOperation({ summary: 'Each read model: position folded, head of the log, lag' })
  @ApiOkResponse({ schema: projectionsSchema })
  async projections(@Query() query: Record<string, unknown>) {
    noParameters(query);
    return (await this.readModels.status()) ?? [];
  }
}

function unknownCustomer(id: string): NotFoundException {
  return new NotFoundException(problem(404, 'unknown_customer', 'Unknown customer', `no profile for customer ${JSON.stringify(id)}`));
}
