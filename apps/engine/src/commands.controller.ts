import { Body, Controller, HttpCode, HttpException, Inject, Post, Query, Res } from '@nestjs/common';
import { ApiBody, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { Response } from 'express';
import { ChurnSweep, CommandService, type CommandResult, type SweepReport } from '@clientele/application';
import { problem, problemForFailure, type ProblemDetails } from './problem-details';
import { ENGINE_CONFIG } from './engine.tokens';
import { noParameters } from './query-params';
import { batchAnswerSchema, commandSchema, PROBLEM_ANSWER, sweepReportSchema, STOPPING_RESPONSE } from './response-schemas';
import type { EngineConfig } from './engine.config';

const envelopeSchema = {
  ...commandSchema,
  example: {
    type: 'RecordPurchase',
    commandId: 'order-1001',
    data: {
      customerId: 'ann',
      orderId: '1001',
      occurredAt: '2026-01-31T10:00:00.000Z',
      lines: [{ sku: 'BOOK-1', category: 'books', quantity: 1, unitPriceMinor: 1500, unitCostMinor: 900 }],
    },
  },
};

const COMMAND_RESULT = { $ref: '#/components/schemas/CommandResult' };

export type BatchItemAnswer =
  | { index: number; status: 200 | 201; result: CommandResult }
  | { index: number; status: number; commandId?: string; problem: ProblemDetails };

@ApiTags('commands')
@ApiResponse(STOPPING_RESPONSE)
@Controller()
export class CommandsController {
  constructor(
    private readonly commands: CommandService,
    private readonly sweep: ChurnSweep,
    @Inject(ENGINE_CONFIG) private readonly config: EngineConfig,
  ) {}

  @Post('commands')
  @ApiOperation({ summary: 'Execute one command (idempotent by commandId)' })
  @ApiBody({ schema: envelopeSchema })
  @ApiResponse({ status: 201, description: 'events stored', schema: COMMAND_RESULT })
  @ApiResponse({ status: 200, description: 'already stored under this commandId on this stream (duplicate), or nothing to record (no_op)', schema: COMMAND_RESULT })
  @ApiResponse({ status: 400, description: 'invalid command, or a query parameter: problem details with errors[{ field, expected }]', ...PROBLEM_ANSWER })
  @ApiResponse({ status: 409, description: 'concurrent changes outlasted the retries, or commandId reused', ...PROBLEM_ANSWER })
  @ApiResponse({ status: 413, description: 'body larger than the limit', ...PROBLEM_ANSWER })
  @ApiResponse({ status: 415, description: 'a body not sent as JSON', ...PROBLEM_ANSWER })
  @ApiResponse({ status: 422, description: 'refused by a business rule; `code` names it', ...PROBLEM_ANSWER })
  @ApiResponse({ status: 500, description: 'a fault on our side (logged); the command may be sent again', ...PROBLEM_ANSWER })
  async execute(@Body() body: unknown, @Query() query: Record<string, unknown>, @Res({ passthrough: true }) res: Response): Promise<CommandResult> {
    // a parameter this route does not take (?dryRun=true) is refused before anything is written, not ignored
    noParameters(query);
    const result = await this.commands.execute(body);
    res.status(result.status === 'applied' ? 201 : 200);
    return result;
  }

  @Post('commands/batch')
  @HttpCode(200)
  @ApiOperation({
    summary: 'Execute many commands; each is answered at its index with its own status',
    description:
      'A command that fails for now (500, or 409 concurrency_conflict) holds the later commands of the same customer in the batch: ' +
      'they are not run and are answered 500 with "not run: an earlier command of the same stream failed for now". ' +
      'Send them again, after the failed one, to keep each customer\'s order.',
  })
  @ApiBody({ schema: { type: 'object', required: ['commands'], properties: { commands: { type: 'array', items: envelopeSchema } } } })
  @ApiResponse({ status: 200, description: 'each command answered at its index: its result, or its problem', schema: batchAnswerSchema })
  @ApiResponse({ status: 400, description: 'the body is not { commands: [...] }, or a query parameter', ...PROBLEM_ANSWER })
  @ApiResponse({ status: 413, description: 'more commands, or more bytes, than the limits', ...PROBLEM_ANSWER })
  @ApiResponse({ status: 415, description: 'a body not sent as JSON', ...PROBLEM_ANSWER })
  @ApiResponse({ status: 500, description: 'a fault on our side before any command was answered (logged); the batch may be sent again', ...PROBLEM_ANSWER })
  async executeBatch(@Body() body: unknown, @Query() query: Record<string, unknown>): Promise<{ results: BatchItemAnswer[] }> {
    noParameters(query);
    const commands = batchOf(body, this.config.maxBatchItems);
    // The bulk path, one append per stream. A temporary failure holds the rest of its stream, so a
    // platform that resends what failed never finds a later command stored ahead of an earlier one.
    const results = await this.commands.importBatch(commands, { holdStreamAfterTemporaryFailure: true });
    return {
      results: results.map((item): BatchItemAnswer => {
        if (item.ok) return { index: item.index, status: item.result.status === 'applied' ? 201 : 200, result: item.result };
        const p = problemForFailure(item.failure);
        return { index: item.index, status: p.status, ...(item.commandId ? { commandId: item.commandId } : {}), problem: p };
      }),
    };
  }

  @Post('sweeps/churn')
  @HttpCode(200)
  @ApiOperation({ summary: 'Churn every customer without a purchase for churnAfterDays before asOf (idempotent per asOf)' })
  @ApiBody({ schema: { type: 'object', required: ['asOf'], properties: { asOf: { type: 'string', format: 'date-time' } } } })
  @ApiResponse({ status: 200, description: 'how many customers were judged and churned', schema: sweepReportSchema })
  @ApiResponse({ status: 400, description: 'asOf missing, not a date-time with a zone on an existing date, or in the future; an unknown field or query parameter', ...PROBLEM_ANSWER })
  @ApiResponse({ status: 413, description: 'a body larger than the limit', ...PROBLEM_ANSWER })
  @ApiResponse({ status: 415, description: 'a body not sent as JSON', ...PROBLEM_ANSWER })
  @ApiResponse({ status: 500, description: 'a fault on our side (logged); the same sweep may be run again', ...PROBLEM_ANSWER })
  async sweepChurn(@Body() body: unknown, @Query() query: Record<string, unknown>): Promise<SweepReport> {
    noParameters(query);
    const { asOf, ...rest } = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
    const unknown = Object.keys(rest);
    if (unknown.length > 0) {
      throw new HttpException(
        problem(400, 'invalid_request', 'Invalid request', 'unknown fields', {
          errors: unknown.map((field) => ({ field, expected: 'no such field (remove it)' })),
        }),
        400,
      );
    }
    return this.sweep.sweepChurn(asOf as string);
  }
}

function batchOf(body: unknown, max: number): unknown[] {
  const expected = `an array of at most ${max} command envelopes`;
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new HttpException(problem(400, 'invalid_request', 'Invalid request', 'the body must be { "commands": [...] }', {
      errors: [{ field: '', expected: 'a JSON object { "commands": [...] }' }],
    }), 400);
  }
  const { commands, ...rest } = body as Record<string, unknown>;
  const errors = Object.keys(rest).map((field) => ({ field, expected: 'no such field (remove it)' }));
  if (!Array.isArray(commands)) errors.push({ field: 'commands', expected });
  if (errors.length > 0) {
    throw new HttpException(problem(400, 'invalid_request', 'Invalid request', 'the body must be { "commands": [...] }', { errors }), 400);
  }
  const items = commands as unknown[];
  if (items.length > max) {
    throw new HttpException(
      problem(413, 'batch_too_large', 'Batch too large', `a batch holds at most ${max} commands, got ${items.length}; split it`, {
        errors: [{ field: 'commands', expected }],
      }),
      413,
    );
  }
  return items;
}
