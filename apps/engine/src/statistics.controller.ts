import { BadRequestException, Controller, Get, Param, Query } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiParam, ApiResponse, ApiTags } from '@nestjs/swagger';
import { IsOptional, IsString } from 'class-validator';
import {
  CHURN_PER,
  orList,
  PROFITABILITY_DIMENSIONS,
  RFM_SEGMENTS,
  STATISTIC_FILTERS,
  VALUE_PER,
  type ChurnPer,
  type ProfitabilityDimension,
  type StatisticsFilter,
  type StatisticsQueries,
  type ValuePer,
} from '@clientele/projections';
import { EngineReadModels } from './engine-read-models';
import { problem } from './problem-details';
import { ApiQueryFrom, Declares, OneOf, validQuery } from './query-params';
import {
  campaignsSchema,
  churnSchema,
  cohortsSchema,
  complaintsSchema,
  funnelSchema,
  goldenSchema,
  profitabilitySchema,
  repeatRateSchema,
  rfmSchema,
  stageCountsSchema,
  tenureSchema,
  turnoverSchema,
  valueSchema,
  PROBLEM_ANSWER,
  STOPPING_RESPONSE,
} from './response-schemas';

/** the messages double as the parameters' OpenAPI descriptions (ApiQueryFrom) */
class FilterQuery implements StatisticsFilter {
  @IsOptional() @IsString({ message: 'a date YYYY-MM-DD: the first day of the period (inclusive)' }) from?: string;
  @IsOptional() @IsString({ message: 'a date YYYY-MM-DD: the last day of the period (inclusive)' }) to?: string;
  @IsOptional() @IsString({ message: 'a date YYYY-MM-DD or a date-time with a zone: the figures as they stood then' }) asOf?: string;
  @IsOptional() @IsString({ message: 'one acquisition source: only customers acquired through it' }) source?: string;
  @IsOptional() @IsString({ message: 'one acquisition channel: only customers acquired through it' }) channel?: string;
  // the statistics check the segment (invalid_filter, like the other filters); the document lists the same set
  @IsOptional() @IsString({ message: `one RFM segment (${RFM_SEGMENTS.join(', ')}): only its customers` }) @Declares({ enum: RFM_SEGMENTS })
  segment?: string;
}

class ChurnQuery extends FilterQuery {
  @OneOf(CHURN_PER, orList(CHURN_PER.values)) per?: ChurnPer;
}

class ValueQuery extends FilterQuery {
  @OneOf(VALUE_PER, orList(VALUE_PER.values)) per?: ValuePer;
}

/** the groupings of `GET /statistics/profitability/:by`; by segment has a route of its own, which takes asOf */
const BY: readonly ProfitabilityDimension[] = PROFITABILITY_DIMENSIONS.filter((d) => d !== 'segment');

/**
 * Loyalty and retention figures, each filterable by period (`from`, `to`), point in time (`asOf`),
 * acquisition `source` and `channel`, and RFM `segment`. Definitions: docs/statistics.md.
 */
@ApiTags('statistics')
@ApiResponse(STOPPING_RESPONSE)
@ApiResponse({ status: 400, description: 'a query parameter that is unknown, given twice or malformed: problem details naming it in errors[{ field, expected }]', ...PROBLEM_ANSWER })
@Controller('statistics')
export class StatisticsController {
  constructor(private readonly readModels: EngineReadModels) {}

  private get stats(): StatisticsQueries {
    return this.readModels.statistics;
  }

  @Get('stages')
  @ApiOperation({ summary: 'Customers per lifecycle stage (now, or as of a business date)' })
  @ApiQueryFrom(FilterQuery, [...STATISTIC_FILTERS.stageCounts])
  @ApiOkResponse({ schema: stageCountsSchema })
  stages(@Query() q: Record<string, unknown>) {
    return this.stats.stageCounts(validQuery(FilterQuery, q, STATISTIC_FILTERS.stageCounts));
  }

  @Get('funnel')
  @ApiOperation({ summary: 'The stage funnel: reached, conversion rates, median days between stages' })
  @ApiQueryFrom(FilterQuery, [...STATISTIC_FILTERS.funnel])
  @ApiOkResponse({ schema: funnelSchema })
  funnel(@Query() q: Record<string, unknown>) {
    return this.stats.funnel(validQuery(FilterQuery, q, STATISTIC_FILTERS.funnel));
  }

  @Get('cohorts')
  @ApiOperation({ summary: 'Cohort retention: acquisition month × months since, share still buying' })
  @ApiQueryFrom(FilterQuery, [...STATISTIC_FILTERS.cohortRetention])
  @ApiOkResponse({ schema: cohortsSchema })
  cohorts(@Query() q: Record<string, unknown>) {
    return this.stats.cohortRetention(validQuery(FilterQuery, q, STATISTIC_FILTERS.cohortRetention));
  }

  @Get('churn')
  @ApiOperation({ summary: 'Churn rate per month (and per quarter or year with per=quarter|year) and churn reasons' })
  @ApiQueryFrom(ChurnQuery, [...STATISTIC_FILTERS.churn, 'per'])
  @ApiOkResponse({ schema: churnSchema })
  churn(@Query() q: Record<string, unknown>) {
    const { per, ...filter } = validQuery(ChurnQuery, q, [...STATISTIC_FILTERS.churn, 'per']);
    return this.stats.churn(filter, per);
  }

