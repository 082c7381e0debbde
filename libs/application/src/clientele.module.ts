import { Inject, Module, type DynamicModule, type OnApplicationShutdown } from '@nestjs/common';
import { CqrsModule } from '@nestjs/cqrs';
import { defaultPolicy } from '@clientele/domain';
import type { EventStore } from '@clientele/event-store';
import { InMemoryCheckpointStore, type CheckpointStore } from './checkpoint.store';
import { BulkImporter } from './bulk-import';
import { ChurnSweep } from './churn.sweep';
import { ClienteleMetrics } from './clientele.metrics';
import { resolveOptions, type ClienteleOptions, type ResolvedClienteleOptions } from './clientele.options';
import { CHECKPOINT_STORE, CLIENTELE_OPTIONS, EVENT_STORE, LIFECYCLE_POLICY } from './clientele.tokens';
import { CommandService } from './command.service';
import { CustomerQueries } from './customer.queries';
import { DomainCommandHandler } from './domain-command.handler';
import { ReferralProcessModule, ReferralProcessRunner } from './referral-process.runner';

const exported = [
  EVENT_STORE,
  LIFECYCLE_POLICY,
  CHECKPOINT_STORE,
  CLIENTELE_OPTIONS,
  ClienteleMetrics,
  CommandService,
  CustomerQueries,
  ReferralProcessRunner,
  ChurnSweep,
];

/**
 * The command side of Clientele as one Nest module. Open for composition: projections, the Kafka
 * relay or ingest import this module and inject EVENT_STORE / CommandService / ClienteleMetrics.
 */
@Module({})
export class ClienteleModule implements OnApplicationShutdown {
  constructor(
    @Inject(EVENT_STORE) private readonly store: EventStore,
    @Inject(CHECKPOINT_STORE) private readonly checkpoints: CheckpointStore,
    @Inject(CLIENTELE_OPTIONS) private readonly options: ResolvedClienteleOptions,
  ) {}

  static forRoot(options: ClienteleOptions): DynamicModule {
    const resolved = resolveOptions(options);
    const { store, checkpoints } = options;
    return {
      module: ClienteleModule,
      global: true,
      imports: [CqrsModule.forRoot(), ReferralProcessModule],
      providers: [
        { provide: CLIENTELE_OPTIONS, useValue: resolved },
        { provide: LIFECYCLE_POLICY, useValue: Object.freeze({ ...(options.policy ?? defaultPolicy) }) },
        { provide: EVENT_STORE, useFactory: () => (typeof store === 'function' ? store() : store) },
        {
          provide: CHECKPOINT_STORE,
          useFactory: () =>
            checkpoints === undefined
              ? new InMemoryCheckpointStore()
              : typeof checkpoints === 'function'
                ? checkpoints()
                : checkpoints,
        },
        ClienteleMetrics,
        DomainCommandHandler,
        BulkImporter,
        CommandService,
        CustomerQueries,
        ReferralProcessRunner,
        ChurnSweep,
      ],
      exports: exported,
    };
  }

  // Runs after every module's destroy hooks (the runner has stopped reading), so closing is safe.
  async onApplicationShutdown(): Promise<void> {
    if (!this.options.closeOnShutdown) return;
    await this.checkpoints.close();
    await this.store.close();
  }
}
