import { Controller, Get, Header, Inject, Query, Res } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiProduces, ApiServiceUnavailableResponse, ApiTags, ApiResponse } from '@nestjs/swagger';
import type { Response } from 'express';
import { ClienteleMetrics, EVENT_STORE, ReferralProcessRunner, type ProcessStatus } from '@clientele/application';
import type { EventStore } from '@clientele/event-store';
import type { MessagingStats } from '@clientele/messaging';
import { EngineReadModels } from './engine-read-models';
import { EngineRuntime, type KafkaStarting } from './engine.runtime';
import { noParameters } from './query-params';
import { healthSchema, PROBLEM_ANSWER } from './response-schemas';

export interface HealthReport {
  status: 'ok' | 'degraded' | 'down' | 'stopping';
  store: { reachable: boolean; head?: number; error?: string };
  processManager: ProcessStatus | { running: false };
  /** relay and ingest figures when this process runs them; `starting` until they run */
  kafka?: MessagingStats | KafkaStarting;
  /** each read model's position and lag when this process runs the projector */
  projections?: Awaited<ReturnType<EngineReadModels['status']>>;
}

@ApiTags('operations')
@ApiResponse({ status: 400, description: 'a query parameter that is unknown, given twice or malformed: problem details naming it in errors[{ field, expected }]', ...PROBLEM_ANSWER })
@Controller()
export class OperationsController {
  constructor(
    @Inject(EVENT_STORE) private readonly store: EventStore,
    private readonly runner: ReferralProcessRunner,
    private readonly metrics: ClienteleMetrics,
    private readonly runtime: EngineRuntime,
    private readonly readModels: EngineReadModels,
  ) {}

  @Get('health')
  @ApiOperation({ summary: 'Store reachable, referral process manager position and lag (503 when the store is not reachable)' })
  @ApiOkResponse({ schema: healthSchema, description: 'ok, or degraded when the process manager or a projection is failing, or the Kafka side cannot be started' })
  @ApiServiceUnavailableResponse({ schema: healthSchema, description: 'down: the store cannot be reached; stopping: the process is stopping and takes no new work' })
  async health(@Query() query: Record<string, unknown>, @Res({ passthrough: true }) res: Response): Promise<HealthReport> {
    noParameters(query);
    try {
      const head = await this.store.headPosition();
      const processManager = this.runner.running ? await this.runner.status() : { running: false as const };
      const degraded = 'lastError' in processManager && processManager.lastError !== undefined;
      const kafka = await this.runtime.messagingStats();
      // not started yet after a failed attempt, or started and its relay failing to publish now
      const kafkaFailing =
        kafka !== undefined && ('starting' in kafka ? kafka.lastError !== undefined : (kafka.relay?.failingSends ?? 0) > 0);
      const projections = await this.readModels.status();
      const projectionFailing = projections?.some((p) => p.lastError !== undefined) ?? false;
      // answered 503 so a load balancer stops sending work here (see refuseWhileStopping)
      if (this.runtime.draining) res.status(503);
      return {
        status: this.runtime.draining ? 'stopping' : degraded || projectionFailing || kafkaFailing ? 'degraded' : 'ok',
        store: { reachable: true, head },
        processManager,
        ...(kafka ? { kafka } : {}),
        ...(projections ? { projections } : {}),
      };
    } catch (error) {
      res.status(503);
      return {
        status: 'down',
        store: { reachable: false, error: error instanceof Error ? error.message : String(error) },
        processManager: { running: false },
      };
    }
  }

  @Get('metrics')
  @ApiOperation({ summary: 'Prometheus metrics: commands, conflicts, appends, lags, HTTP request durations (text exposition format)' })
  @ApiProduces('text/plain')
  @ApiOkResponse({ content: { 'text/plain': { schema: { type: 'string' } } } })
  @Header('Cache-Control', 'no-store')
  async prometheus(@Query() query: Record<string, unknown>, @Res({ passthrough: true }) res: Response): Promise<string> {
    noParameters(query);
    if (this.runner.running) await this.runner.status(); // refreshes the lag gauge
    res.type(this.metrics.registry.contentType);
    return this.metrics.registry.metrics();
  }
}