  @Get('repeat-rate')
  @ApiOperation({ summary: 'Customers with two orders or more among those with one or more' })
  @ApiQueryFrom(FilterQuery, [...STATISTIC_FILTERS.repeatRate])
  @ApiOkResponse({ schema: repeatRateSchema })
  repeatRate(@Query() q: Record<string, unknown>) {
    return this.stats.repeatRate(validQuery(FilterQuery, q, STATISTIC_FILTERS.repeatRate));
  }

  @Get('tenure')
  @ApiOperation({ summary: 'Average tenure' })
  @ApiQueryFrom(FilterQuery, [...STATISTIC_FILTERS.tenure])
  @ApiOkResponse({ schema: tenureSchema })
  tenure(@Query() q: Record<string, unknown>) {
    return this.stats.tenure(validQuery(FilterQuery, q, STATISTIC_FILTERS.tenure));
  }

  @Get('value')
  @ApiOperation({ summary: 'Customer value per month or per year: revenue, margin, per active customer' })
  @ApiQueryFrom(ValueQuery, [...STATISTIC_FILTERS.value, 'per'])
  @ApiOkResponse({ schema: valueSchema })
  value(@Query() q: Record<string, unknown>) {
    const { per, ...filter } = validQuery(ValueQuery, q, [...STATISTIC_FILTERS.value, 'per']);
    return this.stats.value(filter, per);
  }

  @Get('golden')
  @ApiOperation({ summary: 'The top 10% and 20% of customers by revenue and their share of revenue' })
  @ApiQueryFrom(FilterQuery, [...STATISTIC_FILTERS.goldenCustomers])
  @ApiOkResponse({ schema: goldenSchema })
  golden(@Query() q: Record<string, unknown>) {
    return this.stats.goldenCustomers(validQuery(FilterQuery, q, STATISTIC_FILTERS.goldenCustomers));
  }

  @Get('rfm')
  @ApiOperation({ summary: 'RFM segments: customers, revenue and margin per named segment' })
  @ApiQueryFrom(FilterQuery, [...STATISTIC_FILTERS.rfmSegments])
  @ApiOkResponse({ schema: rfmSchema })
  rfm(@Query() q: Record<string, unknown>) {
    return this.stats.rfmSegments(validQuery(FilterQuery, q, STATISTIC_FILTERS.rfmSegments));
  }

  // before profitability/:by, so that this route answers /statistics/profitability/segment
  @Get('profitability/segment')
  @ApiOperation({
    summary: 'Revenue − cost by RFM segment',
    description: 'The customers are grouped by their segment as of asOf (else the end of to, else now); without a period, their purchases up to that date.',
  })
  @ApiQueryFrom(FilterQuery, [...STATISTIC_FILTERS.profitabilityBySegment])
  @ApiOkResponse({ schema: profitabilitySchema })
  profitabilityBySegment(@Query() q: Record<string, unknown>) {
    return this.stats.profitability('segment', validQuery(FilterQuery, q, STATISTIC_FILTERS.profitabilityBySegment));
  }

  @Get('profitability/:by')
  @ApiOperation({
    summary: 'Revenue − cost by purchase channel, acquisition source, product category or location',
    description: 'Kept per month, so it takes no asOf (GET /statistics/profitability/segment does): a period is from/to.',
  })
  @ApiParam({ name: 'by', enum: [...BY], description: 'the grouping (by segment: GET /statistics/profitability/segment)' })
  @ApiQueryFrom(FilterQuery, [...STATISTIC_FILTERS.profitability])
  @ApiOkResponse({ schema: profitabilitySchema })
  profitability(@Param('by') by: string, @Query() q: Record<string, unknown>) {
    if (!(BY as readonly string[]).includes(by)) {
      throw new BadRequestException(
        problem(400, 'invalid_query', 'Invalid query', `by: expected one of ${PROFITABILITY_DIMENSIONS.join(', ')}`, {
          errors: [{ field: 'by', expected: `one of ${PROFITABILITY_DIMENSIONS.join(', ')}` }],
        }),
      );
    }
    // asOf is the segment grouping's parameter: said so, rather than "no such parameter"
    const asOf = `no asOf by ${by}: its figures are kept per month, so ask for a period (from, to); asOf dates the segments of GET /statistics/profitability/segment`;
    return this.stats.profitability(by as ProfitabilityDimension, validQuery(FilterQuery, q, STATISTIC_FILTERS.profitability, { asOf }));
  }

  @Get('campaigns')
  @ApiOperation({ summary: 'Campaign return on spend' })
  @ApiQueryFrom(FilterQuery, [...STATISTIC_FILTERS.campaignReturns])
  @ApiOkResponse({ schema: campaignsSchema })
  campaigns(@Query() q: Record<string, unknown>) {
    return this.stats.campaignReturns(validQuery(FilterQuery, q, STATISTIC_FILTERS.campaignReturns));
  }

  @Get('employees/complaints')
  @ApiOperation({ summary: 'Complaints per employee' })
  @ApiQueryFrom(FilterQuery, [...STATISTIC_FILTERS.complaintsPerEmployee])
  @ApiOkResponse({ schema: complaintsSchema })
  complaints(@Query() q: Record<string, unknown>) {
    return this.stats.complaintsPerEmployee(validQuery(FilterQuery, q, STATISTIC_FILTERS.complaintsPerEmployee));
  }

  @Get('employees/turnover')
  @ApiOperation({ summary: 'Employee turnover: leavers over average headcount in the period' })
  @ApiQueryFrom(FilterQuery, [...STATISTIC_FILTERS.turnover])
  @ApiOkResponse({ schema: turnoverSchema })
  turnover(@Query() q: Record<string, unknown>) {
    return this.stats.turnover(validQuery(FilterQuery, q, STATISTIC_FILTERS.turnover));
  }
}
